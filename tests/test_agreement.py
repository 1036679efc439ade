"""Inter-annotator agreement pinned against values computed by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from annotate.agreement import agreement, kappa, nominal_alpha, token_labels, tokens
from annotate.cli import app
from annotate.errors import InputError
from annotate.records import Entity, LabelledDoc, Relation, write_jsonl
from annotate.schema import load_schema

SCHEMA = load_schema()
TEXT = "Macron met Umerov in Paris."  # tokens: Macron met Umerov in Paris .


def ent(text: str, piece: str, label: str, eid: str) -> Entity:
    start = text.index(piece)
    return Entity(eid, start, start + len(piece), label)


def version(
    annotator: str,
    ents: list[tuple[str, str]],
    rels: list[tuple[int, int, str]] = (),
    *,
    doc_id: str = "d1",
    text: str = TEXT,
) -> LabelledDoc:
    entities = [ent(text, piece, label, f"e{i}") for i, (piece, label) in enumerate(ents)]
    relations = [Relation(f"r{i}", f"e{h}", f"e{t}", label) for i, (h, t, label) in enumerate(rels)]
    return LabelledDoc(id=doc_id, text=text, entities=entities, relations=relations, annotator=annotator)


ALICE = [("Macron", "PERSON"), ("Umerov", "PERSON"), ("Paris", "GPE")]


def test_agreement_tokens_and_token_labels() -> None:
    doc = version("alice", [("Macron", "PERSON"), ("Umerov in", "PERSON"), ("Paris", "LOC")])
    assert [TEXT[s:e] for s, e in tokens(TEXT)] == ["Macron", "met", "Umerov", "in", "Paris", "."]
    assert token_labels(doc) == ["PERSON", "O", "PERSON", "PERSON", "LOC", "O"]
    nested = LabelledDoc(id="n", text="NATO summit", entities=[Entity("a", 0, 4, "ORG"), Entity("b", 0, 11, "EVENT")])
    assert token_labels(nested) == ["EVENT", "EVENT"]  # the longest span wins


def test_agreement_identical_annotators_is_one() -> None:
    docs = [version(name, ALICE, [(0, 1, "MEETS")]) for name in ("alice", "bob", "carol")]
    out = agreement(docs, schema=SCHEMA)
    assert len(out["pairs"]) == 3
    for pair in out["pairs"]:
        assert pair["documents"] == 1 and pair["tokens"] == 6
        assert pair["entities.exact"]["micro"]["f1"] == 1.0
        assert pair["entities.overlap"]["micro"]["f1"] == 1.0
        assert pair["relations.strict"]["micro"]["f1"] == 1.0
        assert pair["kappa"]["overall"] == 1.0
        assert pair["kappa"]["per_label"]["PERSON"] == 1.0
        assert pair["kappa"]["per_label"]["WEAPON"] is None  # nobody used it: undefined, not 1.0
    assert out["alpha"]["overall"] == pytest.approx(1.0)
    assert out["alpha"]["documents"] == 1


def test_agreement_complete_disagreement() -> None:
    text = "Macron visited Paris"
    out = agreement(
        [version("alice", [("Macron", "PERSON")], text=text), version("bob", [("Paris", "GPE")], text=text)]
    )
    pair = out["pairs"][0]
    assert pair["entities.exact"]["micro"]["f1"] == 0.0
    assert pair["entities.overlap"]["micro"]["f1"] == 0.0
    # tokens: alice [PERSON, O, O], bob [O, O, GPE]: po 1/3, pe (2/3)(2/3) = 4/9, kappa (1/3-4/9)/(5/9) = -0.2
    assert pair["kappa"]["overall"] == pytest.approx(-0.2)
    # PERSON, binary: alice [1, 0, 0], bob [0, 0, 0]: po 2/3, pe 2/3, kappa 0
    assert pair["kappa"]["per_label"]["PERSON"] == pytest.approx(0.0)
    assert out["alpha"]["documents"] == 0 and out["alpha"]["overall"] is None


def test_agreement_known_mixed_case() -> None:
    bob = [("Macron", "PERSON"), ("Umerov in", "PERSON"), ("Paris", "LOC")]
    pair = agreement([version("alice", ALICE), version("bob", bob)])["pairs"][0]
    exact = pair["entities.exact"]
    assert exact["per_label"]["PERSON"] == {"f1": 0.5, "matched": 1, "a": 2, "b": 2}
    assert exact["per_label"]["GPE"]["f1"] == 0.0 and exact["per_label"]["LOC"]["f1"] == 0.0
    assert exact["micro"]["f1"] == pytest.approx(1 / 3)  # 2 * 1 / (3 + 3)
    assert pair["entities.overlap"]["per_label"]["PERSON"]["f1"] == 1.0
    assert pair["entities.overlap"]["micro"]["f1"] == pytest.approx(2 / 3)
    # tokens: alice [P, O, P, O, GPE, O], bob [P, O, P, P, LOC, O]: po 4/6, pe 2/6*3/6 + 3/6*2/6 = 1/3, kappa 0.5
    assert pair["kappa"]["overall"] == pytest.approx(0.5)
    # PERSON, binary: [1,0,1,0,0,0] vs [1,0,1,1,0,0]: po 5/6, pe 1/2, kappa 2/3
    assert pair["kappa"]["per_label"]["PERSON"] == pytest.approx(2 / 3)


def test_agreement_symmetric_relation_agrees_either_way() -> None:
    alice = version("alice", ALICE, [(0, 1, "MEETS")])
    bob = version("bob", ALICE, [(1, 0, "MEETS")])
    assert agreement([alice, bob], schema=SCHEMA)["pairs"][0]["relations.strict"]["micro"]["f1"] == 1.0
    assert agreement([alice, bob])["pairs"][0]["relations.strict"]["micro"]["f1"] == 0.0  # no schema: directed


def test_agreement_only_shared_documents_count() -> None:
    docs = [
        version("alice", ALICE),
        version("bob", ALICE),
        version("alice", [("Paris", "GPE")], doc_id="d2"),
        version("carol", [], doc_id="d2"),
    ]
    out = agreement(docs)
    pairs = {tuple(p["annotators"]): p for p in out["pairs"]}
    assert set(pairs) == {("alice", "bob"), ("alice", "carol")}  # bob and carol share nothing
    assert pairs[("alice", "bob")]["documents"] == 1
    assert pairs[("alice", "carol")]["entities.exact"]["micro"] == {"f1": 0.0, "matched": 0, "a": 1, "b": 0}
    assert out["documents_by_annotator_count"] == {"2": 2}
    assert out["annotators"] == {"alice": 2, "bob": 1, "carol": 1}
    assert out["overall"]["entities.exact"]["micro"]["matched"] == 3


def test_agreement_alpha_three_annotators_by_hand() -> None:
    text = "Macron met Umerov"
    docs = [
        version("a", [("Macron", "PERSON"), ("Umerov", "PERSON")], text=text),
        version("b", [("Macron", "PERSON")], text=text),
        version("c", [("Macron", "PERSON"), ("Umerov", "PERSON")], text=text),
        version("a", [("Macron", "PERSON")], doc_id="two-only", text=text),  # two annotators: not in alpha
        version("b", [], doc_id="two-only", text=text),
    ]
    # units {P,P,P}, {O,O,O}, {P,O,P}: o_PP 4, o_OO 3, o_PO = o_OP 1; n_P 5, n_O 4, n 9
    # alpha = 1 - (9 - 1) * 2 / (2 * 5 * 4) = 0.6
    alpha = agreement(docs)["alpha"]
    assert alpha["documents"] == 1 and alpha["units"] == 3 and alpha["annotators"] == ["a", "b", "c"]
    assert alpha["overall"] == pytest.approx(0.6)
    assert alpha["per_label"]["PERSON"] == pytest.approx(0.6)  # binary here has the same values


def test_agreement_nominal_alpha_by_hand() -> None:
    # o_00 4, o_11 5, o_01 = o_10 1; n_0 5, n_1 6, n 11: alpha = 1 - 10 * 2 / 60 = 2/3
    units = [[0, 0, 0], [1, 1, 1], [0, 1, 0], [1, 1], [0]]
    assert nominal_alpha(units) == pytest.approx(2 / 3)
    assert nominal_alpha([[1, 1], [1, 1, 1]]) is None  # one value everywhere: undefined


def test_agreement_own_alpha_matches_krippendorff_package() -> None:
    krippendorff = pytest.importorskip("krippendorff")
    np = pytest.importorskip("numpy")
    data = np.array([[0, 1, 0, np.nan, 2, 2], [0, 1, 1, 1, 2, 0], [0, 1, 0, 1, np.nan, 2]])
    units = [[int(v) for v in col if not np.isnan(v)] for col in data.T]
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert nominal_alpha(units) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("a", "b", "expected"), [([], [], None), (["O", "O"], ["O", "O"], None), (["A", "O"], ["A", "O"], 1.0)]
)
def test_agreement_kappa_undefined_cases(a: list[str], b: list[str], expected: float | None) -> None:
    assert kappa(a, b) == expected


@pytest.mark.parametrize(
    ("docs", "message"),
    [
        ([version("", ALICE)], "has no annotator"),
        ([version("alice", ALICE), version("alice", ALICE)], "appears twice for annotator 'alice'"),
        ([version("alice", ALICE), version("bob", [], text=TEXT + " Later.")], "labelled different texts"),
    ],
)
def test_agreement_rejects_bad_input(docs: list[LabelledDoc], message: str) -> None:
    with pytest.raises(InputError, match=message):
        agreement(docs)


runner = CliRunner()


def test_agreement_cli_reads_corpus_folder(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "labelled.jsonl", [version("alice", ALICE), version("bob", ALICE)])
    res = runner.invoke(app, ["agreement", str(tmp_path), "--json", "--out", str(tmp_path / "agreement.json")])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["pairs"][0]["kappa"]["overall"] == 1.0
    assert json.loads((tmp_path / "agreement.json").read_text(encoding="utf-8"))["documents"] == 1
    res = runner.invoke(app, ["agreement", str(tmp_path / "labelled.jsonl")])
    assert res.exit_code == 0 and "alice / bob" in res.output


def test_agreement_cli_folder_without_labels(tmp_path: Path) -> None:
    res = runner.invoke(app, ["agreement", str(tmp_path)])
    assert res.exit_code == 1
    assert "no labelled.jsonl" in res.output


def test_agreement_alpha_without_the_package_uses_own(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "krippendorff", None)  # import now raises ImportError
    text = "Macron met Umerov"
    docs = [
        version("a", [("Macron", "PERSON"), ("Umerov", "PERSON")], text=text),
        version("b", [("Macron", "PERSON")], text=text),
        version("c", [("Macron", "PERSON"), ("Umerov", "PERSON")], text=text),
    ]
    alpha = agreement(docs)["alpha"]
    assert alpha["implementation"] == "annotate.agreement.nominal_alpha"
    assert alpha["overall"] == pytest.approx(0.6)


def test_agreement_relations_by_shared_span_are_symmetric() -> None:
    # alice relates Macron to Umerov and to Paris; bob never marked Paris, and relates Macron to Umerov
    alice = version("alice", ALICE, [(0, 1, "MEETS"), (0, 2, "AFFILIATED_WITH")])
    bob = version("bob", [("Macron", "PERSON"), ("Umerov", "PERSON")], [(0, 1, "MEETS")])
    one = agreement([alice, bob], schema=SCHEMA)["pairs"][0]
    other = agreement([version("zed", ALICE, [(0, 1, "MEETS"), (0, 2, "AFFILIATED_WITH")]), bob], schema=SCHEMA)[
        "pairs"
    ][0]
    assert one["relations.strict"]["micro"] == {"f1": pytest.approx(2 / 3), "matched": 1, "a": 2, "b": 1}
    assert one["relations.classification"]["micro"] == {"f1": 1.0, "matched": 1, "a": 1, "b": 1}
    assert other["annotators"] == ["bob", "zed"]  # the same pair the other way round
    assert other["relations.classification"]["micro"]["f1"] == 1.0


def test_agreement_confirmed_only_leaves_out_unfinished_records() -> None:
    alice = version("alice", ALICE)
    alice.status = "confirmed"
    bob = version("bob", [])  # not confirmed: bob has not labelled it yet
    assert agreement([alice, bob])["pairs"][0]["entities.exact"]["micro"]["f1"] == 0.0
    out = agreement([alice, bob], confirmed_only=True)
    assert out["pairs"] == [] and out["skipped_unconfirmed"] == 1 and out["annotators"] == {"alice": 1}
