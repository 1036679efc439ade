"""Merge several annotators' records of a document into one gold record, and list what they disagreed on.

Input: per-annotator records (one :class:`LabelledDoc` per document per annotator, ``annotator`` set), as
the Doccano pull writes them. Output: one record per document with ``annotator = "adjudicated"`` and
``status = "confirmed"``, plus a review list (JSONL, one disputed item per line).

Strategies:

* ``majority`` -- an entity (start, end, label) is kept when more than half of the annotators who labelled
  the document marked it. **Tie-break** (exactly half, e.g. one of two): the item is kept if and only if the
  highest-priority annotator of that document marked it. Priority is the ``prefer`` order given by the
  user, then the other annotators alphabetically; so a tie always resolves towards one annotator's own
  consistent version, never to a mix. A relation (both entity spans and labels, and the type; symmetric
  types undirected) is voted the same way and kept only if both its entities were kept.
* ``annotator`` -- the named annotator's version wins outright; documents that annotator did not label
  fall back to ``majority`` (counted under ``fallback``).

An item is *disputed* when not every annotator of the document marked it; every disputed item goes to the
review list with who marked it, who did not, and the decision. Documents with one annotator are copied
(they count under ``single_annotator``) and have nothing to review. Entity and relation attributes are
taken from the highest-priority annotator who marked the item. Ids are renumbered ``e1..``, ``r1..`` in
text order.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .agreement import confirmed, group_by_document
from .errors import InputError, OutputError
from .evaluate import context
from .records import Entity, LabelledDoc, OutputSet, Relation, refuse_fewer, write_jsonl
from .schema import Schema
from .tasks import to_task

log = logging.getLogger(__name__)

ADJUDICATED = "adjudicated"
CONFIRMED = "confirmed"
STRATEGIES = ("majority", "annotator")
REVIEW_META_KEY = "review"

Span = tuple[int, int, str]


@dataclass
class Adjudication:
    """The merged gold records, the disputed items, and counts for the summary."""

    docs: list[LabelledDoc] = field(default_factory=list)
    review: list[dict[str, Any]] = field(default_factory=list)
    fallback: int = 0
    single_annotator: int = 0
    skipped: list[str] = field(default_factory=list)  # ids of records left out as unconfirmed

    def summary(self) -> dict[str, Any]:
        kept = sum(1 for item in self.review if item["decision"] == "kept")
        return {
            "documents": len(self.docs),
            "documents_with_disputes": len({item["doc_id"] for item in self.review}),
            "single_annotator": self.single_annotator,
            "skipped_unconfirmed": len(self.skipped),
            "fallback_to_majority": self.fallback,
            "entities": sum(len(d.entities) for d in self.docs),
            "relations": sum(len(d.relations) for d in self.docs),
            "disputed": len(self.review),
            "disputed_kept": kept,
            "disputed_dropped": len(self.review) - kept,
        }


def priority(annotators: Iterable[str], prefer: Sequence[str] = ()) -> list[str]:
    """Annotators in tie-break order: the ``prefer`` list first (in its order), then the rest alphabetically."""
    names = set(annotators)
    return [n for n in prefer if n in names] + sorted(names - set(prefer))


def _relation_key(rel: Relation, spans: dict[str, Span], symmetric: frozenset[str]) -> tuple | None:
    head, tail = spans.get(rel.head), spans.get(rel.tail)
    if head is None or tail is None:
        return None
    if rel.label in symmetric and tail < head:
        head, tail = tail, head
    return (head, tail, rel.label)


def _votes(
    versions: dict[str, LabelledDoc], order: Sequence[str], symmetric: frozenset[str]
) -> tuple[dict, dict, dict]:
    """Who marked each entity key and each relation key, and the attributes from the first of them."""
    ent_votes: dict[Span, list[str]] = {}
    rel_votes: dict[tuple, list[str]] = {}
    attrs: dict[Any, dict[str, Any]] = {}
    for name in order:
        doc = versions[name]
        spans = {e.id: (e.start, e.end, e.label) for e in doc.entities}
        for ent in doc.entities:
            key = spans[ent.id]
            voters = ent_votes.setdefault(key, [])
            if name not in voters:
                voters.append(name)
            attrs.setdefault(key, ent.attrs)
        for rel in doc.relations:
            key = _relation_key(rel, spans, symmetric)
            if key is None:
                log.warning(
                    "document %r, annotator %r: relation %r points to a missing entity; ignored", doc.id, name, rel.id
                )
                continue
            voters = rel_votes.setdefault(key, [])
            if name not in voters:
                voters.append(name)
            attrs.setdefault(key, rel.attrs)
    return ent_votes, rel_votes, attrs


def _decide(voters: Sequence[str], order: Sequence[str]) -> tuple[bool, str]:
    """Majority with the tie going to the first annotator in ``order``; returns (keep, reason)."""
    n, k = len(order), len(voters)
    if 2 * k > n:
        return True, f"majority {k}/{n}"
    if 2 * k == n:
        keep = order[0] in voters
        return keep, f"tie {k}/{n}, {order[0]} decides"
    return False, f"minority {k}/{n}"


def adjudicate_doc(
    versions: dict[str, LabelledDoc],
    *,
    winner: str | None = None,
    prefer: Sequence[str] = (),
    symmetric: frozenset[str] = frozenset(),
) -> tuple[LabelledDoc, list[dict[str, Any]]]:
    """One gold record from one document's versions, and its disputed items (see module doc)."""
    order = priority(versions, prefer)
    first = versions[order[0]]
    ent_votes, rel_votes, attrs = _votes(versions, order, symmetric)

    def decide(voters: list[str]) -> tuple[bool, str]:
        if winner is not None:
            return winner in voters, f"{winner} wins"
        return _decide(voters, order)

    kept_spans = {key for key, voters in ent_votes.items() if decide(voters)[0]}
    review = []
    for key, voters in sorted(ent_votes.items()):
        if len(voters) < len(order):
            keep, reason = decide(voters)
            review.append(_entity_item(first, key, voters, order, keep=keep, reason=reason))
    kept_rels = set()
    for key, voters in sorted(rel_votes.items()):
        keep, reason = decide(voters)
        # A guard: under both rules a kept relation's voters also voted for its two entities, which are
        # then kept too; should the rules change, a relation never outlives its ends.
        if keep and not (key[0] in kept_spans and key[1] in kept_spans):
            keep, reason = False, f"{reason}; an entity it links was dropped"
        if keep:
            kept_rels.add(key)
        if len(voters) < len(order) or reason.endswith("dropped"):
            review.append(_relation_item(first, key, voters, order, keep=keep, reason=reason))
    gold = _build(first, kept_spans, kept_rels, attrs, order)
    return gold, review


