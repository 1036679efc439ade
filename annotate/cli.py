"""The ``annotate`` command line: one thin typer command per stage.

Commands parse options, call a plain function from the stage's module, and show its result (a rich table
on stderr, or the JSON summary on stdout with ``--json``). This is the only module that prints or sets
exit codes: :func:`main` turns any :class:`~annotate.errors.AnnotateError` into one line on stderr and a
non-zero exit.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import click
import typer
import typer.core
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from .errors import AnnotateError


class _ErrorsAtTheEdge(typer.core.TyperGroup):
    """Turn any toolkit error raised by a command (or a sub-command) into one line and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AnnotateError as err:
            err_console.print(f"error: {err}", style="red", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(err.exit_code) from err


app = typer.Typer(
    cls=_ErrorsAtTheEdge,
    name="annotate",
    help="Build entity-relation corpora and models for diplomacy and defence news.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
doccano_app = typer.Typer(help="Run a local Doccano, push tasks to it, pull labels back.", no_args_is_help=True)
import_app = typer.Typer(help="Import other corpora (re3d, ...) as records.", no_args_is_help=True)
app.add_typer(doccano_app, name="doccano")
schema_app = typer.Typer(help="Check a label schema file and generate annotation guidelines from it.", no_args_is_help=True)
app.add_typer(import_app, name="import")
app.add_typer(schema_app, name="schema")

err_console = Console(stderr=True)
T = TypeVar("T")

SchemaOpt = Annotated[
    Path | None,
    typer.Option("--schema", exists=True, dir_okay=False,
                 help="Label schema file (YAML/JSON). Default: the shipped diplomacy-defence schema."),
]
MAX_VIOLATIONS_SHOWN = 50


# fixed choices, so that typer rejects anything else
class OffsetUnit(str, Enum):
    utf16 = "utf16"
    grapheme = "grapheme"
    codepoint = "codepoint"


class Strategy(str, Enum):
    majority = "majority"
    annotator = "annotator"


class Selection(str, Enum):
    random = "random"
    uncertainty = "uncertainty"
    diverse = "diverse"
    uncertainty_per_char = "uncertainty-per-char"


class Misaligned(str, Enum):
    expand = "expand"
    contract = "contract"
    drop = "drop"


class Overlap(str, Enum):
    longest = "longest"
    shortest = "shortest"


JsonOpt = Annotated[bool, typer.Option("--json", help="Print the JSON summary on stdout instead of a table.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace an earlier output even if it holds more records than this run writes.")]
SkipInvalidOpt = Annotated[bool, typer.Option("--skip-invalid", help="Leave out records that break the schema (counted) instead of stopping.")]


def _gate(source: Any, schema: Any, skip_invalid: bool) -> Any:
    """The validation gate every record-reading command puts its input through (see annotate.schema.Gate)."""
    from .schema import Gate

    return Gate(schema, str(source), skip_invalid)


def _gate_summary(*gates: Any) -> dict[str, Any]:
    skipped = sum(g.skipped for g in gates)
    return {"skipped_invalid": skipped, "skipped_examples": [e for g in gates for e in g.examples][:5]} if skipped else {}


def progress(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Wrap an iterator in a progress bar on stderr (silent when stderr is not a terminal)."""
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=err_console, transient=True, disable=not err_console.is_terminal) as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)


def report(summary: dict[str, Any], *, as_json: bool, title: str, rows: Iterable[tuple[str, Any]] | None = None) -> None:
    """Show a command's result: JSON on stdout, or a two-column table on stderr."""
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False, indent=2))
        return
    table = Table(title=title, show_header=False)
    for key, value in rows if rows is not None else summary.items():
        table.add_row(str(key), value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
    err_console.print(table)


# ------------------------------------------------------------------------------- foundation commands
# (ingest, tasks, validate)


@app.command("ingest")
def ingest_cmd(
    inputs: Annotated[list[Path], typer.Argument(help="Files or folders: seed .txt, plain .txt, .jsonl, .html.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Articles JSONL to write.")],
    max_chars: Annotated[int, typer.Option(help="Split articles longer than this at paragraph/sentence boundaries.")] = 2500,
    near_dup_threshold: Annotated[float, typer.Option(help="MinHash Jaccard threshold for near duplicates; 0 turns the check off.")] = 0.8,
    drop_near_duplicates: Annotated[bool, typer.Option(help="Drop near duplicates instead of only flagging them.")] = False,
    text_field: Annotated[str, typer.Option(help="JSONL field holding the article text.")] = "text",
    append: Annotated[bool, typer.Option(help="Keep the articles already in --out and add only new ones.")] = False,
    report_path: Annotated[Path | None, typer.Option("--report", help="Dedup report JSON. Default: beside --out.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace --out even if it holds more articles than this run writes.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Read raw articles, normalise, de-duplicate and chunk them into an articles JSONL.

    Example: annotate ingest seeds/ --out corpora/demo/articles.jsonl
    """
    from .ingest import run_ingest

    summary = run_ingest(inputs, out, report_path=report_path, append=append, force=force,
                         wrap=lambda stream: progress(stream, "ingesting"), max_chars=max_chars,
                         near_threshold=near_dup_threshold, drop_near_duplicates=drop_near_duplicates,
                         text_field=text_field)
    rows = [(k, summary[k]) for k in ("out", "report", "files", "read", "articles", "chunks", "written",
                                      "exact_duplicates_dropped", "near_duplicates_flagged", "empty_dropped")]
    report(summary, as_json=as_json, title="ingest", rows=rows)


@app.command("tasks")
def tasks_cmd(
    articles: Annotated[Path, typer.Argument(help="Articles (or labelled records) JSONL from `annotate ingest`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Doccano import JSONL to write.")],
    patterns: Annotated[bool, typer.Option("--patterns", help="Pre-annotate with the shipped gazetteer.")] = False,
    patterns_file: Annotated[Path | None, typer.Option(help="Pre-annotate with this EntityRuler patterns JSONL.")] = None,
    model: Annotated[Path | None, typer.Option(help="Pre-annotate with a trained pipeline (annotate train).")] = None,
    unit: Annotated[OffsetUnit, typer.Option(help="Offset unit of the Doccano UI: utf16 (default projects), grapheme, codepoint.")] = OffsetUnit.utf16,
    schema: SchemaOpt = None,
    skip_invalid: SkipInvalidOpt = False,
    force: ForceOpt = False,
    select: Annotated[Selection | None, typer.Option("--select", help="Active learning: rank the records by random, uncertainty, diverse or uncertainty-per-char (doubt per 1,000 characters); all but random need --model.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="With --select: keep the first N records of the ranking.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of random and diverse selection.")] = 0,
    per_article: Annotated[bool, typer.Option("--per-article", help="With --select: choose whole articles (all their chunks, scores summed); --limit counts articles.")] = False,
    skip_ids: Annotated[list[Path] | None, typer.Option("--skip-ids", exists=True, dir_okay=False, help="Leave out records whose id is in this records/tasks JSONL (e.g. a pull's labelled.jsonl); repeatable.")] = None,
    skip_project: Annotated[str | None, typer.Option("--skip-project", help="Leave out records already in this Doccano project.")] = None,
    url: Annotated[str | None, typer.Option("--url", help="With --skip-project: a Doccano of your own (default: the embedded one).")] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="With --skip-project: data dir of the embedded Doccano.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Turn articles into Doccano import tasks, optionally with suggested spans and relations.

    Example: annotate tasks corpora/demo/articles.jsonl --patterns --out corpora/demo/tasks.jsonl

    Next round of active learning: annotate tasks corpora/demo/articles.jsonl --model models/demo/model-best
    --select uncertainty --limit 20 --skip-project demo --out corpora/demo/round2.jsonl
    """
    from .records import read_docs
    from .schema import load_schema
    from .select import read_ids
    from .tasks import run_tasks

    sch = load_schema(schema)
    gate = _gate(articles, sch, skip_invalid)
    skip = {record_id for path in skip_ids or [] for record_id in read_ids(path)}
    if skip_project is not None:
        from . import doccano, doccano_server

        skip |= doccano.project_record_ids(doccano_server.resolve_url(url, data_dir), _doccano_credentials(), skip_project)
    summary = run_tasks(gate(progress(read_docs(articles), "reading")), out, unit=unit.value, patterns=patterns,
                        patterns_file=patterns_file, model=model, schema=sch,
                        wrap=lambda docs: progress(docs, "suggesting"), force=force,
                        select=select.value if select else None, limit=limit, seed=seed, skip_ids=skip,
                        per_article=per_article)
    summary.update(_gate_summary(gate))
    report(summary, as_json=as_json, title="tasks")


@schema_app.command("check")
def schema_check_cmd(
    path: Annotated[Path | None, typer.Argument(help="Schema file (YAML/JSON). Default: the shipped schema.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Load a schema file and report every problem in it (duplicate labels, unknown labels, bad colours).

    Example: annotate schema check my-schema.yaml
    """
    from .schema import load_schema

    sch = load_schema(path)
    summary = {"schema": sch.name, "source": sch.source, "entity_labels": sch.entity_labels,
               "relation_types": sch.relation_labels}
    report(summary, as_json=as_json, title="schema")


@schema_app.command("guidelines")
def schema_guidelines_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Markdown file to write.")],
    schema: SchemaOpt = None,
) -> None:
    """Write annotation guidelines (labels, keys, allowed relation ends) generated from a schema.

    Example: annotate schema guidelines --out docs/guidelines.md
    """
    from .records import atomic_writer
    from .schema import guidelines_markdown, load_schema

    with atomic_writer(out) as handle:
        handle.write(guidelines_markdown(load_schema(schema)))
    err_console.print(f"wrote {out}")


@app.command("validate")
def validate_cmd(
    records: Annotated[Path, typer.Argument(help="Labelled records JSONL.")],
    schema: SchemaOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check labelled records against a schema; list every violation, exit 1 if there is any.

    Example: annotate validate corpora/demo/labelled.jsonl --schema annotate/schemas/diplomacy-defence.yaml
    """
    from .errors import ValidationError
    from .records import read_docs
    from .schema import load_schema, validate_records

    sch = load_schema(schema)
    n, violations = validate_records(progress(read_docs(records), "validating"), sch)
    summary = {"records": n, "schema": sch.name, "violations": [v.to_dict() for v in violations]}
    if as_json:
        report(summary, as_json=True, title="validate")
    else:
        for v in violations[:MAX_VIOLATIONS_SHOWN]:
            err_console.print(str(v), markup=False, highlight=False)
        report(summary, as_json=False, title="validate",
               rows=[("records", n), ("schema", sch.name), ("violations", len(violations))])
    if violations:
        raise ValidationError(violations, source=str(records))

# ------------------------------------------------------------------------------- doccano commands

DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data dir of the embedded Doccano (default: $ANNOTATE_DOCCANO_HOME or <repo>/.doccano)."),
]
UrlOpt = Annotated[
    str | None, typer.Option("--url", help="A Doccano of your own (default: the embedded server started by `annotate doccano serve`).")
]
ProjectOpt = Annotated[str, typer.Option("--project", help="Doccano project name.")]


def _doccano_credentials() -> Any:
    """Login from ANNOTATE_DOCCANO_USER / ANNOTATE_DOCCANO_PASSWORD, or a hidden prompt; never stored."""
    from . import doccano_server

    found = doccano_server.credentials_from_env()
    if found is not None:
        return found
    username = doccano_server.username_from_env()
    password = typer.prompt(f"Doccano password for {username}", hide_input=True, err=True)
    return doccano_server.Credentials(username, password)


@doccano_app.command("install")
def doccano_install_cmd(
    venv: Annotated[Path | None, typer.Option("--venv", help="Where (default: $ANNOTATE_DOCCANO_VENV or <repo>/.venv-doccano).")] = None,
) -> None:
    """Install Doccano 1.8.4 in its own virtual environment (about a minute, from PyPI).

    Example: annotate doccano install
    """
    from . import doccano_server

    path = doccano_server.ensure_installed(venv)
    report({"venv": str(path), "doccano": doccano_server.DOCCANO_VERSION}, as_json=False, title="Doccano installed")


class DatabaseKind(str, Enum):
    sqlite = "sqlite"
    postgres = "postgres"


@doccano_app.command("serve")
def doccano_serve_cmd(
    data_dir: DataDirOpt = None,
    port: Annotated[int, typer.Option("--port", help="Port to serve on.")] = 8000,
    host: Annotated[str, typer.Option("--host", help="Address to serve on; beyond loopback needs a strong $ANNOTATE_DOCCANO_PASSWORD.")] = "127.0.0.1",
    allowed_host: Annotated[list[str] | None, typer.Option("--allowed-host", help="Another name clients use (a proxy's); repeatable.")] = None,
    database: Annotated[DatabaseKind | None, typer.Option(
        "--database", help="sqlite (embedded) or postgres (a local cluster in the data dir). Default: the data dir's own, else sqlite.")] = None,
    database_url: Annotated[str | None, typer.Option(
        "--database-url", envvar="ANNOTATE_DOCCANO_DATABASE_URL", show_default=False, show_envvar=True,
        help="A PostgreSQL of your own, postgresql://USER:PASSWORD@HOST:PORT/DB (better in the env var: argv is public).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Start the embedded Doccano (web server on 127.0.0.1 + Celery worker) in the background; print its URL.

    The admin is $ANNOTATE_DOCCANO_USER (default admin) with password $ANNOTATE_DOCCANO_PASSWORD; a new
    admin without one gets a random password, shown here once. --host other than loopback (0.0.0.0 only
    when written out) needs that password (12+ characters, not a default) and prints a warning.

    Example: ANNOTATE_DOCCANO_PASSWORD=... annotate doccano serve --port 8000 --database postgres
    """
    from . import doccano_server

    result = doccano_server.start(data_dir, port=port, credentials=doccano_server.credentials_from_env(), host=host,
                                  extra_hosts=tuple(allowed_host or ()), database=database.value if database else None,
                                  database_url=database_url)
    for warning in result.warnings:
        err_console.print(f"warning: {warning}", style="yellow", markup=False, highlight=False, soft_wrap=True)
    summary = {"url": result.info.url, "data_dir": result.info.data_dir, "already_running": result.already_running,
               "web_pid": result.info.web_pid, "worker_pid": result.info.worker_pid, "host": result.info.host,
               "allowed_hosts": result.info.allowed_hosts, "database": result.info.database, "db_pid": result.info.db_pid}
    report(summary, as_json=as_json, title="Doccano running")
    if result.generated_password:
        err_console.print(f"generated admin password (shown once, not stored): {result.generated_password}", markup=False)


@doccano_app.command("stop")
def doccano_stop_cmd(data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Stop the embedded Doccano started by `annotate doccano serve` (by the pids in its data dir).

    Example: annotate doccano stop
    """
    from . import doccano_server

    stopped = doccano_server.stop(data_dir)
    report({"stopped": stopped}, as_json=as_json, title="Doccano")


@doccano_app.command("push")
def doccano_push_cmd(
    tasks_or_records: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Records JSONL or `annotate tasks` output.")],
    project: ProjectOpt,
    url: UrlOpt = None,
    schema: SchemaOpt = None,
    member: Annotated[list[str] | None, typer.Option("--member", help="USER or USER:ROLE (admin, annotator, approver); repeatable.")] = None,
    grapheme_mode: Annotated[bool, typer.Option("--grapheme-mode", help="New project counts grapheme clusters in the UI.")] = False,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create/update a Doccano project from the schema, add members, upload tasks not already there.

    Example: annotate doccano push corpora/demo/tasks.jsonl --project demo --member alice:annotator
    """
    from . import doccano, doccano_server
    from .schema import load_schema

    target = doccano_server.resolve_url(url, data_dir)
    # a bare --member NAME takes the account role `users add --role` recorded (embedded server only)
    defaults = {} if url or all(":" in m for m in member or []) else doccano_server.default_member_roles(data_dir or doccano_server.default_data_dir())
    summary = doccano.run_push(target, _doccano_credentials(), project, tasks_or_records, load_schema(schema),
                               members=member or [], grapheme_mode=grapheme_mode, default_roles=defaults,
                               worker_check=None if url else doccano_server.worker_checker(data_dir))
    report(summary, as_json=as_json, title=f"Pushed to {project}")


@doccano_app.command("label")
def doccano_label_cmd(
    records: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Records JSONL whose labels are this annotator's work.")],
    project: ProjectOpt,
    url: UrlOpt = None,
    confirm: Annotated[bool, typer.Option("--confirm/--no-confirm", help="Mark each labelled example confirmed.")] = True,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Label pushed examples as the logged-in user through the annotation API the UI uses (spans, relations, confirm).

    For work done outside Doccano (a second annotator's file) or to simulate annotators. Log in as the annotator:
    Example: ANNOTATE_DOCCANO_USER=bob annotate doccano label corpora/x/bob.jsonl --project demo
    """
    from . import doccano, doccano_server

    target = doccano_server.resolve_url(url, data_dir)
    summary = doccano.run_label(target, _doccano_credentials(), project, records, confirm=confirm)
    report(summary, as_json=as_json, title=f"Labelled in {project} as {summary['annotator']}")


users_app = typer.Typer(help="Accounts of the embedded Doccano: add one, list them.", no_args_is_help=True)
doccano_app.add_typer(users_app, name="users")


@users_app.command("add")
def doccano_users_add_cmd(
    username: Annotated[str, typer.Argument(help="The new user's name.")],
    role: Annotated[str, typer.Option("--role", help="annotator (default), approver: an ordinary account, the role `push --member NAME` "
                                       "gives; admin: a Doccano superuser (creates projects, pushes, pulls).")] = "annotator",
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a Doccano account (or update its role and password) in the local server's database.

    The password is prompted for (hidden, twice), or taken from $ANNOTATE_NEW_PASSWORD; an empty answer
    generates one, shown here once and never stored. Works whether or not the server runs.
    Example: annotate doccano users add alice --role annotator
    """
    import os
    import secrets

    from . import doccano_server

    given = os.environ.get("ANNOTATE_NEW_PASSWORD")
    if given is None and sys.stdin.isatty():
        given = typer.prompt(f"password for {username} (empty: generate one)", default="", hide_input=True,
                             confirmation_prompt=True, show_default=False, err=True)
    password = given or secrets.token_urlsafe(doccano_server.GENERATED_PASSWORD_BYTES)
    folder = data_dir or doccano_server.default_data_dir()
    summary = doccano_server.add_account(folder, username, password, role=role)
    if not given:
        summary["password"] = password  # shown once, never written to disk
    report(summary, as_json=as_json, title="Doccano user")


@users_app.command("list")
def doccano_users_list_cmd(data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Every account of the local server: its role, whether active, last login, its role in each project.

    Example: annotate doccano users list
    """
    from . import doccano_server

    rows = doccano_server.list_accounts(data_dir or doccano_server.default_data_dir())
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table(title="Doccano users")
    for column in ("user", "role", "active", "last login", "projects"):
        table.add_column(column)
    for row in rows:
        projects = ", ".join(f"{name} ({role})" for name, role in row["projects"].items()) or "-"
        table.add_row(row["user"], row["role"] or "-", "yes" if row["active"] else "no", row["last_login"] or "never", projects)
    err_console.print(table)


@doccano_app.command("users-add", hidden=True)
def doccano_users_add_alias_cmd(
    username: Annotated[str, typer.Argument(help="The new user's name.")],
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Old name of `doccano users add NAME` (kept so existing scripts run)."""
    doccano_users_add_cmd(username, "annotator", data_dir, as_json)


@doccano_app.command("pull")
def doccano_pull_cmd(
    project: ProjectOpt,
    out: Annotated[Path, typer.Option("--out", help="Corpus folder; writes labelled.jsonl and pull-report.json.")],
    url: UrlOpt = None,
    schema: SchemaOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an earlier pull even if it had more labels.")] = False,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Pull every annotator's spans and relations (one record per document per annotator).

    Example: annotate doccano pull --project demo --out corpora/demo
    """
    from . import doccano, doccano_server
    from .schema import load_schema

    target = doccano_server.resolve_url(url, data_dir)
    summary = doccano.run_pull(target, _doccano_credentials(), project, out, load_schema(schema), force=force,
                               worker_check=None if url else doccano_server.worker_checker(data_dir))
    report(summary, as_json=as_json, title=f"Pulled {project}")


@doccano_app.command("backup")
def doccano_backup_cmd(
    out: Annotated[Path, typer.Option("--out", dir_okay=False, help="The backup file to write (a .tar.gz).")],
    data_dir: DataDirOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file at --out.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Back up the embedded Doccano's database (SQLite online backup or pg_dump; the server may run).

    Example: annotate doccano backup --out doccano-2025-03-11.tar.gz
    """
    from . import doccano_backup, doccano_server

    summary = doccano_backup.backup(data_dir or doccano_server.default_data_dir(), out, force=force)
    report(summary, as_json=as_json, title="Doccano backup")


@doccano_app.command("restore")
def doccano_restore_cmd(
    backup_file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A file from `annotate doccano backup`.")],
    data_dir: DataDirOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the database of a data dir that is not empty (its server stopped).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Restore a backup into a fresh data dir (checked whole first), then `annotate doccano serve` it.

    Example: annotate doccano restore doccano-2025-03-11.tar.gz --data-dir /srv/doccano-restored
    """
    from . import doccano_backup, doccano_server

    summary = doccano_backup.restore(backup_file, data_dir or doccano_server.default_data_dir(), force=force)
    report(summary, as_json=as_json, title="Doccano restored")


# ------------------------------------------------------------------------------- training commands


def _date_pair(value: str) -> tuple[str, str]:
    """``--dates DEV_FROM,TEST_FROM``: two ISO dates, the first not after the second."""
    from datetime import date

    parts = value.split(",")
    try:
        first, second = (date.fromisoformat(p.strip()) for p in parts)
    except ValueError as err:
        raise typer.BadParameter(f"--dates takes two ISO dates DEV_FROM,TEST_FROM, got {value!r}") from err
    if first > second:
        raise typer.BadParameter(f"--dates: DEV_FROM {first} is after TEST_FROM {second}")
    return first.isoformat(), second.isoformat()


def _floats(value: str, n: int, option: str) -> tuple[float, ...]:
    try:
        parts = tuple(float(x) for x in value.split(","))
    except ValueError as err:
        raise typer.BadParameter(f"{option} takes {n} comma-separated numbers, got {value!r}") from err
    if len(parts) != n:
        raise typer.BadParameter(f"{option} takes {n} comma-separated numbers, got {value!r}")
    if any(not math.isfinite(x) or x < 0 for x in parts) or not sum(parts) > 0:
        raise typer.BadParameter(f"{option} takes finite, non-negative numbers with a positive sum, got {value!r}")
    return parts


@app.command("docbin")
def docbin_cmd(
    records: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, help="Labelled records JSONL.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for train/dev/test.spacy and docbin-report.json.")],
    seed: Annotated[int, typer.Option(help="Seed of the hash-based article split.")] = 0,
    ratios: Annotated[str, typer.Option(help="train,dev,test ratios.")] = "0.8,0.1,0.1",
    dates: Annotated[str | None, typer.Option(help="Split by meta.date instead: DEV_FROM,TEST_FROM (ISO dates).")] = None,
    misaligned: Annotated[Misaligned, typer.Option(help="Spans off token edges: expand, contract or drop.")] = Misaligned.expand,
    overlap: Annotated[Overlap, typer.Option(help="Overlapping spans in doc.ents: keep the longest or shortest.")] = Overlap.longest,
    schema: SchemaOpt = None,
    skip_invalid: SkipInvalidOpt = False,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Records -> spaCy DocBins with a deterministic article-level train/dev/test split.

    Example: annotate docbin corpora/demo/labelled.jsonl --out corpora/demo --ratios 0.8,0.1,0.1
    """
    from .docbin import build_docbins
    from .records import read_docs

    ratio_values = _floats(ratios, 3, "--ratios")
    date_values = _date_pair(dates) if dates else None
    from .schema import load_schema

    sch = load_schema(schema)
    gates = [_gate(path, sch, skip_invalid) for path in records]
    docs = (doc for path, gate in zip(records, gates) for doc in gate(progress(read_docs(path), f"docbin {path.name}")))
    summary = build_docbins(docs, out, seed=seed, ratios=ratio_values, dates=date_values,  # type: ignore[arg-type]
                            misaligned=misaligned.value, overlap=overlap.value, force=force)
    summary.update(_gate_summary(*gates))
    rows = [("docs", summary["docs"]), ("articles", summary["articles"]), ("policies", f"{misaligned.value}/{overlap.value}")]
    rows += [(label, counts) for label, counts in summary["alignment"]["entities"].items()]
    report(summary, as_json=as_json, title=f"DocBins in {out}", rows=rows)


@app.command("train", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train_cmd(
    ctx: typer.Context,
    config: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Training config (.cfg).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for model-best/, model-last/ and the run record.")],
    base: Annotated[str | None, typer.Option("--base", help="Pretrained base pipeline for configs that source from one: a package (en_core_web_md), a module carrying one, or a folder.")] = None,
    gpu_id: Annotated[int, typer.Option("--gpu-id", help="GPU to use; -1 for CPU.")] = -1,
    as_json: JsonOpt = False,
) -> None:
    """Train NER + relation extraction with spaCy; extra --section.key=value options override the config.

    Example: annotate train models/configs/ner-rel-cpu.cfg --output models/run1 --paths.train corpora/demo/train.spacy --paths.dev corpora/demo/dev.spacy --training.max_steps=2000
    """
    from spacy.cli._util import parse_config_overrides

    from .train import train

    try:
        overrides = parse_config_overrides(list(ctx.args))
    except SystemExit as err:
        raise typer.BadParameter(f"config overrides must look like --section.key=value, got {ctx.args!r}") from err
    err_console.print(f"training {config} -> {output} (progress below)", style="dim")
    summary = train(config, output, overrides=overrides, base=base, gpu_id=gpu_id, log=sys.stderr)
    for note in summary.get("notes", []):
        err_console.print(note, style="yellow")
    scores = summary.get("dev_scores", {})
    rows = [("model", summary["model"]), ("train seconds", summary["train_seconds"])]
    rows += [(k, scores[k]) for k in ("ents_f", "ents_macro_f", "rel_micro_f", "rel_macro_f") if k in scores]
    rows += [("thresholds", summary.get("thresholds", {}))]
    report(summary, as_json=as_json, title=f"Trained {output}", rows=rows)


class Engine(str, Enum):
    local = "local"
    dask = "dask"


@app.command("predict")
def predict_cmd(
    model: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="A trained pipeline folder.")],
    inputs: Annotated[list[Path], typer.Argument(exists=True, help="Records JSONL or Parquet, or raw articles (.txt/.html/.jsonl, folders).")],
    out: Annotated[Path, typer.Option("--out", help="Predicted records: JSONL, or Parquet for a .parquet name (with --engine dask: a folder of part files).")],
    batch_size: Annotated[int, typer.Option(help="Documents per nlp.pipe batch.")] = 64,
    n_process: Annotated[int, typer.Option("--n-process", help="Worker processes for nlp.pipe.")] = 1,
    restart: Annotated[bool, typer.Option("--restart", help="Discard an interrupted run left beside --out instead of continuing it.")] = False,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", min=1, help="Records per part file: an interrupted run redoes at most this many.")] = 1000,
    engine: Annotated[Engine, typer.Option("--engine", help="local: this machine; dask: map partitions over a Dask cluster.")] = Engine.local,
    scheduler: Annotated[str, typer.Option("--scheduler", help="With --engine dask: tcp://HOST:8786, or local:N for N worker processes here.")] = "local:2",
    partitions: Annotated[int | None, typer.Option("--partitions", min=1, help="With --engine dask: partitions of the input (default: 4 per worker).")] = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Predict entities and relations on articles; the output feeds `annotate tasks` as pre-annotations.

    Streams in constant memory; an interrupted run continues where it stopped when run again.

    Example: annotate predict models/run1/model-best seeds/ --out corpora/demo/predicted.jsonl --n-process 2
    """
    if engine is Engine.dask:
        from .distributed import predict_distributed

        bar = progress(iter(int, 1), "predict (partitions)")
        summary = predict_distributed(model, inputs, out, scheduler=scheduler, partitions=partitions,
                                      batch_size=batch_size, force=force, restart=restart,
                                      on_partition=lambda _: next(bar))
        bar.close()
        report(summary, as_json=as_json, title=f"Predictions in {out}/")
        return
    from .predict import predict

    bar = progress(iter(int, 1), "predict")  # an endless counter: one step per record written
    summary = predict(model, inputs, out, batch_size=batch_size, n_process=n_process, on_record=lambda _: next(bar),
                      force=force, restart=restart, checkpoint_every=checkpoint_every)
    bar.close()
    if summary["resumed_after"]:
        err_console.print(f"continued an interrupted run after {summary['resumed_after']} records", style="yellow")
    report(summary, as_json=as_json, title=f"Predictions in {out}")


@import_app.command("crossre")
def import_crossre_cmd(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A CrossRE split file (JSON lines).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for labelled.jsonl, schema.yaml and import-report.json.")],
    name: Annotated[str | None, typer.Option(help="Name of the generated schema. Default: the --out folder's name.")] = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Import a CrossRE file (tokens joined with single spaces) as records, with a generated schema and a report.

    Example: annotate import crossre ../shared/data/crossre_politics/politics-train.json --out corpora/crossre-politics
    """
    from .importers.crossre import import_crossre

    summary = import_crossre(path, out, name=name, force=force)
    long_lists = ("relation_pairs", "examples")  # in import-report.json; too long for the table
    report(summary, as_json=as_json, title=f"CrossRE -> {out}", rows=[(k, v) for k, v in summary.items() if k not in long_lists])


@import_app.command("conll")
def import_conll_cmd(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A CoNLL-style file: TOKEN<TAB>TAG lines (CrossNER).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for labelled.jsonl, schema.yaml and import-report.json.")],
    name: Annotated[str | None, typer.Option(help="Name of the generated schema. Default: the --out folder's name.")] = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Import a CoNLL-style NER file (BIO or IOB1 tags), one record per sentence, with a generated schema and a report.

    Example: annotate import conll ../shared/data/crossner_politics/train.txt --out corpora/crossner-politics
    """
    from .importers.crossner import import_conll

    summary = import_conll(path, out, name=name, force=force)
    report(summary, as_json=as_json, title=f"CoNLL -> {out}")


@import_app.command("re3d")
def import_re3d_cmd(
    path: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="A re3d folder (source sub-folders, or one of them).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for labelled.jsonl, schema.yaml and import-report.json.")],
    label_map: Annotated[Path | None, typer.Option("--map", exists=True, dir_okay=False, help="Map re3d's labels onto a schema (e.g. annotate/maps/re3d-to-diplomacy-defence.yaml).")] = None,
    schema: SchemaOpt = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Import Dstl's re3d corpus as records, with a generated schema (or, with --map, ours) and a report of what did not map.

    Example: annotate import re3d ../shared/data/re3d/train --out corpora/re3d-mapped --map annotate/maps/re3d-to-diplomacy-defence.yaml
    """
    from .importers.re3d import import_re3d

    summary = import_re3d(path, out, map_path=label_map, schema_path=schema, force=force)
    report(summary, as_json=as_json, title=f"re3d -> {out}")


@import_app.command("markup")
def import_markup_cmd(
    paths: Annotated[list[Path], typer.Argument(exists=True, help="Markup files or folders of *.txt (see annotate/importers/markup.py).")],
    out: Annotated[Path | None, typer.Option("--out", help="Folder for labelled.jsonl.")] = None,
    seeds_out: Annotated[Path | None, typer.Option("--seeds-out", help="Also write each stripped article here, in the seed format.")] = None,
    annotator: Annotated[str, typer.Option(help="The records' annotator field.")] = "gold",
    check: Annotated[bool, typer.Option("--check", help="Only list every problem in every file (syntax, normal form, schema); write nothing.")] = False,
    schema: SchemaOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Convert inline-markup articles ([text]{LABEL key} plus a relation section) into validated records.

    Example: annotate import markup corpora/diplomacy-defence/markup --out corpora/diplomacy-defence --seeds-out seeds
    """
    from .errors import InputError
    from .importers.markup import check_markup, import_markup

    if check:
        problems, summary = check_markup(paths, schema_path=schema)
        for line in problems:
            typer.echo(line, err=True)
        report(summary, as_json=as_json, title="Markup check")
        if problems:
            raise typer.Exit(1)
        return
    if out is None and seeds_out is None:
        raise InputError("nothing to write: give --out and/or --seeds-out (or --check)")
    summary = import_markup(paths, out, seeds_out=seeds_out, schema_path=schema, annotator=annotator)
    report(summary, as_json=as_json, title=f"Markup -> {out or seeds_out}")


# ------------------------------------------------------------------------------- publish command


@app.command("publish")
def publish_cmd(
    records: Annotated[Path, typer.Argument(help="Gold records JSONL, one per document (adjudicated).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for README.md (the card) and data/<split>.parquet.")],
    name: Annotated[str | None, typer.Option(help="Dataset name for the card. Default: the records' folder name.")] = None,
    license_id: Annotated[str, typer.Option("--license", help="Licence id for the card (Hub identifiers).")] = "cc-by-4.0",
    description: Annotated[str, typer.Option(help="A paragraph for the card.")] = "",
    seed: Annotated[int, typer.Option(help="Seed of the article split (as in `annotate docbin`).")] = 0,
    ratios: Annotated[str, typer.Option(help="train,validation,test ratios.")] = "0.8,0.1,0.1",
    push_to_hub: Annotated[str | None, typer.Option(help="Also upload to this Hub dataset repo (token in $HF_TOKEN).")] = None,
    public: Annotated[bool, typer.Option("--public", help="Make a new Hub repo public (default private).")] = False,
    misaligned: Annotated[Misaligned, typer.Option(help="Spans off token edges, as in `annotate docbin`.")] = Misaligned.expand,
    overlap: Annotated[Overlap, typer.Option(help="Overlapping spans in ner_tags, as in `annotate docbin`.")] = Overlap.longest,
    schema: SchemaOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Publish gold records as a Hugging Face dataset (explicit Features, Parquet splits, dataset card).

    Example: annotate publish corpora/diplomacy-defence/labelled.jsonl --out dist/diplomacy-defence --license cc-by-4.0
    """
    import os

    import datasets

    from .publish import publish
    from .records import read_docs
    from .schema import load_schema

    datasets.disable_progress_bars()
    ratio_values = _floats(ratios, 3, "--ratios")
    summary = publish(progress(read_docs(records), "reading"), load_schema(schema), out,
                      name=name or records.resolve().parent.name, license_id=license_id, description=description,
                      seed=seed, ratios=ratio_values, push_to_hub=push_to_hub,  # type: ignore[arg-type]
                      token=os.environ.get("HF_TOKEN"), private=not public, misaligned=misaligned.value,
                      overlap=overlap.value)
    rows = [("out", summary["out"]), ("documents", summary["documents"]),
            ("left out of ner_tags", summary["left_out_of_ner_tags"] or "none")]
    if "pushed_to" in summary:
        rows.append(("pushed to", summary["pushed_to"]))
    report(summary, as_json=as_json, title=f"dataset {summary['name']}", rows=rows)


@app.command("package")
def package_cmd(
    model: Annotated[Path, typer.Argument(help="Trained pipeline folder (e.g. models/diplomacy-defence/model).")],
    name: Annotated[str, typer.Option(help="Package and import name, starting with the language: en_diplomacy_defence.")],
    version: Annotated[str, typer.Option(help="Package version (PEP 440), e.g. 0.1.0.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Parent folder; the package goes to OUT/NAME-VERSION/.")] = Path("dist"),
    eval_metrics: Annotated[Path | None, typer.Option("--eval", help="metrics.json of `annotate evaluate --out`. Default: MODEL/../eval/metrics.json.")] = None,
    dataset: Annotated[str, typer.Option(help="Dataset the model was trained and scored on, for the card.")] = "diplomacy-defence",
    split: Annotated[str, typer.Option("--eval-split", help="Which split the metrics are of, for the card.")] = "test",
    license_id: Annotated[str, typer.Option("--license", help="Licence id for the card (Hub identifiers).")] = "cc-by-4.0",
    push_to_hub: Annotated[str | None, typer.Option(help="Also upload the wheel and card to this Hub model repo, ORG/NAME (token in $HF_TOKEN).")] = None,
    public: Annotated[bool, typer.Option("--public", help="Make a new Hub repo public (default private).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Build an installable wheel of a trained pipeline (spaCy's packaging) with a Hugging Face model card.

    Example: annotate package models/diplomacy-defence/model --name en_diplomacy_defence --version 0.1.0 --out dist/
    """
    import os

    from .package import build_package

    summary = build_package(model, out, name=name, version=version, metrics=eval_metrics, dataset=dataset,
                            split=split, license_id=license_id, push_to_hub=push_to_hub,
                            token=os.environ.get("HF_TOKEN"), private=not public)
    rows = [("wheel", summary["wheel"]), ("card", summary["card"]), ("requires", ", ".join(summary["requirements"]))]
    if "pushed_to" in summary:
        rows.append(("pushed to", summary["pushed_to"]))
    report(summary, as_json=as_json, title=f"package {summary['name']} {summary['version']}", rows=rows)


# ------------------------------------------------------------------------------- metrics commands
# (evaluate, agreement, adjudicate, stats)


def _show_rows(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """A rich table with a header row on stderr (the multi-column sibling of report())."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    err_console.print(table)


@app.command("evaluate")
def evaluate_cmd(
    model: Annotated[Path | None, typer.Argument(help="Trained pipeline folder: predict DATA with it, then score.")] = None,
    data: Annotated[Path | None, typer.Argument(help="Gold records JSONL to score MODEL on.")] = None,
    pred: Annotated[Path | None, typer.Option("--pred", help="Predicted records JSONL (matched to --gold by id).")] = None,
    gold: Annotated[Path | None, typer.Option("--gold", help="Gold records JSONL, one record per document.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for metrics.json, report.md, errors.jsonl and PNG plots.")] = None,
    against: Annotated[Path | None, typer.Option("--against", help="metrics.json of another run to compare with.")] = None,
    bootstrap: Annotated[int, typer.Option(min=1, help="Bootstrap resamples of the documents for the 95% intervals.")] = 1000,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the bootstrap (same seed, same intervals).")] = 0,
    schema: SchemaOpt = None,
    skip_invalid: SkipInvalidOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Per-label precision, recall, F1 and support for entities and relations, with bootstrap intervals.

    Example: annotate evaluate --pred models/run1/pred.jsonl --gold corpora/demo/gold.jsonl --out models/run1/eval --against models/run0/eval/metrics.json
    """
    from .evaluate import run_evaluate
    from .records import read_docs
    from .reports import COMPARE_COLUMNS, VIEW_COLUMNS, compare_rows, public, view_rows
    from .schema import load_schema

    if (model is None) != (data is None) or (pred is None) != (gold is None) or (model is None) == (pred is None):
        raise typer.BadParameter("give either MODEL DATA, or --pred and --gold")
    sch = load_schema(schema)
    gold_path = data if data is not None else gold
    gates = [_gate(gold_path, sch, skip_invalid)]
    gold_docs = list(gates[0](progress(read_docs(gold_path), "reading gold")))
    pred_docs = None
    if pred is not None:
        gates.append(_gate(pred, sch, skip_invalid))
        pred_docs = list(gates[1](progress(read_docs(pred), "reading predictions")))
    result, comparison, written = run_evaluate(
        gold_docs, model=model, pred_docs=pred_docs, schema=sch, n_boot=bootstrap, seed=seed,
        gold_source=str(gold_path), against=against, out=out,
        wrap=lambda items, what: progress(items, what, total=len(gold_docs)))
    result.update(_gate_summary(*gates))
    if as_json:
        summary = {k: v for k, v in public(result).items() if k != "per_doc"}
        report({**summary, "comparison": comparison, "written": written}, as_json=True, title="evaluate")
        return
    for view, title in (("entities.exact", "entities, exact"), ("entities.overlap", "entities, overlapping span"),
                        ("relations.strict", "relations, end to end"), ("relations.classification", "relations, given gold entities"),
                        ("relations.crossre", "relations, CrossRE protocol (gold related pairs classified)")):
        _show_rows(f"{title} ({result['documents']} documents)", VIEW_COLUMNS, view_rows(result["views"][view]))
    report(result["errors"], as_json=False, title="entity and relation errors by kind")
    if comparison:
        _show_rows(f"compared with {against}", COMPARE_COLUMNS, compare_rows(comparison))
    if written:
        report(written, as_json=False, title="written")


@app.command("agreement")
def agreement_cmd(
    corpus: Annotated[Path, typer.Argument(exists=True, help="Corpus folder (reads its labelled.jsonl) or per-annotator records JSONL.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the agreement JSON here too.")] = None,
    confirmed_only: Annotated[bool, typer.Option(help="Leave out records whose status is not 'confirmed'.")] = False,
    schema: SchemaOpt = None,
    skip_invalid: SkipInvalidOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Inter-annotator agreement: span F1 (exact, lenient), relation F1, token kappa per pair; alpha for 3+ annotators.

    Example: annotate agreement corpora/demo --out corpora/demo/agreement.json
    """
    from .agreement import AGREEMENT_COLUMNS, agreement, agreement_rows, corpus_file
    from .records import read_docs, write_json
    from .schema import load_schema

    sch = load_schema(schema)
    gate = _gate(corpus_file(corpus), sch, skip_invalid)
    docs = gate(progress(read_docs(corpus_file(corpus)), "reading"))
    result = {**agreement(docs, schema=sch, confirmed_only=confirmed_only), **_gate_summary(gate)}
    if out is not None:
        write_json(out, result)
    if as_json:
        report(result, as_json=True, title="agreement")
        return
    docs = ", ".join(f"{n} by {k}" for k, n in result["documents_by_annotator_count"].items())
    _show_rows(f"agreement: {result['documents']} documents ({docs} annotator(s))", AGREEMENT_COLUMNS, agreement_rows(result))


@app.command("adjudicate")
def adjudicate_cmd(
    corpus: Annotated[Path, typer.Argument(exists=True, help="Corpus folder (reads its labelled.jsonl) or per-annotator records JSONL.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Gold records JSONL to write (one per document).")],
    strategy: Annotated[Strategy, typer.Option(help="majority (ties: first --prefer annotator, else alphabetical) or annotator.")] = Strategy.majority,
    annotator: Annotated[str | None, typer.Option(help="With --strategy annotator: whose version wins.")] = None,
    prefer: Annotated[list[str] | None, typer.Option(help="Tie-break order of annotators (repeat the option).")] = None,
    review: Annotated[Path | None, typer.Option(help="Disputed items JSONL. Default: <out>.review.jsonl beside --out.")] = None,
    review_tasks: Annotated[Path | None, typer.Option(help="Also write the disputed documents as Doccano import tasks here.")] = None,
    confirmed_only: Annotated[bool, typer.Option(help="Leave out records whose status is not 'confirmed'.")] = False,
    schema: SchemaOpt = None,
    skip_invalid: SkipInvalidOpt = False,
    force: Annotated[bool, typer.Option("--force", help="Replace --out even if it holds more documents than this run writes.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Merge annotators' records into one gold record per document; list the disagreements for review.

    Example: annotate adjudicate corpora/demo --out corpora/demo/gold.jsonl --prefer alice --review-tasks corpora/demo/review-tasks.jsonl
    """
    from .adjudicate import run_adjudicate
    from .agreement import corpus_file
    from .records import read_docs
    from .schema import load_schema

    source = corpus_file(corpus)
    sch = load_schema(schema)
    gate = _gate(source, sch, skip_invalid)
    summary = run_adjudicate(gate(progress(read_docs(source), "reading")), out, source=source, review=review,
                             review_tasks_path=review_tasks, force=force, strategy=strategy.value,
                             annotator=annotator, prefer=prefer or (), schema=sch, confirmed_only=confirmed_only)
    summary.update(_gate_summary(gate))
    report(summary, as_json=as_json, title="adjudicate")


@app.command("stats")
def stats_cmd(
    corpus: Annotated[Path, typer.Argument(exists=True, help="Corpus folder (reads its labelled.jsonl) or records JSONL.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the statistics JSON here too.")] = None,
    schema: SchemaOpt = None,
    skip_invalid: SkipInvalidOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Corpus statistics: documents, tokens, entities and relations per label and split, span lengths, annotators.

    Example: annotate stats corpora/demo/labelled.jsonl --out corpora/demo/stats.json
    """
    from .agreement import corpus_file
    from .records import read_docs, write_json
    from .schema import load_schema
    from .stats import STATS_COLUMNS, corpus_stats, stats_rows

    sch = load_schema(schema)
    gate = _gate(corpus_file(corpus), sch, skip_invalid)
    result = {**corpus_stats(gate(progress(read_docs(corpus_file(corpus)), "reading")), schema=sch), **_gate_summary(gate)}
    if out is not None:
        write_json(out, result)
    if as_json:
        report(result, as_json=True, title="stats")
        return
    _show_rows(f"corpus statistics ({result['tokenisation']})", STATS_COLUMNS, stats_rows(result))


def main() -> None:
    """Console entry point."""
    app()
