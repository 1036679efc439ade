"""Active learning: ranking pinned on hand-built scores and vectors, determinism, meta, limits, skipping ids, bad
values at the CLI; one slow end-to-end run of `annotate tasks --select uncertainty` on a tiny trained model and
one of `--skip-project` against the real Doccano."""

import json
import math
from pathlib import Path

import numpy
import pytest
from typer.testing import CliRunner

from annotate import select
from annotate.cli import app
from annotate.errors import InputError
from annotate.records import Entity, LabelledDoc, write_jsonl
from annotate.select import (
    Candidate,
    choose,
    farthest_first,
    group,
    relation_doubts,
    span_doubts,
)
from annotate.tasks import run_tasks

CONFIG = Path(__file__).resolve().parents[1] / "models" / "configs" / "ner-rel-cpu.cfg"
SCHEMA = Path(__file__).resolve().parents[1] / "annotate" / "schemas" / "diplomacy-defence.yaml"


def cands() -> list[Candidate]:
    return [
        Candidate("a", entity=0.5, relation=0.0, spans=[("Kyiv", "GPE", 0.5)]),
        Candidate("b", entity=0.2, relation=1.0, relations=[("MEETS", 0.48, 0.5)]),
        Candidate("c", entity=0.0),
        Candidate("d", entity=1.2, relation=0.0),  # ties with b (1.2): b came first
    ]


# --------------------------------------------------------------------------------------------- parts


def test_select_span_doubts_most_doubtful_first_and_label_filter():
    probs = {(0, 1, "GPE"): 0.875, (2, 4, "ORG"): 0.25, (2, 4, "GPE"): 0.75, (5, 6, "CARDINAL"): 0.5}
    # min(p, 1 - p): GPE 0-1 0.125, ORG 0.25, GPE 2-4 0.25 (a tie: span order, GPE before ORG), CARDINAL 0.5
    rows = span_doubts(probs)
    assert [(r[0], r[2]) for r in rows] == [(5, "CARDINAL"), (2, "GPE"), (2, "ORG"), (0, "GPE")]
    assert [r[4] for r in rows] == [0.5, 0.25, 0.25, 0.125]
    assert [r[2] for r in span_doubts(probs, {"GPE", "ORG"})] == ["GPE", "ORG", "GPE"]


def test_select_relation_doubts_in_log_odds_of_the_threshold():
    probs = numpy.array([[0.5, 0.1], [0.9, 0.05]], dtype="f")
    mask = numpy.array([[1, 1], [1, 0]], dtype="f")
    doubt = relation_doubts(probs, mask, [0.5, 0.05])
    # (0,0) at its threshold: 1; (0,1) |logit .1 - logit .05| = |-2.197 + 2.944| = 0.747: 0.253;
    # (1,0) |logit .9 - 0| = 2.197 > 1: 0; (1,1) not allowed for the pair: 0
    assert numpy.allclose(doubt, [[1.0, 0.253], [0.0, 0.0]], atol=1e-3)
    assert relation_doubts(numpy.zeros((0, 2), dtype="f"), numpy.zeros((0, 2)), [0.5, 0.5]).shape == (0, 2)


# --------------------------------------------------------------------------------------------- ranking


def test_select_uncertainty_ranks_by_summed_doubt_ties_in_input_order():
    chosen = choose(cands(), "uncertainty")
    assert [(c.id, c.rank, round(c.score, 2)) for c in chosen] == [("b", 1, 1.2), ("d", 2, 1.2), ("a", 3, 0.5), ("c", 4, 0.0)]
    assert chosen[0].reason == "uncertainty 1.20: entities 0.20; relations 1.00 (MEETS p=0.48 vs 0.50)"
    assert chosen[2].reason == "uncertainty 0.50: entities 0.50 ('Kyiv' GPE p=0.50); relations 0.00"


def per_char_cands() -> list[Candidate]:
    # summed doubt ranks long, mid, short; per 1,000 characters it is short (2.0), mid (1.0), long (0.5)
    return [Candidate("long", entity=1.5, relation=0.5, chars=4000, spans=[("NATO", "ORG", 0.4)]),
            Candidate("mid", entity=1.0, chars=1000),
            Candidate("short", entity=0.1, relation=0.5, chars=300, relations=[("MEETS", 0.45, 0.5)]),
            Candidate("empty", chars=0)]


