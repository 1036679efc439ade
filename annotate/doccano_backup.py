"""Back up the embedded Doccano's database to one file, and restore it into a data dir.

A backup is a gzipped tar of two members::

    manifest.json   {"format": "annotate-doccano-backup/1", "database": "sqlite" | "postgres",
                     "doccano": "1.8.4", "created_at": ..., "payload": NAME, "bytes": N, "sha256": HEX}
    NAME            database.sqlite3 (SQLite's online backup API: consistent while the server runs)
                    or database.pgdump (``pg_dump -Fc``; a local cluster is started for it if stopped)

It holds the database only: projects, examples, labels, comments, users (password hashes), roles and
example states. Not in it: ``media/`` (Doccano keeps only passing import uploads and export zips there for
text projects), the Celery broker (a queue of passing tasks), logs, and no password: a restored local
PostgreSQL gets a fresh cluster with a new random password.

Restore checks the whole file first (format, Doccano version, size and checksum of the payload), so a
truncated or foreign file is refused in one line before anything is touched; it refuses a data dir that is
not empty unless ``force`` (then it replaces that data dir's database, which must be of the same kind and
not running).
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import sqlite3
import tarfile
import tempfile
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import doccano_db, doccano_server
from .errors import DoccanoError, InputError, OutputError
from .records import file_sha256

log = logging.getLogger(__name__)

FORMAT = "annotate-doccano-backup/1"
MANIFEST = "manifest.json"
PAYLOADS = {"sqlite": "database.sqlite3", "postgres": "database.pgdump"}
CHUNK = 1 << 20
MANIFEST_MAX_BYTES = 64 * 1024


# -------------------------------------------------------------------------------------------- backup


def backup(data_dir: Path, out: Path, *, force: bool = False) -> dict[str, Any]:
    """Write a backup of ``data_dir``'s database to ``out`` (atomically: a failed backup leaves no file). An
    existing ``out`` (an older backup, perhaps the only copy of work since lost) is replaced only if ``force``."""
    if out.exists() and not force:
        raise OutputError(f"{out} already exists (an earlier backup?): write to a new file, or pass --force to replace it")
    data_dir = data_dir.resolve()
    kind = doccano_db.kind_of(data_dir)
    stored = "postgres" if kind in ("postgres", "url") else "sqlite"
    with tempfile.TemporaryDirectory(prefix=".backup-", dir=out.resolve().parent) as tmp:
        payload = Path(tmp) / PAYLOADS[stored]
        if stored == "sqlite":
            _sqlite_copy(data_dir / doccano_db.SQLITE_FILE, payload)
        else:
            with doccano_db.available(data_dir):
                doccano_db.pg_tool("pg_dump", "-Fc", "--no-owner", "--no-privileges", "-f", str(payload),
                                   env=doccano_db.pg_env(data_dir), what=f"pg_dump of {data_dir}")
        manifest = {"format": FORMAT, "database": stored, "doccano": doccano_server.DOCCANO_VERSION,
                    "created_at": datetime.now(UTC).isoformat(timespec="seconds"), "payload": payload.name,
                    "bytes": payload.stat().st_size, "sha256": file_sha256(payload)}
        partial = Path(tmp) / "backup.tar.gz"
        with tarfile.open(partial, "w:gz") as tar:
            blob = json.dumps(manifest, indent=2).encode("utf-8")
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(blob)
            info.mtime = int(datetime.now(UTC).timestamp())
            tar.addfile(info, io.BytesIO(blob))
            tar.add(payload, arcname=payload.name)
        os.replace(partial, out)
    log.info("backed up %s (%s, %d bytes) to %s", data_dir, stored, manifest["bytes"], out)
    return {"output": str(out), "data_dir": str(data_dir), **{k: manifest[k] for k in ("database", "doccano", "bytes", "sha256")}}


def _sqlite_copy(source: Path, target: Path) -> None:
    if not source.is_file():
        raise DoccanoError(f"{source}: no Doccano database here (serve this data dir once first)")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # page by page, consistent even while gunicorn writes
    except sqlite3.Error as err:
        raise DoccanoError(f"{source}: SQLite backup failed: {err}") from err
    finally:
        dst.close()
        src.close()


# ------------------------------------------------------------------------------------------- restore


def read_manifest(archive: Path, workdir: Path) -> tuple[dict[str, Any], Path]:
    """Check a backup file completely and unpack its payload into ``workdir``; InputError names what is wrong."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            manifest = _manifest(archive, tar)
            member = tar.getmember(manifest["payload"])
            if not member.isfile():
                raise InputError(f"payload {member.name!r} is not a file", path=archive)
            payload = workdir / manifest["payload"]
            with tar.extractfile(member) as src, payload.open("wb") as dst:  # type: ignore[union-attr]
                shutil.copyfileobj(src, dst, CHUNK)
    except (tarfile.TarError, EOFError, zlib.error, OSError, KeyError) as err:
        raise InputError(f"not a complete Doccano backup (truncated, or not made by `annotate doccano backup`): {err}", path=archive) from err
    size, digest = payload.stat().st_size, file_sha256(payload)
    if size != manifest["bytes"] or digest != manifest["sha256"]:
        raise InputError(f"the database in the backup is damaged ({size} bytes, sha256 {digest[:12]}...; "
                         f"the manifest says {manifest['bytes']} bytes, {str(manifest['sha256'])[:12]}...)", path=archive)
    return manifest, payload


