"""Error analysis for ``annotate evaluate``: what each wrong entity or relation was, in its context.

:func:`entity_errors` classifies every entity a document got wrong (``wrong_label``, ``boundary``,
``boundary_and_label``, ``missed``, ``spurious``; each span in at most one error), :func:`relation_errors`
the strict-view relation errors (``missed_relation``, ``spurious_relation``), each with the text around it
(:func:`context`); :func:`worst_errors` picks the errors listed in the report. The scoring that calls them
is in :mod:`annotate.metrics`.

The one-to-one span pairing (:func:`greedy_pairs` over :func:`overlapping` candidates) is defined here
too: the lenient views in :mod:`annotate.metrics` use the same pairing and import it from this module, so
that this module needs nothing from ``metrics`` and the two import without a cycle.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .records import LabelledDoc

if TYPE_CHECKING:  # annotations only: metrics imports this module
    from .metrics import DocScore

CONTEXT_CHARS = 40
WORST_ERRORS = 25
ERROR_KINDS = ("wrong_label", "boundary", "boundary_and_label", "missed", "spurious")
RELATION_ERROR_KINDS = ("missed_relation", "spurious_relation")

Span = tuple[int, int, str]  # start, end, label


# ------------------------------------------------------------------------------------ span pairing


def greedy_pairs(
    candidates: Iterable[tuple[Any, Any]],
    ok: Callable[[Any, Any], bool],
    rank: Callable[[Any, Any], tuple],
) -> list[tuple[Any, Any]]:
    """One-to-one (gold, predicted) pairs among ``candidates`` that ``ok`` accepts, best ``rank`` first.

    Greedy rather than a maximum matching: deterministic (ties broken by the items themselves) and easy to
    explain. Exact pairs always rank first, so only chains of partial overlaps (one prediction overlapping
    two gold spans, one of which another prediction also overlaps) can pair fewer items than possible.
    """
    ranked = [(rank(g, p), g, p) for g, p in candidates if ok(g, p)]
    ranked.sort(key=lambda c: (tuple(-x for x in c[0]), c[1], c[2]))
    used_g: set[Any] = set()
    used_p: set[Any] = set()
    pairs: list[tuple[Any, Any]] = []
    for _, g, p in ranked:
        if g not in used_g and p not in used_p:
            used_g.add(g)
            used_p.add(p)
            pairs.append((g, p))
    return pairs


def overlapping(gold: Iterable[Span], pred: Iterable[Span]) -> list[tuple[Span, Span]]:
    """(gold, predicted) spans that share at least one character, by bisecting predictions sorted by start.

    Linear-ish instead of quadratic: only predictions starting within the longest prediction's length
    before the gold span (and before its end) are looked at.
    """
    preds = sorted(pred)
    starts = [p[0] for p in preds]
    longest = max((p[1] - p[0] for p in preds), default=0)
    out = []
    for g in gold:
        for p in preds[bisect_left(starts, g[0] - longest) : bisect_left(starts, g[1])]:
            if p[1] > g[0]:
                out.append((g, p))
    return out


def overlap(a: Span, b: Span) -> int:
    """Number of characters two spans share (0 when they do not overlap)."""
    return max(0, min(a[1], b[1]) - max(a[0], b[0]))


def _same_label_overlap(g: Span, p: Span) -> bool:
    return g[2] == p[2] and overlap(g, p) > 0


def _overlap_rank(g: Span, p: Span) -> tuple:
    return (int(g == p), overlap(g, p))


def _same_span(g: Span, p: Span) -> bool:
    return g[:2] == p[:2]


# ------------------------------------------------------------------------------------------- errors


def context(text: str, start: int, end: int, width: int = CONTEXT_CHARS) -> str:
    """``…left [[span]] right…`` on one line, ``width`` characters either side."""
    left = text[max(0, start - width) : start]
    right = text[end : end + width]
    pre = "…" if start - width > 0 else ""
    post = "…" if end + width < len(text) else ""
    return " ".join(f"{pre}{left}[[{text[start:end]}]]{right}{post}".split())


def _span_dict(text: str, span: Span | None) -> dict[str, Any] | None:
    if span is None:
        return None
    return {"start": span[0], "end": span[1], "label": span[2], "text": text[span[0] : span[1]]}


def _error(doc: LabelledDoc, kind: str, gold: Span | None, pred: Span | None) -> dict[str, Any]:
    spans = [s for s in (gold, pred) if s is not None]
    start, end = min(s[0] for s in spans), max(s[1] for s in spans)
    return {
        "doc_id": doc.id,
        "kind": kind,
        "gold": _span_dict(doc.text, gold),
        "pred": _span_dict(doc.text, pred),
        "context": context(doc.text, start, end),
    }


def entity_errors(doc: LabelledDoc, gold: set[Span], pred: set[Span]) -> list[dict[str, Any]]:
    """Every entity error, each span in at most one: after exact matches are removed, in this order,

    ``wrong_label`` (same span, other label), ``boundary`` (overlap, same label), ``boundary_and_label``
    (overlap, other label), then ``missed`` gold and ``spurious`` predictions.
    """
    gold_left, pred_left = set(gold - pred), set(pred - gold)
    steps: list[tuple[str, Callable[[Span, Span], bool], Callable[[Span, Span], tuple]]] = [
        ("wrong_label", _same_span, lambda g, p: (0,)),
        ("boundary", _same_label_overlap, _overlap_rank),
        ("boundary_and_label", lambda g, p: overlap(g, p) > 0, _overlap_rank),
    ]
    errors: list[dict[str, Any]] = []
    for kind, ok, rank in steps:
        for g, p in greedy_pairs(overlapping(gold_left, pred_left), ok, rank):
            gold_left.discard(g)
            pred_left.discard(p)
            errors.append(_error(doc, kind, g, p))
    errors += [_error(doc, "missed", g, None) for g in sorted(gold_left)]
    errors += [_error(doc, "spurious", None, p) for p in sorted(pred_left)]
    errors.sort(key=lambda e: ((e["gold"] or e["pred"])["start"], e["kind"]))
    return errors


def relation_errors(doc: LabelledDoc, gold: set[tuple], pred: set[tuple]) -> list[dict[str, Any]]:
    """Strict-view relation errors: gold relations not predicted, predicted relations not in gold."""
    out = []
    for kind, keys in (("missed_relation", gold - pred), ("spurious_relation", pred - gold)):
        for head, tail, label in sorted(keys):
            start, end = min(head[0], tail[0]), max(head[1], tail[1])
            out.append(
                {
                    "doc_id": doc.id,
                    "kind": kind,
                    "relation": label,
                    "head": _span_dict(doc.text, head),
                    "tail": _span_dict(doc.text, tail),
                    "context": context(doc.text, start, end),
                }
            )
    return out


def worst_errors(scores: Sequence[DocScore], limit: int = WORST_ERRORS) -> list[dict[str, Any]]:
    """Errors of the documents with the most errors first (ties by id), at most ``limit``."""
    ranked = sorted(scores, key=lambda s: (-len(s.errors), s.doc_id))
    return [err for s in ranked for err in s.errors][:limit]
