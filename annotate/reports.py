"""Presentation of the metrics computed by ``evaluate.py``: table rows, the Markdown report and the plots.

Renders a metrics dict (:func:`annotate.evaluate.evaluate`) and a comparison (:func:`annotate.evaluate.compare`)
as table rows (:func:`view_rows`, :func:`compare_rows`, with :data:`VIEW_COLUMNS` and :data:`COMPARE_COLUMNS`,
shown by the CLI), a Markdown report (:func:`markdown_report`) and matplotlib plots (confusion-matrix heatmaps,
per-label F1 bars with bootstrap intervals). :func:`write_outputs` writes the ``--out`` folder of
``annotate evaluate``:

* ``metrics.json`` -- the metrics dict without internal keys (:func:`public`), plus ``comparison`` when given;
* ``report.md`` -- the Markdown report, linking the plots;
* ``errors.jsonl`` -- every entity and relation error, one per line;
* ``confusion_entities.png``, ``confusion_relations.png``, ``f1_entities.png``, ``f1_relations.png``.

Nothing here computes a metric: this module imports ``evaluate``, never the reverse.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import OutputError
from .evaluate import ANY_LABEL, VIEWS
from .records import OutputSet, atomic_path, atomic_writer, write_json, write_jsonl


def public(result: dict[str, Any]) -> dict[str, Any]:
    """The metrics dict without internal keys (what ``metrics.json`` and ``--json`` show)."""
    return {k: v for k, v in result.items() if not k.startswith("_")}


def _fmt(value: float | None) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def _fmt_ci(interval: list[float] | None) -> str:
    return "—" if not interval else f"[{interval[0]:.3f}, {interval[1]:.3f}]"


def _score_row(name: str, s: dict[str, Any], f1_ci: list[float] | None, *, counts: bool = True) -> list[str]:
    scores = [name, _fmt(s["precision"]), _fmt(s["recall"]), _fmt(s["f1"]), _fmt_ci(f1_ci)]
    return scores + ([str(s[k]) for k in ("support", "tp", "fp", "fn")] if counts else [""] * 4)


def view_rows(view: dict[str, Any]) -> list[list[str]]:
    """Table rows for one view: label, P, R, F1, F1 interval, support, tp, fp, fn; then micro and macro."""
    ci = view.get("ci") or {}
    per_label_ci = ci.get("per_label", {})
    rows = [
        _score_row(label, s, per_label_ci.get(label, {}).get("f1"))
        for label, s in view["per_label"].items()
        if label != ANY_LABEL and s["f1"] is not None  # the others are listed by unused_labels()
    ]
    rows.append(_score_row("micro", view["micro"], ci.get("micro", {}).get("f1")))
    if view["macro"]["labels"] and any(label != ANY_LABEL for label in view["per_label"]):
        rows.append(_score_row("macro", view["macro"], ci.get("macro", {}).get("f1"), counts=False))
    return rows


def unused_labels(view: dict[str, Any]) -> list[str]:
    """Labels with neither gold nor predictions in this view (left out of tables and of the macro average)."""
    return [label for label, s in view["per_label"].items() if s["f1"] is None]


VIEW_COLUMNS = ["label", "P", "R", "F1", "F1 95% CI", "support", "tp", "fp", "fn"]


def compare_rows(comparison: dict[str, Any]) -> list[list[str]]:
    """Table rows: view, ours, theirs, delta, delta interval, ratio, ratio interval, shared documents, verdict."""
    rows = []
    for view, c in comparison["views"].items():
        verdict = "—" if c["noise"] is None else ("noise" if c["noise"] else "real")
        rows.append(
            [
                view,
                _fmt(c["ours"]),
                _fmt(c["theirs"]),
                _fmt(c["delta"]),
                _fmt_ci(c["delta_ci"]),
                _fmt(c.get("ratio")),
                _fmt_ci(c.get("ratio_ci")),
                str(c["shared_documents"]),
                verdict,
            ]
        )
    return rows


COMPARE_COLUMNS = ["view (micro F1)", "ours", "theirs", "delta", "delta 95% CI", "ratio", "ratio 95% CI", "shared docs",
                   "difference"]


def _md_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown_report(
    result: dict[str, Any], comparison: dict[str, Any] | None = None, *, images: Sequence[str] = ()
) -> str:
    """The Markdown report: one table per view, error breakdown, confusion matrices, worst errors, comparison."""
    boot = result["bootstrap"]
    parts = [
        "# Evaluation report",
        "",
        f"{result['documents']} documents; 95% intervals: percentile bootstrap over documents "
        f"({boot['resamples']} resamples, seed {boot['seed']}, level {boot['confidence']}).",
        f"Missing predictions: {len(result['missing_predictions'])}; predictions without gold: "
        f"{len(result['unmatched_predictions'])}; duplicates dropped (gold and predictions): {result['duplicates']}; "
        f"dangling relations skipped: {result['dangling']}; predicted relations outside gold entity pairs: "
        f"{result['outside_gold_pairs']}. Relations given gold entities are scored from: "
        f"{result.get('classification_source', 'end-to-end predictions')}.",
    ]
    titles = {
        "entities.exact": "Entities, exact span and label",
        "entities.overlap": "Entities, overlapping span and same label (lenient)",
        "entities.span": "Entities, exact span with any label",
        "relations.strict": "Relations, end to end (strict)",
        "relations.classification": "Relations, given gold entity spans",
        "relations.crossre": "Relations, CrossRE protocol (gold pairs that carry a relation, classified)",
    }
    for view in VIEWS:
        parts += ["", f"## {titles[view]}", "", _md_table(VIEW_COLUMNS, view_rows(result["views"][view]))]
        unused = unused_labels(result["views"][view])
        if unused:
            parts += ["", f"No gold and no predictions: {', '.join(unused)}."]
    parts += [
        "",
        "## Errors by kind",
        "",
        _md_table(["kind", "count"], [[k, str(v)] for k, v in result["errors"].items()]),
    ]
    for name in ("entities", "relations"):
        conf = result["confusion"][name]
        rows = [[gold] + [str(x) for x in row] for gold, row in zip(conf["labels"], conf["matrix"], strict=True)]
        parts += [
            "",
            f"## Confusion matrix, {name} (rows gold, columns predicted)",
            "",
            _md_table(["gold \\ pred"] + conf["labels"], rows),
        ]
    if images:
        parts += ["", "## Plots", ""] + [f"![{Path(i).stem}]({i})" for i in images]
    if result["worst_errors"]:
        parts += ["", "## Worst errors", "", "Errors of the documents with the most errors first.", ""]
        parts += [f"- `{e['doc_id']}` **{e['kind']}** {_describe(e)}: {e['context']}" for e in result["worst_errors"]]
    if comparison:
        parts += ["", "## Compared with the other run", "", _md_table(COMPARE_COLUMNS, compare_rows(comparison))]
    return "\n".join(parts) + "\n"


def _describe(err: dict[str, Any]) -> str:
    if "relation" in err:
        return f"{err['relation']}({err['head']['text']!r} → {err['tail']['text']!r})"
    g, p = err.get("gold"), err.get("pred")
    gold = f"gold {g['label']} {g['text']!r}" if g else ""
    pred = f"pred {p['label']} {p['text']!r}" if p else ""
    return ", ".join(x for x in (gold, pred) if x)


def _save_figure(fig: Any, path: Path) -> None:
    """Save a matplotlib figure atomically (temporary file beside it, then rename)."""
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")


def plot_confusion(conf: dict[str, Any], title: str, path: Path) -> None:
    """A confusion-matrix heatmap with the counts written in the cells."""
    import matplotlib

    matplotlib.use("Agg")  # no display: plots are files
    import matplotlib.pyplot as plt

    labels, matrix = conf["labels"], np.array(conf["matrix"])
    size = max(4.0, 0.55 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    try:
        ax.imshow(matrix, cmap="Blues")
        ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("gold")
        ax.set_title(title)
        high = matrix.max() if matrix.size else 0
        for (i, j), value in np.ndenumerate(matrix):
            if value:
                ax.text(
                    j,
                    i,
                    str(value),
                    ha="center",
                    va="center",
                    color="white" if value > high / 2 else "black",
                    fontsize=8,
                )
        _save_figure(fig, path)
    finally:
        plt.close(fig)


def plot_f1(view: dict[str, Any], title: str, path: Path) -> None:
    """Per-label F1 bars with their bootstrap intervals (labels with no gold and no prediction left out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [label for label, s in view["per_label"].items() if s["f1"] is not None]
    f1 = [view["per_label"][label]["f1"] for label in labels]
    cis = [
        ((view.get("ci") or {}).get("per_label", {}).get(label, {}).get("f1") or [v, v])
        for label, v in zip(labels, f1, strict=True)
    ]
    low = [max(0.0, v - c[0]) for v, c in zip(f1, cis, strict=True)]
    high = [max(0.0, c[1] - v) for v, c in zip(f1, cis, strict=True)]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(labels) + 2), 4))
    try:
        ax.bar(range(len(labels)), f1, yerr=[low, high], capsize=3, color="#4363d8")
        ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right")
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("F1 (95% bootstrap interval)")
        ax.set_title(title)
        _save_figure(fig, path)
    finally:
        plt.close(fig)


