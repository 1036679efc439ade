"""PostgreSQL as Doccano's database, and backups: settings and bad files without a server; against a real
local PostgreSQL cluster (Debian's initdb) and real Doccano 1.8.4 servers, serve/push/label/pull, stop,
secrets, and backup -> restore into a fresh data dir -> identical pull, for SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from test_doccano import gold_records
from typer.testing import CliRunner

from annotate import doccano, doccano_backup, doccano_db, doccano_server
from annotate.cli import app
from annotate.doccano_server import Credentials, free_port
from annotate.errors import DoccanoError, InputError, OutputError
from annotate.records import LabelledDoc
from annotate.schema import load_schema

SCHEMA = load_schema()
needs_postgres = pytest.mark.skipif(
    not doccano_db.have_postgres(), reason="PostgreSQL server programs (initdb) not installed: `make postgres` installs them (as root)"
)


@pytest.fixture
def pg_dir() -> Iterator[Path]:
    """A data dir the unprivileged postgres user can reach (pytest's own tmp folders are 0700 root)."""
    folder = Path(tempfile.mkdtemp(prefix="annotate-pg-"))
    folder.chmod(0o711)
    try:
        yield folder
    finally:
        doccano_server.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that contain ``text`` (zombies have none)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(cmdline)
    return found


# ------------------------------------------------------------------------------- settings (no server)


def test_doccano_db_data_dir_keeps_its_kind(tmp_path: Path) -> None:
    assert doccano_db.configure(tmp_path).kind == "sqlite"  # a new data dir: SQLite
    assert json.loads((tmp_path / "database.json").read_text(encoding="utf-8"))["kind"] == "sqlite"
    with pytest.raises(DoccanoError, match="holds a sqlite database; it cannot be served with postgres"):
        doccano_db.configure(tmp_path, "postgres")
    with pytest.raises(DoccanoError, match="unknown database 'mysql'"):
        doccano_db.configure(tmp_path / "other", "mysql")


@pytest.mark.parametrize("url", ["mysql://u:hunter2@db.example/doccano", "postgresql://u:hunter2@/doccano", "postgres://u:hunter2@h:5432/"])
def test_doccano_db_bad_url_is_refused_without_echoing_it(tmp_path: Path, url: str) -> None:
    with pytest.raises(DoccanoError, match="--database-url must look like postgresql://") as err:
        doccano_db.configure(tmp_path, url=url)
    assert "hunter2" not in str(err.value)


def test_doccano_db_external_url_only_in_a_private_file(tmp_path: Path) -> None:
    url = "postgresql://team:s3cr%2Ft@10.0.0.5:5433/doccano"
    assert doccano_db.configure(tmp_path, url=url).kind == "url"
    assert (tmp_path / "database.secret").stat().st_mode & 0o777 == 0o600
    assert "s3cr" not in (tmp_path / "database.json").read_text(encoding="utf-8")
    assert doccano_db.database_url(tmp_path) == url
    env = doccano_db.pg_env(tmp_path)
    assert (env["PGHOST"], env["PGPORT"], env["PGUSER"], env["PGPASSWORD"], env["PGDATABASE"]) == ("10.0.0.5", "5433", "team", "s3cr/t", "doccano")


def test_doccano_db_postgres_url_needs_the_cluster_running(tmp_path: Path) -> None:
    doccano_db.configure(tmp_path, "postgres")
    with pytest.raises(DoccanoError, match="PostgreSQL of .* is not running"):
        doccano_db.database_url(tmp_path)


# --------------------------------------------------------------------------- backup files (no server)


def sqlite_data_dir(folder: Path, rows: list[str]) -> Path:
    """A data dir whose db.sqlite3 holds ``rows`` (enough for the backup's file handling)."""
    folder.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(folder / "db.sqlite3") as db:
        db.execute("CREATE TABLE IF NOT EXISTS t (x TEXT)")
        db.executemany("INSERT INTO t VALUES (?)", [(r,) for r in rows])
    db.close()
    return folder


def sqlite_rows(folder: Path) -> list[str]:
    db = sqlite3.connect(folder / "db.sqlite3")
    try:
        return [x for (x,) in db.execute("SELECT x FROM t ORDER BY rowid")]
    finally:
        db.close()


def test_doccano_backup_sqlite_round_trip(tmp_path: Path) -> None:
    source = sqlite_data_dir(tmp_path / "source", ["Kyiv", "Paris"])
    summary = doccano_backup.backup(source, tmp_path / "b.tar.gz")
    assert (summary["database"], summary["doccano"]) == ("sqlite", "1.8.4")
    with tarfile.open(tmp_path / "b.tar.gz") as tar:
        assert tar.getnames() == ["manifest.json", "database.sqlite3"]
    restored = doccano_backup.restore(tmp_path / "b.tar.gz", tmp_path / "fresh")
    assert (restored["database"], restored["replaced"]) == ("sqlite", False)
    assert sqlite_rows(tmp_path / "fresh") == ["Kyiv", "Paris"]
    assert (tmp_path / "fresh" / doccano_server.INIT_MARKER).is_file()  # serve will not re-run `doccano init`


def rewrite(backup: Path, out: Path, *, manifest: dict | None = None, payload: bytes | None = None, first: str = "manifest.json") -> Path:
    """A copy of ``backup`` with its manifest or payload changed."""
    with tarfile.open(backup) as tar:
        old_manifest = json.loads(tar.extractfile("manifest.json").read())
        old_payload = tar.extractfile("database.sqlite3").read()
    members = {"manifest.json": json.dumps({**old_manifest, **(manifest or {})}).encode(), "database.sqlite3": payload or old_payload}
    order = [first] + [name for name in members if name != first]
    with tarfile.open(out, "w:gz") as tar:
        for name in order:
            info = tarfile.TarInfo(name)
            info.size = len(members[name])
            tar.addfile(info, io.BytesIO(members[name]))
    return out


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        ("truncate", "not a complete Doccano backup"),
        ("text", "not a complete Doccano backup .*not a gzip file"),
        ("payload-first", "no manifest.json first"),
        ("format", "unknown backup format 'something-else/2'"),
        ("version", "made for Doccano 1.8.3, this toolkit runs 1.8.4"),
        ("bitflip", "the database in the backup is damaged"),
    ],
)
def test_doccano_restore_refuses_a_bad_file_and_touches_nothing(tmp_path: Path, damage: str, match: str) -> None:
    good = tmp_path / "good.tar.gz"
    doccano_backup.backup(sqlite_data_dir(tmp_path / "source", ["Kyiv"]), good)
    bad = tmp_path / "bad.tar.gz"
    if damage == "truncate":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif damage == "text":
        bad.write_text("not a backup\n", encoding="utf-8")
    elif damage == "payload-first":
        rewrite(good, bad, first="database.sqlite3")
    elif damage == "format":
        rewrite(good, bad, manifest={"format": "something-else/2"})
    elif damage == "version":
        rewrite(good, bad, manifest={"doccano": "1.8.3"})
    else:
        payload = bytearray((tmp_path / "source" / "db.sqlite3").read_bytes())
        payload[200] ^= 0xFF
        rewrite(good, bad, payload=bytes(payload))
    target = tmp_path / "fresh"
    with pytest.raises(InputError, match=match):
        doccano_backup.restore(bad, target)
    assert not target.exists()
    result = CliRunner().invoke(app, ["doccano", "restore", str(bad), "--data-dir", str(target)])
    assert result.exit_code == 1
    assert result.output.startswith(f"error: {bad}: ") and result.output.count("\n") == 1
    assert not target.exists()


