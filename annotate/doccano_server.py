"""A local Doccano 1.8.4 the toolkit can install, start and stop: the embedded default server.

Doccano pins its own Django, pandas 1.5 and Celery, so it lives in its own virtual environment
(``<repo>/.venv-doccano``, or ``$ANNOTATE_DOCCANO_VENV``), never in the toolkit's. A *data dir*
(``<repo>/.doccano``, or ``$ANNOTATE_DOCCANO_HOME``) holds everything one server owns::

    <data dir>/db.sqlite3        Django database (projects, examples, labels, users), by default;
                                 or a PostgreSQL cluster in <data dir>/pgdata, or a URL (see doccano_db)
    <data dir>/broker.sqlite3    Celery broker (import and export run in the Celery worker)
    <data dir>/media/            uploads and export archives
    <data dir>/logs/web.log      gunicorn output;  logs/worker.log: Celery worker output
    <data dir>/server.json       the pid file: {"url", "port", "web_pid", "worker_pid", "started_at",
                                 "database", "db_pid"} (no password)

Why it is done by hand rather than with ``doccano webserver`` (see ``../shared/DOCCANO.md``): that
command always binds 0.0.0.0, so we run gunicorn ourselves bound to 127.0.0.1; the Django settings come
from environment variables (SQLite in the data dir, a random ``SECRET_KEY`` per start, because the
default one is a public constant). ``/v1/health/`` answers 200 only once the Celery worker is up, so it
is the readiness check.

Credentials come only from the environment (``ANNOTATE_DOCCANO_USER``/``ANNOTATE_DOCCANO_PASSWORD``) or
from the caller; they reach Django through a child process's environment (never its argument list,
which other users can read), and are never logged or written to disk. This module does not import
``doccano_client``: only :mod:`annotate.doccano` talks to the API.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from . import doccano_db
from .errors import DoccanoError
from .records import write_json

log = logging.getLogger(__name__)

DOCCANO_VERSION = "1.8.4"
# numpy 2 breaks pandas 1.5.3, marshmallow 4 breaks environs, gunicorn 20.1 needs pkg_resources.
# psycopg2: Doccano's settings take a postgres:// DATABASE_URL, but the package does not bring the driver.
POSTGRES_DRIVER = "psycopg2-binary==2.9.10"
DOCCANO_REQUIREMENTS = (f"doccano=={DOCCANO_VERSION}", "numpy<2", "marshmallow<4", "setuptools<81", POSTGRES_DRIVER)

VENV_ENV = "ANNOTATE_DOCCANO_VENV"
PYTHON_ENV = "ANNOTATE_DOCCANO_PYTHON"
# Doccano 1.8.4 pins pandas 1.5.3, which has no wheels for Python 3.12: its venv uses Python 3.11 while the
# toolkit runs on 3.12 (the pretrained base pipelines' wheels need it).
DOCCANO_PYTHON = "python3.11"
HOME_ENV = "ANNOTATE_DOCCANO_HOME"
USER_ENV = "ANNOTATE_DOCCANO_USER"
PASSWORD_ENV = "ANNOTATE_DOCCANO_PASSWORD"
DEFAULT_USER = "admin"
DEFAULT_PORT = 8000
HOST = "127.0.0.1"

STATE_FILE = "server.json"
INIT_MARKER = ".initialised"
WEB_WORKERS = 2
INSTALL_TIMEOUT_S = 900
INIT_TIMEOUT_S = 300
USER_TIMEOUT_S = 120
HEALTH_TIMEOUT_S = 120.0
HEALTH_POLL_S = 0.5
STOP_TIMEOUT_S = 20.0
GENERATED_PASSWORD_BYTES = 18

# Run inside the Doccano venv (cwd = its backend folder): create or update one user. The name,
# password and flags arrive in the environment so that they never appear in a process listing.
_USER_SNIPPET = """
import os, django
django.setup()
from django.contrib.auth import get_user_model
users = get_user_model().objects
name = os.environ["ANNOTATE_NEW_USER"]
user, created = users.get_or_create(username=name)
if created or os.environ.get("ANNOTATE_NEW_KEEP") != "1":
    user.set_password(os.environ["ANNOTATE_NEW_PASSWORD"])
if os.environ.get("ANNOTATE_NEW_ADMIN") == "1":
    user.is_superuser = True
    user.is_staff = True
