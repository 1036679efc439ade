"""Simulated active learning: entity F1 against the number of labelled documents, per selection strategy.

For each dataset and seed: draw ``--initial`` documents from the pool at random (the same start for every
strategy), train a small NER, score it on a fixed held-out set that no selection ever touches, then repeat
``--rounds`` times: let each strategy (``annotate.select``: random, uncertainty, diverse, uncertainty-per-char) pick ``--batch``
more documents from what is left of the pool, using the model of the previous round, retrain from scratch on
everything picked so far, score. Gold labels of picked documents are revealed as if annotators had done them.

Datasets (read in place, never copied into the repository):

* ``re3d``: pool = re3d train (54 documents, ../shared/data/re3d/train), held out = re3d dev (12 documents),
  re3d's own 14 entity labels;
* ``ours``: corpora/diplomacy-defence/labelled.jsonl, by article (the chunks of one article are picked and
  held out together); held out = a fixed 20% slice of the articles by a salted hash of the article id.

Model: ``models/configs/ner-rel-cpu.cfg`` trained NER-only (relations stripped from the training records, so
``annotate.train`` drops the relation component), ``--steps`` steps, tok2vec width ``--width`` (64: ~1.4x
faster than the config's 96, same entity F1 on re3d dev); the last step's (averaged) weights are scored.
Score: spaCy's exact-span entity F1 (``ents_f``) on the held-out DocBin, nested gold flattened longest-first as
``annotate docbin`` does. Intervals: mean over seeds with the min-max range (and a per-seed count of documents
needed). Characters labelled are reported beside documents: uncertainty sums doubts over a document, so it may
prefer long ones; ``uncertainty-per-char`` divides that sum by the document's length.

Target (issue 12): uncertainty reaches random selection's final entity F1 with at most 70% of the documents.

Outputs in ``--out``: ``runs/*.json`` (one per dataset/seed/strategy/round; reused on a rerun, so an interrupted
run resumes), ``results.json``, ``table.md`` and ``curves.png`` (F1 against documents, and against characters).

Usage: .venv/bin/python scripts/bench_active.py [--dataset re3d,ours] [--seeds 0,1,2] [--rounds 4] [--initial 5]
       [--batch 8] [--steps 250] [--width 64] [--strategies random,uncertainty,diverse,uncertainty-per-char] [--jobs 1]
       [--out /tmp/annotate-active]
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy  # noqa: E402

from annotate import select  # noqa: E402
from annotate.docbin import build_docbins  # noqa: E402
from annotate.importers.re3d import read_re3d  # noqa: E402
from annotate.records import LabelledDoc, read_docs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CONFIG = ROOT / "models" / "configs" / "ner-rel-cpu.cfg"
OURS = ROOT / "corpora" / "diplomacy-defence" / "labelled.jsonl"
HELD_OUT_SHARE = 0.2
HELD_OUT_SALT = "bench-active-held-out"
TARGET_SHARE = 0.7
DATASETS = ("re3d", "ours")


# ------------------------------------------------------------------------------------------------- data


def _article(doc: LabelledDoc) -> str:
    return str(doc.meta.get("article_id", doc.id))


def _held_out(key: str) -> bool:
    digest = hashlib.sha256(f"{HELD_OUT_SALT}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 1000 < HELD_OUT_SHARE * 1000


def _entities_only(doc: LabelledDoc) -> LabelledDoc:
    return LabelledDoc(id=doc.id, text=doc.text, meta=dict(doc.meta), entities=list(doc.entities), relations=[])


def load_dataset(name: str) -> tuple[dict[str, list[LabelledDoc]], list[LabelledDoc]]:
    """(pool: unit id -> its records, held-out records); a unit is a document (re3d) or an article (ours)."""
    if name == "re3d":
        train, _ = read_re3d(DATA / "re3d" / "train")
        dev, _ = read_re3d(DATA / "re3d" / "dev")
        return {d.id: [_entities_only(d)] for d in train}, [_entities_only(d) for d in dev]
    pool: dict[str, list[LabelledDoc]] = {}
    held: list[LabelledDoc] = []
    for doc in read_docs(OURS):
        if _held_out(_article(doc)):
            held.append(_entities_only(doc))
        else:
            pool.setdefault(_article(doc), []).append(_entities_only(doc))
    return pool, held


# ------------------------------------------------------------------------------------------ train, score


def docbin(docs: list[LabelledDoc], folder: Path) -> Path:
    build_docbins(docs, folder, ratios=(1, 0, 0), force=True)
    return folder / "train.spacy"


def train_model(docs: list[LabelledDoc], folder: Path, args: argparse.Namespace, seed: int) -> Path:
    from annotate.train import train

    bins = docbin(docs, folder / "bins")
    overrides = {"paths.train": str(bins), "paths.dev": str(bins), "training.max_steps": args.steps,
                 "training.eval_frequency": args.steps, "training.patience": 0, "system.seed": seed,
                 "components.tok2vec.model.encode.width": args.width}
    train(CONFIG, folder / "model", overrides=overrides, log=io.StringIO(), tune_thresholds=False)
    return folder / "model" / "model-last"


def entity_f1(model: Path, held_bins: Path) -> float:
    import spacy
    from spacy.training import Corpus

    nlp = spacy.load(model)
    return float(nlp.evaluate(list(Corpus(str(held_bins))(nlp)))["ents_f"] or 0.0)


def pick(model: Path | None, pool: dict[str, list[LabelledDoc]], left: list[str], strategy: str, k: int, seed: int,
         labelled: list[str]) -> list[str]:
    """``k`` unit ids from ``left`` by ``strategy``, scored with the previous round's ``model``."""
    if strategy == "random":
        return [c.id for c in select.rank_random([select.Candidate(u) for u in left], k, seed=seed)]
    import spacy

    nlp = spacy.load(model)
    records = [r for u in left + (labelled if strategy == "diverse" else []) for r in pool[u]]
    scored = [c for _, c in select.score_records(nlp, records, uncertainty=strategy in select.UNCERTAINTY,
                                                 vectors=strategy == "diverse")]
    units = select.group(scored, {r.id: u for u in pool for r in pool[u]})
    by_id = {c.id: c for c in units}
    cands = [by_id[u] for u in left]
    anchors = [by_id[u].vector for u in labelled] if strategy == "diverse" else None
    return [c.id for c in select.choose(cands, strategy, limit=k, seed=seed, anchors=anchors)]


