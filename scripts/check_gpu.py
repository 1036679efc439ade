"""GPU check: train our NER + relation pipeline on the diplomacy-defence corpus on the GPU and on the CPU; reload on the GPU; predict.

Needs CuPy and a CUDA GPU (nothing in the test suite does). Prints each run's wall time and dev scores, then what
a fresh process that loads the GPU-trained model with ``spacy.load`` finds in the first seed article.

Usage: python scripts/check_gpu.py [--max-steps 300] [--gpu-id 0] [--work /tmp/annotate-gpu]
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from annotate.docbin import build_docbins
from annotate.records import read_docs
from annotate.train import train

ROOT = Path(__file__).resolve().parents[1]
RELOAD = """
import json, sys
import spacy
from thinc.api import require_gpu
require_gpu(int(sys.argv[2]))
nlp = spacy.load(sys.argv[1])
doc = nlp(open(sys.argv[3], encoding="utf-8").read())
print(json.dumps({"ops": type(nlp.get_pipe("tok2vec").model.ops).__name__, "entities": len(doc.ents),
                  "relations": len(doc.user_data.get("annotate_relations", []))}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--gpu-id", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/annotate-gpu"))
    args = parser.parse_args()
    bins = args.work / "bins"
    split = build_docbins(read_docs(ROOT / "corpora" / "diplomacy-defence" / "labelled.jsonl"), bins, ratios=(0.7, 0.3, 0), seed=0)
    print(f"corpus: {split['docs']}", flush=True)
    overrides = {"paths.train": str(bins / "train.spacy"), "paths.dev": str(bins / "dev.spacy"),
                 "training.max_steps": args.max_steps}
    for gpu_id in (args.gpu_id, -1):
        started = time.perf_counter()
        summary = train(ROOT / "models" / "configs" / "ner-rel-cpu.cfg", args.work / f"model{gpu_id}",
                        overrides=overrides, gpu_id=gpu_id)
        scores = summary["dev_scores"]
        print(f"gpu_id {gpu_id}: {time.perf_counter() - started:.1f} s; dev ents_f {scores.get('ents_f')}, "
              f"rel_micro_f {scores.get('rel_micro_f')}", flush=True)
    article = min((ROOT / "seeds").glob("*.txt"))
    reloaded = subprocess.run([sys.executable, "-c", RELOAD, str(args.work / f"model{args.gpu_id}" / "model-best"),
                               str(args.gpu_id), str(article)], capture_output=True, text=True, check=True)
    print(f"fresh process, GPU model on {article.name}: {json.loads(reloaded.stdout)}")


if __name__ == "__main__":
    main()
