"""Does mapped re3d help? Train the shipped model's recipe on the corpus's train split plus re3d mapped onto our
schema (`annotate import re3d --map annotate/maps/re3d-to-diplomacy-defence.yaml`, re3d train + dev), and compare it
with the same recipe on the corpus alone (the shipped model, `scripts/build_model.py`), on the corpus's test split.

Both runs: models/configs/ner-rel-md.cfg on en_core_web_md, the same steps and seed, the corpus's dev split for the
checkpoint and thresholds. Scored with `annotate evaluate` (1,000 bootstrap resamples) and compared with its paired
bootstrap (`annotate.evaluate.compare`). This is a measurement, not a selection: its outcome changes no default.

Usage: .venv/bin/python scripts/bench_re3d_mapped.py [--max-steps 1500] [--work build/re3d-mapped]
       (run scripts/build_model.py first: its train split and model are the baseline)
"""

import argparse
import sys
from pathlib import Path

from annotate.docbin import build_docbins
from annotate.evaluate import compare, run_evaluate
from annotate.importers.re3d import import_re3d
from annotate.records import read_docs
from annotate.schema import load_schema
from annotate.train import train

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "re3d"
CONFIG = ROOT / "models" / "configs" / "ner-rel-md.cfg"
MAP = ROOT / "annotate" / "maps" / "re3d-to-diplomacy-defence.yaml"
BASELINE_BINS = ROOT / "build" / "model" / "bins"
BASELINE_MODEL = ROOT / "build" / "model" / "train" / "model-best"  # the run that scripts/build_model.py shipped


def scores(model: Path, gold: list, schema) -> dict:
    return run_evaluate(gold, model=model, schema=schema, n_boot=1000, seed=0)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-steps", type=int, default=1500)
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "re3d-mapped")
    args = parser.parse_args()
    if not (BASELINE_BINS / "train.jsonl").exists():
        sys.exit("run scripts/build_model.py first (its split and model are the baseline)")
    mapped = []
    for split in ("train", "dev"):
        summary = import_re3d(DATA / split, args.work / "re3d" / split, map_path=MAP)
        mapped += list(read_docs(args.work / "re3d" / split / "labelled.jsonl"))
        print(f"re3d {split}: {summary['documents']} documents, {summary['mapped_entities']} entities and "
              f"{summary['mapped_relations']} relations mapped; dropped {summary['label_map']['totals']}")
    corpus_train = list(read_docs(BASELINE_BINS / "train.jsonl"))
    build_docbins(corpus_train + mapped, args.work / "bins", ratios=(1, 0, 0), seed=0)
    overrides = {"paths.train": str(args.work / "bins" / "train.spacy"), "paths.dev": str(BASELINE_BINS / "dev.spacy"),
                 "paths.tune": str(BASELINE_BINS / "dev.spacy"), "training.max_steps": args.max_steps,
                 "training.eval_frequency": 200, "training.patience": 0}
    summary = train(CONFIG, args.work / "train", overrides=overrides, base="en_core_web_md", log=sys.stderr)
    schema = load_schema()
    gold = list(read_docs(BASELINE_BINS / "test.jsonl"))
    augmented, alone = scores(Path(summary["model"]), gold, schema), scores(BASELINE_MODEL, gold, schema)
    c = compare(augmented, alone)["views"]
    print(f"\ncorpus test split, {len(gold)} records; corpus train {len(corpus_train)} records + mapped re3d {len(mapped)}")
    for view in ("entities.exact", "relations.strict", "relations.classification"):
        a, b = augmented["views"][view], alone["views"][view]
        print(f"{view:<26} corpus + re3d F1 {a['micro']['f1']:.3f} {a['ci']['micro']['f1']}  corpus alone "
              f"{b['micro']['f1']:.3f} {b['ci']['micro']['f1']}  difference {c[view]['delta']:+.3f} "
              f"{c[view]['delta_ci']} (paired bootstrap; noise: {c[view]['noise']})")
    print("\nper entity label (F1, corpus + re3d vs alone):")
    for label, s in augmented["views"]["entities.exact"]["per_label"].items():
        t = alone["views"]["entities.exact"]["per_label"][label]
        if s["support"]:
            print(f"  {label:<14}{s['support']:>5}  {s['f1'] or 0:.3f}  {t['f1'] or 0:.3f}")


if __name__ == "__main__":
    main()