# ---------------------------------------------------------------------------------------------- one chain


def run_chain(job: dict) -> list[dict]:
    """One (dataset, seed, strategy) learning curve; rounds are cached as runs/*.json."""
    logging.getLogger("annotate.train").setLevel(logging.ERROR)  # "trained without relation_extractor", every time
    args = argparse.Namespace(**job["args"])
    name, seed, strategy = job["dataset"], job["seed"], job["strategy"]
    out = Path(args.out)
    pool, held = load_dataset(name)
    work = out / "work" / name / f"seed{seed}"
    held_bins = docbin(held, work / "held-out") if not (work / "held-out" / "train.spacy").exists() else work / "held-out" / "train.spacy"
    order = sorted(pool)
    start = [order[i] for i in numpy.random.default_rng(seed).permutation(len(order))[:args.initial]]
    labelled = list(start)
    rows: list[dict] = []
    for rnd in range(args.rounds + 1):
        tag = "shared" if rnd == 0 else strategy
        cache = out / "runs" / f"{name}-seed{seed}-{tag}-round{rnd}.json"
        folder = work / f"{tag}-round{rnd}"
        if cache.exists():  # done in an earlier run: its picks stand
            row = json.loads(cache.read_text())
            labelled = list(row["labelled"])
        else:
            if rnd:
                prev = work / (f"{strategy}-round{rnd - 1}" if rnd > 1 else "shared-round0")
                if not (prev / "model" / "model-last").exists():  # resumed after its model was cleaned up
                    train_model([r for u in labelled for r in pool[u]], prev, args, seed)
                left = [u for u in order if u not in set(labelled)]
                labelled += pick(prev / "model" / "model-last", pool, left, strategy, min(args.batch, len(left)),
                                 seed + rnd, labelled)
            started = time.perf_counter()
            docs = [r for u in labelled for r in pool[u]]
            f1 = entity_f1(train_model(docs, folder, args, seed), held_bins)
            row = {"dataset": name, "seed": seed, "strategy": tag, "round": rnd, "documents": len(labelled),
                   "records": len(docs), "chars": sum(len(r.text) for r in docs), "ents_f": round(f1, 4),
                   "labelled": list(labelled), "seconds": round(time.perf_counter() - started, 1)}
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(row, indent=1))
            print(f"  {name} seed {seed} {strategy:11s} round {rnd}: {row['documents']} docs, F1 {f1:.3f} "
                  f"({row['seconds']} s)", flush=True)
            old = work / f"{strategy}-round{rnd - 1}"
            if rnd > 1 and old.exists():  # keep the disk small: a chain needs only its latest model
                shutil.rmtree(old)
        rows.append({**row, "strategy": strategy})
    return rows


