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
    (["stats", "{good}", "--out", "{tmp}"], "is a folder, not a file"),
    (["adjudicate", "{good}", "--out", "{tmp}"], "is a folder, not a file"),
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


# ------------------------------------------------------------------ a table of bad inputs across the commands

ARTICLE = "date 2024-03-07\nSweden joined NATO on Thursday.\n"
NOT_UTF8 = b"\xff\xfe\x00bad"
FILES = {
    "good.jsonl": json.dumps(GOOD) + "\n",
    "two.jsonl": json.dumps(GOOD) + "\n" + json.dumps(GOOD | {"id": "d2"}) + "\n",
    "peran.jsonl": json.dumps(GOOD) + "\n" + json.dumps(GOOD | {"annotator": "bob"}) + "\n",
    "trunc.jsonl": '{"id": "d1", "text": "x"\n',
    "notobj.jsonl": "[1, 2]\n",
    "notext.jsonl": '{"id": "d1"}\n',
    "entsobj.jsonl": '{"id": "d1", "text": "x", "entities": {}, "relations": []}\n',
    "latin1.jsonl": b'{"id": "d1", "text": "caf\xe9"}\n',
    "strstart.jsonl": '{"id": "d1", "text": "x", "entities": [{"id": "e1", "start": "0", "end": 1, "label": "GPE"}]}\n',
    "badoffset.jsonl": json.dumps(_entity(3, 2)) + "\n",
    "empty.jsonl": "",
    "blank.txt": "   \n\n",
    "seed.txt": ARTICLE,
    "badseed.txt": "date 2024-13-45\nText.\n",
    "badheader.txt": "date yesterday\nText.\n",
    "latin1.txt": NOT_UTF8,
    "bad.yaml": NOT_UTF8,
    "broken.yaml": "entities: [\n",
    "noents.yaml": "name: x\nentities: []\nrelations: []\n",
    "notjson.json": "not json\n",
    "intdate.jsonl": json.dumps(GOOD | {"meta": {"article_id": "a1", "date": 20240101}}) + "\n",
    "markup.txt": "date 2024-03-07\n[Sweden]{NOPE} joined.\n",
    "config.cfg": "[paths]\ntrain = null\n",
}


def _setup(tmp: Path) -> None:
    for name, content in FILES.items():
        path = tmp / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    (tmp / "folder").mkdir()
    (tmp / "splits").mkdir()
    (tmp / "splits" / "train.jsonl").write_text("".join(json.dumps(GOOD | {"id": f"s{i}"}) + "\n" for i in range(3)),
                                                encoding="utf-8")
    (tmp / "emptydir").mkdir()
    (tmp / "earlier.jsonl").write_text(json.dumps(GOOD) + "\n" + json.dumps(GOOD | {"id": "d2"}) + "\n"
                                       + json.dumps(GOOD | {"id": "d3"}) + "\n", encoding="utf-8")


