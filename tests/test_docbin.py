"""Records -> Docs (alignment and overlap policies), DocBin round trip, deterministic splits."""

import json
import textwrap

import pytest
from spacy.tokens import DocBin
from typer.testing import CliRunner

from annotate.cli import app
from annotate.docbin import (
    ENTITIES_KEY,
    RELATIONS_KEY,
    SPANS_KEY,
    build_docbins,
    date_split,
    doc_from_record,
    hash_split,
    make_nlp,
    read_docbin,
    record_from_doc,
    select_ents,
)
from annotate.errors import InputError
from annotate.records import LabelledDoc, read_docs

TEXT = "French President Emmanuel Macron met NATO's chief in Paris."
#       0     6         16       25     32  36   41 43    49 52   57


def _record(entities, relations=(), text=TEXT, rid="a1#0", meta=None):
    return LabelledDoc.from_dict({
        "id": rid, "text": text, "meta": meta if meta is not None else {"article_id": rid.split("#")[0]},
        "entities": [{"id": i, "start": s, "end": e, "label": lab} for i, s, e, lab in entities],
        "relations": [{"id": i, "head": h, "tail": t, "label": lab, "attrs": attrs} for i, h, t, lab, attrs in relations],
    })


@pytest.fixture(scope="module")
def nlp():
    return make_nlp()


@pytest.mark.parametrize(
    ("policy", "start", "end", "expected", "action"),
    [
        ("expand", 19, 32, "Emmanuel Macron", "expanded"),  # "manuel Macron" -> whole tokens
        ("contract", 19, 32, "Macron", "contracted"),
        ("drop", 19, 32, None, "dropped"),
        ("expand", 17, 32, "Emmanuel Macron", None),  # aligned: nothing to do
    ],
)
def test_docbin_misaligned_policy(nlp, policy, start, end, expected, action):
    doc, report = doc_from_record(nlp, _record([("e1", start, end, "PERSON")]), misaligned=policy)
    assert [s.text for s in doc.ents] == ([expected] if expected else [])
    counts = report.to_dict()["entities"]["PERSON"]
    assert counts["spans"] == 1
    for kind in ("expanded", "contracted", "dropped"):
        assert counts[kind] == (1 if kind == action else 0)


@pytest.mark.parametrize(
    ("overlap", "in_ents"),
    [("longest", ["French President", "Emmanuel Macron"]), ("shortest", ["French", "President", "Emmanuel Macron"])],
)
def test_docbin_overlap_policy_keeps_every_span_in_group(nlp, overlap, in_ents):
    ents = [("e1", 0, 6, "GPE"), ("e2", 7, 16, "ROLE"), ("e3", 0, 16, "ROLE"), ("e4", 17, 32, "PERSON")]
    doc, report = doc_from_record(nlp, _record(ents), overlap=overlap)
    assert [s.text for s in doc.ents] == in_ents
    assert [s.text for s in doc.spans[SPANS_KEY]] == ["French", "French President", "President", "Emmanuel Macron"]
    left_out = sum(v["not_in_ents"] for v in report.to_dict()["entities"].values())
    assert left_out == 4 - len(in_ents)


def test_docbin_select_ents_rejects_unknown_policy(nlp):
    with pytest.raises(InputError, match="overlap policy"):
        select_ents([], "widest")


def test_docbin_tokenizer_tweaks_split_common_joins(nlp):
    words = [t.text for t in nlp("F-16 jets, 2014–2016, EUR800 and Syria/Iraq [4]")]
    assert words[:3] == ["F", "-", "16"]
    assert "2014" in words and "2016" in words and "EUR" in words and "800" in words
    assert "Iraq" in words and "4" in words


