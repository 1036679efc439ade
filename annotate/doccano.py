"""The Doccano adapter: the only module that imports ``doccano_client`` (1.2.8, the last release).

Push: create or update a sequence-labelling project with relations from a :class:`~annotate.schema.Schema`
(span and relation types with colours and shortcuts, guidelines), add members, upload records as
tasks (:func:`annotate.tasks.to_task`) with their suggested spans and relations. Upload is idempotent by
``meta.record_id``: records already in the project are skipped.

Pull: one dataset export (``JSONL`` with relations, run by Doccano's Celery worker) gives a zip with one
``<username>.jsonl`` per member, each line::

    {"id": 17, "text": "...", "meta": {"record_id": "...", "entity_ids": [...], ...},
     "entities": [{"id": 41, "label": "PERSON", "start_offset": 27, "end_offset": 40}],
     "relations": [{"id": 9, "from_id": 41, "to_id": 42, "type": "HAS_ROLE"}], "Comments": []}

Ids there are database ids and offsets are in the annotation UI's units (UTF-16 code units, or grapheme
clusters in a project in grapheme mode). Each line becomes a :class:`~annotate.records.LabelledDoc`
with code-point offsets, our record id (``meta.record_id``), our entity/relation ids where a span or
relation is unchanged since the push (new ``dc<db id>``/``dr<db id>`` ids otherwise), the annotator
(the file name) and the status. Confirmation is per user in Doccano and the API only tells the
caller's own, so the state is joined from the member-progress API and, only when some member has
confirmed some but not all examples, a second, confirmed-only export.

Every request has bounded retries with backoff on connection errors and 502/503/504; export and
import tasks are polled with a deadline. Errors become :class:`~annotate.errors.DoccanoError` with
the URL, user, project or document involved. Credentials are passed in by the caller (from the
environment or a prompt) and never logged.
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
import time
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from doccano_client import DoccanoClient
from doccano_client.exceptions import DoccanoAPIError
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .doccano_server import Credentials
from .errors import DoccanoError, InputError, OutputError
from .offsets import OffsetMap, Unit
from .records import (
    Article,
    Entity,
    LabelledDoc,
    OutputSet,
    Relation,
    iter_json_lines,
    read_docs,
    write_json,
    write_jsonl,
)
from .schema import Schema, Violation, guidelines_markdown, validate_doc
from .tasks import (
    BOOKKEEPING_KEYS,
    ENTITY_IDS_KEY,
    ENTITY_SPANS_KEY,
    EXTRAS_KEY,
    RECORD_ID_KEY,
    RELATION_ENDS_KEY,
    RELATION_IDS_KEY,
    from_task,
    to_task,
)

log = logging.getLogger(__name__)

PROJECT_TYPE = "SequenceLabeling"
IMPORT_TASK = "RelationExtraction"
DATA_FORMAT = "JSONL"  # with use_relation on, Doccano's JSONL import/export carries entities and relations
UPLOAD_ENCODING = "utf_8"  # never let the server guess (it read UTF-8 as cp1254 once)

NEW_ENTITY_PREFIX = "dc"
NEW_RELATION_PREFIX = "dr"

ROLES = {
    "admin": "project_admin",
    "project_admin": "project_admin",
    "annotator": "annotator",
    "approver": "annotation_approver",
    "annotation_approver": "annotation_approver",
}

HTTP_RETRIES = 3
HTTP_BACKOFF_S = 0.3  # urllib3 sleeps backoff * 2**(n-1): 0.3, 0.6, 1.2 s
HTTP_RETRY_STATUSES = (502, 503, 504)
HTTP_TIMEOUT_S = 60.0
LIST_PAGE = 1000  # examples per listing request (Doccano's default page is 5)
TASK_TIMEOUT_S = 600.0
TASK_POLL_FIRST_S = 0.05
TASK_POLL_MAX_S = 0.5
TASK_ATTEMPTS = 3
TASK_RETRY_BACKOFF_S = 1.0
WORKER_CHECK_AFTER_S = 1.0  # a pending task older than this makes us check that the worker lives
LABELLED_FILE = "labelled.jsonl"
REPORT_FILE = "pull-report.json"
VIOLATIONS_SHOWN = 20  # in the command's summary; the report file has every one


# -------------------------------------------------------------------------------------- connection


class _TimeoutSession(requests.Session):
    """A requests session with a default timeout: a hung server must not hang the toolkit."""

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", HTTP_TIMEOUT_S)
        return super().request(method, url, **kwargs)


def _retrying_session(old: requests.Session) -> requests.Session:
    retry = Retry(
        total=HTTP_RETRIES,
        connect=HTTP_RETRIES,
        read=HTTP_RETRIES,
        status=HTTP_RETRIES,
        backoff_factor=HTTP_BACKOFF_S,
        status_forcelist=HTTP_RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}),  # POST only on connect errors
        raise_on_status=False,
    )
    session = _TimeoutSession()
    session.headers.update(old.headers)
    session.verify = old.verify
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


@dataclass
class Connection:
    """A logged-in Doccano client plus raw JSON access for what the client lacks (listing limits, metrics)."""

    client: DoccanoClient
    url: str
    username: str
    # for a server whose processes we can see (the embedded one): False once its Celery worker is gone
    worker_check: Callable[[], bool] | None = None

    @property
    def _base(self) -> Any:
        # doccano-client keeps its HTTP layer private; we reuse its logged-in session for the few
        # endpoints it does not wrap (examples with ?limit=, member progress, export polling).
        return self.client._base_repository

    def get(self, resource: str, *, what: str, **params: Any) -> Any:
        with api_errors(self, what):
            return self._base.get(resource, params=params or None).json()

    def post(self, resource: str, payload: dict[str, Any], *, what: str) -> Any:
        with api_errors(self, what):
            return self._base.post(resource, json=payload).json()

    def get_bytes(self, resource: str, *, what: str, **params: Any) -> bytes:
        with api_errors(self, what):
            return self._base.get(resource, params=params or None).content


@contextmanager
def api_errors(conn: Connection, what: str) -> Iterator[None]:
    """Turn transport and HTTP failures into one-line DoccanoErrors that say what we were doing."""
    try:
        yield
    except requests.RequestException as err:
        raise as_doccano_error(conn, what, err) from err


def as_doccano_error(conn: Connection, what: str, err: Exception) -> DoccanoError:
    if isinstance(err, DoccanoAPIError):
        status = err.response.status_code if err.response is not None else "?"
        if status == 403:
            return DoccanoError(f"{what}: user {conn.username!r} is not allowed to do this at {conn.url} (HTTP 403: {_short(err)})")
        return DoccanoError(f"{what}: Doccano at {conn.url} answered HTTP {status}: {_short(err)}")
    if isinstance(err, (requests.ConnectionError, requests.Timeout)):
        return DoccanoError(f"{what}: cannot reach Doccano at {conn.url} (is it running? `annotate doccano serve` starts one)")
    return DoccanoError(f"{what}: request to {conn.url} failed: {_short(err)}")


def _short(err: Exception, limit: int = 200) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def open_connection(url: str, username: str) -> Connection:
    """A client for ``url`` whose HTTP session retries and times out (not logged in yet)."""
    client = DoccanoClient(url)
    base = client._base_repository
    base._session = _retrying_session(base._session)
    return Connection(client, url.rstrip("/"), username)


def connect(url: str, credentials: Credentials) -> Connection:
    """Log in to the Doccano at ``url``; a dead server or a refused login raises DoccanoError."""
    conn = open_connection(url, credentials.username)
    client = conn.client
    try:
        client.login(credentials.username, credentials.password)
    except DoccanoAPIError as err:
        if err.response is not None and err.response.status_code in (400, 401, 403):
            raise DoccanoError(f"Doccano at {conn.url} refused the login of user {credentials.username!r}: wrong username or password") from err
        raise as_doccano_error(conn, "logging in", err) from err
    except requests.RequestException as err:
        raise as_doccano_error(conn, "logging in", err) from err
    log.info("logged in to %s as %s", url, credentials.username)
    return conn


# ------------------------------------------------------------------------------------------ projects


@dataclass(frozen=True)
class ProjectRef:
    id: int
    name: str
    grapheme_mode: bool
    collaborative: bool = False
    project_type: str = PROJECT_TYPE

    @property
    def unit(self) -> Unit:
        """The offset unit Doccano's annotation UI reads and writes in this project."""
        return "grapheme" if self.grapheme_mode else "utf16"


