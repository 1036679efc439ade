"""relation_extractor: candidate pairs, loss weights, thresholds, scorer, model shapes, registration."""

import numpy
import pytest
import spacy
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import registry

from annotate.components.relation_extractor import _best_threshold, _weighted_bce
from annotate.components.relation_model import N_COLUMNS, _segments, dep_path_key, distance_bucket
from annotate.components.scorer import score_relations
from annotate.docbin import RELATIONS_KEY

ALLOWED = [["PERSON", "ROLE", "HAS_ROLE"], ["PERSON", "PERSON", "MEETS"], ["GPE", "GPE", "SUPPORTS"]]


def _pipe(**cfg):
    nlp = spacy.blank("en")
    rel = nlp.add_pipe("relation_extractor", config=cfg)
    rel.cfg["allowed"] = ALLOWED
    rel.cfg["symmetric"] = ["MEETS"]
    for label in ("HAS_ROLE", "MEETS", "SUPPORTS"):
        rel.add_label(label)
    return nlp, rel


def _doc(nlp, words, ents):
    doc = Doc(nlp.vocab, words=words)
    doc.ents = [Span(doc, s, e, label=lab) for s, e, lab in ents]
    return doc


def test_components_factory_and_architectures_are_registered():
    assert "relation_extractor" in spacy.blank("en").factory_names
    assert registry.architectures.get("annotate.RelationModel.v1")
    assert registry.architectures.get("annotate.RelationBaseline.v1")
    assert registry.scorers.get("annotate.relation_scorer.v1")


def test_components_candidates_follow_schema_and_symmetry():
    nlp, rel = _pipe()
    words = ["Macron", "President", "met", "Scholz", "in", "Paris"]
    doc = _doc(nlp, words, [(0, 1, "PERSON"), (1, 2, "ROLE"), (3, 4, "PERSON"), (5, 6, "GPE")])
    cands, mask, pairs = rel.candidates(doc, doc.ents)
    assert cands.shape == (3, N_COLUMNS)
    got = [(h.text, t.text, [lab for lab, m in zip(rel.labels, row) if m]) for (h, t), row in zip(pairs, mask)]
    # HAS_ROLE only PERSON->ROLE; MEETS once per unordered pair (earlier entity as head); Paris has no partner
    assert got == [("Macron", "President", ["HAS_ROLE"]), ("Macron", "Scholz", ["MEETS"]), ("Scholz", "President", ["HAS_ROLE"])]


def test_components_all_mode_is_every_ordered_pair():
    nlp, rel = _pipe(candidates="all")
    doc = _doc(nlp, ["A", "B", "C", "D"], [(0, 1, "PERSON"), (1, 2, "ROLE"), (2, 3, "GPE"), (3, 4, "ORG")])
    cands, mask, _ = rel.candidates(doc, doc.ents)
    # 12 ordered pairs x 3 labels, less the symmetric MEETS on the 6 reversed pairs (scored once per pair)
    assert len(cands) == 12 and mask.sum() == 36 - 6


@pytest.mark.parametrize("n_ents", [10, 40, 160])
def test_components_window_keeps_candidates_linear(n_ents):
    nlp, rel = _pipe(max_distance=4)
    words = [w for i in range(n_ents) for w in (f"P{i}", "and", "then", "x")]
    doc = _doc(nlp, words, [(4 * i, 4 * i + 1, "PERSON") for i in range(n_ents)])
    cands, _, _ = rel.candidates(doc, doc.ents)
    # gap between neighbours is 3 tokens, so each entity pairs with its next one only (MEETS, once)
    assert len(cands) == n_ents - 1


