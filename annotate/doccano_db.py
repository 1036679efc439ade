"""The database behind the embedded Doccano: SQLite (the default), a local PostgreSQL cluster, or a URL.

A data dir remembers its choice in ``database.json`` (written on its first ``serve``; no secret in it)::

    {"kind": "sqlite"}                    <data dir>/db.sqlite3, nothing to run
    {"kind": "postgres", "user": ..., "name": ...}
                                          a cluster in <data dir>/pgdata, created with Debian's initdb,
                                          started and stopped with the server
    {"kind": "url"}                       a PostgreSQL of your own (``--database-url``)

The local cluster listens on 127.0.0.1 only (no Unix socket), on a free port picked at each start (the
running postmaster writes it into ``pgdata/postmaster.pid``, where we read it back), and accepts only
password logins (scram-sha-256) for its one superuser. Its password is random, made at ``initdb``; it
is kept in ``<data dir>/database.secret`` (mode 0600, owner only), because Doccano needs it at every
start and the server may be restarted by another command. For ``--database-url`` that file holds the
URL. The secret reaches Doccano and ``pg_dump`` only through a child's environment, never an argument
list (which every user can read) or a log line.

PostgreSQL refuses to run as root: when we are root, ``initdb`` and ``postgres`` run as the
unprivileged ``postgres`` user that Debian's package creates (through ``setpriv``), and the cluster
folder belongs to that user. So every folder above the data dir must be searchable by it.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from .errors import DoccanoError
from .records import write_json

log = logging.getLogger(__name__)

CONFIG_FILE = "database.json"
SECRET_FILE = "database.secret"
SQLITE_FILE = "db.sqlite3"
CLUSTER_DIR = "pgdata"
CREATED_MARKER = ".pg-database-created"
KINDS = ("sqlite", "postgres", "url")
PG_BIN_ENV = "ANNOTATE_PG_BIN"
PG_OS_USER = "postgres"  # Debian's package creates it; we run the cluster as this user when we are root
PG_SUPERUSER = "doccano"
PG_DATABASE = "doccano"
HOST = "127.0.0.1"
PASSWORD_BYTES = 24
PG_START_TIMEOUT_S = 60.0
PG_STOP_TIMEOUT_S = 30.0
PG_TOOL_TIMEOUT_S = 600
PG_POLL_S = 0.2
# written once into the cluster's postgresql.conf: loopback TCP only, no Unix socket
PG_SETTINGS = ("listen_addresses = '127.0.0.1'", "unix_socket_directories = ''", "password_encryption = 'scram-sha-256'")


@dataclass(frozen=True)
class DatabaseConfig:
    kind: str  # one of KINDS
    user: str = PG_SUPERUSER
    name: str = PG_DATABASE


# ------------------------------------------------------------------------------------------- config


def read_config(data_dir: Path) -> DatabaseConfig | None:
    """The data dir's database choice, or None for a data dir that never chose (treated as SQLite)."""
    path = data_dir / CONFIG_FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        config = DatabaseConfig(**raw)
    except (OSError, ValueError, TypeError) as err:
        raise DoccanoError(f"{path}: unreadable database settings ({err}); it should look like {{\"kind\": \"sqlite\"}}") from err
    if config.kind not in KINDS:
        raise DoccanoError(f"{path}: unknown database kind {config.kind!r} (expected one of {', '.join(KINDS)})")
    return config


def kind_of(data_dir: Path) -> str:
    config = read_config(data_dir)
    return config.kind if config else "sqlite"