def _build(
    first: LabelledDoc, spans: set[Span], rels: set[tuple], attrs: dict[Any, dict[str, Any]], order: Sequence[str]
) -> LabelledDoc:
    ids = {key: f"e{i}" for i, key in enumerate(sorted(spans), start=1)}
    entities = [
        Entity(id=ids[k], start=k[0], end=k[1], label=k[2], attrs=dict(attrs.get(k) or {})) for k in sorted(spans)
    ]
    relations = [
        Relation(id=f"r{i}", head=ids[k[0]], tail=ids[k[1]], label=k[2], attrs=dict(attrs.get(k) or {}))
        for i, k in enumerate(sorted(rels), start=1)
    ]
    meta = dict(first.meta)
    meta["adjudicated_from"] = list(order)
    return LabelledDoc(
        id=first.id,
        text=first.text,
        meta=meta,
        entities=entities,
        relations=relations,
        annotator=ADJUDICATED,
        status=CONFIRMED,
    )


def _vote(doc: LabelledDoc, start: int, end: int, voters: Sequence[str], order: Sequence[str], *, keep: bool,
          reason: str) -> dict[str, Any]:
    """The fields every review item has: who marked it, the decision and why, the text around it."""
    return {
        "marked_by": list(voters),
        "not_marked_by": [n for n in order if n not in voters],
        "decision": "kept" if keep else "dropped",
        "reason": reason,
        "context": context(doc.text, start, end),
    }


def _entity_item(
    doc: LabelledDoc, key: Span, voters: Sequence[str], order: Sequence[str], *, keep: bool, reason: str
) -> dict[str, Any]:
    start, end, label = key
    return {
        "doc_id": doc.id, "kind": "entity", "label": label, "start": start, "end": end, "text": doc.text[start:end],
        **_vote(doc, start, end, voters, order, keep=keep, reason=reason),
    }


def _relation_item(
    doc: LabelledDoc, key: tuple, voters: Sequence[str], order: Sequence[str], *, keep: bool, reason: str
) -> dict[str, Any]:
    head, tail, label = key
    start, end = min(head[0], tail[0]), max(head[1], tail[1])
    return {
        "doc_id": doc.id, "kind": "relation", "label": label,
        "head": {"start": head[0], "end": head[1], "label": head[2], "text": doc.text[head[0] : head[1]]},
        "tail": {"start": tail[0], "end": tail[1], "label": tail[2], "text": doc.text[tail[0] : tail[1]]},
        **_vote(doc, start, end, voters, order, keep=keep, reason=reason),
    }


