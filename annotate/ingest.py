"""Raw news articles -> normalised, de-duplicated, chunked :class:`~annotate.records.Article` records.

Input formats (by file extension; a folder is searched recursively for these):

- ``.txt`` in the seed format: first line ``date YYYY-MM-DD``, then the article text (the date goes to
  ``meta.date``);
- ``.txt`` plain text (any other first line);
- ``.jsonl``: one article per line, the text under ``text`` (or ``--text-field``), meta from a ``meta``
  object and from the other top-level keys;
- ``.html``/``.htm``: a web page; article text, title and date extracted with trafilatura.

Every text is normalised before any offset exists (:func:`normalise_text`): Unicode NFC, one kind of line
break, invisible characters removed, runs of spaces collapsed, lines of a paragraph joined, paragraphs
separated by one blank line. The article id is a hash of the normalised text, so re-ingesting is idempotent
and a copy that differs only in whitespace is an exact duplicate. Exact duplicates are dropped; near
duplicates (MinHash over word shingles) are flagged, or dropped on request; both are listed in the report.
Long articles are split into chunks on paragraph, then sentence boundaries; each chunk records
``article_id``, ``chunk`` and ``char_offset`` (where its text starts in the article).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
import unicodedata
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from datasketch import MinHash, MinHashLSH

from .errors import InputError, OutputError
from .records import (
    Article,
    OutputSet,
    iter_json_lines,
    read_articles,
    refuse_fewer,
    write_json,
    write_jsonl,
)

log = logging.getLogger(__name__)

SUFFIXES = (".txt", ".jsonl", ".html", ".htm")
DEFAULT_MAX_CHARS = 2500
DEFAULT_NEAR_DUP_THRESHOLD = 0.8
NUM_PERM = 64  # MinHash permutations: enough for a 0.8 threshold, cheap enough for >1,000 articles/s
SHINGLE_WORDS = 5
MINHASH_SEED = 1
_SHINGLE_BASE = 1_000_003  # multiplier of the polynomial n-gram hash
ID_LENGTH = 16

SEED_HEADER = re.compile(r"^date\s+(\d{4}-\d{2}-\d{2})\s*$")
_INVISIBLE = re.compile("[\u200b\u2060\ufeff\u00ad]")  # zero-width space, word joiner, BOM, soft hyphen
_HSPACE = re.compile(r"[^\S\n]+")  # any run of whitespace except line breaks (tabs, NBSP, thin spaces...)
_PARA_BREAK = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"”’')\]]*\s+")
_WORD = re.compile(r"\w+")


# ------------------------------------------------------------------------------------ normalisation


def normalise_text(text: str) -> str:
    """The one normal form every offset refers to (see the module docstring)."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE.sub("", text)
    text = _HSPACE.sub(" ", text)
    paragraphs = []
    for block in _PARA_BREAK.split(text):
        para = " ".join(line.strip() for line in block.split("\n") if line.strip())
        if para:
            paragraphs.append(para)
    return "\n\n".join(paragraphs)


def article_id(text: str) -> str:
    """A stable id from the normalised text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:ID_LENGTH]


# ------------------------------------------------------------------------------------------ readers


@dataclass
class RawArticle:
    text: str
    meta: dict[str, Any]
    source: str


def find_inputs(paths: Iterable[Path | str]) -> tuple[list[Path], list[Path]]:
    """Expand folders into the supported files they hold; return ``(files, skipped)``."""
    files: list[Path] = []
    skipped: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
            supported = [p for p in found if p.suffix.lower() in SUFFIXES]
            if not supported:
                raise InputError(f"no input files ({', '.join(SUFFIXES)}) in folder", path=path)
            files.extend(supported)
            skipped.extend(p for p in found if p.suffix.lower() not in SUFFIXES)
        elif path.is_file():
            if path.suffix.lower() not in SUFFIXES:
                raise InputError(f"unsupported file type {path.suffix!r} (expected one of {', '.join(SUFFIXES)})", path=path)
            files.append(path)
        else:
            raise InputError("no such file or folder", path=path)
    return files, skipped


def read_raw(path: Path, *, text_field: str = "text") -> Iterator[RawArticle]:
    """Yield the raw articles of one file, whatever its format."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from _read_jsonl(path, text_field)
        return
    raw = _read_text_file(path)
    if suffix in (".html", ".htm"):
        yield _read_html(path, raw)
    else:
        yield _read_txt(path, raw)


