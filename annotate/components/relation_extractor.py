"""``relation_extractor``: a spaCy ``TrainablePipe`` that finds typed relations between ``doc.ents``.

Reads ``doc.ents`` (from ``ner``), writes ``doc.user_data["annotate_relations"]`` in the format of
:mod:`annotate.docbin` (relation ends keyed by character offsets and label) plus a ``score``.

How it differs from the public spaCy tutorial component (explosion/projects ``tutorials/rel_component``):

* **Candidates**: ordered pairs of entities whose labels some relation type admits (``allowed`` triples,
  from the schema file given as ``schema`` or, without one, from the training data), within
  ``max_distance`` tokens and, with ``same_sentence`` and sentence boundaries present, in one sentence.
  Entities are scanned in order and the scan stops at the window, so cost grows linearly with the number of
  entities for a fixed window. ``candidates = "all"`` gives the tutorial behaviour (every ordered pair).
* **Representation**: see :mod:`annotate.components.relation_model`.
* **Imbalance**: positive cells of the binary cross-entropy weigh ``positive_weight`` times a negative;
  label cells a pair's labels cannot take are masked out of loss and prediction.
* **Thresholds**: one per type in ``cfg["thresholds"]`` (``threshold`` until tuned);
  :meth:`RelationExtractor.tune_thresholds` picks them on held-out data (``annotate train`` calls it on
  ``paths.tune``, a document-level slice kept out of training, so the dev score stays clean): one pooled
  threshold for all types, then an own one for each type with at least ``MIN_TUNE_SUPPORT`` gold relations
  there (a type seen a handful of times would get a threshold fitted to noise).
* **Predicted entities**: end to end the component sees NER's entities, not gold ones. With
  ``train_entities = "union"`` (the default) it trains on the union of the gold entities and those already
  on the predicted doc (put there by ``ner`` when the config lists it, and ``tok2vec``, in
  ``[training] annotating_components``); pairs that are not gold relations, including those with a wrong
  or misplaced entity, are negatives. ``"gold"`` trains on gold entities only.
* **Symmetric types** (``MEETS``): scored once per unordered pair, head = the earlier entity.
* **Attributes**: extra sigmoid outputs for ``negated`` / ``hypothetical`` (``ATTRIBUTES``), trained on
  gold-positive pairs only, written to the predicted relation's ``attrs``.
* **Scores**: micro and macro P/R/F and per type (:mod:`annotate.components.scorer`).
"""


import logging
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any

import numpy
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, set_dropout_rate
from thinc.types import Floats2d

from ..docbin import RELATIONS_KEY
from .relation_model import MAX_BETWEEN, N_COLUMNS, dep_path_key, distance_bucket

logger = logging.getLogger(__name__)

ATTRIBUTES = ("negated", "hypothetical")
ATTRIBUTE_THRESHOLD = 0.5
THRESHOLD_GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))
INIT_SAMPLE = 10
CANDIDATE_MODES = ("schema", "all")
TRAIN_ENTITY_MODES = ("gold", "union")
MIN_TUNE_SUPPORT = 5

DEFAULT_MODEL = """
[model]
@architectures = "annotate.RelationModel.v1"
hidden_width = 128
label_width = 16
distance_width = 16
dropout = 0.1

[model.tok2vec]
@architectures = "spacy.HashEmbedCNN.v2"
pretrained_vectors = null
width = 96
depth = 2
embed_size = 2000
window_size = 1
maxout_pieces = 3
subword_features = true
"""

Key = tuple[int, int, str]


@Language.factory(
    "relation_extractor",
    requires=["doc.ents"],
    assigns=["doc.user_data"],
    default_config={
        "model": Config().from_str(DEFAULT_MODEL)["model"],
        "threshold": 0.5,
        "max_distance": 40,
        "same_sentence": True,
        "candidates": "schema",
        "positive_weight": 3.0,
        "train_entities": "union",
        "schema_path": None,
        "scorer": {"@scorers": "annotate.relation_scorer.v1"},
    },
    default_score_weights={"rel_micro_f": 1.0, "rel_micro_p": 0.0, "rel_micro_r": 0.0, "rel_macro_f": 0.0},
)
def make_relation_extractor(
    nlp: Language, name: str, model: Model, threshold: float, max_distance: int, same_sentence: bool,
    candidates: str, positive_weight: float, train_entities: str, schema_path: str | None, scorer: Callable | None,
) -> "RelationExtractor":
    return RelationExtractor(
        nlp.vocab, model, name, threshold=threshold, max_distance=max_distance, same_sentence=same_sentence,
        candidates=candidates, positive_weight=positive_weight, train_entities=train_entities,
        schema_path=schema_path, scorer=scorer,
    )


