"""Labelled records -> spaCy ``Doc``s -> deterministic document-level train/dev/test ``DocBin`` files.

How a record becomes a ``Doc`` (the tweaked tokenizer, what the ``Doc`` carries: ``doc.ents``, the
``doc.spans["entities"]`` group, entity and relation user data) and which split it lands in (by article,
a seeded hash or a date split), with the ``misaligned`` and ``overlap`` policies, lives in
:mod:`annotate.tokens`, shared with ``annotate publish`` so the published tokens and tags match these
DocBins. The names defined there stay importable from here (``make_nlp``, ``doc_from_record``,
``RELATIONS_KEY``, ``assign_split``, ...).

This module writes the DocBins (:func:`build_docbins`), reads them back (:func:`read_docbin`), turns a
``Doc`` back into a record (:func:`record_from_doc`) and registers the spaCy functions used in training
configs: ``annotate.tokenizer_tweaks.v1`` and ``annotate.add_ner_labels.v1``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.util import registry

from .errors import InputError, OutputError
from .records import Entity, LabelledDoc, OutputSet, Relation, atomic_path, count_lines, write_json, write_jsonl
from .tokens import (
    DEFAULT_RATIOS,
    DIRECTION_MARKS,
    ENTITIES_KEY,
    EXTRA_INFIXES,
    HASH_SCALE,
    MISALIGNED_POLICIES,
    OVERLAP_POLICIES,
    RELATIONS_KEY,
    SPANS_KEY,
    SPLITS,
    AlignmentReport,
    article_id,
    assign_split,
    date_split,
    doc_from_record,
    hash_split,
    iob2_tags,
    make_nlp,
    select_ents,
    tweak_tokenizer,
)

__all__ = [
    "DEFAULT_RATIOS", "DIRECTION_MARKS", "ENTITIES_KEY", "EXTRA_INFIXES", "HASH_SCALE", "MISALIGNED_POLICIES",
    "OVERLAP_POLICIES", "RELATIONS_KEY", "REPORT_NAME", "SPANS_KEY", "SPLITS", "AlignmentReport", "article_id",
    "assign_split", "build_docbins", "date_split", "doc_from_record", "hash_split", "iob2_tags",
    "make_add_ner_labels", "make_nlp", "make_tokenizer_tweaks", "read_docbin", "record_from_doc",
    "select_ents", "tweak_tokenizer",
]

logger = logging.getLogger(__name__)

REPORT_NAME = "docbin-report.json"


# --------------------------------------------------------------------------------------------- tokenizer


@registry.misc("annotate.tokenizer_tweaks.v1")
def make_tokenizer_tweaks() -> Callable[[Language], Language]:
    """For ``[initialize.before_init]`` in a training config: apply :func:`tweak_tokenizer`."""
    return tweak_tokenizer


# --------------------------------------------------------------------------------------------- Doc -> records


def record_from_doc(doc: Doc, *, doc_id: str, meta: dict[str, Any] | None = None, status: str | None = None) -> LabelledDoc:
    """The inverse of :func:`doc_from_record`: entities from ``doc.ents``, relations from user data.

    Relation ends that match no entity of ``doc.ents`` are added as entities (so nothing is lost).
    """
    entities: list[Entity] = []
    by_key: dict[tuple[int, int, str], str] = {}
    for i, span in enumerate(doc.ents, start=1):
        key = (span.start_char, span.end_char, span.label_)
        by_key[key] = f"e{i}"
        entities.append(Entity(id=f"e{i}", start=span.start_char, end=span.end_char, label=span.label_))
    relations: list[Relation] = []
    for j, rel in enumerate(doc.user_data.get(RELATIONS_KEY, []), start=1):
        ends = []
        for end in (rel["head"], rel["tail"]):
            key = (int(end[0]), int(end[1]), str(end[2]))
            if key not in by_key:
                by_key[key] = f"e{len(entities) + 1}"
                entities.append(Entity(id=by_key[key], start=key[0], end=key[1], label=key[2]))
            ends.append(by_key[key])
        attrs = dict(rel.get("attrs") or {})
        if "score" in rel:
            attrs["score"] = round(float(rel["score"]), 4)
        relations.append(Relation(id=f"r{j}", head=ends[0], tail=ends[1], label=rel["label"], attrs=attrs))
    return LabelledDoc(id=doc_id, text=doc.text, meta=dict(meta or {}), entities=entities,
                       relations=relations, status=status)


# --------------------------------------------------------------------------------------------- DocBins


def build_docbins(
    records: Iterable[LabelledDoc],
    out_dir: Path | str,
    *,
    lang: str = "en",
    seed: int = 0,
    ratios: tuple[float, float, float] = DEFAULT_RATIOS,
    dates: tuple[str, str] | None = None,
    misaligned: str = "expand",
    overlap: str = "longest",
    force: bool = False,
) -> dict[str, Any]:
    """Write ``{train,dev,test}.spacy``, the same splits as records (``{train,dev,test}.jsonl``, for
    ``annotate evaluate MODEL DATA`` and publishing) and ``docbin-report.json`` into ``out_dir``; return
    the summary.

    The summary holds document and article counts per split, the policies used and the per-label
    alignment report.
    """
    nlp = make_nlp(lang)
    bins = {name: DocBin(store_user_data=True) for name in SPLITS}
    split_records: dict[str, list[LabelledDoc]] = {name: [] for name in SPLITS}
    articles: dict[str, set[str]] = defaultdict(set)
    total = AlignmentReport()
    for record in records:
        try:
            split = assign_split(record, seed=seed, ratios=ratios, dates=dates)
        except (ValueError, InputError) as err:
            raise InputError(f"record {record.id!r}: {err}") from err
        doc, report = doc_from_record(nlp, record, misaligned=misaligned, overlap=overlap)
        doc.user_data["annotate_id"] = record.id
        bins[split].add(doc)
        split_records[split].append(record)
        articles[split].add(article_id(record))
        total.merge(report)
    out = Path(out_dir)
    counts = {name: len(bins[name]) for name in SPLITS}
    summary = {
        "out": str(out), "docs": counts, "articles": {n: len(articles[n]) for n in SPLITS},
        "seed": seed, "ratios": list(ratios), "dates": list(dates) if dates else None,
        "misaligned": misaligned, "overlap": overlap, "alignment": total.to_dict(),
    }
    if not sum(counts.values()):
        raise InputError("no records to convert: nothing written")
    before = sum(count_lines(out / f"{name}.jsonl") for name in SPLITS)
    if before > sum(counts.values()) and not force:
        raise OutputError(f"{out}: its splits hold {before} records, this run would replace them with "
                          f"{sum(counts.values())}; pass --force to overwrite them")
    with OutputSet() as outputs:  # the seven files land together, or none does
        for name in SPLITS:
            _write_docbin(bins[name], outputs.path(out / f"{name}.spacy"))
            write_jsonl(outputs.path(out / f"{name}.jsonl"), split_records[name])
        write_json(outputs.path(out / REPORT_NAME), summary)
    return summary


def _write_docbin(docbin: DocBin, path: Path) -> None:
    try:
        with atomic_path(path) as tmp:
            docbin.to_disk(tmp)
    except OSError as err:
        raise OutputError(f"{path}: cannot write DocBin ({err.strerror or err})") from err


def read_docbin(path: Path | str, nlp: Language | None = None) -> list[Doc]:
    """Load the ``Doc``s of a ``.spacy`` file (with their user data)."""
    nlp = nlp or spacy.blank("en")
    try:
        return list(DocBin().from_disk(path).get_docs(nlp.vocab))
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read DocBin ({err})", path=path) from err


@registry.misc("annotate.add_ner_labels.v1")
def make_add_ner_labels(path: str | None = None, component: str = "ner") -> Callable[[Language], Language]:
    """For ``[initialize.after_init]`` when ``ner`` is sourced from a base pipeline: spaCy does not re-initialize
    sourced components, so add the entity labels of the training DocBin (``path``, default ``paths.train``'s
    value passed in by the config) to it before training starts."""

    def add_labels(nlp: Language) -> Language:
        if not path or component not in nlp.pipe_names:
            return nlp
        ner = nlp.get_pipe(component)
        labels = sorted({ent.label_ for doc in DocBin().from_disk(path).get_docs(nlp.vocab) for ent in doc.ents})
        for label in labels:
            ner.add_label(label)
        return nlp

    return add_labels
