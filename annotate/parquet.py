"""Records in Parquet: the same records as the JSONL files, one row each, read and written in batches.

The schema of written records (:data:`RECORD_SCHEMA`)::

    id: string            text: string           meta: string (the meta object as JSON text: its keys vary by source)
    entities: list<struct<id: string, start: int64, end: int64, label: string, text: string, attrs: string>>
    relations: list<struct<id: string, head: string, tail: string, label: string, attrs: string>>
    annotator: string     status: string

``attrs`` is the attrs object as JSON text, null when empty; an entity's ``text`` is null when absent. A row
read back (:func:`row_to_record`) is exactly the dict :meth:`LabelledDoc.to_dict` gave, so a JSONL file and a
Parquet file of the same records carry the same records.

Input Parquet (articles to predict on) needs the columns ``id`` and ``text``; ``meta`` is optional (JSON text,
a struct or null). Files are read a batch of rows at a time (``ParquetFile.iter_batches``), never whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import InputError
from .records import Article, atomic_path

SUFFIX = ".parquet"
READ_BATCH_ROWS = 1024  # rows decoded at a time: bounds the reader's memory whatever the file's size
ROW_GROUP_ROWS = 1000  # rows per written row group: the writer holds one group in memory

_ENTITY = pa.struct([("id", pa.string()), ("start", pa.int64()), ("end", pa.int64()), ("label", pa.string()),
                     ("text", pa.string()), ("attrs", pa.string())])
_RELATION = pa.struct([("id", pa.string()), ("head", pa.string()), ("tail", pa.string()), ("label", pa.string()),
                       ("attrs", pa.string())])
RECORD_SCHEMA = pa.schema([
    ("id", pa.string()), ("text", pa.string()), ("meta", pa.string()),
    ("entities", pa.list_(_ENTITY)), ("relations", pa.list_(_RELATION)),
    ("annotator", pa.string()), ("status", pa.string()),
])
REQUIRED_COLUMNS = ("id", "text")


def is_parquet(path: Path | str) -> bool:
    return Path(path).suffix.lower() == SUFFIX


def _json_or_none(obj: dict[str, Any] | None) -> str | None:
    return json.dumps(obj, ensure_ascii=False, sort_keys=False) if obj else None


def record_to_row(obj: dict[str, Any]) -> dict[str, Any]:
    """A record dict (``to_dict``) as a row of :data:`RECORD_SCHEMA`."""
    entities = [{"id": e["id"], "start": e["start"], "end": e["end"], "label": e["label"], "text": e.get("text"),
                 "attrs": _json_or_none(e.get("attrs"))} for e in obj.get("entities") or []]
    relations = [{"id": r["id"], "head": r["head"], "tail": r["tail"], "label": r["label"],
                  "attrs": _json_or_none(r.get("attrs"))} for r in obj.get("relations") or []]
    return {"id": obj["id"], "text": obj["text"], "meta": json.dumps(obj.get("meta") or {}, ensure_ascii=False),
            "entities": entities, "relations": relations, "annotator": obj.get("annotator"), "status": obj.get("status")}


def row_to_record(row: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`record_to_row`: the record dict, keys in ``to_dict``'s order."""
    entities = []
    for e in row.get("entities") or []:
        entity: dict[str, Any] = {"id": e["id"], "start": e["start"], "end": e["end"], "label": e["label"]}
        if e.get("text") is not None:
            entity["text"] = e["text"]
        if e.get("attrs"):
            entity["attrs"] = json.loads(e["attrs"])
        entities.append(entity)
    relations = []
    for r in row.get("relations") or []:
        relation: dict[str, Any] = {"id": r["id"], "head": r["head"], "tail": r["tail"], "label": r["label"]}
        if r.get("attrs"):
            relation["attrs"] = json.loads(r["attrs"])
        relations.append(relation)
    return {"id": row["id"], "text": row["text"], "meta": _meta(row.get("meta")), "entities": entities,
            "relations": relations, "annotator": row.get("annotator"), "status": row.get("status")}


def _meta(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, dict):
        raise TypeError(f"'meta' must be an object, got {type(value).__name__}")
    return value


