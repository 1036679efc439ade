"""Active learning: which unlabelled records to send to annotators next.

Four strategies rank candidate records (``annotate tasks --select``):

* ``random``: a seeded shuffle, the baseline every other strategy has to beat.
* ``uncertainty``: the records the model is least sure of, summed over two kinds of decision.

  - Entities: the NER is run as a beam search (``BEAM_WIDTH`` parses) and every (start, end, label) span gets
    the share of the beam's probability that contains it (spaCy's ``EntityRecognizer.beam_parse`` and
    ``scored_ents``). A span the beam is split on (p near 0.5) is a decision the model may well get wrong;
    ``min(p, 1 - p)`` summed over a record's spans estimates how many such decisions it holds.
  - Relations: each candidate pair's score for each type its entity labels allow, against that type's
    threshold ``t`` (``relation_extractor``'s tuned thresholds). Distances are taken in log-odds, because tuned
    thresholds sit anywhere from 0.05 to 0.9 and 0.03 against 0.05 is as close a call as 0.4 against 0.5: a
    cell counts ``1 - |logit(p) - logit(t)| / RELATION_BAND`` when that is positive, and a pair counts its
    closest type only (one decision per pair, as for a span), so a score right at its threshold counts 1.

  The record's score is the sum of both parts. A sum, not a mean: a longer record with more doubtful decisions
  ranks higher because it also holds more to teach (and costs more to annotate; the benchmark reports
  characters labelled as well as documents).
* ``uncertainty-per-char``: the same summed doubt divided by the record's length, per 1,000 characters, so a
  short record dense with doubtful decisions comes before a long one that merely holds many. Annotation cost
  grows with length, so this ranks by doubt per unit of work rather than per record (the sum's bias toward long
  articles, seen in the benchmark, is what it removes). A strategy of its own rather than an option of
  ``uncertainty``, because it only means something for uncertainty and ``uncertainty`` keeps its behaviour.
* ``diverse``: greedy farthest-first over document vectors (cosine distance): each next record is the one
  farthest from every record chosen before it (and from ``anchors``, the records already labelled, when
  given). Without anchors the first pick is drawn with the seed. Vectors: the pipeline's static word vectors
  averaged over the document when it has them, else the mean of its ``tok2vec`` output.

Every choice carries its rank, score and a one-line reason, written into the task's meta (``selection_*``
keys) so annotators see why a record was picked. All four are deterministic for a given ``seed``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy

from .errors import InputError
from .records import Article, LabelledDoc, iter_json_lines

logger = logging.getLogger(__name__)

STRATEGIES = ("random", "uncertainty", "diverse", "uncertainty-per-char")
UNCERTAINTY = ("uncertainty", "uncertainty-per-char")  # strategies that need the model's doubts
NEEDS_MODEL = (*UNCERTAINTY, "diverse")
PER_CHARS = 1000  # uncertainty-per-char: doubt per this many characters
BEAM_WIDTH = 16
RELATION_BAND = 1.0  # log-odds: a relation score within a factor e of its threshold's odds counts as undecided
PROB_EPS = 1e-6
DOUBT_FLOOR = 0.05  # spans with min(p, 1 - p) below this are not named in the reason (they still count)
EXAMPLES = 3  # doubtful spans / relation scores named in a reason
BATCH_SIZE = 32
META_PREFIX = "selection_"


@dataclass
class Candidate:
    """One record's selection features: its uncertainty parts, the decisions behind them, its vector."""

    id: str
    entity: float = 0.0
    relation: float = 0.0
    spans: list[tuple[str, str, float]] = field(default_factory=list)  # (text, label, p), most doubtful first
    relations: list[tuple[str, float, float]] = field(default_factory=list)  # (type, p, threshold), most doubtful first
    vector: numpy.ndarray | None = None
    chars: int = 0

    @property
    def uncertainty(self) -> float:
        return self.entity + self.relation

    @property
    def density(self) -> float:
        """Summed doubt per ``PER_CHARS`` characters (a record of no characters counts as one)."""
        return self.uncertainty / max(self.chars, 1) * PER_CHARS


@dataclass
class Choice:
    id: str
    rank: int
    strategy: str
    score: float | None
    reason: str

    def meta(self) -> dict[str, Any]:
        """The ``selection_*`` keys for the task's meta (``score`` left out when the strategy has none)."""
        out: dict[str, Any] = {f"{META_PREFIX}strategy": self.strategy, f"{META_PREFIX}rank": self.rank,
                               f"{META_PREFIX}reason": self.reason}
        if self.score is not None:
            out[f"{META_PREFIX}score"] = round(self.score, 4)
        return out