CASES = [
    # (id, argv, exit code, message, output that must stay as it was)
    ("ingest missing input", ["ingest", "nope", "--out", "o.jsonl"], 1, "nope: no such file or folder", None),
    ("ingest empty folder", ["ingest", "emptydir", "--out", "o.jsonl"], 1, "no input files", None),
    ("ingest unsupported type", ["ingest", "bad.yaml", "--out", "o.jsonl"], 1, "unsupported file type '.yaml'", None),
    ("ingest not UTF-8", ["ingest", "latin1.txt", "--out", "earlier.jsonl"], 1, "latin1.txt: not valid UTF-8", "earlier.jsonl"),
    ("ingest invalid seed date", ["ingest", "badseed.txt", "--out", "earlier.jsonl"], 1, "invalid date '2024-13-45'", "earlier.jsonl"),
    ("ingest bad seed header", ["ingest", "badheader.txt", "--out", "earlier.jsonl"], 1, "is not 'date YYYY-MM-DD'", "earlier.jsonl"),
    ("ingest nothing but blanks", ["ingest", "blank.txt", "--out", "earlier.jsonl"], 1, "no articles in the inputs", "earlier.jsonl"),
    ("ingest fewer than before", ["ingest", "seed.txt", "--out", "earlier.jsonl"], 1, "pass --force", "earlier.jsonl"),
    ("ingest out is a folder", ["ingest", "seed.txt", "--out", "folder"], 1, "is a folder, not a file", None),
    ("ingest report is the output", ["ingest", "seed.txt", "--out", "o.jsonl", "--report", "o.jsonl"], 1, "cannot be the output itself", None),
    ("ingest malformed JSONL", ["ingest", "trunc.jsonl", "--out", "earlier.jsonl"], 1, "trunc.jsonl:1: malformed JSON", "earlier.jsonl"),
    ("validate malformed JSONL", ["validate", "trunc.jsonl"], 1, "trunc.jsonl:1: malformed JSON", None),
    ("validate not an object", ["validate", "notobj.jsonl"], 1, "notobj.jsonl:1", None),
    ("validate missing text", ["validate", "notext.jsonl"], 1, "notext.jsonl:1", None),
    ("validate entities not a list", ["validate", "entsobj.jsonl"], 1, "'entities' and 'relations' must be lists", None),
    ("stats not UTF-8", ["stats", "latin1.jsonl"], 1, "latin1.jsonl:1: not valid UTF-8", None),
    ("adjudicate offsets as strings", ["adjudicate", "strstart.jsonl", "--out", "g.jsonl"], 1, "must be integers", None),
    ("validate reversed span", ["validate", "badoffset.jsonl"], 1, "offsets out of range", None),
    ("validate missing schema", ["validate", "good.jsonl", "--schema", "nope.yaml"], 2, "does not exist", None),
    ("validate schema not UTF-8", ["validate", "good.jsonl", "--schema", "bad.yaml"], 1, "not valid UTF-8", None),
    ("validate broken schema", ["validate", "good.jsonl", "--schema", "broken.yaml"], 1, "not valid YAML", None),
    ("schema check not UTF-8", ["schema", "check", "bad.yaml"], 1, "not valid UTF-8", None),
    ("schema check no labels", ["schema", "check", "noents.yaml"], 1, "noents.yaml", None),
    ("tasks missing schema", ["tasks", "good.jsonl", "--out", "t.jsonl", "--schema", "nope.yaml"], 2, "does not exist", None),
    ("tasks bad unit", ["tasks", "good.jsonl", "--out", "earlier.jsonl", "--unit", "bytes"], 2, "'bytes' is not one of", "earlier.jsonl"),
    ("tasks model and patterns", ["tasks", "good.jsonl", "--out", "earlier.jsonl", "--patterns", "--model", "folder"], 1,
     "use either --model or --patterns", "earlier.jsonl"),
    ("tasks invalid labelled records", ["tasks", "badoffset.jsonl", "--out", "earlier.jsonl"], 1, "offsets out of range", "earlier.jsonl"),
    ("tasks malformed JSONL", ["tasks", "trunc.jsonl", "--out", "earlier.jsonl"], 1, "trunc.jsonl:1: malformed JSON", "earlier.jsonl"),
    ("docbin date split with an integer date", ["docbin", "intdate.jsonl", "--out", "b", "--dates", "2024-01-01,2025-01-01"], 1,
     "meta.date 20240101 is not an ISO date", None),
    ("docbin dates not dates", ["docbin", "good.jsonl", "--out", "b", "--dates", "yesterday,today"], 2, "two ISO dates", None),
    ("docbin dates reversed", ["docbin", "good.jsonl", "--out", "b", "--dates", "2025-01-01,2024-01-01"], 2, "is after TEST_FROM", None),
    ("docbin dates one value", ["docbin", "good.jsonl", "--out", "b", "--dates", "2025-01-01"], 2, "two ISO dates", None),
    ("docbin ratios two values", ["docbin", "good.jsonl", "--out", "b", "--ratios", "0.5,0.5"], 2, "takes 3 comma-separated numbers", None),
    ("docbin ratios words", ["docbin", "good.jsonl", "--out", "b", "--ratios", "a,b,c"], 2, "takes 3 comma-separated numbers", None),
    ("docbin ratios infinite", ["docbin", "good.jsonl", "--out", "b", "--ratios", "inf,1,1"], 2, "finite", None),
    ("docbin malformed", ["docbin", "trunc.jsonl", "--out", "b"], 1, "trunc.jsonl:1: malformed JSON", None),
    ("docbin no records", ["docbin", "empty.jsonl", "--out", "b"], 1, "no records to convert", None),
    ("docbin fewer than before", ["docbin", "good.jsonl", "--out", "splits"], 1, "pass --force", "splits/train.jsonl"),
    ("tasks fewer than before", ["tasks", "good.jsonl", "--out", "earlier.jsonl"], 1, "pass --force", "earlier.jsonl"),
    ("evaluate against not JSON", ["evaluate", "--pred", "good.jsonl", "--gold", "good.jsonl", "--against", "notjson.json"], 1,
     "notjson.json:1: not valid JSON", None),
    ("evaluate model and pred", ["evaluate", "folder", "good.jsonl", "--pred", "good.jsonl", "--gold", "good.jsonl"], 2,
     "give either MODEL DATA, or --pred and --gold", None),
    ("evaluate nothing", ["evaluate"], 2, "give either MODEL DATA", None),
    ("evaluate zero bootstrap", ["evaluate", "--pred", "good.jsonl", "--gold", "good.jsonl", "--bootstrap", "0"], 2, "x>=1", None),
    ("evaluate model folder is not a model", ["evaluate", "folder", "good.jsonl"], 1, "cannot load spaCy pipeline", None),
    ("evaluate per-annotator gold", ["evaluate", "--pred", "good.jsonl", "--gold", "peran.jsonl"], 1, "adjudicate", None),
    ("agreement malformed", ["agreement", "trunc.jsonl"], 1, "trunc.jsonl:1: malformed JSON", None),
    ("agreement missing file", ["agreement", "nope.jsonl"], 2, "does not exist", None),
    ("adjudicate over its own input", ["adjudicate", "good.jsonl", "--out", "good.jsonl"], 1, "refusing to overwrite", "good.jsonl"),
    ("adjudicate fewer than before", ["adjudicate", "good.jsonl", "--out", "earlier.jsonl"], 1, "pass --force", "earlier.jsonl"),
    ("adjudicate empty input", ["adjudicate", "empty.jsonl", "--out", "earlier.jsonl"], 1, "no records to adjudicate", "earlier.jsonl"),
    ("adjudicate unknown strategy", ["adjudicate", "good.jsonl", "--out", "g.jsonl", "--strategy", "coin"], 2, "'coin' is not one of", None),
    ("adjudicate annotator strategy without name", ["adjudicate", "good.jsonl", "--out", "g.jsonl", "--strategy", "annotator"], 1,
     "needs the name of the annotator", None),
    ("adjudicate unknown annotator", ["adjudicate", "good.jsonl", "--out", "g.jsonl", "--strategy", "annotator", "--annotator", "zed"], 1,
     "annotator 'zed' labelled no document", None),
    ("stats malformed", ["stats", "trunc.jsonl"], 1, "trunc.jsonl:1: malformed JSON", None),
    ("publish invalid records", ["publish", "badoffset.jsonl", "--out", "ds"], 1, "offsets out of range", None),
    ("publish malformed", ["publish", "trunc.jsonl", "--out", "ds"], 1, "trunc.jsonl:1: malformed JSON", None),
    ("import markup bad label", ["import", "markup", "markup.txt", "--out", "m"], 1, "unknown entity label 'NOPE'", None),
    ("import markup nothing to write", ["import", "markup", "markup.txt"], 1, "nothing to write", None),
    ("import re3d not a re3d folder", ["import", "re3d", "emptydir", "--out", "r"], 1, "no re3d folder here", None),
    ("import re3d bad map", ["import", "re3d", "emptydir", "--out", "r", "--map", "nope.yaml"], 2, "does not exist", None),
    ("train missing corpus", ["train", "config.cfg", "--output", "m"], 1, "paths.train is not set", None),
    ("predict model is not a model", ["predict", "folder", "good.jsonl", "--out", "p.jsonl"], 1, "cannot load spaCy pipeline", None),
    ("doccano pull dead server", ["doccano", "pull", "--project", "x", "--out", "c", "--url", "http://127.0.0.1:9"], 1, "127.0.0.1:9", None),
]