def test_select_uncertainty_per_char_ranks_short_dense_records_first():
    assert [c.id for c in choose(per_char_cands(), "uncertainty")] == ["long", "mid", "short", "empty"]
    chosen = choose(per_char_cands(), "uncertainty-per-char")
    assert [(c.id, c.rank, round(c.score, 3)) for c in chosen] == [("short", 1, 2.0), ("mid", 2, 1.0), ("long", 3, 0.5),
                                                                 ("empty", 4, 0.0)]
    assert chosen[0].reason == ("uncertainty 2.00 per 1,000 characters (0.60 over 300): entities 0.10; "
                                "relations 0.50 (MEETS p=0.45 vs 0.50)")
    assert chosen[2].reason == ("uncertainty 0.50 per 1,000 characters (2.00 over 4,000): entities 1.50 "
                                "('NATO' ORG p=0.40); relations 0.50")
    assert chosen[0].meta() == {"selection_strategy": "uncertainty-per-char", "selection_rank": 1, "selection_score": 2.0,
                                "selection_reason": chosen[0].reason}


def test_select_uncertainty_per_char_of_an_article_divides_its_summed_doubt_by_its_summed_length():
    parts = [Candidate("a#0", entity=0.5, chars=100), Candidate("a#1", entity=0.1, chars=900),
             Candidate("b#0", entity=0.2, chars=100)]
    # by record a#0 leads (5.0 per 1,000); as articles a is 0.6 over 1,000 characters (0.6), b 0.2 over 100 (2.0)
    assert [c.id for c in choose(parts, "uncertainty-per-char")] == ["a#0", "b#0", "a#1"]
    merged = group(parts, {"a#0": "a", "a#1": "a", "b#0": "b"})
    assert [(c.id, round(c.score, 3)) for c in choose(merged, "uncertainty-per-char")] == [("b", 2.0), ("a", 0.6)]
    assert [c.id for c in choose(merged, "uncertainty")] == ["a", "b"]


@pytest.mark.parametrize("limit", [1, 2, 4, 10])
def test_select_limit_keeps_the_head_of_the_ranking(limit):
    full = [c.id for c in choose(cands(), "uncertainty")]
    assert [c.id for c in choose(cands(), "uncertainty", limit=limit)] == full[:limit]


def test_select_random_is_a_seeded_permutation():
    many = [Candidate(str(i)) for i in range(20)]
    first = [c.id for c in choose(many, "random", seed=3)]
    assert first == [c.id for c in choose(many, "random", seed=3)]
    assert sorted(first, key=int) == [str(i) for i in range(20)]
    assert first != [c.id for c in choose(many, "random", seed=4)]
    assert [c.id for c in choose(many, "random", seed=3, limit=5)] == first[:5]


def test_select_farthest_first_from_anchors_pinned():
    vectors = [numpy.array(v, dtype="f") for v in ([1, 0], [0.9, 0.1], [0, 1], [-1, 0])]
    picks = farthest_first(vectors, 3, anchors=[numpy.array([2, 0], dtype="f")])
    # cosine distances to [1, 0]: 0, 0.006, 1, 2 -> [-1, 0]; then [0, 1] (1 from both); then [0.9, 0.1]
    # (0.006 from the anchor)
    assert [i for i, _ in picks] == [3, 2, 1]
    assert [round(d, 3) for _, d in picks] == [2.0, 1.0, 0.006]


def test_select_farthest_first_without_anchors_draws_the_first_with_the_seed():
    vectors = [numpy.array([math.cos(a), math.sin(a)], dtype="f") for a in numpy.linspace(0, 3, 8)]
    runs = {seed: farthest_first(vectors, 4, seed=seed) for seed in range(6)}
    assert runs[2] == farthest_first(vectors, 4, seed=2)
    assert all(run[0][1] is None and len({i for i, _ in run}) == 4 for run in runs.values())
    assert len({run[0][0] for run in runs.values()}) > 1
    # after the first pick, the next is always the farthest vector from it
    first = runs[0][0][0]
    assert runs[0][1][0] == (7 if first < 4 else 0)


