"""The thinc models behind ``relation_extractor``: candidate entity pairs -> one logit per relation type.

Input: ``(docs, candidates)``, where ``candidates[i]`` is a ``uint64`` array of shape ``(n_pairs, 8)`` for
``docs[i]``; columns ``head_start, head_end, tail_start, tail_end`` (token indices, end exclusive),
``head_label, tail_label`` (string-store hashes of the entity labels), ``distance`` (a bucket id, see
:func:`distance_bucket`) and ``between`` (how many other entities start between the two, capped at
:data:`MAX_BETWEEN`). Output: ``Floats2d`` of shape ``(sum n_pairs, n_outputs)``, raw logits (the
component applies the sigmoid and the weighted loss).

``annotate.RelationModel.v1`` represents a pair by the mean-pooled head, the mean-pooled tail, the mean of
the tokens *between* them (the context the tutorial model lacks), learned embeddings of both entity labels
and of the signed, bucketed token distance, then a Maxout hidden layer. ``annotate.RelationModel.v2`` adds
an embedding of the number of entities between the two (a relation usually links near neighbours; the
token distance alone cannot tell "adjacent entities" from "same gap, three entities in between"). ``annotate.RelationBaseline.v1``
is the public spaCy tutorial's design kept for honest comparison: head and tail mean-pooled and
concatenated, one linear layer, nothing else.

Mean pooling uses prefix sums over each document's token vectors, so its cost is linear in tokens plus
pairs (a dense pairs x tokens averaging matrix would make long documents quadratic), and no Python loop
runs per token or per pair.
"""


import math
import zlib
from collections.abc import Callable
from typing import Any

import numpy
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import HashEmbed, Linear, Maxout, Model, chain
from thinc.types import Floats2d

N_COLUMNS = 9  # the 9th: a hash of the dependency path between the two spans' roots (0: no parse)
DEP_ROWS = 2048
DEP_SEED = 31
MAX_DEP_STEPS = 6
MAX_BETWEEN = 3  # 0, 1, 2, 3+ entities between head and tail
BETWEEN_ROWS = 2 * (MAX_BETWEEN + 1)
BETWEEN_SEED = 29
N_DISTANCE_BUCKETS = 8  # gaps 0, 1, 2-3, 4-7, 8-15, 16-31, 32-63, 64+ tokens; doubled for the direction
LABEL_ROWS = 64
DISTANCE_ROWS = 2 * N_DISTANCE_BUCKETS
LABEL_SEED = 17
DISTANCE_SEED = 23

Candidates = numpy.ndarray
InT = tuple[list[Doc], list[Candidates]]


def distance_bucket(head_start: int, head_end: int, tail_start: int, tail_end: int) -> int:
    """Log-bucketed token gap between two spans, offset by ``N_DISTANCE_BUCKETS`` when the tail comes first."""
    gap = max(0, tail_start - head_end, head_start - tail_end)
    bucket = min(N_DISTANCE_BUCKETS - 1, 0 if gap == 0 else 1 + int(math.log2(gap)))
    return bucket + (N_DISTANCE_BUCKETS if tail_start < head_start else 0)


@registry.architectures("annotate.RelationModel.v1")
def build_relation_model(
    tok2vec: Model[list[Doc], list[Floats2d]],
    hidden_width: int = 128,
    label_width: int = 16,
    distance_width: int = 16,
    dropout: float = 0.1,
    nO: int | None = None,
) -> Model[InT, Floats2d]:
    """Our pair classifier: entities + context between them + entity labels + distance, Maxout, Linear."""
    return _pair_classifier("annotate.RelationModel.v1", tok2vec, hidden_width, label_width, distance_width, 0, dropout, nO)