def check_strategy(strategy: str, *, has_model: bool, limit: int | None) -> None:
    """Fail early (one line) on an unknown strategy, a limit below 1, or a strategy that needs a model."""
    if strategy not in STRATEGIES:
        raise InputError(f"unknown selection strategy {strategy!r} (expected one of {', '.join(STRATEGIES)})")
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be at least 1, got {limit}")
    if strategy in NEEDS_MODEL and not has_model:
        raise InputError(f"--select {strategy} needs --model (the pipeline whose {'doubts' if strategy in UNCERTAINTY else 'vectors'} "
                         "rank the records)")


# ------------------------------------------------------------------------------------------- scoring parts


def span_doubts(span_probs: Mapping[tuple[int, int, str], float], labels: Iterable[str] | None = None,
                ) -> list[tuple[int, int, str, float, float]]:
    """(start, end, label, p, min(p, 1 - p)) for each beam span, most doubtful first (ties in span order).

    ``labels`` (optional) keeps only spans with those labels: a ``label_filter`` after the NER drops the others,
    so the beam's doubts about them never reach the output."""
    keep = None if labels is None else set(labels)
    rows = [(s, e, lab, float(p), min(float(p), 1.0 - float(p))) for (s, e, lab), p in sorted(span_probs.items())
            if keep is None or lab in keep]
    return sorted(rows, key=lambda row: -row[4])


def relation_doubts(probs: numpy.ndarray, mask: numpy.ndarray, thresholds: Sequence[float], *,
                    band: float = RELATION_BAND) -> numpy.ndarray:
    """Per cell (candidate pair x type): ``1 - |logit(p) - logit(t)| / band`` where the type is allowed and that is
    positive, else 0."""
    if probs.size == 0:
        return numpy.zeros_like(probs, dtype="f")
    distance = numpy.abs(_logit(probs) - _logit(numpy.asarray(thresholds, dtype="f"))[None, :])
    return numpy.clip(1.0 - distance / band, 0.0, None) * (mask > 0)


def _logit(p: numpy.ndarray) -> numpy.ndarray:
    p = numpy.clip(p, PROB_EPS, 1.0 - PROB_EPS)
    return numpy.log(p) - numpy.log1p(-p)


def _relation_gap(cell: tuple[str, float, float]) -> float:
    return float(abs(_logit(numpy.float32(cell[1])) - _logit(numpy.float32(cell[2]))))


def uncertainty_reason(cand: Candidate, *, per_chars: bool = False) -> str:
    head = (f"uncertainty {cand.density:.2f} per {PER_CHARS:,} characters ({cand.uncertainty:.2f} over {cand.chars:,})"
            if per_chars else f"uncertainty {cand.uncertainty:.2f}")
    parts = [f"{head}: entities {cand.entity:.2f}"]
    named = [f"'{text}' {label} p={p:.2f}" for text, label, p in cand.spans[:EXAMPLES]]
    if named:
        parts[0] += f" ({', '.join(named)})"
    parts.append(f"relations {cand.relation:.2f}")
    near = [f"{label} p={p:.2f} vs {t:.2f}" for label, p, t in cand.relations[:EXAMPLES]]
    if near:
        parts[-1] += f" ({', '.join(near)})"
    return "; ".join(parts)


# ------------------------------------------------------------------------------------------------ ranking


def rank_uncertainty(cands: Sequence[Candidate], limit: int | None = None) -> list[Choice]:
    """Most uncertain first; ties keep input order."""
    order = sorted(range(len(cands)), key=lambda i: -cands[i].uncertainty)[:limit]
    return [Choice(cands[i].id, r, "uncertainty", cands[i].uncertainty, uncertainty_reason(cands[i]))
            for r, i in enumerate(order, start=1)]


def rank_uncertainty_per_char(cands: Sequence[Candidate], limit: int | None = None) -> list[Choice]:
    """Most doubt per 1,000 characters first; ties keep input order."""
    order = sorted(range(len(cands)), key=lambda i: -cands[i].density)[:limit]
    return [Choice(cands[i].id, r, "uncertainty-per-char", cands[i].density, uncertainty_reason(cands[i], per_chars=True))
            for r, i in enumerate(order, start=1)]


def rank_random(cands: Sequence[Candidate], limit: int | None = None, *, seed: int = 0) -> list[Choice]:
    order = numpy.random.default_rng(seed).permutation(len(cands))[:limit]
    return [Choice(cands[i].id, r, "random", None, f"random pick (seed {seed})") for r, i in enumerate(order.tolist(), start=1)]


def _unit_rows(vectors: Sequence[numpy.ndarray]) -> numpy.ndarray:
    arr = numpy.asarray(vectors, dtype="f")
    norms = numpy.linalg.norm(arr, axis=1, keepdims=True)
    return arr / numpy.where(norms > 0, norms, 1.0)