def test_components_candidates_count_entities_between():
    nlp, rel = _pipe(max_distance=100)
    words = ["A", "met", "B", "C", "D", "E", "and", "F"]
    doc = _doc(nlp, words, [(0, 1, "PERSON"), (2, 3, "PERSON"), (3, 4, "PERSON"), (4, 5, "PERSON"), (5, 6, "PERSON"), (7, 8, "PERSON")])
    cands, _, pairs = rel.candidates(doc, doc.ents)
    between = {(h.text, t.text): int(row[7]) for (h, t), row in zip(pairs, cands)}
    # A-F has four entities between it, capped at MAX_BETWEEN = 3
    assert (between[("A", "B")], between[("A", "C")], between[("A", "E")], between[("A", "F")], between[("E", "F")]) == (0, 1, 3, 3, 0)


def test_components_same_sentence_limits_pairs():
    nlp, rel = _pipe(max_distance=100)
    doc = Doc(nlp.vocab, words=["Macron", "spoke", ".", "Scholz", "left"], sent_starts=[True, False, False, True, False])
    doc.ents = [Span(doc, 0, 1, "PERSON"), Span(doc, 3, 4, "PERSON")]
    assert len(rel.candidates(doc, doc.ents)[0]) == 0
    rel.cfg["same_sentence"] = False
    assert len(rel.candidates(doc, doc.ents)[0]) == 1


@pytest.mark.parametrize(("spans", "bucket"), [((0, 1, 1, 2), 0), ((0, 1, 2, 3), 1), ((0, 1, 5, 6), 3), ((5, 6, 0, 1), 11), ((0, 1, 300, 301), 7)])
def test_components_distance_bucket(spans, bucket):
    assert distance_bucket(*spans) == bucket


def test_components_weighted_bce_masks_and_weights():
    logits = numpy.zeros((2, 2), dtype="f")
    y = numpy.asarray([[1, 0], [0, 0]], dtype="f")
    weights = numpy.asarray([[3, 1], [1, 0]], dtype="f")
    loss, grad = _weighted_bce(logits, y, weights)
    assert loss == pytest.approx(5 * numpy.log(2) / 2, rel=1e-4)
    assert grad.ravel().tolist() == pytest.approx([-0.75, 0.25, 0.25, 0.0])


def test_components_best_threshold_prefers_f1_then_default():
    scored = [(0.9, True), (0.6, False), (0.3, True)]
    assert _best_threshold(scored, n_gold=2, default=0.5) == 0.3  # F1 0.8 at <= 0.3, 0.67 above 0.6
    assert _best_threshold([(0.9, True)], n_gold=1, default=0.5) == 0.5  # every threshold fits: keep default


def _rel(h, t, label):
    return {"label": label, "head": list(h), "tail": list(t), "attrs": {}}


