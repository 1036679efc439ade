"""Doccano round trip: pure parts (export parsing, id restoration, overwrite guard) and, against a real
Doccano 1.8.4 started by the session fixture in conftest.py, push/pull, annotators, state and errors."""

from __future__ import annotations

import io
import json
import socket
import textwrap
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from annotate import doccano, doccano_server
from annotate.cli import app
from annotate.doccano_server import Credentials, free_port
from annotate.errors import DoccanoError, InputError, OutputError
from annotate.records import Entity, LabelledDoc, Relation, read_docs, write_jsonl
from annotate.schema import guidelines_markdown, load_schema

SCHEMA = load_schema()
CORPUS_GOLD = Path(__file__).resolve().parent.parent / "corpora" / "diplomacy-defence" / "labelled.jsonl"
EMOJI_TEXT = "🇺🇦 Sébastien Lecornu met Rustem Umerov 👋 in Kyiv."
# code points: "Sébastien Lecornu" 3-20, "Rustem Umerov" 25-38, "Kyiv" 44-48
# UTF-16 units: 5-22, 27-40, 47-51 (the flag is 2 astral characters, the hand 1)


def gold_records() -> list[LabelledDoc]:
    return [
        LabelledDoc(
            "flag#0",
            EMOJI_TEXT,
            {"article_id": "flag", "chunk": 0, "title": "Réunion à Paris", "date": "2025-03-11"},
            [
                Entity("e1", 3, 20, "PERSON"),
                Entity("e2", 25, 38, "PERSON", text="Rustem Umerov"),
                Entity("e3", 44, 48, "GPE"),
            ],
            [Relation("r1", "e1", "e2", "MEETS", attrs={"negated": True})],
            annotator="admin",
            status="unconfirmed",
        ),
        LabelledDoc(
            "overlap#0",
            "Le ministre français des Armées, Sébastien Lecornu, a reçu le général Thierry Burkhardt.",
            {"article_id": "overlap", "chunk": 0},
            [
                Entity("a", 3, 31, "ROLE"),
                Entity("b", 12, 20, "GPE"),  # nested inside the ROLE span
                Entity("c", 33, 50, "PERSON"),
                Entity("d", 70, 87, "PERSON"),
            ],
            [Relation("x", "c", "a", "HAS_ROLE"), Relation("y", "a", "b", "ROLE_IN")],
            annotator="admin",
            status="unconfirmed",
        ),
        LabelledDoc(
            "combining#0",
            "Zoe\u0308 \U0001F468\u200D\U0001F469\u200D\U0001F467 Łódź visited Kraków.",  # combining mark, ZWJ family
            {"article_id": "combining", "chunk": 0},
            [Entity("p1", 0, 4, "PERSON"), Entity("g1", 11, 15, "GPE"), Entity("g2", 24, 30, "GPE")],
            [],
            annotator="admin",
            status="unconfirmed",
        ),
    ]


# ------------------------------------------------------------------------------------ pure parts


def export_line(**overrides: object) -> dict:
    line = {
        "id": 17,
        "text": EMOJI_TEXT,
        "meta": {
            "record_id": "flag#0",
            "article_id": "flag",
            "offset_unit": "utf16",
            "entity_ids": ["e1", "e2"],
            "entity_spans": [[3, 20, "PERSON"], [25, 38, "PERSON"]],
            "relation_ids": ["r1"],
            "relation_ends": [["e1", "e2", "MEETS"]],
        },
        "entities": [
            {"id": 41, "label": "PERSON", "start_offset": 5, "end_offset": 22},
            {"id": 42, "label": "PERSON", "start_offset": 27, "end_offset": 40},
        ],
        "relations": [{"id": 9, "from_id": 41, "to_id": 42, "type": "MEETS"}],
        "Comments": [],
    }
    line.update(overrides)
    return line