# --------------------------------------------------------------------------------------------- reading


def open_parquet(path: Path | str) -> pq.ParquetFile:
    """A ``ParquetFile`` whose schema has the :data:`REQUIRED_COLUMNS`; one-line errors naming file and column."""
    try:
        handle = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as err:
        raise InputError(f"not a readable Parquet file ({err})".replace("\n", " "), path=path) from err
    names = handle.schema_arrow.names
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise InputError(f"no column {', '.join(repr(c) for c in missing)} (columns: {', '.join(names) or 'none'}); "
                         "predict needs 'id' and 'text'", path=path)
    return handle


def iter_parquet_articles(path: Path | str, *, row_groups: Sequence[int] | None = None) -> Iterator[Article]:
    """Articles from the ``id``, ``text`` (and ``meta``) columns of a Parquet file, a batch at a time; only
    ``row_groups`` when given. Errors name the file and the row (counted from 1 within what is read)."""
    handle = open_parquet(path)
    columns = [c for c in ("id", "text", "meta") if c in handle.schema_arrow.names]
    row_no = 0
    try:
        batches = handle.iter_batches(batch_size=READ_BATCH_ROWS, columns=columns, row_groups=row_groups)
        for batch in batches:
            for row in batch.to_pylist():
                row_no += 1
                yield _article(row, path, row_no)
    except pa.ArrowException as err:
        raise InputError(f"cannot read Parquet rows ({err})".replace("\n", " "), path=path) from err


def _article(row: dict[str, Any], path: Path | str, row_no: int) -> Article:
    if row["id"] is None or not isinstance(row["text"], str):
        raise InputError(f"row {row_no}: 'id' and 'text' must be set and 'text' a string, got "
                         f"id={row['id']!r}, text of type {type(row['text']).__name__}", path=path)
    try:
        meta = _meta(row.get("meta"))
    except (ValueError, TypeError) as err:  # json.JSONDecodeError is a ValueError
        raise InputError(f"row {row_no}: bad 'meta' ({err})", path=path) from err
    return Article(id=str(row["id"]), text=row["text"], meta=meta)


def read_parquet_records(path: Path | str) -> Iterator[dict[str, Any]]:
    """Record dicts from a Parquet file written by :func:`write_parquet`, a batch at a time."""
    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=READ_BATCH_ROWS):
            for row in batch.to_pylist():
                yield row_to_record(row)
    except (OSError, pa.ArrowException) as err:
        raise InputError(f"not a readable Parquet file of records ({err})".replace("\n", " "), path=path) from err


def count_rows(path: Path | str) -> int:
    """Rows of a Parquet file, from its footer (0 when it does not exist)."""
    path = Path(path)
    if not path.is_file():
        return 0
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (OSError, pa.ArrowException) as err:
        raise InputError(f"not a readable Parquet file ({err})".replace("\n", " "), path=path) from err


# --------------------------------------------------------------------------------------------- writing


def write_parquet(path: Path | str, items: Iterable[Any], *, row_group_rows: int = ROW_GROUP_ROWS) -> int:
    """Atomically write records (objects with ``to_dict``, or dicts) in row groups of ``row_group_rows``; return
    the count. Memory holds one row group."""
    count = 0
    iterator = iter(items)
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, RECORD_SCHEMA) as writer:
        while group := list(islice(iterator, row_group_rows)):
            rows = [record_to_row(x.to_dict() if hasattr(x, "to_dict") else x) for x in group]
            writer.write_table(pa.Table.from_pylist(rows, schema=RECORD_SCHEMA))
            count += len(rows)
    return count


def concat_parquet(parts: Iterable[Path], path: Path | str) -> int:
    """Copy the row groups of record files ``parts`` into one file at ``path`` (not atomic: give a temporary
    path); return the row count. Memory holds one row group."""
    count = 0
    with pq.ParquetWriter(path, RECORD_SCHEMA) as writer:
        for part in parts:
            handle = pq.ParquetFile(part)
            for group in range(handle.num_row_groups):
                table = handle.read_row_group(group)
                writer.write_table(table)
                count += table.num_rows
    return count