def test_doccano_restore_into_a_used_data_dir_needs_force(tmp_path: Path) -> None:
    backup = tmp_path / "b.tar.gz"
    doccano_backup.backup(sqlite_data_dir(tmp_path / "source", ["from the backup"]), backup)
    used = sqlite_data_dir(tmp_path / "used", ["already here"])
    with pytest.raises(OutputError, match="used is not empty; restore into a fresh data dir, or pass --force"):
        doccano_backup.restore(backup, used)
    assert sqlite_rows(used) == ["already here"]
    doccano_db.configure(tmp_path / "pg", "postgres")
    with pytest.raises(OutputError, match="holds a postgres database and the backup a sqlite one"):
        doccano_backup.restore(backup, tmp_path / "pg", force=True)
    assert doccano_backup.restore(backup, used, force=True)["replaced"] is True
    assert sqlite_rows(used) == ["from the backup"]


def test_doccano_backup_of_a_data_dir_without_database(tmp_path: Path) -> None:
    with pytest.raises(DoccanoError, match="db.sqlite3: no Doccano database here"):
        doccano_backup.backup(tmp_path, tmp_path / "b.tar.gz")
    assert not (tmp_path / "b.tar.gz").exists()



def test_doccano_backup_never_replaces_an_older_backup_unless_forced(tmp_path: Path) -> None:
    source = sqlite_data_dir(tmp_path / "source", ["Kyiv"])
    older = tmp_path / "b.tar.gz"
    older.write_bytes(b"an older backup")
    result = CliRunner().invoke(app, ["doccano", "backup", "--out", str(older), "--data-dir", str(source)])
    assert result.exit_code == 1
    message = f"error: {older} already exists (an earlier backup?): write to a new file, or pass --force to replace it"
    assert result.stderr.strip().splitlines() == [message]
    assert older.read_bytes() == b"an older backup"
    forced = CliRunner().invoke(app, ["doccano", "backup", "--out", str(older), "--data-dir", str(source), "--force"])
    assert forced.exit_code == 0, forced.output
    doccano_backup.restore(older, tmp_path / "fresh")
    assert sqlite_rows(tmp_path / "fresh") == ["Kyiv"]