def _ref(project: Any) -> ProjectRef:
    kind = getattr(project.project_type, "value", project.project_type)
    return ProjectRef(project.id, project.name, bool(project.grapheme_mode), bool(project.collaborative_annotation), str(kind))


def find_project(conn: Connection, name: str) -> ProjectRef | None:
    with api_errors(conn, "listing projects"):
        for project in conn.client.list_projects():
            if project.name == name:
                return _ref(project)
    return None


def _require_sequence_labelling(conn: Connection, project: ProjectRef) -> None:
    if project.project_type != PROJECT_TYPE:
        raise DoccanoError(f"project {project.name!r} at {conn.url} is a {project.project_type} project, not {PROJECT_TYPE}")


def require_project(conn: Connection, name: str) -> ProjectRef:
    project = find_project(conn, name)
    if project is None:
        raise DoccanoError(f"no project named {name!r} at {conn.url} visible to user {conn.username!r} (push creates it)")
    return project


def ensure_project(conn: Connection, name: str, schema: Schema, *, grapheme_mode: bool = False) -> tuple[ProjectRef, bool]:
    """Create the project, or update an existing one's guidelines and label types. Returns (project, created).

    ``grapheme_mode`` applies only when creating: Doccano does not let it change later.
    """
    project = find_project(conn, name)
    created = project is None
    description = f"{schema.name} entities and relations (managed by annotate)"
    with api_errors(conn, f"creating/updating project {name!r}"):
        if project is None:
            made = conn.client.create_project(
                name=name,
                project_type=PROJECT_TYPE,
                description=description,
                guideline=guidelines_markdown(schema),
                allow_overlapping=True,
                grapheme_mode=grapheme_mode,
                use_relation=True,
            )
        else:
            _require_sequence_labelling(conn, project)
            made = conn.client.update_project(project.id, guideline=guidelines_markdown(schema), allow_overlapping=True, use_relation=True)
    ref = _ref(made)
    sync_label_types(conn, ref, schema)
    return ref, created


def sync_label_types(conn: Connection, project: ProjectRef, schema: Schema) -> dict[str, int]:
    """Make the project's span and relation types match the schema's names, colours and shortcuts.

    Types the schema does not know are left alone (annotators may have labelled with them).
    """
    wanted = {
        "span": [(e.name, e.colour, e.shortcut.lower() if e.shortcut else None) for e in schema.entities],
        "relation": [(r.name, r.colour, None) for r in schema.relations],
    }
    counts = Counter()
    for kind, labels in wanted.items():
        with api_errors(conn, f"listing {kind} types of project {project.name!r}"):
            existing = {t.text: t for t in conn.client.list_label_types(project.id, kind)}
        for name, colour, key in labels:
            current = existing.get(name)
            with api_errors(conn, f"saving {kind} type {name!r} in project {project.name!r}"):
                if current is None:
                    conn.client.create_label_type(project.id, kind, name, suffix_key=key, color=colour)
                    counts[f"{kind}_types_created"] += 1
                elif current.background_color.lower() != colour.lower() or (key and current.suffix_key != key):
                    conn.client.update_label_type(project.id, current.id, kind, suffix_key=key or current.suffix_key, color=colour)
                    counts[f"{kind}_types_updated"] += 1
    return dict(counts)


