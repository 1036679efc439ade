"""Train a spaCy pipeline (NER + ``relation_extractor``) from a config in ``models/configs/``.

A thin wrapper over spaCy's own training loop (``spacy.training.loop.train``), so every spaCy config
option works, plus what a reproducible run needs. ``output/`` receives:

* ``model-best/`` and ``model-last/`` (spaCy's layout); ``model-best`` gets per-type relation thresholds
  (:meth:`RelationExtractor.tune_thresholds`) tuned on ``[paths] tune``: a DocBin of documents kept out of
  both ``train`` and ``dev`` (e.g. a document-level hash slice of the training records, see
  ``annotate docbin --ratios``), so the dev score is not inflated by thresholds fitted to dev. Without
  ``paths.tune`` the thresholds are tuned on dev, with a warning, and the summary says so
  (``thresholds_tuned_on: "dev"``). Its ``meta.json`` gets an ``annotate`` block: the dev scores after
  tuning, the thresholds and where they were tuned, the SHA-256 of the exact config used and of every data
  file named in ``[paths]``;
* ``config.cfg``: the exact config (overrides applied) the run used;
* ``train-summary.json``: the same facts as the ``annotate`` block, plus the training time.

Training progress (spaCy's table) goes to the ``log`` stream the caller passes (silent by default).
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from pathlib import Path
from typing import IO, Any

import spacy
import srsly
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab
from spacy.training import Corpus, Example
from spacy.training.initialize import init_nlp
from spacy.training.loop import train as spacy_train
from spacy.util import load_config
from thinc.api import Config, ConfigValidationError, require_gpu

from . import components  # noqa: F401  (registers the factory, architectures and scorer)
from .base import BasePipeline, resolve_base
from .docbin import RELATIONS_KEY
from .errors import InputError, OutputError
from .records import atomic_writer, write_json

logger = logging.getLogger(__name__)

REL_COMPONENT = "relation_extractor"
SUMMARY_NAME = "train-summary.json"
HASH_CHUNK = 1 << 20
REQUIRED_PATHS = ("train", "dev")


def file_sha256(path: Path | str) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_training_config(config_path: Path | str, overrides: dict[str, Any] | None = None) -> Config:
    """Read a config with overrides (``{"training.max_steps": 100}``), naming the file on errors."""
    try:
        return load_config(Path(config_path), overrides=overrides or {}, interpolate=False)
    except (OSError, ConfigValidationError, ValueError) as err:
        raise InputError(f"cannot load training config: {err}".replace("\n", " "), path=config_path) from err


def _check_corpora(config: Config, config_path: Path | str) -> None:
    """Fail early, naming the file, when [paths] train/dev are unset or missing (spaCy would fail late)."""
    for name in REQUIRED_PATHS:
        value = (config.get("paths") or {}).get(name)
        if not value:
            raise InputError(f"paths.{name} is not set: pass --paths.{name} PATH", path=config_path)
        if not Path(str(value)).exists():
            raise InputError(f"paths.{name} does not exist", path=value)
    tune = (config.get("paths") or {}).get("tune")
    if tune and not Path(str(tune)).exists():
        raise InputError("paths.tune does not exist", path=tune)


def data_hashes(config: Config) -> dict[str, str]:
    """SHA-256 of every existing file named in ``[paths]`` (train, dev, schema, ...)."""
    out = {}
    for name, value in (config.get("paths") or {}).items():
        if isinstance(value, str) and value and Path(value).is_file():
            out[name] = file_sha256(value)
    return out


def _apply_base(config_path: Path | str, overrides: dict[str, Any], base: str | None) -> BasePipeline | None:
    """Resolve ``--base`` into ``paths.base``; a config that sources from a base needs one."""
    if base is None and "paths.base" in overrides:
        base = str(overrides["paths.base"])
    if base is None:
        return None
    info = resolve_base(base)
    overrides["paths.base"] = info.path
    return info


def _has_relations(train_path: str) -> bool:
    return any(doc.user_data.get(RELATIONS_KEY) for doc in DocBin().from_disk(train_path).get_docs(Vocab()))


def _drop_relations(config: Config) -> None:
    """Remove relation_extractor from a config (an NER-only corpus), with its score weights."""
    config["nlp"]["pipeline"] = [p for p in config["nlp"]["pipeline"] if p != REL_COMPONENT]
    config["components"].pop(REL_COMPONENT, None)
    weights = config["training"].get("score_weights", {})
    for key in [k for k in weights if k.startswith("rel_")]:
        weights.pop(key)
    for key in ("frozen_components", "annotating_components"):
        config["training"][key] = [p for p in config["training"].get(key, []) if p != REL_COMPONENT]


def train(
    config_path: Path | str,
    output: Path | str,
    *,
    overrides: dict[str, Any] | None = None,
    base: str | None = None,
    gpu_id: int = -1,
    log: IO[str] | None = None,
    tune_thresholds: bool = True,
) -> dict[str, Any]:
    """Train, tune relation thresholds on dev, and write the model and its reproducibility record.

    ``base`` names a pretrained pipeline (see :func:`annotate.base.resolve_base`) for configs that source from
    ``paths.base``; it is recorded (name, version, licence, checksum) in the model's ``meta.json``. A training
    corpus without relations trains without ``relation_extractor`` (the summary says so).
    ``tune_thresholds=False`` keeps the one global threshold (how the tutorial-style baseline is run).
    Returns the summary (also written to ``output/train-summary.json``).
    """
    output = Path(output)
    overrides = dict(overrides or {})
    base_info = _apply_base(config_path, overrides, base)
    config = load_training_config(config_path, overrides)
    if "base" in (config.get("paths") or {}) and not config["paths"]["base"]:
        raise InputError("this config sources from a base pipeline: pass --base (e.g. --base en_core_web_md)",
                         path=config_path)
    _check_corpora(config, config_path)
    notes: list[str] = []
    if REL_COMPONENT in config["nlp"]["pipeline"] and not _has_relations(str(config.interpolate()["paths"]["train"])):
        _drop_relations(config)
        notes.append(f"the training data has no relations: trained without {REL_COMPONENT}")
        logger.warning(notes[-1])
    log = log or io.StringIO()
    if gpu_id >= 0:
        require_gpu(gpu_id)
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{output}: cannot create output folder ({err.strerror or err})") from err
    config_text = config.to_str()
    with atomic_writer(output / "config.cfg") as handle:
        handle.write(config_text)
    started = time.perf_counter()
    try:
        nlp = init_nlp(config, use_gpu=gpu_id)
        _, last_path = spacy_train(nlp, output, use_gpu=gpu_id, stdout=log, stderr=log)
    except ConfigValidationError as err:
        raise InputError(f"invalid training config: {err}".replace("\n", " "), path=config_path) from err
    seconds = time.perf_counter() - started
    best_path = output / "model-best" if (output / "model-best").exists() else Path(last_path or output / "model-last")
    summary: dict[str, Any] = {
        "config": str(config_path), "config_sha256": hashlib.sha256(config_text.encode()).hexdigest(),
        "overrides": {k: v for k, v in (overrides or {}).items()}, "data_sha256": data_hashes(config.interpolate()),
        "gpu_id": gpu_id, "train_seconds": round(seconds, 1), "model": str(best_path),
        "base": base_info.to_dict() if base_info else None, "notes": notes,
    }
    summary.update(_tune_and_score(best_path, config.interpolate(), tune=tune_thresholds))
    _write_meta(best_path, summary)
    write_json(output / SUMMARY_NAME, summary)
    return summary


def _examples(config: Config, nlp: Language, name: str) -> list[Example]:
    path = (config.get("paths") or {}).get(name)
    if not path:
        return []
    if not Path(str(path)).exists():
        raise InputError(f"paths.{name} does not exist", path=path)
    return list(Corpus(path)(nlp))


def _tune_and_score(model_path: Path, config: Config, *, tune: bool = True) -> dict[str, Any]:
    """Tune the relation thresholds of the saved model on ``paths.tune`` (else dev), save it, score on dev."""
    nlp = spacy.load(model_path)
    examples = _examples(config, nlp, "dev")
    out: dict[str, Any] = {"thresholds": {}, "thresholds_tuned_on": None, "dev_scores": {}}
    if not examples:
        return out
    if tune and REL_COMPONENT in nlp.pipe_names:
        tune_examples = _examples(config, nlp, "tune")
        out["thresholds_tuned_on"] = "tune" if tune_examples else "dev"
        if not tune_examples:
            logger.warning("paths.tune is not set: relation thresholds are tuned on dev, so the dev relation "
                           "scores are optimistic")
            tune_examples = examples
        rel = nlp.get_pipe(REL_COMPONENT)
        with nlp.select_pipes(disable=[REL_COMPONENT]):
            docs = list(nlp.pipe(eg.reference.text for eg in tune_examples))
        out["thresholds"] = rel.tune_thresholds(docs, [eg.reference for eg in tune_examples])
        nlp.to_disk(model_path)
    out["dev_scores"] = _round(nlp.evaluate(examples))
    return out


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    return value


def _write_meta(model_path: Path, summary: dict[str, Any]) -> None:
    meta_path = model_path / "meta.json"
    meta = srsly.read_json(meta_path) if meta_path.exists() else {}
    meta["annotate"] = summary
    write_json(meta_path, meta)


def predicted_relations(doc: Doc) -> list[dict[str, Any]]:
    """The relations a pipeline wrote on ``doc`` (empty when it has no relation component)."""
    return list(doc.user_data.get(RELATIONS_KEY, []))
