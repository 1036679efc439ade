"""Label schemas: load and check a schema file, and validate labelled documents against it.

A schema file is YAML or JSON (see ``annotate/schemas/diplomacy-defence.yaml``, the default)::

    name: diplomacy-defence
    entities:
      - {name: PERSON, description: ..., colour: "#e6194b", shortcut: p}
    relations:
      - {name: HAS_ROLE, description: ..., head: [PERSON], tail: [ROLE], symmetric: false}

Loading reports every problem in the file at once (duplicate labels, relation types naming unknown labels,
bad colours or shortcuts). Validating a document reports every violation with the document id and the
offsets involved: unknown labels, offsets outside the text, span text that does not match, duplicate or
dangling ids, relation ends with disallowed labels.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .errors import SchemaError, ValidationError
from .records import LabelledDoc

DEFAULT_SCHEMA_NAME = "diplomacy-defence.yaml"
COLOUR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
LABEL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")


@dataclass(frozen=True)
class EntityLabel:
    name: str
    description: str = ""
    colour: str = "#888888"
    shortcut: str | None = None


@dataclass(frozen=True)
class RelationType:
    name: str
    head: tuple[str, ...]
    tail: tuple[str, ...]
    description: str = ""
    symmetric: bool = False
    colour: str = "#888888"

    def allows(self, head_label: str, tail_label: str) -> bool:
        if head_label in self.head and tail_label in self.tail:
            return True
        return self.symmetric and tail_label in self.head and head_label in self.tail


@dataclass(frozen=True)
class Schema:
    name: str
    entities: tuple[EntityLabel, ...]
    relations: tuple[RelationType, ...]
    guidelines: str = ""
    hard_cases: str = ""
    version: int | str = 1
    examples: tuple[dict[str, Any], ...] = field(default=(), compare=False)
    source: str | None = field(default=None, compare=False)

    @property
    def entity_labels(self) -> list[str]:
        return [e.name for e in self.entities]

    @property
    def relation_labels(self) -> list[str]:
        return [r.name for r in self.relations]

    def relation(self, name: str) -> RelationType | None:
        return next((r for r in self.relations if r.name == name), None)

    def allowed_relations(self, head_label: str, tail_label: str) -> list[str]:
        """Relation types whose head/tail labels admit this ordered pair."""
        return [r.name for r in self.relations if head_label in r.head and tail_label in r.tail]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "guidelines": self.guidelines,
            "hard_cases": self.hard_cases,
            "entities": [
                {"name": e.name, "description": e.description, "colour": e.colour, "shortcut": e.shortcut}
                for e in self.entities
            ],
            "relations": [
                {
                    "name": r.name,
                    "description": r.description,
                    "head": list(r.head),
                    "tail": list(r.tail),
                    "symmetric": r.symmetric,
                    "colour": r.colour,
                }
                for r in self.relations
            ],
        }


def default_schema_path() -> Path:
    return Path(str(resources.files("annotate") / "schemas" / DEFAULT_SCHEMA_NAME))


def load_schema(path: Path | str | None = None) -> Schema:
    """Load and check a schema file (the shipped diplomacy and defence schema when ``path`` is None)."""
    path = Path(path) if path is not None else default_schema_path()
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise SchemaError(f"{path}: schema file is not valid UTF-8 (byte {err.start})") from err
    except OSError as err:
        raise SchemaError(f"{path}: cannot read schema file ({err.strerror or err})") from err
    try:
        data = json.loads(raw) if path.suffix.lower() == ".json" else yaml.safe_load(raw)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise SchemaError(f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {err}".replace("\n", " ")) from err
    return schema_from_dict(data, source=str(path))


def schema_from_dict(data: Any, *, source: str | None = None) -> Schema:
    where = f"{source}: " if source else ""
    if not isinstance(data, dict):
        raise SchemaError(f"{where}a schema must be a mapping with 'entities' and 'relations'")
    problems: list[str] = []
    entities = _parse_entities(data.get("entities"), problems)
    known = {e.name for e in entities}
    relations = _parse_relations(data.get("relations") or [], known, problems)
    _check_examples(data.get("examples") or [], known, {r.name: r for r in relations}, problems)
    if problems:
        raise SchemaError(f"{where}{len(problems)} problem(s): " + "; ".join(problems))
    return Schema(
        name=str(data.get("name") or (Path(source).stem if source else "schema")),
        entities=tuple(entities),
        relations=tuple(relations),
        guidelines=str(data.get("guidelines") or ""),
        hard_cases=str(data.get("hard_cases") or ""),
        version=data.get("version", 1),
        examples=tuple(e for e in data.get("examples") or [] if isinstance(e, dict)),
        source=source,
    )


def _parse_entities(items: Any, problems: list[str]) -> list[EntityLabel]:
    if not isinstance(items, list) or not items:
        problems.append("'entities' must be a non-empty list")
        return []
    out: list[EntityLabel] = []
    seen: set[str] = set()
    shortcuts: dict[str, str] = {}
    for i, item in enumerate(items):
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict) or not item.get("name"):
            problems.append(f"entity #{i + 1} has no name")
            continue
        name = str(item["name"])
        if not LABEL_RE.match(name):
            problems.append(f"entity label {name!r} must start with a letter and use letters, digits, '_' or '-'")
        if name in seen:
            problems.append(f"duplicate entity label {name!r}")
        seen.add(name)
        colour = str(item.get("colour", item.get("color", "#888888")))
        if not COLOUR_RE.match(colour):
            problems.append(f"entity {name!r} has bad colour {colour!r} (expected #RRGGBB)")
        shortcut = item.get("shortcut")
        if shortcut is not None:
            shortcut = str(shortcut)
            if len(shortcut) != 1 or not shortcut.isalnum():
                problems.append(f"entity {name!r} has bad shortcut {shortcut!r} (expected one letter or digit)")
            elif shortcut.lower() in shortcuts:
                problems.append(f"entity {name!r} reuses shortcut {shortcut!r} of {shortcuts[shortcut.lower()]!r}")
            else:
                shortcuts[shortcut.lower()] = name
        out.append(EntityLabel(name=name, description=str(item.get("description", "")), colour=colour, shortcut=shortcut))
    return out


def _parse_relations(items: Any, known: set[str], problems: list[str]) -> list[RelationType]:
    if not isinstance(items, list):
        problems.append("'relations' must be a list")
        return []
    out: list[RelationType] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not item.get("name"):
            problems.append(f"relation #{i + 1} has no name")
            continue
        name = str(item["name"])
        if name in seen:
            problems.append(f"duplicate relation type {name!r}")
        seen.add(name)
        ends = {}
        for end in ("head", "tail"):
            labels = item.get(end)
            if labels is None:
                labels = sorted(known)  # no restriction given: any entity label
            if isinstance(labels, str):
                labels = [labels]
            unknown = [lab for lab in labels if lab not in known]
            if unknown:
                problems.append(f"relation {name!r} names unknown {end} label(s) {', '.join(map(repr, unknown))}")
            ends[end] = tuple(str(lab) for lab in labels)
        colour = str(item.get("colour", item.get("color", "#888888")))
        if not COLOUR_RE.match(colour):
            problems.append(f"relation {name!r} has bad colour {colour!r} (expected #RRGGBB)")
        out.append(
            RelationType(
                name=name,
                head=ends["head"],
                tail=ends["tail"],
                description=str(item.get("description", "")),
                symmetric=bool(item.get("symmetric", False)),
                colour=colour,
            )
        )
    return out


def _check_examples(examples: Any, known: set[str], relations: dict[str, RelationType], problems: list[str]) -> None:
    """Worked examples must use the schema's own labels, spans present in their text, allowed relation ends."""
    for i, ex in enumerate(examples if isinstance(examples, list) else []):
        text = str(ex.get("text", "")) if isinstance(ex, dict) else ""
        labels: dict[str, str] = {}
        for span, label in (ex.get("entities") or []) if isinstance(ex, dict) else []:
            if label not in known:
                problems.append(f"example #{i + 1} uses unknown entity label {label!r}")
            if span not in text:
                problems.append(f"example #{i + 1} span {span!r} is not in its text")
            labels[span] = label
        for head, label, tail, *_ in (ex.get("relations") or []) if isinstance(ex, dict) else []:
            rtype = relations.get(label)
            if rtype is None:
                problems.append(f"example #{i + 1} uses unknown relation type {label!r}")
            elif head in labels and tail in labels and not rtype.allows(labels[head], labels[tail]):
                problems.append(f"example #{i + 1}: {label} does not allow {labels[head]} -> {labels[tail]}")