class RelationExtractor(TrainablePipe):
    """Typed relations between entity pairs; see the module docstring."""

    def __init__(
        self, vocab: Vocab, model: Model, name: str = "relation_extractor", *, threshold: float = 0.5,
        max_distance: int = 40, same_sentence: bool = True, candidates: str = "schema",
        positive_weight: float = 3.0, train_entities: str = "union", schema_path: str | None = None,
        scorer: Callable | None = None,
    ) -> None:
        if candidates not in CANDIDATE_MODES:
            raise ValueError(f"relation_extractor: candidates must be one of {CANDIDATE_MODES}, got {candidates!r}")
        if train_entities not in TRAIN_ENTITY_MODES:
            raise ValueError(
                f"relation_extractor: train_entities must be one of {TRAIN_ENTITY_MODES}, got {train_entities!r}")
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.cfg: dict[str, Any] = {
            "labels": [], "attributes": list(ATTRIBUTES), "allowed": [], "symmetric": [], "thresholds": {},
            "threshold": threshold, "max_distance": max_distance, "same_sentence": same_sentence,
            "candidates": candidates, "positive_weight": positive_weight, "schema_path": schema_path,
            "train_entities": train_entities,
        }
        self._allowed_cache: dict[tuple[str, str], numpy.ndarray] | None = None

    # ----------------------------------------------------------------------------------- labels

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.cfg["labels"])

    @property
    def n_outputs(self) -> int:
        return len(self.cfg["labels"]) + len(self.cfg["attributes"])

    def add_label(self, label: str) -> int:
        if label in self.cfg["labels"]:
            return 0
        self.cfg["labels"].append(label)
        self._allowed_cache = None
        return 1

    def _allowed(self) -> dict[tuple[str, str], numpy.ndarray]:
        """(head label, tail label) -> mask over relation labels (0/1), from ``cfg["allowed"]``."""
        if self._allowed_cache is None:
            index = {label: i for i, label in enumerate(self.cfg["labels"])}
            table: dict[tuple[str, str], numpy.ndarray] = {}
            for head, tail, rel in self.cfg["allowed"]:
                if rel in index:
                    table.setdefault((head, tail), numpy.zeros(len(index), dtype="f"))[index[rel]] = 1.0
            self._allowed_cache = table
        return self._allowed_cache

    # ----------------------------------------------------------------------------------- candidates

    def candidates(self, doc: Doc, spans: Iterable[Span]) -> tuple[numpy.ndarray, numpy.ndarray, list[tuple[Span, Span]]]:
        """Candidate pairs over ``spans``: the model's uint64 array, the label mask, and the span pairs."""
        ents = sorted(spans, key=lambda s: (s.start, s.end))
        sent_of = _sentence_ids(doc) if self.cfg["same_sentence"] and doc.has_annotation("SENT_START") else None
        all_mode = self.cfg["candidates"] == "all"
        parsed = doc.has_annotation("DEP")
        allowed = self._allowed()
        symmetric = {self.cfg["labels"].index(r) for r in self.cfg["symmetric"] if r in self.cfg["labels"]}
        ones = numpy.ones(len(self.cfg["labels"]), dtype="f")
        rows, masks, pairs = [], [], []
        for i, first in enumerate(ents):
            for j, second in enumerate(ents[i + 1:], start=i + 1):
                if second.start - first.end > self.cfg["max_distance"]:
                    break
                if sent_of is not None and sent_of[first.start] != sent_of[second.start]:
                    continue
                for head, tail, forward in ((first, second, True), (second, first, False)):
                    mask = ones if all_mode else allowed.get((head.label_, tail.label_))
                    if mask is None:
                        continue
                    if symmetric and not forward:
                        mask = mask.copy()
                        mask[list(symmetric)] = 0.0
                        if not mask.any():
                            continue
                    rows.append((head.start, head.end, tail.start, tail.end, head.label, tail.label,
                                 distance_bucket(head.start, head.end, tail.start, tail.end),
                                 min(j - i - 1, MAX_BETWEEN), dep_path_key(head, tail) if parsed else 0))
                    masks.append(mask)
                    pairs.append((head, tail))
        cands = numpy.asarray(rows, dtype="uint64").reshape((-1, N_COLUMNS))
        mask_array = numpy.asarray(masks, dtype="f").reshape((-1, len(self.cfg["labels"])))
        return cands, mask_array, pairs

    # ----------------------------------------------------------------------------------- predict

    def predict(self, docs: Iterable[Doc]) -> list[tuple[numpy.ndarray, list[tuple[Span, Span]]]]:
        docs = list(docs)
        found = [self.candidates(doc, doc.ents) for doc in docs]
        if not any(len(c[0]) for c in found):
            return [(numpy.zeros((0, self.n_outputs), dtype="f"), []) for _ in docs]
        logits = self.model.predict((docs, [c[0] for c in found]))
        probs = _sigmoid(self.model.ops.to_numpy(logits))
        out, start = [], 0
        n_labels = len(self.cfg["labels"])
        for cands, mask, pairs in found:
            block = probs[start:start + len(cands)].copy()
            block[:, :n_labels] *= mask
            out.append((block, pairs))
            start += len(cands)
        return out

    def set_annotations(self, docs: Iterable[Doc], scores: list[tuple[numpy.ndarray, list[tuple[Span, Span]]]]) -> None:
        labels = self.cfg["labels"]
        thresholds = [self.cfg["thresholds"].get(label, self.cfg["threshold"]) for label in labels]
        attrs = self.cfg["attributes"]
        for doc, (probs, pairs) in zip(docs, scores):
            found = []
            for row, (head, tail) in zip(probs, pairs):
                for j, label in enumerate(labels):
                    if row[j] < thresholds[j]:
                        continue
                    flags = {a: True for k, a in enumerate(attrs) if row[len(labels) + k] >= ATTRIBUTE_THRESHOLD}
                    found.append({"label": label, "score": float(row[j]), "attrs": flags,
                                  "head": [head.start_char, head.end_char, head.label_],
                                  "tail": [tail.start_char, tail.end_char, tail.label_]})
            doc.user_data[RELATIONS_KEY] = found

    # ----------------------------------------------------------------------------------- training

    def _gold_spans(self, eg: Example) -> list[Span]:
        """The reference entities, placed on the predicted doc."""
        spans = []
        for ent in eg.reference.ents:
            span = eg.predicted.char_span(ent.start_char, ent.end_char, label=ent.label_, alignment_mode="expand")
            if span is not None:
                spans.append(span)
        return spans

    def _train_spans(self, eg: Example) -> list[Span]:
        """Entities to build training pairs from: gold, plus (``"union"``) those already predicted on the doc.

        A predicted entity equal to a gold one (same offsets and label) is kept once; any other predicted
        entity only adds negative pairs, which teaches the model what NER's mistakes look like.
        """
        spans = self._gold_spans(eg)
        if self.cfg.get("train_entities", "gold") != "union":
            return spans
        seen = {(s.start, s.end, s.label) for s in spans}
        for ent in eg.predicted.ents:
            if (ent.start, ent.end, ent.label) not in seen:
                seen.add((ent.start, ent.end, ent.label))
                spans.append(ent)
        return spans

    def _gold_table(self, eg: Example) -> dict[tuple[Key, Key], list[dict[str, Any]]]:
        table: dict[tuple[Key, Key], list[dict[str, Any]]] = {}
        symmetric = set(self.cfg["symmetric"])
        for rel in eg.reference.user_data.get(RELATIONS_KEY, []):
            head, tail = _key(rel["head"]), _key(rel["tail"])
            if rel["label"] in symmetric and (tail[0], tail[1]) < (head[0], head[1]):
                head, tail = tail, head
            table.setdefault((head, tail), []).append(rel)
        return table

    def _targets(self, eg: Example, pairs: list[tuple[Span, Span]], mask: numpy.ndarray) -> tuple[numpy.ndarray, numpy.ndarray]:
        """Gold 0/1 targets and loss weights for one doc's candidates."""
        labels, attrs = self.cfg["labels"], self.cfg["attributes"]
        n_labels = len(labels)
        gold = self._gold_table(eg)
        y = numpy.zeros((len(pairs), self.n_outputs), dtype="f")
        for i, (head, tail) in enumerate(pairs):
            for rel in gold.get((_span_key(head), _span_key(tail)), []):
                if rel["label"] in labels:
                    y[i, labels.index(rel["label"])] = 1.0
                for k, attr in enumerate(attrs):
                    if (rel.get("attrs") or {}).get(attr):
                        y[i, n_labels + k] = 1.0
        weights = numpy.zeros_like(y)
        weights[:, :n_labels] = mask * (1.0 + (self.cfg["positive_weight"] - 1.0) * y[:, :n_labels])
        weights[:, n_labels:] = (y[:, :n_labels].max(axis=1, initial=0.0) > 0)[:, None]
        return y, weights

    def update(
        self, examples: Iterable[Example], *, drop: float = 0.0, sgd: Optimizer | None = None,
        losses: dict[str, float] | None = None,
    ) -> dict[str, float]:
        losses = {} if losses is None else losses
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_get_examples(lambda: examples, "RelationExtractor.update")
        docs = [eg.predicted for eg in examples]
        found = [self.candidates(eg.predicted, self._train_spans(eg)) for eg in examples]
        if not any(len(c[0]) for c in found):
            return losses
        set_dropout_rate(self.model, drop)
        logits, backprop = self.model.begin_update((docs, [c[0] for c in found]))
        targets = [self._targets(eg, pairs, mask) for eg, (_, mask, pairs) in zip(examples, found)]
        y = numpy.concatenate([t[0] for t in targets])
        weights = numpy.concatenate([t[1] for t in targets])
        loss, d_logits = _weighted_bce(self.model.ops.to_numpy(logits), y, weights)
        backprop(self.model.ops.asarray2f(d_logits))
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def get_loss(self, examples: Iterable[Example], scores: Floats2d) -> tuple[float, Floats2d]:
        raise NotImplementedError("relation_extractor computes its loss inside update()")

    def initialize(
        self, get_examples: Callable[[], Iterable[Example]], *, nlp: Language | None = None,
        labels: list[str] | None = None,
    ) -> None:
        """Collect labels and allowed (head, tail, relation) triples, then size the model on a sample."""
        validate_get_examples(get_examples, "RelationExtractor.initialize")
        seen: set[tuple[str, str, str]] = set()
        for eg in get_examples():
            for rel in eg.reference.user_data.get(RELATIONS_KEY, []):
                seen.add((rel["head"][2], rel["tail"][2], rel["label"]))
        self._load_schema(seen)
        for label in labels or sorted({t[2] for t in self.cfg["allowed"]}):
            self.add_label(label)
        if not self.cfg["labels"]:
            raise ValueError("relation_extractor: no relation labels in the training data or schema")
        sample = list(islice(get_examples(), INIT_SAMPLE))
        docs = [eg.predicted for eg in sample]
        cands = [self.candidates(eg.predicted, self._gold_spans(eg))[0] for eg in sample]
        self._set_output_width()
        self.model.initialize(X=(docs, cands))

    def _set_output_width(self) -> None:
        """The output layer's width follows the labels; set it before initialising or loading weights."""
        last = self.model.layers[-1] if self.model.layers else self.model
        for node in (self.model, last):
            if node.has_dim("nO") is None or not node.has_dim("nO"):
                node.set_dim("nO", self.n_outputs)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = ()) -> "RelationExtractor":
        self._allowed_cache = None
        return super().from_bytes(bytes_data, exclude=exclude)

    def from_disk(self, path: Any, *, exclude: Iterable[str] = ()) -> "RelationExtractor":
        self._allowed_cache = None
        return super().from_disk(path, exclude=exclude)

    def _load_schema(self, seen: set[tuple[str, str, str]]) -> None:
        """Allowed triples from the schema file when given (plus symmetric types), else from the data."""
        if not self.cfg["schema_path"]:
            self.cfg["allowed"] = sorted([list(t) for t in seen])
            return
        from ..schema import load_schema  # only needed when training with a schema file

        schema = load_schema(self.cfg["schema_path"])
        allowed = {(h, t, r.name) for r in schema.relations for h in r.head for t in r.tail}
        for r in schema.relations:
            if r.symmetric:
                allowed |= {(t, h, r.name) for h in r.head for t in r.tail}
        self.cfg["allowed"] = sorted([list(t) for t in allowed])
        self.cfg["symmetric"] = sorted(r.name for r in schema.relations if r.symmetric)

    # ----------------------------------------------------------------------------------- thresholds

    def tune_thresholds(
        self, docs: list[Doc], references: list[Doc], *, min_support: int = MIN_TUNE_SUPPORT,
    ) -> dict[str, float]:
        """Pick thresholds on :data:`THRESHOLD_GRID` that maximise F1 on ``docs`` (see :func:`pick_thresholds`).

        ``docs`` have been through the pipeline up to this component (predicted ``doc.ents``);
        ``references`` hold the gold relations. Use data the model was not trained on, and not the data
        it is scored on. Without any gold relation in ``references`` nothing changes.
        """
        labels = self.cfg["labels"]
        per_label: dict[str, list[tuple[float, bool]]] = {label: [] for label in labels}
        n_gold = dict.fromkeys(labels, 0)
        for doc, ref, (probs, pairs) in zip(docs, references, self.predict(docs)):
            gold = {(_key(r["head"]), _key(r["tail"]), r["label"]) for r in ref.user_data.get(RELATIONS_KEY, [])}
            gold |= {(t, h, lab) for h, t, lab in gold if lab in self.cfg["symmetric"]}
            for label in labels:
                n_gold[label] += sum(1 for r in ref.user_data.get(RELATIONS_KEY, []) if r["label"] == label)
            for row, (head, tail) in zip(probs, pairs):
                for j, label in enumerate(labels):
                    if row[j] > 0:
                        per_label[label].append((float(row[j]), (_span_key(head), _span_key(tail), label) in gold))
        self.cfg["thresholds"].update(pick_thresholds(per_label, n_gold, self.cfg["threshold"], min_support=min_support))
        return dict(self.cfg["thresholds"])

    def score(self, examples: Iterable[Example], **kwargs: Any) -> dict[str, Any]:
        if self.scorer is None:
            return {}
        return self.scorer(examples, symmetric=self.cfg["symmetric"], **kwargs)


