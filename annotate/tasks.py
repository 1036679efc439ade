"""Articles (with optional suggested spans and relations) -> Doccano relation-extraction import JSONL.

One task per line, in the shape Doccano 1.8.4 imports into a sequence-labelling project with
relations::

    {"text": "...",
     "entities": [{"id": 1, "label": "PERSON", "start_offset": 26, "end_offset": 41}],
     "relations": [{"id": 1, "from_id": 1, "to_id": 2, "type": "HAS_ROLE"}],
     "meta": {"record_id": "3f1c...#0", "article_id": "3f1c...", "chunk": 0, ...}}

:func:`from_task` is the inverse: a task row back to a record, with our ids, span texts and attributes.

Why this shape (see ``../shared/DOCCANO.md``): every top-level key other than text/entities/relations
becomes the example's meta, and one row with a missing key or a null fails the whole batch, so all our
meta goes into one nested ``meta`` object with nulls dropped. ``record_id`` maps an example back to our
record; the bookkeeping keys beside it (our entity/relation ids, the spans and relation ends they belong to,
span texts and attributes) let the pull recognise labels an annotator left unchanged and give them their ids
and attributes back. Offsets are written in the unit the Doccano UI uses (UTF-16 by default, grapheme clusters for
projects in grapheme mode); files are written ASCII-escaped, so the server's encoding guess cannot
garble them. This module is pure: no network.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from .errors import InputError
from .offsets import UNITS, OffsetMap, Unit
from .records import Article, Entity, LabelledDoc, Relation

RECORD_ID_KEY = "record_id"
ENTITY_IDS_KEY = "entity_ids"  # our entity ids, in upload order (Doccano replaces them with database ids)
RELATION_IDS_KEY = "relation_ids"
UNIT_KEY = "offset_unit"
ENTITY_SPANS_KEY = "entity_spans"  # [[start, end, label]] in code points, parallel to entity_ids
RELATION_ENDS_KEY = "relation_ends"  # [[head id, tail id, label]], parallel to relation_ids
EXTRAS_KEY = "label_extras"  # {"entities": {id: {"text", "attrs"}}, "relations": {id: {"attrs"}}}
BOOKKEEPING_KEYS = (RECORD_ID_KEY, ENTITY_IDS_KEY, RELATION_IDS_KEY, UNIT_KEY, ENTITY_SPANS_KEY, RELATION_ENDS_KEY, EXTRAS_KEY)


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
    because Doccano replaces them with database ids, with the spans and relation ends they name and the
    labels' texts and attributes (``label_extras``); the pull maps them back.
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
        meta[ENTITY_SPANS_KEY] = [[ent.start, ent.end, ent.label] for ent in entities]
    if relations:
        meta[RELATION_IDS_KEY] = [rel.id for rel in relations]
        meta[RELATION_ENDS_KEY] = [[rel.head, rel.tail, rel.label] for rel in relations]
    extras = {
        "entities": {ent.id: extra for ent in entities if (extra := _entity_extras(ent))},
        "relations": {rel.id: {"attrs": rel.attrs} for rel in relations if rel.attrs},
    }
    if extras["entities"] or extras["relations"]:
        meta[EXTRAS_KEY] = extras
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


def _entity_extras(ent: Entity) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if ent.text is not None:
        out["text"] = ent.text
    if ent.attrs:
        out["attrs"] = ent.attrs
    return out


def from_task(row: dict[str, Any]) -> LabelledDoc:
    """A task row (:func:`to_task` output, or one written by hand) -> a record in code points.

    Spans and relations get our ids back from ``entity_ids``/``relation_ids`` (else ``e<n>``/``r<n>`` from the
    row's numbers), and their texts and attributes from ``label_extras``; the bookkeeping keys leave the meta.
    Raises ``KeyError``/``TypeError``/``ValueError``/``IndexError`` on a malformed row (the caller names the line).
    """
    meta = dict(row["meta"])
    offsets = OffsetMap(row["text"], meta.get(UNIT_KEY, "utf16"))
    extras = meta.get(EXTRAS_KEY) or {}
    entity_extras, relation_extras = extras.get("entities") or {}, extras.get("relations") or {}
    ids = list(meta.get(ENTITY_IDS_KEY) or [])
    number_to_id: dict[Any, str] = {}
    entities = []
    for i, ent in enumerate(row.get("entities") or []):
        ent_id = str(ids[i]) if i < len(ids) else f"e{ent['id']}"
        number_to_id[ent["id"]] = ent_id
        extra = entity_extras.get(ent_id) or {}
        entities.append(Entity(ent_id, offsets.to_codepoint(ent["start_offset"]), offsets.to_codepoint(ent["end_offset"]),
                               ent["label"], text=extra.get("text"), attrs=dict(extra.get("attrs") or {})))
    rel_ids = list(meta.get(RELATION_IDS_KEY) or [])
    relations = []
    for i, rel in enumerate(row.get("relations") or []):
        rel_id = str(rel_ids[i]) if i < len(rel_ids) else f"r{rel['id']}"
        attrs = (relation_extras.get(rel_id) or {}).get("attrs") or {}
        relations.append(Relation(rel_id, number_to_id[rel["from_id"]], number_to_id[rel["to_id"]], rel["type"], attrs=dict(attrs)))
    record_id = str(meta[RECORD_ID_KEY])
    for key in BOOKKEEPING_KEYS:
        meta.pop(key, None)
    return LabelledDoc(id=record_id, text=row["text"], meta=meta, entities=entities, relations=relations)


def to_tasks(docs: Iterable[Article], *, unit: Unit = "utf16") -> Iterator[dict[str, Any]]:
    """Import rows for many records (the unit is checked before the first row is made)."""
    if unit not in UNITS:
        raise InputError(f"unknown offset unit {unit!r} (expected one of {', '.join(UNITS)})")
    return (to_task(doc, unit=unit) for doc in docs)


def run_tasks(
    docs: Iterable[LabelledDoc], out: Any, *, unit: Unit = "utf16", patterns: bool = False, patterns_file: Any = None,
    model: Any = None, schema: Any = None, wrap: Any = None, force: bool = False,
    select: str | None = None, limit: int | None = None, seed: int = 0, skip_ids: Iterable[str] = (),
    per_article: bool = False,
) -> dict[str, Any]:
    """The ``annotate tasks`` job: optional suggestions (a trained pipeline, or the gazetteer / a patterns file),
    then one Doccano import row per record, written atomically; returns the summary. ``wrap`` (optional) wraps
    the suggestion stream, e.g. with a progress bar.

    Active learning (:mod:`annotate.select`): records whose id is in ``skip_ids`` (already in the Doccano
    project) are left out first; ``select`` (random, uncertainty, diverse, uncertainty-per-char) then ranks the rest and keeps the
    first ``limit``, written in rank order with ``selection_*`` keys (strategy, rank, score, reason) in meta.
    ``per_article``: the chunks of one article (``meta.article_id``) are scored, chosen and written together, and
    ``limit`` counts articles."""
    from .preannotate import suggestion_counts
    from .records import refuse_fewer, write_jsonl

    if unit not in UNITS:
        raise InputError(f"unknown offset unit {unit!r} (expected one of {', '.join(UNITS)})")
    if model is not None and (patterns or patterns_file):
        raise InputError("use either --model or --patterns/--patterns-file, not both")
    if select is not None:
        from .select import check_strategy

        check_strategy(select, has_model=model is not None, limit=limit)
    elif limit is not None or per_article:
        option = "--limit" if limit is not None else "--per-article"
        raise InputError(f"{option} needs --select (random, uncertainty, diverse or uncertainty-per-char): which records come first?")
    docs = list(docs)
    candidates = len(docs)
    skip = set(skip_ids)
    docs = [doc for doc in docs if doc.id not in skip]
    skipped = candidates - len(docs)
    choices, source = None, None
    if select is not None:
        docs, choices, suggested = _select(docs, select, limit=limit, seed=seed, model=model, wrap=wrap,
                                           per_article=per_article)
        source = str(model) if suggested else None
    if model is not None and source is None:
        from .predict import load_model, predict_docs

        docs, source = predict_docs(load_model(model), docs), str(model)
        docs = list(wrap(docs) if wrap is not None else docs)
    elif patterns or patterns_file:
        from .preannotate import PatternSuggester

        docs, source = PatternSuggester(schema, patterns_file).suggest(docs), "patterns"
        docs = list(wrap(docs) if wrap is not None else docs)
    refuse_fewer(out, len(docs), force=force, what="tasks")
    written = write_jsonl(out, to_tasks(docs, unit=unit), ensure_ascii=True)
    ents, rels = suggestion_counts(docs)
    summary = {"out": str(out), "tasks": written, "unit": unit, "suggested_by": source,
               "entity_suggestions": dict(sorted(ents.items())), "relation_suggestions": dict(sorted(rels.items()))}
    if skip:
        summary["skipped_already_present"] = skipped
    if choices is not None:
        summary.update({"selected_by": select, "seed": seed, "candidates": candidates - skipped, "selected": len(choices),
                        "unit": "article" if per_article else "record", "selected_records": len(docs),
                        "top": [{"id": c.id, "score": None if c.score is None else round(c.score, 4)} for c in choices[:5]]})
    return summary


def _select(docs: list[LabelledDoc], strategy: str, *, limit: int | None, seed: int, model: Any, wrap: Any,
            per_article: bool = False) -> tuple[list[LabelledDoc], list[Any], bool]:
    """(chosen records in rank order with their ``selection_*`` meta, the choices, whether they carry the model's
    suggestions already). Random picks need no model run; the others score every candidate with the model,
    whose predictions then serve as the suggestions. ``per_article``: candidates are whole articles (their
    chunks' scores summed, vectors averaged), and each chosen article brings all its chunks, in order."""
    from dataclasses import replace

    from .select import UNCERTAINTY, Candidate, choose, group, score_records

    if strategy == "random":
        cands, by_id, suggested = [Candidate(doc.id, chars=len(doc.text)) for doc in docs], {doc.id: doc for doc in docs}, False
    else:
        from .predict import load_model

        scored = score_records(load_model(model), docs, uncertainty=strategy in UNCERTAINTY, vectors=strategy == "diverse")
        pairs = list(wrap(scored) if wrap is not None else scored)
        cands, by_id, suggested = [cand for _, cand in pairs], {record.id: record for record, _ in pairs}, True
    members: dict[str, list[str]] = {doc.id: [doc.id] for doc in docs}
    if per_article:
        key_of = {doc.id: str(doc.meta.get("article_id") or doc.id) for doc in docs}
        members = {}
        for doc in docs:
            members.setdefault(key_of[doc.id], []).append(doc.id)
        cands = group(cands, key_of)
    chosen = choose(cands, strategy, limit=limit, seed=seed)
    picked = [replace(by_id[i], meta={**by_id[i].meta, **c.meta()}) for c in chosen for i in members[c.id]]
    return picked, chosen, suggested