# ---------------------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class Violation:
    doc_id: str
    message: str
    start: int | None = None
    end: int | None = None

    def __str__(self) -> str:
        where = f" [{self.start}:{self.end}]" if self.start is not None else ""
        return f"document {self.doc_id!r}{where}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"doc_id": self.doc_id, "start": self.start, "end": self.end, "message": self.message}


def validate_doc(doc: LabelledDoc, schema: Schema) -> list[Violation]:
    """Every way ``doc`` breaks ``schema`` (empty list when it is valid)."""
    out: list[Violation] = []
    labels = set(schema.entity_labels)
    n = len(doc.text)
    entities: dict[str, Any] = {}
    for ent in doc.entities:
        v = lambda msg, e=ent: out.append(Violation(doc.id, msg, e.start, e.end))
        if ent.id in entities:
            v(f"duplicate entity id {ent.id!r}")
        entities[ent.id] = ent
        if ent.label not in labels:
            v(f"unknown entity label {ent.label!r}")
        if not (0 <= ent.start < ent.end <= n):
            v(f"entity {ent.id!r} offsets out of range for text of length {n}")
        elif ent.text is not None and doc.text[ent.start : ent.end] != ent.text:
            v(f"entity {ent.id!r} text {ent.text!r} does not match {doc.text[ent.start:ent.end]!r}")
    rel_ids: set[str] = set()
    for rel in doc.relations:
        if rel.id in rel_ids:
            out.append(Violation(doc.id, f"duplicate relation id {rel.id!r}"))
        rel_ids.add(rel.id)
        rtype = schema.relation(rel.label)
        head, tail = entities.get(rel.head), entities.get(rel.tail)
        missing = [x for x, e in ((rel.head, head), (rel.tail, tail)) if e is None]
        if missing:
            out.append(Violation(doc.id, f"relation {rel.id!r} points to missing entity id(s) {', '.join(map(repr, missing))}"))
        if rtype is None:
            out.append(Violation(doc.id, f"unknown relation type {rel.label!r} in relation {rel.id!r}"))
        elif head is not None and tail is not None and not rtype.allows(head.label, tail.label):
            out.append(
                Violation(
                    doc.id,
                    f"relation {rel.id!r} {rel.label} does not allow {head.label} -> {tail.label}",
                    head.start,
                    tail.end,
                )
            )
    return out




