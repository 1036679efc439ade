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

import ipaddress
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
from collections.abc import Callable
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

# Serving beyond loopback (`serve --host`): Doccano 1.8.4 hard-codes ALLOWED_HOSTS = ["*"], so the web server
# runs with our own settings module (written into the data dir) that narrows it to the host it serves on.
LOOPBACK_NAMES = ("localhost",)
ALL_INTERFACES = ("0.0.0.0", "::")
MIN_EXPOSED_PASSWORD = 12
WEAK_PASSWORDS = frozenset({"admin", "password", "doccano", "changeme", "secret", "letmein", "administrator"})
SETTINGS_MODULE = "annotate_doccano_settings"
ALLOWED_HOSTS_ENV = "ANNOTATE_DOCCANO_ALLOWED_HOSTS"
_SETTINGS_SOURCE = f"""# Written by annotate (doccano_server.py) at every start; Doccano's own settings allow every Host header.
import os

from config.settings.production import *  # noqa: F401,F403

ALLOWED_HOSTS = [h for h in os.environ.get("{ALLOWED_HOSTS_ENV}", "127.0.0.1,localhost").split(",") if h]
"""

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
role = os.environ.get("ANNOTATE_NEW_ROLE")
if role:
    from django.contrib.auth.models import Group
    user.groups.remove(*user.groups.filter(name__startswith="annotate:"))
    user.groups.add(Group.objects.get_or_create(name="annotate:" + role)[0])
print("created" if created else "exists")
"""

# Run inside the Doccano venv: every user with its account role and project roles, as one JSON line.
_LIST_SNIPPET = """
import json, django
django.setup()
from django.contrib.auth import get_user_model
from projects.models import Member
rows = []
for user in get_user_model().objects.order_by("username"):
    groups = [g.name[len("annotate:"):] for g in user.groups.filter(name__startswith="annotate:")]
    projects = {m.project.name: m.role.name for m in Member.objects.filter(user=user).select_related("project", "role")}
    rows.append({"user": user.username, "role": "admin" if user.is_superuser else (groups[0] if groups else None),
                 "active": user.is_active, "last_login": user.last_login.isoformat(timespec="seconds") if user.last_login else None,
                 "projects": dict(sorted(projects.items()))})
print(json.dumps(rows))
"""

# `users add --role`: the account's standing. Doccano's roles are per project; `admin` is a Django superuser
# (creates projects, pushes, pulls, manages users), the others are ordinary accounts whose role is recorded
# (a Django group "annotate:<role>") and given to them by `push --member NAME` when no :ROLE is written.
ACCOUNT_ROLES = ("annotator", "approver", "admin")
DEFAULT_ACCOUNT_ROLE = "annotator"


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
    host: str = HOST  # the address gunicorn binds (the url always names one a client on this machine can use)
    venv: str = ""
    allowed_hosts: list[str] = field(default_factory=list)
    database: str = "sqlite"
    db_pid: int | None = None  # the local PostgreSQL's postmaster, stopped with the server


@dataclass
class StartResult:
    info: ServerInfo
    already_running: bool = False
    # set only when a fresh admin got a random password: the caller shows it once, nobody stores it
    generated_password: str | None = field(default=None, repr=False)
    warnings: list[str] = field(default_factory=list)  # serving beyond loopback: shown on stderr by the CLI


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
    data_dir: Path,
    credentials: Credentials,
    *,
    admin: bool = False,
    keep_password: bool = False,
    venv: Path | None = None,
    role: str | None = None,
) -> bool:
    """Create a Doccano user (or reset its password) directly in the data dir's database.

    ``admin`` makes it a superuser (may create projects); ``keep_password`` leaves an existing user's
    password alone; ``role`` (annotator, approver) is recorded as the account's default project role.
    Returns True if the user was created. Works whether or not the server runs.
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
                "ANNOTATE_NEW_ROLE": role or "",
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


