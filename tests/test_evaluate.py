"""Evaluation metrics pinned against values computed by hand on tiny documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from annotate.cli import app
from annotate.errors import InputError
from annotate.evaluate import (
    compare,
    context,
    evaluate,
    load_metrics,
    overlap_pairs,
    prf,
    resample_weights,
)
from annotate.records import Entity, LabelledDoc, Relation, write_jsonl
from annotate.reports import markdown_report, public, write_outputs
from annotate.schema import load_schema

SCHEMA = load_schema()
TEXT = "Macron met Umerov in Paris on Tuesday with NATO."


def span(text: str, piece: str, label: str, eid: str) -> Entity:
    start = text.index(piece)
    return Entity(eid, start, start + len(piece), label)


def doc(
    doc_id: str, text: str, ents: list[Entity], rels: list[Relation] = (), annotator: str | None = None
) -> LabelledDoc:
    return LabelledDoc(id=doc_id, text=text, entities=list(ents), relations=list(rels), annotator=annotator)


def gold_doc() -> LabelledDoc:
    ents = [
        span(TEXT, "Macron", "PERSON", "g1"),
        span(TEXT, "Umerov", "PERSON", "g2"),
        span(TEXT, "Paris", "GPE", "g3"),
        span(TEXT, "Tuesday", "DATE", "g4"),
        span(TEXT, "NATO", "ORG", "g5"),
    ]
    return doc("d1", TEXT, ents, [Relation("r1", "g1", "g2", "MEETS")])


def pred_doc() -> LabelledDoc:
    """Macron exact; "Umerov in" a boundary error; Paris the wrong label; Tuesday twice (a duplicate);
    NATO missed; "met" spurious; the relation ends on the mis-bounded span."""
    ents = [
        span(TEXT, "Macron", "PERSON", "p1"),
        span(TEXT, "Umerov in", "PERSON", "p2"),
        span(TEXT, "Paris", "LOC", "p3"),
        span(TEXT, "Tuesday", "DATE", "p4"),
        span(TEXT, "Tuesday", "DATE", "p5"),
        span(TEXT, "met", "EVENT", "p6"),
    ]
    return doc("d1", TEXT, ents, [Relation("r1", "p2", "p1", "MEETS")])


@pytest.fixture()
def result() -> dict:
    return evaluate([pred_doc()], [gold_doc()], schema=SCHEMA, n_boot=50, seed=0)


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ((2, 1, 1), (2 / 3, 2 / 3, 2 / 3)),
        ((1, 3, 0), (0.25, 1.0, 0.4)),
        ((3, 0, 0), (1.0, 1.0, 1.0)),
        ((0, 0, 3), (0.0, 0.0, 0.0)),  # gold, no predictions
        ((0, 2, 0), (0.0, 0.0, 0.0)),  # predictions, no gold
        ((0, 0, 0), (None, None, None)),  # neither: undefined
    ],
)
def test_evaluate_prf_pinned(counts: tuple[int, int, int], expected: tuple) -> None:
    scores = prf(*counts)
    got = (scores["precision"], scores["recall"], scores["f1"])
    if expected[0] is None:
        assert got == expected
    else:
        assert got == pytest.approx(expected)
    assert scores["support"] == counts[0] + counts[2]


@pytest.mark.parametrize(
    ("label", "tp", "fp", "fn", "f1"),
    [
        ("PERSON", 1, 1, 1, 0.5),
        ("GPE", 0, 0, 1, 0.0),
        ("LOC", 0, 1, 0, 0.0),  # a label with no gold
        ("DATE", 1, 0, 0, 1.0),  # the duplicate prediction counts once
        ("ORG", 0, 0, 1, 0.0),  # gold, no predictions
        ("EVENT", 0, 1, 0, 0.0),
        ("WEAPON", 0, 0, 0, None),  # neither gold nor predictions
    ],
)
def test_evaluate_exact_per_label(result: dict, label: str, tp: int, fp: int, fn: int, f1: float | None) -> None:
    s = result["views"]["entities.exact"]["per_label"][label]
    assert (s["tp"], s["fp"], s["fn"]) == (tp, fp, fn)
    assert s["f1"] == (pytest.approx(f1) if f1 is not None else None)


def test_evaluate_micro_and_macro_by_hand(result: dict) -> None:
    exact = result["views"]["entities.exact"]
    assert exact["micro"]["precision"] == pytest.approx(0.4)  # tp 2, fp 3
    assert exact["micro"]["recall"] == pytest.approx(0.4)  # tp 2, fn 3
    assert exact["micro"]["f1"] == pytest.approx(0.4)
    # macro over the 6 labels with gold or predictions: F1s 0.5, 0, 0, 1, 0, 0
    assert exact["macro"]["labels"] == 6
    assert exact["macro"]["f1"] == pytest.approx(1.5 / 6)
    assert exact["macro"]["precision"] == pytest.approx(1.5 / 6)


def test_evaluate_lenient_views(result: dict) -> None:
    overlap = result["views"]["entities.overlap"]
    assert overlap["per_label"]["PERSON"]["f1"] == pytest.approx(1.0)  # "Umerov in" overlaps "Umerov"
    assert overlap["micro"]["f1"] == pytest.approx(0.6)  # tp 3, fp 2, fn 2
    span_view = result["views"]["entities.span"]["micro"]
    assert (span_view["tp"], span_view["fp"], span_view["fn"]) == (3, 2, 2)  # Paris right span, wrong label


def test_evaluate_error_kinds_and_duplicates(result: dict) -> None:
    assert result["errors"] == {
        "wrong_label": 1,
        "boundary": 1,
        "boundary_and_label": 0,
        "missed": 1,
        "spurious": 1,
        "missed_relation": 1,
        "spurious_relation": 1,
    }
    assert result["duplicates"] == 1
    assert result["outside_gold_pairs"] == 1  # the predicted relation ends on "Umerov in"
    wrong = next(e for e in result["worst_errors"] if e["kind"] == "wrong_label")
    assert wrong["gold"]["label"] == "GPE" and wrong["pred"]["label"] == "LOC"
    assert wrong["context"] == "Macron met Umerov in [[Paris]] on Tuesday with NATO."


def test_evaluate_entity_confusion_with_none(result: dict) -> None:
    conf = result["confusion"]["entities"]
    assert conf["labels"] == ["PERSON", "GPE", "LOC", "ORG", "EVENT", "DATE", "none"]
    assert conf["matrix"] == [
        [1, 0, 0, 0, 0, 0, 1],  # Macron; Umerov missed by exact span
        [0, 0, 1, 0, 0, 0, 0],  # Paris GPE -> LOC
        [0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 1],  # NATO missed
        [0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 1, 0],
        [1, 0, 0, 0, 1, 0, 0],  # "Umerov in", "met" spurious
    ]


SYM_TEXT = "Defense Minister Umerov met Lecornu."


def sym_docs() -> tuple[LabelledDoc, LabelledDoc]:
    ents = [
        span(SYM_TEXT, "Defense Minister", "ROLE", "e1"),
        span(SYM_TEXT, "Umerov", "PERSON", "e2"),
        span(SYM_TEXT, "Lecornu", "PERSON", "e3"),
    ]
    gold = doc("s1", SYM_TEXT, ents, [Relation("r1", "e2", "e1", "HAS_ROLE"), Relation("r2", "e2", "e3", "MEETS")])
    # MEETS reversed (symmetric: right); HAS_ROLE reversed (directed: wrong)
    pred = doc("s1", SYM_TEXT, ents, [Relation("r1", "e1", "e2", "HAS_ROLE"), Relation("r2", "e3", "e2", "MEETS")])
    return gold, pred


@pytest.mark.parametrize(("schema", "meets_tp", "micro_f1"), [(SCHEMA, 1, 0.5), (None, 0, 0.0)])
def test_evaluate_symmetric_relation_reversed_counts(schema, meets_tp: int, micro_f1: float) -> None:
    gold, pred = sym_docs()
    out = evaluate([pred], [gold], schema=schema, n_boot=10)
    strict = out["views"]["relations.strict"]
    assert strict["per_label"]["MEETS"]["tp"] == meets_tp
    assert (strict["per_label"]["HAS_ROLE"]["fp"], strict["per_label"]["HAS_ROLE"]["fn"]) == (1, 1)
    assert strict["micro"]["f1"] == pytest.approx(micro_f1)


def test_evaluate_relation_confusion_over_gold_pairs() -> None:
    gold, pred = sym_docs()
    conf = evaluate([pred], [gold], schema=SCHEMA, n_boot=10)["confusion"]["relations"]
    assert conf["labels"] == ["HAS_ROLE", "MEETS", "none"]
    assert conf["matrix"] == [[0, 0, 1], [0, 1, 0], [1, 0, 0]]


def test_evaluate_relation_classification_ignores_entity_labels() -> None:
    gold, _ = sym_docs()
    pred = doc(
        "s1", SYM_TEXT, [Entity("a", 17, 23, "ORG"), Entity("b", 28, 35, "PERSON")], [Relation("r", "a", "b", "MEETS")]
    )
    out = evaluate([pred], [gold], schema=SCHEMA, n_boot=10)["views"]
    assert out["relations.strict"]["per_label"]["MEETS"]["tp"] == 0  # Umerov labelled ORG
    assert out["relations.classification"]["per_label"]["MEETS"]["tp"] == 1


def test_evaluate_overlap_matching_is_one_to_one() -> None:
    gold = {(0, 5, "PERSON"), (6, 10, "PERSON")}
    pred = {(0, 10, "PERSON")}
    assert overlap_pairs(gold, pred) == [((0, 5, "PERSON"), (0, 10, "PERSON"))]


def test_evaluate_empty_documents_and_missing_predictions() -> None:
    empty = doc("e", "", [])
    out = evaluate([empty], [empty], schema=SCHEMA, n_boot=10)
    assert out["documents"] == 1
    assert out["views"]["entities.exact"]["micro"]["f1"] is None
    assert out["views"]["entities.exact"]["macro"]["labels"] == 0
    nothing = evaluate([], [], schema=SCHEMA, n_boot=10)
    assert nothing["documents"] == 0 and nothing["views"]["entities.exact"]["ci"] == {}
    missing = evaluate([doc("x", "other", []), doc("e", "", [])], [gold_doc(), empty], schema=SCHEMA, n_boot=10)
    assert missing["missing_predictions"] == ["d1"]
    assert missing["unmatched_predictions"] == ["x"]
    micro = missing["views"]["entities.exact"]["micro"]
    assert (micro["tp"], micro["fn"], micro["precision"], micro["recall"]) == (0, 5, 0.0, 0.0)
    with pytest.raises(InputError, match="no predicted record id matches a gold record id"):
        evaluate([doc("x", "other", [])], [gold_doc()], schema=SCHEMA, n_boot=10)


def test_evaluate_rejects_different_texts_and_duplicate_gold() -> None:
    with pytest.raises(InputError, match="'d1': predicted and gold texts differ"):
        evaluate([doc("d1", "other text", [])], [gold_doc()])
    with pytest.raises(InputError, match="appears twice .*adjudicate"):
        evaluate([], [gold_doc(), gold_doc()])


def two_docs(n_right: int, n_wrong: int) -> tuple[list[LabelledDoc], list[LabelledDoc]]:
    """Documents with one PERSON each: predicted right in the first ``n_right``, missed in the rest."""
    gold = [doc(f"d{i}", "Macron", [Entity("e", 0, 6, "PERSON")]) for i in range(n_right + n_wrong)]
    pred = [
        doc(f"d{i}", "Macron", [Entity("e", 0, 6, "PERSON")] if i < n_right else []) for i in range(n_right + n_wrong)
    ]
    return pred, gold


def test_evaluate_bootstrap_deterministic_with_seed() -> None:
    pred, gold = two_docs(1, 1)
    first = evaluate(pred, gold, n_boot=1000, seed=7)["views"]["entities.exact"]["ci"]
    again = evaluate(pred, gold, n_boot=1000, seed=7)["views"]["entities.exact"]["ci"]
    assert first == again
    # resamples: {right, right} F1 1, {wrong, wrong} F1 0, mixed 2/3; each extreme has probability 1/4
    assert first["micro"]["f1"] == [0.0, 1.0]
    assert first["per_label"]["PERSON"]["f1"] == first["macro"]["f1"] == [0.0, 1.0]  # one label: the same
    assert first["micro"]["precision"] == [0.0, 1.0]  # {wrong, wrong} has no prediction: precision 0
    assert first["micro"]["recall"] == [0.0, 1.0]
    three = evaluate(*two_docs(3, 0), n_boot=100)["views"]["entities.exact"]["ci"]
    assert three["micro"]["f1"] == [1.0, 1.0]  # every resample is perfect
    weights = resample_weights(5, 20, seed=3)
    assert weights.shape == (20, 5) and (weights.sum(axis=1) == 5).all()
    assert (weights == resample_weights(5, 20, seed=3)).all()
    assert not (weights == resample_weights(5, 20, seed=4)).all()


def test_evaluate_compare_paired_bootstrap() -> None:
    pred, gold = two_docs(20, 0)
    perfect = public(evaluate(pred, gold, n_boot=200))
    none_right = public(evaluate(*two_docs(0, 20), n_boot=200))
    diff = compare(perfect, none_right)["views"]["entities.exact"]
    assert (diff["ours"], diff["theirs"], diff["delta"]) == (1.0, 0.0, 1.0)
    assert diff["delta_ci"] == [1.0, 1.0] and diff["noise"] is False and diff["shared_documents"] == 20
    assert diff["ratio"] is None and diff["ratio_ci"] == [float("inf"), float("inf")]  # theirs scores 0 everywhere
    same = compare(perfect, perfect)["views"]["entities.exact"]
    assert same["delta"] == 0.0 and same["noise"] is True
    assert same["ratio"] == 1.0 and same["ratio_ci"] == [1.0, 1.0]
    half = public(evaluate(*two_docs(10, 10), n_boot=200))
    ratio = compare(perfect, half)["views"]["entities.exact"]
    assert ratio["ratio"] == pytest.approx(1 / (2 / 3))  # half right: P 1, R 0.5, F1 2/3
    assert ratio["ratio_ci"][0] < 1.5 < ratio["ratio_ci"][1]
    no_docs = {k: v for k, v in perfect.items() if k != "per_doc"}
    assert compare(perfect, no_docs)["views"]["entities.exact"]["delta_ci"] is None


def test_evaluate_context_marks_span() -> None:
    text = "a" * 50 + "Paris" + "b" * 50
    assert context(text, 50, 55, width=3) == "…aaa[[Paris]]bbb…"
    assert context("in\nParis now", 3, 8) == "in [[Paris]] now"


def test_evaluate_write_outputs(tmp_path: Path, result: dict) -> None:
    written = write_outputs(result, tmp_path / "eval")
    assert sorted(Path(p).name for p in written.values()) == sorted(
        [
            "metrics.json",
            "report.md",
            "errors.jsonl",
            "confusion_entities.png",
            "confusion_relations.png",
            "f1_entities.png",
            "f1_relations.png",
        ]
    )
    for name in ("confusion_entities.png", "f1_entities.png"):
        assert (tmp_path / "eval" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (tmp_path / "eval" / "report.md").read_text(encoding="utf-8")
    assert "| PERSON | 0.500 | 0.500 | 0.500 |" in report
    assert "No gold and no predictions: ROLE, MILITARY_UNIT, AGREEMENT, WEAPON, MONEY." in report
    assert len((tmp_path / "eval" / "errors.jsonl").read_text(encoding="utf-8").splitlines()) == 6
    metrics = load_metrics(tmp_path / "eval" / "metrics.json")
    assert metrics["views"]["entities.exact"]["micro"]["f1"] == pytest.approx(0.4)
    assert "_all_errors" not in metrics
    assert "## Compared with the other run" in markdown_report(result, compare(result, metrics))


def test_evaluate_load_metrics_rejects_other_json(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"a": 1}', encoding="utf-8")
    with pytest.raises(InputError, match="not a metrics file"):
        load_metrics(path)


runner = CliRunner()


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    write_jsonl(tmp_path / "pred.jsonl", [pred_doc()])
    write_jsonl(tmp_path / "gold.jsonl", [gold_doc()])
    return tmp_path / "pred.jsonl", tmp_path / "gold.jsonl"


def test_evaluate_cli_writes_reports(tmp_path: Path, files: tuple[Path, Path]) -> None:
    pred, gold = files
    res = runner.invoke(
        app, ["evaluate", "--pred", str(pred), "--gold", str(gold), "--out", str(tmp_path / "ev"), "--bootstrap", "20"]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "ev" / "report.md").exists()
    res = runner.invoke(
        app,
        [
            "evaluate",
            "--pred",
            str(pred),
            "--gold",
            str(gold),
            "--json",
            "--bootstrap",
            "20",
            "--against",
            str(tmp_path / "ev" / "metrics.json"),
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["views"]["entities.exact"]["micro"]["f1"] == pytest.approx(0.4)
    assert data["comparison"]["views"]["entities.exact"]["delta"] == 0.0


@pytest.mark.parametrize("args", [["--pred", "p.jsonl"], [], ["m", "d", "--pred", "p", "--gold", "g"]])
def test_evaluate_cli_needs_one_input_form(args: list[str]) -> None:
    res = runner.invoke(app, ["evaluate", *args])
    assert res.exit_code != 0
    assert "give either MODEL DATA, or --pred and --gold" in res.output


def test_evaluate_cli_error_is_one_line(files: tuple[Path, Path], tmp_path: Path) -> None:
    pred, gold = files
    write_jsonl(tmp_path / "dup.jsonl", [gold_doc(), gold_doc()])
    res = runner.invoke(app, ["evaluate", "--pred", str(pred), "--gold", str(tmp_path / "dup.jsonl")])
    assert res.exit_code == 1
    assert "error:" in res.output and "appears twice" in res.output


def _pipeline_with_ruler_and_pair_relations(path: Path) -> None:
    """A real spaCy pipeline: an entity ruler that mislabels Macron as ORG (and finds nothing else), then a
    component relating the first two entities by MEETS, in the user-data format ``record_from_doc`` reads."""
    spacy = pytest.importorskip("spacy")
    from spacy.language import Language

    from annotate.docbin import RELATIONS_KEY

    if "test_first_pair_meets" not in Language.factories:

        @Language.component("test_first_pair_meets")
        def first_pair_meets(doc):  # noqa: ANN001, ANN202
            ents = list(doc.ents)
            if len(ents) >= 2:
                ends = [(e.start_char, e.end_char, e.label_) for e in ents[:2]]
                doc.user_data[RELATIONS_KEY] = [{"head": ends[0], "tail": ends[1], "label": "MEETS"}]
            return doc

    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "ORG", "pattern": "Macron"}])
    nlp.add_pipe("test_first_pair_meets")
    nlp.to_disk(path)


def test_evaluate_predict_given_gold_skips_entity_pipes(tmp_path: Path) -> None:
    from annotate.evaluate import predict_given_gold
    from annotate.predict import load_model

    _pipeline_with_ruler_and_pair_relations(tmp_path / "model")
    nlp = load_model(tmp_path / "model")
    (record,) = predict_given_gold(nlp, [gold_doc()])
    assert [(record.text[e.start : e.end], e.label) for e in record.entities][:2] == [
        ("Macron", "PERSON"),
        ("Umerov", "PERSON"),
    ]
    assert [(r.head, r.tail, r.label) for r in record.relations] == [("e1", "e2", "MEETS")]


def test_evaluate_cli_model_form_scores_both_passes(tmp_path: Path, files: tuple[Path, Path]) -> None:
    _pipeline_with_ruler_and_pair_relations(tmp_path / "model")
    _, gold = files
    res = runner.invoke(app, ["evaluate", str(tmp_path / "model"), str(gold), "--json", "--bootstrap", "10"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    entities = data["views"]["entities.exact"]["micro"]
    assert (entities["tp"], entities["fp"], entities["fn"]) == (0, 1, 5)  # only "Macron" as ORG
    assert data["views"]["relations.strict"]["micro"]["tp"] == 0  # end to end: one entity, no pair
    assert data["views"]["relations.classification"]["micro"]["tp"] == 1  # over gold entities: MEETS found
    assert data["classification_source"] == "predicted over gold entities"


def test_reports_view_rows_pins_label_micro_and_macro_rows():
    from annotate.reports import view_rows

    view = {
        "per_label": {
            "GPE": {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1, "tp": 1, "fp": 1, "fn": 0},
            "ROLE": {"precision": None, "recall": None, "f1": None, "support": 0, "tp": 0, "fp": 0, "fn": 0},
        },
        "micro": {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1, "tp": 1, "fp": 1, "fn": 0},
        "macro": {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "labels": ["GPE"]},
        "ci": {"per_label": {"GPE": {"f1": [0.0, 1.0]}}, "micro": {"f1": [0.25, 0.75]}},
    }
    assert view_rows(view) == [
        ["GPE", "0.500", "1.000", "0.667", "[0.000, 1.000]", "1", "1", "1", "0"],
        ["micro", "0.500", "1.000", "0.667", "[0.250, 0.750]", "1", "1", "1", "0"],
        ["macro", "0.500", "1.000", "0.667", "—", "", "", "", ""],
    ]
