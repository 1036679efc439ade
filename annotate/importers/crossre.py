"""CrossRE (one domain, e.g. politics) -> records, a generated schema file and an import report.

Input: one CrossRE split file, JSON lines, one sentence per line::

    {"doc_key": "politics-train-1",
     "sentence": ["Parties", "with", ...],
     "ner": [[8, 9, "politicalparty"], ...],
     "relations": [[8, 9, 15, 20, "opposite", "in_opposition", false, false], ...]}

Token indices are 0-based and *inclusive* at both ends. A relation row is ``[head_start, head_end,
tail_start, tail_end, label, explanation, uncertain, syntax_ambiguity]``.

CrossRE has tokens, not text, so the record's ``text`` is the tokens **joined with single spaces**
(``" ".join(sentence)``; the original spacing is not recoverable) and every span becomes code-point offsets
into that text, ``end`` exclusive. Mapping:

* sentence -> record ``{id: doc_key, meta: {article_id: doc_key, source: <file name>, corpus: CrossRE}}``,
  status confirmed, annotator ``crossre``;
* NER span -> ``Entity`` with the CrossRE label, its ``text``, and ``attrs: {tokens: [first, last]}``
  (inclusive token indices, so the span maps back to CrossRE);
* relation -> ``Relation`` between the entities with exactly those token spans; ``attrs`` carries only the
  flags that are set: ``explanation`` (when not empty), ``uncertain: true``, ``syntax_ambiguity: true``.

Not mapped, and counted in the report: NER spans outside the sentence, a second NER span with the same
tokens and label (duplicate), relations whose ends are no NER span, repeated relations (same ends and
label). Counted but mapped: a relation end that matches several NER spans with different labels (the
first one is used). Rows that are not CrossRE at all (missing fields, wrong types), a reversed span (an NER
span or relation end whose last token comes before its first: not a span outside the sentence, so not
skipped), a ``doc_key`` seen before and a file without rows raise :class:`~annotate.errors.InputError`
naming file and line.

The generated schema lists the entity labels seen and, for each relation type, the head and tail labels
seen; no type is marked symmetric (CrossRE annotates every relation with a direction). Because a schema
stores head and tail label *sets*, the report also lists the exact (head, tail) pairs seen per type.

:func:`read_crossre` returns the records and the report; :func:`import_crossre` writes them with the schema
through :func:`~annotate.importers._corpus.write_corpus` (all three files or none).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..records import Entity, LabelledDoc, Relation, iter_json_lines
from ._corpus import write_corpus
from ._schema import build_schema, relation_pairs

logger = logging.getLogger(__name__)

ANNOTATOR = "crossre"
CORPUS = "CrossRE"
TEXT_NOTE = "tokens joined with single spaces; offsets are code points into that text, end exclusive"
RELATION_FIELDS = 8  # head_start, head_end, tail_start, tail_end, label, explanation, uncertain, syntax_ambiguity
MAX_EXAMPLES = 20
NOT_PROBLEMS = ("entities", "relations", "relation_end_ambiguous")  # mapped, only counted


def token_offsets(tokens: list[str]) -> list[tuple[int, int]]:
    """Code-point ``(start, end)`` of each token in ``" ".join(tokens)``."""
    offsets = []
    position = 0
    for token in tokens:
        offsets.append((position, position + len(token)))
        position += len(token) + 1
    return offsets


# --------------------------------------------------------------------------------------------- rows


def _is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_row(obj: Any, path: Path, line: int) -> None:
    """Raise InputError unless ``obj`` has CrossRE's shape: fields, types, and no span whose last token comes
    before its first (spans outside the sentence are counted later, not raised)."""
    if not isinstance(obj, dict):
        raise InputError("expected a JSON object", path=path, line=line)
    for key, kind in (("doc_key", str), ("sentence", list), ("ner", list), ("relations", list)):
        if key not in obj:
            raise InputError(f"missing field {key!r}", path=path, line=line)
        if not isinstance(obj[key], kind):
            raise InputError(f"field {key!r} must be a {kind.__name__}", path=path, line=line)
    if not all(isinstance(t, str) for t in obj["sentence"]):
        raise InputError("'sentence' must be a list of token strings", path=path, line=line)
    for span in obj["ner"]:
        if not (isinstance(span, list) and len(span) == 3 and _is_index(span[0]) and _is_index(span[1])
                and isinstance(span[2], str)):
            raise InputError(f"bad NER span {span!r}: expected [first, last, label]", path=path, line=line)
        if span[1] < span[0]:
            raise InputError(f"NER span {span!r} is reversed: its last token comes before its first",
                             path=path, line=line)
    for rel in obj["relations"]:
        if not (isinstance(rel, list) and len(rel) == RELATION_FIELDS and all(_is_index(x) for x in rel[:4])
                and isinstance(rel[4], str)):
            raise InputError(f"bad relation {rel!r}: expected [head_first, head_last, tail_first, tail_last, "
                             "label, explanation, uncertain, syntax_ambiguity]", path=path, line=line)
        for side, (first, last) in (("head", rel[0:2]), ("tail", rel[2:4])):
            if last < first:
                raise InputError(f"relation {rel[:5]!r}: {side} span [{first}, {last}] is reversed: its last token "
                                 "comes before its first", path=path, line=line)


def _relation_attrs(rel: list[Any]) -> dict[str, Any]:
    """Only the flags that say something: a non-empty explanation, uncertain / syntax_ambiguity when true."""
    explanation, uncertain, ambiguous = rel[5], rel[6], rel[7]
    attrs: dict[str, Any] = {}
    if explanation:
        attrs["explanation"] = str(explanation)
    if uncertain:
        attrs["uncertain"] = True
    if ambiguous:
        attrs["syntax_ambiguity"] = True
    return attrs


class _Importer:
    """Accumulates records, counts and observed relation ends over one CrossRE file."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.docs: list[LabelledDoc] = []
        self.report: dict[str, Counter] = defaultdict(Counter)
        self.pairs: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self.examples: list[dict[str, Any]] = []

    def skip(self, kind: str, label: str, example: dict[str, Any]) -> None:
        self.report[kind][label] += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append({"problem": kind, **example})

    def sentence(self, obj: dict[str, Any]) -> LabelledDoc:
        tokens: list[str] = obj["sentence"]
        text = " ".join(tokens)
        doc = LabelledDoc(id=obj["doc_key"], text=text,
                          meta={"article_id": obj["doc_key"], "source": self.source, "corpus": CORPUS},
                          annotator=ANNOTATOR, status="confirmed")
        spans = self._entities(doc, obj["ner"], token_offsets(tokens))
        self._relations(doc, obj["relations"], spans)
        self.docs.append(doc)
        return doc

    def _entities(self, doc: LabelledDoc, ner: list[list[Any]], offsets: list[tuple[int, int]]) -> dict[tuple[int, int], list[Entity]]:
        spans: dict[tuple[int, int], list[Entity]] = defaultdict(list)
        for first, last, label in ner:
            if not 0 <= first <= last < len(offsets):
                self.skip("entity_outside_sentence", label, {"doc": doc.id, "tokens": [first, last]})
                continue
            if any(e.label == label for e in spans[(first, last)]):
                self.skip("duplicate_entity", label, {"doc": doc.id, "tokens": [first, last]})
                continue
            start, end = offsets[first][0], offsets[last][1]
            entity = Entity(id=f"e{len(doc.entities) + 1}", start=start, end=end, label=label,
                            text=doc.text[start:end], attrs={"tokens": [first, last]})
            doc.entities.append(entity)
            spans[(first, last)].append(entity)
            self.report["entities"][label] += 1
        return spans

    def _relations(self, doc: LabelledDoc, relations: list[list[Any]], spans: dict[tuple[int, int], list[Entity]]) -> None:
        seen: set[tuple[str, str, str]] = set()
        for rel in relations:
            label = rel[4]
            ends = []
            for key in ((rel[0], rel[1]), (rel[2], rel[3])):
                found = spans.get(key) or []
                if len(found) > 1:
                    self.report["relation_end_ambiguous"][label] += 1
                ends.append(found[0] if found else None)
            head, tail = ends
            if head is None or tail is None:
                self.skip("relation_end_without_entity", label, {"doc": doc.id, "relation": rel[:5]})
                continue
            if (head.id, tail.id, label) in seen:
                self.skip("duplicate_relation", label, {"doc": doc.id, "relation": rel[:5]})
                continue
            seen.add((head.id, tail.id, label))
            attrs = _relation_attrs(rel)
            for flag in attrs:
                self.report[f"flag_{flag}"][label] += 1
            doc.relations.append(Relation(id=f"r{len(doc.relations) + 1}", head=head.id, tail=tail.id,
                                          label=label, attrs=attrs))
            self.pairs[label].add((head.label, tail.label))
            self.report["relations"][label] += 1


