"""Run a trained pipeline over articles -> records with predicted entities and relations.

Input: records JSONL (objects with ``id`` and ``text``; labelled records are fine, their labels are
ignored) or anything :mod:`annotate.ingest` reads (``.txt``, ``.html``, article ``.jsonl``, folders), which
is normalised and chunked on the way in. Output: one :class:`~annotate.records.LabelledDoc` per article
or chunk, ``status: "predicted"``, ``annotator: "model:<pipeline name>"``, entities from ``doc.ents`` and
relations from the ``relation_extractor`` (each with ``attrs.score``), ready for ``annotate tasks`` as
Doccano pre-annotations.

Input and output may be JSONL or Parquet (by the ``.parquet`` suffix; schema in :mod:`annotate.parquet`).

Streaming: articles are read lazily and piped through ``nlp.pipe`` in batches (``n_process`` > 1 forks
workers); memory stays flat in the number of articles.

Resuming: the records go into numbered part files of ``checkpoint_every`` records in ``<out>.partial/``,
each written atomically and then listed in ``<out>.partial/progress.json`` together with a fingerprint of the
run (model and input files: path, size and modification time of every file; output format). An interrupted
run (an error, Ctrl-C, a killed process) leaves them there; the next run with the same model, inputs and
output continues after the last listed part (the articles before it are read and skipped, not predicted), so
no record is written twice and at most one part is redone. A different model or input refuses to resume
(``restart`` discards the partial run). The output appears at the end, in one rename, from the parts; then
the partial folder is removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import spacy
from spacy.language import Language

from .docbin import record_from_doc
from .errors import InputError, OutputError
from .parquet import (
    concat_parquet,
    count_rows,
    is_parquet,
    iter_parquet_articles,
    write_parquet,
)
from .records import (
    Article,
    LabelledDoc,
    OutputSet,
    count_lines,
    read_articles,
    refuse_fewer,
    write_json,
    write_jsonl,
)

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 64
CHECKPOINT_EVERY = 1000  # records per part file: what an interrupted run may have to predict again
STATUS = "predicted"
PARTIAL_SUFFIX = ".partial"
PROGRESS_NAME = "progress.json"


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
        if is_parquet(path) and path.is_file():
            yield from iter_parquet_articles(path)
        elif _is_records_file(path):
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


# --------------------------------------------------------------------------------------------- output formats


def output_format(path: Path | str) -> str:
    return "parquet" if is_parquet(path) else "jsonl"


def write_records(path: Path | str, items: Iterable[Any], fmt: str) -> int:
    """Atomically write records as ``fmt`` (``jsonl`` or ``parquet``); return the count."""
    return write_parquet(path, items) if fmt == "parquet" else write_jsonl(path, items)


def count_records(path: Path | str) -> int:
    """Records in an output file of either format (0 when it does not exist)."""
    return count_rows(path) if is_parquet(path) else count_lines(path)


def concat_records(parts: Iterable[Path], path: Path, fmt: str) -> None:
    """Join part files into ``path`` (a temporary name), in order."""
    if fmt == "parquet":
        concat_parquet(parts, path)
        return
    with path.open("wb") as handle:
        for part in parts:
            with part.open("rb") as source:
                shutil.copyfileobj(source, handle)
        handle.flush()
        os.fsync(handle.fileno())


# --------------------------------------------------------------------------------------------- resuming


def files_signature(path: Path | str) -> str:
    """A short hash of a file's or folder's resolved path, names, sizes and modification times (not contents:
    cheap for millions of articles; a rewritten file changes its size or time)."""
    path = Path(path).resolve()
    digest = hashlib.sha256(str(path).encode())
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        stat = file.stat()
        digest.update(f"\0{file.relative_to(path.parent)}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def run_key(model: Path | str, inputs: Iterable[Path | str], fmt: str) -> dict[str, str]:
    """What a partial run must share with this one to be continued."""
    inputs_digest = hashlib.sha256("\0".join(files_signature(p) for p in inputs).encode()).hexdigest()[:16]
    return {"model": files_signature(model), "inputs": inputs_digest, "format": fmt}


_KEY_NAMES = {"model": "model", "inputs": "input", "format": "output format"}


def check_same_run(folder: Path, saved: dict[str, str], key: dict[str, str]) -> None:
    """Refuse to continue the interrupted run in ``folder`` (its key ``saved``) with a different run ``key``."""
    changed = [label for name, label in _KEY_NAMES.items() if saved.get(name) != key[name]]
    if changed:
        raise OutputError(f"{folder}: an interrupted run with another {' and another '.join(changed)} is waiting "
                          "here; give the same model and inputs to continue it, or pass --restart to discard it")


def open_progress(folder: Path, key: dict[str, str], *, restart: bool = False,
                  fields: dict[str, type] | None = None) -> dict[str, Any] | None:
    """The progress file of an interrupted run in ``folder``, if it can be continued with this run's ``key``.

    None means start afresh: no folder, or one without a progress file or given up with ``restart`` (it is then
    removed). A progress file that cannot be read, or lacks ``key`` or one of ``fields`` (name -> type), is one
    OutputError; a run with another key is refused (:func:`check_same_run`)."""
    progress = folder / PROGRESS_NAME
    if folder.exists() and (restart or not progress.is_file()):
        shutil.rmtree(folder)
        return None
    if not folder.exists():
        return None
    try:
        saved = json.loads(progress.read_text(encoding="utf-8"))
        wrong = [name for name, kind in {"key": dict, **(fields or {})}.items() if not isinstance(saved[name], kind)]
        if wrong:
            raise TypeError(f"{', '.join(wrong)} of the wrong type")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise OutputError(f"{progress}: unreadable progress file of an interrupted run ({err}); "
                          "pass --restart to discard that run") from err
    check_same_run(folder, saved["key"], key)
    return saved


@dataclass
class PartialRun:
    """The part files of an unfinished run in ``<out>.partial/`` and their list in ``progress.json``."""

    folder: Path
    key: dict[str, str]
    fmt: str
    parts: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def open(cls, out: Path, key: dict[str, str], *, restart: bool = False) -> PartialRun:
        """The partial run beside ``out``: continued when its key matches, else refused (or, with ``restart``,
        discarded). Part files not listed in the progress file (a kill between rename and listing) are removed."""
        run = cls(out.with_name(out.name + PARTIAL_SUFFIX), key, key["format"])
        saved = open_progress(run.folder, key, restart=restart, fields={"parts": list})
        if saved is not None:
            run.parts = saved["parts"]
            listed = {p["file"] for p in run.parts} | {PROGRESS_NAME}
            for stray in run.folder.iterdir():
                if stray.name not in listed:
                    stray.unlink()
        try:
            run.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError(f"{run.folder}: cannot write here ({err.strerror or err})") from err
        return run

    def totals(self) -> dict[str, int]:
        return {k: sum(p[k] for p in self.parts) for k in ("docs", "entities", "relations")}

    def next_part(self) -> Path:
        return self.folder / f"part-{len(self.parts):05d}.{self.fmt}"

    def commit(self, part: Path, counts: dict[str, int]) -> None:
        """List a part file that is in place (its records count as done from now on)."""
        self.parts.append({"file": part.name, **counts})
        write_json(self.folder / PROGRESS_NAME, {"key": self.key, "parts": self.parts})

    def paths(self) -> list[Path]:
        return [self.folder / p["file"] for p in self.parts]

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.folder)


# --------------------------------------------------------------------------------------------- the job


def counted(records: Iterable[LabelledDoc], counts: dict[str, int], on_record: Callable[[LabelledDoc], Any] | None = None,
            ) -> Iterator[LabelledDoc]:
    """Pass ``records`` on, adding to ``counts`` (docs, entities, relations) and calling ``on_record``."""
    for record in records:
        counts["docs"] += 1
        counts["entities"] += len(record.entities)
        counts["relations"] += len(record.relations)
        if on_record is not None:
            on_record(record)
        yield record


def predict(
    model: Path | str, inputs: Iterable[Path | str], out: Path | str, *,
    batch_size: int = DEFAULT_BATCH_SIZE, n_process: int = 1, on_record: Callable[[LabelledDoc], Any] | None = None,
    force: bool = False, restart: bool = False, checkpoint_every: int = CHECKPOINT_EVERY,
) -> dict[str, Any]:
    """Write predicted records for ``inputs`` to ``out`` (JSONL, or Parquet for a ``.parquet`` name); return counts.

    Resumable (module docstring): a matching partial run beside ``out`` is continued, ``restart`` discards it.
    The output appears atomically at the end and never replaces a file holding more records unless ``force``
    (the parts are kept then, so a rerun with ``force`` finishes at once). ``on_record`` (optional callable) is
    called once per record predicted in this run, e.g. to advance a progress bar.
    """
    out, inputs = Path(out), [Path(p) for p in inputs]
    if out.is_dir():
        raise OutputError(f"{out}: is a folder, not a file; nothing was replaced")
    if checkpoint_every < 1:
        raise InputError(f"checkpoint_every must be at least 1, got {checkpoint_every}")
    nlp = load_model(model)
    fmt = output_format(out)
    run = PartialRun.open(out, run_key(model, inputs, fmt), restart=restart)
    resumed = run.totals()["docs"]
    if resumed:
        logger.info("continuing the interrupted run in %s after %d records", run.folder, resumed)
    try:
        records = predict_docs(nlp, islice(iter_articles(inputs), resumed, None),
                               batch_size=batch_size, n_process=n_process)
        while True:
            counts = {"docs": 0, "entities": 0, "relations": 0}
            part = run.next_part()
            write_records(part, counted(islice(records, checkpoint_every), counts, on_record), fmt)
            if counts["docs"] == 0:
                part.unlink()
                break
            run.commit(part, counts)
            if counts["docs"] < checkpoint_every:
                break
    except BaseException:
        if not run.parts:  # nothing worth keeping: leave no trace
            run.discard()
        raise
    totals = run.totals()
    refuse_fewer(out, totals["docs"], force=force, what="predicted records", before=count_records(out))
    with OutputSet() as outputs:
        concat_records(run.paths(), outputs.path(out), fmt)
    run.discard()
    return {"model": str(model), "out": str(out), "format": fmt, "pipeline": nlp.pipe_names,
            "resumed_after": resumed, **totals}
