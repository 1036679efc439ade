"""Benchmark: time evaluation, inter-annotator agreement and adjudication on synthetic labelled records.

Builds, per size, synthetic gold records (about 30 entities and 10 relations per document, schema labels),
a prediction for each (some entities dropped, relabelled, shifted or spurious; some relations dropped or
retyped) and three annotators' versions (the same kinds of noise, one record per document per annotator).
Then times :func:`annotate.evaluate.evaluate` (1,000 bootstrap resamples), :func:`annotate.agreement.agreement`
(3 annotators) and :func:`annotate.adjudicate.adjudicate` (majority), and prints a table of seconds.

    .venv/bin/python scripts/bench_metrics.py [--sizes 200,2000] [--bootstrap 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from annotate.adjudicate import adjudicate
from annotate.agreement import agreement
from annotate.evaluate import evaluate
from annotate.records import Entity, LabelledDoc, Relation
from annotate.schema import Schema, load_schema

ENTITIES_PER_DOC = 30
RELATIONS_PER_DOC = 10
ANNOTATORS = ("alice", "bob", "carol")
FILLER = ["the", "a", "of", "to", "in", "and", "on", "for", "with", "by", "from", "at", "as", "that", "was", "were", "said", "after", "before", "during"]
NAMES = ["Macron", "Umerov", "Paris", "Kyiv", "NATO", "Brussels", "Berlin", "Warsaw", "brigade", "minister", "summit", "treaty", "drone"]


def make_gold(i: int, schema: Schema, rng: random.Random) -> LabelledDoc:
    """A document of filler words with ENTITIES_PER_DOC single-or-two-word entities and some relations."""
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    for _ in range(ENTITIES_PER_DOC):
        for _ in range(rng.randint(3, 8)):
            word = rng.choice(FILLER) + " "
            parts.append(word)
            pos += len(word)
        name = " ".join(rng.choice(NAMES) for _ in range(rng.randint(1, 2)))
        spans.append((pos, pos + len(name)))
        parts.append(name + " ")
        pos += len(name) + 1
    text = "".join(parts).rstrip() + "."
    entities = [
        Entity(id=f"e{k + 1}", start=s, end=e, label=rng.choice(schema.entity_labels), text=text[s:e])
        for k, (s, e) in enumerate(spans)
    ]
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < RELATIONS_PER_DOC:
        h = rng.randrange(len(entities))
        t = min(len(entities) - 1, h + rng.randint(1, 4))
        if h != t:
            pairs.add((h, t))
    relations = [
        Relation(id=f"r{k + 1}", head=entities[h].id, tail=entities[t].id, label=rng.choice(schema.relation_labels))
        for k, (h, t) in enumerate(sorted(pairs))
    ]
    return LabelledDoc(id=f"doc{i}", text=text, entities=entities, relations=relations)


def perturb(
    gold: LabelledDoc, schema: Schema, rng: random.Random, *, noise: float, annotator: str | None, status: str | None
) -> LabelledDoc:
    """A noisy copy of ``gold``: each entity kept, relabelled, shifted or dropped; some spurious ones added."""
    text = gold.text
    entities, kept = [], {}
    for ent in gold.entities:
        r = rng.random()
        if r < noise / 3:
            continue  # missed
        start, end, label = ent.start, ent.end, ent.label
        if r < 2 * noise / 3:
            label = rng.choice(schema.entity_labels)
        elif r < noise and end - start > 2:
            end -= 1  # boundary error
        new = Entity(id=ent.id, start=start, end=end, label=label, text=text[start:end])
        entities.append(new)
        kept[ent.id] = new
    for k in range(int(len(gold.entities) * noise / 3)):  # spurious: a filler word labelled
        start = rng.randrange(0, max(1, len(text) - 4))
        while start > 0 and text[start - 1] != " ":
            start -= 1
        end = text.find(" ", start)
        end = len(text) - 1 if end == -1 else end
        if end > start:
            entities.append(Entity(id=f"s{k + 1}", start=start, end=end, label=rng.choice(schema.entity_labels),
                                   text=text[start:end]))
    relations = []
    for rel in gold.relations:
        if rel.head not in kept or rel.tail not in kept or rng.random() < noise / 2:
            continue
        label = rng.choice(schema.relation_labels) if rng.random() < noise / 2 else rel.label
        relations.append(Relation(id=rel.id, head=rel.head, tail=rel.tail, label=label))
    return LabelledDoc(id=gold.id, text=text, entities=entities, relations=relations, annotator=annotator,
                       status=status)


def build(n: int, schema: Schema, seed: int) -> tuple[list[LabelledDoc], list[LabelledDoc], list[LabelledDoc]]:
    rng = random.Random(seed)
    gold = [make_gold(i, schema, rng) for i in range(n)]
    pred = [perturb(g, schema, rng, noise=0.3, annotator=None, status="predicted") for g in gold]
    per_annotator = [
        perturb(g, schema, rng, noise=0.15, annotator=name, status="confirmed") for g in gold for name in ANNOTATORS
    ]
    return gold, pred, per_annotator


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,2000", help="comma-separated document counts")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for evaluate")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    schema = load_schema()
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        build_s, (gold, pred, per_annotator) = timed(build, n, schema, args.seed)
        eval_s, result = timed(evaluate, pred, gold, schema=schema, n_boot=args.bootstrap, seed=args.seed)
        agree_s, agree = timed(agreement, per_annotator, schema=schema)
        adj_s, adj = timed(adjudicate, per_annotator, schema=schema)
        ents = sum(len(d.entities) for d in gold)
        rels = sum(len(d.relations) for d in gold)
        f1 = result["views"]["entities.exact"]["micro"]["f1"]
        rows.append((n, ents, rels, build_s, eval_s, agree_s, adj_s, f1, len(adj.docs), len(adj.review)))
        assert agree["documents"] == n, agree["documents"]
    header = ("docs", "gold ents", "gold rels", "build s", f"evaluate s (boot {args.bootstrap})",
              "agreement s (3 ann.)", "adjudicate s", "ent F1", "adj docs", "review items")
    table = [header] + [
        (str(n), str(e), str(r), f"{b:.2f}", f"{ev:.2f}", f"{ag:.2f}", f"{ad:.2f}", f"{f1:.3f}", str(d), str(v))
        for n, e, r, b, ev, ag, ad, f1, d, v in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for k, row in enumerate(table):
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
        if k == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    main()
