"""Bad input across the record-reading commands: one clear line, a non-zero exit, earlier outputs intact.

Each case writes a records file with one defect, runs a command over it with an earlier output already in
place, and checks the exit code, that the message names the file and the defect, and that the earlier output
is byte for byte what it was.
"""

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from annotate.cli import app

GOOD = {"id": "d1", "text": "Macron met Scholz in Paris.", "meta": {"article_id": "a1"},
        "entities": [{"id": "e1", "start": 0, "end": 6, "label": "PERSON"},
                     {"id": "e2", "start": 11, "end": 17, "label": "PERSON"},
                     {"id": "e3", "start": 21, "end": 26, "label": "GPE"}],
        "relations": [{"id": "r1", "head": "e1", "tail": "e2", "label": "MEETS"}],
        "annotator": "alice", "status": "confirmed"}


def _with(**changes):
    return {**json.loads(json.dumps(GOOD)), **changes}


def _entity(start, end, label="PERSON"):
    return _with(entities=[{"id": "e1", "start": start, "end": end, "label": label}], relations=[])


DEFECTS = {
    "negative offset": (_entity(-5, 3), "offsets out of range"),
    "offset past the end": (_entity(123, 99999), "offsets out of range"),
    "unknown label": (_entity(0, 6, "PLANET"), "unknown entity label 'PLANET'"),
    "relation to a missing entity": (_with(relations=[{"id": "r1", "head": "e1", "tail": "e9", "label": "MEETS"}]),
                                     "missing entity id"),
    "relation type the schema lacks": (_with(relations=[{"id": "r1", "head": "e1", "tail": "e2", "label": "LOVES"}]),
                                       "unknown relation type 'LOVES'"),
    "relation ends the schema forbids": (_with(relations=[{"id": "r1", "head": "e3", "tail": "e1", "label": "HAS_ROLE"}]),
                                         "HAS_ROLE does not allow GPE -> PERSON"),
}


def _commands(records: Path, tmp: Path) -> dict[str, tuple[list[str], Path]]:
    """command -> (argv, the output file it would write)."""
    return {
        "adjudicate": (["adjudicate", str(records), "--out", str(tmp / "gold.jsonl")], tmp / "gold.jsonl"),
        "docbin": (["docbin", str(records), "--out", str(tmp / "bins")], tmp / "bins" / "train.spacy"),
        "stats": (["stats", str(records), "--out", str(tmp / "stats.json")], tmp / "stats.json"),
        "agreement": (["agreement", str(records), "--out", str(tmp / "agreement.json")], tmp / "agreement.json"),
        "evaluate": (["evaluate", "--pred", str(records), "--gold", str(records), "--out", str(tmp / "eval"),
                      "--bootstrap", "10"], tmp / "eval" / "metrics.json"),
    }


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("command", ["adjudicate", "docbin", "stats", "agreement", "evaluate"])
@pytest.mark.parametrize("defect", list(DEFECTS))
def test_invalid_record_stops_command_and_keeps_earlier_output(tmp_path, command, defect):
    record, message = DEFECTS[defect]
    bad = _write(tmp_path / "bad.jsonl", [GOOD | {"id": "d0"}, record])
    argv, output = _commands(bad, tmp_path)[command]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(b"earlier output\n")
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 1, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("error: ") and "bad.jsonl" in last and message in last
    assert "--skip-invalid" in last
    assert output.read_bytes() == b"earlier output\n"


@pytest.mark.parametrize("command", ["adjudicate", "docbin", "stats", "agreement"])
def test_skip_invalid_goes_on_and_counts(tmp_path, command):
    bad = _write(tmp_path / "bad.jsonl", [GOOD, _entity(-5, 3) | {"id": "d2"}, _entity(0, 6, "PLANET") | {"id": "d3"}])
    argv, _ = _commands(bad, tmp_path)[command]
    result = CliRunner().invoke(app, [*argv, "--skip-invalid", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["skipped_invalid"] == 2
    assert "d2" in summary["skipped_examples"][0]


@pytest.mark.parametrize("command", ["adjudicate", "stats", "agreement", "docbin"])
def test_duplicate_record_for_one_annotator_is_refused(tmp_path, command):
    bad = _write(tmp_path / "dup.jsonl", [GOOD, GOOD])
    argv, _ = _commands(bad, tmp_path)[command]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 1
    assert "record id 'd1' appears twice for annotator 'alice'" in result.output


def test_validate_reports_duplicate_record_ids(tmp_path):
    bad = _write(tmp_path / "dup.jsonl", [GOOD, GOOD])
    result = CliRunner().invoke(app, ["validate", str(bad)])
    assert result.exit_code == 1
    assert "appears twice" in result.output


@pytest.mark.parametrize("argv, message", [
    (["docbin", "{good}", "--out", "{tmp}/b", "--misaligned", "foo"], "'foo' is not one of"),
    (["docbin", "{good}", "--out", "{tmp}/b", "--overlap", "bar"], "'bar' is not one of"),
    (["docbin", "{good}", "--out", "{tmp}/b", "--ratios", "nan,1,1"], "finite, non-negative"),
    (["docbin", "{good}", "--out", "{tmp}/b", "--ratios", "0,0,0"], "positive sum"),
    (["docbin", "{good}", "--out", "{tmp}/b", "--ratios", "-1,1,1"], "non-negative"),
    (["evaluate", "--pred", "{good}", "--gold", "{good}", "--seed", "-1"], "-1 is not in the range x>=0"),
    (["stats", "{good}", "--out", "{tmp}"], "is a folder; give a file name"),
    (["adjudicate", "{good}", "--out", "{tmp}"], "is a folder; give a file name"),
])
def test_bad_options_are_rejected_without_a_traceback(tmp_path, argv, message):
    good = _write(tmp_path / "good.jsonl", [GOOD])
    result = CliRunner().invoke(app, [a.format(good=good, tmp=tmp_path) for a in argv])
    assert result.exit_code in (1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert message in " ".join(re.sub("[│╭╮╰╯─]", " ", result.output).split())  # typer boxes and wraps the text


def test_evaluate_with_no_matching_ids_says_so(tmp_path):
    gold = _write(tmp_path / "gold.jsonl", [GOOD])
    pred = _write(tmp_path / "pred.jsonl", [GOOD | {"id": "other"}])
    result = CliRunner().invoke(app, ["evaluate", "--pred", str(pred), "--gold", str(gold)])
    assert result.exit_code == 1
    assert "no predicted record id matches a gold record id" in result.output