def test_select_diverse_reasons_and_missing_vector():
    with_vectors = [Candidate(c, vector=numpy.array(v, dtype="f")) for c, v in (("x", [1, 0]), ("y", [0, 1]))]
    chosen = choose(with_vectors, "diverse", seed=0)
    assert chosen[0].reason == "first pick, drawn with seed 0" and chosen[0].score is None
    assert chosen[1].reason == "cosine distance 1.000 to the nearest record chosen before it"
    with pytest.raises(InputError, match="record 'a' has no document vector"):
        choose(cands(), "diverse")


def test_select_group_merges_chunks_of_an_article():
    parts = [Candidate("a#0", entity=0.5, vector=numpy.array([1, 0], dtype="f"), chars=30),
             Candidate("b#0", entity=0.1, vector=numpy.array([0, 1], dtype="f"), chars=10),
             Candidate("a#1", entity=0.25, relation=1.0, vector=numpy.array([0, 1], dtype="f"), chars=10)]
    merged = group(parts, {"a#0": "a", "a#1": "a", "b#0": "b"})
    assert [(g.id, g.entity, g.relation, g.chars) for g in merged] == [("a", 0.75, 1.0, 40), ("b", 0.1, 0.0, 10)]
    assert merged[0].vector.tolist() == [0.75, 0.25]  # weighted by length: (30 * [1, 0] + 10 * [0, 1]) / 40


def test_select_choice_meta_carries_strategy_rank_score_reason():
    top = choose(cands(), "uncertainty", limit=1)[0]
    assert top.meta() == {"selection_strategy": "uncertainty", "selection_rank": 1, "selection_score": 1.2,
                          "selection_reason": top.reason}
    assert "selection_score" not in choose(cands(), "random", limit=1)[0].meta()


@pytest.mark.parametrize(("strategy", "has_model", "limit", "match"), [
    ("foo", True, None, ("unknown selection strategy 'foo' \\(expected one of random, uncertainty, diverse, "
                         "uncertainty-per-char\\)")),
    ("random", False, 0, "--limit must be at least 1, got 0"),
    ("uncertainty", False, 5, "--select uncertainty needs --model"),
    ("diverse", False, None, "--select diverse needs --model"),
    ("uncertainty-per-char", False, None, "--select uncertainty-per-char needs --model \\(the pipeline whose doubts"),
])
def test_select_bad_values(strategy, has_model, limit, match):
    with pytest.raises(InputError, match=match):
        select.check_strategy(strategy, has_model=has_model, limit=limit)


def test_select_read_ids_from_records_and_tasks(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"id": "r1", "text": "x"}\n{"text": "y", "meta": {"record_id": "t1"}}\n\n', encoding="utf-8")
    assert select.read_ids(path) == {"r1", "t1"}
    path.write_text('{"id": "r1", "text": "x"}\n{"text": "y"}\n', encoding="utf-8")
    with pytest.raises(InputError, match="mixed.jsonl:2: expected a record"):
        select.read_ids(path)


# --------------------------------------------------------------------------------------------- the job


def articles(n: int = 6) -> list[LabelledDoc]:
    return [LabelledDoc(f"a{i}#0", f"Text number {i}.", {"article_id": f"a{i}"}) for i in range(n)]


def test_select_run_tasks_random_limit_skip_and_meta(tmp_path):
    out = tmp_path / "tasks.jsonl"
    summary = run_tasks(articles(), out, select="random", limit=3, seed=1, skip_ids={"a0#0", "a5#0", "zz"})
    rows = [json.loads(line) for line in out.read_text(encoding="ascii").splitlines()]
    assert (summary["tasks"], summary["selected"], summary["candidates"], summary["skipped_already_present"]) == (3, 3, 4, 2)
    assert [r["meta"]["selection_rank"] for r in rows] == [1, 2, 3]
    assert {r["meta"]["record_id"] for r in rows} <= {"a1#0", "a2#0", "a3#0", "a4#0"}
    assert all(r["meta"]["selection_strategy"] == "random" and r["meta"]["selection_reason"] == "random pick (seed 1)"
               for r in rows)
    again = tmp_path / "again.jsonl"
    run_tasks(articles(), again, select="random", limit=3, seed=1, skip_ids={"a0#0", "a5#0"})
    assert again.read_text(encoding="ascii") == out.read_text(encoding="ascii")


