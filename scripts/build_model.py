"""Train the shipped model on the diplomacy-defence corpus and write its card and metrics, never by hand.

1. `annotate docbin` of corpora/diplomacy-defence/labelled.jsonl: article-level hash split, seed 0, 0.8/0.1/0.1.
2. `annotate train models/configs/ner-rel-md.cfg --base en_core_web_md` on train; dev picks the checkpoint and
   tunes the relation thresholds; test is not read until step 4.
3. model-best is copied to models/diplomacy-defence/model/ (with the base's name, version, licence and checksum
   in its meta.json).
4. `annotate evaluate` of that model on the test split (1,000 bootstrap resamples): metrics.json, report.md and
   plots in models/diplomacy-defence/eval/.
5. models/diplomacy-defence/README.md (the Hugging Face model card of annotate.package.model_card, the one
   `annotate package` puts in the wheel) and the metrics tables between the GENERATED markers of the repository
   README are rewritten from metrics.json.

Usage: .venv/bin/python scripts/build_model.py [--max-steps 1500] [--work build/model] [--cards-only]
"""

import argparse
import os
import shutil
import sys
from pathlib import Path

import srsly

from annotate.docbin import build_docbins
from annotate.evaluate import run_evaluate
from annotate.package import metric_tables, model_card
from annotate.records import read_docs
from annotate.schema import load_schema
from annotate.train import train

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpora" / "diplomacy-defence" / "labelled.jsonl"
CONFIG = ROOT / "models" / "configs" / "ner-rel-md.cfg"
SHIPPED = ROOT / "models" / "diplomacy-defence"
README = ROOT / "README.md"
MODEL_VERSION = "0.1.0"
PACKAGE_NAME = "en_diplomacy_defence"  # what `annotate package` names the wheel (see make package)
BEGIN, END = "<!-- GENERATED: model-metrics -->", "<!-- /GENERATED: model-metrics -->"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-steps", type=int, default=1500)
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "model")
    parser.add_argument("--cards-only", action="store_true", help="Only rewrite the cards from the shipped metrics.json.")
    args = parser.parse_args()
    os.chdir(ROOT)
    bins = args.work / "bins"
    if not args.cards_only:
        split = build_docbins(read_docs(CORPUS), bins, ratios=(0.8, 0.1, 0.1), seed=0)
        overrides = {"paths.train": str(bins / "train.spacy"), "paths.dev": str(bins / "dev.spacy"),
                     "paths.tune": str(bins / "dev.spacy"), "training.max_steps": args.max_steps,
                     "training.eval_frequency": 200, "training.patience": 0}
        summary = train(CONFIG, args.work / "train", overrides=overrides, base="en_core_web_md", log=sys.stderr)
        target = SHIPPED / "model"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(summary["model"], target)
        meta = srsly.read_json(target / "meta.json")
        meta.update({"name": "diplomacy_defence", "version": MODEL_VERSION, "license": "CC BY 4.0",
                     "description": "NER and relation extraction for diplomacy and defence news (annotate toolkit)."})
        srsly.write_json(target / "meta.json", meta)
        schema = load_schema()
        gold = list(read_docs(bins / "test.jsonl"))
        metrics, _, _ = run_evaluate(gold, model=target, schema=schema, n_boot=1000, seed=0,
                                     gold_source="test split", out=SHIPPED / "eval")
        srsly.write_json(SHIPPED / "train-summary.json", {**summary, "split": split["docs"], "model": str(target.relative_to(ROOT))})
    metrics = srsly.read_json(SHIPPED / "eval" / "metrics.json")
    summary = srsly.read_json(SHIPPED / "train-summary.json")
    meta = srsly.read_json(SHIPPED / "model" / "meta.json")
    card = model_card(metrics, meta, name=PACKAGE_NAME, version=MODEL_VERSION, summary=summary)
    (SHIPPED / "README.md").write_text(card, encoding="utf-8")
    text = README.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    intro = (f"Test split of `corpora/diplomacy-defence` ({metrics['documents']} records, never used for training or "
             "selection), as `annotate evaluate models/diplomacy-defence/model <test split>` prints it; written by "
             "`scripts/build_model.py`.")
    README.write_text(f"{head}{BEGIN}\n{intro}\n\n{metric_tables(metrics)}\n{END}{tail}", encoding="utf-8")
    print(f"model card: {SHIPPED / 'README.md'}; README metrics updated")


if __name__ == "__main__":
    main()