def pick_thresholds(
    scored: dict[str, list[tuple[float, bool]]], n_gold: dict[str, int], default: float, *,
    min_support: int = MIN_TUNE_SUPPORT,
) -> dict[str, float]:
    """Per-type thresholds: a type's own best with ``min_support`` gold relations, else the pooled best.

    ``scored[label]`` lists ``(probability, is_gold)`` for every candidate the type could take;
    ``n_gold[label]`` counts its gold relations (found or not). The pooled threshold maximises micro F1 over
    all types together. Returns ``{}`` when there is no gold relation at all.
    """
    total = sum(n_gold.values())
    if not total:
        return {}
    pooled = _best_threshold([item for items in scored.values() for item in items], total, default)
    return {label: _best_threshold(scored.get(label, []), n_gold.get(label, 0), pooled)
            if n_gold.get(label, 0) >= min_support else pooled for label in scored}


def _best_threshold(scored: list[tuple[float, bool]], n_gold: int, default: float) -> float:
    """Highest F1 on the grid; ties go to the threshold nearest ``default`` (no drift on perfect fits)."""
    best, best_key = default, (-1.0, 0.0)
    for threshold in THRESHOLD_GRID:
        tp = sum(1 for p, ok in scored if p >= threshold and ok)
        fp = sum(1 for p, ok in scored if p >= threshold and not ok)
        f = 2 * tp / (2 * tp + fp + (n_gold - tp)) if tp else 0.0
        key = (round(f, 9), -abs(threshold - default))
        if key > best_key:
            best, best_key = threshold, key
    return best


def _sentence_ids(doc: Doc) -> numpy.ndarray:
    """Sentence number of every token, computed once (``Span.sent`` walks the doc on every call)."""
    starts = numpy.asarray([1 if token.is_sent_start else 0 for token in doc], dtype="int64")
    if len(starts):
        starts[0] = 0
    return numpy.cumsum(starts)


def _sigmoid(x: numpy.ndarray) -> numpy.ndarray:
    return 1.0 / (1.0 + numpy.exp(-numpy.clip(x, -30, 30)))


def _weighted_bce(logits: numpy.ndarray, y: numpy.ndarray, weights: numpy.ndarray) -> tuple[float, numpy.ndarray]:
    """Weighted binary cross-entropy over all cells, averaged per candidate; returns (loss, d_logits)."""
    p = _sigmoid(logits)
    eps = 1e-7
    n = max(len(y), 1)
    loss = -(weights * (y * numpy.log(p + eps) + (1 - y) * numpy.log(1 - p + eps))).sum() / n
    return float(loss), ((p - y) * weights / n).astype("f")


def _key(end: list[Any]) -> Key:
    return int(end[0]), int(end[1]), str(end[2])


def _span_key(span: Span) -> Key:
    return span.start_char, span.end_char, span.label_
