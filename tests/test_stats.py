"""Corpus statistics pinned by hand on a few records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from annotate.cli import app
from annotate.records import Entity, LabelledDoc, Relation, write_jsonl
from annotate.stats import corpus_stats, span_tokens, stats_rows

TRAIN = "French President Emmanuel Macron met NATO."  # 7 tokens (the full stop is one)
DEV = "Paris hosted the summit"  # 4 tokens


def ent(text: str, piece: str, label: str, eid: str) -> Entity:
    start = text.index(piece)
    return Entity(eid, start, start + len(piece), label)


def records() -> list[LabelledDoc]:
    train_ents = [
        ent(TRAIN, "French", "GPE", "e1"),
        ent(TRAIN, "President", "ROLE", "e2"),
        ent(TRAIN, "Emmanuel Macron", "PERSON", "e3"),
    ]
    return [
        LabelledDoc(
            id="t1",
            text=TRAIN,
            meta={"split": "train"},
            entities=train_ents,
            relations=[Relation("r1", "e3", "e2", "HAS_ROLE"), Relation("r2", "e2", "e1", "ROLE_IN")],
            annotator="alice",
            status="confirmed",
        ),
        LabelledDoc(
            id="t1",
            text=TRAIN,
            meta={"split": "train"},
            entities=[ent(TRAIN, "Emmanuel Macron", "PERSON", "e1")],
            annotator="bob",
        ),
        LabelledDoc(
            id="v1",
            text=DEV,
            meta={"split": "dev"},
            entities=[ent(DEV, "Paris", "GPE", "e1"), ent(DEV, "the summit", "EVENT", "e2")],
            annotator="alice",
            status="confirmed",
        ),
        LabelledDoc(id="u1", text="", annotator=None),  # empty, no split, no annotator
    ]


@pytest.fixture()
def stats() -> dict:
    return corpus_stats(records())


def test_stats_totals_and_splits(stats: dict) -> None:
    assert (stats["records"], stats["documents"], stats["tokens"], stats["entities"], stats["relations"]) == (
        4,
        3,
        11,
        6,
        2,
    )
    assert stats["splits"]["train"] | {"entities_per_label": None, "relations_per_label": None} == {
        "records": 2,
        "documents": 1,
        "tokens": 7,
        "entities": 4,
        "relations": 2,
        "entities_per_label": None,
        "relations_per_label": None,
    }
    assert stats["splits"]["dev"]["tokens"] == 4
    assert stats["splits"]["unsplit"]["documents"] == 1 and stats["splits"]["unsplit"]["tokens"] == 0
    assert stats["splits"]["train"]["entities_per_label"] == {"GPE": 1, "ROLE": 1, "PERSON": 2, "EVENT": 0}
    assert stats["entities_per_label"] == {"GPE": 2, "ROLE": 1, "PERSON": 2, "EVENT": 1}
    assert stats["relations_per_label"] == {"HAS_ROLE": 1, "ROLE_IN": 1}


def test_stats_span_lengths(stats: dict) -> None:
    assert stats["span_length_chars"]["PERSON"] == {"count": 2, "min": 15, "max": 15, "mean": 15.0, "median": 15.0}
    assert stats["span_length_tokens"]["PERSON"]["median"] == 2.0
    assert stats["span_length_chars"]["GPE"] == {"count": 2, "min": 5, "max": 6, "mean": 5.5, "median": 5.5}
    assert stats["span_length_tokens"]["EVENT"] == {"count": 1, "min": 2, "max": 2, "mean": 2.0, "median": 2.0}


def test_stats_cooccurrence_and_annotators(stats: dict) -> None:
    cooc = stats["cooccurrence"]
    assert cooc["GPE"]["GPE"] == 2 and cooc["PERSON"]["PERSON"] == 2
    assert cooc["GPE"]["ROLE"] == cooc["ROLE"]["GPE"] == 1
    assert cooc["GPE"]["EVENT"] == 1 and cooc["PERSON"]["EVENT"] == 0
    assert stats["annotators"] == {
        "(none)": {"records": 1, "status": {"(none)": 1}, "entities": 0, "relations": 0, "coverage": 1 / 3},
        "alice": {"records": 2, "status": {"confirmed": 2}, "entities": 5, "relations": 2, "coverage": 2 / 3},
        "bob": {"records": 1, "status": {"(none)": 1}, "entities": 1, "relations": 0, "coverage": 1 / 3},
    }


@pytest.mark.parametrize(("start", "end", "expected"), [(0, 6, 1), (0, 7, 1), (0, 8, 2), (7, 32, 3), (6, 7, 0)])
def test_stats_span_tokens(start: int, end: int, expected: int) -> None:
    # tokens of TRAIN: French [0,6) President [7,16) Emmanuel [17,25) Macron [26,32) ...
    starts, ends = [0, 7, 17, 26, 33, 37, 41], [6, 16, 25, 32, 36, 41, 42]
    assert span_tokens(starts, ends, start, end) == expected


def test_stats_empty_input() -> None:
    out = corpus_stats([])
    assert (out["records"], out["documents"], out["entities"], out["splits"]) == (0, 0, 0, {})


def test_stats_rows_show_labels(stats: dict) -> None:
    rows = stats_rows(stats)
    assert rows[0] == ["total", "all", "4", "3", "11", "6", "2", ""]
    assert ["entity", "PERSON", "", "", "", "2", "", "2"] in rows


def test_stats_cli(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "labelled.jsonl", records())
    res = CliRunner().invoke(app, ["stats", str(tmp_path), "--json", "--out", str(tmp_path / "stats.json")])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["tokens"] == 11
    assert json.loads((tmp_path / "stats.json").read_text(encoding="utf-8"))["documents"] == 3
    res = CliRunner().invoke(app, ["stats", str(tmp_path / "labelled.jsonl")])
    assert res.exit_code == 0 and "PERSON" in res.output