# ------------------------------------------------------------------------------ a real local cluster


@needs_postgres
def test_doccano_db_cluster_loopback_scram_and_stopped(pg_dir: Path) -> None:
    doccano_db.configure(pg_dir, "postgres")
    pid = doccano_db.start_cluster(pg_dir)
    password = doccano_db.read_secret(pg_dir)
    port = doccano_db.cluster_port(pg_dir)
    assert doccano_db.start_cluster(pg_dir) == pid  # already running: the same postmaster
    settings = doccano_db.pg_tool("psql", "-Atc", "SHOW listen_addresses; SHOW unix_socket_directories; SHOW password_encryption",
                                  env=doccano_db.pg_env(pg_dir), what="psql")
    assert settings.splitlines() == ["127.0.0.1", "", "scram-sha-256"]
    assert (pg_dir / "database.secret").stat().st_mode & 0o777 == 0o600
    assert not any(password in cmd for cmd in processes_mentioning(""))
    wrong = doccano_db.pg_env(pg_dir) | {"PGPASSWORD": "wrong"}
    with pytest.raises(DoccanoError, match="password authentication failed"):
        doccano_db.pg_tool("psql", "-Atc", "SELECT 1", env=wrong, what="psql")
    assert doccano_db.stop_cluster(pg_dir) is True
    assert processes_mentioning(str(pg_dir / "pgdata")) == []
    assert doccano_db.cluster_port(pg_dir) is None and port is not None



def pg_rows(data_dir: Path, database: str | None = None) -> list[str]:
    env = doccano_db.pg_env(data_dir) | ({"PGDATABASE": database} if database else {})
    return doccano_db.pg_tool("psql", "-Atc", "SELECT x FROM t ORDER BY x", env=env, what="psql").split()


def pg_databases(data_dir: Path) -> list[str]:
    env = doccano_db.pg_env(data_dir) | {"PGDATABASE": "postgres"}
    return doccano_db.pg_tool("psql", "-Atc", "SELECT datname FROM pg_database WHERE datname LIKE 'doccano%' ORDER BY 1",
                              env=env, what="psql").split()


@needs_postgres
@pytest.mark.slow
def test_doccano_restore_force_into_postgres_keeps_the_replaced_database(pg_dir: Path, tmp_path: Path) -> None:
    doccano_db.configure(pg_dir, "postgres")
    doccano_db.start_cluster(pg_dir)
    psql = lambda sql: doccano_db.pg_tool("psql", "-v", "ON_ERROR_STOP=1", "-c", sql, env=doccano_db.pg_env(pg_dir), what="psql")
    psql("CREATE TABLE t (x text); INSERT INTO t VALUES ('Kyiv')")
    doccano_backup.backup(pg_dir, tmp_path / "b.tar.gz")
    psql("INSERT INTO t VALUES ('Vilnius')")  # work done after the backup
    # a backup whose manifest checks out but whose dump pg_restore refuses: the current database is untouched
    bad = tmp_path / "bad.tar.gz"
    junk = b"not a pg_dump archive"
    with tarfile.open(tmp_path / "b.tar.gz") as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
    manifest |= {"bytes": len(junk), "sha256": hashlib.sha256(junk).hexdigest()}
    with tarfile.open(bad, "w:gz") as tar:
        for name, blob in (("manifest.json", json.dumps(manifest).encode()), (manifest["payload"], junk)):
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    with pytest.raises(DoccanoError, match="pg_restore into .* failed"):
        doccano_backup.restore(bad, pg_dir, force=True)
    assert pg_rows(pg_dir) == ["Kyiv", "Vilnius"] and pg_databases(pg_dir) == ["doccano"]
    # a good one: the restored database takes the name, the replaced one is kept beside it
    summary = doccano_backup.restore(tmp_path / "b.tar.gz", pg_dir, force=True)
    kept = summary["replaced_database_kept_as"]
    assert summary["replaced"] is True and kept.startswith("doccano_replaced_")
    assert pg_rows(pg_dir) == ["Kyiv"]
    assert pg_rows(pg_dir, kept) == ["Kyiv", "Vilnius"]
    assert pg_databases(pg_dir) == ["doccano", kept]

# ------------------------------------------------------------------ real Doccano servers on PostgreSQL


