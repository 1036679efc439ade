"""Inter-annotator agreement for entities and relations, from per-annotator records.

Input: the records a Doccano pull writes (``corpora/<name>/labelled.jsonl``): one :class:`LabelledDoc` per
document *per annotator*, with ``annotator`` set. Documents are matched by record id.

For each pair of annotators, over the documents **both** labelled (the count is reported; the others are
left out, since a document one of them never saw says nothing about agreement):

* span F1 per label, exact (same span and label) and lenient (overlapping spans, same label, matched
  one-to-one), computed as :mod:`annotate.evaluate` computes it with one annotator as "gold". F1 is
  symmetric, so the choice does not matter; ``a`` and ``b`` are how many spans each marked;
* relation F1 per type, strict (both entity spans and labels and the type) and by span, under the key
  ``relations.classification`` (entity labels ignored, only relations whose two ends both annotators
  marked as spans, so that relation agreement is not charged for entity disagreement); symmetric types
  are undirected;
* Cohen's kappa on token labels (scikit-learn). Tokens are ``\\w+`` runs and single other non-space
  characters (``re`` with Unicode ``\\w``), in code points. A token's label is the label of the longest
  entity that overlaps it (ties: the earliest, then the alphabetically first label), ``O`` if none. Per
  label, kappa is on the binary "token overlaps an entity of this label" decision.

Krippendorff's alpha (nominal, on the same token labels) over the documents labelled by more than two
annotators: each token is a unit, each annotator who labelled its document a coder. The ``krippendorff``
package computes it when it is installed; otherwise :func:`nominal_alpha`, written here from
Krippendorff's coincidence-matrix definition, does (the result says which).

Agreement that is undefined -- kappa or alpha when every token carries the same label for every
annotator, F1 when neither annotator marked the label -- is ``null``, never a made-up 1.0 or 0.0.
"""

from __future__ import annotations

import logging
import re
import warnings
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import cohen_kappa_score

from .errors import InputError
from .evaluate import (
    ANY_LABEL,
    VIEWS,
    doc_keys,
    exact_counts,
    ordered_labels,
    score_counts,
    score_doc,
)
from .records import LabelledDoc
from .schema import Schema

log = logging.getLogger(__name__)

TOKEN_RE = re.compile(r"\w+|[^\w\s]")
TOKENISATION = r"regex \w+|[^\w\s] (word runs and single punctuation characters), code points"
OUTSIDE = "O"
LABELLED_FILE = "labelled.jsonl"
CONFIRMED = "confirmed"
AGREEMENT_VIEWS = tuple(v for v in VIEWS if v != "entities.span")
SHARED_SPAN_VIEW = "relations.classification"  # same key as in evaluation; here restricted on both sides
MIN_CODERS_FOR_ALPHA = 3


def corpus_file(path: Path) -> Path:
    """A corpus folder means its ``labelled.jsonl``; a file is itself."""
    path = Path(path)
    if path.is_dir():
        path = path / LABELLED_FILE
        if not path.exists():
            raise InputError(
                f"no {LABELLED_FILE} in this corpus folder (run `annotate doccano pull` first)", path=path.parent
            )
    return path


# --------------------------------------------------------------------------------------------- tokens


def tokens(text: str) -> list[tuple[int, int]]:
    """(start, end) code-point offsets of the simple tokens of ``text`` (see module doc)."""
    return [m.span() for m in TOKEN_RE.finditer(text)]


def token_range(starts: Sequence[int], ends: Sequence[int], start: int, end: int) -> range:
    """Indices of the tokens (sorted, non-overlapping; given by their starts and ends) that overlap [start, end)."""
    return range(bisect_right(ends, start), bisect_left(starts, end))


def token_labels(doc: LabelledDoc, toks: Sequence[tuple[int, int]] | None = None) -> list[str]:
    """One label per token: the longest overlapping entity's label (ties: earliest, then alphabetical), else ``O``."""
    toks = tokens(doc.text) if toks is None else toks
    starts, ends = [s for s, _ in toks], [e for _, e in toks]
    out = [OUTSIDE] * len(toks)
    done = [False] * len(toks)
    for ent in sorted(doc.entities, key=lambda e: (-(e.end - e.start), e.start, e.label)):
        for i in token_range(starts, ends, ent.start, ent.end):
            if not done[i]:
                out[i], done[i] = ent.label, True
    return out


def token_flags(doc: LabelledDoc, labels: Sequence[str], toks: Sequence[tuple[int, int]]) -> dict[str, list[bool]]:
    """Per label, whether each token overlaps an entity of that label (nested entities included)."""
    starts, ends = [s for s, _ in toks], [e for _, e in toks]
    out = {label: [False] * len(toks) for label in labels}
    for ent in doc.entities:
        flags = out.get(ent.label)
        if flags is not None:
            for i in token_range(starts, ends, ent.start, ent.end):
                flags[i] = True
    return out