def _read_text_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"not valid UTF-8 (byte {err.start})", path=path) from err
    except OSError as err:
        raise InputError(f"cannot read file ({err.strerror or err})", path=path) from err


def _read_txt(path: Path, raw: str) -> RawArticle:
    first, _, rest = raw.lstrip("\ufeff").partition("\n")
    match = SEED_HEADER.match(first.strip())
    meta: dict[str, Any] = {}
    if match:
        meta["date"] = _check_date(match.group(1), path, 1)
        raw = rest
    elif first.strip().lower().startswith("date "):
        raise InputError(f"seed header {first.strip()!r} is not 'date YYYY-MM-DD'", path=path, line=1)
    return RawArticle(text=raw, meta=meta, source=str(path))


def _check_date(value: str, path: Path, line: int | None) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError as err:
        raise InputError(f"invalid date {value!r}", path=path, line=line) from err


def _read_jsonl(path: Path, text_field: str) -> Iterator[RawArticle]:
    for line_no, obj in iter_json_lines(path):
        if not isinstance(obj, dict):
            raise InputError("expected a JSON object", path=path, line=line_no)
        text = obj.get(text_field)
        if not isinstance(text, str):
            raise InputError(f"missing text field {text_field!r}", path=path, line=line_no)
        meta = obj.get("meta") or {}
        if not isinstance(meta, dict):
            raise InputError("'meta' must be an object", path=path, line=line_no)
        meta = dict(meta)
        for key, value in obj.items():
            if key not in (text_field, "meta") and value is not None:
                meta.setdefault("source_id" if key == "id" else key, value)
        if isinstance(meta.get("date"), str):
            meta["date"] = _check_date(meta["date"][:10], path, line_no)
        yield RawArticle(text=text, meta=meta, source=f"{path}:{line_no}")


BLOCK_TAGS = ("head", "p", "item", "quote", "cell")


def _read_html(path: Path, raw: str) -> RawArticle:
    # trafilatura's plain-text output runs paragraphs together on some pages; its XML output keeps the
    # blocks, which we join with paragraph breaks ourselves. Its precision mode keeps the page's paragraphs
    # where the default mode's fallback extractors may merge them into one; the default is the fallback
    # for pages where precision mode finds nothing.
    import trafilatura
    from lxml import etree

    options = {"output_format": "xml", "include_comments": False, "with_metadata": True}
    xml = trafilatura.extract(raw, favor_precision=True, **options) or trafilatura.extract(raw, **options)
    if not xml:
        raise InputError("no article text found in HTML page", path=path)
    root = etree.fromstring(xml.encode("utf-8"))
    title = root.get("title") or ""
    blocks = ["".join(el.itertext()).strip() for el in root.iter(*BLOCK_TAGS)]
    if blocks and title and blocks[0] == title:
        blocks = blocks[1:]
    text = "\n\n".join(b for b in blocks if b)
    if not text.strip():
        raise InputError("no article text found in HTML page", path=path)
    meta: dict[str, Any] = {}
    if title:
        meta["title"] = title
    if root.get("date"):
        meta["date"] = root.get("date")
    return RawArticle(text=text, meta=meta, source=str(path))


# --------------------------------------------------------------------------------------- chunking


def _sentence_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans, pos = [], start
    for match in _SENTENCE_END.finditer(text, start, end):
        spans.append((pos, match.start()))
        pos = match.end()
    if pos < end:
        spans.append((pos, end))
    return spans