def test_doccano_export_line_restores_ids_and_code_points() -> None:
    doc = doccano.doc_from_export_line(export_line(), annotator="alice", status="confirmed", unit="utf16")
    assert doc.id == "flag#0"
    assert doc.meta == {"article_id": "flag"}
    assert [(e.id, e.start, e.end, e.label) for e in doc.entities] == [("e1", 3, 20, "PERSON"), ("e2", 25, 38, "PERSON")]
    assert [(r.id, r.head, r.tail, r.label) for r in doc.relations] == [("r1", "e1", "e2", "MEETS")]
    assert (doc.annotator, doc.status) == ("alice", "confirmed")


def test_doccano_export_line_new_ids_for_changed_labels() -> None:
    line = export_line(
        entities=[
            {"id": 41, "label": "PERSON", "start_offset": 5, "end_offset": 22},
            {"id": 50, "label": "GPE", "start_offset": 47, "end_offset": 51},  # drawn in the UI: "Kyiv"
        ],
        relations=[{"id": 12, "from_id": 41, "to_id": 50, "type": "AFFILIATED_WITH"}],
    )
    doc = doccano.doc_from_export_line(line, annotator="bob", status="unconfirmed", unit="utf16")
    assert [(e.id, e.start, e.end) for e in doc.entities] == [("e1", 3, 20), ("dc50", 44, 48)]
    assert EMOJI_TEXT[44:48] == "Kyiv"
    assert [(r.id, r.head, r.tail) for r in doc.relations] == [("dr12", "e1", "dc50")]


@pytest.mark.parametrize(
    ("unit", "start", "end"),
    [("utf16", 27, 40), ("grapheme", 24, 37), ("codepoint", 25, 38)],
)
def test_doccano_export_line_converts_each_unit(unit: str, start: int, end: int) -> None:
    line = {"id": 3, "text": EMOJI_TEXT, "entities": [{"id": 1, "label": "PERSON", "start_offset": start, "end_offset": end}], "relations": []}
    doc = doccano.doc_from_export_line(line, annotator="a", status="unconfirmed", unit=unit)  # type: ignore[arg-type]
    assert EMOJI_TEXT[doc.entities[0].start : doc.entities[0].end] == "Rustem Umerov"


def test_doccano_export_line_foreign_upload_keeps_flat_meta() -> None:
    line = {"id": 8, "text": "NATO met.", "source": "x", "entities": [], "relations": [], "Comments": []}
    doc = doccano.doc_from_export_line(line, annotator="a", status="unconfirmed", unit="utf16")
    assert (doc.id, doc.meta) == ("doccano-8", {"source": "x"})


def test_doccano_export_line_without_relations_reads_label_triples() -> None:
    line = {"id": 5, "text": EMOJI_TEXT, "label": [[47, 51, "GPE"], [27, 40, "PERSON"]], "Comments": []}
    doc = doccano.doc_from_export_line(line, annotator="a", status="unconfirmed", unit="utf16")
    assert [(e.id, e.start, e.end, e.label) for e in doc.entities] == [("dc1", 44, 48, "GPE"), ("dc2", 25, 38, "PERSON")]
    assert doc.meta == {}


def test_doccano_parse_export_zip_one_file_per_user() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("alice.jsonl", json.dumps(export_line(), ensure_ascii=False) + "\n")
        archive.writestr("bob.jsonl", "\n")
    parsed = doccano.parse_export_zip(buffer.getvalue())
    assert sorted(parsed) == ["alice", "bob"]
    assert [line["id"] for line in parsed["alice"]] == [17]
    assert parsed["bob"] == []


@pytest.mark.parametrize(
    ("text", "match"),
    [('{"id": 1, "text": "a"}\n{"id": 2,', r"alice\.jsonl:2: malformed export line"), ('{"text": "a"}', r"alice\.jsonl:1: export line without 'id'")],
)
def test_doccano_parse_export_lines_errors(text: str, match: str) -> None:
    with pytest.raises(DoccanoError, match=match):
        doccano.parse_export_lines(text, source="alice.jsonl")


