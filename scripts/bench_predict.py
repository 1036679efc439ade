"""Benchmark: annotate predict on synthetic articles; tokens/s and peak memory per input size, and the Dask
engine on 1 and 2 local workers.

Each size runs in a fresh child process through the job function `annotate predict` runs, so its peak RSS is its
own; memory must not grow with the number of articles. The articles are generated here (sentences about
people, countries, weapons and meetings, plus filler), never downloaded. Tokens are counted with spaCy's
blank English tokenizer before the timed run. Without --model a small from-scratch pipeline
(models/configs/ner-rel-cpu.cfg) is trained on a dozen sentences first (seconds); pass the shipped
models/diplomacy-defence/model for the real one (slower).

    python scripts/bench_predict.py --sizes 10000,100000 --dask-size 10000
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEOPLE = ["Macron", "Umerov", "Lecornu", "Rutte", "Scholz", "Tusk", "Stoltenberg", "Zelensky"]
PLACES = ["France", "Ukraine", "Russia", "Poland", "Germany", "Paris", "Kyiv", "Warsaw", "Brussels"]
ORGS = ["NATO", "the European Union", "the United Nations"]
WEAPONS = ["Patriot", "F-16", "Leopard", "HIMARS"]
TEMPLATES = [
    "{p} met {q} in {c} on Tuesday.",
    "{p} is President of {c}.",
    "{o} supports {c} against {d}.",
    "{c} is part of {o} and supplies {w} missiles.",
    "{c} has not supplied {w} jets to {d}.",
]
FILLER = (
    "officials", "said", "the", "talks", "on", "security", "guarantees", "and", "air", "defence", "would", "continue", "next",
    "week", "while", "the", "delegation", "reviewed", "the", "aid", "package", "and", "the", "frontline", "situation",
)
TRAIN = [
    ("Macron is President of France.", [("Macron", "PERSON"), ("President", "ROLE"), ("France", "GPE")],
     [(0, 1, "HAS_ROLE"), (1, 2, "ROLE_IN")]),
    ("Lecornu met Umerov in Paris on Tuesday.",
     [("Lecornu", "PERSON"), ("Umerov", "PERSON"), ("Paris", "GPE"), ("Tuesday", "DATE")], [(0, 1, "MEETS")]),
    ("NATO supports Ukraine against Russia.", [("NATO", "ORG"), ("Ukraine", "GPE"), ("Russia", "GPE")],
     [(0, 1, "SUPPORTS"), (0, 2, "OPPOSES")]),
    ("Poland is part of NATO and supplies Patriot missiles.", [("Poland", "GPE"), ("NATO", "ORG"), ("Patriot", "WEAPON")],
     [(0, 1, "PART_OF"), (0, 2, "SUPPLIES")]),
]


def make_articles(path: Path, n: int, *, sentences: int, seed: int = 0) -> None:
    """``n`` records JSONL articles of ``sentences`` sentences each (every third one filler)."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            parts = []
            for j in range(sentences):
                if j % 3 == 2:
                    parts.append(" ".join(rng.sample(FILLER, 12)).capitalize() + ".")
                else:
                    p, q = rng.sample(PEOPLE, 2)
                    c, d = rng.sample(PLACES, 2)
                    parts.append(rng.choice(TEMPLATES).format(p=p, q=q, c=c, d=d, o=rng.choice(ORGS), w=rng.choice(WEAPONS)))
            out.write(json.dumps({"id": f"syn-{i}", "text": " ".join(parts), "meta": {"n": i}}) + "\n")


def count_tokens(path: Path) -> int:
    import spacy

    tokenizer = spacy.blank("en").tokenizer
    with path.open(encoding="utf-8") as handle:
        return sum(len(doc) for doc in tokenizer.pipe(json.loads(line)["text"] for line in handle))