def parse_member(spec: str, default_roles: dict[str, str] | None = None) -> tuple[str, str]:
    """``"alice:annotator"`` -> ("alice", "annotator"); roles: admin, annotator, approver (or Doccano's names).

    A bare ``"alice"`` gets her account role from ``default_roles`` (``users add --role``), else annotator.
    """
    username, sep, role = spec.rpartition(":")
    if not sep:
        username, role = spec, (default_roles or {}).get(spec, "annotator")
    if not username or role not in ROLES:
        raise InputError(f"bad member {spec!r}: expected USER or USER:ROLE with ROLE one of {', '.join(sorted(set(ROLES)))}")
    return username, ROLES[role]


def check_members(conn: Connection, members: Iterable[tuple[str, str]]) -> None:
    """Raise :class:`DoccanoError` naming every member that is not a user on the server (nothing is changed)."""
    missing = []
    for username, _role in members:
        with api_errors(conn, f"looking up user {username!r}"):
            found = [u for u in conn.client.search_users(username) if u.username == username]
        if not found:
            missing.append(username)
    if missing:
        raise DoccanoError(f"user(s) {', '.join(map(repr, missing))} not found at {conn.url}: create them first "
                           "(annotate doccano users add NAME); nothing was changed on the server")


def add_members(conn: Connection, project: ProjectRef, members: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Add users to the project with a role (or change an existing member's role). Returns user -> role."""
    with api_errors(conn, f"listing members of project {project.name!r}"):
        current = {m.username: m for m in conn.client.list_members(project.id)}
    done: dict[str, str] = {}
    for username, role in members:
        member = current.get(username)
        what = f"adding member {username!r} ({role}) to project {project.name!r}"
        try:
            with api_errors(conn, what):
                if member is None:
                    conn.client.add_member(project.id, username, role)
                elif member.rolename != role:
                    conn.client.update_member(project.id, member.id, role)
        except ValueError as err:  # the client's "User 'x' not found"
            raise DoccanoError(f"{what}: {err} at {conn.url} (create the user first)") from err
        done[username] = role
    return done


# --------------------------------------------------------------------------------------------- push


def read_push_input(path: Path) -> list[LabelledDoc]:
    """Records (our format) or Doccano task rows (``annotate tasks`` output) from a JSONL file.

    Task rows are turned back into records (offsets from their ``meta.offset_unit`` to code points), so
    that the push can write them in the target project's own unit.
    """
    docs: list[LabelledDoc] = []
    for line_no, obj in iter_json_lines(path):
        if isinstance(obj, dict) and "id" not in obj and isinstance(obj.get("meta"), dict) and RECORD_ID_KEY in obj["meta"]:
            try:
                docs.append(from_task(obj))
            except (KeyError, TypeError, ValueError, IndexError) as err:
                raise InputError(f"bad Doccano task row: {err}", path=path, line=line_no) from err
            continue
        try:
            docs.append(LabelledDoc.from_dict(obj))
        except (ValueError, TypeError) as err:
            raise InputError(str(err), path=path, line=line_no) from err
    return docs


def existing_record_ids(conn: Connection, project: ProjectRef) -> dict[str, int]:
    """record_id -> Doccano example id (the oldest, if repeated) for every example already in the project."""
    return {record_id: ids[0] for record_id, ids in examples_by_record(conn, project).items()}


def paged(conn: Connection, resource: str, *, what: str) -> Iterator[dict[str, Any]]:
    """The rows of a Doccano listing, LIST_PAGE per request (a listing that answers a bare list is one page)."""
    offset = 0
    while True:
        page = conn.get(resource, what=what, limit=LIST_PAGE, offset=offset)
        yield from page.get("results", []) if isinstance(page, dict) else page
        offset += LIST_PAGE
        if not isinstance(page, dict) or not page.get("next"):
            return


def examples_by_record(conn: Connection, project: ProjectRef) -> dict[str, list[int]]:
    """record_id -> the project's example ids holding it, oldest first."""
    found: dict[str, list[int]] = {}
    for example in paged(conn, f"projects/{project.id}/examples", what=f"listing examples of project {project.name!r}"):
        record_id = _record_id_of(example.get("meta") or {})
        if record_id is not None:
            found.setdefault(record_id, []).append(example["id"])
    return {record_id: sorted(ids) for record_id, ids in found.items()}


def remove_repeated_uploads(conn: Connection, project: ProjectRef, record_ids: set[str]) -> int:
    """Delete the newer copies of records this push uploaded that the project now holds twice; return how many.

    An earlier push cut off after its upload (the web server restarted while we waited for the import) leaves
    an import that still lands; re-pushing then uploads those records again. Doccano's worker runs imports in
    order, so once ours is done the earlier one is too: the copies are both fresh imports, and the oldest stays.
    """
    repeated = [i for rid, ids in examples_by_record(conn, project).items() if rid in record_ids for i in ids[1:]]
    if repeated:
        with api_errors(conn, f"removing {len(repeated)} repeated example(s) from project {project.name!r}"):
            conn._base.delete(f"projects/{project.id}/examples", json={"ids": repeated})
        log.warning("project %s: removed %d example(s) uploaded twice", project.name, len(repeated))
    return len(repeated)


def project_record_ids(url: str, credentials: Credentials, project_name: str) -> set[str]:
    """The record ids already in a project (for ``annotate tasks --skip-project``); the project must exist."""
    conn = connect(url, credentials)
    return set(existing_record_ids(conn, require_project(conn, project_name)))


def _record_id_of(meta: dict[str, Any]) -> str | None:
    """The API nests our meta once more (``{"meta": {"record_id": ...}}``); accept both shapes."""
    inner = meta.get("meta") if isinstance(meta.get("meta"), dict) else meta
    value = inner.get(RECORD_ID_KEY)
    return None if value is None else str(value)


@dataclass
class PushResult:
    project: ProjectRef
    created: bool
    uploaded: int
    skipped: int
    members: dict[str, str] = field(default_factory=dict)
    label_types: dict[str, int] = field(default_factory=dict)
    repeats_removed: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "project": self.project.name,
            "project_id": self.project.id,
            "project_created": self.created,
            "offset_unit": self.project.unit,
            "uploaded": self.uploaded,
            "skipped_already_present": self.skipped,
            "repeated_uploads_removed": self.repeats_removed,
            "members": self.members,
            **self.label_types,
        }


def push(
    conn: Connection,
    project_name: str,
    docs: Iterable[Article],
    schema: Schema,
    *,
    members: Iterable[tuple[str, str]] = (),
    grapheme_mode: bool = False,
) -> PushResult:
    """Create/update the project from ``schema``, add ``members``, upload the records not already there.

    Every member must be an existing Doccano user with a known role: that is checked before anything on the
    server changes, so a push with a typo in ``--member`` does not leave a half-made project behind."""
    members = list(members)
    check_members(conn, members)
    project, created = ensure_project(conn, project_name, schema, grapheme_mode=grapheme_mode)
    added = add_members(conn, project, members)
    present = {} if created else existing_record_ids(conn, project)
    rows, skipped, seen = [], 0, set(present)
    for doc in docs:
        if doc.id in seen:
            skipped += 1
            continue
        seen.add(doc.id)
        rows.append(to_task(doc, unit=project.unit))
    removed = 0
    if rows:
        upload_rows(conn, project, rows)
        removed = remove_repeated_uploads(conn, project, {row["meta"][RECORD_ID_KEY] for row in rows})
    log.info("project %s: uploaded %d, skipped %d already present", project.name, len(rows), skipped)
    return PushResult(project, created, len(rows) - removed, skipped + removed, added, repeats_removed=removed)


def upload_rows(conn: Connection, project: ProjectRef, rows: list[dict[str, Any]]) -> None:
    """Upload task rows as one JSONL file (ASCII-escaped and with the encoding named) and wait for the import."""
    with tempfile.TemporaryDirectory(prefix="annotate-push-") as tmp:
        path = Path(tmp) / f"{project.name[:40] or 'tasks'}.jsonl".replace("/", "_")
        with path.open("w", encoding="ascii") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=True) + "\n")
        # the client's upload() cannot pass the encoding (the server then guesses, and garbled UTF-8 once),
        # so we call its upload repository's two steps ourselves: file upload, then ingest with encoding
        repo = conn.client.data_import._data_upload_repository
        with api_errors(conn, f"uploading {len(rows)} tasks to project {project.name!r}"):
            upload_id = repo.upload(str(path))
            task_id = repo.ingest(project.id, [upload_id], IMPORT_TASK, DATA_FORMAT, encoding=UPLOAD_ENCODING)
    status = wait_task(conn, task_id, what=f"importing tasks into project {project.name!r}")
    errors = (status.get("result") or {}).get("error") or []
    if errors:
        first = "; ".join(_short(json.dumps(e, ensure_ascii=False), 160) for e in errors[:3])
        raise DoccanoError(f"Doccano rejected {len(errors)} line(s) of the upload to project {project.name!r}: {first}")


