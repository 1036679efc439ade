"""Doccano for a team: accounts (`users add`/`list`, bare `--member NAME`), serving beyond loopback, faults
(a killed worker, a restarted web server, a dead server, a cut-short export) and collaborative projects pulled
per annotator. Checks first, then the same against the real Doccano 1.8.4 of conftest.py's session fixture."""

from __future__ import annotations

import io
import ipaddress
import json
import socket
import sqlite3
import threading
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from test_doccano import EMOJI_TEXT, export_line, gold_records
from typer.testing import CliRunner

from annotate import doccano, doccano_server
from annotate.cli import app
from annotate.doccano_server import Credentials
from annotate.errors import DoccanoError
from annotate.records import LabelledDoc, write_jsonl
from annotate.schema import load_schema

SCHEMA = load_schema()
STRONG = "correct-horse-battery"


# ----------------------------------------------------------------------------------- checks, no server


@pytest.mark.parametrize(
    ("spec", "defaults", "expected"),
    [
        ("alice", None, ("alice", "annotator")),
        ("alice", {"alice": "approver"}, ("alice", "annotation_approver")),
        ("alice:admin", {"alice": "approver"}, ("alice", "project_admin")),  # a written role wins
    ],
)
def test_doccano_team_bare_member_takes_account_role(spec: str, defaults: dict | None, expected: tuple[str, str]) -> None:
    assert doccano.parse_member(spec, defaults) == expected


def _zip(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def _flip_member_byte(data: bytes) -> bytes:
    """Change one byte of the first member's compressed data (its CRC no longer matches)."""
    header_len = 30 + int.from_bytes(data[26:28], "little") + int.from_bytes(data[28:30], "little")
    spot = header_len + 5
    return data[:spot] + bytes([data[spot] ^ 0xFF]) + data[spot + 1 :]


LINES = "".join(json.dumps(export_line(id=i), ensure_ascii=False) + "\n" for i in range(1, 40))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (_zip({"alice.jsonl": LINES})[:-30], r"^src: the export is not a zip file or is cut short \(\d+ bytes\)"),
        (_zip({"alice.jsonl": LINES})[:200], r"^src: the export is not a zip file or is cut short"),
        (_flip_member_byte(_zip({"alice.jsonl": LINES})), r"^src/alice\.jsonl: the export is cut short or corrupt"),
        (_zip({"alice.jsonl": LINES[:-40]}), r"^src/alice\.jsonl:39: malformed export line"),  # a file cut inside its last line
    ],
)
def test_doccano_team_cut_short_export_is_detected(data: bytes, match: str) -> None:
    with pytest.raises(DoccanoError, match=match):
        doccano.parse_export_zip(data, source="src")


def test_doccano_team_individual_pull_states_its_attribution() -> None:
    result = doccano.PullResult(doccano.ProjectRef(1, "p", False), [], [], 0, {})
    assert result.summary()["attribution"] == "per annotator: Doccano's export has one file per member, named after them"
    assert "spans_copied_for_relations" not in result.summary()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_doccano_team_loopback_needs_nothing(host: str) -> None:
    assert doccano_server.check_exposure(host, None) == []


@pytest.mark.parametrize(
    "creds",
    [None, Credentials("admin", ""), Credentials("admin", "short-pw"), Credentials("admin", "password"),
     Credentials("a-long-user-name", "a-long-user-name")],
)
@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3"])
def test_doccano_team_exposure_refuses_weak_passwords(host: str, creds: Credentials | None) -> None:
    with pytest.raises(DoccanoError, match=rf"serving on {host} \(beyond this machine\) needs a strong admin password.*nothing was started"):
        doccano_server.check_exposure(host, creds)


@pytest.mark.parametrize(("host", "count", "first"), [("10.1.2.3", 1, "Doccano will be reachable"), ("0.0.0.0", 2, "serving on every network interface")])
def test_doccano_team_exposure_warns(host: str, count: int, first: str) -> None:
    warnings = doccano_server.check_exposure(host, Credentials("admin", STRONG))
    assert len(warnings) == count
    assert warnings[0].startswith(first)