def configure(data_dir: Path, kind: str | None = None, *, url: str | None = None) -> DatabaseConfig:
    """Settle the data dir's database. A data dir keeps the kind it was first served with.

    ``kind`` None means: what the data dir already has, else SQLite. ``url`` (an external PostgreSQL)
    implies kind ``url``; it is stored in the 0600 secret file, replacing an earlier one.
    """
    if url is not None:
        _check_url(url)
        kind = "url"
    if kind is not None and kind not in KINDS[:2] + (("url",) if url else ()):
        raise DoccanoError(f"unknown database {kind!r}: use sqlite or postgres (or --database-url URL)")
    current = read_config(data_dir)
    if current is None and kind is None and (data_dir / SQLITE_FILE).is_file():
        kind = "sqlite"
    if current is not None:
        if kind is not None and kind != current.kind:
            raise DoccanoError(f"{data_dir} holds a {current.kind} database; it cannot be served with {kind} "
                               "(use another --data-dir, or `annotate doccano backup`/`restore` to move it)")
        config = current
    else:
        config = DatabaseConfig(kind or "sqlite")
        data_dir.mkdir(parents=True, exist_ok=True)
        write_json(data_dir / CONFIG_FILE, {"kind": config.kind, "user": config.user, "name": config.name})
    if url is not None:
        write_secret(data_dir, url)
    return config


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql") or not parts.hostname or not parts.path.strip("/"):
        # the URL itself is not repeated: it may hold a password
        raise DoccanoError("--database-url must look like postgresql://USER:PASSWORD@HOST:PORT/DBNAME")


def write_secret(data_dir: Path, value: str) -> None:
    """Write the password (or URL) readable by its owner only; it is created 0600, never wider."""
    path = data_dir / SECRET_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    os.replace(tmp, path)


def read_secret(data_dir: Path) -> str:
    path = data_dir / SECRET_FILE
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise DoccanoError(f"{path}: the database password is missing ({err.strerror}); the data dir is incomplete") from err


def database_url(data_dir: Path) -> str:
    """The ``DATABASE_URL`` for Doccano's processes. For a local cluster it must be running (its port)."""
    config = read_config(data_dir)
    kind = config.kind if config else "sqlite"
    if kind == "sqlite":
        return f"sqlite:///{data_dir.resolve() / SQLITE_FILE}"
    if kind == "url":
        return read_secret(data_dir)
    port = cluster_port(data_dir)
    if port is None:
        raise DoccanoError(f"the PostgreSQL of {data_dir} is not running (`annotate doccano serve` starts it)")
    password = quote(read_secret(data_dir), safe="")
    # sslmode named, else Doccano's settings demand SSL, which a loopback cluster has no need of
    return f"postgres://{config.user}:{password}@{HOST}:{port}/{config.name}?sslmode=disable"


def pg_env(data_dir: Path) -> dict[str, str]:
    """libpq variables for our own ``pg_dump``/``pg_restore``/``createdb`` (the password in the environment)."""
    config = read_config(data_dir) or DatabaseConfig("sqlite")
    if config.kind == "url":
        parts = urlsplit(read_secret(data_dir))
        return {"PGHOST": parts.hostname or "", "PGPORT": str(parts.port or 5432), "PGUSER": unquote(parts.username or ""),
                "PGPASSWORD": unquote(parts.password or ""), "PGDATABASE": parts.path.strip("/")}
    port = cluster_port(data_dir)
    if config.kind != "postgres" or port is None:
        raise DoccanoError(f"the PostgreSQL of {data_dir} is not running")
    return {"PGHOST": HOST, "PGPORT": str(port), "PGUSER": config.user, "PGPASSWORD": read_secret(data_dir),
            "PGDATABASE": config.name, "PGSSLMODE": "disable"}


# -------------------------------------------------------------------------------------- local cluster


def pg_bin_dir() -> Path:
    """Where the PostgreSQL server programs are: $ANNOTATE_PG_BIN, the PATH, or Debian's versioned folder."""
    if os.environ.get(PG_BIN_ENV):
        return Path(os.environ[PG_BIN_ENV])
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent  # a symlink (/usr/local/bin/initdb) to the versioned folder
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if versions:
        return versions[-1].parent
    raise DoccanoError("PostgreSQL server programs not found (initdb): install them (`apt-get install postgresql`, or `make postgres`) "
                       f"or set {PG_BIN_ENV}")


def have_postgres() -> bool:
    try:
        return (pg_bin_dir() / "initdb").is_file()
    except DoccanoError:
        return False