def add_account(
    data_dir: Path, username: str, password: str, *, role: str = DEFAULT_ACCOUNT_ROLE, venv: Path | None = None
) -> dict[str, object]:
    """The ``users add`` job: create (or update) an account with an account role (see :data:`ACCOUNT_ROLES`).

    An existing user gets the new role and password. Returns a summary without the password.
    """
    if role not in ACCOUNT_ROLES:
        raise DoccanoError(f"unknown role {role!r}: expected one of {', '.join(ACCOUNT_ROLES)}")
    if not username or username != username.strip() or ":" in username:
        raise DoccanoError(f"bad user name {username!r}: no spaces at the ends and no ':' (push uses NAME:ROLE)")
    require_initialised(data_dir)
    admin = role == "admin"
    created = create_user(data_dir, Credentials(username, password), admin=admin, venv=venv, role=None if admin else role)
    return {"user": username, "role": role, "created": created, "data_dir": str(data_dir)}


def require_initialised(data_dir: Path) -> None:
    """Raise unless ``data_dir`` is a Doccano data dir that has been served (initialised) at least once."""
    if not (Path(data_dir) / INIT_MARKER).is_file():
        raise DoccanoError(f"{data_dir}: not a Doccano data dir yet (start it once with `annotate doccano serve`)")


def list_accounts(data_dir: Path, *, venv: Path | None = None) -> list[dict[str, object]]:
    """Every account of a local data dir: name, account role, active, last login, role in each project.

    Read from the database directly (works whether or not the server runs, needs no login).
    """
    venv = venv or default_venv()
    require_initialised(data_dir)
    with doccano_db.available(data_dir):  # a stopped local PostgreSQL runs for the while
        out = _run([str(_bin(venv, "python")), "-c", _LIST_SNIPPET], env=server_env(data_dir), cwd=backend_dir(venv),
                   timeout=USER_TIMEOUT_S, what=f"listing Doccano users of {data_dir}")
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError) as err:
        raise DoccanoError(f"listing Doccano users of {data_dir}: unreadable answer") from err


def default_member_roles(data_dir: Path, *, venv: Path | None = None) -> dict[str, str]:
    """user -> the project role ``push --member NAME`` gives them (their account role; admins: admin)."""
    return {str(row["user"]): str(row["role"]) for row in list_accounts(data_dir, venv=venv) if row.get("role")}


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
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
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
    host: str = HOST,
    extra_hosts: tuple[str, ...] = (),
    database: str | None = None,
    database_url: str | None = None,
) -> StartResult:
    """Start (installing and initialising as needed) the embedded Doccano; wait until it is healthy.

    ``host`` other than loopback needs a strong admin password (:func:`check_exposure`); the web server
    then accepts only the Host headers of :func:`allowed_hosts` (plus ``extra_hosts``). ``database``:
    ``sqlite`` or ``postgres`` (a local cluster in the data dir, started here and stopped by :func:`stop`);
    ``database_url``: a PostgreSQL of your own. None keeps the data dir's earlier choice (SQLite for a new
    one). If the data dir's server already runs and answers, it is returned as is (``already_running``).
    """
    data_dir = (data_dir or default_data_dir()).resolve()
    venv = (venv or default_venv()).resolve()
    current = running_server(data_dir)
    if current is not None:
        return StartResult(current, already_running=True)
    warnings = check_exposure(host, credentials)
    if install:
        ensure_installed(venv)
    elif not is_installed(venv):
        raise DoccanoError(f"{venv}: Doccano is not installed (run `annotate doccano install`)")
    port = port or DEFAULT_PORT
    if _port_in_use(port, client_host(host)):
        raise DoccanoError(f"port {port} on {host} is already in use; pick another with --port")
    config = doccano_db.configure(data_dir, database, url=database_url)
    db_pid = doccano_db.start_cluster(data_dir) if config.kind == "postgres" else None
    try:
        return _start_doccano(data_dir, port, venv, credentials, timeout, config.kind, db_pid,
                              host=host, extra_hosts=extra_hosts, warnings=warnings)
    except BaseException:
        if db_pid is not None and read_state(data_dir) is None:  # not yet in the pid file: stop() would miss it
            doccano_db.stop_cluster(data_dir, db_pid)
        raise


