"""Rebuild the diplomacy-defence corpus from its markup: gold records, raw seed articles, double annotation,
agreement, adjudication and the generated tables of its card.

Inputs (reviewable, committed):
  corpora/diplomacy-defence/markup/*.txt              the gold annotation, one article per file
  corpora/diplomacy-defence/double/annotator1/*.txt   the first pass of the double-annotated articles, frozen
                                                       when the second pass started (the gold has moved on since)
  corpora/diplomacy-defence/double/annotator2/*.txt   the independent second pass
Outputs (generated, committed):
  corpora/diplomacy-defence/labelled.jsonl            gold records (what `annotate ingest seeds/` makes, labelled)
  seeds/<name>.txt                                     each article in the raw seed format (markup stripped)
  corpora/diplomacy-defence/double/labelled.jsonl     both passes as per-annotator records
  corpora/diplomacy-defence/double/agreement.json     `annotate agreement` of the two passes
  corpora/diplomacy-defence/double/adjudicated.jsonl  `annotate adjudicate` (+ .review.jsonl: every disagreement)
  corpora/diplomacy-defence/stats.json                `annotate stats` of the gold
  the tables between the GENERATED markers of corpora/diplomacy-defence/README.md

Usage: .venv/bin/python scripts/build_corpus.py [--check]   (--check: fail if any output would change)
"""

import argparse
import os
import sys
from pathlib import Path

from annotate.adjudicate import adjudicate
from annotate.agreement import agreement
from annotate.importers.markup import import_markup, read_markup
from annotate.records import dumps, read_docs, write_json, write_jsonl
from annotate.schema import load_schema
from annotate.stats import corpus_stats

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpora" / "diplomacy-defence"
SEEDS = ROOT / "seeds"
DOUBLE = CORPUS / "double"
CARD = CORPUS / "README.md"
BEGIN, END = "<!-- GENERATED: {} -->", "<!-- /GENERATED: {} -->"


def _f(value) -> str:
    return "—" if value is None else f"{value:.3f}"


def stats_tables(stats: dict, gold: list) -> str:
    articles = len({d.meta["article_id"] for d in gold})
    words = sum(len(d.text.split()) for d in gold)
    lines = [f"{articles} articles ({stats['documents']} records after chunking), {words:,} words, "
             f"{stats['entities']:,} entities, {stats['relations']:,} relations.", "",
             "| label | mentions |", "| --- | ---: |"]
    lines += [f"| {k} | {v} |" for k, v in stats["entities_per_label"].items()]
    lines += ["", "| relation type | relations | negated | hypothetical |", "| --- | ---: | ---: | ---: |"]
    for k, v in stats["relations_per_label"].items():
        flags = [r.attrs for d in gold for r in d.relations if r.label == k]
        lines.append(f"| {k} | {v} | {sum(bool(a.get('negated')) for a in flags)} | "
                     f"{sum(bool(a.get('hypothetical')) for a in flags)} |")
    return "\n".join(lines)


