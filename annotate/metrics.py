"""Per-label precision, recall and F1 for entities and relations: predicted records scored against gold.

Scoring lives here (:func:`evaluate`, :func:`summarise`, :func:`score_doc` and the counting they use); the
error list of each document comes from :mod:`annotate.error_analysis`, the confidence intervals and the
comparison of two runs from :mod:`annotate.bootstrap`.

Inputs are two record files (``records.py`` format), matched by record id: the gold file holds one record
per document (adjudicate per-annotator records first), the prediction file what a model produced. The
result is a plain dict (written as ``metrics.json``); :func:`annotate.reports.write_outputs` adds a
Markdown report, PNG plots and the full error list (presentation lives in ``reports.py``).

Views (every count is per label, per document, so that documents can be resampled):

* ``entities.exact`` -- an entity is the triple (start, end, label); a prediction is right when the gold
  document holds the same triple.
* ``entities.overlap`` -- lenient on boundaries: a prediction is right when it overlaps a gold span of the
  same label. Matching is one-to-one and greedy (exact pairs first, then larger overlap first, then by
  offsets), so precision and recall count the same pairs and a long prediction cannot claim two gold spans.
* ``entities.span`` -- lenient on types: right span, any label (micro average only: it has no label).
* ``relations.strict`` -- end to end: both entity spans *and* their labels right, and the relation type
  right.
* ``relations.classification`` -- relation typing given gold entities: a relation is (head span, tail span,
  type), entity labels ignored, and only predictions whose two ends are both gold entity spans are scored
  (the others are counted as ``outside_gold_pairs``). With a model (``annotate evaluate MODEL DATA``) the
  relations scored here come from a second pass with the gold entities in ``doc.ents``
  (:func:`predict_given_gold`): classification proper. From a predictions file, they are the end-to-end
  predictions, and the view shows the relation step on the pairs the model found right.
* ``relations.crossre`` -- CrossRE's protocol (Bassignana and Plank, 2022): only the gold entity pairs that
  carry a relation are classified (:func:`crossre_counts`); the paper's headline is this view's macro-F1.
  Like the classification view it uses the predictions over gold entities when a model is evaluated.

Relation types the schema marks ``symmetric`` (MEETS) are compared without direction: a relation predicted
tail -> head counts as right. Duplicate entities or relations in one record (same key twice) count once;
how many were dropped is reported under ``duplicates``. A relation whose head or tail id names no entity
in its record is skipped and counted under ``dangling``.

Undefined ratios follow scikit-learn's ``zero_division=0``: precision is 0 for a label with no predictions,
recall 0 for a label with no gold. A label with neither gold nor predictions gets ``null`` scores and is
left out of the macro average (it would drag it to zero for a label nobody used); a label with predictions
but no gold stays in and scores 0. Micro averages pool the counts; macro averages are the unweighted mean
of the per-label scores (F1 macro is the mean of the per-label F1s, as scikit-learn computes it).

Confidence intervals: percentile bootstrap over documents (``n_boot`` resamples of the documents with
replacement, a seeded ``numpy`` generator, so the same seed gives the same interval). All views share the
same resamples, so intervals and paired differences are consistent. Comparing two runs
(:func:`annotate.bootstrap.compare`) uses the per-document counts stored in both JSON files and a paired
bootstrap over the documents they share: a difference whose interval contains 0 is noise at that level.

Confusion matrices (scikit-learn): entity labels over span-matched pairs (exact span, one-to-one, same
label first), with a ``none`` row for spurious predictions and a ``none`` column for missed gold; relation
types over gold entity pairs (the classification view), with ``none`` likewise. The none/none cell is not
counted (entity pairs that nobody related) and is always 0.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix

from .bootstrap import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_CI,
    DEFAULT_SEED,
    METRIC_KEYS,
    VIEWS,
    bootstrap_intervals,
    ordered_labels,
    resample_weights,
)
from .error_analysis import (
    ERROR_KINDS,
    RELATION_ERROR_KINDS,
    WORST_ERRORS,
    Span,
    _overlap_rank,
    _same_label_overlap,
    _same_span,
    entity_errors,
    greedy_pairs,
    overlapping,
    relation_errors,
    worst_errors,
)
from .errors import InputError
from .records import LabelledDoc
from .schema import Schema

log = logging.getLogger(__name__)

NONE = "none"
ANY_LABEL = "*"  # the one pseudo-label of the label-agnostic span view

Counts = dict[str, list[int]]  # label -> [tp, fp, fn]


# ----------------------------------------------------------------------------------------- arithmetic


def prf(tp: int, fp: int, fn: int) -> dict[str, Any]:
    """Precision, recall, F1 and support from counts; ``None`` scores when there is neither gold nor prediction."""
    out: dict[str, Any] = {"tp": tp, "fp": fp, "fn": fn, "support": tp + fn, "predicted": tp + fp}
    if tp + fp + fn == 0:
        out.update(precision=None, recall=None, f1=None)
        return out
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    out.update(precision=precision, recall=recall, f1=f1)
    return out


def score_counts(counts: Counts, labels: Sequence[str]) -> dict[str, Any]:
    """Per-label scores for ``labels`` (in that order), their micro and macro averages."""
    per_label = {label: prf(*counts.get(label, [0, 0, 0])) for label in labels}
    tp, fp, fn = (sum(counts.get(label, [0, 0, 0])[i] for label in labels) for i in range(3))
    micro = prf(tp, fp, fn)
    scored = [s for s in per_label.values() if s["f1"] is not None]
    macro: dict[str, Any] = {k: (sum(s[k] for s in scored) / len(scored) if scored else None) for k in METRIC_KEYS}
    macro["labels"] = len(scored)
    return {"per_label": per_label, "micro": micro, "macro": macro}


# ------------------------------------------------------------------------------------------ matching
# (greedy_pairs, overlapping and the span predicates are in error_analysis, which pairs errors the same way)


def all_pairs(gold: Iterable[Any], pred: Iterable[Any]) -> list[tuple[Any, Any]]:
    """Every (gold, predicted) combination: candidates for small sets."""
    pred = list(pred)
    return [(g, p) for g in gold for p in pred]


def _same_label_first(g: Span, p: Span) -> tuple:
    return (int(g[2] == p[2]),)


def overlap_pairs(gold: Iterable[Span], pred: Iterable[Span]) -> list[tuple[Span, Span]]:
    """Lenient one-to-one pairs: same label, overlapping spans, exact pairs first then larger overlap."""
    return greedy_pairs(overlapping(gold, pred), _same_label_overlap, _overlap_rank)


def span_pairs(gold: Iterable[Span], pred: Iterable[Span]) -> list[tuple[Span, Span]]:
    """One-to-one pairs with the same span, any label (same-label pairs first)."""
    return greedy_pairs(overlapping(gold, pred), _same_span, _same_label_first)


def pair_counts(
    gold: set[Any], pred: set[Any], pairs: Iterable[tuple[Any, Any]], label_of: Callable[[Any], str]
) -> Counts:
    """Per-label [tp, fp, fn] from matched pairs: a pair is a tp of its gold label, leftovers fp / fn."""
    counts: Counts = defaultdict(lambda: [0, 0, 0])
    matched_g: set[Any] = set()
    matched_p: set[Any] = set()
    for g, p in pairs:
        counts[label_of(g)][0] += 1
        matched_g.add(g)
        matched_p.add(p)
    for p in pred - matched_p:
        counts[label_of(p)][1] += 1
    for g in gold - matched_g:
        counts[label_of(g)][2] += 1
    return dict(counts)


def _label(item: tuple) -> str:
    return item[-1]


def _any(_: Any) -> str:
    return ANY_LABEL


def exact_counts(gold: set[Any], pred: set[Any]) -> Counts:
    """Per-label [tp, fp, fn] for keys whose last element is the label (spans or relation keys)."""
    return pair_counts(gold, pred, ((k, k) for k in gold & pred), _label)


# ------------------------------------------------------------------------------------- record -> keys


@dataclass
class DocKeys:
    """The comparable keys of one record, and what had to be dropped to build them."""

    spans: set[Span] = field(default_factory=set)
    relations: set[tuple] = field(default_factory=set)  # strict keys
    relations_by_span: set[tuple] = field(default_factory=set)  # classification keys
    duplicate_entities: int = 0
    duplicate_relations: int = 0
    dangling: int = 0


def _ordered(head: tuple, tail: tuple, label: str, symmetric: frozenset[str]) -> tuple:
    if label in symmetric and tail < head:
        head, tail = tail, head
    return (head, tail, label)


def doc_keys(doc: LabelledDoc, symmetric: frozenset[str] = frozenset()) -> DocKeys:
    """Entity spans, strict relation keys ((s, e, label), (s, e, label), type) and span-only relation keys."""
    out = DocKeys()
    for ent in doc.entities:
        key = (ent.start, ent.end, ent.label)
        if key in out.spans:
            out.duplicate_entities += 1
        out.spans.add(key)
    by_id = {ent.id: (ent.start, ent.end, ent.label) for ent in doc.entities}
    for rel in doc.relations:
        head, tail = by_id.get(rel.head), by_id.get(rel.tail)
        if head is None or tail is None:
            out.dangling += 1
            log.warning("document %r: relation %r points to a missing entity; skipped", doc.id, rel.id)
            continue
        key = _ordered(head, tail, rel.label, symmetric)
        if key in out.relations:
            out.duplicate_relations += 1
        out.relations.add(key)
        out.relations_by_span.add(_ordered(head[:2], tail[:2], rel.label, symmetric))
    return out


# --------------------------------------------------------------------------------- one document, scored


@dataclass
class DocScore:
    """Everything computed for one (gold, prediction) pair of records."""

    doc_id: str
    counts: dict[str, Counts]  # view -> label -> [tp, fp, fn]
    errors: list[dict[str, Any]]
    entity_pairs: list[tuple[str, str]]  # (gold label or none, predicted label or none)
    relation_pairs: list[tuple[str, str]]
    outside_gold_pairs: int
    duplicates: int
    dangling: int


def crossre_counts(gold: set[tuple], pred: set[tuple], symmetric: frozenset[str] = frozenset()) -> Counts:
    """CrossRE's protocol: classify every gold entity pair that carries a relation. For each gold (head, tail,
    type), the prediction on the same pair (either direction for symmetric types) is right when its type is
    the gold type; a wrong type is a miss of the gold type and a false positive of the predicted one; no
    prediction on the pair is a miss. Predictions on pairs without a gold relation are not scored."""
    by_pair: dict[tuple, list[str]] = defaultdict(list)
    for head, tail, label in pred:
        by_pair[(head, tail)].append(label)
        if label in symmetric:
            by_pair[(tail, head)].append(label)
    counts: Counts = defaultdict(lambda: [0, 0, 0])
    for head, tail, label in gold:
        guesses = by_pair.get((head, tail), [])
        if label in guesses:
            counts[label][0] += 1
            continue
        counts[label][2] += 1
        for other in sorted(set(guesses))[:1]:  # one prediction per pair, as a classifier gives
            counts[other][1] += 1
    return dict(counts)


def score_doc(
    gold: LabelledDoc,
    pred: LabelledDoc,
    symmetric: frozenset[str] = frozenset(),
    given_gold: LabelledDoc | None = None,
) -> DocScore:
    """Counts for every view, the error list and the confusion pairs of one document.

    ``given_gold``, when there is one, is the model's prediction made over the gold entities: the
    classification view and the relation confusion then score its relations instead of ``pred``'s.
    """
    g, p = doc_keys(gold, symmetric), doc_keys(pred, symmetric)
    c = p if given_gold is None else doc_keys(given_gold, symmetric)
    counts = {
        "entities.exact": exact_counts(g.spans, p.spans),
        "entities.overlap": pair_counts(g.spans, p.spans, overlap_pairs(g.spans, p.spans), _label),
        "entities.span": pair_counts(g.spans, p.spans, span_pairs(g.spans, p.spans), _any),
        "relations.strict": exact_counts(g.relations, p.relations),
    }
    gold_spans = {s[:2] for s in g.spans}
    scored = {k for k in c.relations_by_span if k[0] in gold_spans and k[1] in gold_spans}
    counts["relations.classification"] = exact_counts(g.relations_by_span, scored)
    counts["relations.crossre"] = crossre_counts(g.relations_by_span, c.relations_by_span, symmetric)
    errors = entity_errors(gold, g.spans, p.spans) + relation_errors(gold, g.relations, p.relations)
    return DocScore(
        doc_id=gold.id,
        counts=counts,
        errors=errors,
        entity_pairs=entity_confusion_pairs(g.spans, p.spans),
        relation_pairs=relation_confusion_pairs(g.relations_by_span, scored, symmetric),
        outside_gold_pairs=len(c.relations_by_span - scored),
        duplicates=p.duplicate_entities + p.duplicate_relations + g.duplicate_entities + g.duplicate_relations,
        dangling=g.dangling + p.dangling,
    )


def entity_confusion_pairs(gold: set[Span], pred: set[Span]) -> list[tuple[str, str]]:
    """(gold label, predicted label) for span-matched pairs, plus (label, none) and (none, label)."""
    pairs = span_pairs(gold, pred)
    out = [(g[2], p[2]) for g, p in pairs]
    out += [(g[2], NONE) for g in sorted(gold - {g for g, _ in pairs})]
    out += [(NONE, p[2]) for p in sorted(pred - {p for _, p in pairs})]
    return out


def relation_confusion_pairs(gold: set[tuple], pred: set[tuple], symmetric: frozenset[str]) -> list[tuple[str, str]]:
    """(gold type, predicted type) over entity pairs: same key first, then same pair with another type.

    A pair matches in either direction when one of the two types is symmetric; a non-symmetric type
    predicted backwards shows as (type, none) and (none, type).
    """

    def same_pair(g: tuple, q: tuple) -> bool:
        if g[:2] == q[:2]:
            return True
        return (g[2] in symmetric or q[2] in symmetric) and g[:2] == (q[1], q[0])

    pairs = greedy_pairs(all_pairs(gold, pred), same_pair, lambda g, q: (int(g == q),))
    out = [(g[2], q[2]) for g, q in pairs]
    out += [(g[2], NONE) for g in sorted(gold - {g for g, _ in pairs})]
    out += [(NONE, q[2]) for q in sorted(pred - {q for _, q in pairs})]
    return out


# ------------------------------------------------------------------------------------------ evaluate


def _index_gold(gold_docs: Iterable[LabelledDoc], source: str) -> dict[str, LabelledDoc]:
    out: dict[str, LabelledDoc] = {}
    for doc in gold_docs:
        if doc.id in out:
            raise InputError(
                f"gold record id {doc.id!r} appears twice (per-annotator records? run `annotate adjudicate` first)",
                path=source,
            )
        out[doc.id] = doc
    return out


def _view_labels(scores: Sequence[DocScore], schema: Schema | None) -> dict[str, list[str]]:
    seen: dict[str, set[str]] = defaultdict(set)
    for s in scores:
        for view, counts in s.counts.items():
            seen[view].update(counts)
    ent = ordered_labels(schema.entity_labels if schema else [], seen["entities.exact"] | seen["entities.overlap"])
    rel = ordered_labels(
        schema.relation_labels if schema else [],
        seen["relations.strict"] | seen["relations.classification"] | seen["relations.crossre"],
    )
    return {
        "entities.exact": ent,
        "entities.overlap": ent,
        "entities.span": [ANY_LABEL],
        "relations.strict": rel,
        "relations.classification": rel,
        "relations.crossre": rel,
    }


def _confusion(pairs: Sequence[tuple[str, str]], labels: Sequence[str]) -> dict[str, Any]:
    """Confusion matrix (rows gold, columns predicted) with scikit-learn; labels never seen are dropped."""
    used = [label for label in labels if any(label in pair for pair in pairs)] + [NONE]
    if pairs:
        matrix = confusion_matrix([g for g, _ in pairs], [p for _, p in pairs], labels=used).tolist()
    else:
        matrix = [[0] * len(used) for _ in used]
    return {"labels": used, "matrix": matrix}


def _count_array(scores: Sequence[DocScore], view: str, labels: Sequence[str]) -> np.ndarray:
    """Shape (documents, labels, 3): per-document [tp, fp, fn] for each label."""
    arr = np.zeros((len(scores), len(labels), 3), dtype=np.int64)
    index = {label: i for i, label in enumerate(labels)}
    for d, score in enumerate(scores):
        for label, c in score.counts[view].items():
            arr[d, index[label]] = c
    return arr


def evaluate(
    pred_docs: Iterable[LabelledDoc],
    gold_docs: Iterable[LabelledDoc],
    *,
    schema: Schema | None = None,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
    ci: float = DEFAULT_CI,
    worst: int = WORST_ERRORS,
    gold_source: str = "gold",
    given_gold: Iterable[LabelledDoc] | None = None,
) -> dict[str, Any]:
    """Score predictions against gold records (matched by id); return the metrics dict (see module doc).

    A gold document with no prediction is scored as an empty prediction (listed in ``missing_predictions``);
    a prediction with no gold record cannot be scored and is listed in ``unmatched_predictions``. A record
    pair whose texts differ raises :class:`InputError`: offsets into different texts cannot be compared.
    ``given_gold``: the model's predictions made over the gold entities (:func:`predict_given_gold`), used
    for the ``relations.classification`` view when given (``classification_source`` says which was used).
    """
    if not 0 < ci < 1:
        raise InputError(f"confidence level must be between 0 and 1, got {ci}")
    gold = _index_gold(gold_docs, gold_source)
    preds: dict[str, LabelledDoc] = {}
    for doc in pred_docs:
        if doc.id in preds:
            raise InputError(f"prediction record id {doc.id!r} appears twice")
        preds[doc.id] = doc
    if preds and gold and not set(preds) & set(gold):
        raise InputError(f"no predicted record id matches a gold record id (e.g. prediction {next(iter(preds))!r}, "
                         f"gold {next(iter(gold))!r}): are these predictions of the same documents?")
    symmetric = frozenset(r.name for r in schema.relations if r.symmetric) if schema else frozenset()
    over_gold = {doc.id: doc for doc in given_gold} if given_gold is not None else None
    scores, missing = [], []
    for doc_id, gdoc in gold.items():
        pdoc = preds.get(doc_id)
        if pdoc is None:
            missing.append(doc_id)
            pdoc = LabelledDoc(id=doc_id, text=gdoc.text)
        elif pdoc.text != gdoc.text:
            raise InputError(f"document {doc_id!r}: predicted and gold texts differ; offsets cannot be compared")
        cdoc = None if over_gold is None else over_gold.get(doc_id, LabelledDoc(id=doc_id, text=gdoc.text))
        scores.append(score_doc(gdoc, pdoc, symmetric, cdoc))
    result = summarise(
        scores,
        schema=schema,
        n_boot=n_boot,
        seed=seed,
        ci=ci,
        worst=worst,
        missing=missing,
        unmatched=sorted(set(preds) - set(gold)),
    )
    result["classification_source"] = (
        "predicted over gold entities" if over_gold is not None else "end-to-end predictions"
    )
    return result


def predict_given_gold(nlp: Any, gold_docs: Iterable[LabelledDoc]) -> Iterator[LabelledDoc]:
    """Run ``nlp`` on each gold record with the gold entities in ``doc.ents`` and every pipe that sets
    entities (``ner``, rulers: those whose meta says they assign ``doc.ents``) skipped, so that the relation
    component classifies gold entity pairs. Entities are aligned to tokens by :func:`docbin.doc_from_record`
    (expanded to token boundaries, overlaps resolved longest-first), as in training.
    """
    from .docbin import ENTITIES_KEY, RELATIONS_KEY, doc_from_record, record_from_doc

    skip = {name for name in nlp.pipe_names if "doc.ents" in nlp.get_pipe_meta(name).assigns}
    for record in gold_docs:
        doc, _ = doc_from_record(nlp, record)
        doc.user_data.pop(RELATIONS_KEY, None)  # the gold relations must not leak into the prediction
        doc.user_data.pop(ENTITIES_KEY, None)
        for name, pipe in nlp.pipeline:
            if name not in skip:
                doc = pipe(doc)
        yield record_from_doc(doc, doc_id=record.id, meta=record.meta, status="predicted")


def summarise(
    scores: Sequence[DocScore],
    *,
    schema: Schema | None,
    n_boot: int,
    seed: int,
    ci: float,
    worst: int = WORST_ERRORS,
    missing: Sequence[str] = (),
    unmatched: Sequence[str] = (),
) -> dict[str, Any]:
    """Aggregate document scores into the metrics dict: views, intervals, confusions, errors, per-doc counts."""
    labels = _view_labels(scores, schema)
    weights = resample_weights(len(scores), n_boot, seed)
    views: dict[str, Any] = {}
    per_doc: dict[str, Any] = {}
    for view in VIEWS:
        arr = _count_array(scores, view, labels[view])
        totals = {label: arr[:, i].sum(axis=0).tolist() for i, label in enumerate(labels[view])}
        views[view] = score_counts(totals, labels[view])
        views[view]["ci"] = bootstrap_intervals(arr, labels[view], weights, ci)
        per_doc[view] = {"labels": labels[view], "docs": {s.doc_id: arr[d].tolist() for d, s in enumerate(scores)}}
    kinds = Counter(err["kind"] for s in scores for err in s.errors)
    return {
        "documents": len(scores),
        "bootstrap": {"resamples": n_boot, "seed": seed, "confidence": ci},
        "views": views,
        "errors": {kind: kinds.get(kind, 0) for kind in ERROR_KINDS + RELATION_ERROR_KINDS},
        "confusion": {
            "entities": _confusion([p for s in scores for p in s.entity_pairs], labels["entities.exact"]),
            "relations": _confusion([p for s in scores for p in s.relation_pairs], labels["relations.strict"]),
        },
        "outside_gold_pairs": sum(s.outside_gold_pairs for s in scores),
        "duplicates": sum(s.duplicates for s in scores),
        "dangling": sum(s.dangling for s in scores),
        "missing_predictions": list(missing),
        "unmatched_predictions": list(unmatched),
        "worst_errors": worst_errors(scores, worst),
        "per_doc": per_doc,
        "_all_errors": [err for s in scores for err in s.errors],
    }

