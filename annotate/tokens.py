"""Tokenisation, alignment and splits: the one place that decides how a labelled record becomes a spaCy
``Doc`` and which split it lands in. ``annotate docbin`` (:mod:`annotate.docbin`) and ``annotate publish``
(:mod:`annotate.publish`) both build their ``Doc``s here, so the DocBins used for training and the
published ``tokens``/``ner_tags`` hold the same tokens, entities and splits for the same records.

Tokenizer: :func:`make_nlp` is a blank pipeline whose tokenizer has :data:`EXTRA_INFIXES` added by
:func:`tweak_tokenizer` ("F-16" is three tokens, ``F``, ``-``, ``16``).

What a ``Doc`` from :func:`doc_from_record` carries (and a ``DocBin`` written with ``store_user_data=True``
round-trips):

* ``doc.ents``: a flat, non-overlapping subset of the entities, chosen by the overlap policy below;
* ``doc.spans["entities"]``: *every* aligned entity span, nested or overlapping ones included (a span
  categoriser can train on them);
* ``doc.user_data["annotate_entities"]``: ``[{"id", "start", "end", "label", "attrs"}]`` in code-point
  offsets after alignment, so entity ids and attributes (confidence, ...) survive;
* ``doc.user_data["annotate_relations"]``: ``[{"id", "label", "head": [start, end, label],
  "tail": [start, end, label], "attrs"}]``: relation ends are keyed by *character* offsets and label, so
  they do not depend on the tokenizer (the public spaCy tutorial keys them by start token, which collides).

Policies (named constants, chosen on the command line, reported, never silent):

* misaligned spans (edges inside a token): ``expand`` (default) widens to the enclosing tokens,
  ``contract`` shrinks to the tokens fully inside, ``drop`` discards; each case is counted per label;
  whitespace tokens at a span's edges (``"Johnson\\n"``) are trimmed (``ner`` cannot learn them), counted
  as ``trimmed``;
* overlapping spans in ``doc.ents``: ``longest`` (default) keeps the longest span of an overlapping group
  (earliest first on ties, as ``spacy.util.filter_spans``), ``shortest`` keeps the innermost; the spans
  left out of ``doc.ents`` stay in the span group and are counted per label.

Splits are by article (``meta.article_id``, else the record id before ``#``), so every chunk of one article
lands in the same split. A split is a pure function of ``seed`` and the article id (a SHA-256 hash mapped to
``[0, 1)`` and cut by the ratios), so adding documents never moves the old ones. Optionally, a date split:
articles dated on/after ``test_from`` go to test, on/after ``dev_from`` to dev, the rest to train.

The spaCy registry entry for the tokenizer tweaks (``annotate.tokenizer_tweaks.v1``) stays in
:mod:`annotate.docbin`, which also re-exports every name here.
"""

from __future__ import annotations

import datetime
import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import compile_infix_regex, compile_prefix_regex, compile_suffix_regex

from .errors import InputError
from .records import Entity, LabelledDoc

SPANS_KEY = "entities"
ENTITIES_KEY = "annotate_entities"
RELATIONS_KEY = "annotate_relations"
SPLITS = ("train", "dev", "test")
DEFAULT_RATIOS = (0.8, 0.1, 0.1)
MISALIGNED_POLICIES = ("expand", "contract", "drop")
OVERLAP_POLICIES = ("longest", "shortest")
HASH_SCALE = float(2**64)

# Infixes added to the default English rules. Each removes a misalignment seen in news text (re3d train:
# misaligned spans 91 -> 80 of 2,386; most left are annotation slips inside words, "the camp|aign"): "F-16"/"T-14" (letter-hyphen-digit),
# "2014–2016" (a range of two dates), slashes next to digits, "EUR800" (currency code glued to a number),
# Wikipedia citation marks glued to words ("territory.[4]"), "Qanbar(Arabic", "U.S.-Iraq", and the
# invisible direction marks (U+200E/U+200F) around right-to-left names.
EXTRA_INFIXES = (
    r"\[(?=[0-9])",
    r"(?<=[0-9])\]",
    r"(?<=[A-Za-z])\((?=[A-Za-z])",
    r"(?<=\.)-(?=[A-Z])",
    r"[\u200e\u200f]",
    r"(?<=[A-Za-z])[-‐‑–—](?=[0-9])",
    r"(?<=[0-9])[–—](?=[0-9])",
    r"(?<=[A-Za-z])/(?=[0-9])",
    r"(?<=[0-9])/(?=[A-Za-z])",
    r"(?<=\b[A-Z]{3})(?=[0-9])",
)

DIRECTION_MARKS = r"[\u200e\u200f]"


# --------------------------------------------------------------------------------------------- tokenizer


