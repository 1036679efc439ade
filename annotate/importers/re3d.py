"""Dstl's re3d corpus (MongoDB exports) -> records, a generated schema file and an import report.

Input: a folder holding ``documents.json``, ``entities.json`` and ``relations.json`` (one JSON object per
line, as ``mongoexport`` writes them), or a folder of such folders (one per source, e.g. ``re3d/train``).
Fields used (see re3d's README)::

    documents.json  {_id, title, text, sourceName, sourceUrl, ...}
    entities.json   {_id, documentId, begin, end, type, value, confidence}
    relations.json  {_id, documentId, sourceBegin, sourceEnd, targetBegin, targetEnd, type, begin, end,
                     value, confidence}

re3d offsets are code points into ``text`` (checked: no text outside the BMP, and every entity's
``value`` matches its slice up to whitespace and quote normalisation), so they are kept as they are.
Mapping:

* document -> record ``{id: _id, meta: {article_id, title, source, url, subset}}``, status confirmed;
* entity -> ``Entity`` with the re3d type as label; nested and overlapping spans are all kept;
  ``attrs: {confidence, re3d_id}``; a second entity with the same span and type is a duplicate (skipped,
  counted);
* relation -> ``Relation`` between the entities at ``source*`` / ``target*`` offsets; when several types
  share a span, the most confident entity is used; ``attrs: {confidence, trigger: {start, end}, re3d_id}``.

Not mapped, and counted in the report: relations whose ends match no entity, entities or relations whose
document is missing, offsets outside the text. A document ``_id`` used twice (in one ``documents.json`` or
in two sub-folders; the second would silently replace the first) raises
:class:`~annotate.errors.InputError` naming the file, the line and the id, as do rows that are not JSON
objects or lack a field used, and a folder without documents. The generated schema lists the entity types
seen and, for each relation type, the head and tail types seen; types whose meaning is symmetric
(``SYMMETRIC``) are marked so.

:func:`read_re3d` returns the records and the report; :func:`import_re3d` writes them with the schema
through :func:`~annotate.importers._corpus.write_corpus` (all three files or none).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..records import Entity, LabelledDoc, Relation, iter_json_lines
from ._corpus import write_corpus
from ._schema import build_schema, relation_pairs

logger = logging.getLogger(__name__)

FILES = ("documents.json", "entities.json", "relations.json")
SYMMETRIC = frozenset({"CoLocated", "Apart", "CommWith", "AlliesOf", "IsSynonymOf"})
ANNOTATOR = "re3d"
NOT_PROBLEMS = ("entities", "relations", "value_differs_from_text")  # mapped, only counted


def find_subsets(path: Path | str) -> list[Path]:
    """``path`` itself when it holds the three files, else its sub-folders that do (sorted)."""
    path = Path(path)
    if all((path / name).is_file() for name in FILES):
        return [path]
    subsets = sorted(p for p in path.iterdir() if p.is_dir() and all((p / n).is_file() for n in FILES))
    if not subsets:
        raise InputError(f"no re3d folder here: expected {', '.join(FILES)} in it or in its sub-folders", path=path)
    return subsets


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for line, obj in iter_json_lines(path):
        if not isinstance(obj, dict):
            raise InputError("expected a JSON object", path=path, line=line)
        yield line, obj


def _field(obj: dict[str, Any], key: str, path: Path, line: int) -> Any:
    if key not in obj:
        raise InputError(f"missing field {key!r}", path=path, line=line)
    return obj[key]


class _Importer:
    """Accumulates records and the report over one or more re3d folders."""

    def __init__(self) -> None:
        self.docs: dict[str, LabelledDoc] = {}
        self.seen: dict[str, tuple[Path, int]] = {}  # document _id -> where it was first read
        self.report: dict[str, Counter] = defaultdict(Counter)
        self.pairs: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self.examples: list[dict[str, Any]] = []

    def skip(self, kind: str, label: str, example: dict[str, Any]) -> None:
        self.report[kind][label] += 1
        if len(self.examples) < 20:
            self.examples.append({"problem": kind, **example})

    def subset(self, folder: Path) -> None:
        spans: dict[str, dict[tuple[int, int], list[Entity]]] = defaultdict(lambda: defaultdict(list))
        self._documents(folder)
        self._entities(folder, spans)
        self._relations(folder, spans)

    def _documents(self, folder: Path) -> None:
        path = folder / FILES[0]
        for line, obj in _rows(path):
            doc_id = str(_field(obj, "_id", path, line))
            if doc_id in self.seen:
                first_path, first_line = self.seen[doc_id]
                raise InputError(f"document _id {doc_id!r} already used at {first_path}:{first_line}",
                                 path=path, line=line)
            self.seen[doc_id] = (path, line)
            text = _field(obj, "text", path, line)
            meta = {"article_id": doc_id, "title": obj.get("title"), "source": obj.get("sourceName"),
                    "url": obj.get("sourceUrl"), "subset": folder.name}
            self.docs[doc_id] = LabelledDoc(id=doc_id, text=str(text), meta={k: v for k, v in meta.items() if v},
                                            annotator=ANNOTATOR, status="confirmed")

    def _entities(self, folder: Path, spans: dict) -> None:
        path = folder / FILES[1]
        for line, obj in _rows(path):
            label = str(_field(obj, "type", path, line))
            doc = self.docs.get(str(_field(obj, "documentId", path, line)))
            begin, end = int(_field(obj, "begin", path, line)), int(_field(obj, "end", path, line))
            if doc is None:
                self.skip("entity_without_document", label, {"id": obj.get("_id")})
                continue
            if not 0 <= begin < end <= len(doc.text):
                self.skip("entity_offsets_outside_text", label, {"id": obj.get("_id"), "start": begin, "end": end})
                continue
            if any(e.label == label for e in spans[doc.id][(begin, end)]):
                self.report["duplicate_entity"][label] += 1
                continue
            if " ".join(doc.text[begin:end].split()) != " ".join(str(obj.get("value", "")).split()):
                self.report["value_differs_from_text"][label] += 1
            attrs = {"confidence": obj.get("confidence"), "re3d_id": obj.get("_id")}
            entity = Entity(id=f"e{len(doc.entities) + 1}", start=begin, end=end, label=label, attrs=attrs)
            doc.entities.append(entity)
            spans[doc.id][(begin, end)].append(entity)
            self.report["entities"][label] += 1

    def _relations(self, folder: Path, spans: dict) -> None:
        path = folder / FILES[2]
        for line, obj in _rows(path):
            label = str(_field(obj, "type", path, line))
            doc = self.docs.get(str(_field(obj, "documentId", path, line)))
            if doc is None:
                self.skip("relation_without_document", label, {"id": obj.get("_id")})
                continue
            ends = []
            for side in ("source", "target"):
                key = (int(_field(obj, f"{side}Begin", path, line)), int(_field(obj, f"{side}End", path, line)))
                found = spans[doc.id].get(key)
                ends.append(max(found, key=lambda e: e.attrs.get("confidence") or 0) if found else None)
            head, tail = ends
            if head is None or tail is None:
                self.skip("relation_end_without_entity", label, {"doc": doc.id, "id": obj.get("_id")})
                continue
            attrs: dict[str, Any] = {"confidence": obj.get("confidence"), "re3d_id": obj.get("_id")}
            if "begin" in obj and "end" in obj:
                attrs["trigger"] = {"start": obj["begin"], "end": obj["end"]}
            doc.relations.append(Relation(id=f"r{len(doc.relations) + 1}", head=head.id, tail=tail.id,
                                          label=label, attrs=attrs))
            self.pairs[label].add((head.label, tail.label))
            self.report["relations"][label] += 1


def read_re3d(path: Path | str, *, map_path: Path | str | None = None,
              schema_path: Path | str | None = None) -> tuple[list[LabelledDoc], dict[str, Any]]:
    """Read a re3d folder (or a folder of them); return its records and the import report (no ``out``).

    With ``map_path`` (a label map, e.g. ``annotate/maps/re3d-to-diplomacy-defence.yaml``) the labels are
    mapped onto ``schema_path``'s schema (default: the toolkit's); what does not map is dropped and counted
    under ``label_map`` in the report. A document ``_id`` used twice (in one ``documents.json`` or across
    sub-folders) and a folder without documents raise :class:`~annotate.errors.InputError`.
    """
    mapping = target = None
    if map_path is not None:
        from ..schema import load_schema
        from .labelmap import load_map

        target = load_schema(schema_path)
        mapping = load_map(map_path, target)
    importer = _Importer()
    subsets = find_subsets(path)
    for folder in subsets:
        importer.subset(folder)
    docs = list(importer.docs.values())
    if not docs:
        raise InputError(f"no records found in {path} (no documents in its {FILES[0]})")
    if mapping is not None and target is not None:
        from .labelmap import apply_map, map_summary

        docs = apply_map(docs, mapping, target)
    report = {
        "path": str(path), "subsets": [f.name for f in subsets], "documents": len(docs),
        "entities": sum(importer.report["entities"].values()), "relations": sum(importer.report["relations"].values()),
        "counts": {k: dict(sorted(v.items())) for k, v in sorted(importer.report.items())},
        "not_mapped": {k: sum(v.values()) for k, v in importer.report.items() if k not in NOT_PROBLEMS},
        "value_differs_from_text": sum(importer.report["value_differs_from_text"].values()),
        "examples": importer.examples,
    }
    if mapping is not None:
        report["label_map"] = map_summary(mapping)
        report["mapped_entities"] = sum(len(d.entities) for d in docs)
        report["mapped_relations"] = sum(len(d.relations) for d in docs)
    return docs, report


def import_re3d(path: Path | str, out: Path | str, *, map_path: Path | str | None = None,
                schema_path: Path | str | None = None, force: bool = False) -> dict[str, Any]:
    """Write ``out/labelled.jsonl``, ``out/schema.yaml`` and ``out/import-report.json`` (all or none); return the
    report.

    :func:`read_re3d` then :func:`~annotate.importers._corpus.write_corpus`. With ``map_path`` the records
    are mapped onto ``schema_path``'s schema (see :func:`read_re3d`) and ``schema.yaml`` is that schema
    rather than a generated one. An earlier ``out/labelled.jsonl`` with more records is not replaced
    (:class:`~annotate.errors.OutputError`) unless ``force``.
    """
    docs, report = read_re3d(path, map_path=map_path, schema_path=schema_path)
    if map_path is not None:
        from ..schema import load_schema

        schema = load_schema(schema_path).to_dict()
    else:
        labels = sorted({e.label for d in docs for e in d.entities})
        schema = build_schema("re3d", labels, relation_pairs(docs), corpus="re3d", command="annotate import re3d",
                              symmetric=SYMMETRIC)
    summary = {"path": report["path"], "out": str(out), **report}
    write_corpus(out, docs, schema, summary, force=force)
    return summary
