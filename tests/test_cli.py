import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from annotate.cli import app

SEED = Path(__file__).parents[1] / "seeds" / "2025-03-11-paris-chiefs-of-staff.txt"
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_cli_help_lists_commands_and_examples():
    result = run("--help")
    assert result.exit_code == 0
    for name in ("ingest", "tasks", "validate", "doccano", "import"):
        assert name in result.output
    for command in ("ingest", "tasks", "validate"):
        sub = run(command, "--help")
        assert sub.exit_code == 0 and "Example: annotate " + command in sub.output


def test_cli_ingest_then_tasks(tmp_path):
    out = tmp_path / "articles.jsonl"
    result = run("ingest", SEED, SEED, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["articles"], summary["written"], summary["exact_duplicates_dropped"]) == (1, 1, 1)
    report = json.loads((tmp_path / "articles.ingest-report.json").read_text(encoding="utf-8"))
    assert report["exact_duplicates"][0]["source"] == str(SEED)
    tasks = tmp_path / "tasks.jsonl"
    result = run("tasks", out, "--out", tasks, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tasks"] == 1
    row = json.loads(tasks.read_text(encoding="ascii"))
    assert row["text"].startswith("French President Emmanuel Macron")
    assert row["meta"]["date"] == "2025-03-11"


def test_cli_tasks_with_shipped_patterns(tmp_path):
    out = tmp_path / "articles.jsonl"
    assert run("ingest", SEED, "--out", out).exit_code == 0
    result = run("tasks", out, "--patterns", "--out", tmp_path / "tasks.jsonl", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["suggested_by"] == "patterns"
    assert summary["entity_suggestions"]["GPE"] >= 3  # French, Paris, Ukraine at least
    row = json.loads((tmp_path / "tasks.jsonl").read_text(encoding="ascii"))
    spans = {row["text"][e["start_offset"]:e["end_offset"]] for e in row["entities"]}
    assert {"French", "Paris", "NATO", "President"} <= spans


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest", "{tmp}/nothing", "--out", "{tmp}/a.jsonl"], "nothing: no such file or folder"),
        (["tasks", "{tmp}/bad.jsonl", "--out", "{tmp}/t.jsonl"], "bad.jsonl:2: malformed JSON"),
        (["validate", "{tmp}/labelled.jsonl"], "1 schema violation(s): document 'd' [0:4]: unknown entity label 'NATION'"),
        (["validate", "{tmp}/labelled.jsonl", "--schema", "{tmp}/bad-schema.yaml"], "bad-schema.yaml: not valid YAML"),
    ],
)
def test_cli_errors_are_one_line_and_non_zero(tmp_path, args, message):
    (tmp_path / "bad.jsonl").write_text('{"id": "a", "text": "x"}\n{oops\n', encoding="utf-8")
    (tmp_path / "bad-schema.yaml").write_text("entities: [\n", encoding="utf-8")
    (tmp_path / "labelled.jsonl").write_text(
        '{"id": "d", "text": "Kyiv", "entities": [{"id": "e1", "start": 0, "end": 4, "label": "NATION"}]}\n',
        encoding="utf-8")
    result = run(*[a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last
    assert not (tmp_path / "a.jsonl").exists() and not (tmp_path / "t.jsonl").exists()


def test_cli_validate_ok(tmp_path):
    path = tmp_path / "ok.jsonl"
    path.write_text('{"id": "d", "text": "Kyiv", "entities": [{"id": "e1", "start": 0, "end": 4, "label": "GPE"}]}\n',
                    encoding="utf-8")
    result = run("validate", path, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"records": 1, "schema": "diplomacy-defence", "violations": []}


def test_cli_schema_check_and_guidelines(tmp_path):
    result = run("schema", "check", "--json")
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert summary["schema"] == "diplomacy-defence" and summary["relation_types"][:2] == ["HAS_ROLE", "ROLE_IN"]
    out = tmp_path / "guidelines.md"
    assert run("schema", "guidelines", "--out", out).exit_code == 0
    assert out.read_text(encoding="utf-8").startswith("# Annotation guidelines: diplomacy-defence")
    bad = tmp_path / "bad.yaml"
    bad.write_text("entities: [{name: A}, {name: A}]\n", encoding="utf-8")
    result = run("schema", "check", bad)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {bad}: 1 problem(s): duplicate entity label 'A'"