def _manifest(archive: Path, tar: tarfile.TarFile) -> dict[str, Any]:
    first = tar.next()
    if first is None or first.name != MANIFEST or not first.isfile() or first.size > MANIFEST_MAX_BYTES:
        raise InputError(f"no {MANIFEST} first: not made by `annotate doccano backup`", path=archive)
    try:
        manifest = json.loads(tar.extractfile(first).read().decode("utf-8"))  # type: ignore[union-attr]
    except (ValueError, UnicodeDecodeError) as err:
        raise InputError(f"unreadable {MANIFEST}: {err}", path=archive) from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"unknown backup format {manifest.get('format') if isinstance(manifest, dict) else None!r} (expected {FORMAT})", path=archive)
    if manifest.get("database") not in PAYLOADS or manifest.get("payload") != PAYLOADS[manifest["database"]]:
        raise InputError(f"{MANIFEST}: unknown database {manifest.get('database')!r}", path=archive)
    if manifest.get("doccano") != doccano_server.DOCCANO_VERSION:
        raise InputError(f"made for Doccano {manifest.get('doccano')}, this toolkit runs {doccano_server.DOCCANO_VERSION}", path=archive)
    return manifest


def restore(archive: Path, data_dir: Path, *, force: bool = False) -> dict[str, Any]:
    """Restore a backup into ``data_dir`` (fresh, or with ``force`` one of the same kind whose server is stopped)."""
    data_dir = data_dir.resolve()
    fresh = not data_dir.exists() or not any(data_dir.iterdir())
    with tempfile.TemporaryDirectory(prefix="annotate-restore-") as tmp:
        manifest, payload = read_manifest(archive, Path(tmp))  # nothing is touched before the file checks out
        kind = manifest["database"]
        if not fresh:
            _check_replaceable(data_dir, kind, force=force)
        created_dir = not data_dir.exists()
        kept = None
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            doccano_db.configure(data_dir, kind)
            if kind == "sqlite":
                _restore_sqlite(payload, data_dir)
            else:
                kept = _restore_postgres(payload, data_dir, replace=not fresh)
        except BaseException:
            if fresh:  # leave the place as it was: absent or empty
                doccano_db.stop_cluster(data_dir)
                if created_dir:
                    shutil.rmtree(data_dir, ignore_errors=True)
                else:
                    _empty(data_dir)
            raise
    (data_dir / "media").mkdir(exist_ok=True)
    (data_dir / doccano_server.INIT_MARKER).write_text(f"Doccano {doccano_server.DOCCANO_VERSION} (restored)\n", encoding="utf-8")
    log.info("restored %s into %s", archive, data_dir)
    return {"data_dir": str(data_dir), "input": str(archive), "database": kind, "created_at": manifest["created_at"],
            "bytes": manifest["bytes"], "replaced": not fresh, **({"replaced_database_kept_as": kept} if kept else {})}


def _check_replaceable(data_dir: Path, kind: str, *, force: bool) -> None:
    if not force:
        raise OutputError(f"{data_dir} is not empty; restore into a fresh data dir, or pass --force to replace its database")
    if doccano_server.running_server(data_dir) is not None:
        raise OutputError(f"{data_dir}: its Doccano is running; `annotate doccano stop` it before replacing its database")
    current = doccano_db.kind_of(data_dir)
    if current != kind:
        raise OutputError(f"{data_dir} holds a {current} database and the backup a {kind} one; restore into a fresh data dir")


def _empty(folder: Path) -> None:
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _restore_sqlite(payload: Path, data_dir: Path) -> None:
    target = data_dir / doccano_db.SQLITE_FILE
    staged = data_dir / (doccano_db.SQLITE_FILE + ".restoring")
    shutil.copyfile(payload, staged)
    os.replace(staged, target)


def _restore_postgres(payload: Path, data_dir: Path, *, replace: bool) -> str | None:
    """``pg_restore`` into the data dir's database. Replacing one (``--force``), the dump goes into a staging
    database first; only once it restored whole are the names swapped, in one transaction: the old database
    stays beside it as ``<name>_replaced_<UTC time>`` (drop it with ``dropdb`` when sure), so a failed or
    mistaken restore loses nothing."""
    with doccano_db.available(data_dir):
        env = doccano_db.pg_env(data_dir)
        name = env["PGDATABASE"]
        if not replace:
            _pg_restore(payload, data_dir, env, name)
            return None
        admin_env = env | {"PGDATABASE": "postgres"}
        staging = f"{name}_restoring"
        doccano_db.pg_tool("dropdb", "--if-exists", staging, env=admin_env, what="dropping a stale staging database")
        doccano_db.pg_tool("createdb", staging, env=admin_env, what="creating the staging database")
        try:
            _pg_restore(payload, data_dir, env, staging)
        except BaseException:
            doccano_db.pg_tool("dropdb", "--if-exists", staging, env=admin_env, what="dropping the staging database")
            raise
        kept = f"{name}_replaced_{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
        doccano_db.pg_tool("psql", "-v", "ON_ERROR_STOP=1", "-c",
                           f'BEGIN; ALTER DATABASE "{name}" RENAME TO "{kept}"; '
                           f'ALTER DATABASE "{staging}" RENAME TO "{name}"; COMMIT;',
                           env=admin_env, what="swapping the restored database in")
        log.warning("the replaced database of %s is kept as %s", data_dir, kept)
        return kept


def _pg_restore(payload: Path, data_dir: Path, env: dict[str, str], database: str) -> None:
    doccano_db.pg_tool("pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
                       "-d", database, str(payload), env=env, what=f"pg_restore into {data_dir}")