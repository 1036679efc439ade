"""Writing an imported corpus: ``labelled.jsonl``, ``schema.yaml`` and ``import-report.json``, all or nothing.

Every importer reads its format into records and a report (``read_re3d``, ``read_crossre``,
``read_crossner``) and hands them, with a schema dict, to :func:`write_corpus`, which

* refuses to replace an earlier ``labelled.jsonl`` that holds more records than the new import (a smaller
  or empty corpus would silently replace a larger one), unless ``force=True``;
* writes the three files as temporary files beside their targets and, only once all three are complete,
  renames them into place together (:class:`annotate.records.OutputSet`: if a rename fails, the files
  already replaced are put back).

So a failed import leaves the earlier corpus as it was, and no temporary file behind.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from ..errors import InputError, OutputError
from ..records import LabelledDoc, OutputSet, dumps, refuse_fewer
from ._schema import dump_schema

LABELLED = "labelled.jsonl"
SCHEMA = "schema.yaml"
REPORT = "import-report.json"


def _write_records(handle: IO[str], records: Sequence[LabelledDoc]) -> None:
    for record in records:
        handle.write(dumps(record.to_dict()))
        handle.write("\n")


def _write_report(handle: IO[str], report: dict[str, Any]) -> None:
    json.dump(report, handle, ensure_ascii=False, indent=2)
    handle.write("\n")


def _prepare(outputs: OutputSet, target: Path, write: Callable[[IO[str], Any], None], data: Any) -> None:
    """Write ``data`` to the output set's temporary file for ``target``."""
    try:
        with outputs.path(target).open("w", encoding="utf-8", newline="\n") as handle:
            write(handle, data)
    except OSError as err:
        raise OutputError(f"{target}: cannot write ({err.strerror or err}); nothing was replaced") from err


def write_corpus(out: Path | str, records: Sequence[LabelledDoc], schema: dict[str, Any], report: dict[str, Any],
                 *, force: bool = False) -> None:
    """Write ``out/labelled.jsonl`` (the records), ``out/schema.yaml`` and ``out/import-report.json``: all three
    or none.

    Raises :class:`~annotate.errors.InputError` when ``records`` is empty, and
    :class:`~annotate.errors.OutputError` when one of the three targets is a folder, when a file cannot be
    written or renamed (the earlier files are then left, or put back, as they were and no temporary file
    remains), or when ``out/labelled.jsonl`` already holds more records than ``records`` and ``force`` is
    false.
    """
    out = Path(out)
    labelled, schema_path, report_path = out / LABELLED, out / SCHEMA, out / REPORT
    if not records:
        raise InputError(f"no records to write to {labelled}")
    try:
        refuse_fewer(labelled, len(records), force=force)
    except OSError as err:
        raise OutputError(f"{labelled}: cannot read the earlier records ({err.strerror or err})") from err
    with OutputSet() as outputs:
        _prepare(outputs, labelled, _write_records, records)
        _prepare(outputs, schema_path, lambda handle, data: dump_schema(data, handle), schema)
        _prepare(outputs, report_path, _write_report, report)
