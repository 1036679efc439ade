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

from collections.abc import Callable, Iterable
from typing import Any

from .bootstrap import VIEWS, compare, load_metrics, ordered_labels, resample_weights
from .error_analysis import context
from .errors import InputError
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
    "run_evaluate",
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


def run_evaluate(
    gold_docs: Iterable[Any], *, model: Any = None, pred_docs: Iterable[Any] | None = None, schema: Any = None,
    n_boot: int = 1000, seed: int = 0, gold_source: str = "gold", against: Any = None, out: Any = None,
    wrap: Callable[[Iterable[Any], str], Iterable[Any]] | None = None,
) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, str]]:
    """The ``annotate evaluate`` job. With ``model``: predict the gold documents end to end, and once more with
    the gold entities in place (for the classification and CrossRE views); otherwise score ``pred_docs``.
    Optionally compare with an earlier ``metrics.json`` (``against``) and write the outputs to ``out`` (all
    together). Returns ``(metrics, comparison, written paths)``."""
    from .predict import load_model, predict_docs
    from .reports import write_outputs

    if (model is None) == (pred_docs is None):
        raise InputError("give either a model to run or predicted records, not both or neither")
    step = wrap or (lambda items, _what: items)
    gold = list(gold_docs)
    given = None
    if model is not None:
        nlp = load_model(model)
        preds = list(step(predict_docs(nlp, gold), "predicting"))
        given = list(step(predict_given_gold(nlp, gold), "relations on gold entities"))
    else:
        preds = list(pred_docs)
    result = evaluate(preds, gold, schema=schema, n_boot=n_boot, seed=seed, gold_source=gold_source, given_gold=given)
    comparison = compare(result, load_metrics(against)) if against is not None else None
    written = write_outputs(result, out, comparison) if out is not None else {}
    return result, comparison, written