# --------------------------------------------------------------------------------------------- summaries


def curves(rows: list[dict]) -> dict:
    """dataset -> strategy -> [{documents, chars, mean, min, max, n}] over seeds."""
    out: dict = {}
    for row in rows:
        cell = out.setdefault(row["dataset"], {}).setdefault(row["strategy"], {}).setdefault(row["round"], [])
        cell.append(row)
    table: dict = {}
    for dataset, strategies in out.items():
        for strategy, rounds in strategies.items():
            points = []
            for rnd in sorted(rounds):
                f1 = [r["ents_f"] for r in rounds[rnd]]
                points.append({"round": rnd, "documents": rounds[rnd][0]["documents"],
                               "chars": int(numpy.mean([r["chars"] for r in rounds[rnd]])),
                               "mean": round(float(numpy.mean(f1)), 4), "min": min(f1), "max": max(f1), "n": len(f1)})
            table.setdefault(dataset, {})[strategy] = points
    order = {name: i for i, name in enumerate(select.STRATEGIES)}
    return {d: dict(sorted(s.items(), key=lambda item: order.get(item[0], len(order)))) for d, s in table.items()}


def docs_to_reach(points: list[dict], target: float, key: str = "documents") -> float | None:
    """Documents (or mean characters, ``key="chars"``) at which the mean curve first reaches ``target``, linear
    between measured rounds."""
    for before, point in zip([None, *points], points):
        if point["mean"] >= target:
            if before is None or point["mean"] == before["mean"]:
                return float(point[key])
            share = (target - before["mean"]) / (point["mean"] - before["mean"])
            return before[key] + share * (point[key] - before[key])
    return None


def per_seed_docs(rows: list[dict], dataset: str, strategy: str) -> list[tuple[int, int] | None]:
    """For each seed: (documents, characters) the strategy had labelled when it first reached that seed's final
    random F1 (``None``: not reached)."""
    out = []
    for seed in sorted({r["seed"] for r in rows if r["dataset"] == dataset}):
        mine = sorted((r for r in rows if r["dataset"] == dataset and r["seed"] == seed and r["strategy"] == strategy),
                      key=lambda r: r["round"])
        rand = sorted((r for r in rows if r["dataset"] == dataset and r["seed"] == seed and r["strategy"] == "random"),
                      key=lambda r: r["round"])
        if mine and rand:
            target = rand[-1]["ents_f"]
            out.append(next(((r["documents"], r["chars"]) for r in mine if r["ents_f"] >= target), None))
    return out