def test_doccano_parse_export_zip_rejects_non_zip() -> None:
    with pytest.raises(DoccanoError, match="not a zip file"):
        doccano.parse_export_zip(b"<html>")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("alice:annotator", ("alice", "annotator")), ("bob:approver", ("bob", "annotation_approver")), ("c:d:admin", ("c:d", "project_admin"))],
)
def test_doccano_parse_member(spec: str, expected: tuple[str, str]) -> None:
    assert doccano.parse_member(spec) == expected


@pytest.mark.parametrize("spec", ["alice:", "alice:boss", ":annotator"])
def test_doccano_parse_member_rejects(spec: str) -> None:
    with pytest.raises(InputError, match="expected USER or USER:ROLE"):
        doccano.parse_member(spec)


def test_doccano_read_push_input_turns_task_rows_into_records(tmp_path: Path) -> None:
    path = tmp_path / "tasks.jsonl"
    path.write_text(
        textwrap.dedent(
            """\
            {"text": "👋 Kyiv", "entities": [{"id": 1, "label": "GPE", "start_offset": 3, "end_offset": 7}], "relations": [], "meta": {"record_id": "k#0", "offset_unit": "utf16", "entity_ids": ["g"], "source": "s"}}
            """
        ),
        encoding="utf-8",
    )
    [doc] = doccano.read_push_input(path)
    assert (doc.id, doc.meta, [(e.id, e.start, e.end) for e in doc.entities]) == ("k#0", {"source": "s"}, [("g", 2, 6)])


def pull_result(docs: list[LabelledDoc]) -> doccano.PullResult:
    return doccano.PullResult(doccano.ProjectRef(1, "p", False), docs, [], 0, {"admin": len(docs)})


def test_doccano_write_pull_refuses_to_lose_labels(tmp_path: Path) -> None:
    doccano.write_pull(pull_result(gold_records()), tmp_path)
    fewer = [LabelledDoc("flag#0", EMOJI_TEXT, {}, [Entity("e1", 3, 20, "PERSON")], [], annotator="admin", status="unconfirmed")]
    with pytest.raises(OutputError, match=r"earlier pull has 13 labels and this one only 1; pass --force"):
        doccano.write_pull(pull_result(fewer), tmp_path)
    assert len(list(read_docs(tmp_path / "labelled.jsonl"))) == 3
    summary = doccano.write_pull(pull_result(fewer), tmp_path, force=True)
    assert (summary["labels"], summary["labels_before"]) == (1, 13)
    assert [d.id for d in read_docs(tmp_path / "labelled.jsonl")] == ["flag#0"]


def test_doccano_cli_pull_dead_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTATE_DOCCANO_PASSWORD", "whatever")
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["doccano", "pull", "--project", "p", "--out", str(tmp_path), "--url", url])
    assert result.exit_code == 1
    assert "cannot reach Doccano at" in result.output


