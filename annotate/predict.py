"""Run a trained pipeline over articles -> records with predicted entities and relations.

Input: records JSONL (objects with ``id`` and ``text``; labelled records are fine, their labels are
ignored) or anything :mod:`annotate.ingest` reads (``.txt``, ``.html``, article ``.jsonl``, folders), which
is normalised and chunked on the way in. Output: one :class:`~annotate.records.LabelledDoc` per article
or chunk, ``status: "predicted"``, ``annotator: "model:<pipeline name>"``, entities from ``doc.ents`` and
relations from the ``relation_extractor`` (each with ``attrs.score``), ready for ``annotate tasks`` as
Doccano pre-annotations.

Streaming: articles are read lazily and piped through ``nlp.pipe`` in batches (``n_process`` > 1 forks
workers); memory stays flat in the number of articles.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import spacy
from spacy.language import Language

from .docbin import record_from_doc
from .errors import InputError
from .records import Article, LabelledDoc, OutputSet, read_articles, refuse_fewer, write_jsonl

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 64
STATUS = "predicted"


def load_model(path: Path | str) -> Language:
    """``spacy.load`` with our error type (the component is found through the entry points)."""
    try:
        return spacy.load(path)
    except (OSError, ValueError) as err:
        raise InputError(f"cannot load spaCy pipeline ({err})".replace("\n", " "), path=path) from err


def _is_records_file(path: Path) -> bool:
    """A ``.jsonl`` whose first object has ``id`` and ``text``: our record format, read as is."""
    if path.suffix != ".jsonl" or not path.is_file():
        return False
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                try:
                    first = json.loads(line)
                except json.JSONDecodeError:
                    return False
                return isinstance(first, dict) and "id" in first and "text" in first
    return False


def iter_articles(paths: Iterable[Path | str]) -> Iterator[Article]:
    """Articles from records JSONL files as they are, and from raw inputs through the ingest stage."""
    raw: list[Path] = []
    for path in map(Path, paths):
        if _is_records_file(path):
            yield from read_articles(path)
        else:
            raw.append(path)
    if raw:
        from .ingest import Ingestor  # the ingest stage's reader, for raw formats only

        yield from Ingestor().run(raw)


def predict_docs(
    nlp: Language, articles: Iterable[Article], *, batch_size: int = DEFAULT_BATCH_SIZE, n_process: int = 1,
) -> Iterator[LabelledDoc]:
    """Annotate ``articles`` with ``nlp``; yields one predicted record per article, in order."""
    annotator = f"model:{nlp.meta.get('name') or 'pipeline'}"

    def checked(items: Iterable[Article]) -> Iterator[tuple[str, Article]]:
        for article in items:
            if len(article.text) > nlp.max_length:
                raise InputError(f"record {article.id!r} has {len(article.text):,} characters, over the pipeline's "
                                 f"max_length of {nlp.max_length:,}: split it first (annotate ingest --max-chars)")
            yield article.text, article

    pairs = checked(articles)
    for doc, article in nlp.pipe(pairs, as_tuples=True, batch_size=batch_size, n_process=n_process):
        record = record_from_doc(doc, doc_id=article.id, meta=article.meta, status=STATUS)
        record.annotator = annotator
        yield record


def predict(
    model: Path | str, inputs: Iterable[Path | str], out: Path | str, *,
    batch_size: int = DEFAULT_BATCH_SIZE, n_process: int = 1, on_record: Any = None, force: bool = False,
) -> dict[str, Any]:
    """Write predicted records for ``inputs`` to ``out`` (JSONL, atomically; never replacing a file that holds more
    records unless ``force``); return counts.

    ``on_record`` (optional callable) is called once per record written, e.g. to advance a progress bar.
    """
    nlp = load_model(model)
    counts = {"docs": 0, "entities": 0, "relations": 0}

    def counted() -> Iterator[LabelledDoc]:
        for record in predict_docs(nlp, iter_articles(inputs), batch_size=batch_size, n_process=n_process):
            counts["docs"] += 1
            counts["entities"] += len(record.entities)
            counts["relations"] += len(record.relations)
            if on_record is not None:
                on_record(record)
            yield record

    with OutputSet() as outputs:  # streamed into a temporary file; compared with the old output before it is replaced
        write_jsonl(outputs.path(out), counted())
        refuse_fewer(out, counts["docs"], force=force, what="predicted records")
    return {"model": str(model), "out": str(out), "pipeline": nlp.pipe_names, **counts}