def read_crossre(path: Path | str) -> tuple[list[LabelledDoc], dict[str, Any]]:
    """Read one CrossRE file; return its records and the import report (no ``out``).

    Rows that are not CrossRE, a reversed span, a repeated ``doc_key`` and a file without rows raise
    :class:`~annotate.errors.InputError` (see the module docstring).
    """
    path = Path(path)
    importer = _Importer(path.name)
    first_line: dict[str, int] = {}  # doc_key -> line: record ids must be unique downstream
    for line, obj in iter_json_lines(path):
        _check_row(obj, path, line)
        if obj["doc_key"] in first_line:
            raise InputError(f"doc_key {obj['doc_key']!r} already used on line {first_line[obj['doc_key']]}",
                             path=path, line=line)
        first_line[obj["doc_key"]] = line
        importer.sentence(obj)
    if not importer.docs:
        raise InputError(f"no records found in {path} (expected CrossRE JSON lines)")
    docs = importer.docs
    counts = importer.report
    report = {
        "path": str(path), "text": TEXT_NOTE, "documents": len(docs),
        "entities": sum(counts["entities"].values()), "relations": sum(counts["relations"].values()),
        "counts": {k: dict(sorted(v.items())) for k, v in sorted(counts.items())},
        "not_mapped": {k: sum(v.values()) for k, v in sorted(counts.items())
                       if k not in NOT_PROBLEMS and not k.startswith("flag_")},
        "relation_pairs": {k: sorted(map(list, v)) for k, v in sorted(importer.pairs.items())},
        "examples": importer.examples,
    }
    logger.info("CrossRE %s: %d sentences, %d entities, %d relations", path, len(docs), report["entities"],
                report["relations"])
    return docs, report


def import_crossre(path: Path | str, out: Path | str, *, name: str | None = None,
                   force: bool = False) -> dict[str, Any]:
    """Import one CrossRE file; write ``out/labelled.jsonl``, ``out/schema.yaml``, ``out/import-report.json``
    (all or none).

    :func:`read_crossre` then :func:`~annotate.importers._corpus.write_corpus`. ``name`` names the generated
    schema (default: the ``out`` folder's name). An earlier ``out/labelled.jsonl`` with more records is not
    replaced (:class:`~annotate.errors.OutputError`) unless ``force``. Returns the report.
    """
    out = Path(out)
    docs, report = read_crossre(path)
    labels = sorted({e.label for d in docs for e in d.entities})
    schema = build_schema(name or out.name, labels, relation_pairs(docs), corpus=CORPUS,
                          command="annotate import crossre")
    summary = {"path": report["path"], "out": str(out), **report}
    write_corpus(out, docs, schema, summary, force=force)
    return summary