user.save()
print("created" if created else "exists")
"""


@dataclass(frozen=True)
class Credentials:
    """A Doccano login. The password never shows in ``repr`` (so never in a log line or a traceback)."""

    username: str
    password: str = field(repr=False)


@dataclass
class ServerInfo:
    """What the pid file records about a running embedded server (no credentials)."""

    url: str
    port: int
    web_pid: int
    worker_pid: int
    data_dir: str
    started_at: str
    database: str = "sqlite"
    db_pid: int | None = None  # the local PostgreSQL's postmaster, stopped with the server


@dataclass
class StartResult:
    info: ServerInfo
    already_running: bool = False
    # set only when a fresh admin got a random password: the caller shows it once, nobody stores it
    generated_password: str | None = field(default=None, repr=False)


# ------------------------------------------------------------------------------------------ places


def repo_root() -> Path:
    """The checkout this package lives in (editable install), else the working directory."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").is_file() else Path.cwd()


def default_venv() -> Path:
    return Path(os.environ.get(VENV_ENV) or repo_root() / ".venv-doccano")


def default_data_dir() -> Path:
    return Path(os.environ.get(HOME_ENV) or repo_root() / ".doccano")


def username_from_env() -> str:
    return os.environ.get(USER_ENV) or DEFAULT_USER


def credentials_from_env(*, password: str | None = None) -> Credentials | None:
    """Credentials from ``ANNOTATE_DOCCANO_USER``/``ANNOTATE_DOCCANO_PASSWORD`` (or an explicit password).

    Returns None when no password is known: the CLI then prompts for one.
    """
    password = password if password is not None else os.environ.get(PASSWORD_ENV)
    if not password:
        return None
    return Credentials(username_from_env(), password)


# ----------------------------------------------------------------------------------------- install


def _bin(venv: Path, name: str) -> Path:
    return venv / "bin" / name


def is_installed(venv: Path | None = None) -> bool:
    venv = venv or default_venv()
    return all(_bin(venv, name).is_file() for name in ("python", "doccano", "gunicorn")) and _has_postgres_driver(venv)


def _has_postgres_driver(venv: Path) -> bool:
    return any(venv.glob("lib/python3*/site-packages/psycopg2/__init__.py"))


def backend_dir(venv: Path) -> Path:
    """Doccano's Django project folder inside its venv (``site-packages/backend``)."""
    found = sorted(venv.glob("lib/python3*/site-packages/backend"))
    if not found:
        raise DoccanoError(f"{venv}: no Doccano installed here (run `annotate doccano install`)")
    return found[0]


def doccano_python() -> str:
    """The interpreter for Doccano's venv: ``$ANNOTATE_DOCCANO_PYTHON``, else ``python3.11`` if it runs, else ours."""
    if os.environ.get(PYTHON_ENV):
        return os.environ[PYTHON_ENV]
    found = shutil.which(DOCCANO_PYTHON)
    if found:
        try:
            ok = subprocess.run([found, "-c", "import venv"], capture_output=True, timeout=60, check=False).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if ok:
            return found
    return sys.executable


def ensure_installed(venv_dir: Path | None = None, *, python: str | None = None) -> Path:
    """Create ``venv_dir`` with Doccano 1.8.4 and the pins it needs, unless it is already there.

    Takes about a minute and 700 MB, from PyPI. Returns the venv path.
    """
    venv = Path(venv_dir) if venv_dir is not None else default_venv()
    if is_installed(venv):
        return venv
    log.info("installing Doccano %s into %s", DOCCANO_VERSION, venv)
    steps = [
        [python or doccano_python(), "-m", "venv", str(venv)],
        [str(_bin(venv, "python")), "-m", "pip", "install", "--quiet", *DOCCANO_REQUIREMENTS],
    ]
    if _bin(venv, "doccano").is_file():
        steps = steps[1:]  # an older install without the PostgreSQL driver: pip adds only what is missing
    for cmd in steps:
        _run(cmd, timeout=INSTALL_TIMEOUT_S, what="installing Doccano")
    if not is_installed(venv):
        raise DoccanoError(f"{venv}: Doccano install finished but its commands are missing")
    return venv


def _run(cmd: list[str], *, timeout: float, what: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    """Run a command to completion; a failure raises DoccanoError with the tail of its output."""
    try:
        done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise DoccanoError(f"{what} failed: {err}") from err
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise DoccanoError(f"{what} failed (exit {done.returncode}): {' | '.join(tail)}")
    return done.stdout


# ------------------------------------------------------------------------------------------- data dir


def server_env(data_dir: Path, *, secret_key: str | None = None) -> dict[str, str]:
    """Environment for every Doccano process of one data dir (web server, worker, manage commands)."""
    data_dir = data_dir.resolve()
    env = {k: v for k, v in os.environ.items() if k not in (PASSWORD_ENV, "VIRTUAL_ENV", "PYTHONPATH")}
    env.update(
        {
            "DATABASE_URL": doccano_db.database_url(data_dir),
            "MEDIA_ROOT": str(data_dir / "media"),
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "STANDALONE": "True",
            "DEBUG": "False",
            "SECRET_KEY": secret_key or secrets.token_urlsafe(50),
            "CELERY_BROKER_URL": f"sqla+sqlite:///{data_dir / 'broker.sqlite3'}",
            "DOCCANO_HOME": str(data_dir),  # read only by the `doccano` command; avoids ~/doccano
        }
    )
    return env


def init_data_dir(data_dir: Path, *, venv: Path | None = None) -> bool:
    """Run ``doccano init`` (migrations, roles) once per data dir; return True if it ran now."""
    venv = venv or default_venv()
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "media").mkdir(exist_ok=True)
    if (data_dir / INIT_MARKER).is_file():
        return False
    log.info("initialising Doccano data dir %s", data_dir)
    _run([str(_bin(venv, "doccano")), "init"], env=server_env(data_dir), timeout=INIT_TIMEOUT_S, what=f"doccano init in {data_dir}")
    (data_dir / INIT_MARKER).write_text(f"Doccano {DOCCANO_VERSION}\n", encoding="utf-8")
    return True


