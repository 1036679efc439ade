"""Confidence intervals and run comparison for ``annotate evaluate``: percentile bootstrap over documents.

:func:`bootstrap_intervals` takes per-document [tp, fp, fn] counts (shape documents x labels x 3) and the
resample weights of :func:`resample_weights` (``n_boot`` resamples of the documents with replacement, a
seeded ``numpy`` generator, so the same seed gives the same interval) and returns percentile intervals of
the per-label, micro and macro precision, recall and F1. :func:`annotate.metrics.summarise` draws one set
of weights and uses it for every view, so intervals and paired differences are consistent.

:func:`compare` sets two metrics dicts side by side (:func:`load_metrics` reads one from ``metrics.json``)
and resamples the documents both runs scored, from the per-document counts stored in both, for paired
intervals of the micro-F1 difference and ratio: a difference whose interval contains 0 is noise at that
level.

The view names (:data:`VIEWS`, described in :mod:`annotate.metrics`), the score keys and
:func:`ordered_labels` are defined here because :func:`compare` walks them; :mod:`annotate.metrics` imports
them from this module, which imports nothing from ``metrics``, so the two import without a cycle.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError

DEFAULT_BOOTSTRAP = 1000
DEFAULT_SEED = 0
DEFAULT_CI = 0.95
METRIC_KEYS = ("precision", "recall", "f1")
ENTITY_VIEWS = ("entities.exact", "entities.overlap", "entities.span")
RELATION_VIEWS = ("relations.strict", "relations.classification", "relations.crossre")
VIEWS = ENTITY_VIEWS + RELATION_VIEWS


def ordered_labels(schema_labels: Sequence[str], seen: Iterable[str]) -> list[str]:
    """Schema labels in schema order, then any other label seen in the data, sorted."""
    extra = sorted(set(seen) - set(schema_labels))
    return list(schema_labels) + extra


# ---------------------------------------------------------------------------------------- bootstrap


def _prf_arrays(sums: np.ndarray) -> dict[str, np.ndarray]:
    """Vectorised :func:`annotate.metrics.prf` over the last axis ([tp, fp, fn]); NaN where a label has no
    gold and no prediction."""
    tp, fp, fn = sums[..., 0].astype(float), sums[..., 1].astype(float), sums[..., 2].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    empty = (tp + fp + fn) == 0
    return {k: np.where(empty, np.nan, v) for k, v in zip(METRIC_KEYS, (precision, recall, f1), strict=True)}


def resample_weights(n_docs: int, n_boot: int, seed: int) -> np.ndarray:
    """Shape (n_boot, n_docs): how often each document is drawn in each resample (with replacement)."""
    rng = np.random.default_rng(seed)
    if n_docs == 0:
        return np.zeros((n_boot, 0), dtype=np.int64)
    return rng.multinomial(n_docs, np.full(n_docs, 1.0 / n_docs), size=n_boot)


def _interval(values: np.ndarray, ci: float, method: str = "linear") -> list[float] | None:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return None
    tail = (1 - ci) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail], method=method)
    return [float(low), float(high)]


def bootstrap_intervals(counts: np.ndarray, labels: Sequence[str], weights: np.ndarray, ci: float) -> dict[str, Any]:
    """Percentile intervals of per-label, micro and macro scores over document resamples."""
    if weights.shape[0] == 0 or counts.shape[0] == 0:
        return {}
    sums = np.einsum("bd,dlk->blk", weights, counts)  # (n_boot, labels, 3)
    per_label = _prf_arrays(sums)
    micro = _prf_arrays(sums.sum(axis=1))
    out: dict[str, Any] = {"per_label": {}, "micro": {}, "macro": {}}
    for i, label in enumerate(labels):
        out["per_label"][label] = {k: _interval(per_label[k][:, i], ci) for k in METRIC_KEYS}
    for k in METRIC_KEYS:
        out["micro"][k] = _interval(micro[k], ci)
        scored = per_label[k]
        with np.errstate(invalid="ignore"):
            present = (~np.isnan(scored)).sum(axis=1)
            macro = np.where(present > 0, np.nansum(scored, axis=1) / np.maximum(present, 1), np.nan)
        out["macro"][k] = _interval(macro, ci)
    return out


# ------------------------------------------------------------------------------------------- compare


def _micro_f1_from_sums(sums: np.ndarray) -> np.ndarray:
    """Micro F1 per resample from (n_boot, labels, 3) sums; NaN when a resample has nothing to score."""
    return _prf_arrays(sums.sum(axis=1))["f1"]


def _aligned_counts(per_doc: dict[str, Any], doc_ids: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    index = {label: i for i, label in enumerate(per_doc["labels"])}
    arr = np.zeros((len(doc_ids), len(labels), 3), dtype=np.int64)
    for d, doc_id in enumerate(doc_ids):
        row = per_doc["docs"][doc_id]
        for j, label in enumerate(labels):
            if label in index:
                arr[d, j] = row[index[label]]
    return arr


def compare(
    ours: dict[str, Any], theirs: dict[str, Any], *, n_boot: int | None = None, seed: int | None = None
) -> dict[str, Any]:
    """Side-by-side micro F1 and per-label F1 of two metrics dicts, with a paired bootstrap of the difference.

    The difference is ``ours - theirs`` and the ratio ``ours / theirs`` (``null`` when theirs is 0). Their
    intervals come from resampling the documents both runs scored (the same resample for both runs); without
    per-document counts in both dicts they are ``null``. ``noise`` is true when the difference's interval
    contains 0. Resamples where theirs scores 0 count as an infinite ratio (the upper bound may be ``inf``).
    """
    boot = ours.get("bootstrap", {})
    n_boot = n_boot if n_boot is not None else int(boot.get("resamples", DEFAULT_BOOTSTRAP))
    seed = seed if seed is not None else int(boot.get("seed", DEFAULT_SEED))
    ci = float(boot.get("confidence", DEFAULT_CI))
    out: dict[str, Any] = {"views": {}}
    for view in VIEWS:
        a, b = ours["views"].get(view), theirs.get("views", {}).get(view)
        if a is None or b is None:
            continue
        entry: dict[str, Any] = {
            "ours": a["micro"]["f1"],
            "theirs": b["micro"]["f1"],
            "delta": _delta(a["micro"]["f1"], b["micro"]["f1"]),
            "ratio": a["micro"]["f1"] / b["micro"]["f1"] if a["micro"]["f1"] is not None and b["micro"]["f1"] else None,
            "per_label": {
                label: {
                    "ours": a["per_label"].get(label, {}).get("f1"),
                    "theirs": b["per_label"].get(label, {}).get("f1"),
                    "delta": _delta(a["per_label"].get(label, {}).get("f1"), b["per_label"].get(label, {}).get("f1")),
                }
                for label in ordered_labels(list(a["per_label"]), b["per_label"])
            },
        }
        entry.update(
            _paired_delta(ours.get("per_doc", {}).get(view), theirs.get("per_doc", {}).get(view), n_boot, seed, ci)
        )
        out["views"][view] = entry
    return out


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _paired_delta(
    a: dict[str, Any] | None, b: dict[str, Any] | None, n_boot: int, seed: int, ci: float
) -> dict[str, Any]:
    empty = {"shared_documents": 0, "delta_ci": None, "ratio_ci": None, "noise": None}
    if not a or not b:
        return empty
    shared = sorted(set(a["docs"]) & set(b["docs"]))
    labels = ordered_labels(a["labels"], b["labels"])
    if not shared:
        return empty
    weights = resample_weights(len(shared), n_boot, seed)
    ours = _micro_f1_from_sums(np.einsum("bd,dlk->blk", weights, _aligned_counts(a, shared, labels)))
    theirs = _micro_f1_from_sums(np.einsum("bd,dlk->blk", weights, _aligned_counts(b, shared, labels)))
    interval = _interval(ours - theirs, ci)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(theirs > 0, ours / np.where(theirs > 0, theirs, 1.0), np.where(ours > 0, np.inf, np.nan))
    noise = None if interval is None else bool(interval[0] <= 0 <= interval[1])
    return {"shared_documents": len(shared), "delta_ci": interval, "ratio_ci": _interval(ratio, ci, "nearest"), "noise": noise}


def load_metrics(path: Path) -> dict[str, Any]:
    """Read a ``metrics.json`` written by :func:`annotate.reports.write_outputs` (for ``--against``)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise InputError(f"cannot read metrics file ({err.strerror or err})", path=path) from err
    except json.JSONDecodeError as err:
        raise InputError(f"not valid JSON ({err.msg})", path=path, line=err.lineno) from err
    if not isinstance(data, dict) or "views" not in data:
        raise InputError("not a metrics file written by `annotate evaluate` (no 'views')", path=path)
    return data