# ---------------------------------------------------------------------------------------- guidelines


def guidelines_markdown(schema: Schema) -> str:
    """Annotation guidelines generated from the schema: general rules, then one table per kind of label."""
    lines = [f"# Annotation guidelines: {schema.name} (schema version {schema.version})", ""]
    if schema.guidelines.strip():
        lines += ["## General rules", "", schema.guidelines.strip(), ""]
    lines += ["## Entity labels", "", "| label | key | what it marks |", "| --- | --- | --- |"]
    lines += [f"| {e.name} | {e.shortcut or ''} | {e.description} |" for e in schema.entities]
    lines += ["", "## Relation types (head -> tail)", "", "| type | head | tail | meaning |", "| --- | --- | --- | --- |"]
    for r in schema.relations:
        meaning = r.description + (" (symmetric: annotate once)" if r.symmetric and "symmetric" not in r.description else "")
        lines.append(f"| {r.name} | {', '.join(r.head)} | {', '.join(r.tail)} | {meaning} |")
    if schema.hard_cases.strip():
        lines += ["", "## Hard cases", "", schema.hard_cases.strip()]
    if schema.examples:
        lines += ["", "## Worked examples", ""]
        for example in schema.examples:
            lines += _example_lines(example)
    return "\n".join(lines) + "\n"


def _example_lines(example: dict[str, Any]) -> list[str]:
    text = str(example.get("text", ""))
    lines = [f"> {text}", ""]
    lines += [f"- `{span}`: {label}" for span, label in (example.get("entities") or [])]
    for rel in example.get("relations") or []:
        head, label, tail, *attrs = rel
        lines.append(f"- {label}({head} -> {tail})" + (f", {', '.join(attrs)}" if attrs else ""))
    return lines + [""]


# ------------------------------------------------------------------------------------- validation gate


def record_problems(doc: LabelledDoc, schema: Schema, seen: set[tuple[str, str | None]]) -> list[Violation]:
    """:func:`validate_doc` plus a record id already in ``seen`` for the same annotator (``seen`` is updated)."""
    problems = validate_doc(doc, schema)
    key = (doc.id, doc.annotator)
    if key in seen:
        who = f" for annotator {doc.annotator!r}" if doc.annotator else ""
        problems.append(Violation(doc.id, f"record id {doc.id!r} appears twice{who}"))
    seen.add(key)
    return problems


@dataclass
class Gate:
    """Records on their way into a command, validated one by one (:func:`validate_doc`, plus a repeated record
    id for the same annotator). An invalid record stops the command with its violations, before anything is
    written, or, with ``skip_invalid``, is left out and counted in :attr:`skipped`."""

    schema: Schema
    source: str
    skip_invalid: bool = False
    skipped: int = 0
    examples: list[str] = field(default_factory=list)
    _seen: set[tuple[str, str | None]] = field(default_factory=set)

    def __call__(self, docs: Iterable[LabelledDoc]) -> Iterator[LabelledDoc]:
        for doc in docs:
            problems = record_problems(doc, self.schema, self._seen)
            if not problems:
                yield doc
            elif self.skip_invalid:
                self.skipped += 1
                if len(self.examples) < 5:
                    self.examples.append(str(problems[0]))
            else:
                raise ValidationError(problems, source=f"{self.source} (schema {self.schema.name!r}; "
                                                       "--skip-invalid leaves such records out)")


def validate_records(docs: Iterable[LabelledDoc], schema: Schema) -> tuple[int, list[Violation]]:
    """The ``annotate validate`` job: every violation of every record, repeated record ids (per annotator)
    included; returns (records read, violations)."""
    violations: list[Violation] = []
    seen: set[tuple[str, str | None]] = set()
    n = 0
    for doc in docs:
        n += 1
        violations.extend(record_problems(doc, schema, seen))
    return n, violations
