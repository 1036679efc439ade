"""The ``annotate`` command line: one thin typer command per stage.

Commands parse options, call a plain function from the stage's module, and show its result (a rich table
on stderr, or the JSON summary on stdout with ``--json``). This is the only module that prints or sets
exit codes: :func:`main` turns any :class:`~annotate.errors.AnnotateError` into one line on stderr and a
non-zero exit.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import click
import typer
import typer.core
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
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
app.add_typer(import_app, name="import")

err_console = Console(stderr=True)
T = TypeVar("T")

SchemaOpt = Annotated[
    Path | None,
    typer.Option("--schema", help="Label schema file (YAML/JSON). Default: the shipped diplomacy-defence schema."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the JSON summary on stdout instead of a table.")]


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

# ------------------------------------------------------------------------------- doccano commands

# ------------------------------------------------------------------------------- training commands

# ------------------------------------------------------------------------------- metrics commands


def main() -> None:
    """Console entry point."""
    app()