def farthest_first(vectors: Sequence[numpy.ndarray], k: int, *, seed: int = 0,
                   anchors: Sequence[numpy.ndarray] | None = None) -> list[tuple[int, float | None]]:
    """Greedy max-min selection under cosine distance: ``k`` (index, distance to the nearest chosen or anchor)
    pairs. Without anchors the first index is drawn with ``seed`` (its distance is ``None``); ties go to the
    lower index."""
    n = len(vectors)
    if n == 0 or k < 1:
        return []
    rows = _unit_rows(vectors)
    nearest = numpy.full(n, numpy.inf)
    picked: list[tuple[int, float | None]] = []
    if anchors is not None and len(anchors):
        nearest = (1.0 - rows @ _unit_rows(anchors).T).min(axis=1)
    else:
        first = int(numpy.random.default_rng(seed).integers(n))
        picked.append((first, None))
        nearest = numpy.minimum(nearest, 1.0 - rows @ rows[first])
    taken = numpy.zeros(n, dtype=bool)
    for index, _ in picked:
        taken[index] = True
    while len(picked) < min(k, n):
        gaps = numpy.where(taken, -numpy.inf, nearest)
        best = int(numpy.argmax(gaps))
        picked.append((best, float(gaps[best])))
        taken[best] = True
        nearest = numpy.minimum(nearest, 1.0 - rows @ rows[best])
    return picked


def rank_diverse(cands: Sequence[Candidate], limit: int | None = None, *, seed: int = 0,
                 anchors: Sequence[numpy.ndarray] | None = None) -> list[Choice]:
    missing = [c.id for c in cands if c.vector is None]
    if missing:
        raise InputError(f"record {missing[0]!r} has no document vector: diverse selection needs a pipeline with "
                         "word vectors or a tok2vec")
    picks = farthest_first([c.vector for c in cands], len(cands) if limit is None else limit, seed=seed, anchors=anchors)
    out = []
    for r, (i, distance) in enumerate(picks, start=1):
        reason = (f"first pick, drawn with seed {seed}" if distance is None
                  else f"cosine distance {distance:.3f} to the nearest record chosen before it")
        out.append(Choice(cands[i].id, r, "diverse", distance, reason))
    return out


def choose(cands: Sequence[Candidate], strategy: str, *, limit: int | None = None, seed: int = 0,
           anchors: Sequence[numpy.ndarray] | None = None) -> list[Choice]:
    """Rank ``cands`` by ``strategy`` and keep the first ``limit`` (all when ``None``)."""
    check_strategy(strategy, has_model=True, limit=limit)
    if strategy == "uncertainty":
        return rank_uncertainty(cands, limit)
    if strategy == "uncertainty-per-char":
        return rank_uncertainty_per_char(cands, limit)
    if strategy == "diverse":
        return rank_diverse(cands, limit, seed=seed, anchors=anchors)
    return rank_random(cands, limit, seed=seed)


def group(cands: Sequence[Candidate], key_of: Mapping[str, str]) -> list[Candidate]:
    """Merge candidates that share a key (the chunks of one article): parts summed, vectors averaged weighted by
    length, doubts merged; groups in order of first appearance."""
    groups: dict[str, list[Candidate]] = {}
    for cand in cands:
        groups.setdefault(key_of.get(cand.id, cand.id), []).append(cand)
    out = []
    for key, members in groups.items():
        vectors = [c.vector for c in members if c.vector is not None]
        vector = None
        if len(vectors) == len(members):
            weights = numpy.asarray([max(c.chars, 1) for c in members], dtype="f")
            vector = (numpy.asarray(vectors) * weights[:, None]).sum(axis=0) / weights.sum()
        out.append(Candidate(
            key, entity=sum(c.entity for c in members), relation=sum(c.relation for c in members),
            spans=sorted((s for c in members for s in c.spans), key=lambda s: -min(s[2], 1 - s[2])),
            relations=sorted((r for c in members for r in c.relations), key=_relation_gap),
            vector=vector, chars=sum(c.chars for c in members)))
    return out


# ------------------------------------------------------------------------------------------ running a model


def _ner_and_labels(nlp: Any) -> tuple[str | None, set[str] | None]:
    """The (first) transition-based NER pipe, and the labels a ``label_filter`` after it keeps (if any)."""
    from spacy.pipeline import EntityRecognizer

    from .components.label_filter import LabelFilter

    ner_name, labels = None, None
    for name, proc in nlp.pipeline:
        if ner_name is None and isinstance(proc, EntityRecognizer):
            ner_name = name
        elif ner_name is not None and isinstance(proc, LabelFilter) and proc.labels:
            labels = set(proc.labels)
    return ner_name, labels


def _relation_pipe(nlp: Any) -> Any:
    from .components.relation_extractor import RelationExtractor

    return next((proc for _, proc in nlp.pipeline if isinstance(proc, RelationExtractor)), None)