@pytest.mark.parametrize("argv, code, message, kept", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_table(tmp_path, monkeypatch, argv, code, message, kept):
    _setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANNOTATE_DOCCANO_USER", "nobody")
    monkeypatch.setenv("ANNOTATE_DOCCANO_PASSWORD", "nothing")
    before = (tmp_path / kept).read_bytes() if kept else None
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)  # no traceback
    text = " ".join(re.sub("[│╭╮╰╯─]", " ", result.output).split())
    if message is not None:
        assert message in text
    if code == 1:
        assert result.output.strip().splitlines()[-1].startswith("error: ")
    if kept:
        assert (tmp_path / kept).read_bytes() == before
    assert not list(tmp_path.glob(".*.pending")) and not list(tmp_path.glob(".*.tmp"))  # nothing half-written left


def test_evaluate_outputs_land_together_or_not_at_all(tmp_path):
    """A run whose last output cannot be written leaves every earlier output of the folder as it was."""
    good = _write(tmp_path / "good.jsonl", [GOOD])
    out = tmp_path / "eval"
    ok = CliRunner().invoke(app, ["evaluate", "--pred", str(good), "--gold", str(good), "--out", str(out), "--bootstrap", "5"])
    assert ok.exit_code == 0, ok.output
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / "report.md").unlink()
    (out / "report.md").mkdir()  # the last file of the set cannot be replaced now
    other = _write(tmp_path / "other.jsonl", [_with(relations=[])])
    bad = CliRunner().invoke(app, ["evaluate", "--pred", str(other), "--gold", str(good), "--out", str(out), "--bootstrap", "5"])
    assert bad.exit_code == 1
    assert "report.md: is a folder, not a file" in bad.output
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == {k: v for k, v in before.items() if k != "report.md"}
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_docbin_outputs_land_together(tmp_path):
    good = _write(tmp_path / "good.jsonl", [GOOD])
    out = tmp_path / "bins"
    assert CliRunner().invoke(app, ["docbin", str(good), "--out", str(out)]).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / "docbin-report.json").unlink()
    (out / "docbin-report.json").mkdir()
    bad = CliRunner().invoke(app, ["docbin", str(good), "--out", str(out), "--seed", "3"])
    assert bad.exit_code == 1
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == {k: v for k, v in before.items()
                                                                            if k != "docbin-report.json"}


def test_a_record_over_a_million_characters(tmp_path):
    """spaCy's E088 guard: docbin (tokenizer only) converts it; a model run stops with one line naming the record."""
    text = "Paris. " * 150_000  # 1,050,000 characters
    big = _write(tmp_path / "big.jsonl", [{"id": "big", "text": text, "meta": {"article_id": "big"},
                                           "entities": [{"id": "e1", "start": 0, "end": 5, "label": "GPE"}], "relations": []}])
    ok = CliRunner().invoke(app, ["docbin", str(big), "--out", str(tmp_path / "bins"), "--ratios", "1,0,0", "--json"])
    assert ok.exit_code == 0, ok.output
    import spacy

    from annotate.errors import InputError
    from annotate.predict import predict_docs
    from annotate.records import read_docs

    with pytest.raises(InputError, match="record 'big' has 1,050,000 characters, over the pipeline's max_length"):
        list(predict_docs(spacy.blank("en"), read_docs(big)))