def create_user(
    data_dir: Path, credentials: Credentials, *, admin: bool = False, keep_password: bool = False, venv: Path | None = None
) -> bool:
    """Create a Doccano user (or reset its password) directly in the data dir's database.

    ``admin`` makes it a superuser (may create projects); ``keep_password`` leaves an existing user's
    password alone. Returns True if the user was created. Works whether or not the server runs.
    """
    venv = venv or default_venv()
    with doccano_db.available(data_dir):  # a stopped local PostgreSQL runs for the while
        env = server_env(data_dir)
        env.update(
            {
                "ANNOTATE_NEW_USER": credentials.username,
                "ANNOTATE_NEW_PASSWORD": credentials.password,
                "ANNOTATE_NEW_ADMIN": "1" if admin else "0",
                "ANNOTATE_NEW_KEEP": "1" if keep_password else "0",
            }
        )
        out = _run(
            [str(_bin(venv, "python")), "-c", _USER_SNIPPET],
            env=env,
            cwd=backend_dir(venv),
            timeout=USER_TIMEOUT_S,
            what=f"creating Doccano user {credentials.username!r}",
        )
    return out.strip().endswith("created")


def ensure_admin(data_dir: Path, credentials: Credentials | None, *, venv: Path | None = None) -> str | None:
    """Make sure the admin exists. Without a password, a new admin gets a random one, which is returned.

    With a password (from the environment), the admin is created or its password set to it. Without
    one, an existing admin keeps its password and None is returned.
    """
    if credentials is not None:
        create_user(data_dir, credentials, admin=True, venv=venv)
        return None
    generated = secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
    created = create_user(data_dir, Credentials(username_from_env(), generated), admin=True, keep_password=True, venv=venv)
    return generated if created else None


# ------------------------------------------------------------------------------------- start / stop


def free_port(host: str = HOST) -> int:
    """A TCP port nobody listens on right now (for tests and parallel servers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _port_in_use(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def health(url: str, *, timeout: float = 5.0) -> bool:
    """True if ``url``/v1/health/ answers 200 (web server and Celery worker both up)."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/v1/health/", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _spawn(cmd: list[str], *, env: dict[str, str], cwd: Path, log_path: Path) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        # own session: the server outlives the CLI command that started it, and Ctrl-C there does not kill it
        return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)


def start(
    data_dir: Path | None = None,
    *,
    port: int | None = None,
    venv: Path | None = None,
    credentials: Credentials | None = None,
    timeout: float = HEALTH_TIMEOUT_S,
    install: bool = True,
    database: str | None = None,
    database_url: str | None = None,
) -> StartResult:
    """Start (installing and initialising as needed) the embedded Doccano; wait until it is healthy.

    ``database``: ``sqlite`` or ``postgres`` (a local cluster in the data dir, started here and stopped
    by :func:`stop`); ``database_url``: a PostgreSQL of your own. None keeps the data dir's earlier
    choice (SQLite for a new one). If the data dir's server already runs and answers, it is returned as
    is (``already_running``).
    """
    data_dir = (data_dir or default_data_dir()).resolve()
    venv = (venv or default_venv()).resolve()
    current = running_server(data_dir)
    if current is not None:
        return StartResult(current, already_running=True)
    if install:
        ensure_installed(venv)
    elif not is_installed(venv):
        raise DoccanoError(f"{venv}: Doccano is not installed (run `annotate doccano install`)")
    port = port or DEFAULT_PORT
    if _port_in_use(port):
        raise DoccanoError(f"port {port} on {HOST} is already in use; pick another with --port")
    config = doccano_db.configure(data_dir, database, url=database_url)
    db_pid = doccano_db.start_cluster(data_dir) if config.kind == "postgres" else None
    try:
        return _start_doccano(data_dir, port, venv, credentials, timeout, config.kind, db_pid)
    except BaseException:
        if db_pid is not None and read_state(data_dir) is None:  # not yet in the pid file: stop() would miss it
            doccano_db.stop_cluster(data_dir, db_pid)
        raise