def _doc_vector(doc: Any, static: bool) -> numpy.ndarray:
    if static:
        return numpy.asarray(doc.vector, dtype="f")
    tensor = numpy.asarray(doc.tensor, dtype="f")
    return tensor.mean(axis=0) if tensor.ndim == 2 and len(tensor) else numpy.zeros(max(tensor.shape[-1:] or (1,)), dtype="f")


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def score_records(
    nlp: Any, articles: Iterable[Article], *, uncertainty: bool = True, vectors: bool = True,
    beam_width: int = BEAM_WIDTH, batch_size: int = BATCH_SIZE,
) -> Iterator[tuple[LabelledDoc, Candidate]]:
    """Run ``nlp`` over ``articles``; yield (predicted record, its candidate) per article, in order.

    The predicted record is what ``annotate predict`` gives (greedy NER, thresholded relations). With
    ``uncertainty`` the NER also runs a beam search before its greedy pass (same model, same tok2vec output),
    and the relation scores are read again unthresholded; ``vectors`` fills the candidate's document vector.
    """
    from .docbin import record_from_doc
    from .predict import STATUS

    ner_name, keep = _ner_and_labels(nlp)
    rel = _relation_pipe(nlp) if uncertainty else None
    static = bool(nlp.vocab.vectors.shape[0])
    annotator = f"model:{nlp.meta.get('name') or 'pipeline'}"
    for batch in _batches(articles, batch_size):
        for article in batch:
            if len(article.text) > nlp.max_length:
                raise InputError(f"record {article.id!r} has {len(article.text):,} characters, over the pipeline's "
                                 f"max_length of {nlp.max_length:,}: split it first (annotate ingest --max-chars)")
        docs = [nlp.make_doc(a.text) for a in batch]
        span_probs: list[Mapping] = [{} for _ in docs]
        for name, proc in nlp.pipeline:
            if uncertainty and name == ner_name and any(len(d) for d in docs):
                span_probs = proc.scored_ents(proc.beam_parse(docs, beam_width=beam_width))
            docs = list(proc.pipe(docs)) if hasattr(proc, "pipe") else [proc(d) for d in docs]
        rel_parts = _relation_parts(rel, docs) if rel is not None else [(0.0, []) for _ in docs]
        for article, doc, probs, (rel_score, near) in zip(batch, docs, span_probs, rel_parts):
            doubts = span_doubts(probs, keep)
            cand = Candidate(
                article.id, entity=float(sum(d[4] for d in doubts)), relation=rel_score,
                spans=[(doc[s:e].text, lab, p) for s, e, lab, p, u in doubts if u >= DOUBT_FLOOR],
                relations=near, vector=_doc_vector(doc, static) if vectors else None, chars=len(article.text))
            record = record_from_doc(doc, doc_id=article.id, meta=article.meta, status=STATUS)
            record.annotator = annotator
            yield record, cand


def _relation_parts(rel: Any, docs: list[Any]) -> list[tuple[float, list[tuple[str, float, float]]]]:
    """Per doc: the relation doubt (each pair's closest type, summed) and those (type, p, threshold), closest first."""
    labels = list(rel.cfg["labels"])
    thresholds = [float(rel.cfg["thresholds"].get(label, rel.cfg["threshold"])) for label in labels]
    out = []
    for doc, (probs, _pairs) in zip(docs, rel.predict(docs)):
        _, mask, _ = rel.candidates(doc, doc.ents)
        cells = probs[:, :len(labels)]
        doubt = relation_doubts(cells, mask, thresholds)
        if not doubt.size:
            out.append((0.0, []))
            continue
        closest = doubt.argmax(axis=1)
        per_pair = doubt[numpy.arange(len(doubt)), closest]
        order = sorted((i for i in range(len(per_pair)) if per_pair[i] > 0), key=lambda i: -per_pair[i])
        near = [(labels[closest[i]], float(cells[i, closest[i]]), thresholds[closest[i]]) for i in order]
        out.append((float(per_pair.sum()), near))
    return out


# ------------------------------------------------------------------------------------------- skipping ids


def read_ids(path: Path | str) -> set[str]:
    """Record ids in a JSONL of records (``id``), Doccano tasks or exports (``meta.record_id``)."""
    ids: set[str] = set()
    for line_no, obj in iter_json_lines(path):
        meta = obj.get("meta") if isinstance(obj, dict) else None
        if isinstance(obj, dict) and "id" in obj and "text" in obj:
            ids.add(str(obj["id"]))
        elif isinstance(meta, dict) and meta.get("record_id") is not None:
            ids.add(str(meta["record_id"]))
        else:
            raise InputError("expected a record (with 'id' and 'text') or a task with meta.record_id", path=path, line=line_no)
    return ids
