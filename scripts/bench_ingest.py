"""Benchmark: ingest synthetic articles (about 400 words each) and print articles/second and peak memory.

Each size runs in a fresh child process, so peak RSS is that size's own. Target (issue 2): over 1,000
articles/s on one core without pre-annotation, and peak memory flat in the number of articles.

    python scripts/bench_ingest.py --sizes 1000,10000
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

VOCAB = (
    "minister defence army summit talks ceasefire treaty sanctions forces troops brigade alliance missile "
    "drone border security guarantees aid package billion euros officials said president government "
    "parliament envoy delegation frontline artillery air defence exercise navy agreement negotiations "
    "France Ukraine Russia NATO Brussels Paris Kyiv Moscow Washington Berlin Warsaw London the a of to in "
    "and on for with by from at as that was were is be will would could after before during while"
).split()


def make_corpus(path: Path, n: int, words: int = 400, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            sentences, count = [], 0
            while count < words:
                k = rng.randint(8, 25)
                sentences.append(" ".join(rng.choice(VOCAB) for _ in range(k)).capitalize() + ".")
                count += k
            paras = [" ".join(sentences[j : j + 4]) for j in range(0, len(sentences), 4)]
            text = f"Report {i}.\n\n" + "\n\n".join(paras)
            out.write(json.dumps({"id": f"syn-{i}", "text": text, "date": "2025-03-11"}) + "\n")


def child(corpus: Path, out: Path, near_threshold: float) -> None:
    """One size, in a fresh process: the same job function `annotate ingest` runs (run_ingest)."""
    from annotate.ingest import run_ingest

    start = time.perf_counter()
    summary = run_ingest([corpus], out, near_threshold=near_threshold)
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"articles": summary["articles"], "chunks": summary["written"], "seconds": round(seconds, 2),
                      "articles_per_s": round(summary["articles"] / seconds), "peak_rss_mib": round(peak_mib, 1)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated article counts")
    parser.add_argument("--near-dup-threshold", type=float, default=0.8, help="0 turns the MinHash index off")
    parser.add_argument("--child", nargs=2, metavar=("CORPUS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), args.near_dup_threshold)
        return
    print(f"{'articles':>9} {'chunks':>7} {'seconds':>8} {'articles/s':>11} {'peak RSS MiB':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            corpus = Path(tmp) / f"corpus-{n}.jsonl"
            make_corpus(corpus, n)
            # taskset pins the child to one core where available, so the figure is single-core
            cmd = [sys.executable, __file__, "--child", str(corpus), str(Path(tmp) / f"out-{n}.jsonl"),
                   "--near-dup-threshold", str(args.near_dup_threshold)]
            if Path("/usr/bin/taskset").exists():
                cmd = ["/usr/bin/taskset", "-c", "0", *cmd]
            result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            print(f"{result['articles']:>9} {result['chunks']:>7} {result['seconds']:>8} "
                  f"{result['articles_per_s']:>11} {result['peak_rss_mib']:>13}")


if __name__ == "__main__":
    main()
