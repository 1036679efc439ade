"""Adjudication: majority vote, tie-break, named annotator, review list and review tasks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from annotate.adjudicate import adjudicate, priority, review_tasks
from annotate.cli import app
from annotate.errors import InputError
from annotate.records import Entity, LabelledDoc, Relation, read_docs, write_jsonl
from annotate.schema import load_schema

SCHEMA = load_schema()
TEXT = "Macron met Umerov in Paris."


def ent(piece: str, label: str, eid: str) -> Entity:
    start = TEXT.index(piece)
    return Entity(eid, start, start + len(piece), label)


def version(
    annotator: str, ents: list[tuple[str, str]], rels: list[tuple[int, int, str]] = (), doc_id: str = "d1"
) -> LabelledDoc:
    entities = [ent(piece, label, f"{annotator}{i}") for i, (piece, label) in enumerate(ents)]
    relations = [Relation(f"r{i}", f"{annotator}{h}", f"{annotator}{t}", label) for i, (h, t, label) in enumerate(rels)]
    return LabelledDoc(
        id=doc_id,
        text=TEXT,
        meta={"source": "s"},
        entities=entities,
        relations=relations,
        annotator=annotator,
        status="confirmed",
    )


def spans(doc: LabelledDoc) -> list[tuple[str, str]]:
    return [(doc.text[e.start : e.end], e.label) for e in doc.entities]


def three_annotators() -> list[LabelledDoc]:
    return [
        version("alice", [("Macron", "PERSON"), ("Umerov", "PERSON"), ("Paris", "GPE")], [(0, 1, "MEETS")]),
        version("bob", [("Macron", "PERSON"), ("Umerov", "PERSON"), ("Paris", "LOC")], [(1, 0, "MEETS")]),
        version("carol", [("Macron", "PERSON"), ("Paris", "GPE")]),
    ]


def test_adjudicate_majority_of_three() -> None:
    result = adjudicate(three_annotators(), schema=SCHEMA)
    (gold,) = result.docs
    assert spans(gold) == [("Macron", "PERSON"), ("Umerov", "PERSON"), ("Paris", "GPE")]
    assert [(r.head, r.tail, r.label) for r in gold.relations] == [("e1", "e2", "MEETS")]  # reversed MEETS: same vote
    assert [e.id for e in gold.entities] == ["e1", "e2", "e3"]
    assert (gold.annotator, gold.status) == ("adjudicated", "confirmed")
    assert gold.meta == {"source": "s", "adjudicated_from": ["alice", "bob", "carol"]}
    disputed = {(item["kind"], item.get("text"), item["label"]): item for item in result.review}
    assert set(disputed) == {
        ("entity", "Umerov", "PERSON"),
        ("entity", "Paris", "GPE"),
        ("entity", "Paris", "LOC"),
        ("relation", None, "MEETS"),
    }
    loc = disputed[("entity", "Paris", "LOC")]
    assert (loc["decision"], loc["reason"], loc["marked_by"], loc["not_marked_by"]) == (
        "dropped",
        "minority 1/3",
        ["bob"],
        ["alice", "carol"],
    )
    assert disputed[("entity", "Umerov", "PERSON")]["reason"] == "majority 2/3"
    assert result.summary()["disputed_dropped"] == 1


@pytest.mark.parametrize(
    ("prefer", "expected"),
    [((), [("Macron", "PERSON"), ("Paris", "GPE")]), (("bob",), [("Macron", "PERSON"), ("Paris", "LOC")])],
)
def test_adjudicate_tie_goes_to_first_priority_annotator(prefer: tuple[str, ...], expected: list) -> None:
    docs = [
        version("alice", [("Macron", "PERSON"), ("Paris", "GPE")]),
        version("bob", [("Macron", "PERSON"), ("Paris", "LOC")]),
    ]
    result = adjudicate(docs, prefer=prefer)
    assert spans(result.docs[0]) == expected
    decider = (prefer or ("alice",))[0]
    assert {item["reason"] for item in result.review} == {f"tie 1/2, {decider} decides"}


def test_adjudicate_relation_dropped_with_its_entity() -> None:
    docs = [
        version("alice", [("Macron", "PERSON"), ("Umerov in", "PERSON")], [(0, 1, "MEETS")]),
        version("bob", [("Macron", "PERSON"), ("Umerov", "PERSON")], [(0, 1, "MEETS")]),
        version("carol", [("Macron", "PERSON"), ("Umerov", "PERSON")], [(0, 1, "MEETS")]),
    ]
    gold = adjudicate(docs).docs[0]
    assert spans(gold) == [("Macron", "PERSON"), ("Umerov", "PERSON")]
    assert len(gold.relations) == 1  # the 2/3 relation on "Umerov" survives; alice's on "Umerov in" does not
    tie = [
        version("alice", [("Macron", "PERSON"), ("Umerov in", "PERSON")], [(0, 1, "MEETS")]),
        version("bob", [("Macron", "PERSON"), ("Umerov", "PERSON")], [(0, 1, "MEETS")]),
    ]
    result = adjudicate(tie, prefer=["bob"])
    assert spans(result.docs[0]) == [("Macron", "PERSON"), ("Umerov", "PERSON")]
    reasons = sorted(i["reason"] for i in result.review if i["kind"] == "relation")
    assert reasons == ["tie 1/2, bob decides", "tie 1/2, bob decides"]


def test_adjudicate_named_annotator_wins_with_fallback() -> None:
    docs = three_annotators() + [
        version("alice", [("Paris", "GPE")], doc_id="d2"),
        version("bob", [("Paris", "GPE")], doc_id="d2"),
    ]
    result = adjudicate(docs, strategy="annotator", annotator="carol")
    assert spans(result.docs[0]) == [("Macron", "PERSON"), ("Paris", "GPE")]
    assert result.docs[0].relations == []
    assert {item["reason"] for item in result.review if item["doc_id"] == "d1"} == {"carol wins"}
    assert result.fallback == 1 and spans(result.docs[1]) == [("Paris", "GPE")]


def test_adjudicate_single_annotator_copied() -> None:
    result = adjudicate([version("alice", [("Paris", "GPE")])])
    assert spans(result.docs[0]) == [("Paris", "GPE")] and result.review == [] and result.single_annotator == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "vote"}, "unknown adjudication strategy 'vote'"),
        ({"strategy": "annotator"}, "needs the name of the annotator"),
        ({"strategy": "annotator", "annotator": "dave"}, "'dave' labelled no document .*alice, bob, carol"),
    ],
)
def test_adjudicate_rejects_bad_options(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        adjudicate(three_annotators(), **kwargs)


def test_adjudicate_priority_order() -> None:
    assert priority(["carol", "alice", "bob"], ["carol", "zed"]) == ["carol", "alice", "bob"]


def test_adjudicate_review_tasks_for_disputed_documents() -> None:
    docs = three_annotators() + [
        version("alice", [("Paris", "GPE")], doc_id="d2"),
        version("bob", [("Paris", "GPE")], doc_id="d2"),
    ]
    rows = review_tasks(adjudicate(docs, schema=SCHEMA))
    assert len(rows) == 1  # d2: both agree, nothing to review
    row = rows[0]
    assert row["meta"]["record_id"] == "d1"
    assert "LOC 'Paris' [21:26] dropped (minority 1/3): marked by bob; not by alice, carol" in row["meta"]["review"]
    assert [e["label"] for e in row["entities"]] == ["PERSON", "PERSON", "GPE"]


runner = CliRunner()


def test_adjudicate_cli_writes_gold_review_and_tasks(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "labelled.jsonl", three_annotators())
    out = tmp_path / "gold.jsonl"
    res = runner.invoke(
        app, ["adjudicate", str(tmp_path), "--out", str(out), "--review-tasks", str(tmp_path / "tasks.jsonl"), "--json"]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert (summary["documents"], summary["disputed"], summary["review_task_count"]) == (1, 4, 1)
    assert [d.annotator for d in read_docs(out)] == ["adjudicated"]
    assert len((tmp_path / "gold.review.jsonl").read_text(encoding="utf-8").splitlines()) == 4


def test_adjudicate_cli_refuses_to_overwrite_input(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "labelled.jsonl", three_annotators())
    res = runner.invoke(app, ["adjudicate", str(tmp_path), "--out", str(tmp_path / "labelled.jsonl")])
    assert res.exit_code == 1
    assert "refusing to overwrite" in res.output


def test_adjudicate_confirmed_only() -> None:
    docs = three_annotators()
    docs[2].status = "unconfirmed"  # carol's version takes no part
    result = adjudicate(docs, confirmed_only=True)
    assert result.summary()["skipped_unconfirmed"] == 1
    assert result.docs[0].meta["adjudicated_from"] == ["alice", "bob"]
    # alice and bob tie on Paris (GPE vs LOC); alice decides
    assert spans(result.docs[0]) == [("Macron", "PERSON"), ("Umerov", "PERSON"), ("Paris", "GPE")]
