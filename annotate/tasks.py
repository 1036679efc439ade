"""Articles (with optional suggested spans and relations) -> Doccano relation-extraction import JSONL.

One task per line, in the shape Doccano 1.8.4 imports into a sequence-labelling project with
relations::

    {"text": "...",
     "entities": [{"id": 1, "label": "PERSON", "start_offset": 26, "end_offset": 41}],
     "relations": [{"id": 1, "from_id": 1, "to_id": 2, "type": "HAS_ROLE"}],
     "meta": {"record_id": "3f1c...#0", "article_id": "3f1c...", "chunk": 0, ...}}

Why this shape (see ``../shared/DOCCANO.md``): every top-level key other than text/entities/relations
becomes the example's meta, and one row with a missing key or a null fails the whole batch, so all our
meta goes into one nested ``meta`` object with nulls dropped. ``record_id`` maps an example back to our
record. Offsets are written in the unit the Doccano UI uses (UTF-16 by default, grapheme clusters for
projects in grapheme mode); files are written ASCII-escaped, so the server's encoding guess cannot
garble them. This module is pure: no network.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from .errors import InputError
from .offsets import UNITS, OffsetMap, Unit
from .records import Article, LabelledDoc

RECORD_ID_KEY = "record_id"
ENTITY_IDS_KEY = "entity_ids"
RELATION_IDS_KEY = "relation_ids"
UNIT_KEY = "offset_unit"


def clean_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """Drop nulls (Doccano rejects the batch on them), recursively."""
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if value is None:
            continue
        out[str(key)] = clean_meta(value) if isinstance(value, dict) else value
    return out


def to_task(doc: Article, *, unit: Unit = "utf16") -> dict[str, Any]:
    """One Doccano import row for a record; suggestions (if ``doc`` is labelled) become spans/relations.

    Our entity and relation ids are kept in meta (``entity_ids``/``relation_ids``, in upload order),
    because Doccano replaces them with database ids; the pull maps them back.
    """
    entities = doc.entities if isinstance(doc, LabelledDoc) else []
    relations = doc.relations if isinstance(doc, LabelledDoc) else []
    offsets = OffsetMap(doc.text, unit)
    number = {ent.id: i for i, ent in enumerate(entities, start=1)}
    meta = clean_meta(doc.meta)
    meta[RECORD_ID_KEY] = doc.id
    meta[UNIT_KEY] = unit
    if entities:
        meta[ENTITY_IDS_KEY] = [ent.id for ent in entities]
    if relations:
        meta[RELATION_IDS_KEY] = [rel.id for rel in relations]
    return {
        "text": doc.text,
        "entities": [
            {
                "id": number[ent.id],
                "label": ent.label,
                "start_offset": offsets.from_codepoint(ent.start),
                "end_offset": offsets.from_codepoint(ent.end),
            }
            for ent in entities
        ],
        "relations": [
            {"id": i, "from_id": number[rel.head], "to_id": number[rel.tail], "type": rel.label}
            for i, rel in enumerate(relations, start=1)
            if rel.head in number and rel.tail in number
        ],
        "meta": meta,
    }


def to_tasks(docs: Iterable[Article], *, unit: Unit = "utf16") -> Iterator[dict[str, Any]]:
    """Import rows for many records (the unit is checked before the first row is made)."""
    if unit not in UNITS:
        raise InputError(f"unknown offset unit {unit!r} (expected one of {', '.join(UNITS)})")
    return (to_task(doc, unit=unit) for doc in docs)