def test_doccano_team_allowed_hosts_and_csrf() -> None:
    hosts = doccano_server.allowed_hosts("10.1.2.3", ("annotate.example.org",))
    assert hosts == ["127.0.0.1", "localhost", "::1", "10.1.2.3", "annotate.example.org"]
    assert doccano_server.allowed_hosts("127.0.0.1") == ["127.0.0.1", "localhost", "::1"]
    env = doccano_server.web_settings_env(["127.0.0.1", "::1"], 8000)
    assert env == {
        "DJANGO_SETTINGS_MODULE": "annotate_doccano_settings",
        "ANNOTATE_DOCCANO_ALLOWED_HOSTS": "127.0.0.1,::1",
        "CSRF_TRUSTED_ORIGINS": "http://127.0.0.1:8000,https://127.0.0.1:8000,http://[::1]:8000,https://[::1]:8000",
    }
    everywhere = doccano_server.allowed_hosts("0.0.0.0")
    assert everywhere[:3] == ["127.0.0.1", "localhost", "::1"] and len(everywhere) > 3  # + this machine's name


@pytest.mark.parametrize("password", [None, "short"])
def test_doccano_team_cli_serve_beyond_loopback_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, password: str | None) -> None:
    if password is None:
        monkeypatch.delenv("ANNOTATE_DOCCANO_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("ANNOTATE_DOCCANO_PASSWORD", password)
    result = CliRunner().invoke(app, ["doccano", "serve", "--data-dir", str(tmp_path), "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert "serving on 0.0.0.0 (beyond this machine) needs a strong admin password" in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("args", "match"), [(["--role", "boss"], "unknown role 'boss'"), ([], "not a Doccano data dir yet")])
def test_doccano_team_cli_users_add_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], match: str) -> None:
    monkeypatch.setenv("ANNOTATE_NEW_PASSWORD", STRONG)
    result = CliRunner().invoke(app, ["doccano", "users", "add", "zoe", *args, "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert match in result.output
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- against a real Doccano


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.doccano
@pytest.mark.slow
def test_doccano_team_users_add_list_and_bare_member(live_doccano, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(live_doccano.data_dir)]
    monkeypatch.setenv("ANNOTATE_NEW_PASSWORD", STRONG)
    added = runner.invoke(app, ["doccano", "users", "add", "gina", "--role", "approver", *data, "--json"])
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout) == {"user": "gina", "role": "approver", "created": True, "data_dir": str(live_doccano.data_dir)}
    monkeypatch.delenv("ANNOTATE_NEW_PASSWORD")
    lead = runner.invoke(app, ["doccano", "users", "add", "hank", "--role", "admin", *data, "--json"])
    assert lead.exit_code == 0, lead.output
    generated = json.loads(lead.stdout)["password"]  # no password given and no terminal: generated, shown once
    assert len(generated) >= 20
    assert doccano.connect(live_doccano.url, Credentials("gina", STRONG)).username == "gina"
    hank = doccano.connect(live_doccano.url, Credentials("hank", generated))
    assert hank.client.get_profile().is_superuser

    monkeypatch.setenv("ANNOTATE_DOCCANO_USER", "hank")  # the new admin can push
    monkeypatch.setenv("ANNOTATE_DOCCANO_PASSWORD", generated)
    records = tmp_path / "records.jsonl"
    write_jsonl(records, gold_records()[:1])
    pushed = runner.invoke(app, ["doccano", "push", str(records), "--project", "team-users", "--member", "gina", *data, "--json"])
    assert pushed.exit_code == 0, pushed.output
    assert json.loads(pushed.stdout)["members"] == {"gina": "annotation_approver"}  # her account role

    listed = runner.invoke(app, ["doccano", "users", "list", *data, "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {row["user"]: row for row in json.loads(listed.stdout)}
    assert (rows["gina"]["role"], rows["gina"]["projects"]) == ("approver", {"team-users": "annotation_approver"})
    assert (rows["hank"]["role"], rows["hank"]["projects"]) == ("admin", {"team-users": "project_admin"})
    assert rows["admin"]["role"] == "admin"


@pytest.mark.doccano
@pytest.mark.slow
def test_doccano_team_collaborative_project_pulled_per_annotator(live_doccano) -> None:
    ivy, jon = live_doccano.user("ivy"), live_doccano.user("jon")
    admin = doccano.connect(live_doccano.url, live_doccano.admin)
    docs = [LabelledDoc.from_article(d) for d in gold_records()[:2]]
    pushed = doccano.push(admin, "collab", docs, SCHEMA, members=[("ivy", "annotator"), ("jon", "annotator")])
    pid = pushed.project.id
    admin.client.update_project(pid, collaborative_annotation=True)
    examples = doccano.existing_record_ids(admin, pushed.project)

    ivy_docs = [replace(gold_records()[0], annotator="ivy", status="confirmed")]  # confirms flag#0
    as_ivy = doccano.connect(live_doccano.url, ivy)
    assert doccano.label(as_ivy, "collab", ivy_docs).labelled == 1
    as_jon = doccano.connect(live_doccano.url, jon)
    ivy_umerov = next(s for s in as_jon.client.list_spans(pid, examples["flag#0"]) if s.start_offset == 27)
    kyiv = as_jon.client.create_span(pid, examples["flag#0"], 47, 51, "GPE")  # UTF-16 units
    as_jon.client.create_relation(pid, examples["flag#0"], ivy_umerov.id, kyiv.id, "AFFILIATED_WITH")  # to ivy's span
    as_jon.client.create_span(pid, examples["overlap#0"], 70, 87, "PERSON")  # "Thierry Burkhardt", unconfirmed

    pulled = doccano.pull(admin, "collab", SCHEMA)
    got = {(d.id, d.annotator): d for d in pulled.docs}
    assert sorted(got) == [("flag#0", "ivy"), ("flag#0", "jon"), ("overlap#0", "jon")]
    assert got["flag#0", "ivy"].to_dict() == ivy_docs[0].to_dict()  # her ids, attributes (negated) and offsets back
    jon_flag = got["flag#0", "jon"]
    assert [(EMOJI_TEXT[e.start : e.end], e.label) for e in jon_flag.entities] == [("Rustem Umerov", "PERSON"), ("Kyiv", "GPE")]
    assert [(r.label, r.head, r.tail) for r in jon_flag.relations] == [("AFFILIATED_WITH", f"dc{ivy_umerov.id}", f"dc{kyiv.id}")]
    # confirmation is shared in a collaborative project: ivy confirmed flag#0 for everyone
    assert (jon_flag.status, got["overlap#0", "jon"].status) == ("confirmed", "unconfirmed")
    summary = pulled.summary()
    assert summary["attribution"] == doccano.ATTRIBUTION_COLLABORATIVE
    assert "not who last edited it" in summary["attribution"]
    assert summary["spans_copied_for_relations"] == 1
    assert summary["records_per_annotator"] == {"ivy": 1, "jon": 2}


@pytest.fixture()
def restore_parts(live_doccano):
    """Whatever a fault test kills, the session's server is whole again afterwards."""
    yield live_doccano
    for part in ("web", "worker"):
        info = doccano_server.read_state(live_doccano.data_dir)
        pid = info.web_pid if part == "web" else info.worker_pid
        if not doccano_server._alive(pid):
            doccano_server.restart_part(live_doccano.data_dir, part)
    assert doccano_server.health(live_doccano.url)


@pytest.mark.doccano
@pytest.mark.slow
def test_doccano_team_worker_killed_during_export(restore_parts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    live = restore_parts
    admin = doccano.connect(live.url, live.admin)
    doccano.push(admin, "fault-export", gold_records(), SCHEMA)
    out = tmp_path / "corpus"
    doccano.run_pull(live.url, live.admin, "fault-export", out, SCHEMA)
    before = _snapshot(out)
    monkeypatch.setattr(doccano, "TASK_ATTEMPTS", 2)
    monkeypatch.setattr(doccano, "TASK_RETRY_BACKOFF_S", 0.1)

    # the worker dies with the export queued: the pull notices (the pid the CLI watches for the embedded
    # server), retries once, and fails with one line; the output folder is untouched
    check = doccano_server.worker_checker(live.data_dir)
    doccano_server.kill_part(live.data_dir, "worker")
    started = time.monotonic()
    with pytest.raises(DoccanoError, match=r"exporting project 'fault-export': Doccano's Celery worker is gone") as err:
        doccano.run_pull(live.url, live.admin, "fault-export", out, SCHEMA, force=True, worker_check=check)
    assert "\n" not in str(err.value)
    assert time.monotonic() - started < 30  # not the 600 s task timeout
    assert _snapshot(out) == before

    # a worker back while the pull waits: the queued export runs and the pull completes
    restarter = threading.Timer(1.0, doccano_server.restart_part, args=(live.data_dir, "worker"))
    doccano_server.kill_part(live.data_dir, "worker")
    restarter.start()
    summary = doccano.run_pull(live.url, live.admin, "fault-export", out, SCHEMA, force=True, worker_check=check)
    restarter.join()
    assert (summary["records"], summary["labels"]) == (3, 13)


@pytest.mark.doccano
@pytest.mark.slow
def test_doccano_team_web_restarted_mid_push_and_pull_while_down(restore_parts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    live = restore_parts
    admin = doccano.connect(live.url, live.admin)
    wait_task = doccano.wait_task

    def web_dies_while_waiting(conn, task_id, **kwargs):
        doccano_server.kill_part(live.data_dir, "web")  # the upload went in; its answer never comes
        return wait_task(conn, task_id, **kwargs)

    monkeypatch.setattr(doccano, "wait_task", web_dies_while_waiting)
    with pytest.raises(DoccanoError, match=r"cannot reach Doccano at http://127\.0\.0\.1:\d+"):
        doccano.push(admin, "fault-push", gold_records(), SCHEMA)
    monkeypatch.setattr(doccano, "wait_task", wait_task)

    # a pull while the server is down: one line, exit 1, nothing written
    out = tmp_path / "corpus"
    out.mkdir()
    (out / "labelled.jsonl").write_text("earlier\n", encoding="utf-8")
    monkeypatch.setenv("ANNOTATE_DOCCANO_PASSWORD", live.admin.password)
    result = CliRunner().invoke(app, ["doccano", "pull", "--project", "fault-push", "--out", str(out), "--url", live.url])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "cannot reach Doccano at" in result.output
    assert _snapshot(out) == {"labelled.jsonl": b"earlier\n"}

    doccano_server.restart_part(live.data_dir, "web")
    admin = doccano.connect(live.url, live.admin)
    again = doccano.push(admin, "fault-push", gold_records(), SCHEMA)
    assert again.uploaded + again.skipped == 3
    by_record = doccano.examples_by_record(admin, again.project)
    assert {rid: len(ids) for rid, ids in by_record.items()} == {"flag#0": 1, "overlap#0": 1, "combining#0": 1}


@pytest.mark.doccano
@pytest.mark.slow
def test_doccano_team_late_import_copies_are_removed(live_doccano) -> None:
    """An earlier cut-off push whose import lands after the re-push listed the project: the copies go."""
    admin = doccano.connect(live_doccano.url, live_doccano.admin)
    first = doccano.push(admin, "late-import", gold_records()[:2], SCHEMA)
    late = [doccano.to_task(d, unit=first.project.unit) for d in gold_records()[:2]]
    doccano.upload_rows(admin, first.project, late)  # what the earlier, interrupted push's import leaves
    assert sorted(len(ids) for ids in doccano.examples_by_record(admin, first.project).values()) == [2, 2]
    kept = doccano.existing_record_ids(admin, first.project)
    assert doccano.remove_repeated_uploads(admin, first.project, {"flag#0", "overlap#0"}) == 2
    assert doccano.examples_by_record(admin, first.project) == {rid: [i] for rid, i in kept.items()}


@pytest.mark.doccano
@pytest.mark.slow
def test_doccano_team_real_export_cut_short(live_doccano) -> None:
    admin = doccano.connect(live_doccano.url, live_doccano.admin)
    project = doccano.push(admin, "cut-export", gold_records(), SCHEMA).project
    task = admin.post(f"projects/{project.id}/download", {"format": "JSONL", "exportApproved": False}, what="export")
    doccano.wait_task(admin, task["task_id"], what="export")
    data = doccano.download_whole(admin, f"projects/{project.id}/download", what="export", taskId=task["task_id"])
    assert [len(v) for v in doccano.parse_export_zip(data).values()] == [3]
    with pytest.raises(DoccanoError, match=r"^cut: the export is not a zip file or is cut short"):
        doccano.parse_export_zip(data[: len(data) // 2], source="cut")


def _status(url: str, host_header: str) -> int:
    request = urllib.request.Request(f"{url}/v1/health/", headers={"Host": host_header})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


@pytest.mark.doccano
@pytest.mark.slow
def test_doccano_team_loopback_server_refuses_foreign_host_headers(live_doccano) -> None:
    port = live_doccano.url.rsplit(":", 1)[1]
    assert _status(live_doccano.url, f"127.0.0.1:{port}") == 200
    assert _status(live_doccano.url, "attacker.example") == 400  # DNS rebinding: Doccano alone allows any Host


def _own_address() -> str | None:
    """A non-loopback IPv4 address of this machine, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if ipaddress.ip_address(address).is_loopback or address == "0.0.0.0" else address


@pytest.mark.doccano
@pytest.mark.slow
@pytest.mark.skipif(_own_address() is None, reason="this machine has no non-loopback IPv4 address to serve on")
def test_doccano_team_serve_on_own_address(live_doccano, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    address = _own_address()
    monkeypatch.setenv("ANNOTATE_DOCCANO_PASSWORD", STRONG)
    monkeypatch.setenv("ANNOTATE_DOCCANO_VENV", str(live_doccano.venv))
    port = doccano_server.free_port()
    data_dir = tmp_path / "exposed"
    data_dir.mkdir()
    # a copy of the session server's migrated database spares this test `doccano init` (a minute on a busy machine)
    with sqlite3.connect(live_doccano.data_dir / "db.sqlite3") as source, sqlite3.connect(data_dir / "db.sqlite3") as copy:
        source.backup(copy)
    (data_dir / doccano_server.INIT_MARKER).write_text("copied\n", encoding="utf-8")
    try:
        result = CliRunner().invoke(app, ["doccano", "serve", "--data-dir", str(data_dir), "--host", address, "--port", str(port), "--json"])
        assert result.exit_code == 0, result.output
        assert f"warning: Doccano will be reachable from other machines on {address} over plain HTTP" in result.stderr
        info = json.loads(result.stdout)
        assert (info["url"], info["allowed_hosts"]) == (f"http://{address}:{port}", ["127.0.0.1", "localhost", "::1", address])
        assert _status(info["url"], f"{address}:{port}") == 200
        assert _status(info["url"], "attacker.example") == 400
        assert doccano.connect(info["url"], Credentials("admin", STRONG)).client.get_profile().is_superuser  # the password was set
    finally:
        doccano_server.stop(data_dir)