def test_components_scorer_micro_macro_and_symmetry():
    nlp = spacy.blank("en")
    words = ["Macron", "met", "Scholz", "and", "Biden"]
    ref = _doc(nlp, words, [(0, 1, "PERSON"), (2, 3, "PERSON"), (4, 5, "PERSON")])
    pred = _doc(nlp, words, [(0, 1, "PERSON"), (2, 3, "PERSON")])
    m, s, b = (0, 6, "PERSON"), (11, 17, "PERSON"), (22, 27, "PERSON")
    ref.user_data[RELATIONS_KEY] = [_rel(m, s, "MEETS"), _rel(m, b, "MEETS"), _rel(s, m, "SUPPORTS")]
    pred.user_data[RELATIONS_KEY] = [_rel(s, m, "MEETS"), _rel(m, s, "SUPPORTS"), _rel(s, m, "SUPPORTS")]
    scores = score_relations([Example(pred, ref)], symmetric=["MEETS"])
    # MEETS: reversed prediction still matches (symmetric): p 1, r 1/2; SUPPORTS: p 1/2, r 1
    assert scores["rel_f_per_type"]["MEETS"] == pytest.approx({"p": 1.0, "r": 0.5, "f": 2 / 3})
    assert scores["rel_f_per_type"]["SUPPORTS"] == pytest.approx({"p": 0.5, "r": 1.0, "f": 2 / 3})
    assert scores["rel_micro_p"] == pytest.approx(2 / 3) and scores["rel_micro_r"] == pytest.approx(2 / 3)
    assert scores["rel_macro_f"] == pytest.approx(2 / 3)
    assert scores["ents_macro_p"] == 1.0 and scores["ents_macro_r"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("architecture", ["annotate.RelationModel.v1", "annotate.RelationModel.v2", "annotate.RelationModel.v3",
                                          "annotate.RelationBaseline.v1"])
def test_components_model_shapes_and_gradients(architecture):
    nlp = spacy.blank("en")
    config = {"model": {"@architectures": architecture, "tok2vec": {
        "@architectures": "spacy.HashEmbedCNN.v2", "pretrained_vectors": None, "width": 8, "depth": 1,
        "embed_size": 100, "window_size": 1, "maxout_pieces": 2, "subword_features": True}}}
    rel = nlp.add_pipe("relation_extractor", config=config)
    rel.cfg["allowed"] = ALLOWED
    rel.add_label("HAS_ROLE")
    ref = _doc(nlp, ["Macron", "is", "President"], [(0, 1, "PERSON"), (2, 3, "ROLE")])
    ref.user_data[RELATIONS_KEY] = [_rel((0, 6, "PERSON"), (10, 19, "ROLE"), "HAS_ROLE")]
    examples = [Example(nlp.make_doc(ref.text), ref)]
    rel.initialize(lambda: examples, nlp=nlp)
    cands = rel.candidates(ref, ref.ents)[0]
    out = rel.model.predict(([ref], [cands]))
    assert out.shape == (1, 1 + 2)  # one label + two attribute outputs
    losses = {}
    for _ in range(3):
        rel.update(examples, sgd=nlp.resume_training(), losses=losses)
    assert losses["relation_extractor"] > 0


def test_components_mean_pool_and_gradient_match_hand_values():
    from thinc.api import NumpyOps

    from annotate.components.relation_model import (
        _mean_pool,
        _mean_pool_backward,
        _segments,
    )

    ops = NumpyOps()
    x = numpy.arange(12, dtype="f").reshape((6, 2))  # token t = [2t, 2t + 1]
    cands = numpy.asarray([[0, 2, 4, 5, 0, 0, 0], [4, 5, 0, 1, 0, 0, 0], [1, 2, 2, 3, 0, 0, 0]], dtype="uint64")
    seg = _segments(cands, True)
    pooled = _mean_pool(ops, x, seg)
    # pair 1: head tokens 0-1, tail token 4, between tokens 2-3; pair 2 reversed; pair 3 adjacent (empty between)
    assert pooled.tolist() == [[1, 2], [8, 9], [5, 6], [8, 9], [0, 1], [4, 5], [2, 3], [4, 5], [0, 0]]
    grad = _mean_pool_backward(ops, numpy.ones_like(pooled), seg, 6)
    # token 1: pair 1 head (1/2) + pair 2 between (1/3) + pair 3 head (1); token 5 feeds nothing
    assert grad[:, 0].tolist() == pytest.approx([1.5, 1 / 2 + 1 / 3 + 1, 1 / 2 + 1 / 3 + 1, 1 / 2 + 1 / 3, 2.0, 0.0])


@pytest.mark.parametrize(("min_support", "a_threshold"), [(2, 0.35), (3, 0.2)])
def test_components_pick_thresholds_pools_rare_types(min_support, a_threshold):
    from annotate.components.relation_extractor import pick_thresholds

    scored = {"A": [(0.9, True), (0.8, True), (0.3, False)], "B": [(0.2, True), (0.15, False)], "C": []}
    # pooled over A and B (3 gold): best F1 6/7 at 0.2; A alone fits perfectly on (0.3, 0.8], nearest to 0.2 is 0.35
    got = pick_thresholds(scored, {"A": 2, "B": 1, "C": 0}, 0.5, min_support=min_support)
    assert got == {"A": a_threshold, "B": 0.2, "C": 0.2}


def test_components_pick_thresholds_without_gold_changes_nothing():
    from annotate.components.relation_extractor import pick_thresholds

    assert pick_thresholds({"A": [(0.9, False)]}, {"A": 0}, 0.5) == {}


@pytest.mark.parametrize(("mode", "expected"), [
    ("union", [("Macron", "PERSON"), ("President", "ROLE"), ("Scholz", "PERSON")]),
    ("gold", [("Macron", "PERSON"), ("President", "ROLE")]),
])
def test_components_train_spans_add_predicted_entities(mode, expected):
    nlp, rel = _pipe(train_entities=mode)
    words = ["Macron", "President", "met", "Scholz"]
    ref = _doc(nlp, words, [(0, 1, "PERSON"), (1, 2, "ROLE")])
    pred = _doc(nlp, words, [(0, 1, "PERSON"), (3, 4, "PERSON")])  # one right, one spurious, one missed
    spans = rel._train_spans(Example(pred, ref))
    assert [(s.text, s.label_) for s in spans] == expected


def test_components_spurious_predicted_entity_gives_negative_pairs():
    nlp, rel = _pipe()
    words = ["Macron", "President", "met", "Scholz"]
    ref = _doc(nlp, words, [(0, 1, "PERSON"), (1, 2, "ROLE")])
    ref.user_data[RELATIONS_KEY] = [_rel((0, 6, "PERSON"), (7, 16, "ROLE"), "HAS_ROLE")]
    eg = Example(_doc(nlp, words, [(3, 4, "PERSON")]), ref)
    _, mask, pairs = rel.candidates(eg.predicted, rel._train_spans(eg))
    y, _ = rel._targets(eg, pairs, mask)
    got = [(h.text, t.text, row[:3].tolist()) for (h, t), row in zip(pairs, y)]
    assert got == [("Macron", "President", [1.0, 0.0, 0.0]), ("Macron", "Scholz", [0.0, 0.0, 0.0]),
                   ("Scholz", "President", [0.0, 0.0, 0.0])]


def test_components_rejects_unknown_train_entities():
    with pytest.raises(ValueError, match="train_entities must be one of"):
        _pipe(train_entities="predicted")


def _parsed(words, heads, deps):
    nlp = spacy.blank("en")
    return Doc(nlp.vocab, words=words, heads=heads, deps=deps)


def test_components_dep_path_key_follows_the_tree():
    # "Macron met Scholz in Paris": met is the root; Macron nsubj, Scholz dobj, in prep, Paris pobj
    doc = _parsed(["Macron", "met", "Scholz", "in", "Paris"], [1, 1, 1, 1, 3], ["nsubj", "ROOT", "dobj", "prep", "pobj"])
    macron, scholz, paris = doc[0:1], doc[2:3], doc[4:5]
    assert dep_path_key(macron, scholz) == dep_path_key(doc[0:1], doc[2:3]) != 0
    assert dep_path_key(macron, scholz) != dep_path_key(scholz, macron)  # direction matters
    assert dep_path_key(macron, paris) != dep_path_key(macron, scholz)
    unparsed = Doc(spacy.blank("en").vocab, words=["Macron", "met", "Scholz"])
    assert dep_path_key(unparsed[0:1], unparsed[2:3]) == 0


def test_components_side_context_segments_are_clipped():
    cands = numpy.asarray([[0, 1, 3, 4, 0, 0, 0, 0, 0], [5, 7, 8, 9, 0, 0, 0, 0, 0]], dtype="uint64")
    starts, ends, _ = _segments(cands, True, side_window=3, n_tokens=10)
    # per pair: head, tail, between, before the first span, after the second
    assert list(zip(starts.tolist(), ends.tolist())) == [(0, 1), (3, 4), (1, 3), (0, 0), (4, 7),
                                                         (5, 7), (8, 9), (7, 8), (2, 5), (9, 10)]