def test_docbin_round_trip_keeps_entities_span_groups_and_relations(nlp, tmp_path):
    ents = [("e1", 0, 6, "GPE"), ("e2", 7, 16, "ROLE"), ("e3", 17, 32, "PERSON"), ("e4", 37, 41, "ORG"),
            ("e5", 52, 57, "GPE")]
    rels = [("r1", "e3", "e2", "HAS_ROLE", {}), ("r2", "e2", "e1", "ROLE_IN", {"negated": True})]
    doc, _ = doc_from_record(nlp, _record(ents, rels))
    bin_path = tmp_path / "x.spacy"
    DocBin(docs=[doc], store_user_data=True).to_disk(bin_path)
    [back] = read_docbin(bin_path)
    assert [(s.text, s.label_) for s in back.ents] == [
        ("French", "GPE"), ("President", "ROLE"), ("Emmanuel Macron", "PERSON"), ("NATO", "ORG"), ("Paris", "GPE")]
    assert len(back.spans[SPANS_KEY]) == 5
    # msgpack hands lists back as tuples; compare as lists
    assert [{**r, "head": list(r["head"]), "tail": list(r["tail"])} for r in back.user_data[RELATIONS_KEY]] == [
        {"id": "r1", "label": "HAS_ROLE", "attrs": {}, "head": [17, 32, "PERSON"], "tail": [7, 16, "ROLE"]},
        {"id": "r2", "label": "ROLE_IN", "attrs": {"negated": True}, "head": [7, 16, "ROLE"], "tail": [0, 6, "GPE"]},
    ]
    assert [e["id"] for e in back.user_data[ENTITIES_KEY]] == ["e1", "e2", "e3", "e4", "e5"]
    record = record_from_doc(back, doc_id="a1#0")
    assert [(r.label, r.attrs) for r in record.relations] == [("HAS_ROLE", {}), ("ROLE_IN", {"negated": True})]
    heads = {e.id: TEXT[e.start:e.end] for e in record.entities}
    assert heads[record.relations[0].head] == "Emmanuel Macron"


def test_docbin_relation_to_nested_span_is_counted(nlp):
    ents = [("e1", 0, 6, "GPE"), ("e2", 0, 16, "ROLE"), ("e3", 17, 32, "PERSON")]
    doc, report = doc_from_record(nlp, _record(ents, [("r1", "e2", "e1", "ROLE_IN", {})]))
    assert len(doc.user_data[RELATIONS_KEY]) == 1
    assert report.to_dict()["relations"]["ROLE_IN"] == {"relations": 1, "relations_dropped": 0, "relations_outside_ents": 1}


def test_docbin_hash_split_is_stable_and_seeded():
    keys = [f"article-{i}" for i in range(300)]
    first = {k: hash_split(k, seed=1) for k in keys}
    assert {k: hash_split(k, seed=1) for k in keys + ["new-1", "new-2"]} | first == {
        **{k: hash_split(k, seed=1) for k in ["new-1", "new-2"]}, **first}
    counts = {name: list(first.values()).count(name) for name in ("train", "dev", "test")}
    assert 200 <= counts["train"] <= 280 and counts["dev"] > 10 and counts["test"] > 10
    assert {k: hash_split(k, seed=2) for k in keys} != first
    assert {hash_split(k, ratios=(0, 1, 0)) for k in keys} == {"dev"}


@pytest.mark.parametrize(("date", "split"), [("2024-12-31", "train"), ("2025-01-01", "dev"), ("2025-06-01", "test")])
def test_docbin_date_split(date, split):
    assert date_split(date, dev_from="2025-01-01", test_from="2025-06-01") == split


def test_docbin_chunks_of_one_article_share_a_split(tmp_path):
    records = [_record([], rid=f"art{i}#{c}") for i in range(20) for c in range(3)]
    summary = build_docbins(records, tmp_path, seed=3)
    assert sum(summary["docs"].values()) == 60
    assert sum(summary["articles"].values()) == 20
    for name in ("train", "dev", "test"):
        assert summary["docs"][name] == 3 * summary["articles"][name]
    ids = {}
    for name in ("train", "dev", "test"):
        for doc in read_docbin(tmp_path / f"{name}.spacy"):
            ids.setdefault(doc.user_data["annotate_id"].split("#")[0], set()).add(name)
    assert all(len(s) == 1 for s in ids.values())
    # the same split as records, in the same order as the DocBin
    for name in ("train", "dev", "test"):
        spacy_ids = [doc.user_data["annotate_id"] for doc in read_docbin(tmp_path / f"{name}.spacy")]
        assert [r.id for r in read_docs(tmp_path / f"{name}.jsonl")] == spacy_ids