@registry.architectures("annotate.RelationModel.v2")
def build_relation_model_v2(
    tok2vec: Model[list[Doc], list[Floats2d]],
    hidden_width: int = 128,
    label_width: int = 16,
    distance_width: int = 16,
    between_width: int = 8,
    dropout: float = 0.1,
    nO: int | None = None,
) -> Model[InT, Floats2d]:
    """v1 plus an embedding of the number of entities between head and tail (column ``between``)."""
    return _pair_classifier("annotate.RelationModel.v2", tok2vec, hidden_width, label_width, distance_width,
                            between_width, dropout, nO)


@registry.architectures("annotate.RelationModel.v3")
def build_relation_model_v3(
    tok2vec: Model[list[Doc], list[Floats2d]],
    hidden_width: int = 128,
    label_width: int = 16,
    distance_width: int = 16,
    between_width: int = 8,
    dep_width: int = 16,
    side_window: int = 3,
    dropout: float = 0.1,
    nO: int | None = None,
) -> Model[InT, Floats2d]:
    """v2 plus the dependency path between the two spans (column ``dep_path``, from a parser upstream) and the
    mean of ``side_window`` tokens before the first span and after the second (context on both sides)."""
    return _pair_classifier("annotate.RelationModel.v3", tok2vec, hidden_width, label_width, distance_width,
                            between_width, dropout, nO, dep_width=dep_width, side_window=side_window)


def _pair_classifier(
    name: str, tok2vec: Model[list[Doc], list[Floats2d]], hidden_width: int, label_width: int, distance_width: int,
    between_width: int, dropout: float, nO: int | None, *, dep_width: int = 0, side_window: int = 0,
) -> Model[InT, Floats2d]:
    """Pair encoder (with context) -> Maxout -> Linear; v1 is v2 without the ``between`` column, v3 is v2 with
    the dependency path and side context."""
    encoder = build_pair_encoder(tok2vec, context=True, label_width=label_width, distance_width=distance_width,
                                 between_width=between_width, dep_width=dep_width, side_window=side_window)
    hidden = Maxout(nO=hidden_width, nP=2, dropout=dropout, normalize=True)
    model = chain(encoder, hidden, Linear(nO=nO))
    model.name = name
    return model


@registry.architectures("annotate.RelationBaseline.v1")
def build_relation_baseline(tok2vec: Model[list[Doc], list[Floats2d]], nO: int | None = None) -> Model[InT, Floats2d]:
    """The tutorial-style baseline: [mean(head); mean(tail)] -> Linear (no context, labels or distance)."""
    encoder = build_pair_encoder(tok2vec, context=False, label_width=0, distance_width=0)
    model = chain(encoder, Linear(nO=nO))
    model.name = "annotate.RelationBaseline.v1"
    return model


def build_pair_encoder(
    tok2vec: Model[list[Doc], list[Floats2d]], *, context: bool, label_width: int, distance_width: int,
    between_width: int = 0, dep_width: int = 0, side_window: int = 0,
) -> Model[InT, Floats2d]:
    layers: list[Model] = [tok2vec]
    refs: dict[str, Model] = {"tok2vec": tok2vec}
    if label_width:
        refs["labels"] = HashEmbed(nO=label_width, nV=LABEL_ROWS, seed=LABEL_SEED)
        layers.append(refs["labels"])
    if distance_width:
        refs["distance"] = HashEmbed(nO=distance_width, nV=DISTANCE_ROWS, seed=DISTANCE_SEED)
        layers.append(refs["distance"])
    if between_width:
        refs["between"] = HashEmbed(nO=between_width, nV=BETWEEN_ROWS, seed=BETWEEN_SEED)
        layers.append(refs["between"])
    if dep_width:
        refs["dep_path"] = HashEmbed(nO=dep_width, nV=DEP_ROWS, seed=DEP_SEED)
        layers.append(refs["dep_path"])
    return Model(
        "pair_encoder",
        _encoder_forward,
        init=_encoder_init,
        layers=layers,
        refs=refs,
        attrs={"context": context, "side_window": side_window},
        dims={"nO": None},
    )


