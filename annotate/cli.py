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
MAX_VIOLATIONS_SHOWN = 50
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
    as_json: JsonOpt = False,
) -> None:
    """Read raw articles, normalise, de-duplicate and chunk them into an articles JSONL.

    Example: annotate ingest seeds/ --out corpora/demo/articles.jsonl
    """
    from .ingest import Ingestor
    from .records import read_articles, write_json, write_jsonl

    ingestor = Ingestor(
        max_chars=max_chars,
        near_threshold=near_dup_threshold,
        drop_near_duplicates=drop_near_duplicates,
        text_field=text_field,
    )
    existing = list(read_articles(out)) if append and out.exists() else []
    ingestor.seed(existing)
    stream = progress(ingestor.run(inputs), "ingesting")
    written = write_jsonl(out, [*existing, *stream])
    report_path = report_path or out.with_name(out.stem + ".ingest-report.json")
    summary = {"out": str(out), "report": str(report_path), "written": written, **ingestor.report.to_dict()}
    write_json(report_path, summary)
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
    unit: Annotated[str, typer.Option(help="Offset unit of the Doccano UI: utf16 (default projects), grapheme, codepoint.")] = "utf16",
    schema: SchemaOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Turn articles into Doccano import tasks, optionally with suggested spans and relations.

    Example: annotate tasks corpora/demo/articles.jsonl --patterns --out corpora/demo/tasks.jsonl
    """
    from .preannotate import suggestion_counts
    from .records import read_docs, write_jsonl
    from .tasks import to_tasks

    docs = list(progress(read_docs(articles), "reading"))
    docs, source = _suggest(docs, patterns=patterns, patterns_file=patterns_file, model=model, schema_path=schema)
    written = write_jsonl(out, to_tasks(docs, unit=unit), ensure_ascii=True)
    ents, rels = suggestion_counts(docs)
    summary = {"out": str(out), "tasks": written, "unit": unit, "suggested_by": source,
               "entity_suggestions": dict(sorted(ents.items())), "relation_suggestions": dict(sorted(rels.items()))}
    report(summary, as_json=as_json, title="tasks")


def _suggest(docs: list, *, patterns: bool, patterns_file: Path | None, model: Path | None, schema_path: Path | None) -> tuple[list, str | None]:
    from .schema import load_schema

    if model is not None and (patterns or patterns_file):
        raise typer.BadParameter("use either --model or --patterns/--patterns-file, not both")
    if model is not None:
        from .predict import load_model, predict_docs

        return list(progress(predict_docs(load_model(model), docs), "predicting", total=len(docs))), str(model)
    if patterns or patterns_file:
        from .preannotate import PatternSuggester

        suggester = PatternSuggester(load_schema(schema_path), patterns_file)
        return list(progress(suggester.suggest(docs), "suggesting", total=len(docs))), "patterns"
    return docs, None


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
    from .schema import load_schema, validate_doc

    sch = load_schema(schema)
    violations = []
    n = 0
    for doc in progress(read_docs(records), "validating"):
        n += 1
        violations.extend(validate_doc(doc, sch))
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

# ------------------------------------------------------------------------------- training commands

# ------------------------------------------------------------------------------- metrics commands


def main() -> None:
    """Console entry point."""
    app()