def agreement_tables(result: dict, n_articles: int) -> str:
    [pair] = result["pairs"]
    exact, lenient = pair["entities.exact"], pair["entities.overlap"]
    lines = [f"{n_articles} articles ({pair['documents']} records) annotated independently by two annotators "
             f"({' and '.join(pair['annotators'])}); F1 of one against the other (symmetric), exact span and label, "
             "lenient = overlapping span with the same label; Cohen's kappa over tokens.", "",
             "| entity label | annotator1 | annotator2 | F1 exact | F1 lenient | kappa |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for label, s in exact["per_label"].items():
        if s["f1"] is None or label == "*":
            continue
        lines.append(f"| {label} | {s['a']} | {s['b']} | {_f(s['f1'])} | {_f(lenient['per_label'][label]['f1'])} | "
                     f"{_f(pair['kappa']['per_label'].get(label))} |")
    m = exact["micro"]
    lines.append(f"| **all entities** | {m['a']} | {m['b']} | {_f(m['f1'])} | {_f(lenient['micro']['f1'])} | "
                 f"{_f(pair['kappa']['overall'])} |")
    strict, by_span = pair["relations.strict"], pair["relations.classification"]
    lines += ["", "Relations: strict = both entity spans and labels and the type equal; given shared spans = only "
              "relations whose two ends both annotators marked.", "",
              "| relation type | annotator1 | annotator2 | F1 strict | F1 given shared spans |", "| --- | ---: | ---: | ---: | ---: |"]
    for label, s in strict["per_label"].items():
        if s["f1"] is None:
            continue
        lines.append(f"| {label} | {s['a']} | {s['b']} | {_f(s['f1'])} | {_f(by_span['per_label'][label]['f1'])} |")
    r = strict["micro"]
    lines.append(f"| **all relations** | {r['a']} | {r['b']} | {_f(r['f1'])} | {_f(by_span['micro']['f1'])} |")
    return "\n".join(lines)


def replace_block(text: str, name: str, body: str) -> str:
    begin, end = BEGIN.format(name), END.format(name)
    if begin not in text or end not in text:
        raise SystemExit(f"{CARD}: markers {begin} ... {end} missing")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}\n{end}{tail}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="Exit 1 if the committed outputs are not what the markup gives.")
    args = parser.parse_args()
    os.chdir(ROOT)
    schema = load_schema()
    if args.check:
        _, docs, _ = read_markup([CORPUS / "markup"])
        same = [d.to_dict() for d in docs] == [d.to_dict() for d in read_docs(CORPUS / "labelled.jsonl")]
        print("labelled.jsonl is up to date" if same else "labelled.jsonl differs from the markup: run scripts/build_corpus.py")
        sys.exit(0 if same else 1)
    summary = import_markup([CORPUS / "markup"], CORPUS, seeds_out=Path("seeds"))  # meta.source: seeds/<name>
    names = {p.name for p in (CORPUS / "markup").glob("*.txt")}
    stale = [p for p in SEEDS.glob("*.txt") if p.name not in names]
    for path in stale:
        path.unlink()
    print(f"gold: {summary['files']} articles, {summary['documents']} records; seeds/ rewritten ({len(stale)} stale removed)")
    gold = list(read_docs(CORPUS / "labelled.jsonl"))
    stats = corpus_stats(gold, schema=schema)
    write_json(CORPUS / "stats.json", stats)
    card = CARD.read_text(encoding="utf-8")
    card = replace_block(card, "stats", stats_tables(stats, gold))
    if (DOUBLE / "annotator2").is_dir():
        first = sorted((DOUBLE / "annotator1").glob("*.txt"))
        second = sorted((DOUBLE / "annotator2").glob("*.txt"))
        if [p.name for p in first] != [p.name for p in second]:
            raise SystemExit("double/annotator1 and double/annotator2 must hold the same file names")
        _, a1, _ = read_markup(first, annotator="annotator1")
        _, a2, _ = read_markup(second, annotator="annotator2")
        write_jsonl(DOUBLE / "labelled.jsonl", a1 + a2)
        result = agreement(a1 + a2, schema=schema)
        write_json(DOUBLE / "agreement.json", result)
        adjudicated = adjudicate(a1 + a2, prefer=["annotator1"], schema=schema)
        write_jsonl(DOUBLE / "adjudicated.jsonl", adjudicated.docs)
        write_jsonl(DOUBLE / "adjudicated.review.jsonl", adjudicated.review)
        card = replace_block(card, "agreement", agreement_tables(result, len(first)))
        print(f"double annotation: {len(first)} articles; entity F1 {result['overall']['entities.exact']['micro']['f1']:.3f}, "
              f"relation F1 {result['overall']['relations.strict']['micro']['f1']:.3f}; "
              f"{len(adjudicated.review)} disputed items in double/adjudicated.review.jsonl")
    CARD.write_text(card, encoding="utf-8")
    print(dumps({k: stats[k] for k in ("documents", "entities", "relations")}).strip())


if __name__ == "__main__":
    main()