def write_outputs(result: dict[str, Any], out_dir: Path, comparison: dict[str, Any] | None = None) -> dict[str, str]:
    """Write ``metrics.json``, ``report.md``, ``errors.jsonl`` and four PNG plots into ``out_dir``; return their paths."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{out_dir}: cannot create output folder ({err.strerror or err})") from err
    plots = {
        "confusion_entities.png": lambda p: plot_confusion(result["confusion"]["entities"], "Entity labels", p),
        "confusion_relations.png": lambda p: plot_confusion(result["confusion"]["relations"], "Relation types", p),
        "f1_entities.png": lambda p: plot_f1(result["views"]["entities.exact"], "Entities (exact): F1 per label", p),
        "f1_relations.png": lambda p: plot_f1(
            result["views"]["relations.strict"], "Relations (strict): F1 per label", p
        ),
    }
    data = public(result)
    if comparison:
        data["comparison"] = comparison
    with OutputSet() as outputs:  # every file of the run lands together, or none does
        for name, draw in plots.items():
            draw(outputs.path(out_dir / name))
        write_json(outputs.path(out_dir / "metrics.json"), data)
        write_jsonl(outputs.path(out_dir / "errors.jsonl"), result.get("_all_errors", []))
        with atomic_writer(outputs.path(out_dir / "report.md")) as handle:
            handle.write(markdown_report(result, comparison, images=list(plots)))
    return {name: str(out_dir / name) for name in ["metrics.json", "report.md", "errors.jsonl", *plots]}