def _start_doccano(
    data_dir: Path, port: int, venv: Path, credentials: Credentials | None, timeout: float, kind: str, db_pid: int | None,
    *, host: str, extra_hosts: tuple[str, ...], warnings: list[str],
) -> StartResult:
    init_data_dir(data_dir, venv=venv)
    generated = ensure_admin(data_dir, credentials, venv=venv)
    info = ServerInfo(
        url=f"http://{_url_host(client_host(host))}:{port}",
        port=port,
        web_pid=0,
        worker_pid=0,
        data_dir=str(data_dir),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        host=host,
        venv=str(venv),
        allowed_hosts=allowed_hosts(host, extra_hosts),
        database=kind,
        db_pid=db_pid,
    )
    web, worker = _spawn_part(info, "web"), _spawn_part(info, "worker")
    info.web_pid, info.worker_pid = web.pid, worker.pid
    write_json(data_dir / STATE_FILE, asdict(info))
    try:
        _wait_healthy(info, (web, worker), timeout=timeout)
    except BaseException:
        stop(data_dir)
        raise
    log.info("Doccano ready at %s (data dir %s)", info.url, data_dir)
    return StartResult(info, generated_password=generated, warnings=warnings)


def _spawn_part(info: ServerInfo, part: str) -> subprocess.Popen:
    """Start the web server (gunicorn on ``info.host``) or the Celery worker of a server."""
    venv, data_dir = Path(info.venv), Path(info.data_dir)
    backend = backend_dir(venv)
    env = server_env(data_dir)  # a fresh secret key on every start
    if part == "worker":
        cmd = [str(_bin(venv, "doccano")), "task", "--concurrency", "1"]
    else:
        settings_dir = data_dir / "settings"
        settings_dir.mkdir(exist_ok=True)
        (settings_dir / f"{SETTINGS_MODULE}.py").write_text(_SETTINGS_SOURCE, encoding="utf-8")
        env.update(web_settings_env(info.allowed_hosts, info.port))
        cmd = [str(_bin(venv, "gunicorn")), "--bind", f"{_url_host(info.host)}:{info.port}", "--workers", str(WEB_WORKERS),
               "--chdir", str(backend), "--pythonpath", str(settings_dir), "config.wsgi"]
    return _spawn(cmd, env=env, cwd=backend, log_path=data_dir / "logs" / f"{part}.log")


# ------------------------------------------------------------------------------- serving beyond loopback


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def client_host(host: str) -> str:
    """The address a client on this machine uses to reach a server bound to ``host``."""
    return "127.0.0.1" if host == "0.0.0.0" else "::1" if host == "::" else host


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def check_exposure(host: str, credentials: Credentials | None) -> list[str]:
    """Refuse to serve beyond loopback without a strong admin password; return the warnings to show.

    Loopback needs nothing. Any other address needs ``$ANNOTATE_DOCCANO_PASSWORD`` (the admin's password
    is then set to it): at least :data:`MIN_EXPOSED_PASSWORD` characters, not the user name, not a
    well-known default. 0.0.0.0 (every interface) is allowed only when asked for by name, with a warning.
    """
    if is_loopback(host):
        return []
    password = credentials.password if credentials is not None else ""
    weak = (not password or len(password) < MIN_EXPOSED_PASSWORD or password.lower() in WEAK_PASSWORDS
            or (credentials is not None and password == credentials.username))
    if weak:
        raise DoccanoError(f"serving on {host} (beyond this machine) needs a strong admin password: set {PASSWORD_ENV} to "
                           f"at least {MIN_EXPOSED_PASSWORD} characters, not the user name or a default; nothing was started")
    warnings = [(f"Doccano will be reachable from other machines on {host} over plain HTTP: "
                 "use it only on a network you trust, or put it behind an HTTPS proxy")]
    if host in ALL_INTERFACES:
        warnings.insert(0, f"serving on every network interface ({host}), as asked")
    return warnings