def test_select_run_tasks_limit_needs_select(tmp_path):
    with pytest.raises(InputError, match="--limit needs --select"):
        run_tasks(articles(), tmp_path / "t.jsonl", limit=2)
    assert not (tmp_path / "t.jsonl").exists()



def chunked() -> list[LabelledDoc]:
    """Three articles of 3, 1 and 2 chunks."""
    sizes = {"a": 3, "b": 1, "c": 2}
    return [LabelledDoc(f"{a}#{k}", f"Chunk {k} of {a}.", {"article_id": a, "chunk": k}) for a, n in sizes.items() for k in range(n)]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_select_run_tasks_per_article_brings_whole_articles_in_order(tmp_path, seed):
    out = tmp_path / "tasks.jsonl"
    summary = run_tasks(chunked(), out, select="random", limit=2, seed=seed, per_article=True)
    rows = [json.loads(line)["meta"] for line in out.read_text(encoding="ascii").splitlines()]
    articles = list(dict.fromkeys(r["article_id"] for r in rows))
    sizes = {"a": 3, "b": 1, "c": 2}
    assert len(articles) == 2 and summary["selected"] == 2 and summary["unit"] == "article"
    assert summary["selected_records"] == summary["tasks"] == sum(sizes[a] for a in articles)
    for rank, article in enumerate(articles, start=1):  # each article's chunks together, in order, with one rank
        mine = [r for r in rows if r["article_id"] == article]
        assert [r["chunk"] for r in mine] == list(range(sizes[article]))
        assert {r["selection_rank"] for r in mine} == {rank}


def test_select_run_tasks_per_article_needs_select(tmp_path):
    with pytest.raises(InputError, match="--per-article needs --select"):
        run_tasks(chunked(), tmp_path / "t.jsonl", per_article=True)
    assert not (tmp_path / "t.jsonl").exists()


@pytest.mark.parametrize(("extra", "message"), [
    (["--select", "random", "--limit", "0"], "--limit must be at least 1, got 0"),
    (["--select", "uncertainty"], "--select uncertainty needs --model"),
    (["--select", "uncertainty-per-char"], "--select uncertainty-per-char needs --model"),
    (["--limit", "3"], "--limit needs --select"),
])
def test_select_cli_bad_values_one_line(tmp_path, extra, message):
    src = tmp_path / "articles.jsonl"
    write_jsonl(src, articles())
    out = tmp_path / "tasks.jsonl"
    result = CliRunner().invoke(app, ["tasks", str(src), "--out", str(out), *extra])
    assert result.exit_code == 1
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("name", ["foo", "uncertainty-per-word"])
def test_select_cli_unknown_strategy_is_a_usage_error(tmp_path, name):
    src = tmp_path / "articles.jsonl"
    write_jsonl(src, articles())
    result = CliRunner().invoke(app, ["tasks", str(src), "--out", str(tmp_path / "tasks.jsonl"), "--select", name])
    assert result.exit_code == 2
    flat = " ".join(result.output.replace("│", " ").split())  # typer's error box wraps long lines
    assert f"'{name}' is not one of 'random', 'uncertainty', 'diverse', 'uncertainty-per-char'" in flat
    assert not (tmp_path / "tasks.jsonl").exists()