def kappa(a: Sequence[Any], b: Sequence[Any]) -> float | None:
    """Cohen's kappa (scikit-learn); ``None`` when undefined (no tokens, or one label everywhere for both)."""
    if not a or len(set(a) | set(b)) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(cohen_kappa_score(list(a), list(b)))
    return None if np.isnan(value) else value


# ------------------------------------------------------------------------------------------ alpha


def nominal_alpha(units: Iterable[Sequence[Any]]) -> float | None:
    """Krippendorff's alpha for nominal data; each unit lists the values its coders gave (missing left out).

    Coincidences: each unit with ``m >= 2`` values adds 1/(m-1) for every ordered pair of values from
    different coders. alpha = 1 - (n - 1) * sum_{c != k} o_ck / sum_{c != k} n_c n_k. ``None`` when the
    expected disagreement is zero (a single value in the whole data).
    """
    coincidence: dict[tuple[Any, Any], float] = defaultdict(float)
    for unit in units:
        m = len(unit)
        if m < 2:
            continue
        for i, c in enumerate(unit):
            for j, k in enumerate(unit):
                if i != j:
                    coincidence[(c, k)] += 1 / (m - 1)
    totals: dict[Any, float] = defaultdict(float)
    for (c, _), value in coincidence.items():
        totals[c] += value
    n = sum(totals.values())
    observed = sum(v for (c, k), v in coincidence.items() if c != k)
    expected = sum(totals[c] * totals[k] for c in totals for k in totals if c != k)
    if expected == 0:
        return None
    return 1 - (n - 1) * observed / expected


def alpha_implementation() -> str:
    """Which code computes alpha: the ``krippendorff`` package when importable, else our own."""
    try:
        import krippendorff  # noqa: F401
    except ImportError:
        return "annotate.agreement.nominal_alpha"
    return "krippendorff"