def wait_task(conn: Connection, task_id: str, *, what: str, timeout: float = TASK_TIMEOUT_S) -> dict[str, Any]:
    """Poll a Celery task (fast at first, then up to once a second) until ready; raise on failure or timeout.

    Where the connection can see the worker (``conn.worker_check``, the embedded server), a task still
    pending after :data:`WORKER_CHECK_AFTER_S` fails at once if the worker is gone, not after ``timeout``.
    (Doccano's ``/v1/health/`` cannot tell: its Celery check also fails while a single worker is busy.)
    """
    started = time.monotonic()
    deadline = started + timeout
    pause = TASK_POLL_FIRST_S
    while True:
        status = conn.get(f"tasks/status/{task_id}", what=what)
        if status.get("ready"):
            if status.get("error"):
                raise _TaskFailed(f"{what}: Doccano's task failed: {_short(status['error'])}")
            return status
        now = time.monotonic()
        if now > deadline:
            raise _TaskFailed(f"{what}: Doccano's task {task_id} not done after {timeout:.0f} s (is the worker running?)")
        if conn.worker_check is not None and now - started > WORKER_CHECK_AFTER_S and not conn.worker_check():
            raise _TaskFailed(f"{what}: Doccano's Celery worker is gone (task {task_id} will not run); "
                              "restart the server (`annotate doccano stop`, then `serve`)")
        time.sleep(pause)
        pause = min(pause * 1.5, TASK_POLL_MAX_S)


class _TaskFailed(DoccanoError):
    """A Celery task failed or timed out (worth retrying a few times)."""


# --------------------------------------------------------------------------------------------- pull