def test_select_cli_skip_ids_file(tmp_path):
    src = tmp_path / "articles.jsonl"
    write_jsonl(src, articles())
    pulled = tmp_path / "labelled.jsonl"
    write_jsonl(pulled, articles()[:4])
    out = tmp_path / "tasks.jsonl"
    result = CliRunner().invoke(app, ["tasks", str(src), "--out", str(out), "--select", "random", "--skip-ids", str(pulled), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["skipped_already_present"] == 4
    assert sorted(json.loads(line)["meta"]["record_id"] for line in out.read_text().splitlines()) == ["a4#0", "a5#0"]


# ----------------------------------------------------------------------------------- a real tiny model

TRAIN = [
    ("Macron is President of France.", [("Macron", "PERSON"), ("President", "ROLE"), ("France", "GPE")]),
    ("Lecornu met Umerov in Paris on Tuesday.", [("Lecornu", "PERSON"), ("Umerov", "PERSON"), ("Paris", "GPE")]),
    ("NATO supports Ukraine against Russia.", [("NATO", "ORG"), ("Ukraine", "GPE"), ("Russia", "GPE")]),
    ("Poland is part of NATO.", [("Poland", "GPE"), ("NATO", "ORG")]),
]
UNSEEN = ["Macron is President of France.", "Scholz met Sunak in Berlin.", "The weather was mild.",
          "Kallas visited Tallinn and Riga.", "NATO supports Ukraine against Russia."]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from annotate.docbin import build_docbins
    from annotate.train import train

    root = tmp_path_factory.mktemp("select-model")
    records = []
    for i, (text, ents) in enumerate(TRAIN):
        entities = [Entity(f"e{j}", text.index(s), text.index(s) + len(s), label) for j, (s, label) in enumerate(ents)]
        records.append(LabelledDoc(f"d{i}", text, {}, entities))
    build_docbins(records, root / "bins", ratios=(1, 0, 0))
    bins = str(root / "bins" / "train.spacy")
    overrides = {"paths.train": bins, "paths.dev": bins, "paths.schema": str(SCHEMA), "training.max_steps": 60,
                 "training.eval_frequency": 60, "components.tok2vec.model.encode.width": 32}
    return train(CONFIG, root / "out", overrides=overrides)["model"]


@pytest.mark.slow
def test_select_cli_uncertainty_end_to_end(tiny_model, tmp_path):
    src = tmp_path / "articles.jsonl"
    write_jsonl(src, [LabelledDoc(f"u{i}#0", text, {"article_id": f"u{i}"}) for i, text in enumerate(UNSEEN)])
    out = tmp_path / "tasks.jsonl"
    args = ["tasks", str(src), "--model", tiny_model, "--select", "uncertainty", "--limit", "3", "--out", str(out), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    rows = [json.loads(line) for line in out.read_text(encoding="ascii").splitlines()]
    scores = [r["meta"]["selection_score"] for r in rows]
    assert (summary["selected"], summary["candidates"], summary["suggested_by"]) == (3, 5, tiny_model)
    assert scores == sorted(scores, reverse=True) and scores == [t["score"] for t in summary["top"]]
    assert all(r["meta"]["selection_reason"].startswith(f"uncertainty {s:.2f}: entities") for r, s in zip(rows, scores))
    # the rows are the model's own suggestions, as plain `annotate tasks --model` gives them
    plain = tmp_path / "plain.jsonl"
    assert CliRunner().invoke(app, ["tasks", str(src), "--model", tiny_model, "--out", str(plain)]).exit_code == 0
    by_id = {json.loads(line)["meta"]["record_id"]: json.loads(line) for line in plain.read_text().splitlines()}
    assert all(r["entities"] == by_id[r["meta"]["record_id"]]["entities"] for r in rows)


@pytest.mark.slow
def test_select_run_tasks_diverse_with_tiny_model(tiny_model, tmp_path):
    docs = [LabelledDoc(f"u{i}#0", text, {}) for i, text in enumerate(UNSEEN)]
    runs = [run_tasks(docs, tmp_path / f"d{k}.jsonl", model=tiny_model, select="diverse", limit=2, seed=5) for k in (1, 2)]
    assert (tmp_path / "d1.jsonl").read_text() == (tmp_path / "d2.jsonl").read_text()
    rows = [json.loads(line) for line in (tmp_path / "d1.jsonl").read_text().splitlines()]
    assert runs[0]["selected"] == 2 and runs[0]["suggested_by"] == tiny_model
    assert rows[0]["meta"]["selection_reason"] == "first pick, drawn with seed 5" and "selection_score" not in rows[0]["meta"]
    assert rows[1]["meta"]["selection_reason"].startswith("cosine distance ") and rows[1]["meta"]["selection_score"] > 0


def two_chunk_articles_and_summed_scores(model: str, tmp_path) -> tuple[list[LabelledDoc], dict[str, float]]:
    """UNSEEN as articles of two chunks (the last of one), and each chunk's summed-uncertainty score."""
    docs = [LabelledDoc(f"art{i // 2}#{i % 2}", text, {"article_id": f"art{i // 2}"}) for i, text in enumerate(UNSEEN)]
    run_tasks(docs, tmp_path / "records.jsonl", model=model, select="uncertainty")
    rows = [json.loads(line)["meta"] for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    return docs, {meta["record_id"]: meta["selection_score"] for meta in rows}


@pytest.mark.slow
def test_select_uncertainty_per_article_sums_its_chunks(tiny_model, tmp_path):
    docs, per_record = two_chunk_articles_and_summed_scores(tiny_model, tmp_path)
    summary = run_tasks(docs, tmp_path / "articles.jsonl", model=tiny_model, select="uncertainty", per_article=True, limit=1)
    rows = [json.loads(line)["meta"] for line in (tmp_path / "articles.jsonl").read_text().splitlines()]
    article = rows[0]["article_id"]
    assert summary["selected"] == 1 and [r["article_id"] for r in rows] == [article] * len(rows)
    chunk_sum = sum(score for rid, score in per_record.items() if rid.startswith(f"{article}#"))
    assert rows[0]["selection_score"] == pytest.approx(chunk_sum, abs=1e-3)
    best = max({rid.split("#")[0] for rid in per_record},
               key=lambda a: sum(v for rid, v in per_record.items() if rid.startswith(f"{a}#")))
    assert article == best


@pytest.mark.slow
def test_select_uncertainty_per_char_per_article_divides_by_the_article_length(tiny_model, tmp_path):
    docs, summed = two_chunk_articles_and_summed_scores(tiny_model, tmp_path)
    run_tasks(docs, tmp_path / "articles.jsonl", model=tiny_model, select="uncertainty-per-char", per_article=True)
    rows = [json.loads(line)["meta"] for line in (tmp_path / "articles.jsonl").read_text().splitlines()]
    expected = {}
    for doc in docs:
        doubt, chars = expected.get(doc.meta["article_id"], (0.0, 0))
        expected[doc.meta["article_id"]] = (doubt + summed[doc.id], chars + len(doc.text))
    density = {a: doubt / chars * 1000 for a, (doubt, chars) in expected.items()}
    assert [r["selection_score"] for r in rows] == sorted((r["selection_score"] for r in rows), reverse=True)
    for row in rows:
        assert row["selection_score"] == pytest.approx(density[row["article_id"]], abs=1e-2)
        assert " per 1,000 characters (" in row["selection_reason"]
    assert rows[0]["article_id"] == max(density, key=density.get)

@pytest.mark.slow
def test_select_score_records_parts_are_bounded(tiny_model):
    from annotate.predict import load_model

    docs = [LabelledDoc(f"u{i}", text, {}) for i, text in enumerate(UNSEEN)]
    scored = list(select.score_records(load_model(tiny_model), docs))
    assert [record.id for record, _ in scored] == [d.id for d in docs]
    for record, cand in scored:
        assert 0.0 <= cand.entity and 0.0 <= cand.relation and cand.vector is not None
        assert all(0.0 <= p <= 1.0 for _, _, p in cand.spans)
        assert record.status == "predicted"


@pytest.mark.doccano
@pytest.mark.slow
def test_select_cli_skip_project_leaves_out_what_is_pushed(live_doccano, tmp_path, monkeypatch):
    monkeypatch.setenv("ANNOTATE_DOCCANO_USER", live_doccano.admin.username)
    monkeypatch.setenv("ANNOTATE_DOCCANO_PASSWORD", live_doccano.admin.password)
    src = tmp_path / "articles.jsonl"
    write_jsonl(src, articles())
    first = tmp_path / "round1.jsonl"
    runner = CliRunner()
    made = runner.invoke(app, ["tasks", str(src), "--select", "random", "--limit", "2", "--out", str(first)])
    assert made.exit_code == 0, made.output
    pushed = runner.invoke(app, ["doccano", "push", str(first), "--project", "select-round", "--url", live_doccano.url])
    assert pushed.exit_code == 0, pushed.output
    second = tmp_path / "round2.jsonl"
    args = ["tasks", str(src), "--select", "random", "--out", str(second), "--skip-project", "select-round",
            "--url", live_doccano.url, "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["skipped_already_present"] == 2
    ids = lambda path: {json.loads(line)["meta"]["record_id"] for line in path.read_text().splitlines()}
    assert ids(first) | ids(second) == {d.id for d in articles()} and not ids(first) & ids(second)
    missing = runner.invoke(app, ["tasks", str(src), "--out", str(tmp_path / "x.jsonl"), "--skip-project", "nope",
                                  "--url", live_doccano.url])
    assert missing.exit_code == 1 and "nope" in missing.output