def _start_doccano(
    data_dir: Path, port: int, venv: Path, credentials: Credentials | None, timeout: float, kind: str, db_pid: int | None
) -> StartResult:
    init_data_dir(data_dir, venv=venv)
    generated = ensure_admin(data_dir, credentials, venv=venv)
    env = server_env(data_dir)  # one secret key for web and worker, fresh on every start
    backend = backend_dir(venv)
    web = _spawn(
        [str(_bin(venv, "gunicorn")), "--bind", f"{HOST}:{port}", "--workers", str(WEB_WORKERS), "--chdir", str(backend), "config.wsgi"],
        env=env,
        cwd=backend,
        log_path=data_dir / "logs" / "web.log",
    )
    worker = _spawn(
        [str(_bin(venv, "doccano")), "task", "--concurrency", "1"], env=env, cwd=backend, log_path=data_dir / "logs" / "worker.log"
    )
    info = ServerInfo(
        url=f"http://{HOST}:{port}",
        port=port,
        web_pid=web.pid,
        worker_pid=worker.pid,
        data_dir=str(data_dir),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        database=kind,
        db_pid=db_pid,
    )
    write_json(data_dir / STATE_FILE, asdict(info))
    try:
        _wait_healthy(info, (web, worker), timeout=timeout)
    except BaseException:
        stop(data_dir)
        raise
    log.info("Doccano ready at %s (data dir %s)", info.url, data_dir)
    return StartResult(info, generated_password=generated)


def _wait_healthy(info: ServerInfo, procs: tuple[subprocess.Popen, ...], *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc, name in zip(procs, ("web.log", "worker.log")):
            if proc.poll() is not None:
                raise DoccanoError(f"Doccano exited during start (exit {proc.returncode}); see {Path(info.data_dir) / 'logs' / name}")
        if health(info.url, timeout=2.0):
            return
        time.sleep(HEALTH_POLL_S)
    raise DoccanoError(f"Doccano at {info.url} not healthy after {timeout:.0f} s; see {Path(info.data_dir) / 'logs'}")


def read_state(data_dir: Path | None = None) -> ServerInfo | None:
    """The pid file of a data dir, or None if there is none (or it is unreadable)."""
    path = (data_dir or default_data_dir()) / STATE_FILE
    try:
        return ServerInfo(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_ours(pid: int) -> bool:
    """Only signal a pid whose command line is one we start (pids get reused after a reboot)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return _alive(pid)  # no /proc (macOS): trust the pid file
    return "gunicorn" in cmdline or "doccano" in cmdline or "celery" in cmdline


def running_server(data_dir: Path | None = None) -> ServerInfo | None:
    """The data dir's server if its processes live and it answers the health check, else None."""
    info = read_state(data_dir)
    if info is None or not (_alive(info.web_pid) and _alive(info.worker_pid)):
        return None
    if info.db_pid is not None and not doccano_db.is_postgres_pid(info.db_pid):
        return None
    return info if health(info.url) else None


def stop(data_dir: Path | None = None, *, timeout: float = STOP_TIMEOUT_S) -> bool:
    """Stop the data dir's web server and worker by the pids in its pid file, then its local PostgreSQL
    (if any: after them, so that nobody holds a connection); True if any was running."""
    data_dir = data_dir or default_data_dir()
    info = read_state(data_dir)
    if info is None:
        return doccano_db.stop_cluster(data_dir) if doccano_db.kind_of(data_dir) == "postgres" else False
    pids = [pid for pid in (info.web_pid, info.worker_pid) if _alive(pid) and _is_ours(pid)]
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        _reap(pids)
        time.sleep(0.2)
    for pid in pids:
        if _alive(pid):
            log.warning("Doccano process %d ignored SIGTERM for %.0f s; killing its process group", pid, timeout)
            _signal(-pid, signal.SIGKILL)  # the group we created with start_new_session
    _reap(pids)
    db_stopped = doccano_db.kind_of(data_dir) == "postgres" and doccano_db.stop_cluster(data_dir, info.db_pid)
    (data_dir / STATE_FILE).unlink(missing_ok=True)
    return bool(pids) or db_stopped


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _reap(pids: list[int]) -> None:
    """Collect exited children of this process (they stay zombies, and 'alive', until waited for)."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def resolve_url(url: str | None, data_dir: Path | None = None) -> str:
    """``url`` if given, else the URL of the embedded server of ``data_dir`` (which must be running)."""
    if url:
        return url.rstrip("/")
    data_dir = data_dir or default_data_dir()
    info = running_server(data_dir)
    if info is None:
        raise DoccanoError(f"no local Doccano is running for {data_dir}; start it with `annotate doccano serve` or pass --url")
    return info.url
