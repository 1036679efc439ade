"""Benchmark: train on re3d train, score on re3d dev; our pipeline vs stock spaCy NER vs tutorial-style relations.

Prints, in one run: per-label entity P/R/F1 on dev for our pipeline and for a stock spaCy NER model
(``spacy init config --lang en --pipeline ner --optimize efficiency``) trained on the same DocBins;
end-to-end relation P/R/F1 for our pipeline and for the tutorial-style baseline (``annotate.RelationBaseline.v1``,
every ordered pair within 100 tokens, no schema filter, one global threshold); 95% bootstrap intervals over
the dev documents; training time (to the end, and to the best dev score, estimated from the step of the best
evaluation); single-core inference tokens/s for the full pipeline; peak memory; and relation time per entity as
the number of entities per document grows.

Nested gold is flattened the same way for every system: ``annotate docbin --overlap longest`` (keep the longest
span of an overlapping group); the dropped nested spans count as gold for nobody, so every system is scored
against the same flat ``doc.ents`` and the same relations (relations touching a dropped span stay in the gold,
so no system can reach them). Symmetric re3d types (CoLocated, Apart, CommWith, AlliesOf, IsSynonymOf) are
compared as unordered pairs for every system. Data is read from ``../shared/data/re3d`` (never copied into the repository).

Honest relation thresholds: re3d train is split by document (seeded hash, ``--tune-fraction`` of the
documents, default 10%) into a fit part, on which every system trains, and a tune slice, on which our
per-type relation thresholds are tuned (``paths.tune``). Dev is used only to pick the best checkpoint
(spaCy's model-best, the same for every system) and to report; re3d test is never read.

Usage: .venv/bin/python scripts/bench_train.py --max-steps 600 [--re3d ../shared/data/re3d] [--work /tmp/bench]
       [--tune-fraction 0.1] [--reuse] [--set components.tok2vec.model.encode.width=64 ...]
       [--config models/configs/ner-rel-pretrained.cfg --set paths.init_tok2vec=/tmp/pretrain/model-last.bin]
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core for the inference figure (set before numpy loads)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import spacy  # noqa: E402
from spacy.cli.init_config import init_config  # noqa: E402
from spacy.tokens import Doc, Span  # noqa: E402

from annotate.components.scorer import prf, relation_triples  # noqa: E402
from annotate.docbin import build_docbins, make_nlp, read_docbin  # noqa: E402
from annotate.importers.re3d import import_re3d  # noqa: E402
from annotate.records import read_docs  # noqa: E402
from annotate.train import train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUR_CONFIG = ROOT / "models" / "configs" / "ner-rel-cpu.cfg"
BOOTSTRAP = 1000
SCALING_ENTITIES = (25, 50, 100, 200, 400)
SPEED_REPEATS = 5
TUNE_SEED = 0
ROW_RE = re.compile(r"^\s*(\d+)\s+(\d+)\s+.*?([0-9.]+)\s*$")


def prepare(re3d: Path, work: Path, tune_fraction: float) -> tuple[Path, Path, Path, Path]:
    """(fit DocBin, tune DocBin, dev DocBin, schema): re3d train split by document into fit and tune."""
    for split in ("train", "dev"):
        import_re3d(re3d / split, work / "records" / split)
    fit = build_docbins(read_docs(work / "records" / "train" / "labelled.jsonl"), work / "bins" / "train",
                        ratios=(1 - tune_fraction, tune_fraction, 0), seed=TUNE_SEED)
    build_docbins(read_docs(work / "records" / "dev" / "labelled.jsonl"), work / "bins" / "dev", ratios=(1, 0, 0))
    print(f"re3d train split by document: {fit['docs']['train']} documents to fit, {fit['docs']['dev']} held out "
          f"to tune relation thresholds (seed {TUNE_SEED})")
    bins = work / "bins"
    tune = (bins / "train" / "dev.spacy").replace(bins / "train" / "tune.spacy")  # the held-out slice, by its role
    return bins / "train" / "train.spacy", tune, bins / "dev" / "train.spacy", work / "records" / "train" / "schema.yaml"


def best_step(log_text: str) -> tuple[int, int]:
    """(step of the best SCORE row, last step) from spaCy's console table."""
    rows = [(int(m.group(2)), float(m.group(3))) for line in log_text.splitlines() if (m := ROW_RE.match(line))]
    if not rows:
        return 0, 0
    return max(rows, key=lambda r: r[1])[0], rows[-1][0]