def adjudicate(
    docs: Iterable[LabelledDoc],
    *,
    strategy: str = "majority",
    annotator: str | None = None,
    prefer: Sequence[str] = (),
    schema: Schema | None = None,
    confirmed_only: bool = False,
) -> Adjudication:
    """Merge per-annotator records into one gold record per document (in first-seen document order).

    With ``confirmed_only``, records whose status is not ``confirmed`` take no part (``skipped_unconfirmed``).
    """
    if strategy not in STRATEGIES:
        raise InputError(f"unknown adjudication strategy {strategy!r} (expected one of {', '.join(STRATEGIES)})")
    if strategy == "annotator" and not annotator:
        raise InputError("strategy 'annotator' needs the name of the annotator whose version wins (--annotator)")
    out = Adjudication()
    grouped = group_by_document(confirmed(docs, out.skipped) if confirmed_only else docs)
    if strategy == "annotator" and not any(annotator in v for v in grouped.values()):
        known = sorted({n for v in grouped.values() for n in v})
        raise InputError(f"annotator {annotator!r} labelled no document (annotators: {', '.join(known) or 'none'})")
    symmetric = frozenset(r.name for r in schema.relations if r.symmetric) if schema else frozenset()
    for versions in grouped.values():
        winner = annotator if strategy == "annotator" and annotator in versions else None
        if strategy == "annotator" and winner is None:
            out.fallback += 1
        if len(versions) == 1:
            out.single_annotator += 1
        gold, review = adjudicate_doc(versions, winner=winner, prefer=prefer, symmetric=symmetric)
        out.docs.append(gold)
        out.review.extend(review)
    return out


def review_tasks(result: Adjudication) -> list[dict[str, Any]]:
    """Doccano import rows for the documents with disputes: the merged version as suggestions, the
    disputes as one line each in ``meta.review`` (the reviewer sees them beside the text)."""
    notes: dict[str, list[str]] = {}
    for item in result.review:
        notes.setdefault(item["doc_id"], []).append(_note(item))
    rows = []
    for doc in result.docs:
        if doc.id in notes:
            task_doc = LabelledDoc(
                id=doc.id,
                text=doc.text,
                meta={**doc.meta, REVIEW_META_KEY: notes[doc.id]},
                entities=doc.entities,
                relations=doc.relations,
            )
            rows.append(to_task(task_doc))
    return rows


def _note(item: dict[str, Any]) -> str:
    who = f"marked by {', '.join(item['marked_by'])}; not by {', '.join(item['not_marked_by']) or 'nobody'}"
    if item["kind"] == "entity":
        what = f"{item['label']} {item['text']!r} [{item['start']}:{item['end']}]"
    else:
        what = f"{item['label']}({item['head']['text']!r} -> {item['tail']['text']!r})"
    return f"{what} {item['decision']} ({item['reason']}): {who}"


def run_adjudicate(
    docs: Iterable[LabelledDoc], out: Path | str, *, source: Path | str, review: Path | str | None = None,
    review_tasks_path: Path | str | None = None, force: bool = False, **options: Any,
) -> dict[str, Any]:
    """The ``annotate adjudicate`` job: merge, then write the gold, the review list and (optionally) review tasks
    together, or none of them. Refuses to overwrite the per-annotator ``source`` it reads, and to replace an
    earlier gold file holding more documents unless ``force``. ``options`` go to :func:`adjudicate`."""
    out = Path(out)
    if out.resolve() == Path(source).resolve():
        raise OutputError(f"{out}: refusing to overwrite the per-annotator records it reads; choose another --out")
    review = Path(review) if review is not None else out.with_name(out.stem + ".review.jsonl")
    result = adjudicate(docs, **options)
    if not result.docs:
        raise InputError(f"{source}: no records to adjudicate: nothing written")
    refuse_fewer(out, len(result.docs), force=force, what="gold documents")
    summary = {"out": str(out), "review": str(review), **result.summary()}
    with OutputSet() as outputs:
        write_jsonl(outputs.path(out), result.docs)
        write_jsonl(outputs.path(review), result.review)
        if review_tasks_path is not None:
            summary["review_tasks"] = str(review_tasks_path)
            summary["review_task_count"] = write_jsonl(outputs.path(review_tasks_path), review_tasks(result), ensure_ascii=True)
    return summary