def _hard_split(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Split an over-long sentence at the last space before the limit (or mid-word if there is none)."""
    spans = []
    while end - start > max_chars:
        cut = text.rfind(" ", start + 1, start + max_chars + 1)
        if cut <= start:
            cut = start + max_chars
            spans.append((start, cut))
            start = cut
        else:
            spans.append((start, cut))
            start = cut + 1
    spans.append((start, end))
    return spans


def chunk_spans(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> list[tuple[int, int]]:
    """``(start, end)`` of chunks no longer than ``max_chars``, cut at paragraph, then sentence boundaries."""
    if max_chars < 1:
        raise InputError(f"max chars must be positive, got {max_chars}")
    if len(text) <= max_chars:
        return [(0, len(text))]
    units: list[tuple[int, int]] = []
    pos = 0
    for match in [*re.finditer(r"\n\n", text), None]:
        end = match.start() if match else len(text)
        if end - pos <= max_chars:
            units.append((pos, end))
        else:
            for s, e in _sentence_spans(text, pos, end):
                units.extend(_hard_split(text, s, e, max_chars) if e - s > max_chars else [(s, e)])
        pos = match.end() if match else len(text)
    chunks: list[tuple[int, int]] = []
    for start, end in units:
        if chunks and end - chunks[-1][0] <= max_chars:
            chunks[-1] = (chunks[-1][0], end)
        else:
            chunks.append((start, end))
    return chunks


# ------------------------------------------------------------------------------------------- dedup


def _shingle_hashes(text: str) -> list[int]:
    """32-bit hashes of the word 5-grams of ``text``.

    Each word is hashed once (CRC-32) and the n-gram hash is a polynomial over its words' hashes, computed
    with numpy: hashing every shingle string with SHA-1 (datasketch's default) costs 4x the whole ingest.
    """
    words = _WORD.findall(text.lower())
    if not words:
        return [0]
    hashes = np.fromiter((zlib.crc32(w.encode("utf-8")) for w in words), dtype=np.uint64, count=len(words))
    n = min(SHINGLE_WORDS, len(words))
    combined = np.zeros(len(words) - n + 1, dtype=np.uint64)
    for k in range(n):
        combined = (combined * np.uint64(_SHINGLE_BASE) + hashes[k : len(words) - n + 1 + k]) & np.uint64(0xFFFFFFFF)
    return combined.tolist()


class Deduplicator:
    """Exact duplicates by id; near duplicates by MinHash LSH (threshold 0 disables them)."""

    def __init__(self, near_threshold: float = DEFAULT_NEAR_DUP_THRESHOLD) -> None:
        if not 0 <= near_threshold <= 1:
            raise InputError(f"near-duplicate threshold must be between 0 and 1, got {near_threshold}")
        self.near_threshold = near_threshold
        self.seen: dict[str, str] = {}  # article id -> source
        self._lsh = MinHashLSH(threshold=near_threshold, num_perm=NUM_PERM) if near_threshold > 0 else None
        self._hashes: dict[str, np.ndarray] = {}
        # permutations are drawn once, not per article (that alone cost a third of the ingest time)
        template = MinHash(num_perm=NUM_PERM, seed=MINHASH_SEED, hashfunc=int)
        self._permutations, self._scheme = template.permutations, template.scheme

    def exact(self, art_id: str) -> str | None:
        """The source of an earlier article with this id, if any."""
        return self.seen.get(art_id)

    def signature(self, text: str) -> MinHash | None:
        if self._lsh is None:
            return None
        sig = MinHash(num_perm=NUM_PERM, hashfunc=int, permutations=self._permutations, scheme=self._scheme)
        sig.update_batch(_shingle_hashes(text))
        return sig

    def near(self, sig: MinHash | None) -> tuple[str, float] | None:
        """The most similar earlier article above the threshold, with its estimated Jaccard similarity."""
        if sig is None or self._lsh is None:
            return None
        best: tuple[str, float] | None = None
        for other in self._lsh.query(sig):
            sim = float(np.mean(self._hashes[other] == sig.hashvalues))
            if sim >= self.near_threshold and (best is None or sim > best[1]):
                best = (other, sim)
        return best

    def add(self, art_id: str, source: str, sig: MinHash | None) -> None:
        self.seen[art_id] = source
        if sig is not None and self._lsh is not None:
            self._lsh.insert(art_id, sig)
            self._hashes[art_id] = sig.hashvalues


# ------------------------------------------------------------------------------------------ ingest


@dataclass
class IngestReport:
    files: int = 0
    read: int = 0
    articles: int = 0
    chunks: int = 0
    empty: list[str] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)
    exact_duplicates: list[dict[str, Any]] = field(default_factory=list)
    near_duplicates: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "read": self.read,
            "articles": self.articles,
            "chunks": self.chunks,
            "exact_duplicates_dropped": len(self.exact_duplicates),
            "near_duplicates_flagged": len(self.near_duplicates),
            "empty_dropped": len(self.empty),
            "skipped_files": self.skipped_files,
            "exact_duplicates": self.exact_duplicates,
            "near_duplicates": self.near_duplicates,
            "empty": self.empty,
        }


class Ingestor:
    """Streams Articles from input paths; :attr:`report` fills in as the stream is consumed."""

    def __init__(
        self,
        *,
        max_chars: int = DEFAULT_MAX_CHARS,
        near_threshold: float = DEFAULT_NEAR_DUP_THRESHOLD,
        drop_near_duplicates: bool = False,
        text_field: str = "text",
    ) -> None:
        self.max_chars = max_chars
        self.drop_near = drop_near_duplicates
        self.text_field = text_field
        self.dedup = Deduplicator(near_threshold)
        self.report = IngestReport()

    def seed(self, articles: Iterable[Article]) -> None:
        """Register already-ingested articles (``--append``), so they count as duplicates."""
        texts: dict[str, list[str]] = {}
        for art in articles:
            aid = art.meta.get("article_id", art.id)
            texts.setdefault(aid, []).append(art.text)
        for aid, parts in texts.items():
            self.dedup.add(aid, "existing output", self.dedup.signature("\n\n".join(parts)))

    def run(self, paths: Iterable[Path | str]) -> Iterator[Article]:
        files, skipped = find_inputs(paths)
        self.report.files = len(files)
        self.report.skipped_files = [str(p) for p in skipped]
        for path in files:
            for raw in read_raw(path, text_field=self.text_field):
                yield from self.process(raw)

    def process(self, raw: RawArticle) -> Iterator[Article]:
        self.report.read += 1
        text = normalise_text(raw.text)
        if not text:
            self.report.empty.append(raw.source)
            return
        aid = article_id(text)
        earlier = self.dedup.exact(aid)
        if earlier is not None:
            self.report.exact_duplicates.append({"source": raw.source, "article_id": aid, "duplicate_of": earlier})
            return
        sig = self.dedup.signature(text)
        near = self.dedup.near(sig)
        if near is not None:
            other, sim = near
            self.report.near_duplicates.append(
                {"source": raw.source, "article_id": aid, "similar_to": other, "similar_to_source": self.dedup.seen[other],
                 "similarity": round(sim, 3), "dropped": self.drop_near}
            )
            if self.drop_near:
                return
        self.dedup.add(aid, raw.source, sig)
        self.report.articles += 1
        spans = chunk_spans(text, self.max_chars)
        for i, (start, end) in enumerate(spans):
            meta = {"article_id": aid, "chunk": i, "n_chunks": len(spans), "char_offset": start, "source": raw.source}
            meta.update({k: v for k, v in raw.meta.items() if k not in meta})
            self.report.chunks += 1
            yield Article(id=f"{aid}#{i}", text=text[start:end], meta=meta)


def ingest(paths: Iterable[Path | str], **options: Any) -> tuple[list[Article], IngestReport]:
    """Convenience: ingest everything into memory (the CLI streams with :class:`Ingestor` instead)."""
    ingestor = Ingestor(**options)
    articles = list(ingestor.run(paths))
    return articles, ingestor.report


def run_ingest(
    inputs: Iterable[Path | str], out: Path | str, *, report_path: Path | str | None = None, append: bool = False,
    force: bool = False, wrap: Any = None, **options: Any,
) -> dict[str, Any]:
    """The ``annotate ingest`` job, streaming end to end: articles go from the readers through normalisation,
    de-duplication and chunking straight into a temporary output file, so memory does not grow with the
    number of articles (the near-duplicate index excepted, about 2 KB per article).

    ``append`` keeps the articles already in ``out`` (read twice, lazily: once to register them as seen, once to
    copy them). ``out`` and its report (default ``<out stem>.ingest-report.json``) are renamed into place
    together, or neither is. A run that would replace ``out`` with fewer articles stops unless ``force``; a run
    that finds no article at all writes nothing. ``wrap`` (optional) wraps the article stream, e.g. a progress bar.
    """
    out = Path(out)
    report_path = Path(report_path) if report_path is not None else out.with_name(out.stem + ".ingest-report.json")
    if report_path == out:
        raise OutputError(f"{out}: the report cannot be the output itself")
    ingestor = Ingestor(**options)
    keep = append and out.exists()
    if keep:
        ingestor.seed(read_articles(out))
    with OutputSet() as outputs:
        stream: Iterable[Article] = ingestor.run(inputs)
        if wrap is not None:
            stream = wrap(stream)
        written = write_jsonl(outputs.path(out), itertools.chain(read_articles(out) if keep else (), stream))
        if written == 0:
            raise InputError("no articles in the inputs (every one empty or a duplicate): nothing written")
        refuse_fewer(out, written, force=force, what="article records")
        summary = {"out": str(out), "report": str(report_path), "written": written, **ingestor.report.to_dict()}
        write_json(outputs.path(report_path), summary)
    return summary
