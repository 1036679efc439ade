"""Labelled records -> a Hugging Face ``DatasetDict`` with explicit ``Features`` and a dataset card.

The output folder is laid out as a dataset repository on the Hub::

    <out>/README.md               the dataset card (YAML header: licence, tasks, configs, features)
    <out>/data/train.parquet      one Parquet file per split (dev is published as "validation")
    <out>/data/validation.parquet
    <out>/data/test.parquet
    <out>/publish-report.json     what was published and what was left out of the token tags, and why

so ``datasets.load_dataset("<out>")`` reads it back locally, and ``--push-to-hub`` uploads the same files.

One row per document (gold records: one per document; several annotators' versions must be adjudicated
first). Columns: ``id``, ``text``, the usual meta as typed columns (``article_id``, ``chunk``, ``char_offset``,
``date``, ``title``, ``source``) and the rest of meta as JSON; ``entities`` (code-point offsets as annotated,
labels as ``ClassLabel`` from the schema, nested spans kept) and ``relations`` (by entity id, type as
``ClassLabel``, ``negated``/``hypothetical`` flags); and ``tokens`` + ``ner_tags`` (IOB2 ``ClassLabel``) for
token classification. Those two come from the very ``Doc`` that ``annotate docbin`` puts in its DocBins for
the record (:func:`annotate.tokens.doc_from_record`): the same tokenizer (spaCy English plus
:data:`annotate.tokens.EXTRA_INFIXES`, so "F-16" is ``F``, ``-``, ``16``), the same alignment (spans with an
edge inside a token widened to whole tokens by default, whitespace at the edges trimmed) and the same overlap
policy (``doc.ents``: the longest span of an overlapping group by default). Spans the overlap policy leaves
out, or that cannot be aligned to tokens, are left out of ``ner_tags`` only (they stay in ``entities``) and
are counted per label in the report, with the full alignment report. The split is
:func:`annotate.tokens.assign_split`, the same hash-of-article split as ``annotate docbin`` with the same
seed and ratios.

Publishing into a folder that holds an earlier run replaces ``README.md``, ``publish-report.json`` and the
Parquet files of the splits written, and removes ``data/<split>.parquet`` of the splits this run does not
write (``train``, ``validation`` or ``test`` only; nothing else in the folder is touched), so the folder
matches the card.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import hub
from .errors import InputError, OutputError
from .records import LabelledDoc, atomic_path, atomic_writer, write_json
from .schema import Schema
from .tokens import (
    DEFAULT_RATIOS,
    AlignmentReport,
    assign_split,
    doc_from_record,
    iob2_tags,
    make_nlp,
)

log = logging.getLogger(__name__)

HF_SPLITS = {"train": "train", "dev": "validation", "test": "test"}
META_COLUMNS = {"article_id": "string", "chunk": "int32", "char_offset": "int32", "date": "string", "title": "string", "source": "string"}
RELATION_FLAGS = ("negated", "hypothetical")
TOKEN_TAGS_SKIPPED = ("overlapping", "misaligned")


def features(schema: Schema) -> Any:
    """The explicit ``datasets.Features`` of a published corpus."""
    from datasets import ClassLabel, Features, List, Value

    columns: dict[str, Any] = {"id": Value("string"), "text": Value("string")}
    columns.update({name: Value(dtype) for name, dtype in META_COLUMNS.items()})
    columns["meta"] = Value("string")
    columns["entities"] = List({
        "id": Value("string"), "start": Value("int32"), "end": Value("int32"),
        "label": ClassLabel(names=schema.entity_labels), "text": Value("string"),
    })
    columns["relations"] = List({
        "id": Value("string"), "head": Value("string"), "tail": Value("string"),
        "label": ClassLabel(names=schema.relation_labels), **{flag: Value("bool") for flag in RELATION_FLAGS},
    })
    columns["tokens"] = List(Value("string"))
    columns["ner_tags"] = List(ClassLabel(names=iob_labels(schema)))
    columns["annotator"] = Value("string")
    columns["status"] = Value("string")
    return Features(columns)


def iob_labels(schema: Schema) -> list[str]:
    return ["O"] + [f"{prefix}-{label}" for label in schema.entity_labels for prefix in ("B", "I")]


class _Tagger:
    """Tokens and IOB2 tags for a record, from the ``Doc`` ``annotate docbin`` builds for it; keeps the
    alignment report (what was widened, trimmed, dropped or left out of ``doc.ents``, per label)."""

    def __init__(self, *, lang: str = "en", misaligned: str = "expand", overlap: str = "longest") -> None:
        self.nlp = make_nlp(lang)
        self.misaligned, self.overlap = misaligned, overlap
        self.alignment = AlignmentReport()

    def __call__(self, doc: LabelledDoc) -> tuple[list[str], list[str]]:
        sdoc, report = doc_from_record(self.nlp, doc, misaligned=self.misaligned, overlap=self.overlap)
        self.alignment.merge(report)
        return [t.text for t in sdoc], iob2_tags(sdoc)

    def report(self) -> dict[str, dict[str, int]]:
        """Per label, the entities not in ``ner_tags``: ``overlapping`` (left out of ``doc.ents`` by the
        overlap policy) and ``misaligned`` (no token span: dropped by the alignment policy)."""
        out: dict[str, dict[str, int]] = {}
        for label in sorted(self.alignment.spans):
            counts = dict(zip(TOKEN_TAGS_SKIPPED, (self.alignment.not_in_ents[label], self.alignment.dropped[label])))
            if any(counts.values()):
                out[label] = counts
        return out


def _row(doc: LabelledDoc, tagger: _Tagger) -> dict[str, Any]:
    meta = dict(doc.meta)
    row: dict[str, Any] = {"id": doc.id, "text": doc.text}
    for name in META_COLUMNS:
        row[name] = meta.pop(name, None)
    row["meta"] = json.dumps(meta, ensure_ascii=False, sort_keys=True)
    row["entities"] = [{"id": e.id, "start": e.start, "end": e.end, "label": e.label, "text": doc.text[e.start:e.end]}
                       for e in doc.entities]
    row["relations"] = [{"id": r.id, "head": r.head, "tail": r.tail, "label": r.label,
                         **{flag: bool(r.attrs.get(flag, False)) for flag in RELATION_FLAGS}} for r in doc.relations]
    row["tokens"], row["ner_tags"] = tagger(doc)
    row["annotator"], row["status"] = doc.annotator, doc.status
    return row


def check_gold(docs: Iterable[LabelledDoc], schema: Schema) -> list[LabelledDoc]:
    """One record per document, every label in the schema; raises naming the first offending document."""
    from .schema import validate_doc

    seen: dict[str, str | None] = {}
    out = []
    for doc in docs:
        if doc.id in seen:
            raise InputError(
                f"document {doc.id!r} appears more than once (annotators {seen[doc.id]!r}, {doc.annotator!r}): "
                "publish gold records, one per document (see `annotate adjudicate`)"
            )
        seen[doc.id] = doc.annotator
        violations = validate_doc(doc, schema)
        if violations:
            raise InputError(f"{violations[0]} ({len(violations)} violation(s) in this document; see `annotate validate`)")
        out.append(doc)
    if not out:
        raise InputError("no records to publish")
    return out


def build_dataset(docs: list[LabelledDoc], schema: Schema, *, seed: int = 0,
                  ratios: tuple[float, float, float] = DEFAULT_RATIOS, misaligned: str = "expand",
                  overlap: str = "longest") -> tuple[Any, dict[str, Any]]:
    """The ``DatasetDict`` (splits with no documents left out) and a report of the token tagging.

    ``seed``, ``ratios``, ``misaligned`` and ``overlap`` mean what they mean for ``annotate docbin``
    (:func:`annotate.docbin.build_docbins`): with the same values, every record gets the same split, tokens
    and ``doc.ents`` as in the DocBins.
    """
    from datasets import Dataset, DatasetDict

    tagger = _Tagger(misaligned=misaligned, overlap=overlap)
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in HF_SPLITS.values()}
    for doc in docs:
        rows[HF_SPLITS[assign_split(doc, seed=seed, ratios=ratios)]].append(_row(doc, tagger))
    feats = features(schema)
    dataset = DatasetDict({name: Dataset.from_list(r, features=feats) for name, r in rows.items() if r})
    report = {"documents": {name: len(r) for name, r in rows.items()}, "seed": seed, "ratios": list(ratios),
              "misaligned": misaligned, "overlap": overlap, "left_out_of_ner_tags": tagger.report(),
              "alignment": tagger.alignment.to_dict()}
    return dataset, report


def corpus_counts(docs: list[LabelledDoc]) -> dict[str, Counter[str]]:
    return {"entities": Counter(e.label for d in docs for e in d.entities),
            "relations": Counter(r.label for d in docs for r in d.relations)}


def dataset_card(name: str, schema: Schema, docs: list[LabelledDoc], report: dict[str, Any], *,
                 license_id: str, description: str) -> str:
    """A dataset card: YAML header the Hub reads, then what the data is, its fields, labels and counts."""
    import yaml

    n = len(docs)
    size = "n<1K" if n < 1000 else "1K<n<10K" if n < 10_000 else "10K<n<100K"
    header = {
        "pretty_name": name, "language": ["en"], "license": license_id,
        "task_categories": ["token-classification"], "task_ids": ["named-entity-recognition"],
        "tags": ["relation-extraction", "defence", "diplomacy", "news"], "size_categories": [size],
        "configs": [{"config_name": "default",
                     "data_files": [{"split": s, "path": f"data/{s}.parquet"}
                                    for s, k in report["documents"].items() if k]}],
    }
    counts = corpus_counts(docs)
    lines = ["---", yaml.safe_dump(header, sort_keys=False).rstrip(), "---", "", f"# {name}", "",
             description.strip() or "Entity and relation annotations of diplomacy and defence news.", "",
             "## Splits", "", "| split | documents |", "| --- | ---: |"]
    lines += [f"| {s} | {k} |" for s, k in report["documents"].items()]
    lines += ["", (f"Documents are assigned to splits by a seeded hash of their article id (seed {report['seed']}, "
                   f"ratios {report['ratios']}), so every chunk of an article is in one split."), "",
              "## Entity labels", "", "| label | description | mentions |", "| --- | --- | ---: |"]
    lines += [f"| {e.name} | {e.description} | {counts['entities'][e.name]} |" for e in schema.entities]
    lines += ["", "## Relation types", "", "| type | head -> tail | description | count |", "| --- | --- | --- | ---: |"]
    lines += [f"| {r.name} | {', '.join(r.head)} -> {', '.join(r.tail)} | {r.description} | {counts['relations'][r.name]} |"
              for r in schema.relations]
    lines += ["", "## Fields", "",
              "- `id`, `text`: the document (a chunk of an article) and its id; `article_id`, `chunk`, `char_offset` map it back to the article; `date`, `title`, `source` where known; `meta`: the rest of the record's meta, as JSON.",
              "- `entities`: `id`, `start`, `end` (Python code-point offsets into `text`, end exclusive), `label`, `text`. Spans may overlap or nest.",
              "- `relations`: `id`, `head` and `tail` (entity ids), `label`, and the `negated` / `hypothetical` flags.",
              ("- `tokens`, `ner_tags`: spaCy English tokens (with extra infixes: `F-16` is `F`, `-`, `16`) and IOB2 tags "
               f"over the entities flattened by the `{report['overlap']}` overlap policy, spans off token edges handled by "
               f"the `{report['misaligned']}` policy: the same tokens and entities as the spaCy DocBins of `annotate docbin`."),
              "- `annotator`, `status`: who produced the record and whether it was confirmed.", ""]
    skipped = report["left_out_of_ner_tags"]
    if skipped:
        lines += ["Entities left out of `ner_tags` (they remain in `entities`):", "",
                  "| label | overlapping a kept span | not alignable to tokens |", "| --- | ---: | ---: |"]
        lines += [f"| {label} | {v['overlapping']} | {v['misaligned']} |" for label, v in skipped.items()]
        lines.append("")
    moved = _moved_edges(report.get("alignment", {}).get("entities", {}))
    if moved:
        lines += [f"In `ner_tags`: {moved} (their `entities` keep the annotated offsets).", ""]
    lines += ["## How it was made", "",
              (f"Labelled with the schema `{schema.name}` (version {schema.version}) using the `annotate` toolkit "
               "(Doccano for annotation, records validated against the schema before publishing)."), "",
              "## Licence", "", f"`{license_id}`", ""]
    return "\n".join(lines)


def publish(docs: Iterable[LabelledDoc], schema: Schema, out: Path | str, *, name: str, license_id: str = "cc-by-4.0",
            description: str = "", seed: int = 0, ratios: tuple[float, float, float] = DEFAULT_RATIOS,
            misaligned: str = "expand", overlap: str = "longest",
            push_to_hub: str | None = None, token: str | None = None, private: bool = True) -> dict[str, Any]:
    """Write the dataset (Parquet per split) and its card into ``out``; optionally upload it to the Hub.

    ``data/<split>.parquet`` files left in ``out`` by an earlier run, for splits this run does not write, are
    removed (see the module docstring).
    """
    if push_to_hub:
        hub.check_target(push_to_hub, token)  # before anything is built
    gold = check_gold(docs, schema)
    dataset, report = build_dataset(gold, schema, seed=seed, ratios=ratios, misaligned=misaligned, overlap=overlap)
    out = Path(out)
    try:
        (out / "data").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{out}: cannot write here ({err.strerror or err})") from err
    for split, ds in dataset.items():
        with atomic_path(out / "data" / f"{split}.parquet") as tmp:
            ds.to_parquet(str(tmp))
    _remove_stale_splits(out / "data", keep=set(dataset))
    with atomic_writer(out / "README.md") as handle:
        handle.write(dataset_card(name, schema, gold, report, license_id=license_id, description=description))
    summary = {"out": str(out), "name": name, "license": license_id, **report,
               "features": sorted(dataset[next(iter(dataset))].features)}
    if push_to_hub:
        summary["pushed_to"] = _push(out, push_to_hub, token=token, private=private)
    write_json(out / "publish-report.json", summary)
    return summary


def _remove_stale_splits(data: Path, *, keep: set[str]) -> None:
    """Delete ``data/<split>.parquet`` for each published split name (train, validation, test) not in ``keep``;
    no other file is touched."""
    for split in HF_SPLITS.values():
        path = data / f"{split}.parquet"
        if split in keep or not path.is_file():
            continue
        try:
            path.unlink()
        except OSError as err:
            raise OutputError(f"{path}: cannot remove the Parquet file of a split not published ({err.strerror or err})") from err
        log.info("removed %s: no %s split in this run", path, split)


def _moved_edges(per_label: dict[str, dict[str, int]]) -> str:
    """What alignment did to the spans in ``ner_tags`` (e.g. ``3 spans widened to whole tokens``), summed over
    the labels of the alignment report; empty when no span moved."""
    words = {"expanded": "widened to whole tokens", "contracted": "narrowed to whole tokens",
             "trimmed": "trimmed of whitespace at the edges"}
    parts = []
    for kind, phrase in words.items():
        n = sum(counts.get(kind, 0) for counts in per_label.values())
        if n:
            parts.append(f"{n} span{'' if n == 1 else 's'} {phrase}")
    return ", ".join(parts)


def _push(folder: Path, repo_id: str, *, token: str | None, private: bool) -> str:
    """Upload the folder as a dataset repository (needs a token with write access and network)."""
    hub.upload(folder, repo_id, repo_type="dataset", allow_patterns=["README.md", "data/*.parquet"], token=token,
               private=private, what="dataset")
    return f"https://huggingface.co/datasets/{repo_id}"