def test_doccano_cli_pull_without_local_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTATE_DOCCANO_PASSWORD", "whatever")
    result = CliRunner().invoke(app, ["doccano", "pull", "--project", "p", "--out", str(tmp_path), "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "no local Doccano is running" in result.output


class _FlakyHandler(BaseHTTPRequestHandler):
    """Answers 503 to the first ``failures`` GETs, then 200 with a JSON body (a proxy in trouble, say)."""

    failures = 0
    seen = 0

    def do_GET(self) -> None:
        type(self).seen += 1
        status, body = (503, b"busy") if type(self).seen <= type(self).failures else (200, b'{"ready": false}')
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def flaky_server() -> Iterator[tuple[str, type[_FlakyHandler]]]:
    handler = type("Handler", (_FlakyHandler,), {"failures": 0, "seen": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("failures", "requests_seen"), [(0, 1), (2, 3)])
def test_doccano_http_retries_transient_errors(flaky_server, failures: int, requests_seen: int) -> None:
    url, handler = flaky_server
    handler.failures = failures
    conn = doccano.open_connection(url, "admin")
    assert conn.get("tasks/status/t1", what="polling") == {"ready": False}
    assert handler.seen == requests_seen


def test_doccano_http_gives_up_after_bounded_retries(flaky_server) -> None:
    url, handler = flaky_server
    handler.failures = 100
    conn = doccano.open_connection(url, "admin")
    with pytest.raises(DoccanoError, match=r"polling: Doccano at http://127\.0\.0\.1:\d+ answered HTTP 503"):
        conn.get("tasks/status/t1", what="polling")
    assert handler.seen == 1 + doccano.HTTP_RETRIES


def test_doccano_task_wait_is_bounded(flaky_server) -> None:
    url, _ = flaky_server
    conn = doccano.open_connection(url, "admin")
    with pytest.raises(DoccanoError, match=r"exporting: Doccano's task t1 not done after 0 s \(is the worker running\?\)"):
        doccano.wait_task(conn, "t1", what="exporting", timeout=0.2)


def test_doccano_server_credentials_stay_out_of_reprs_and_child_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTATE_DOCCANO_USER", "chief")
    monkeypatch.setenv("ANNOTATE_DOCCANO_PASSWORD", "s3cret-value")
    creds = doccano_server.credentials_from_env()
    assert creds == Credentials("chief", "s3cret-value")
    assert "s3cret-value" not in repr(creds)
    env = doccano_server.server_env(tmp_path, secret_key="k")
    assert "s3cret-value" not in env.values()
    assert env["DATABASE_URL"] == f"sqlite:///{tmp_path.resolve() / 'db.sqlite3'}"
    assert (env["SECRET_KEY"], env["DJANGO_SETTINGS_MODULE"]) == ("k", "config.settings.production")
    monkeypatch.delenv("ANNOTATE_DOCCANO_PASSWORD")
    assert doccano_server.credentials_from_env() is None


def test_doccano_cli_stop_without_server(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["doccano", "stop", "--data-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"stopped": False}


@pytest.mark.skipif(not doccano_server.is_installed(), reason="Doccano venv not installed (the live tests install it)")
def test_doccano_cli_serve_refuses_a_busy_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["doccano", "serve", "--data-dir", str(tmp_path), "--port", str(port)])
    assert result.exit_code == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.output
    assert not (tmp_path / "server.json").exists()


# ----------------------------------------------------------------------------- against a real Doccano
# live_doccano is the session fixture of conftest.py (a real server on a free loopback port)


@pytest.mark.doccano
@pytest.mark.slow
def test_doccano_round_trip_is_lossless(live_doccano, tmp_path: Path) -> None:
    conn = doccano.connect(live_doccano.url, live_doccano.admin)
    first = doccano.push(conn, "round-trip", gold_records(), SCHEMA)
    assert (first.created, first.uploaded, first.skipped) == (True, 3, 0)
    pulled = doccano.pull(conn, "round-trip", SCHEMA)
    assert [d.to_dict() for d in pulled.docs] == [d.to_dict() for d in gold_records()]
    assert pulled.violations == []

    project = conn.client.find_project_by_id(first.project.id)
    assert (project.guideline, project.use_relation, project.allow_overlapping) == (guidelines_markdown(SCHEMA).strip(), True, True)
    types = {t.text: (t.background_color, t.suffix_key) for t in conn.client.list_label_types(first.project.id, "span")}
    assert types["PERSON"] == ("#e6194b", "p")
    assert sorted(t.text for t in conn.client.list_label_types(first.project.id, "relation")) == sorted(SCHEMA.relation_labels)

    recoloured = replace(SCHEMA, entities=tuple(replace(e, colour="#123456") if e.name == "PERSON" else e for e in SCHEMA.entities))
    assert doccano.sync_label_types(conn, first.project, recoloured) == {"span_types_updated": 1}
    types = {t.text: (t.background_color, t.suffix_key) for t in conn.client.list_label_types(first.project.id, "span")}
    assert types["PERSON"] == ("#123456", "p")

    again = doccano.push(conn, "round-trip", gold_records() + [LabelledDoc("new#0", "Paris.", {}, [Entity("n", 0, 5, "GPE")], [])], SCHEMA)
    assert (again.created, again.uploaded, again.skipped) == (False, 1, 3)
    assert sorted(doccano.existing_record_ids(conn, again.project)) == ["combining#0", "flag#0", "new#0", "overlap#0"]


@pytest.mark.doccano
@pytest.mark.slow
def test_doccano_gold_corpus_round_trip(live_doccano) -> None:
    """The repository's gold corpus (174 records, ~8,700 spans, ~5,000 relations) survives push, confirm, pull."""
    gold = list(read_docs(CORPUS_GOLD))
    conn = doccano.connect(live_doccano.url, live_doccano.admin)
    pushed = doccano.push(conn, "corpus-gold", gold, SCHEMA)
    assert pushed.uploaded == len(gold) == 174
    for example_id in doccano.existing_record_ids(conn, pushed.project).values():
        conn.client.update_example_state(pushed.project.id, example_id)
    pulled = doccano.pull(conn, "corpus-gold", SCHEMA)
    assert {(d.annotator, d.status) for d in pulled.docs} == {(live_doccano.admin.username, "confirmed")}
    as_gold = sorted((replace(d, annotator="gold").to_dict() for d in pulled.docs), key=lambda d: d["id"])
    assert as_gold == sorted((d.to_dict() for d in gold), key=lambda d: d["id"])
    assert pulled.violations == []


@pytest.mark.doccano
@pytest.mark.slow
def test_doccano_two_annotators_and_confirmation(live_doccano) -> None:
    alice, bob = live_doccano.user("alice"), live_doccano.user("bob")
    admin = doccano.connect(live_doccano.url, live_doccano.admin)
    docs = [LabelledDoc.from_article(d) for d in gold_records()[:2]]  # no suggestions: annotators start blank
    result = doccano.push(admin, "two-annotators", docs, SCHEMA, members=[("alice", "annotator"), ("bob", "annotator")])
    assert result.members == {"alice": "annotator", "bob": "annotator"}
    examples = doccano.existing_record_ids(admin, result.project)
    pid, flag, overlap = result.project.id, examples["flag#0"], examples["overlap#0"]

    as_alice = doccano.connect(live_doccano.url, alice)
    umerov = as_alice.client.create_span(pid, flag, 27, 40, "PERSON")  # UTF-16 units, as the UI stores them
    kyiv = as_alice.client.create_span(pid, flag, 47, 51, "GPE")
    as_alice.client.create_relation(pid, flag, umerov.id, kyiv.id, "AFFILIATED_WITH")
    as_alice.client.update_example_state(pid, flag)  # alice confirms one of two examples
    as_bob = doccano.connect(live_doccano.url, bob)
    as_bob.client.create_span(pid, flag, 27, 33, "PERSON")  # bob marks only "Rustem"
    admin.client.create_label_type(pid, "span", "RUMOUR", color="#000000")  # a label the schema lacks
    as_bob.client.create_span(pid, overlap, 33, 50, "RUMOUR")

    pulled = doccano.pull(admin, "two-annotators", SCHEMA)
    got = {(d.id, d.annotator): d for d in pulled.docs}
    assert sorted(got) == [("flag#0", "alice"), ("flag#0", "bob"), ("overlap#0", "bob")]
    a, b = got["flag#0", "alice"], got["flag#0", "bob"]
    assert [(EMOJI_TEXT[e.start : e.end], e.label) for e in a.entities] == [("Rustem Umerov", "PERSON"), ("Kyiv", "GPE")]
    assert [(r.head, r.tail, r.label) for r in a.relations] == [(a.entities[0].id, a.entities[1].id, "AFFILIATED_WITH")]
    assert [(EMOJI_TEXT[e.start : e.end], e.label) for e in b.entities] == [("Rustem", "PERSON")]
    assert (a.status, b.status, got["overlap#0", "bob"].status) == ("confirmed", "unconfirmed", "unconfirmed")
    assert pulled.summary()["skipped_untouched"] == 3  # admin on both, alice on overlap#0
    # schema violations are reported per document and the labels kept
    assert [(e.label, e.start, e.end) for e in got["overlap#0", "bob"].entities] == [("RUMOUR", 33, 50)]
    assert pulled.summary()["violations"] == {"overlap#0 (bob)": ["document 'overlap#0' [33:50]: unknown entity label 'RUMOUR'"]}


@pytest.mark.doccano
@pytest.mark.slow
def test_doccano_everyone_confirmed_needs_no_second_export(live_doccano) -> None:
    admin = doccano.connect(live_doccano.url, live_doccano.admin)
    result = doccano.push(admin, "all-confirmed", gold_records()[:1], SCHEMA)
    [example] = doccano.existing_record_ids(admin, result.project).values()
    admin.client.update_example_state(result.project.id, example)
    [doc] = doccano.pull(admin, "all-confirmed", SCHEMA).docs
    assert (doc.id, doc.status, len(doc.entities)) == ("flag#0", "confirmed", 3)


@pytest.mark.doccano
@pytest.mark.slow
@pytest.mark.parametrize(
    ("who", "project", "match"),
    [
        ("wrong-password", "round-trip", r"refused the login of user 'admin': wrong username or password"),
        ("admin", "no-such-project", r"no project named 'no-such-project'"),
        ("carol", "non-admin", r"user 'carol' is not allowed to do this .*HTTP 403"),
    ],
)
def test_doccano_errors(live_doccano, who: str, project: str, match: str) -> None:
    admin = doccano.connect(live_doccano.url, live_doccano.admin)
    if who == "carol":
        creds = live_doccano.user("carol")
        doccano.push(admin, "non-admin", gold_records()[:1], SCHEMA, members=[("carol", "annotator")])
    elif who == "wrong-password":
        creds = Credentials("admin", "not-the-password")
    else:
        creds = live_doccano.admin
    with pytest.raises(DoccanoError, match=match):
        doccano.pull(doccano.connect(live_doccano.url, creds), project, SCHEMA)


@pytest.mark.doccano
@pytest.mark.slow
def test_doccano_cli_push_then_pull(live_doccano, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTATE_DOCCANO_USER", live_doccano.admin.username)
    monkeypatch.setenv("ANNOTATE_DOCCANO_PASSWORD", live_doccano.admin.password)
    records = tmp_path / "records.jsonl"
    write_jsonl(records, gold_records())
    runner = CliRunner()
    pushed = runner.invoke(app, ["doccano", "push", str(records), "--project", "cli", "--url", live_doccano.url, "--json"])
    assert pushed.exit_code == 0, pushed.output
    assert json.loads(pushed.stdout)["uploaded"] == 3
    out = tmp_path / "corpus"
    # without --url: the embedded server found through the data dir's pid file
    args = ["doccano", "pull", "--project", "cli", "--out", str(out), "--data-dir", str(live_doccano.data_dir), "--json"]
    pulled = runner.invoke(app, args)
    assert pulled.exit_code == 0, pulled.output
    assert json.loads(pulled.stdout)["records"] == 3
    assert [d.to_dict() for d in read_docs(out / "labelled.jsonl")] == [d.to_dict() for d in gold_records()]
    assert json.loads((out / "pull-report.json").read_text(encoding="utf-8"))["labels"] == 13

    small = tmp_path / "one.jsonl"
    write_jsonl(small, gold_records()[:1])
    assert runner.invoke(app, ["doccano", "push", str(small), "--project", "cli-small", "--url", live_doccano.url]).exit_code == 0
    emptied = runner.invoke(app, ["doccano", "pull", "--project", "cli-small", "--out", str(out), "--url", live_doccano.url])
    assert emptied.exit_code == 1
    assert "earlier pull has 13 labels and this one only 4; pass --force" in emptied.output


@pytest.mark.doccano
@pytest.mark.slow
def test_doccano_label_as_two_annotators_round_trip(live_doccano) -> None:
    """`doccano label` as two users: each one's labels, ids and relation attributes come back as theirs."""
    live_doccano.user("carol"), live_doccano.user("dave")
    admin = doccano.connect(live_doccano.url, live_doccano.admin)
    articles = [LabelledDoc.from_article(d) for d in gold_records()[:2]]
    doccano.push(admin, "label-api", articles, SCHEMA, members=[("carol", "annotator"), ("dave", "annotator")])
    carol_docs = [replace(d, annotator="carol", status="confirmed") for d in gold_records()[:2]]
    dave_doc = replace(gold_records()[0], annotator="dave", status="confirmed",
                       entities=gold_records()[0].entities[:2], relations=[Relation("z9", "e1", "e2", "MEETS")])
    as_carol = doccano.connect(live_doccano.url, live_doccano.users["carol"])
    first = doccano.label(as_carol, "label-api", carol_docs)
    assert (first.labelled, first.spans, first.relations) == (2, 7, 3)
    assert doccano.label(as_carol, "label-api", carol_docs).skipped_already_labelled == 2  # re-run adds nothing
    as_dave = doccano.connect(live_doccano.url, live_doccano.users["dave"])
    missing = replace(dave_doc, id="nowhere#0")
    result = doccano.label(as_dave, "label-api", [dave_doc, missing])
    assert (result.labelled, result.not_in_project) == (1, ["nowhere#0"])
    pulled = doccano.pull(admin, "label-api", SCHEMA)
    by_user = {(d.annotator, d.id): d for d in pulled.docs}
    for doc in carol_docs:  # offsets through UTF-16 and back, our ids, texts and the negated attribute
        assert by_user[("carol", doc.id)].to_dict() == doc.to_dict()
    dave = by_user[("dave", "flag#0")]
    assert dave.relations == [Relation("z9", "e1", "e2", "MEETS")]  # no negated: that was carol's
    assert ("dave", "overlap#0") not in by_user


@pytest.mark.doccano
@pytest.mark.slow
def test_doccano_label_unknown_label_is_one_line(live_doccano) -> None:
    live_doccano.user("erin")
    admin = doccano.connect(live_doccano.url, live_doccano.admin)
    doccano.push(admin, "label-bad", [LabelledDoc.from_article(gold_records()[0])], SCHEMA, members=[("erin", "annotator")])
    bad = replace(gold_records()[0], entities=[Entity("e1", 0, 2, "PLANET")], relations=[])
    with pytest.raises(DoccanoError, match="label\\(s\\) PLANET not in project 'label-bad'"):
        doccano.label(doccano.connect(live_doccano.url, live_doccano.users["erin"]), "label-bad", [bad])


@pytest.mark.doccano
@pytest.mark.slow
def test_doccano_push_with_unknown_member_changes_nothing(live_doccano) -> None:
    live_doccano.user("frank")
    admin = doccano.connect(live_doccano.url, live_doccano.admin)
    with pytest.raises(DoccanoError, match=r"user\(s\) 'nobody-here' not found .*nothing was changed"):
        doccano.push(admin, "typo-project", gold_records()[:1], SCHEMA,
                     members=[("frank", "annotator"), ("nobody-here", "annotator")])
    assert doccano.find_project(admin, "typo-project") is None