def tweak_tokenizer(nlp: Language) -> Language:
    """Add :data:`EXTRA_INFIXES` to ``nlp``'s tokenizer (in place; returns ``nlp`` for chaining).

    The rules are serialised with the tokenizer, so a saved pipeline keeps them.
    """
    infixes = list(nlp.Defaults.infixes or []) + list(EXTRA_INFIXES)
    nlp.tokenizer.infix_finditer = compile_infix_regex(infixes).finditer
    nlp.tokenizer.prefix_search = compile_prefix_regex([DIRECTION_MARKS, *(nlp.Defaults.prefixes or [])]).search
    nlp.tokenizer.suffix_search = compile_suffix_regex([DIRECTION_MARKS, *(nlp.Defaults.suffixes or [])]).search
    return nlp


TOKENIZER_MAX_LENGTH = 100_000_000  # the tokenizer alone has no use for spaCy's 1,000,000-character guard


def make_nlp(lang: str = "en") -> Language:
    """A blank pipeline with the tweaked tokenizer (what ``annotate docbin`` and ``annotate publish`` tokenize with).

    spaCy refuses texts over ``nlp.max_length`` (1,000,000 characters, E088) to protect parser and NER memory;
    a tokenizer-only pipeline does not need that guard, so a long record converts instead of failing."""
    nlp = tweak_tokenizer(spacy.blank(lang))
    nlp.max_length = TOKENIZER_MAX_LENGTH
    return nlp


# --------------------------------------------------------------------------------------------- records -> Doc


@dataclass
class AlignmentReport:
    """Per-label counts of what alignment and the overlap policy did; JSON-ready via :meth:`to_dict`."""

    spans: Counter = field(default_factory=Counter)
    expanded: Counter = field(default_factory=Counter)
    contracted: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)
    trimmed: Counter = field(default_factory=Counter)
    not_in_ents: Counter = field(default_factory=Counter)
    relations: Counter = field(default_factory=Counter)
    relations_dropped: Counter = field(default_factory=Counter)
    relations_outside_ents: Counter = field(default_factory=Counter)
    examples: list[dict[str, Any]] = field(default_factory=list)

    MAX_EXAMPLES = 20

    def note(self, kind: str, doc_id: str, ent: Entity, text: str) -> None:
        getattr(self, kind)[ent.label] += 1
        if len(self.examples) < self.MAX_EXAMPLES:
            self.examples.append({"doc": doc_id, "entity": ent.id, "label": ent.label, "action": kind,
                                  "start": ent.start, "end": ent.end, "text": text[ent.start:ent.end]})

    def merge(self, other: AlignmentReport) -> None:
        for name in ("spans", "expanded", "contracted", "dropped", "trimmed", "not_in_ents", "relations",
                     "relations_dropped", "relations_outside_ents"):
            getattr(self, name).update(getattr(other, name))
        room = self.MAX_EXAMPLES - len(self.examples)
        self.examples.extend(other.examples[:max(room, 0)])

    def to_dict(self) -> dict[str, Any]:
        per_label = {
            label: {k: getattr(self, k)[label] for k in ("spans", "expanded", "contracted", "dropped", "trimmed", "not_in_ents")}
            for label in sorted(self.spans)
        }
        per_relation = {
            label: {k: getattr(self, k)[label] for k in ("relations", "relations_dropped", "relations_outside_ents")}
            for label in sorted(self.relations)
        }
        return {"entities": per_label, "relations": per_relation, "examples": self.examples}


def _trim(span: Span) -> Span | None:
    """Drop whitespace tokens at the edges (spaCy's ``ner`` cannot learn spans that start or end on one)."""
    start, end = span.start, span.end
    while start < end and span.doc[start].is_space:
        start += 1
    while end > start and span.doc[end - 1].is_space:
        end -= 1
    return Span(span.doc, start, end, label=span.label_) if end > start else None


def _align(doc: Doc, ent: Entity, misaligned: str) -> tuple[Span | None, str | None]:
    """Return the span for ``ent`` and the action taken (None when it aligned as is)."""
    span = doc.char_span(ent.start, ent.end, label=ent.label)
    if span is not None:
        trimmed = _trim(span)
        if trimmed is None:
            return None, "dropped"
        return trimmed, (None if len(trimmed) == len(span) else "trimmed")
    if misaligned == "drop":
        return None, "dropped"
    mode = "expand" if misaligned == "expand" else "contract"
    span = doc.char_span(ent.start, ent.end, label=ent.label, alignment_mode=mode)
    span = _trim(span) if span is not None and len(span) else None
    if span is None:
        return None, "dropped"
    return span, "expanded" if mode == "expand" else "contracted"


def select_ents(spans: Iterable[Span], overlap: str = "longest") -> list[Span]:
    """Choose non-overlapping spans for ``doc.ents`` by the overlap policy (see the module docstring)."""
    if overlap not in OVERLAP_POLICIES:
        raise InputError(f"overlap policy must be one of {OVERLAP_POLICIES}, got {overlap!r}")
    sign = -1 if overlap == "longest" else 1
    ordered = sorted(spans, key=lambda s: (sign * len(s), s.start, s.end))
    taken: set[int] = set()
    kept: list[Span] = []
    for span in ordered:
        if any(i in taken for i in range(span.start, span.end)):
            continue
        kept.append(span)
        taken.update(range(span.start, span.end))
    return sorted(kept, key=lambda s: s.start)