def allowed_hosts(host: str, extra: tuple[str, ...] = ()) -> list[str]:
    """The Host headers the web server accepts: loopback names, ``host`` and ``extra``; on every interface,
    also this machine's name and addresses (other names, e.g. of a proxy, go in ``extra``)."""
    names = ["127.0.0.1", "localhost", "::1"]
    if host in ALL_INTERFACES:
        hostname = socket.gethostname()
        names += [hostname, socket.getfqdn()]
        try:
            names += socket.gethostbyname_ex(hostname)[2]
        except OSError:
            pass
    elif not is_loopback(host):
        names.append(host)
    names += list(extra)
    return list(dict.fromkeys(n for n in names if n))


def web_settings_env(hosts: list[str], port: int) -> dict[str, str]:
    """Environment for the web server: our settings module, its ALLOWED_HOSTS and Django's CSRF_TRUSTED_ORIGINS."""
    origins = [f"{scheme}://{_url_host(h)}:{port}" for h in hosts for scheme in ("http", "https")]
    return {"DJANGO_SETTINGS_MODULE": SETTINGS_MODULE, ALLOWED_HOSTS_ENV: ",".join(hosts), "CSRF_TRUSTED_ORIGINS": ",".join(origins)}


# ----------------------------------------------------------------------------- one part (fault tests)


def kill_part(data_dir: Path, part: str) -> int:
    """SIGKILL the web server or the Celery worker of a running server (its whole process group); return the pid.

    For fault tests and for recovering a wedged part; the pid file keeps the dead pid until :func:`restart_part`.
    """
    info = read_state(data_dir)
    if info is None:
        raise DoccanoError(f"no Doccano pid file in {data_dir}")
    pid = info.web_pid if part == "web" else info.worker_pid
    if _alive(pid) and _is_ours(pid):
        _signal(-pid, signal.SIGKILL)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _alive(pid) and time.monotonic() < deadline:
            _reap([pid])
            time.sleep(0.1)
    return pid


def restart_part(data_dir: Path, part: str, *, timeout: float = HEALTH_TIMEOUT_S) -> ServerInfo:
    """Start the web server or the worker of a server again (after :func:`kill_part`) and wait until healthy."""
    info = read_state(data_dir)
    if info is None or not info.venv:
        raise DoccanoError(f"no restartable Doccano pid file in {data_dir} (start it with `annotate doccano serve`)")
    kill_part(data_dir, part)
    proc = _spawn_part(info, part)
    if part == "web":
        info.web_pid = proc.pid
    else:
        info.worker_pid = proc.pid
    write_json(Path(data_dir) / STATE_FILE, asdict(info))
    _wait_healthy(info, (proc,), timeout=timeout, names=(f"{part}.log",))
    return info


def _wait_healthy(
    info: ServerInfo, procs: tuple[subprocess.Popen, ...], *, timeout: float, names: tuple[str, ...] = ("web.log", "worker.log")
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc, name in zip(procs, names):
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


def worker_checker(data_dir: Path | None = None) -> Callable[[], bool]:
    """``check()``: True while the data dir's Celery worker (the pid in its pid file, re-read each time) lives."""
    data_dir = data_dir or default_data_dir()

    def check() -> bool:
        info = read_state(data_dir)
        return info is not None and _alive(info.worker_pid) and _is_ours(info.worker_pid)

    return check


def resolve_url(url: str | None, data_dir: Path | None = None) -> str:
    """``url`` if given, else the URL of the embedded server of ``data_dir`` (which must be running)."""
    if url:
        return url.rstrip("/")
    data_dir = data_dir or default_data_dir()
    info = running_server(data_dir)
    if info is None:
        raise DoccanoError(f"no local Doccano is running for {data_dir}; start it with `annotate doccano serve` or pass --url")
    return info.url