def reliability_alpha(matrix: np.ndarray) -> float | None:
    """Nominal alpha of a reliability matrix (coders x units of integer codes, NaN where missing).

    With the ``krippendorff`` package when it is installed, else :func:`nominal_alpha` over the matrix's
    columns. ``None`` when undefined (no units, or one value in the whole matrix).
    """
    present = matrix[~np.isnan(matrix)]
    if matrix.size == 0 or np.unique(present).size < 2:
        return None
    if alpha_implementation() != "krippendorff":
        return nominal_alpha([col[~np.isnan(col)].tolist() for col in matrix.T])
    import krippendorff

    return float(krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal"))


# ------------------------------------------------------------------------------------------- grouping


def confirmed(docs: Iterable[LabelledDoc], skipped: list[str]) -> Iterator[LabelledDoc]:
    """Only records with ``status == "confirmed"``; the ids of the others are appended to ``skipped``.

    Why: in Doccano an unconfirmed example may be one the annotator has not finished (or not opened), so
    counting it would charge disagreement for work not done yet.
    """
    for doc in docs:
        if doc.status == CONFIRMED:
            yield doc
        else:
            skipped.append(doc.id)


def group_by_document(docs: Iterable[LabelledDoc]) -> dict[str, dict[str, LabelledDoc]]:
    """``{doc_id: {annotator: record}}``; every record needs an annotator, once per document, same text."""
    out: dict[str, dict[str, LabelledDoc]] = defaultdict(dict)
    for doc in docs:
        if not doc.annotator:
            raise InputError(f"document {doc.id!r} has no annotator: agreement needs per-annotator records")
        versions = out[doc.id]
        if doc.annotator in versions:
            raise InputError(f"document {doc.id!r} appears twice for annotator {doc.annotator!r}")
        other = next(iter(versions.values()), None)
        if other is not None and other.text != doc.text:
            raise InputError(
                f"document {doc.id!r}: annotators {other.annotator!r} and {doc.annotator!r} labelled different texts"
            )
        versions[doc.annotator] = doc
    return dict(out)


# ---------------------------------------------------------------------------------------- agreement


def _f1_view(counts: dict[str, list[int]], labels: Sequence[str]) -> dict[str, Any]:
    """F1 per label with how many spans (or relations) each annotator marked and how many matched."""
    scored = score_counts(counts, labels)

    def entry(s: dict[str, Any]) -> dict[str, Any]:
        return {"f1": s["f1"], "matched": s["tp"], "a": s["support"], "b": s["predicted"]}

    return {
        "per_label": {label: entry(s) for label, s in scored["per_label"].items()},
        "micro": entry(scored["micro"]),
        "macro_f1": scored["macro"]["f1"],
    }


def _add(total: dict[str, list[int]], counts: dict[str, list[int]]) -> None:
    for label, c in counts.items():
        row = total.setdefault(label, [0, 0, 0])
        for i in range(3):
            row[i] += c[i]


def shared_span_relation_counts(
    da: LabelledDoc, db: LabelledDoc, symmetric: frozenset[str] = frozenset()
) -> dict[str, list[int]]:
    """Relation counts by span (entity labels ignored) over relations whose two ends both annotators marked.

    Restricting *both* sides keeps the measure symmetric (evaluation restricts only the prediction).
    """
    ka, kb = doc_keys(da, symmetric), doc_keys(db, symmetric)
    both = {s[:2] for s in ka.spans} & {s[:2] for s in kb.spans}

    def keep(keys: set[tuple]) -> set[tuple]:
        return {k for k in keys if k[0] in both and k[1] in both}

    return exact_counts(keep(ka.relations_by_span), keep(kb.relations_by_span))


def pair_agreement(
    a: str,
    b: str,
    grouped: dict[str, dict[str, LabelledDoc]],
    *,
    entity_labels: Sequence[str],
    relation_labels: Sequence[str],
    symmetric: frozenset[str] = frozenset(),
) -> tuple[dict[str, Any], dict[str, dict[str, list[int]]]]:
    """Agreement of annotators ``a`` and ``b`` over the documents both labelled; also the raw counts."""
    counts: dict[str, dict[str, list[int]]] = {view: {} for view in AGREEMENT_VIEWS}
    tok_a: list[str] = []
    tok_b: list[str] = []
    binary: dict[str, tuple[list[bool], list[bool]]] = {label: ([], []) for label in entity_labels}
    shared = sorted(doc_id for doc_id, versions in grouped.items() if a in versions and b in versions)
    for doc_id in shared:
        da, db = grouped[doc_id][a], grouped[doc_id][b]
        score = score_doc(da, db, symmetric)
        score.counts[SHARED_SPAN_VIEW] = shared_span_relation_counts(da, db, symmetric)
        for view in AGREEMENT_VIEWS:
            _add(counts[view], score.counts[view])
        toks = tokens(da.text)
        tok_a.extend(token_labels(da, toks))
        tok_b.extend(token_labels(db, toks))
        flags_a, flags_b = token_flags(da, entity_labels, toks), token_flags(db, entity_labels, toks)
        for label, (xa, xb) in binary.items():
            xa.extend(flags_a[label])
            xb.extend(flags_b[label])
    result: dict[str, Any] = {"annotators": [a, b], "documents": len(shared), "tokens": len(tok_a)}
    for view in AGREEMENT_VIEWS:
        labels = entity_labels if view.startswith("entities") else relation_labels
        result[view] = _f1_view(counts[view], labels)
    result["kappa"] = {
        "overall": kappa(tok_a, tok_b),
        "per_label": {label: kappa(xa, xb) for label, (xa, xb) in binary.items()},
    }
    return result, counts


def alpha_agreement(grouped: dict[str, dict[str, LabelledDoc]], entity_labels: Sequence[str]) -> dict[str, Any]:
    """Krippendorff's alpha on token labels over documents with more than two annotators.

    Units are the tokens of those documents; rows of the reliability matrix are all their annotators, NaN
    where an annotator did not label the document. Per label, the value is "token overlaps this label".
    """
    docs = {doc_id: v for doc_id, v in grouped.items() if len(v) >= MIN_CODERS_FOR_ALPHA}
    coders = sorted({name for versions in docs.values() for name in versions})
    row = {name: i for i, name in enumerate(coders)}
    code = {label: i for i, label in enumerate([OUTSIDE, *entity_labels])}
    blocks: list[np.ndarray] = []
    label_blocks: dict[str, list[np.ndarray]] = {label: [] for label in entity_labels}
    for doc_id in sorted(docs):
        versions = docs[doc_id]
        toks = tokens(next(iter(versions.values())).text)
        block = np.full((len(coders), len(toks)), np.nan)
        flags = {label: np.full((len(coders), len(toks)), np.nan) for label in entity_labels}
        for name, doc in versions.items():
            block[row[name]] = [code[label] for label in token_labels(doc, toks)]
            for label, values in token_flags(doc, entity_labels, toks).items():
                flags[label][row[name]] = values
        blocks.append(block)
        for label in entity_labels:
            label_blocks[label].append(flags[label])
    matrix = np.concatenate(blocks, axis=1) if blocks else np.zeros((0, 0))
    per_label = {
        label: reliability_alpha(np.concatenate(parts, axis=1)) if parts else None
        for label, parts in label_blocks.items()
    }
    return {
        "documents": len(docs),
        "annotators": coders,
        "units": int(matrix.shape[1]),
        "overall": reliability_alpha(matrix),
        "per_label": per_label,
        "implementation": alpha_implementation(),
    }


def agreement(
    docs: Iterable[LabelledDoc], *, schema: Schema | None = None, confirmed_only: bool = False
) -> dict[str, Any]:
    """Pairwise span F1, relation F1 and token kappa, pooled per-label F1, and alpha where > 2 annotators.

    With ``confirmed_only``, records whose status is not ``confirmed`` are left out (counted in
    ``skipped_unconfirmed``).
    """
    skipped: list[str] = []
    grouped = group_by_document(confirmed(docs, skipped) if confirmed_only else docs)
    symmetric = frozenset(r.name for r in schema.relations if r.symmetric) if schema else frozenset()
    seen_ents = {e.label for v in grouped.values() for d in v.values() for e in d.entities}
    seen_rels = {r.label for v in grouped.values() for d in v.values() for r in d.relations}
    entity_labels = ordered_labels(schema.entity_labels if schema else [], seen_ents)
    relation_labels = ordered_labels(schema.relation_labels if schema else [], seen_rels)
    annotators: dict[str, int] = defaultdict(int)
    for versions in grouped.values():
        for name in versions:
            annotators[name] += 1
    pairs, pooled = [], {view: {} for view in AGREEMENT_VIEWS}
    for a, b in combinations(sorted(annotators), 2):
        result, counts = pair_agreement(
            a, b, grouped, entity_labels=entity_labels, relation_labels=relation_labels, symmetric=symmetric
        )
        if result["documents"] == 0:
            log.info("annotators %s and %s share no document; pair skipped", a, b)
            continue
        pairs.append(result)
        for view in AGREEMENT_VIEWS:
            _add(pooled[view], counts[view])
    overall = {
        view: _f1_view(pooled[view], entity_labels if view.startswith("entities") else relation_labels)
        for view in AGREEMENT_VIEWS
    }
    return {
        "documents": len(grouped),
        "skipped_unconfirmed": len(skipped),
        "annotators": dict(sorted(annotators.items())),
        "documents_by_annotator_count": _by_count(grouped),
        "tokenisation": TOKENISATION,
        "pairs": pairs,
        "overall": overall,
        "alpha": alpha_agreement(grouped, entity_labels),
    }


def _by_count(grouped: dict[str, dict[str, LabelledDoc]]) -> dict[str, int]:
    counts: dict[int, int] = defaultdict(int)
    for versions in grouped.values():
        counts[len(versions)] += 1
    return {str(k): counts[k] for k in sorted(counts)}




# -------------------------------------------------------------------------------------------- tables


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


AGREEMENT_COLUMNS = ["annotators", "docs", "label", "F1 exact", "F1 lenient", "kappa", "a", "b"]


def agreement_rows(result: dict[str, Any]) -> list[list[str]]:
    """Per pair: one row per label either annotator used, then the micro (all labels) row."""
    rows = []
    for pair in result["pairs"]:
        names = " / ".join(pair["annotators"])
        exact, lenient, kap = pair["entities.exact"], pair["entities.overlap"], pair["kappa"]
        for label, s in exact["per_label"].items():
            if s["f1"] is None or label == ANY_LABEL:
                continue
            rows.append(
                [
                    names,
                    str(pair["documents"]),
                    label,
                    _fmt(s["f1"]),
                    _fmt(lenient["per_label"][label]["f1"]),
                    _fmt(kap["per_label"].get(label)),
                    str(s["a"]),
                    str(s["b"]),
                ]
            )
        m = exact["micro"]
        rows.append(
            [
                names,
                str(pair["documents"]),
                "all entities",
                _fmt(m["f1"]),
                _fmt(lenient["micro"]["f1"]),
                _fmt(kap["overall"]),
                str(m["a"]),
                str(m["b"]),
            ]
        )
        r = pair["relations.strict"]["micro"]
        rows.append(
            [
                names,
                str(pair["documents"]),
                "all relations",
                _fmt(r["f1"]),
                _fmt(pair["relations.classification"]["micro"]["f1"]),
                "",
                str(r["a"]),
                str(r["b"]),
            ]
        )
    alpha = result["alpha"]
    if alpha["documents"]:
        rows.append(
            [
                f"alpha ({len(alpha['annotators'])} annotators)",
                str(alpha["documents"]),
                "all tokens",
                "",
                "",
                _fmt(alpha["overall"]),
                "",
                "",
            ]
        )
    return rows