def export(conn: Connection, project: ProjectRef, *, confirmed_only: bool = False) -> dict[str, list[dict[str, Any]]]:
    """Run Doccano's dataset export and return ``{username: [export line, ...]}`` (bounded retries)."""
    what = f"exporting project {project.name!r}" + (" (confirmed only)" if confirmed_only else "")
    for attempt in range(1, TASK_ATTEMPTS + 1):
        try:
            task = conn.post(f"projects/{project.id}/download", {"format": DATA_FORMAT, "exportApproved": confirmed_only}, what=what)
            wait_task(conn, task["task_id"], what=what)
            data = download_whole(conn, f"projects/{project.id}/download", what=what, taskId=task["task_id"])
            return parse_export_zip(data, source=f"{conn.url} project {project.name!r}")
        except _TaskFailed as err:
            if attempt == TASK_ATTEMPTS:
                raise
            log.warning("%s (attempt %d of %d); retrying", err, attempt, TASK_ATTEMPTS)
            time.sleep(TASK_RETRY_BACKOFF_S * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def download_whole(conn: Connection, resource: str, *, what: str, **params: Any) -> bytes:
    """GET a file; a body shorter than its Content-Length (a connection cut mid-download) is retried by the caller."""
    with api_errors(conn, what):
        response = conn._base.get(resource, params=params or None)
        data = response.content
    expected = response.headers.get("Content-Length")
    if expected is not None and expected.isdigit() and int(expected) != len(data):
        raise _TaskFailed(f"{what}: the download was cut short ({len(data)} of {expected} bytes)")
    return data


def parse_export_zip(data: bytes, *, source: str = "export") -> dict[str, list[dict[str, Any]]]:
    """The export zip -> ``{username: [line objects]}``; a file named ``all.jsonl`` is a collaborative project.

    A zip cut short (no central directory, a member whose data ends early or fails its CRC) raises
    DoccanoError naming the source and member: nothing of it is half-read.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as err:
        raise DoccanoError(f"{source}: the export is not a zip file or is cut short ({len(data)} bytes)") from err
    out: dict[str, list[dict[str, Any]]] = {}
    with archive:
        for name in sorted(archive.namelist()):
            if not name.endswith(".jsonl"):
                continue
            try:
                raw = archive.read(name)  # checks the member's CRC
            except (zipfile.BadZipFile, EOFError, zlib.error) as err:
                raise DoccanoError(f"{source}/{name}: the export is cut short or corrupt ({err})") from err
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DoccanoError(f"{source}/{name}: the export is not UTF-8 (byte {err.start})") from err
            out[Path(name).stem] = parse_export_lines(text, source=f"{source}/{name}")
    return out


def parse_export_lines(text: str, *, source: str = "export") -> list[dict[str, Any]]:
    lines = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise DoccanoError(f"{source}:{line_no}: malformed export line ({err.msg})") from err
        if not isinstance(obj, dict) or "id" not in obj or "text" not in obj:
            raise DoccanoError(f"{source}:{line_no}: export line without 'id' and 'text'")
        lines.append(obj)
    return lines


def doc_from_export_line(line: dict[str, Any], *, annotator: str, status: str, unit: Unit) -> LabelledDoc:
    """One export line (one user's labels on one example) -> a record in code points with our ids.

    Spans are matched to the pushed ones by (start, end, label) and relations by (head, tail, label);
    matches get their pushed ids (and text/attrs) back, anything else gets ``dc``/``dr`` + database id.
    """
    text = line["text"]
    meta = _export_meta(line)
    record_id = str(meta.get(RECORD_ID_KEY) or f"doccano-{line['id']}")
    offsets = OffsetMap(text, unit)
    own = _own_bookkeeping(line)  # what `annotate doccano label` left for this user, if anything
    if own:
        meta = {**{k: v for k, v in meta.items() if k not in BOOKKEEPING_KEYS or k == RECORD_ID_KEY}, **own,
                RECORD_ID_KEY: meta.get(RECORD_ID_KEY)}
    pushed_entities = _pushed(meta.get(ENTITY_IDS_KEY), meta.get(ENTITY_SPANS_KEY))
    pushed_relations = _pushed(meta.get(RELATION_IDS_KEY), meta.get(RELATION_ENDS_KEY))
    extras = meta.get(EXTRAS_KEY) or {}
    taken: set[str] = set()
    db_to_id: dict[Any, str] = {}
    entities = []
    for span in sorted(_export_spans(line), key=lambda s: s["id"]):
        start, end = offsets.to_codepoint(span["start_offset"]), offsets.to_codepoint(span["end_offset"])
        ent_id = _claim(pushed_entities, (start, end, span["label"]), taken) or _new_id(NEW_ENTITY_PREFIX, span["id"], taken)
        db_to_id[span["id"]] = ent_id
        extra = (extras.get("entities") or {}).get(ent_id, {}) if ent_id in _values(pushed_entities) else {}
        entities.append(Entity(ent_id, start, end, span["label"], text=extra.get("text"), attrs=dict(extra.get("attrs") or {})))
    relations = []
    for rel in sorted(line.get("relations") or [], key=lambda r: r["id"]):
        head, tail = db_to_id.get(rel["from_id"], str(rel["from_id"])), db_to_id.get(rel["to_id"], str(rel["to_id"]))
        rel_id = _claim(pushed_relations, (head, tail, rel["type"]), taken) or _new_id(NEW_RELATION_PREFIX, rel["id"], taken)
        extra = (extras.get("relations") or {}).get(rel_id, {}) if rel_id in _values(pushed_relations) else {}
        relations.append(Relation(rel_id, head, tail, rel["type"], attrs=dict(extra.get("attrs") or {})))
    clean = {k: v for k, v in meta.items() if k not in BOOKKEEPING_KEYS}
    return LabelledDoc(record_id, text, clean, entities, relations, annotator=annotator, status=status)


def _own_bookkeeping(line: dict[str, Any]) -> dict[str, Any]:
    """The newest bookkeeping comment in a user's export line (their ids and attributes), or {}."""
    found = [c for c in line.get("Comments") or [] if isinstance(c, dict)
             and str(c.get("comment", "")).startswith(BOOKKEEPING_COMMENT)]
    if not found:
        return {}
    newest = max(found, key=lambda c: c.get("id", 0))
    try:
        data = json.loads(newest["comment"][len(BOOKKEEPING_COMMENT):])
    except ValueError:
        log.warning("example %s: unreadable bookkeeping comment ignored", line.get("id"))
        return {}
    return data if isinstance(data, dict) else {}


def _export_spans(line: dict[str, Any]) -> list[dict[str, Any]]:
    """Spans of a line: ``entities`` (projects with relations) or ``label`` triples (plain sequence labelling)."""
    if "entities" in line or not isinstance(line.get("label"), list):
        return list(line.get("entities") or [])
    return [{"id": i, "start_offset": s, "end_offset": e, "label": lab} for i, (s, e, lab) in enumerate(line["label"], start=1)]


def _export_meta(line: dict[str, Any]) -> dict[str, Any]:
    """Our push nests meta as ``"meta": {...}``; a foreign upload's meta keys sit at the top level."""
    if isinstance(line.get("meta"), dict):
        return dict(line["meta"])
    return {k: v for k, v in line.items() if k not in ("id", "text", "entities", "relations", "Comments", "label")}


def _pushed(ids: Any, keys: Any) -> dict[tuple, list[str]]:
    """(span or relation key) -> our ids, for the labels sent by the push (several if duplicated)."""
    out: dict[tuple, list[str]] = {}
    if not isinstance(ids, list) or not isinstance(keys, list):
        return out
    for our_id, key in zip(ids, keys):
        out.setdefault(tuple(key), []).append(str(our_id))
    return out


def _values(pushed: dict[tuple, list[str]]) -> set[str]:
    return {v for ids in pushed.values() for v in ids}


def _claim(pushed: dict[tuple, list[str]], key: tuple, taken: set[str]) -> str | None:
    for candidate in pushed.get(key, []):
        if candidate not in taken:
            taken.add(candidate)
            return candidate
    return None


def _new_id(prefix: str, db_id: Any, taken: set[str]) -> str:
    new = f"{prefix}{db_id}"
    while new in taken:
        new += "_"
    taken.add(new)
    return new


def confirmed_examples(conn: Connection, project: ProjectRef, exported: dict[str, list[dict[str, Any]]]) -> dict[str, set[int]]:
    """username -> ids of the examples that user confirmed.

    Member progress (one request) gives each member's count of confirmed examples; members at 0 or at
    all need nothing more. Only if someone is in between does a confirmed-only export tell which.
    """
    progress = conn.get(f"projects/{project.id}/metrics/member-progress", what=f"reading progress of project {project.name!r}")
    total = int(progress.get("total") or 0)
    done = {p["user"]: int(p["done"]) for p in progress.get("progress", []) if p.get("user")}
    out: dict[str, set[int]] = {}
    mixed = []
    if project.collaborative:  # one confirmation per example, shared by every member
        shared = collaborative_confirmed(conn, project)
        return {user: shared for user in exported}
    for user, lines in exported.items():
        count = done.get(user, 0)
        if count == 0:
            out[user] = set()
        elif count >= total:
            out[user] = {line["id"] for line in lines}
        else:
            mixed.append(user)
    if mixed:
        confirmed_export = export(conn, project, confirmed_only=True)
        for user in mixed:
            out[user] = {line["id"] for line in confirmed_export.get(user, [])}
    return out



ATTRIBUTION_INDIVIDUAL = "per annotator: Doccano's export has one file per member, named after them"
ATTRIBUTION_COLLABORATIVE = (
    "per annotator: this collaborative project's export merges everyone's labels without names, so each label's "
    "creator was read from Doccano's label API; Doccano records who created a label, not who last edited it, "
    "and a confirmation is shared by every member (status 'confirmed' means someone confirmed the example)"
)


@dataclass
class Attribution:
    """How a pull knew who made each label: the statement for the report and what could not be attributed."""

    statement: str
    borrowed_spans: int = 0  # spans of another member copied into a record because its owner's relation needs them
    unknown_creators: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"attribution": self.statement}
        if self.borrowed_spans:
            out["spans_copied_for_relations"] = self.borrowed_spans
        if self.unknown_creators:
            out["labels_by_non_members"] = self.unknown_creators
        return out


def collaborative_confirmed(conn: Connection, project: ProjectRef) -> set[int]:
    """Ids of the examples someone confirmed in a collaborative project (a confirmed-only export, if any)."""
    progress = conn.get(f"projects/{project.id}/metrics/member-progress", what=f"reading progress of project {project.name!r}")
    if not any(int(p.get("done") or 0) for p in progress.get("progress", [])):
        return set()
    return {line["id"] for lines in export(conn, project, confirmed_only=True).values() for line in lines}


def split_collaborative(
    conn: Connection, project: ProjectRef, merged: list[dict[str, Any]], confirmed: set[int]
) -> tuple[dict[str, list[dict[str, Any]]], Attribution]:
    """The merged ``all.jsonl`` lines of a collaborative project -> ``{username: [export-shaped line]}``.

    The export drops who made each label, but Doccano keeps it (each span and relation has a ``user``)
    and, in a collaborative project, the per-example label API lists everyone's labels with it: two
    requests per example that has labels. Comments (our bookkeeping) come from one paged listing. An
    example someone confirmed without labelling it goes to whoever confirmed it (one request each).
    """
    names = {m.user: m.username for m in _members(conn, project)}
    types = _type_names(conn, project)
    comments = _comments_by_example_user(conn, project)
    out: dict[str, list[dict[str, Any]]] = {}
    attribution = Attribution(ATTRIBUTION_COLLABORATIVE)
    unknown: set[str] = set()

    def name_of(user_id: int) -> str:
        if user_id not in names:
            unknown.add(f"user-{user_id}")
        return names.get(user_id, f"user-{user_id}")

    for line in merged:
        base = {k: v for k, v in line.items() if k not in ("entities", "relations", "Comments", "label")}
        by_user: dict[str, dict[str, Any]] = {}
        line_of = _user_lines(by_user, base, comments)

        if _export_spans(line) or line.get("relations"):
            where = f"projects/{project.id}/examples/{line['id']}"
            spans = conn.get(f"{where}/spans", what=f"reading spans of example {line['id']}")
            relations = conn.get(f"{where}/relations", what=f"reading relations of example {line['id']}")
            span_by_id = {}
            for span in spans:
                shaped = {"id": span["id"], "label": types["span"].get(span["label"], str(span["label"])),
                          "start_offset": span["start_offset"], "end_offset": span["end_offset"]}
                span_by_id[span["id"]] = shaped
                line_of(name_of(span["user"]))["entities"].append(shaped)
            for rel in relations:
                own = line_of(name_of(rel["user"]))
                own["relations"].append({"id": rel["id"], "from_id": rel["from_id"], "to_id": rel["to_id"],
                                         "type": types["relation"].get(rel["type"], str(rel["type"]))})
                have = {e["id"] for e in own["entities"]}
                for end in (rel["from_id"], rel["to_id"]):
                    if end not in have and end in span_by_id:
                        own["entities"].append(span_by_id[end])
                        have.add(end)
                        attribution.borrowed_spans += 1
        elif line["id"] in confirmed:  # confirmed with nothing to label: a record for whoever confirmed it
            states = conn.get(f"projects/{project.id}/examples/{line['id']}/states", what=f"reading who confirmed example {line['id']}")
            for state in states.get("results", []) if isinstance(states, dict) else states:
                line_of(name_of(state["confirmed_by"]))
        for user, shaped in by_user.items():
            out.setdefault(user, []).append(shaped)
    for username in names.values():
        out.setdefault(username, [])
    attribution.unknown_creators = sorted(unknown)
    return {user: sorted(lines, key=lambda ln: ln["id"]) for user, lines in sorted(out.items())}, attribution


def _user_lines(by_user: dict[str, dict[str, Any]], base: dict[str, Any], comments: dict[tuple[int, str], list[dict[str, Any]]]) -> Any:
    """``line_of(user)``: that user's export-shaped line for one example, made on first use."""
    def line_of(user: str) -> dict[str, Any]:
        fresh = {**base, "entities": [], "relations": [], "Comments": comments.get((base["id"], user), [])}
        return by_user.setdefault(user, fresh)
    return line_of


def _members(conn: Connection, project: ProjectRef) -> list[Any]:
    with api_errors(conn, f"listing members of project {project.name!r}"):
        return list(conn.client.list_members(project.id))


def _type_names(conn: Connection, project: ProjectRef) -> dict[str, dict[int, str]]:
    return {kind: {v: k for k, v in ids.items()} for kind, ids in _type_ids(conn, project).items()}


def _comments_by_example_user(conn: Connection, project: ProjectRef) -> dict[tuple[int, str], list[dict[str, Any]]]:
    """(example id, username) -> that user's comments there, shaped as in the export (``{"id", "comment"}``)."""
    out: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for row in paged(conn, f"projects/{project.id}/comments", what=f"listing comments of project {project.name!r}"):
        out.setdefault((row["example"], row["username"]), []).append({"id": row["id"], "comment": row["text"]})
    return out


@dataclass
class PullResult:
    project: ProjectRef
    docs: list[LabelledDoc]
    violations: list[tuple[LabelledDoc, list[Violation]]]
    skipped_empty: int
    annotators: dict[str, int]
    attribution: Attribution = field(default_factory=lambda: Attribution(ATTRIBUTION_INDIVIDUAL))

    @property
    def label_count(self) -> int:
        return count_labels(self.docs)

    def summary(self) -> dict[str, Any]:
        return {
            "project": self.project.name,
            "offset_unit": self.project.unit,
            "records": len(self.docs),
            "labels": self.label_count,
            "records_per_annotator": self.annotators,
            **self.attribution.summary(),
            "confirmed": sum(d.status == "confirmed" for d in self.docs),
            "unconfirmed": sum(d.status == "unconfirmed" for d in self.docs),
            "skipped_untouched": self.skipped_empty,
            "documents_with_violations": len(self.violations),
            "violations": {f"{doc.id} ({doc.annotator})": [str(v) for v in vs] for doc, vs in self.violations},
        }


def count_labels(docs: Iterable[LabelledDoc]) -> int:
    return sum(len(d.entities) + len(d.relations) for d in docs)


def pull(conn: Connection, project_name: str, schema: Schema | None = None) -> PullResult:
    """Every member's spans and relations on every example they touched, as records in code points.

    A (member, example) pair with no labels and no confirmation is skipped (counted in the summary):
    Doccano exports every example in every member's file.
    """
    project = require_project(conn, project_name)
    _require_sequence_labelling(conn, project)
    exported = export(conn, project)
    if project.collaborative:
        shared = collaborative_confirmed(conn, project)
        exported, attribution = split_collaborative(conn, project, exported.get("all", []), shared)
        confirmed = {user: shared for user in exported}
    else:
        attribution = Attribution(ATTRIBUTION_INDIVIDUAL)
        confirmed = confirmed_examples(conn, project, exported)
    docs: list[tuple[int, str, LabelledDoc]] = []
    skipped = 0
    for user, lines in exported.items():
        for line in lines:
            is_confirmed = line["id"] in confirmed.get(user, set())
            if not (_export_spans(line) or line.get("relations") or is_confirmed):
                skipped += 1
                continue
            status = "confirmed" if is_confirmed else "unconfirmed"
            docs.append((line["id"], user, doc_from_export_line(line, annotator=user, status=status, unit=project.unit)))
    docs.sort(key=lambda item: (item[0], item[1]))
    records = [doc for _, _, doc in docs]
    violations = []
    if schema is not None:
        for doc in records:
            found = validate_doc(doc, schema)
            if found:
                violations.append((doc, found))
    annotators = dict(sorted(Counter(d.annotator or "?" for d in records).items()))
    return PullResult(project, records, violations, skipped, annotators, attribution)


def write_pull(result: PullResult, out_dir: Path, *, force: bool = False) -> dict[str, Any]:
    """Write ``out_dir/labelled.jsonl`` and ``out_dir/pull-report.json`` atomically.

    Refuses (OutputError) to replace an earlier pull that held more labels, unless ``force``: a pull
    from the wrong project or an emptied server must not wipe annotators' work.
    """
    path = out_dir / LABELLED_FILE
    before = count_labels(read_docs(path)) if path.is_file() else None
    after = result.label_count
    if before is not None and after < before and not force:
        raise OutputError(f"{path}: the earlier pull has {before} labels and this one only {after}; pass --force to overwrite it")
    summary = {**result.summary(), "output": str(path), "labels_before": before, "report": str(out_dir / REPORT_FILE)}
    with OutputSet() as outputs:  # the records and their report land together, or neither does
        write_jsonl(outputs.path(path), result.docs)
        write_json(outputs.path(out_dir / REPORT_FILE), summary)
    shown = dict(list(summary["violations"].items())[:VIOLATIONS_SHOWN])  # all of them are in the report file
    return {**summary, "violations": shown}


def run_push(
    url: str,
    credentials: Credentials,
    project_name: str,
    path: Path,
    schema: Schema,
    *,
    members: Iterable[str] = (),
    grapheme_mode: bool = False,
    default_roles: dict[str, str] | None = None,
    worker_check: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """The ``annotate doccano push`` job: read records or tasks, log in, push; return the summary.

    ``default_roles`` (user -> account role) gives the role of a member written without ``:ROLE``.
    """
    docs = read_push_input(path)
    member_specs = [parse_member(spec, default_roles) for spec in members]
    conn = connect(url, credentials)
    conn.worker_check = worker_check
    result = push(conn, project_name, docs, schema, members=member_specs, grapheme_mode=grapheme_mode)
    return {**result.summary(), "url": conn.url, "input": str(path), "records_read": len(docs)}


def run_pull(
    url: str,
    credentials: Credentials,
    project_name: str,
    out_dir: Path,
    schema: Schema,
    *,
    force: bool = False,
    worker_check: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """The ``annotate doccano pull`` job: log in, export, convert, validate, write; return the summary.

    Nothing is written unless the whole export was read (``worker_check``: see :func:`wait_task`).
    """
    conn = connect(url, credentials)
    conn.worker_check = worker_check
    result = pull(conn, project_name, schema)
    return {**write_pull(result, out_dir, force=force), "url": conn.url}


# ------------------------------------------------------------------------------------------------ labelling

BOOKKEEPING_COMMENT = "annotate:bookkeeping "  # prefix of the comment that carries one annotator's label ids


@dataclass
class LabelResult:
    project: ProjectRef
    annotator: str
    labelled: int
    skipped_already_labelled: int
    not_in_project: list[str]
    spans: int
    relations: int

    def summary(self) -> dict[str, Any]:
        return {"project": self.project.name, "annotator": self.annotator, "labelled": self.labelled,
                "skipped_already_labelled": self.skipped_already_labelled, "not_in_project": len(self.not_in_project),
                "not_in_project_examples": self.not_in_project[:5], "spans": self.spans, "relations": self.relations}


def _type_ids(conn: Connection, project: ProjectRef) -> dict[str, dict[str, int]]:
    with api_errors(conn, f"listing label types of project {project.name!r}"):
        return {kind: {t.text: t.id for t in conn.client.list_label_types(project.id, kind)} for kind in ("span", "relation")}


def label(conn: Connection, project_name: str, docs: Iterable[LabelledDoc], *, confirm: bool = True) -> LabelResult:
    """Label the project's examples as the logged-in user, through the annotation API the UI uses: one span
    request per entity, one relation request per relation, then the example confirmed. Records are matched to
    examples by record id (``annotate doccano push`` first); an example where this user already has labels is
    skipped, so a re-run adds nothing twice. The user's own ids and attributes (``negated``...), which Doccano
    has no field for, are kept in a comment by that user (:data:`BOOKKEEPING_COMMENT`), from which the pull
    restores them for every label the user has not changed since.
    """
    project = require_project(conn, project_name)
    _require_sequence_labelling(conn, project)
    present = existing_record_ids(conn, project)
    types = _type_ids(conn, project)
    docs = list(docs)
    for doc in docs:
        unknown = sorted({e.label for e in doc.entities if e.label not in types["span"]}
                         | {r.label for r in doc.relations if r.label not in types["relation"]})
        if unknown:
            raise DoccanoError(f"record {doc.id!r}: label(s) {', '.join(unknown)} not in project {project.name!r} "
                               "(push with the schema that has them first)")
    result = LabelResult(project, conn.username, 0, 0, [], 0, 0)
    with api_errors(conn, "reading the logged-in user's profile"):
        me = conn.client.get_profile().id
    for doc in docs:
        example = present.get(doc.id)
        if example is None:
            result.not_in_project.append(doc.id)
            continue
        base = f"projects/{project.id}/examples/{example}"
        # in a collaborative project these list everyone's labels: only the caller's own count
        if [x for x in conn.get(f"{base}/spans", what=f"reading spans of example {example}") if x.get("user") == me] or \
                [x for x in conn.get(f"{base}/relations", what=f"reading relations of example {example}") if x.get("user") == me]:
            result.skipped_already_labelled += 1
            continue
        offsets = OffsetMap(doc.text, project.unit)
        db_ids: dict[str, int] = {}
        for ent in doc.entities:
            made = conn.post(f"{base}/spans", {"start_offset": offsets.from_codepoint(ent.start),
                                               "end_offset": offsets.from_codepoint(ent.end),
                                               "label": types["span"][ent.label]}, what=f"saving a span in example {example}")
            db_ids[ent.id] = made["id"]
        for rel in doc.relations:
            conn.post(f"{base}/relations", {"from_id": db_ids[rel.head], "to_id": db_ids[rel.tail],
                                            "type": types["relation"][rel.label]}, what=f"saving a relation in example {example}")
        keep = {k: v for k, v in to_task(doc, unit=project.unit)["meta"].items() if k in BOOKKEEPING_KEYS}
        conn.post(f"projects/{project.id}/comments?example={example}", {"text": BOOKKEEPING_COMMENT + json.dumps(keep, ensure_ascii=True)},
                  what=f"saving the bookkeeping comment of example {example}")
        if confirm:
            conn.post(f"{base}/states", {}, what=f"confirming example {example}")
        result.labelled += 1
        result.spans += len(doc.entities)
        result.relations += len(doc.relations)
    return result


def run_label(url: str, credentials: Credentials, project_name: str, path: Path, *, confirm: bool = True) -> dict[str, Any]:
    """The ``annotate doccano label`` job: read records, log in as the annotator, label; return the summary."""
    docs = list(read_docs(path))
    conn = connect(url, credentials)
    return {**label(conn, project_name, docs, confirm=confirm).summary(), "url": conn.url, "input": str(path)}