def _encoder_init(model: Model, X: InT | None = None, Y: Any = None) -> None:
    tok2vec = model.get_ref("tok2vec")
    if X is not None:
        tok2vec.initialize(X=X[0])
    for name in ("labels", "distance", "between", "dep_path"):
        if model.has_ref(name):
            model.get_ref(name).initialize()
    width = tok2vec.get_dim("nO")
    n_out = _n_pooled(model) * width
    for name in ("labels", "distance", "between", "dep_path"):
        if model.has_ref(name):
            n_out += model.get_ref(name).get_dim("nO") * (2 if name == "labels" else 1)
    model.set_dim("nO", n_out)


def _n_pooled(model: Model) -> int:
    """How many token ranges are mean-pooled per pair: head, tail, [between], [before, after]."""
    return (3 if model.attrs["context"] else 2) + (2 if model.attrs.get("side_window") else 0)


def _segments(cands: Candidates, context: bool, side_window: int = 0,
              n_tokens: int = 0) -> tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """Token ranges to average for every pair: head, tail (and between, and ``side_window`` tokens before the
    first span and after the second); ``inv`` is 1/length, 0 if empty."""
    hs, he, ts, te = (cands[:, i].astype("int64") for i in range(4))
    parts = [(hs, he), (ts, te)]
    if context:
        lo = numpy.where(he <= ts, he, te)
        hi = numpy.where(he <= ts, ts, hs)
        parts.append((lo, numpy.maximum(hi, lo)))
    if side_window:
        first = numpy.minimum(hs, ts)
        last = numpy.maximum(he, te)
        parts.append((numpy.maximum(first - side_window, 0), first))
        parts.append((last, numpy.minimum(last + side_window, n_tokens)))
    starts = numpy.stack([p[0] for p in parts], axis=1).reshape(-1)
    ends = numpy.stack([p[1] for p in parts], axis=1).reshape(-1)
    lengths = ends - starts
    inv = numpy.where(lengths > 0, 1.0 / numpy.maximum(lengths, 1), 0.0).astype("f")
    return starts, ends, inv


def _mean_pool(ops: Any, x: Floats2d, segment: tuple) -> Floats2d:
    """Means of ``x`` over token ranges via a prefix sum: O(tokens + ranges), not O(tokens x ranges)."""
    starts, ends, inv = segment
    prefix = ops.xp.concatenate([ops.alloc2f(1, x.shape[1]), ops.xp.cumsum(x, axis=0)], axis=0)
    return (prefix[ops.asarray(ends)] - prefix[ops.asarray(starts)]) * ops.asarray(inv)[:, None]


def _mean_pool_backward(ops: Any, d_pooled: Floats2d, segment: tuple, n_tokens: int) -> Floats2d:
    """Gradient of :func:`_mean_pool`: +d at each range end, -d at its start, then a suffix sum."""
    starts, ends, inv = segment
    scaled = ops.as_contig(d_pooled * ops.asarray(inv)[:, None])
    d_prefix = ops.alloc2f(n_tokens + 1, d_pooled.shape[1])
    ops.scatter_add(d_prefix, ops.asarray1i(ends), scaled)
    ops.scatter_add(d_prefix, ops.asarray1i(starts), -scaled)
    # x[t] feeds prefix[j] for every j > t, so dx[t] = sum of d_prefix[t + 1:]
    return ops.xp.ascontiguousarray(ops.xp.cumsum(d_prefix[1:][::-1], axis=0)[::-1])


