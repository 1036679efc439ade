"""A trained pipeline -> an installable wheel (spaCy's packaging) with a Hugging Face model card.

``build_package(model, out, name="en_diplomacy_defence", version="0.1.0")`` writes one folder, laid out as a
model repository on the Hub::

    <out>/<name>-<version>/README.md                           the model card (YAML header, then tables)
    <out>/<name>-<version>/<name>-<version>-py3-none-any.whl   the pipeline as a Python package
    <out>/<name>-<version>/package-report.json                 what was built, from what, and its sha256

``pip install <wheel>`` then ``spacy.load("<name>")`` gives the pipeline. The wheel is made the way
``spacy package`` makes one (:func:`spacy.cli.package.package` lays out ``setup.py``, ``meta.json`` and the
package ``__init__``); it is built with pip from the installed setuptools, offline (``pip wheel
--no-build-isolation --no-index``), rather than through ``python -m build``, which would fetch setuptools into
an isolated environment. The package requires ``spacy`` and ``annotate``: the toolkit registers the
``relation_extractor`` and ``label_filter`` factories through entry points, so ``spacy.load`` finds them
without importing anything first. A base pipeline the model was trained from is not a requirement: its
weights and vectors are copied into the model folder at training time.

The card is read from what the model folder and ``annotate evaluate`` left: ``meta.json`` (labels, base
pipeline, training config), the metrics of ``annotate evaluate --out`` (``--eval``, by default
``<model>/../eval/metrics.json``: the layout of ``models/diplomacy-defence``) and, where present,
``<model>/../train-summary.json`` (the split sizes). Its ``model-index`` holds the micro and per-label
precision, recall and F1 of exact entities, end-to-end relations and relations given the gold entities.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from . import hub
from .errors import InputError, OutputError
from .records import OutputSet, file_sha256, write_json

log = logging.getLogger(__name__)

# (view of `annotate evaluate`, title, Hub task type) of the card's tables and model-index
CARD_VIEWS = (
    ("entities.exact", "Entities (exact span and label)", "token-classification"),
    ("relations.strict", "Relations, end to end", "relation-extraction"),
    ("relations.classification", "Relations given the gold entities", "relation-extraction"),
)
SCORES = ("precision", "recall", "f1")
# an import name spaCy accepts and pip keeps as is: lowercase, the language, single underscores
NAME_PATTERN = re.compile(r"^[a-z]{2,3}(_[a-z0-9]+)+$")
# spaCy's own trained pipelines, which the Hub hosts under the `spacy` organisation
SPACY_PIPELINE = re.compile(r"^[a-z]{2}_core_(web|news)_(sm|md|lg|trf)$")
HUB_FILES = ["README.md", "*.whl"]


# ------------------------------------------------------------------------------------------- checks

def check_name(name: str, lang: str) -> None:
    """The package and import name: ``<lang>_<words>``, lowercase ASCII, single underscores."""
    if not name.startswith(f"{lang}_"):
        raise InputError(f"--name {name!r}: must start with {lang + '_'!r}, the pipeline's language "
                         f"(spaCy names packages <lang>_<name>), e.g. {lang}_diplomacy_defence")
    if not NAME_PATTERN.match(name):
        raise InputError(f"--name {name!r}: use lowercase letters, digits and single underscores, "
                         f"e.g. {lang}_diplomacy_defence")


def check_version(version: str) -> None:
    """A PEP 440 version in its normal form (the form pip writes into the wheel's file name)."""
    from packaging.version import InvalidVersion, Version

    try:
        normal = str(Version(version))
    except InvalidVersion as err:
        raise InputError(f"--version {version!r}: not a PEP 440 version (e.g. 0.1.0)") from err
    if normal != version:
        raise InputError(f"--version {version!r}: write it in its normal form, {normal!r}")


def read_pipeline_meta(model: Path) -> dict[str, Any]:
    """The ``meta.json`` of a saved spaCy pipeline folder; raises unless ``model`` is one."""
    if not model.is_dir():
        raise InputError("no such folder (give a trained pipeline, e.g. the model-best folder of `annotate train`)",
                         path=model)
    missing = [f for f in ("meta.json", "config.cfg") if not (model / f).is_file()]
    if missing:
        raise InputError(f"not a spaCy pipeline folder (no {' or '.join(missing)}; give the model-best folder "
                         "of `annotate train`)", path=model)
    try:
        meta = json.loads((model / "meta.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"unreadable meta.json ({err})", path=model / "meta.json") from err
    if not isinstance(meta, dict) or not meta.get("lang") or not meta.get("pipeline"):
        raise InputError("meta.json names no language or pipeline: not a saved spaCy pipeline", path=model / "meta.json")
    return meta


def default_metrics_path(model: Path) -> Path:
    return model.parent / "eval" / "metrics.json"


def read_metrics(model: Path, metrics: Path | None) -> tuple[Path, dict[str, Any]]:
    """The metrics of ``annotate evaluate --out`` for the card, and where they came from."""
    from .bootstrap import load_metrics

    path = metrics if metrics is not None else default_metrics_path(model)
    if metrics is None and not path.is_file():
        raise InputError(f"no evaluation beside the model ({path} is missing): run `annotate evaluate MODEL "
                         "TEST.jsonl --out DIR` and pass --eval DIR/metrics.json", path=model)
    data = load_metrics(path)
    missing = [view for view, _, _ in CARD_VIEWS if view not in data["views"]]
    if missing:
        raise InputError(f"metrics lack the view(s) {', '.join(missing)} the card reports", path=path)
    return path, data


def read_train_summary(model: Path) -> dict[str, Any] | None:
    """``<model>/../train-summary.json`` of `annotate train` (the split sizes, for the card), if there is one."""
    path = model.parent / "train-summary.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"unreadable training summary ({err})", path=path) from err


# ----------------------------------------------------------------------------------------- the card

def _scored(view: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The view's labels that have a score (the others had no gold and no prediction), then ``micro``."""
    from .metrics import ANY_LABEL

    rows = [(label, s) for label, s in view["per_label"].items() if label != ANY_LABEL and s.get("f1") is not None]
    return rows + [("micro", view["micro"])]


def model_index(metrics: dict[str, Any], name: str, *, dataset: str, split: str) -> list[dict[str, Any]]:
    """The Hub's ``model-index``: per view, the micro and per-label precision, recall and F1."""
    results = []
    for view, title, task in CARD_VIEWS:
        scores = [{"type": key, "value": round(s[key], 4), "name": f"{view} {label} {key}"}
                  for label, s in _scored(metrics["views"][view]) for key in SCORES if s.get(key) is not None]
        results.append({"task": {"type": task, "name": title},
                        "dataset": {"type": dataset, "name": f"{dataset} ({split} split)", "split": split},
                        "metrics": scores})
    return [{"name": name, "results": results}]


def metric_tables(metrics: dict[str, Any]) -> str:
    """The card's Markdown tables (the rows ``annotate evaluate`` prints), one per view."""
    from .reports import VIEW_COLUMNS, _md_table, view_rows

    parts = []
    for view, title, _ in CARD_VIEWS:
        parts += [f"**{title}**", "", _md_table(VIEW_COLUMNS, view_rows(metrics["views"][view])), ""]
    return "\n".join(parts).rstrip()


def base_model_id(base: dict[str, Any]) -> str | None:
    """The base pipeline as a Hub model id, where it has one (spaCy's pipelines are ``spacy/<name>``)."""
    name = base.get("name") or ""
    return f"spacy/{name}" if SPACY_PIPELINE.match(name) else None


def model_card(metrics: dict[str, Any], meta: dict[str, Any], *, name: str, version: str,
               summary: dict[str, Any] | None = None, dataset: str = "diplomacy-defence", split: str = "test",
               license_id: str = "cc-by-4.0") -> str:
    """The model card: Hub YAML (language, licence, tags, dataset, base model, model-index), then what the
    pipeline is, how to install and run it, how it was trained, its metrics and its limitations."""
    import yaml

    train_info = meta.get("annotate") or {}
    base = train_info.get("base") or {}
    front: dict[str, Any] = {
        "language": [meta["lang"]], "license": license_id, "library_name": "spacy", "pipeline_tag": "token-classification",
        "tags": ["spacy", "token-classification", "relation-extraction", "diplomacy", "defence"],
        "datasets": [dataset],
    }
    if base_model_id(base):
        front["base_model"] = base_model_id(base)
    front["model-index"] = model_index(metrics, name, dataset=dataset, split=split)
    labels = meta.get("labels") or {}
    entity_labels = labels.get("label_filter") or labels.get("ner") or []
    relation_labels = labels.get("relation_extractor") or []
    lines = ["---", yaml.safe_dump(front, sort_keys=False).strip(), "---", "",
             f"# {name}: entities and relations in diplomacy and defence news", "",
             (f"A spaCy pipeline (`{'`, `'.join(meta['pipeline'])}`; spaCy {meta.get('spacy_version', '')}) that "
              f"finds {len(entity_labels)} entity labels and links them with {len(relation_labels)} relation types "
              "(each with `negated`/`hypothetical` attributes), built with the `annotate` toolkit."), "",
             "## Use", "",
             ("The package needs the `annotate` toolkit (it registers the `relation_extractor` and `label_filter` "
              "components through entry points): install it from its repository first. PyPI's `annotate` is an "
              "unrelated project; the version range the wheel requires keeps pip from taking it."), "",
             "```bash", f"pip install {name}-{version}-py3-none-any.whl", "```", "",
             "```python", "import spacy", "", f'nlp = spacy.load("{name}")',
             'doc = nlp("Macron is President of France.")', "print([(e.text, e.label_) for e in doc.ents])",
             'print(doc.user_data["annotate_relations"])  # label, score, attrs, head and tail (start, end, label)',
             "```", "", ("A copy of the pipeline folder (`config.cfg`, `meta.json`, one folder per component) loads the same "
                        "way: `spacy.load(PATH)`."), "",
             "## Labels", "",
             f"- Entities: {', '.join(f'`{label}`' for label in entity_labels) or 'none'}",
             f"- Relations: {', '.join(f'`{label}`' for label in relation_labels) or 'none'}", "",
             "## Training", "", *_training_lines(train_info, summary, dataset), "",
             f"## Metrics ({split} split)", "", _metrics_intro(metrics, split), "", metric_tables(metrics), "",
             "## Limitations", "", *_limitations(meta, summary, dataset), ""]
    return "\n".join(lines)


def _training_lines(train_info: dict[str, Any], summary: dict[str, Any] | None, dataset: str) -> list[str]:
    split = (summary or {}).get("split")
    data = f"- Data: `{dataset}`"
    if split:
        data += (f", split by article: {split.get('train')} train, {split.get('dev')} dev, {split.get('test')} test "
                 "records. Dev chose the checkpoint and the relation thresholds; test was used only for the figures below.")
    else:
        data += "."
    lines = [data]
    base = train_info.get("base")
    if base:
        lines.append(f"- Base pipeline: {base.get('name')} {base.get('version')} ({base.get('license')} licence), "
                     f"from the package {base.get('distribution')}; sha256 of its files {base.get('sha256')}. Its weights "
                     "are part of this package; it is not needed at run time.")
    else:
        lines.append("- Base pipeline: none (trained from scratch).")
    if train_info.get("config"):
        settings = {k: v for k, v in (train_info.get("overrides") or {}).items() if not k.startswith("paths.")}
        lines.append(f"- Config: `{Path(train_info['config']).name}` (sha256 {train_info.get('config_sha256', '')[:16]}...), "
                     f"settings {json.dumps(settings)}; {train_info.get('train_seconds')} s of training on "
                     f"{'GPU' if train_info.get('gpu_id', -1) >= 0 else 'CPU'}.")
    tuned_on = train_info.get("thresholds_tuned_on")
    if tuned_on:
        corpus = (train_info.get("overrides") or {}).get(f"paths.{tuned_on}")
        where = f"`{Path(corpus).name}`" if corpus else f"the `{tuned_on}` corpus"
        lines.append(f"- Relation thresholds: one per type, tuned on {where}.")
    return lines


def _metrics_intro(metrics: dict[str, Any], split: str) -> str:
    boot = metrics.get("bootstrap") or {}
    return (f"{metrics['documents']} {split} records, scored by `annotate evaluate`; 95% intervals from "
            f"{boot.get('resamples')} bootstrap resamples of the documents.")


def _limitations(meta: dict[str, Any], summary: dict[str, Any] | None, dataset: str) -> list[str]:
    train = ((summary or {}).get("split") or {}).get("train")
    size = f"{train} records" if train else "a small corpus"
    lines = [(f"- Trained on {size} of English news-like prose (`{dataset}`); expect lower scores on other "
              "sources, languages and periods, and read the per-label intervals: rare labels have few test examples."),
             "- Relations are linked within one sentence; coreference (\"the minister\" to a name) is not resolved."]
    if "label_filter" in meta["pipeline"]:
        lines.append("- Entity labels of the base pipeline that are not in the list above are dropped by "
                     "`label_filter`, not unlearned.")
    return lines


# ---------------------------------------------------------------------------------------- the wheel

def _stage(model: Path, stage: Path, meta: dict[str, Any], *, short_name: str, version: str, card: str) -> None:
    """Copy the pipeline with the package's meta (name without the language, requirements) and the card."""
    import annotate

    shutil.copytree(model, stage)
    meta = {**meta, "name": short_name, "version": version}
    requirement = f"annotate>={annotate.__version__},<{_next_minor(annotate.__version__)}"
    meta["requirements"] = [r for r in meta.get("requirements", []) if not r.startswith("annotate")] + [requirement]
    (stage / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    (stage / "README.md").write_text(card, encoding="utf-8")


def _next_minor(version: str) -> str:
    from packaging.version import Version

    v = Version(version)
    return f"{v.major}.{v.minor + 1}.0"


def _spacy_package(stage: Path, work: Path, *, source: Path) -> Path:
    """spaCy's package folder (setup.py, meta.json, README.md, the package) for the staged pipeline."""
    from spacy.cli.package import package

    try:
        package(stage, work, create_sdist=False, create_wheel=False, require_parent=True, silent=True)
    except (OSError, ValueError) as err:  # spaCy loads the pipeline to fill in meta.json
        detail = str(err).replace(str(stage), str(source)).replace("\n", " ")  # name the model, not our copy
        raise InputError(f"cannot load the spaCy pipeline ({detail})", path=source) from err
    except SystemExit as err:  # spaCy's packaging reports its own failures by exiting
        raise OutputError(f"{source}: spaCy's packaging refused this pipeline (exit {err.code}); run "
                          f"`python -m spacy package {source} /tmp --build none` to see why") from err
    (folder,) = [p for p in work.iterdir() if p.is_dir()]
    return folder


def _build_wheel(folder: Path, wheels: Path) -> Path:
    """``pip wheel`` of spaCy's package folder, offline, with the installed setuptools."""
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
               "--quiet", "--wheel-dir", str(wheels), str(folder)]
    run = subprocess.run(command, capture_output=True, text=True, check=False)
    built = sorted(wheels.glob("*.whl"))
    if run.returncode != 0 or len(built) != 1:
        tail = (run.stderr.strip().splitlines() or ["no output"])[-1]
        raise OutputError(f"building the wheel of {folder.name} failed (pip exit {run.returncode}): {tail}")
    return built[0]


def build_package(model: Path | str, out: Path | str, *, name: str, version: str, metrics: Path | str | None = None,
                  dataset: str = "diplomacy-defence", split: str = "test", license_id: str = "cc-by-4.0",
                  push_to_hub: str | None = None, token: str | None = None, private: bool = True) -> dict[str, Any]:
    """Build ``<out>/<name>-<version>/`` (wheel, card, report; all replaced together or none) and optionally
    upload the wheel and the card to the Hub model repository ``push_to_hub``. Returns the report."""
    model, out = Path(model), Path(out)
    if push_to_hub is not None:
        hub.check_target(push_to_hub, token)
    meta = read_pipeline_meta(model)
    check_name(name, meta["lang"])
    check_version(version)
    metrics_path, scores = read_metrics(model, None if metrics is None else Path(metrics))
    summary = read_train_summary(model)
    card = model_card(scores, meta, name=name, version=version, summary=summary, dataset=dataset, split=split,
                      license_id=license_id)
    folder = out / f"{name}-{version}"
    with tempfile.TemporaryDirectory(prefix="annotate-package-") as tmp:
        work = Path(tmp)
        _stage(model, work / "stage", meta, short_name=name[len(meta["lang"]) + 1:], version=version, card=card)
        (work / "spacy").mkdir()
        log.info("packaging %s as %s %s", model, name, version)
        spacy_folder = _spacy_package(work / "stage", work / "spacy", source=model)
        built = _build_wheel(spacy_folder, work / "wheels")
        package_meta = json.loads((spacy_folder / "meta.json").read_text(encoding="utf-8"))
        wheel = folder / built.name
        report = {"out": str(folder), "name": name, "version": version, "model": str(model),
                  "wheel": str(wheel), "wheel_sha256": file_sha256(built), "wheel_bytes": built.stat().st_size,
                  "card": str(folder / "README.md"), "metrics": str(metrics_path),
                  "requirements": package_meta.get("requirements", []), "pipeline": meta["pipeline"]}
        with OutputSet() as outputs:
            shutil.copyfile(built, outputs.path(wheel))
            (outputs.path(folder / "README.md")).write_text(card, encoding="utf-8")
            write_json(outputs.path(folder / "package-report.json"), report)
    if push_to_hub is not None:
        report["pushed_to"] = push(folder, push_to_hub, token=token, private=private)
        write_json(folder / "package-report.json", report)
    return report


# ------------------------------------------------------------------------------------------ the Hub

def push(folder: Path, repo_id: str, *, token: str | None, private: bool = True) -> str:
    """Upload the card and the wheel of ``folder`` to the Hub model repository ``repo_id`` (created if
    missing; private unless ``private=False``). Needs network and a token with write access."""
    hub.upload(folder, repo_id, repo_type="model", allow_patterns=HUB_FILES, token=token, private=private,
               what="package")
    return f"https://huggingface.co/{repo_id}"
