"""CoNLL-style NER files (CrossNER, CoNLL-2003) -> records, a generated schema file and an import report.

Input: one token per line, the token first and its tag last, separated by a tab (CrossNER) or by spaces
(CoNLL-2003, whose middle POS / chunk columns are ignored); a blank line ends a sentence; a ``-DOCSTART-``
line ends a document (it is not a token)::

    United<TAB>B-politicalparty
    Russia<TAB>I-politicalparty
    ,<TAB>O

Tags are ``O``, ``B-LABEL`` or ``I-LABEL``, in either scheme: BIO (IOB2: every span starts with ``B-``)
or IOB1 (a span starts with ``I-``; ``B-`` only separates two adjacent spans of one label). Both decode
the same way: ``B-X`` always starts a span, ``I-X`` continues a span of label X and otherwise starts one.
An ``I-X`` that starts a span (no ``B-X`` before it) is counted per label in ``i_without_b``: a repair
in BIO data, the normal case in IOB1; the report names the scheme the tags look like.

Mapping: each sentence -> one record whose ``text`` is its tokens **joined with single spaces** (the
original spacing is unknown), ``id`` ``<file stem>-<n>`` (n from 1), ``meta: {article_id, source, line,
document}`` (``line``: the sentence's first line; ``document``: how many ``-DOCSTART-`` lines came before
it); each span -> an ``Entity`` with code-point offsets into that text, its ``text`` and ``attrs: {tokens:
[first, last]}`` (inclusive token indices). A UTF-8 byte order mark at the start of the file is dropped.
A line with a single field, or a tag that is not ``O`` / ``B-LABEL`` / ``I-LABEL``, raises
:class:`~annotate.errors.InputError` naming the file and line, as does a file without tokens.

:func:`read_conll` streams the sentences; :func:`read_crossner` returns the records and the report;
:func:`import_conll` writes them with a generated schema through
:func:`~annotate.importers._corpus.write_corpus` (all three files or none).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..records import Entity, LabelledDoc
from ..schema import LABEL_RE
from ._corpus import write_corpus
from ._schema import build_schema
from .crossre import token_offsets

logger = logging.getLogger(__name__)

ANNOTATOR = "conll"
DOCSTART = "-DOCSTART-"
OUTSIDE = "O"
TAG_RE = re.compile(r"^(?P<prefix>[BI])-(?P<label>.+)$")
TEXT_NOTE = "tokens joined with single spaces; offsets are code points into that text, end exclusive"


@dataclass
class Sentence:
    """One sentence as read: tokens, tags, where it starts, and which document it belongs to."""

    tokens: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    line: int = 0
    document: int = 0


@dataclass
class _Counts:
    entities: Counter = field(default_factory=Counter)
    i_without_b: Counter = field(default_factory=Counter)
    b_starts_after_other: int = 0  # B- not following the same label: only BIO writes these
    separators: Counter = field(default_factory=Counter)
    docstarts: int = 0
    tokens: int = 0


def _split_line(raw: str, path: Path, line: int) -> tuple[str, str, str]:
    """``(token, tag, separator)`` of one token line; tab-separated if it has a tab, else whitespace."""
    separator = "tab" if "\t" in raw else "space"
    fields = [f.strip() for f in (raw.split("\t") if separator == "tab" else raw.split())]
    if len(fields) < 2 or not fields[0] or not fields[-1]:
        raise InputError(f"expected 'TOKEN<TAB>TAG' (or space-separated columns), got {raw!r}", path=path, line=line)
    tag = fields[-1]
    if tag != OUTSIDE:
        match = TAG_RE.match(tag)
        if not match or not LABEL_RE.match(match["label"]):
            raise InputError(f"bad tag {tag!r}: expected O, B-LABEL or I-LABEL (LABEL: letters, digits, '_', '-')",
                             path=path, line=line)
    return fields[0], tag, separator


def read_conll(path: Path | str, counts: _Counts | None = None) -> Iterator[Sentence]:
    """Stream the sentences of a CoNLL-style file (see the module docstring); ``counts`` collects line facts.

    A UTF-8 byte order mark at the start of the file is dropped (``utf-8-sig``), so it never ends up in the
    first token.
    """
    path = Path(path)
    counts = counts if counts is not None else _Counts()
    try:
        handle = path.open(encoding="utf-8-sig")
    except OSError as err:
        raise InputError(f"cannot read file ({err.strerror or err})", path=path) from err
    current = Sentence()
    line = 0
    with handle:
        try:
            for line, raw in enumerate(handle, start=1):
                raw = raw.rstrip("\r\n")
                if not raw.strip() or raw.split()[0] == DOCSTART:
                    if current.tokens:
                        yield current
                    if raw.strip():
                        counts.docstarts += 1
                    current = Sentence(document=counts.docstarts)
                    continue
                token, tag, separator = _split_line(raw, path, line)
                counts.separators[separator] += 1
                if not current.tokens:
                    current.line = line
                current.tokens.append(token)
                current.tags.append(tag)
        except UnicodeDecodeError as err:
            raise InputError("not valid UTF-8", path=path, line=line + 1) from err
    if current.tokens:
        yield current


def decode_spans(tags: list[str], counts: _Counts | None = None) -> list[tuple[int, int, str]]:
    """BIO or IOB1 tags -> ``(first, last, label)`` token spans, ``last`` inclusive.

    ``B-X`` starts a span; ``I-X`` extends the open span when it has label X, else starts one (counted in
    ``counts.i_without_b``); ``O`` closes the open span.
    """
    spans: list[tuple[int, int, str]] = []
    open_label: str | None = None
    for i, tag in enumerate(tags):
        if tag == OUTSIDE:
            open_label = None
            continue
        prefix, label = tag[0], tag[2:]
        if prefix == "I" and open_label == label:
            first, _, _ = spans[-1]
            spans[-1] = (first, i, label)
            continue
        if counts is not None:
            if prefix == "I":
                counts.i_without_b[label] += 1
            elif open_label != label:
                counts.b_starts_after_other += 1
        spans.append((i, i, label))
        open_label = label
    return spans


def _scheme(counts: _Counts) -> str:
    """Which tagging scheme the tags look like: BIO, IOB1, or BIO with I- tags repaired."""
    if not counts.i_without_b:
        return "BIO"
    if not counts.b_starts_after_other:
        return "IOB1"
    return "BIO (with I- tags that start a span, repaired)"


def sentence_to_doc(sentence: Sentence, doc_id: str, source: str, counts: _Counts | None = None) -> LabelledDoc:
    """One sentence -> one record (tokens joined with single spaces, spans as code-point offsets)."""
    text = " ".join(sentence.tokens)
    offsets = token_offsets(sentence.tokens)
    doc = LabelledDoc(id=doc_id, text=text,
                      meta={"article_id": doc_id, "source": source, "line": sentence.line, "document": sentence.document},
                      annotator=ANNOTATOR, status="confirmed")
    for first, last, label in decode_spans(sentence.tags, counts):
        start, end = offsets[first][0], offsets[last][1]
        doc.entities.append(Entity(id=f"e{len(doc.entities) + 1}", start=start, end=end, label=label,
                                   text=text[start:end], attrs={"tokens": [first, last]}))
        if counts is not None:
            counts.entities[label] += 1
    return doc


def read_crossner(path: Path | str) -> tuple[list[LabelledDoc], dict[str, Any]]:
    """Read a CoNLL-style file (CrossNER, CoNLL-2003); return one record per sentence and the import report
    (no ``out``). A file without tokens raises :class:`~annotate.errors.InputError`."""
    path = Path(path)
    counts = _Counts()
    docs = []
    for n, sentence in enumerate(read_conll(path, counts), start=1):
        counts.tokens += len(sentence.tokens)
        docs.append(sentence_to_doc(sentence, f"{path.stem}-{n}", path.name, counts))
    if not docs:
        raise InputError(f"no records found in {path} (expected 'TOKEN<TAB>TAG' lines)")
    report = {
        "path": str(path), "text": TEXT_NOTE, "documents": len(docs), "tokens": counts.tokens,
        "entities": sum(counts.entities.values()), "docstarts": counts.docstarts,
        "separators": dict(sorted(counts.separators.items())), "scheme": _scheme(counts),
        "counts": {"entities": dict(sorted(counts.entities.items())),
                   "i_without_b": dict(sorted(counts.i_without_b.items()))},
        "i_without_b": sum(counts.i_without_b.values()),
    }
    logger.info("CoNLL %s: %d sentences, %d entities", path, len(docs), report["entities"])
    return docs, report


def import_conll(path: Path | str, out: Path | str, *, name: str | None = None, force: bool = False) -> dict[str, Any]:
    """Import a CoNLL-style file; write ``out/labelled.jsonl``, ``out/schema.yaml``, ``out/import-report.json``
    (all or none).

    :func:`read_crossner` then :func:`~annotate.importers._corpus.write_corpus`. ``name`` names the generated
    schema (default: the ``out`` folder's name). An earlier ``out/labelled.jsonl`` with more records is not
    replaced (:class:`~annotate.errors.OutputError`) unless ``force``. Returns the report.
    """
    out = Path(out)
    docs, report = read_crossner(path)
    labels = sorted({e.label for d in docs for e in d.entities})
    schema = build_schema(name or out.name, labels, corpus=Path(path).name,
                          command="annotate import conll")
    summary = {"path": report["path"], "out": str(out), **report}
    write_corpus(out, docs, schema, summary, force=force)
    return summary
