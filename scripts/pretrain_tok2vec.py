"""Pretrain the shared tok2vec on in-domain raw text (spaCy's characters objective) for a training config.

The weights file is made at run time, never committed. Raw text comes only from training splits, never dev or
test: the re3d train documents, the CrossNER politics train sentences (CoNLL-style, tokens joined by spaces)
and the CrossRE politics train sentences (JSON lines, ``sentence`` token lists); duplicates are dropped (the two
politics corpora share sentences). Nothing is downloaded.

The pretraining pipeline is the config's ``tok2vec`` alone (same architecture, so the weights load into the full
pipeline through ``[initialize] init_tok2vec``); the objective is the config's own ``[pretraining]`` block
(``spacy.PretrainCharacters.v1``: predict the first and last characters of each word from its context). ``OUT/raw.jsonl`` gets the text, ``OUT/pretrain.cfg``
the exact pretraining config, ``OUT/model-last.bin`` the weights.

Usage: .venv/bin/python scripts/pretrain_tok2vec.py --output /tmp/pretrain [--epochs 30]
       [--config models/configs/ner-rel-pretrained.cfg] [--data ../shared/data]
Then:  annotate train models/configs/ner-rel-pretrained.cfg --output models/run1 \\
           --paths.init_tok2vec /tmp/pretrain/model-last.bin --paths.train ... --paths.dev ...
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from spacy.training.pretrain import pretrain
from spacy.util import load_config
from thinc.api import Config

from annotate import components  # noqa: F401  (registers annotate's architectures and misc functions)
from annotate.errors import InputError
from annotate.importers.re3d import import_re3d
from annotate.records import read_docs, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "models" / "configs" / "ner-rel-pretrained.cfg"
DEFAULT_DATA = ROOT.parent / "shared" / "data"
PRETRAIN_COMPONENT = "tok2vec"
MIN_CHARS = 20  # shorter lines (headers, stray tokens) teach the objective little

DEFAULT_EPOCHS = 30
logger = logging.getLogger("pretrain_tok2vec")
PRETRAIN_CORPUS = {"@readers": "spacy.JsonlCorpus.v1", "path": "${paths.raw_text}", "min_length": 5,
                   "max_length": 0, "limit": 0}


def re3d_texts(path: Path) -> Iterator[str]:
    """Paragraphs (non-empty lines) of the documents of a re3d split folder, read through our importer.

    Paragraphs rather than whole documents: batches of similar, short lengths, and no document is dropped for
    its length.
    """
    with tempfile.TemporaryDirectory() as tmp:
        import_re3d(path, tmp)
        for doc in read_docs(Path(tmp) / "labelled.jsonl"):
            yield from (line for line in doc.text.splitlines() if line.strip())


def conll_texts(path: Path) -> Iterator[str]:
    """Sentences of a CoNLL-style file (token<TAB>tag lines, blank line between sentences)."""
    tokens: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            tokens.append(line.split("\t")[0].split(" ")[0])
        elif tokens:
            yield " ".join(tokens)
            tokens = []
    if tokens:
        yield " ".join(tokens)


def crossre_texts(path: Path) -> Iterator[str]:
    """Sentences of a CrossRE JSON-lines file (``{"sentence": [tokens], ...}`` per line)."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            yield " ".join(json.loads(line)["sentence"])


def raw_texts(data: Path) -> list[str]:
    """Train-split text of the local corpora, deduplicated in order; dev and test are never read."""
    sources: Iterable[Iterable[str]] = (
        re3d_texts(data / "re3d" / "train"),
        conll_texts(data / "crossner_politics" / "train.txt"),
        crossre_texts(data / "crossre_politics" / "politics-train.json"),
    )
    seen: dict[str, None] = {}
    for source in sources:
        for text in source:
            if len(text) >= MIN_CHARS:
                seen.setdefault(text.strip(), None)
    return list(seen)


def pretraining_config(config_path: Path, raw_path: Path, epochs: int) -> Config:
    """The training config cut down to its tok2vec, its own [pretraining] block, and a raw-text corpus.

    The [pretraining] block (objective, optimizer, ``component = "tok2vec"``) lives in the training config
    because spaCy reads it again at training time to know where the weights go.
    """
    config = load_config(config_path, interpolate=False)
    block = config.get("pretraining") or {}
    if block.get("component") != PRETRAIN_COMPONENT:
        raise InputError(f'[pretraining] component must be "{PRETRAIN_COMPONENT}" (found {block.get("component")!r})',
                         path=config_path)
    config["nlp"]["pipeline"] = [PRETRAIN_COMPONENT]
    config["components"] = {PRETRAIN_COMPONENT: config["components"][PRETRAIN_COMPONENT]}
    config["training"]["annotating_components"] = []
    config["training"]["frozen_components"] = []
    config["training"]["score_weights"] = {}
    config["paths"]["raw_text"] = str(raw_path)
    config["corpora"]["pretrain"] = dict(PRETRAIN_CORPUS)
    config["pretraining"]["corpus"] = "corpora.pretrain"
    config["pretraining"]["max_epochs"] = epochs
    return Config(config)


def run(config_path: Path, data: Path, output: Path, epochs: int) -> Path:
    """Write the raw text and config under ``output``, pretrain, return the path of the weights file."""
    output.mkdir(parents=True, exist_ok=True)
    texts = raw_texts(data)
    raw_path = output / "raw.jsonl"
    write_jsonl(raw_path, [{"text": t} for t in texts])
    logger.info("%d raw texts, %d characters -> %s", len(texts), sum(map(len, texts)), raw_path)
    config = pretraining_config(config_path, raw_path, epochs)
    config.to_disk(output / "pretrain.cfg")
    pretrain(config.interpolate(), output, silent=False)
    return output / "model-last.bin"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    weights = run(args.config, args.data, args.output, args.epochs)
    print(f"pretrained tok2vec weights: {weights}")


if __name__ == "__main__":
    main()