def train_small_pipeline(folder: Path) -> Path:
    """A from-scratch NER + relation pipeline trained for 60 steps on :data:`TRAIN` (seconds)."""
    from annotate.docbin import build_docbins
    from annotate.records import LabelledDoc
    from annotate.train import train

    docs = []
    for i, (text, ents, rels) in enumerate(TRAIN):
        entities = [{"id": f"e{j}", "start": text.index(s), "end": text.index(s) + len(s), "label": lab}
                    for j, (s, lab) in enumerate(ents)]
        relations = [{"id": f"r{k}", "head": f"e{h}", "tail": f"e{t}", "label": lab} for k, (h, t, lab) in enumerate(rels)]
        docs.append(LabelledDoc.from_dict({"id": f"d{i}", "text": text, "meta": {"article_id": f"a{i}"},
                                           "entities": entities, "relations": relations}))
    build_docbins(docs, folder / "bins", ratios=(1, 0, 0))
    for name in ("dev", "tune"):
        (folder / "bins" / f"{name}.spacy").write_bytes((folder / "bins" / "train.spacy").read_bytes())
    overrides = {f"paths.{n}": str(folder / "bins" / f"{n}.spacy") for n in ("train", "dev", "tune")}
    overrides |= {"paths.schema": str(ROOT / "annotate" / "schemas" / "diplomacy-defence.yaml"),
                  "training.max_steps": 60, "training.eval_frequency": 20}
    return Path(train(ROOT / "models" / "configs" / "ner-rel-cpu.cfg", folder / "train", overrides=overrides)["model"])


def child(mode: str, model: str, corpus: str, out: str, arg: str) -> None:
    """One run in a fresh process: ``local`` with --n-process ``arg``, or ``dask`` with --scheduler ``arg``."""
    start = time.perf_counter()
    if mode == "local":
        from annotate.predict import predict

        summary = predict(model, [corpus], out, n_process=int(arg))
    else:
        from annotate.distributed import predict_distributed

        summary = predict_distributed(model, [corpus], out, scheduler=arg)
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # this process only (dask: the client)
    print(json.dumps({"docs": summary["docs"], "seconds": round(seconds, 2), "peak_rss_mib": round(peak_mib, 1)}))


def run_child(*args: str) -> dict:
    cmd = [sys.executable, __file__, "--child", *args]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated article counts")
    parser.add_argument("--sentences", type=int, default=6, help="sentences per synthetic article")
    parser.add_argument("--model", help="a trained pipeline folder (default: train a small one first)")
    parser.add_argument("--format", choices=("jsonl", "parquet"), default="jsonl", help="output format")
    parser.add_argument("--n-process", default="1", help="--n-process of the local runs")
    parser.add_argument("--dask-size", type=int, default=10000, help="articles for the 1 vs 2 worker runs; 0 skips")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model = args.model or str(train_small_pipeline(tmp / "model"))
        print(f"model {model}; {args.sentences} sentences per article; output {args.format}")
        print(f"{'run':>16} {'articles':>9} {'tokens':>10} {'seconds':>8} {'tokens/s':>9} {'peak RSS MiB':>13}")
        sizes = [int(s) for s in args.sizes.split(",") if s]
        for n in sorted(set(sizes + ([args.dask_size] if args.dask_size else []))):
            corpus = tmp / f"articles-{n}.jsonl"
            make_articles(corpus, n, sentences=args.sentences)
            tokens = count_tokens(corpus)
            runs = [("local", args.n_process)] if n in sizes else []
            if n == args.dask_size:
                runs += [("dask", "local:1"), ("dask", "local:2")]
            for mode, arg in runs:
                suffix = ".parquet" if args.format == "parquet" else "" if mode == "dask" else ".jsonl"
                out = tmp / f"out-{n}-{mode}-{arg.replace(':', '')}{suffix}"
                result = run_child(mode, model, str(corpus), str(out), arg)
                assert result["docs"] == n, result
                name = f"{mode} {arg}" if mode == "dask" else f"local n_process={arg}"
                rss = result["peak_rss_mib"] if mode == "local" else "(client)"
                print(f"{name:>16} {n:>9} {tokens:>10} {result['seconds']:>8} {round(tokens / result['seconds']):>9} "
                      f"{rss:>13}", flush=True)
            corpus.unlink()


if __name__ == "__main__":
    main()
