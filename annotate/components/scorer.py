"""Scores for ``relation_extractor``, registered so spaCy's training loop and ``nlp.evaluate`` report them.

Relations are compared end to end as ``(head span, tail span, type)`` with spans keyed by character
offsets and entity label, so a relation counts only if both predicted entities are exactly right.
Symmetric types compare as unordered pairs. Keys written (all floats in [0, 1] except the dicts):

* ``rel_micro_p/r/f``: pooled over all relation types;
* ``rel_macro_p/r/f``: unweighted mean over the types present in gold or predictions;
* ``rel_f_per_type``: ``{type: {"p", "r", "f"}}``;
* ``ents_macro_p/r/f``: the entity counterpart of the macro scores (spaCy's ``ner`` scorer only gives micro
  and per-type scores).
"""


from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from spacy.training import Example
from spacy.util import registry

from ..docbin import RELATIONS_KEY

Triple = tuple[tuple[int, int, str], tuple[int, int, str], str]


def prf(tp: int, n_pred: int, n_gold: int) -> dict[str, float]:
    """Precision, recall and F1 from counts (0.0 where undefined)."""
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"p": p, "r": r, "f": f}


def relation_triples(user_data: dict, symmetric: Iterable[str] = ()) -> set[Triple]:
    """The relations stored in a doc's user data as comparable triples (symmetric ones in sorted order)."""
    symmetric = set(symmetric)
    out: set[Triple] = set()
    for rel in user_data.get(RELATIONS_KEY, []):
        head = (int(rel["head"][0]), int(rel["head"][1]), str(rel["head"][2]))
        tail = (int(rel["tail"][0]), int(rel["tail"][1]), str(rel["tail"][2]))
        if rel["label"] in symmetric and tail < head:
            head, tail = tail, head
        out.add((head, tail, rel["label"]))
    return out


def _tally(pairs: Iterable[tuple[set, set]], label_of: Callable[[Any], str]) -> tuple[Counter, Counter, Counter]:
    tp, n_pred, n_gold = Counter(), Counter(), Counter()
    for pred, gold in pairs:
        for item in pred:
            n_pred[label_of(item)] += 1
            if item in gold:
                tp[label_of(item)] += 1
        for item in gold:
            n_gold[label_of(item)] += 1
    return tp, n_pred, n_gold


def _summarise(prefix: str, tp: Counter, n_pred: Counter, n_gold: Counter) -> dict[str, Any]:
    labels = sorted(set(n_pred) | set(n_gold))
    micro = prf(sum(tp.values()), sum(n_pred.values()), sum(n_gold.values()))
    per_type = {label: prf(tp[label], n_pred[label], n_gold[label]) for label in labels}
    macro = {k: (sum(s[k] for s in per_type.values()) / len(per_type) if per_type else 0.0) for k in "prf"}
    out: dict[str, Any] = {f"{prefix}_macro_{k}": v for k, v in macro.items()}
    if prefix == "rel":
        out.update({f"rel_micro_{k}": v for k, v in micro.items()})
        out["rel_f_per_type"] = per_type
    return out


def score_relations(examples: Iterable[Example], *, symmetric: Iterable[str] = (), **_: Any) -> dict[str, Any]:
    """Relation micro/macro/per-type scores and entity macro scores over ``examples``."""
    symmetric = list(symmetric)
    rel_pairs, ent_pairs = [], []
    for eg in examples:
        rel_pairs.append((relation_triples(eg.predicted.user_data, symmetric), relation_triples(eg.reference.user_data, symmetric)))
        ent_pairs.append((
            {(e.start_char, e.end_char, e.label_) for e in eg.predicted.ents},
            {(e.start_char, e.end_char, e.label_) for e in eg.reference.ents},
        ))
    scores = _summarise("rel", *_tally(rel_pairs, lambda t: t[2]))
    scores.update(_summarise("ents", *_tally(ent_pairs, lambda t: t[2])))
    return scores


@registry.scorers("annotate.relation_scorer.v1")
def make_relation_scorer() -> Callable[..., dict[str, Any]]:
    return score_relations