def test_docbin_date_split_without_date_names_record(tmp_path):
    with pytest.raises(InputError, match="'a1#0'.*meta.date"):
        build_docbins([_record([])], tmp_path, dates=("2025-01-01", "2025-06-01"))


def test_docbin_cli_writes_bins_and_report(tmp_path):
    path = tmp_path / "labelled.jsonl"
    path.write_text(textwrap.dedent("""\
        {"id": "a#0", "text": "Macron met Scholz.", "meta": {"article_id": "a"}, "entities": [{"id": "e1", "start": 0, "end": 6, "label": "PERSON"}, {"id": "e2", "start": 11, "end": 17, "label": "PERSON"}], "relations": [{"id": "r1", "head": "e1", "tail": "e2", "label": "MEETS"}]}
        {"id": "b#0", "text": "Paris.", "meta": {"article_id": "b"}, "entities": [{"id": "e1", "start": 0, "end": 4, "label": "GPE"}], "relations": []}
        """), encoding="utf-8")
    result = CliRunner().invoke(app, ["docbin", str(path), "--out", str(tmp_path / "bins"), "--ratios", "1,0,0", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["docs"] == {"train": 2, "dev": 0, "test": 0}
    assert summary["alignment"]["entities"]["GPE"]["expanded"] == 1  # "Pari" -> "Paris"
    assert (tmp_path / "bins" / "docbin-report.json").exists()


def test_docbin_cli_rejects_bad_ratios(tmp_path):
    path = tmp_path / "labelled.jsonl"
    path.write_text('{"id": "a", "text": "x"}\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["docbin", str(path), "--out", str(tmp_path), "--ratios", "1,0"])
    assert result.exit_code != 0
    assert "--ratios takes 3" in result.output


@pytest.mark.parametrize(("text", "end", "expected", "action"), [
    ("Paris\n\nLondon", 7, ["Paris"], "trimmed"),  # trailing whitespace token trimmed
    ("\n\nParis", 2, [], "dropped"),  # nothing but whitespace
])
def test_docbin_whitespace_edges(nlp, text, end, expected, action):
    start = 0
    doc, report = doc_from_record(nlp, _record([("e1", start, end, "GPE")], text=text))
    assert [s.text for s in doc.ents] == expected
    assert report.to_dict()["entities"]["GPE"][action] == 1


def test_docbin_shares_tokens_module_and_keeps_registry_names():
    """Tokenizer, alignment and splits live in annotate.tokens (shared with publish); the old import paths and
    the spaCy registry entries of annotate.docbin still work."""
    import spacy
    from spacy.util import registry

    from annotate import docbin, tokens

    for name in ("make_nlp", "tweak_tokenizer", "doc_from_record", "select_ents", "AlignmentReport", "assign_split",
                 "hash_split", "date_split", "article_id", "RELATIONS_KEY", "ENTITIES_KEY", "SPANS_KEY", "EXTRA_INFIXES"):
        assert getattr(docbin, name) is getattr(tokens, name), name
    tweaks = registry.misc.get("annotate.tokenizer_tweaks.v1")
    assert tweaks is docbin.make_tokenizer_tweaks and tweaks() is tokens.tweak_tokenizer
    assert registry.misc.get("annotate.add_ner_labels.v1") is docbin.make_add_ner_labels
    assert [t.text for t in tweaks()(spacy.blank("en"))("F-16")] == ["F", "-", "16"]