def label_some(url: str, admin: Credentials, annotator: Credentials, project: str) -> list[LabelledDoc]:
    """Push the gold records (the admin's labels) and label two of them as ``annotator``; return the pull."""
    conn = doccano.connect(url, admin)
    doccano.push(conn, project, gold_records(), SCHEMA, members=[(annotator.username, "annotator")])
    mine = [replace(d, annotator=annotator.username, status="confirmed") for d in gold_records()[:2]]
    assert doccano.label(doccano.connect(url, annotator), project, mine).labelled == 2
    return doccano.pull(conn, project, SCHEMA).docs


def serve(data_dir: Path, admin: Credentials, **kwargs: object) -> doccano_server.StartResult:
    venv = doccano_server.ensure_installed(doccano_server.default_venv())
    return doccano_server.start(data_dir, port=free_port(), venv=venv, credentials=admin, **kwargs)


@needs_postgres
@pytest.mark.doccano
@pytest.mark.slow
def test_doccano_postgres_serve_label_pull_backup_restore(pg_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    admin = Credentials("admin", secrets.token_urlsafe(12))
    source, fresh = pg_dir / "source", pg_dir / "fresh"
    source.mkdir(mode=0o711)
    monkeypatch.setenv("ANNOTATE_DOCCANO_USER", admin.username)
    monkeypatch.setenv("ANNOTATE_DOCCANO_PASSWORD", admin.password)
    runner = CliRunner()
    served = runner.invoke(app, ["doccano", "serve", "--data-dir", str(source), "--port", str(free_port()), "--database", "postgres", "--json"])
    assert served.exit_code == 0, served.output
    info = json.loads(served.stdout)
    assert info["database"] == "postgres" and doccano_db.is_postgres_pid(info["db_pid"])
    try:
        annotator = Credentials("pat", secrets.token_urlsafe(12))
        assert doccano_server.create_user(source, annotator) is True  # straight into PostgreSQL
        before = label_some(info["url"], admin, annotator, "team")
        assert [(d.annotator, d.id) for d in before] == [("admin", "flag#0"), ("pat", "flag#0"), ("admin", "overlap#0"),
                                                          ("pat", "overlap#0"), ("admin", "combining#0")]
        users = doccano_db.pg_tool("psql", "-Atc", "SELECT username FROM auth_user ORDER BY username", env=doccano_db.pg_env(source), what="psql")
        assert users.split() == ["admin", "pat"]  # Doccano's data lives in the cluster, not in a db.sqlite3
        assert not (source / "db.sqlite3").exists()

        password = doccano_db.read_secret(source)
        for text in (source / "server.json").read_text(encoding="utf-8"), *(p.read_text(errors="replace") for p in (source / "logs").iterdir()):
            assert password not in text and admin.password not in text
        assert not any(password in cmd or admin.password in cmd for cmd in processes_mentioning(""))

        backup = tmp_path / "team.tar.gz"  # while the server runs
        assert runner.invoke(app, ["doccano", "backup", "--data-dir", str(source), "--out", str(backup)]).exit_code == 0
    finally:
        stopped = runner.invoke(app, ["doccano", "stop", "--data-dir", str(source), "--json"])
    assert json.loads(stopped.stdout) == {"stopped": True}
    assert processes_mentioning(str(source)) == []  # web, worker and postgres all gone

    restored = runner.invoke(app, ["doccano", "restore", str(backup), "--data-dir", str(fresh), "--json"])
    assert restored.exit_code == 0, restored.output
    assert json.loads(restored.stdout)["database"] == "postgres"
    assert doccano_db.read_secret(fresh) != password  # a new cluster, a new password
    result = serve(fresh, admin)
    try:
        after = doccano.pull(doccano.connect(result.info.url, admin), "team", SCHEMA).docs
    finally:
        doccano_server.stop(fresh)
    assert [d.to_dict() for d in after] == [d.to_dict() for d in before]
    assert processes_mentioning(str(fresh)) == []


@pytest.mark.doccano
@pytest.mark.slow
def test_doccano_sqlite_backup_restore_pulls_the_same(live_doccano, tmp_path: Path) -> None:
    annotator = live_doccano.user("quinn")
    before = label_some(live_doccano.url, live_doccano.admin, annotator, "backed-up")
    backup = tmp_path / "sqlite.tar.gz"
    assert doccano_backup.backup(live_doccano.data_dir, backup)["database"] == "sqlite"  # online, while it runs
    fresh = tmp_path / "fresh"
    doccano_backup.restore(backup, fresh)
    result = serve(fresh, live_doccano.admin)
    try:
        after = doccano.pull(doccano.connect(result.info.url, live_doccano.admin), "backed-up", SCHEMA).docs
    finally:
        doccano_server.stop(fresh)
    assert [d.to_dict() for d in after] == [d.to_dict() for d in before]
    assert {d.annotator for d in after} == {"admin", "quinn"}
