"""Map another corpus's labels onto a schema: a YAML file of entity and relation renames (see
``annotate/maps/re3d-to-diplomacy-defence.yaml``), applied to records, with a count of what did not map."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError
from ..records import LabelledDoc, Relation
from ..schema import Schema

MAPS_DIR = Path(__file__).resolve().parents[1] / "maps"


@dataclass
class LabelMap:
    name: str
    entities: dict[str, str | None]
    relations: dict[str, list[str]]  # tried in order; [] drops
    path: str = ""
    report: dict[str, Counter] = field(default_factory=lambda: {k: Counter() for k in (
        "entities_mapped", "entities_dropped", "entities_unlisted", "relations_mapped", "relations_dropped",
        "relations_unlisted", "relations_not_allowed", "relations_end_dropped")})


def load_map(path: Path | str, schema: Schema) -> LabelMap:
    """Read and check a map file: every target must be a label or relation type of ``schema``."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise InputError(f"cannot read label map: {err}".replace("\n", " "), path=path) from err
    if not isinstance(data, dict) or not isinstance(data.get("entities"), dict):
        raise InputError("a label map needs an 'entities' mapping (and optionally 'relations')", path=path)
    labels, types = set(schema.entity_labels), set(schema.relation_labels)
    entities: dict[str, str | None] = {}
    for source, target in data["entities"].items():
        if target is not None and target not in labels:
            raise InputError(f"entity {source!r} maps to {target!r}, not a label of schema {schema.name!r}", path=path)
        entities[str(source)] = target
    relations: dict[str, list[str]] = {}
    for source, target in (data.get("relations") or {}).items():
        targets = [] if target is None else [target] if isinstance(target, str) else list(target)
        bad = [t for t in targets if t not in types]
        if bad:
            raise InputError(f"relation {source!r} maps to {bad[0]!r}, not a relation type of schema {schema.name!r}",
                             path=path)
        relations[str(source)] = targets
    return LabelMap(name=str(data.get("name") or path.stem), entities=entities, relations=relations, path=str(path))


def apply_map(docs: list[LabelledDoc], mapping: LabelMap, schema: Schema) -> list[LabelledDoc]:
    """Rename labels in place and drop what does not map; ``mapping.report`` counts each outcome by source label.
    A label the map does not list is dropped too (counted as unlisted)."""
    rep = mapping.report
    for doc in docs:
        kept = {}
        for ent in doc.entities:
            target = mapping.entities.get(ent.label)
            if ent.label not in mapping.entities:
                rep["entities_unlisted"][ent.label] += 1
            elif target is None:
                rep["entities_dropped"][ent.label] += 1
            else:
                rep["entities_mapped"][ent.label] += 1
                ent.label = target
                kept[ent.id] = ent
        doc.entities = list(kept.values())
        relations: list[Relation] = []
        for rel in doc.relations:
            head, tail = kept.get(rel.head), kept.get(rel.tail)
            targets = mapping.relations.get(rel.label)
            if targets is None:
                rep["relations_unlisted"][rel.label] += 1
            elif not targets:
                rep["relations_dropped"][rel.label] += 1
            elif head is None or tail is None:
                rep["relations_end_dropped"][rel.label] += 1
            else:
                allowed = set(schema.allowed_relations(head.label, tail.label))
                target = next((t for t in targets if t in allowed), None)
                if target is None:
                    rep["relations_not_allowed"][rel.label] += 1
                    continue
                rep["relations_mapped"][rel.label] += 1
                rel.label = target
                relations.append(rel)
        doc.relations = relations
    return docs


def map_summary(mapping: LabelMap) -> dict[str, Any]:
    return {"map": mapping.path, "name": mapping.name,
            **{k: dict(sorted(v.items())) for k, v in mapping.report.items()},
            "totals": {k: sum(v.values()) for k, v in mapping.report.items()}}