def run_training(name: str, config: Path, out: Path, overrides: dict, *, tune: bool, reuse: bool = False) -> dict:
    if reuse and (out / "train-summary.json").exists():
        summary = json.loads((out / "train-summary.json").read_text(encoding="utf-8"))
        print(f"[{name}] reusing {out} (trained in {summary['train_seconds']} s)")
        summary.setdefault("time_to_best", None)
        return summary
    log = io.StringIO()
    summary = train(config, out, overrides=overrides, log=log, tune_thresholds=tune)
    best, last = best_step(log.getvalue())
    summary["time_to_best"] = round(summary["train_seconds"] * best / last, 1) if last else None
    (out / "train-summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(f"[{name}] trained in {summary['train_seconds']} s; best dev at step {best} of {last} "
          f"(~{summary['time_to_best']} s)")
    return summary


def config_value(text: str):
    """A ``--set`` value as JSON when it parses (numbers, lists, true/null), else the plain string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def stock_config(work: Path) -> Path:
    path = work / "stock-ner.cfg"
    path.write_text(init_config(lang="en", pipeline=["ner"], optimize="efficiency").to_str(), encoding="utf-8")
    return path


def baseline_config(work: Path, config: Path = OUR_CONFIG) -> Path:
    """Our config with the tutorial-style relation model and candidate rules (same tok2vec and NER)."""
    text = config.read_text(encoding="utf-8")
    text = re.sub(r'@architectures = "annotate.RelationModel.v\d+"\n(?:\w+ = .*\n)+',
                  '@architectures = "annotate.RelationBaseline.v1"\nnO = null\n', text)
    for key, value in (("candidates", '"all"'), ("max_distance", "100"), ("same_sentence", "false"), ("positive_weight", "1.0")):
        text = re.sub(rf"(\[components.relation_extractor\]\n(?:.*\n)*?){key} = .*\n", rf"\g<1>{key} = {value}\n", text, count=1)
    path = work / "baseline.cfg"
    path.write_text(text, encoding="utf-8")
    return path


def per_doc_sets(nlp, gold: list[Doc], symmetric: list[str]) -> list[dict]:
    """Per dev doc: (predicted, gold) entity and relation sets; symmetric types compared as unordered pairs."""
    out = []
    for pred, ref in zip(nlp.pipe(d.text for d in gold), gold):
        out.append({
            "ents": ({(e.start_char, e.end_char, e.label_) for e in pred.ents}, {(e.start_char, e.end_char, e.label_) for e in ref.ents}),
            "rels": (relation_triples(pred.user_data, symmetric), relation_triples(ref.user_data, symmetric)),
        })
    return out


def per_doc_given_gold(nlp, gold: list[Doc], symmetric: list[str]) -> list[dict]:
    """Like :func:`per_doc_sets` for relations only, with the gold entities in place of NER's (isolates the
    relation component from entity errors)."""
    rel = nlp.get_pipe("relation_extractor")
    out = []
    for ref in gold:
        doc = nlp.make_doc(ref.text)
        for name, proc in nlp.pipeline:
            if name == "ner":
                doc.ents = [s for e in ref.ents if (s := doc.char_span(e.start_char, e.end_char, e.label_, alignment_mode="expand"))]
            elif name != "relation_extractor":
                doc = proc(doc)
        doc = rel(doc)
        out.append({"rels": (relation_triples(doc.user_data, symmetric), relation_triples(ref.user_data, symmetric))})
    return out


def micro(docs: list[dict], key: str, label: str | None = None) -> dict:
    tp = n_pred = n_gold = 0
    for d in docs:
        pred, gold = d[key]
        if label is not None:
            pred = {x for x in pred if x[-1] == label}
            gold = {x for x in gold if x[-1] == label}
        tp += len(pred & gold)
        n_pred += len(pred)
        n_gold += len(gold)
    return {**prf(tp, n_pred, n_gold), "n": n_gold}


def bootstrap(docs: list[dict], key: str, seed: int = 0) -> tuple[float, float]:
    rng = random.Random(seed)
    values = sorted(micro([rng.choice(docs) for _ in docs], key)["f"] for _ in range(BOOTSTRAP))
    return values[int(0.025 * BOOTSTRAP)], values[int(0.975 * BOOTSTRAP) - 1]


def paired_ratio(ours: list[dict], other: list[dict], key: str, seed: int = 0) -> tuple[float, float]:
    """95% interval of F1(ours) / F1(other) over paired document resamples (both systems on the same draw)."""
    rng = random.Random(seed)
    values = []
    for _ in range(BOOTSTRAP):
        draw = [rng.randrange(len(ours)) for _ in ours]
        a, b = micro([ours[i] for i in draw], key)["f"], micro([other[i] for i in draw], key)["f"]
        values.append(a / b if b else float("inf"))
    values.sort()
    return values[int(0.025 * BOOTSTRAP)], values[int(0.975 * BOOTSTRAP) - 1]


def fmt(s: dict) -> str:
    return f"P {s['p']:.3f}  R {s['r']:.3f}  F1 {s['f']:.3f}"


def print_comparison(title: str, key: str, ours: list[dict], other: list[dict], other_name: str, target: float) -> None:
    """Per-label and micro scores of two systems side by side, with bootstrap intervals and their ratio."""
    column = "label" if key == "ents" else "type"
    labels = sorted({item[2] for d in ours for item in d[key][1]})
    print(f"\n{title}\n{column:<18}{'n':>5}  {'ours':<32}{other_name}")
    for label in labels:
        a, b = micro(ours, key, label), micro(other, key, label)
        print(f"{label:<18}{a['n']:>5}  {fmt(a):<32}{fmt(b)}")
    a, b = micro(ours, key), micro(other, key)
    print(f"{'micro':<18}{a['n']:>5}  {fmt(a):<32}{fmt(b)}")
    lo_a, hi_a = bootstrap(ours, key)
    lo_b, hi_b = bootstrap(other, key)
    ratio = a["f"] / b["f"] if b["f"] else float("inf")
    lo_r, hi_r = paired_ratio(ours, other, key)
    short = "stock" if key == "ents" else "baseline"
    print(f"95% CI micro F1: ours [{lo_a:.3f}, {hi_a:.3f}], {short} [{lo_b:.3f}, {hi_b:.3f}]; ratio {ratio:.2f}x "
          f"[{lo_r:.2f}, {hi_r:.2f}] (paired bootstrap; target {target}x)")


def print_entities(ours: list[dict], stock: list[dict]) -> None:
    print_comparison("Entities on re3d dev (gold flattened with --overlap longest)", "ents", ours, stock,
                     "stock spaCy NER", 1.25)


def print_relations(ours: list[dict], base: list[dict], how: str = "") -> None:
    print_comparison(f"Relations end to end on re3d dev{how}", "rels", ours, base, "tutorial-style baseline", 1.5)


def tune_global_threshold(nlp, tune_path: Path) -> float:
    """Give a tutorial-style model the one global threshold that maximises its micro F1 on the tune slice."""
    rel = nlp.get_pipe("relation_extractor")
    refs = list(read_docbin(tune_path, make_nlp()))
    with nlp.select_pipes(disable=["relation_extractor"]):
        docs = list(nlp.pipe(d.text for d in refs))
    thresholds = rel.tune_thresholds(docs, refs, min_support=sys.maxsize)  # every type takes the pooled best
    return next(iter(thresholds.values()), rel.cfg["threshold"])


def speed(nlp, texts: list[str]) -> float:
    list(nlp.pipe(texts[:2]))  # warm up
    n_tokens, started = 0, time.perf_counter()
    for _ in range(SPEED_REPEATS):
        for doc in nlp.pipe(texts, batch_size=64):
            n_tokens += len(doc)
    return n_tokens / (time.perf_counter() - started)


PTB_TAGS = ("$ '' , -LRB- -RRB- . : ADD AFX CC CD DT EX FW HYPH IN JJ JJR JJS LS MD NFP NN NNP NNPS NNS PDT POS PRP "
            "PRP$ RB RBR RBS RP SYM TO UH VB VBD VBG VBN VBP VBZ WDT WP WP$ WRB XX _SP ``").split()
CLEAR_DEPS = ("ROOT acl acomp advcl advmod agent amod appos attr aux auxpass case cc ccomp compound conj csubj "
              "csubjpass dative dep det dobj expl intj mark meta neg nmod npadvmod nsubj nsubjpass nummod oprd "
              "parataxis pcomp pobj poss preconj predet prep prt punct quantmod relcl xcomp").split()
ONTONOTES = ("CARDINAL DATE EVENT FAC GPE LANGUAGE LAW LOC MONEY NORP ORDINAL ORG PERCENT PERSON PRODUCT QUANTITY "
             "TIME WORK_OF_ART").split()


def sm_like_pipeline():
    """en_core_web_sm's architecture with untrained weights, for a same-machine speed reference.

    en_core_web_sm is not on PyPI and nothing may be downloaded from a hub, so its speed is measured on a
    pipeline built like it: a shared tok2vec (NORM/PREFIX/SUFFIX/SHAPE/SPACY/IS_SPACE, width 96, depth 4) for the
    tagger (PTB tags) and the parser (ClearNLP labels), and an NER with its own tok2vec of the same size (18
    OntoNotes labels). Transition-based parsing and NER take the same number of steps whatever the weights, so
    the untrained copy runs at the trained model's speed. Its rule-based attribute_ruler and lemmatizer are left
    out, so the figure is an upper bound on en_core_web_sm's speed (a harder reference for us, not an easier one).
    """
    config = init_config(lang="en", pipeline=["tagger", "parser", "ner"], optimize="efficiency")
    embed = config["components"]["tok2vec"]["model"]["embed"]
    embed["attrs"] = ["NORM", "PREFIX", "SUFFIX", "SHAPE", "SPACY", "IS_SPACE"]
    embed["rows"] = [5000, 1000, 2500, 2500, 50, 50]
    own = {"@architectures": "spacy.Tok2Vec.v2", "embed": {**embed, "width": 96},
           "encode": {**config["components"]["tok2vec"]["model"]["encode"], "width": 96}}
    config["components"]["ner"]["model"]["tok2vec"] = own
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    for name, labels in (("tagger", PTB_TAGS), ("parser", CLEAR_DEPS), ("ner", ONTONOTES)):
        for label in labels:
            nlp.get_pipe(name).add_label(label)
    nlp.initialize()
    return nlp


def scaling(nlp) -> None:
    """Relation component time per entity on synthetic docs with a growing number of entities."""
    rel = nlp.get_pipe("relation_extractor")
    head, tail, _ = rel.cfg["allowed"][0]
    labels = [head, tail]
    print("\nRelation cost vs entities per document (synthetic text, tok2vec output precomputed)")
    for n in SCALING_ENTITIES:
        words = [w for i in range(n) for w in (f"Name{i}", "met", "the", "others", "and")]
        doc = nlp.make_doc(" ".join(words))
        doc.ents = [Span(doc, 5 * i, 5 * i + 1, label=labels[i % len(labels)]) for i in range(n)]
        for name, proc in nlp.pipeline:
            if name not in ("ner", "relation_extractor"):
                doc = proc(doc)
        started = time.perf_counter()
        doc = rel(doc)
        seconds = time.perf_counter() - started
        n_cands = len(rel.candidates(doc, doc.ents)[0])
        print(f"  {n:>4} entities: {n_cands:>6} candidate pairs, {1e3 * seconds:8.2f} ms, {1e6 * seconds / n:8.1f} us/entity")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--re3d", type=Path, default=ROOT.parent / "shared" / "data" / "re3d")
    parser.add_argument("--work", type=Path, default=Path("/tmp/annotate-bench"))
    parser.add_argument("--config", type=Path, default=OUR_CONFIG,
                        help="Our pipeline's config (the baseline swaps its relation model; --set applies to ours only).")
    parser.add_argument("--max-steps", type=int, default=2000)
    parser.add_argument("--eval-frequency", type=int, default=100)
    parser.add_argument("--tune-fraction", type=float, default=0.1, help="Share of train documents held out to tune thresholds.")
    parser.add_argument("--reuse", action="store_true", help="Reuse models already trained in --work.")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="Extra config override for our pipeline only, e.g. training.dropout=0.2 (repeatable).")
    args = parser.parse_args()
    train_path, tune_path, dev_path, schema = prepare(args.re3d, args.work, args.tune_fraction)
    common = {"paths.train": str(train_path), "paths.dev": str(dev_path), "training.max_steps": args.max_steps,
              "training.eval_frequency": args.eval_frequency, "training.patience": 0}
    extra = {key: config_value(value) for key, value in (item.split("=", 1) for item in args.set)}
    ours_overrides = {**common, "paths.schema": str(schema), "paths.tune": str(tune_path), **extra}
    ours = run_training("ours", args.config, args.work / "ours", ours_overrides, tune=True, reuse=args.reuse)
    stock = run_training("stock ner", stock_config(args.work), args.work / "stock", common, tune=False, reuse=args.reuse)
    base = run_training("baseline", baseline_config(args.work, args.config), args.work / "baseline", common, tune=False, reuse=args.reuse)
    gold = read_docbin(dev_path, make_nlp())
    ours_nlp, stock_nlp, base_nlp = (spacy.load(s["model"]) for s in (ours, stock, base))
    symmetric = ours_nlp.get_pipe("relation_extractor").cfg["symmetric"]  # from the generated re3d schema
    ours_docs = per_doc_sets(ours_nlp, gold, symmetric)
    print(f"\nre3d dev: {len(gold)} documents, {sum(len(d) for d in gold)} tokens")
    print_entities(ours_docs, per_doc_sets(stock_nlp, gold, symmetric))
    print_relations(ours_docs, per_doc_sets(base_nlp, gold, symmetric), " (baseline as the tutorial runs it: threshold 0.5)")
    threshold = tune_global_threshold(base_nlp, tune_path)
    print_relations(ours_docs, per_doc_sets(base_nlp, gold, symmetric),
                    f" (baseline with its one global threshold tuned on {tune_path.name}: {threshold})")
    # thresholds were tuned on the held-out slice of train, not on dev; the untuned figure shows what tuning adds
    given = {name: micro(per_doc_given_gold(nlp, gold, symmetric), "rels") for name, nlp in (("ours", ours_nlp), ("baseline", base_nlp))}
    print(f"Relations given the gold entities: ours {fmt(given['ours'])}; baseline {fmt(given['baseline'])}")
    rel = ours_nlp.get_pipe("relation_extractor")
    tuned, rel.cfg["thresholds"] = rel.cfg["thresholds"], {}
    untuned = micro(per_doc_sets(ours_nlp, gold, symmetric), "rels")
    rel.cfg["thresholds"] = tuned
    print(f"ours: relation thresholds tuned on paths.{ours.get('thresholds_tuned_on')} ({tune_path.name}: held-out train documents); "
          f"with the global threshold {rel.cfg['threshold']} instead: {fmt(untuned)}")
    texts = [d.text for d in gold]
    ours_speed, sm_speed = speed(ours_nlp, texts), speed(sm_like_pipeline(), texts)
    print(f"\nInference, one thread: ours (NER + relations) {ours_speed:,.0f} tokens/s; "
          f"stock NER {speed(stock_nlp, texts):,.0f} tokens/s; en_core_web_sm's architecture (tagger + parser + "
          f"NER, untrained copy, see sm_like_pipeline) {sm_speed:,.0f} tokens/s; "
          f"ours/sm {ours_speed / sm_speed:.2f}x (target 2x; issue's figures: sm ~7,000, stock NER ~17,000)")
    scaling(ours_nlp)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nPeak memory (max RSS of this process): {peak:,.0f} MiB")
    print(f"Training time: ours {ours['train_seconds']} s (to best ~{ours['time_to_best']} s), "
          f"stock {stock['train_seconds']} s, baseline {base['train_seconds']} s; max_steps {args.max_steps}")


if __name__ == "__main__":
    main()
