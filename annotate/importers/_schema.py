"""Schema files generated for imported corpora: one colour and one shortcut per label, checked on the way.

Every importer (re3d, CrossRE, CoNLL) builds its ``schema.yaml`` with :func:`build_schema` (the relation
ends from :func:`relation_pairs`) and writes it with :func:`dump_schema`, through
:func:`annotate.importers._corpus.write_corpus`, so a generated schema loads with
:func:`annotate.schema.load_schema` and validates the imported records.
"""

from __future__ import annotations

import colorsys
from collections import defaultdict
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import IO, Any

import yaml

from ..records import LabelledDoc, atomic_writer
from ..schema import schema_from_dict

# Well-separated colours first (Trubetskoy's list of 20 distinct colours, minus white and black), then
# golden-angle hues, so a schema with many labels still gets a different colour for each one.
PALETTE = ("#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6",
           "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324", "#fffac8", "#800000", "#aaffc3",
           "#808000", "#ffd8b1", "#000075", "#808080")
GOLDEN_RATIO_CONJUGATE = 0.6180339887
SHORTCUT_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"


def distinct_colours(count: int) -> list[str]:
    """``count`` different ``#rrggbb`` colours: the palette, then golden-angle hues (never a repeat)."""
    colours: list[str] = []
    i = 0
    while len(colours) < count:
        if i < len(PALETTE):
            colour = PALETTE[i]
        else:
            hue = (i * GOLDEN_RATIO_CONJUGATE) % 1.0
            saturation, value = (0.65, 0.85) if i % 2 else (0.45, 0.65)
            r, g, b = colorsys.hsv_to_rgb(hue, saturation, value)
            colour = f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"
        if colour not in colours:
            colours.append(colour)
        i += 1
    return colours


def _shortcuts(labels: list[str]) -> list[str | None]:
    """One distinct keyboard shortcut per label, its first free letter or digit (None once all are taken)."""
    taken: set[str] = set()
    out: list[str | None] = []
    for label in labels:
        key = next((c for c in label.lower() + SHORTCUT_CHARS if c in SHORTCUT_CHARS and c not in taken), None)
        if key:
            taken.add(key)
        out.append(key)
    return out


def build_schema(
    name: str,
    entity_labels: list[str],
    pairs: dict[str, set[tuple[str, str]]] | None = None,
    *,
    corpus: str,
    command: str,
    symmetric: Collection[str] = (),
) -> dict[str, Any]:
    """A schema dict for the labels seen, every label and relation type with its own colour.

    ``pairs`` maps each relation type to the (head label, tail label) pairs seen. The dict is checked with
    :func:`annotate.schema.schema_from_dict` before it is returned.
    """
    pairs = pairs or {}
    entity_labels = sorted(entity_labels)
    relation_labels = sorted(pairs)
    colours = distinct_colours(len(entity_labels) + len(relation_labels))
    entities = [
        {"name": label, "description": f"{corpus} {label}", "colour": colour, "shortcut": key}
        for label, colour, key in zip(entity_labels, colours, _shortcuts(entity_labels))
    ]
    relations = [
        {"name": label, "description": f"{corpus} {label}",
         "head": sorted({h for h, _ in pairs[label]}), "tail": sorted({t for _, t in pairs[label]}),
         "symmetric": label in symmetric, "colour": colour}
        for label, colour in zip(relation_labels, colours[len(entity_labels):])
    ]
    data = {"name": name, "version": 1, "guidelines": f"Generated from {corpus} by `{command}`.",
            "entities": entities, "relations": relations}
    schema_from_dict(data, source=f"generated {corpus} schema")
    return data


def relation_pairs(docs: Iterable[LabelledDoc]) -> dict[str, set[tuple[str, str]]]:
    """For each relation type in ``docs``, the (head label, tail label) pairs its relations connect."""
    pairs: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for doc in docs:
        labels = {e.id: e.label for e in doc.entities}
        for rel in doc.relations:
            pairs[rel.label].add((labels[rel.head], labels[rel.tail]))
    return dict(pairs)


def dump_schema(schema: dict[str, Any], handle: IO[str]) -> None:
    """Write a schema dict as YAML to an open text file (keys in the dict's order)."""
    yaml.safe_dump(schema, handle, sort_keys=False, allow_unicode=True)


def write_schema(path: Path, schema: dict[str, Any]) -> None:
    """Write a schema dict as YAML, atomically (one file; importers write theirs with ``write_corpus``)."""
    with atomic_writer(path) as handle:
        dump_schema(schema, handle)