def _as_cluster_owner() -> list[str]:
    """The command prefix that runs the server programs unprivileged (only needed when we are root)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(PG_OS_USER)
    except KeyError as err:
        raise DoccanoError(f"PostgreSQL cannot run as root and there is no {PG_OS_USER!r} user to run it as "
                           "(Debian's postgresql package creates it)") from err
    return ["setpriv", f"--reuid={PG_OS_USER}", f"--regid={PG_OS_USER}", "--init-groups", "--"]


def cluster_dir(data_dir: Path) -> Path:
    return data_dir.resolve() / CLUSTER_DIR


def _check_reachable(folder: Path) -> None:
    """As root, every folder above the cluster must let the ``postgres`` user through (o+x)."""
    if os.geteuid() != 0:
        return
    uid = pwd.getpwnam(PG_OS_USER).pw_uid
    for parent in folder.resolve().parents:
        st = parent.stat()
        if st.st_uid != uid and not st.st_mode & 0o001:
            raise DoccanoError(f"{parent} is not searchable by the {PG_OS_USER!r} user that runs PostgreSQL (mode {st.st_mode & 0o777:o}); "
                               "put the data dir under a folder others may traverse, or `chmod o+x` it")


def _tool(name: str) -> str:
    return str(pg_bin_dir() / name)


def _run(cmd: list[str], *, what: str, env: dict[str, str] | None = None,
         timeout: float = PG_TOOL_TIMEOUT_S) -> str:
    try:
        done = subprocess.run(cmd, env=env, cwd="/", capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise DoccanoError(f"{what} failed: {err}") from err
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise DoccanoError(f"{what} failed (exit {done.returncode}): {' | '.join(tail)}")
    return done.stdout


def pg_tool(name: str, *args: str, env: dict[str, str], what: str) -> str:
    """Run a PostgreSQL client program (pg_dump, pg_restore, createdb...) with libpq variables ``env`` added to ours."""
    return _run([_tool(name), *args], env=os.environ | env, what=what)


def _plain_env() -> dict[str, str]:
    """The environment for the server programs: ours minus anything secret-looking."""
    return {k: v for k, v in os.environ.items() if not any(s in k for s in ("PASSWORD", "SECRET", "TOKEN", "DATABASE_URL"))} | {"LC_ALL": "C.UTF-8"}


def init_cluster(data_dir: Path) -> bool:
    """Create the data dir's cluster with ``initdb`` (UTF-8, scram, random superuser password) unless it exists."""
    pgdata = cluster_dir(data_dir)
    if (pgdata / "PG_VERSION").is_file():
        return False
    prefix = _as_cluster_owner()
    _check_reachable(pgdata)
    if pgdata.exists():
        shutil.rmtree(pgdata)  # an initdb that died half-way
    pgdata.mkdir(parents=True, mode=0o700)
    owner = pwd.getpwnam(PG_OS_USER) if prefix else None
    if owner:
        os.chown(pgdata, owner.pw_uid, owner.pw_gid)
    password = secrets.token_urlsafe(PASSWORD_BYTES)
    log.info("creating a PostgreSQL cluster in %s", pgdata)
    # initdb reads the password from a file (never argv); a 0600 one only the cluster's owner reads, removed at once
    fd, pwfile = tempfile.mkstemp(prefix=".initdb-", dir=data_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(password + "\n")
        if owner:
            os.chown(pwfile, owner.pw_uid, owner.pw_gid)
        _run([*prefix, _tool("initdb"), "-D", str(pgdata), "-U", PG_SUPERUSER, f"--pwfile={pwfile}", "--auth=scram-sha-256",
              "--encoding=UTF8", "--locale=C.UTF-8"], env=_plain_env(), what=f"initdb in {pgdata}")
    finally:
        os.unlink(pwfile)
    conf = pgdata / "postgresql.conf"
    with conf.open("a", encoding="utf-8") as handle:  # root may append; the file stays the postgres user's
        handle.write("\n# annotate: loopback TCP only, password logins\n" + "\n".join(PG_SETTINGS) + "\n")
    write_secret(data_dir, password)
    (data_dir / CREATED_MARKER).unlink(missing_ok=True)
    return True


def _postmaster(data_dir: Path) -> tuple[int, int] | None:
    """(pid, port) from the cluster's postmaster.pid, if that postmaster lives."""
    try:
        lines = (cluster_dir(data_dir) / "postmaster.pid").read_text(encoding="utf-8").splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    return (pid, port) if is_postgres_pid(pid) else None


def is_postgres_pid(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(cmdline) and Path(cmdline[0].decode(errors="replace")).name in ("postgres", "postmaster")


def cluster_port(data_dir: Path) -> int | None:
    found = _postmaster(data_dir)
    return found[1] if found else None


def cluster_pid(data_dir: Path) -> int | None:
    found = _postmaster(data_dir)
    return found[0] if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def start_cluster(data_dir: Path, *, log_path: Path | None = None, timeout: float = PG_START_TIMEOUT_S) -> int:
    """Start the cluster (creating it first if needed) on a free loopback port; return the postmaster's pid.

    Already running: its pid is returned. Waits until it accepts connections, and creates the
    Doccano database on the very first start.
    """
    init_cluster(data_dir)
    running = _postmaster(data_dir)
    if running:
        return running[0]
    pgdata = cluster_dir(data_dir)
    log_path = log_path or data_dir / "logs" / "postgres.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    with log_path.open("ab") as out:
        proc = subprocess.Popen([*_as_cluster_owner(), _tool("postgres"), "-D", str(pgdata), "-p", str(port)], env=_plain_env(),
                                cwd="/", stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_ready(data_dir, proc, port, log_path, timeout)
        if not (data_dir / CREATED_MARKER).is_file():
            pg_tool("createdb", PG_DATABASE, env=pg_env(data_dir) | {"PGDATABASE": "postgres"}, what=f"creating the {PG_DATABASE} database")
            (data_dir / CREATED_MARKER).write_text("created\n", encoding="utf-8")
    except BaseException:
        stop_cluster(data_dir, proc.pid)
        raise
    log.info("PostgreSQL of %s ready on %s:%d (pid %d)", data_dir, HOST, port, proc.pid)
    return proc.pid


def _wait_ready(data_dir: Path, proc: subprocess.Popen, port: int, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DoccanoError(f"PostgreSQL exited during start (exit {proc.returncode}); see {log_path}")
        ready = subprocess.run([_tool("pg_isready"), "-q", "-h", HOST, "-p", str(port)], capture_output=True, check=False)
        if ready.returncode == 0 and cluster_port(data_dir) == port:
            return
        time.sleep(PG_POLL_S)
    raise DoccanoError(f"PostgreSQL of {data_dir} not ready after {timeout:.0f} s; see {log_path}")


def stop_cluster(data_dir: Path, pid: int | None = None, *, timeout: float = PG_STOP_TIMEOUT_S) -> bool:
    """Fast shutdown (SIGINT) of the cluster's postmaster; immediate (SIGQUIT) if it lingers. True if one ran."""
    pid = pid or cluster_pid(data_dir)
    if pid is None or not is_postgres_pid(pid):
        return False
    _signal(pid, signal.SIGINT)
    deadline = time.monotonic() + timeout
    while is_postgres_pid(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(PG_POLL_S)
    if is_postgres_pid(pid):
        log.warning("PostgreSQL %d still up after %.0f s; immediate shutdown", pid, timeout)
        _signal(pid, signal.SIGQUIT)
        time.sleep(1.0)
    _reap(pid)
    return True


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


@contextmanager
def available(data_dir: Path) -> Iterator[None]:
    """Make the data dir's database reachable for a while: a stopped local cluster is started, then stopped again."""
    if kind_of(data_dir) != "postgres" or cluster_pid(data_dir) is not None:
        yield
        return
    pid = start_cluster(data_dir)
    try:
        yield
    finally:
        stop_cluster(data_dir, pid)
