"""``annotate evaluate``'s public names, kept importable from here; the code lives in three modules:

* :mod:`annotate.metrics` -- counting and scoring: the views and their matching rules (described in its
  module docstring), :func:`~annotate.metrics.prf`, :func:`~annotate.metrics.score_counts`,
  :func:`~annotate.metrics.doc_keys`, :func:`~annotate.metrics.score_doc`, the confusion matrices,
  :func:`~annotate.metrics.evaluate`, :func:`~annotate.metrics.summarise` and
  :func:`~annotate.metrics.predict_given_gold`;
* :mod:`annotate.error_analysis` -- the error list of each document (:func:`~annotate.error_analysis.context`,
  ``entity_errors``, ``relation_errors``, ``worst_errors``) and the one-to-one span pairing the lenient views
  share with it;
* :mod:`annotate.bootstrap` -- percentile bootstrap intervals over documents
  (:func:`~annotate.bootstrap.resample_weights`, ``bootstrap_intervals``), the paired comparison of two runs
  (:func:`~annotate.bootstrap.compare`), :func:`~annotate.bootstrap.load_metrics`, and the view names.

``metrics`` imports ``error_analysis`` and ``bootstrap``, which import nothing from it at run time. This
module only re-exports; new code may import from the modules above directly.
"""

from __future__ import annotations

from .bootstrap import VIEWS, compare, load_metrics, ordered_labels, resample_weights
from .error_analysis import context
from .metrics import (
    ANY_LABEL,
    doc_keys,
    evaluate,
    exact_counts,
    overlap_pairs,
    predict_given_gold,
    prf,
    score_counts,
    score_doc,
)

__all__ = [
    "ANY_LABEL",
    "VIEWS",
    "compare",
    "context",
    "doc_keys",
    "evaluate",
    "exact_counts",
    "load_metrics",
    "ordered_labels",
    "overlap_pairs",
    "predict_given_gold",
    "prf",
    "resample_weights",
    "score_counts",
    "score_doc",
]