def doc_from_record(
    nlp: Language, record: LabelledDoc, *, misaligned: str = "expand", overlap: str = "longest",
) -> tuple[Doc, AlignmentReport]:
    """Build the ``Doc`` for one record (see the module docstring for what it carries)."""
    if misaligned not in MISALIGNED_POLICIES:
        raise InputError(f"misaligned policy must be one of {MISALIGNED_POLICIES}, got {misaligned!r}")
    report = AlignmentReport()
    doc = nlp.make_doc(record.text)
    spans: dict[str, Span] = {}
    kept_entities: list[dict[str, Any]] = []
    for ent in record.entities:
        report.spans[ent.label] += 1
        span, action = _align(doc, ent, misaligned)
        if action:
            report.note(action, record.id, ent, record.text)
        if span is None:
            continue
        spans[ent.id] = span
        kept_entities.append({"id": ent.id, "start": span.start_char, "end": span.end_char,
                              "label": ent.label, "attrs": ent.attrs})
    unique = {(s.start, s.end, s.label_): s for s in spans.values()}
    ents = select_ents(unique.values(), overlap)
    doc.ents = ents
    in_ents = {(s.start, s.end, s.label_) for s in ents}
    for key, span in unique.items():
        if key not in in_ents:
            report.not_in_ents[span.label_] += 1
    doc.spans[SPANS_KEY] = sorted(unique.values(), key=lambda s: (s.start, s.end))
    doc.user_data[ENTITIES_KEY] = kept_entities
    doc.user_data[RELATIONS_KEY] = _relations(record, spans, in_ents, report)
    return doc, report


def _relations(record: LabelledDoc, spans: dict[str, Span], in_ents: set, report: AlignmentReport) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for rel in record.relations:
        report.relations[rel.label] += 1
        head, tail = spans.get(rel.head), spans.get(rel.tail)
        if head is None or tail is None:
            report.relations_dropped[rel.label] += 1
            continue
        if (head.start, head.end, head.label_) not in in_ents or (tail.start, tail.end, tail.label_) not in in_ents:
            report.relations_outside_ents[rel.label] += 1
        out.append({"id": rel.id, "label": rel.label, "attrs": rel.attrs,
                    "head": [head.start_char, head.end_char, head.label_],
                    "tail": [tail.start_char, tail.end_char, tail.label_]})
    return out


def iob2_tags(doc: Doc) -> list[str]:
    """``doc.ents`` as one IOB2 tag per token (``B-LABEL``, ``I-LABEL``, ``O``), in token order."""
    return [f"{token.ent_iob_}-{token.ent_type_}" if token.ent_iob_ in ("B", "I") else "O" for token in doc]


# --------------------------------------------------------------------------------------------- splits


def article_id(record: LabelledDoc) -> str:
    """The id that keeps an article's chunks together: ``meta.article_id``, else the id before ``#``."""
    value = record.meta.get("article_id")
    return str(value) if value else record.id.split("#", 1)[0]


def hash_split(key: str, *, seed: int = 0, ratios: tuple[float, float, float] = DEFAULT_RATIOS) -> str:
    """Map ``key`` to train/dev/test by a seeded SHA-256 hash: stable when other keys come and go."""
    total = sum(ratios)
    if total <= 0 or any(r < 0 for r in ratios) or len(ratios) != len(SPLITS):
        raise InputError(f"ratios must be three non-negative numbers with a positive sum, got {ratios!r}")
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / HASH_SCALE
    cumulative = 0.0
    for name, ratio in zip(SPLITS, ratios):
        cumulative += ratio / total
        if point < cumulative:
            return name
    return SPLITS[-1]


def date_split(date: str | None, *, dev_from: str, test_from: str) -> str:
    """train before ``dev_from``, dev before ``test_from``, test from then on (ISO dates compare as text)."""
    if not date:
        raise InputError("a date split needs meta.date on every record")
    try:
        datetime.date.fromisoformat(date)
    except (TypeError, ValueError) as err:
        raise InputError(f"meta.date {date!r} is not an ISO date (YYYY-MM-DD); --dates needs one on every record") from err
    if date >= test_from:
        return "test"
    return "dev" if date >= dev_from else "train"


def assign_split(
    record: LabelledDoc, *, seed: int = 0, ratios: tuple[float, float, float] = DEFAULT_RATIOS,
    dates: tuple[str, str] | None = None,
) -> str:
    """The split of ``record``: by ``meta.date`` when ``dates`` (``dev_from``, ``test_from``) is given, else
    :func:`hash_split` of its :func:`article_id`; raises ``ValueError`` on a missing date or bad ratios."""
    if dates is not None:
        return date_split(record.meta.get("date"), dev_from=dates[0], test_from=dates[1])
    return hash_split(article_id(record), seed=seed, ratios=ratios)