def _encoder_forward(model: Model, inputs: InT, is_train: bool) -> tuple[Floats2d, Callable]:
    docs, cands = inputs
    ops = model.ops
    tok2vec = model.get_ref("tok2vec")
    tokvecs, bp_tokvecs = tok2vec(docs, is_train)
    width = tok2vec.get_dim("nO")
    context = model.attrs["context"]
    n_pooled = _n_pooled(model)
    segments = [_segments(c, context, model.attrs.get("side_window", 0), x.shape[0]) for c, x in zip(cands, tokvecs)]
    pooled = [_mean_pool(ops, x, seg).reshape((-1, n_pooled * width)) for x, seg in zip(tokvecs, segments)]
    parts: list[Floats2d] = [ops.xp.concatenate(pooled, axis=0) if pooled else ops.alloc2f(0, n_pooled * width)]
    n_total = parts[0].shape[0]
    all_cands = numpy.concatenate(cands, axis=0) if cands else numpy.zeros((0, N_COLUMNS), dtype="uint64")
    callbacks: list[Callable] = []
    if model.has_ref("labels"):
        ids = numpy.concatenate([all_cands[:, 4], all_cands[:, 5]]).astype("uint64")
        emb, bp_emb = model.get_ref("labels")(ops.asarray1i(ids, dtype="uint64"), is_train)
        parts.append(ops.xp.concatenate([emb[:n_total], emb[n_total:]], axis=1))
        callbacks.append(lambda d, bp=bp_emb, w=emb.shape[1]: bp(ops.xp.concatenate([d[:, :w], d[:, w:]], axis=0)))
    if model.has_ref("distance"):
        emb, bp_dist = model.get_ref("distance")(ops.asarray1i(all_cands[:, 6].astype("uint64"), dtype="uint64"), is_train)
        parts.append(emb)
        callbacks.append(bp_dist)
    if model.has_ref("between"):
        emb, bp_between = model.get_ref("between")(ops.asarray1i(all_cands[:, 7].astype("uint64"), dtype="uint64"), is_train)
        parts.append(emb)
        callbacks.append(bp_between)
    if model.has_ref("dep_path"):
        emb, bp_dep = model.get_ref("dep_path")(ops.asarray1i(all_cands[:, 8].astype("uint64"), dtype="uint64"), is_train)
        parts.append(emb)
        callbacks.append(bp_dep)
    output = ops.xp.concatenate(parts, axis=1)
    widths = [p.shape[1] for p in parts]

    def backprop(d_output: Floats2d) -> InT:
        offsets = numpy.cumsum([0] + widths)
        for i, callback in enumerate(callbacks, start=1):
            callback(d_output[:, offsets[i]:offsets[i + 1]])
        d_pooled = d_output[:, : widths[0]]
        d_tokvecs = []
        start = 0
        for x, seg, c in zip(tokvecs, segments, cands):
            d_doc = d_pooled[start:start + len(c)].reshape((-1, width))
            d_tokvecs.append(_mean_pool_backward(ops, d_doc, seg, x.shape[0]))
            start += len(c)
        bp_tokvecs(d_tokvecs)
        return inputs

    return output, backprop


def dep_path_key(head: Any, tail: Any) -> int:
    """A 32-bit key for the dependency path between the roots of two spans ("nsubj^ ROOT v dobj"), or 0 when
    the doc has no parse. Paths longer than :data:`MAX_DEP_STEPS` share one key per direction pattern."""
    doc = head.doc
    if not doc.has_annotation("DEP"):
        return 0
    a, b = head.root, tail.root
    up_a = [a] + list(a.ancestors)
    up_b = [b] + list(b.ancestors)
    index_b = {t.i: n for n, t in enumerate(up_b)}
    common = next((n for n, t in enumerate(up_a) if t.i in index_b), None)
    if common is None:  # different sentences (no shared ancestor)
        return zlib.crc32(b"no-path") or 1
    ups = [t.dep_ for t in up_a[:common]]
    downs = [t.dep_ for t in reversed(up_b[:index_b[up_a[common].i]])]
    if len(ups) + len(downs) > MAX_DEP_STEPS:
        path = f"long {min(len(ups), 9)}^ {min(len(downs), 9)}v"
    else:
        path = " ".join([f"{d}^" for d in ups] + [up_a[common].dep_ if ups and downs else "="] + [f"v{d}" for d in downs])
    return zlib.crc32(path.encode("utf-8")) or 1
