"""Suggested entities and relations on Articles, so annotators correct suggestions instead of starting blank.

Two suggesters, both returning :class:`~annotate.records.LabelledDoc` records with ``status="predicted"``:

- :class:`PatternSuggester`: a spaCy ``entity_ruler`` over a gazetteer of EntityRuler patterns (JSONL,
  ``{"label": ..., "pattern": ...}``; the shipped one is ``annotate/patterns/diplomacy-defence.jsonl``)
  plus a few adjacency rules for relations that the schema's own span conventions make certain:
  "French President Emmanuel Macron" gives ROLE_IN(President -> French) and HAS_ROLE(Macron -> President).
- a trained pipeline (``annotate tasks --model``), through :func:`annotate.predict.predict_docs`.

Every suggestion carries ``attrs.source`` so reviewers can tell where it came from. Pattern labels are
checked against the schema when the suggester is built, naming the gazetteer file and line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import InputError, SchemaError
from .records import Article, Entity, LabelledDoc, Relation, iter_json_lines
from .schema import Schema

DEFAULT_PATTERNS_NAME = "diplomacy-defence.jsonl"
PHRASE_MATCHER_ATTR = "ORTH"  # case-sensitive phrases: "US" the country, not "us" the pronoun
BATCH_SIZE = 64
# (left label, right label) -> (relation type, head side, tail side) for spans separated only by a space
ADJACENCY_RULES: dict[tuple[str, str], tuple[str, str, str]] = {
    ("ROLE", "PERSON"): ("HAS_ROLE", "right", "left"),
    ("GPE", "ROLE"): ("ROLE_IN", "right", "left"),
    ("ORG", "ROLE"): ("ROLE_IN", "right", "left"),
    ("MILITARY_UNIT", "ROLE"): ("ROLE_IN", "right", "left"),
}


def default_patterns_path() -> Path:
    return Path(str(resources.files("annotate") / "patterns" / DEFAULT_PATTERNS_NAME))


def load_patterns(path: Path | str | None, schema: Schema) -> list[dict[str, Any]]:
    """Read EntityRuler patterns, checking each label against the schema."""
    path = Path(path) if path is not None else default_patterns_path()
    labels = set(schema.entity_labels)
    patterns = []
    for line_no, obj in iter_json_lines(path):
        if not isinstance(obj, dict) or "label" not in obj or "pattern" not in obj:
            raise InputError("a pattern needs 'label' and 'pattern'", path=path, line=line_no)
        if obj["label"] not in labels:
            raise SchemaError(f"{path}:{line_no}: pattern label {obj['label']!r} is not in schema {schema.name!r}")
        patterns.append(obj)
    if not patterns:
        raise InputError("no patterns in file", path=path)
    return patterns


class PatternSuggester:
    """Gazetteer and adjacency-rule suggestions."""

    source = "patterns"

    def __init__(self, schema: Schema, patterns_path: Path | str | None = None) -> None:
        import spacy

        self.schema = schema
        self.nlp = spacy.blank("en")
        ruler = self.nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": PHRASE_MATCHER_ATTR})
        ruler.add_patterns(load_patterns(patterns_path, schema))

    def suggest(self, articles: Iterable[Article]) -> Iterator[LabelledDoc]:
        pairs = ((a.text, a) for a in articles)
        for doc, article in self.nlp.pipe(pairs, as_tuples=True, batch_size=BATCH_SIZE):
            entities = [
                Entity(id=f"e{i}", start=span.start_char, end=span.end_char, label=span.label_, attrs={"source": self.source})
                for i, span in enumerate(doc.ents, start=1)
            ]
            relations = adjacency_relations(article.text, entities, self.schema)
            yield LabelledDoc.from_article(
                article, entities=entities, relations=relations, annotator=self.source, status="predicted"
            )


def adjacency_relations(text: str, entities: list[Entity], schema: Schema) -> list[Relation]:
    """Relations implied by two spans separated by a single space (see :data:`ADJACENCY_RULES`)."""
    ordered = sorted(entities, key=lambda e: (e.start, e.end))
    relations: list[Relation] = []
    for left, right in zip(ordered, ordered[1:]):
        rule = ADJACENCY_RULES.get((left.label, right.label))
        if rule is None or text[left.end : right.start] != " ":
            continue
        label, head_side, tail_side = rule
        head = left if head_side == "left" else right
        tail = left if tail_side == "left" else right
        rtype = schema.relation(label)
        if rtype is not None and rtype.allows(head.label, tail.label):
            relations.append(
                Relation(id=f"r{len(relations) + 1}", head=head.id, tail=tail.id, label=label, attrs={"source": "patterns"})
            )
    return relations


def suggestion_counts(docs: Iterable[LabelledDoc]) -> tuple[Counter[str], Counter[str]]:
    """How many entity suggestions each label got, and relation suggestions each type got."""
    ents: Counter[str] = Counter()
    rels: Counter[str] = Counter()
    for doc in docs:
        ents.update(e.label for e in doc.entities)
        rels.update(r.label for r in doc.relations)
    return ents, rels
