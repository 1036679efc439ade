"""Corpus statistics: documents, tokens, entities and relations per label and per split, span lengths,
label co-occurrence and annotator progress.

Input: any record file (``records.py`` format): gold records, or per-annotator records as the Doccano pull
writes them. Counting rules, so that the numbers mean the same thing in every table:

* ``records`` counts lines; ``documents`` counts distinct record ids. ``tokens`` counts each distinct
  document once (its first record's text), with the simple tokeniser of :mod:`annotate.agreement`
  (``\\w+`` runs and single other non-space characters).
* ``entities`` and ``relations`` count every record's labels, so with per-annotator records a document
  labelled by three annotators contributes three times (adjudicate first for gold counts).
* The split is ``meta.split`` when present, else ``unsplit``. A document whose records disagree on the
  split is counted in the split of its first record.
* Span lengths per label, in characters and in tokens (tokens the span overlaps): min, max, mean, median.
* Co-occurrence: for each pair of entity labels, the number of records holding both (the diagonal is the
  number of records holding the label).
* Annotator progress: per annotator (``(none)`` when unset), records, records per status, entities,
  relations, and coverage (their records over all distinct documents).
"""

from __future__ import annotations

import statistics
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable
from itertools import combinations
from typing import Any

from .agreement import TOKENISATION, tokens
from .records import LabelledDoc
from .schema import Schema

UNSPLIT = "unsplit"
NO_ANNOTATOR = "(none)"
NO_STATUS = "(none)"


def _split(doc: LabelledDoc) -> str:
    return str(doc.meta.get("split") or UNSPLIT)


def span_tokens(starts: list[int], ends: list[int], start: int, end: int) -> int:
    """How many tokens (given sorted token starts and ends) overlap [start, end)."""
    return bisect_left(starts, end) - bisect_right(ends, start)


def _lengths(values: list[int]) -> dict[str, Any]:
    if not values:
        return {"count": 0, "min": None, "max": None, "mean": None, "median": None}
    return {
        "count": len(values),
        "min": min(values),
        "max": max(values),
        "mean": sum(values) / len(values),
        "median": float(statistics.median(values)),
    }


def _ordered_labels(schema: Schema | None, seen: Iterable[str], attr: str) -> list[str]:
    seen = set(seen)
    known = [label for label in (getattr(schema, attr) if schema else []) if label in seen]
    return known + sorted(seen - set(known))


def corpus_stats(docs: Iterable[LabelledDoc], *, schema: Schema | None = None) -> dict[str, Any]:
    """Statistics of a record stream (see module doc for what each number counts)."""
    splits: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"records": 0, "documents": 0, "tokens": 0, "entities": Counter(), "relations": Counter()}
    )
    doc_split: dict[str, str] = {}
    chars: dict[str, list[int]] = defaultdict(list)
    toks: dict[str, list[int]] = defaultdict(list)
    cooc: Counter[tuple[str, str]] = Counter()
    annotators: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"records": 0, "status": Counter(), "entities": 0, "relations": 0}
    )
    for doc in docs:
        first_record = doc.id not in doc_split
        split = doc_split.setdefault(doc.id, _split(doc))
        row = splits[split]
        row["records"] += 1
        token_spans = tokens(doc.text)
        if first_record:
            row["documents"] += 1
            row["tokens"] += len(token_spans)
        starts, ends = [s for s, _ in token_spans], [e for _, e in token_spans]
        for ent in doc.entities:
            row["entities"][ent.label] += 1
            chars[ent.label].append(ent.end - ent.start)
            toks[ent.label].append(span_tokens(starts, ends, ent.start, ent.end))
        for rel in doc.relations:
            row["relations"][rel.label] += 1
        labels = sorted({e.label for e in doc.entities})
        cooc.update((a, a) for a in labels)
        cooc.update(combinations(labels, 2))
        person = annotators[doc.annotator or NO_ANNOTATOR]
        person["records"] += 1
        person["status"][doc.status or NO_STATUS] += 1
        person["entities"] += len(doc.entities)
        person["relations"] += len(doc.relations)
    return _summary(splits=splits, chars=chars, toks=toks, cooc=cooc, annotators=annotators, schema=schema)


def _summary(
    *,
    splits: dict[str, dict[str, Any]],
    chars: dict[str, list[int]],
    toks: dict[str, list[int]],
    cooc: Counter[tuple[str, str]],
    annotators: dict[str, dict[str, Any]],
    schema: Schema | None,
) -> dict[str, Any]:
    ent_labels = _ordered_labels(schema, {lab for s in splits.values() for lab in s["entities"]}, "entity_labels")
    rel_labels = _ordered_labels(schema, {lab for s in splits.values() for lab in s["relations"]}, "relation_labels")
    split_rows = {
        name: {
            "records": s["records"],
            "documents": s["documents"],
            "tokens": s["tokens"],
            "entities": sum(s["entities"].values()),
            "relations": sum(s["relations"].values()),
            "entities_per_label": {label: s["entities"][label] for label in ent_labels},
            "relations_per_label": {label: s["relations"][label] for label in rel_labels},
        }
        for name, s in sorted(splits.items())
    }
    total = {
        key: sum(s[key] for s in split_rows.values())
        for key in ("records", "documents", "tokens", "entities", "relations")
    }
    return {
        **total,
        "tokenisation": TOKENISATION,
        "entities_per_label": {
            label: sum(s["entities_per_label"][label] for s in split_rows.values()) for label in ent_labels
        },
        "relations_per_label": {
            label: sum(s["relations_per_label"][label] for s in split_rows.values()) for label in rel_labels
        },
        "splits": split_rows,
        "span_length_chars": {label: _lengths(chars[label]) for label in ent_labels},
        "span_length_tokens": {label: _lengths(toks[label]) for label in ent_labels},
        "cooccurrence": {a: {b: cooc[tuple(sorted((a, b)))] for b in ent_labels} for a in ent_labels},
        "annotators": {
            name: {
                "records": p["records"],
                "status": dict(sorted(p["status"].items())),
                "entities": p["entities"],
                "relations": p["relations"],
                "coverage": p["records"] / total["documents"] if total["documents"] else None,
            }
            for name, p in sorted(annotators.items())
        },
    }




# -------------------------------------------------------------------------------------------- tables

STATS_COLUMNS = ["section", "name", "records", "documents", "tokens", "entities", "relations", "median tokens"]


def stats_rows(result: dict[str, Any]) -> list[list[str]]:
    """Rows for the terminal table: totals, splits, labels (with median span length in tokens), annotators."""
    keys = ("records", "documents", "tokens", "entities", "relations")
    rows = [["total", "all"] + [str(result[k]) for k in keys] + [""]]
    rows += [["split", name] + [str(s[k]) for k in keys] + [""] for name, s in result["splits"].items()]
    for label, n in result["entities_per_label"].items():
        median = result["span_length_tokens"][label]["median"]
        rows.append(["entity", label, "", "", "", str(n), "", f"{median:g}"])
    rows += [["relation", label, "", "", "", "", str(n), ""] for label, n in result["relations_per_label"].items()]
    for name, p in result["annotators"].items():
        status = ", ".join(f"{k} {v}" for k, v in p["status"].items())
        rows.append(
            ["annotator", f"{name} ({status})", str(p["records"]), "", "", str(p["entities"]), str(p["relations"]), ""]
        )
    return rows