def write_table(table: dict, rows: list[dict], out: Path, command: str) -> str:
    lines = [f"Command: `{command}`", ""]
    for dataset, strategies in table.items():
        lines += [f"### {dataset}", "", "| strategy | " + " | ".join(f"{p['documents']} docs" for p in strategies["random"]) + " |",
                  "|---" * (1 + len(strategies["random"])) + "|"]
        for strategy, points in strategies.items():
            lines.append(f"| {strategy} | " + " | ".join(f"{p['mean']:.3f} [{p['min']:.3f}, {p['max']:.3f}]" for p in points) + " |")
        for strategy, points in strategies.items():
            lines.append(f"| {strategy}: characters labelled (mean) | " + " | ".join(f"{p['chars']:,}" for p in points) + " |")
        if "random" in strategies:
            final = strategies["random"][-1]
            lines += ["", (f"Random's final entity F1: {final['mean']:.3f} with {final['documents']} documents "
                           f"(target: {TARGET_SHARE:.0%} of them = {TARGET_SHARE * final['documents']:.1f}).")]
            for strategy in strategies:
                if strategy == "random":
                    continue
                need = docs_to_reach(strategies[strategy], final["mean"])
                chars = docs_to_reach(strategies[strategy], final["mean"], "chars")
                seeds = per_seed_docs(rows, dataset, strategy)
                share = f"{need / final['documents']:.0%}" if need else "not reached"
                at = (f"{need:.1f} documents ({share}) and {chars:,.0f} characters ({chars / final['chars']:.0%} of random's "
                      f"{final['chars']:,})" if need else "- documents (not reached)")
                per_seed = ", ".join(f"{s[0]} ({s[1]:,} chars)" if s else "not reached" for s in seeds)
                lines.append(f"- {strategy}: mean curve reaches it at {at}, linear between rounds; per seed "
                             f"(that seed's random final): {per_seed}")
        lines.append("")
    text = "\n".join(lines)
    (out / "table.md").write_text(text, encoding="utf-8")
    return text


def plot(table: dict, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(table), figsize=(6 * len(table), 8.4), squeeze=False)
    for col, (dataset, strategies) in enumerate(table.items()):
        for row, (key, xlabel) in enumerate((("documents", "labelled documents"), ("chars", "characters labelled (mean)"))):
            ax = axes[row][col]
            for strategy, points in strategies.items():
                x = [p[key] for p in points]
                ax.plot(x, [p["mean"] for p in points], marker="o", label=strategy)
                ax.fill_between(x, [p["min"] for p in points], [p["max"] for p in points], alpha=0.15)
            ax.set_title(f"{dataset}: held-out entity F1 (mean, min-max over seeds)")
            ax.set_xlabel(xlabel)
            ax.set_ylabel("entity F1")
            ax.grid(alpha=0.3)
            ax.legend()
    fig.tight_layout()
    path = out / "curves.png"
    fig.savefig(path, dpi=110)
    return path


# ------------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default=",".join(DATASETS), help="comma-separated: re3d, ours")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--strategies", default=",".join(select.STRATEGIES))
    parser.add_argument("--rounds", type=int, default=4, help="selection rounds after the initial set")
    parser.add_argument("--initial", type=int, default=5, help="documents labelled at the start")
    parser.add_argument("--batch", type=int, default=8, help="documents added per round")
    parser.add_argument("--steps", type=int, default=250, help="training steps per model")
    parser.add_argument("--width", type=int, default=64, help="tok2vec width")
    parser.add_argument("--jobs", type=int, default=1, help="chains trained in parallel")
    parser.add_argument("--out", type=Path, default=Path("/tmp/annotate-active"))
    args = parser.parse_args()
    datasets = [d for d in args.dataset.split(",") if d]
    strategies = [s for s in args.strategies.split(",") if s]
    bad = [d for d in datasets if d not in DATASETS] + [s for s in strategies if s not in select.STRATEGIES]
    if bad or "random" not in strategies:
        sys.exit(f"unknown dataset/strategy {bad} (random is required: it is the reference)" if bad else "random is required")
    args.out.mkdir(parents=True, exist_ok=True)
    plain = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    # seed-major, so that an interrupted run (resumed with fewer --seeds) has every dataset and strategy
    jobs = [{"dataset": d, "seed": int(s), "strategy": st, "args": plain}
            for s in args.seeds.split(",") for d in datasets for st in strategies]
    started = time.perf_counter()
    # the shared round 0 of each (dataset, seed) first, so that the chains in parallel do not race to train it
    firsts = [j for j in jobs if j["strategy"] == "random"]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(run_chain, [{**j, "args": {**plain, "rounds": 0}} for j in firsts]))
        rows = [row for chain in pool.map(run_chain, jobs) for row in chain]
    table = curves(rows)
    command = "python scripts/bench_active.py " + " ".join(sys.argv[1:])
    (args.out / "results.json").write_text(json.dumps({"args": plain, "curves": table, "runs": rows}, indent=1))
    print(write_table(table, rows, args.out, command))
    print(f"plot: {plot(table, args.out)}; {time.perf_counter() - started:.0f} s in all (machine shared with other jobs)")


if __name__ == "__main__":
    main()
