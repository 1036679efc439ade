"""Inline markup <-> records: how the project's own corpus is written, reviewed and stored.

A markup file is a seed article (``date YYYY-MM-DD`` on the first line, then paragraphs separated by one
blank line) whose entity mentions are written in place, followed by an optional relation section::

    date 2023-04-04
    [Finland]{GPE fi} joined [NATO]{ORG nato} on [Tuesday]{DATE tue}.

    --- relations
    fi PART_OF nato
    us SUPPLIES patriot negated        # attributes after the tail: negated, hypothetical

* ``[text]{LABEL}`` marks an entity; ``[text]{LABEL key}`` also gives it a key that relation lines use.
  Keys are local to the file. Spans never nest. ``\\[ \\] \\{ \\} \\\\`` write the literal characters.
* A relation line is ``HEAD TYPE TAIL [negated] [hypothetical]``; ``#`` starts a comment.
* The body must already be in ingest's normal form (one line per paragraph, single spaces, one blank line
  between paragraphs), so that ``annotate ingest`` of the stripped article gives the same text and ids.

:func:`read_markup` returns the stripped article and the records that ``annotate ingest`` would make of it
(chunks included, entities and relations moved into their chunk); :func:`to_markup` writes a record back.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..ingest import DEFAULT_MAX_CHARS, Ingestor, RawArticle, normalise_text
from ..records import Entity, LabelledDoc, Relation

RELATIONS_HEADER = "--- relations"
ATTRIBUTES = ("negated", "hypothetical")
_HEADER = re.compile(r"^date (\d{4}-\d{2}-\d{2})$")
_MARK = re.compile(r"\{([A-Z][A-Z0-9_]*)(?: ([A-Za-z0-9_.-]+))?\}")
_ESCAPES = {"[": "[", "]": "]", "{": "{", "}": "}", "\\": "\\"}
_KEY = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass
class MarkupArticle:
    """One parsed markup file: the plain article and its annotations (offsets into ``body``)."""

    path: Path
    date: str
    body: str
    entities: list[tuple[int, int, str, str | None, int]] = field(default_factory=list)  # start, end, label, key, line
    relations: list[tuple[str, str, str, dict[str, Any], int]] = field(default_factory=list)  # head, type, tail, attrs, line

    @property
    def seed_text(self) -> str:
        """The article in the raw seed format, as ``seeds/`` holds it."""
        return f"date {self.date}\n{self.body}\n"


def parse_markup(path: Path | str) -> MarkupArticle:
    """Parse one markup file; every problem raises an :class:`InputError` naming the file and line."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"not valid UTF-8 (byte {err.start})", path=path) from err
    except OSError as err:
        raise InputError(f"cannot read file ({err.strerror or err})", path=path) from err
    lines = raw.lstrip("\ufeff").split("\n")
    match = _HEADER.match(lines[0].strip()) if lines else None
    if not match:
        raise InputError("first line must be 'date YYYY-MM-DD'", path=path, line=1)
    body_lines, rel_lines, rel_start = lines[1:], [], None
    for i, line in enumerate(lines):
        if line.strip() == RELATIONS_HEADER:
            body_lines, rel_lines, rel_start = lines[1:i], lines[i + 1:], i + 2
            break
    art = MarkupArticle(path=path, date=match.group(1), body="")
    _parse_body(art, body_lines)
    keys = _keys(art)
    if rel_start is not None:
        _parse_relations(art, rel_lines, rel_start, keys)
    return art


def _parse_body(art: MarkupArticle, lines: list[str]) -> None:
    """Strip the markup from the body lines, recording entity offsets in the stripped text."""
    out: list[str] = []
    pos = 0
    open_at: tuple[int, int] | None = None  # (offset, line) of an unclosed "["
    for lineno, line in enumerate(lines, start=2):
        i = 0
        while i < len(line):
            ch = line[i]
            if ch == "\\" and i + 1 < len(line) and line[i + 1] in _ESCAPES:
                out.append(line[i + 1])
                pos += 1
                i += 2
            elif ch == "[":
                if open_at is not None:
                    raise InputError("'[' inside an open entity (spans never nest; write \\[ for a bracket)",
                                     path=art.path, line=lineno)
                open_at = (pos, lineno)
                i += 1
            elif ch == "]":
                if open_at is None:
                    raise InputError("']' without an opening '[' (write \\] for a bracket)", path=art.path, line=lineno)
                mark = _MARK.match(line, i + 1)
                if not mark:
                    raise InputError(f"']' must be followed by {{LABEL}} or {{LABEL key}}, got {line[i + 1:i + 21]!r}",
                                     path=art.path, line=lineno)
                start = open_at[0]
                if start == pos:
                    raise InputError("empty entity '[]'", path=art.path, line=lineno)
                art.entities.append((start, pos, mark.group(1), mark.group(2), lineno))
                open_at = None
                i = mark.end()
            elif ch in "{}":
                raise InputError(f"stray {ch!r} (write \\{ch} for a literal brace)", path=art.path, line=lineno)
            else:
                out.append(ch)
                pos += 1
                i += 1
        if open_at is not None:
            raise InputError("entity '[' not closed on its line", path=art.path, line=open_at[1])
        out.append("\n")
        pos += 1
    text = "".join(out)
    body = text.strip("\n")
    lead = len(text) - len(text.lstrip("\n"))
    art.body = body
    art.entities = [(s - lead, e - lead, label, key, ln) for s, e, label, key, ln in art.entities]
    normal = normalise_text(body)
    if normal != body:
        at = next((i for i, (a, b) in enumerate(zip(normal, body)) if a != b), min(len(normal), len(body)))
        line = 2 + len(text[:at + lead].split("\n")) - 1
        raise InputError("text is not in normal form (one line per paragraph, single spaces, one blank line "
                         f"between paragraphs, no spaces at line ends) near {body[max(0, at - 15):at + 15]!r}",
                         path=art.path, line=line)
    for start, end, _label, _key, lineno in art.entities:
        span = body[start:end]
        if span != span.strip():
            raise InputError(f"entity {span!r} starts or ends with a space", path=art.path, line=lineno)


def _keys(art: MarkupArticle) -> dict[str, int]:
    keys: dict[str, int] = {}
    for i, (_s, _e, _label, key, lineno) in enumerate(art.entities):
        if key is None:
            continue
        if key in keys:
            raise InputError(f"entity key {key!r} used twice", path=art.path, line=lineno)
        keys[key] = i
    return keys


def _parse_relations(art: MarkupArticle, lines: list[str], first: int, keys: dict[str, int]) -> None:
    seen: set[tuple[str, str, str]] = set()
    for lineno, line in enumerate(lines, start=first):
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        if len(parts) < 3:
            raise InputError(f"relation line {line.strip()!r} is not 'HEAD TYPE TAIL [negated] [hypothetical]'",
                             path=art.path, line=lineno)
        head, label, tail, *flags = parts
        for key in (head, tail):
            if key not in keys:
                raise InputError(f"relation refers to unknown entity key {key!r}", path=art.path, line=lineno)
        if head == tail:
            raise InputError(f"relation from {head!r} to itself", path=art.path, line=lineno)
        bad = [f for f in flags if f not in ATTRIBUTES]
        if bad:
            raise InputError(f"unknown relation attribute {bad[0]!r} (expected {' or '.join(ATTRIBUTES)})",
                             path=art.path, line=lineno)
        if (head, label, tail) in seen:
            raise InputError(f"relation {head} {label} {tail} written twice", path=art.path, line=lineno)
        seen.add((head, label, tail))
        art.relations.append((head, label, tail, {f: True for f in flags}, lineno))


def to_records(art: MarkupArticle, *, source: str, annotator: str = "gold",
               max_chars: int = DEFAULT_MAX_CHARS) -> list[LabelledDoc]:
    """The records ``annotate ingest`` makes of the stripped article, with the annotations in their chunks.

    ``source`` is the path the raw article will have (``meta.source``), e.g. ``seeds/<name>.txt``. An
    entity or relation that would cross a chunk boundary raises an :class:`InputError`.
    """
    ingestor = Ingestor(max_chars=max_chars, near_threshold=0)
    chunks = list(ingestor.process(RawArticle(text=art.body, meta={"date": art.date}, source=source)))
    if not chunks:
        raise InputError("article has no text", path=art.path)
    docs = [LabelledDoc.from_article(c, annotator=annotator, status="confirmed") for c in chunks]
    where: dict[str, tuple[LabelledDoc, Entity]] = {}
    for n, (start, end, label, key, lineno) in enumerate(art.entities, start=1):
        doc = next((d for d in docs if d.meta["char_offset"] <= start < d.meta["char_offset"] + len(d.text)), None)
        if doc is None or end > doc.meta["char_offset"] + len(doc.text):
            raise InputError(f"entity {art.body[start:end]!r} crosses a chunk boundary", path=art.path, line=lineno)
        off = doc.meta["char_offset"]
        ent = Entity(id=f"e{len(doc.entities) + 1}", start=start - off, end=end - off, label=label,
                     text=art.body[start:end])
        doc.entities.append(ent)
        where[key if key is not None else f"#{n}"] = (doc, ent)
    for head, label, tail, attrs, lineno in art.relations:
        (hdoc, hent), (tdoc, tent) = where[head], where[tail]
        if hdoc is not tdoc:
            raise InputError(f"relation {head} {label} {tail} crosses a chunk boundary", path=art.path, line=lineno)
        hdoc.relations.append(Relation(id=f"r{len(hdoc.relations) + 1}", head=hent.id, tail=tent.id, label=label,
                                       attrs=dict(attrs)))
    return docs


def markup_files(paths: Iterable[Path | str]) -> list[Path]:
    """The markup files named, folders expanded to their ``*.txt`` (sorted)."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(path.glob("*.txt"))
            if not found:
                raise InputError("no markup files (*.txt) in folder", path=path)
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise InputError("no such file or folder", path=path)
    return files


def read_markup(paths: Iterable[Path | str], *, seeds_dir: str = "seeds", annotator: str = "gold",
                max_chars: int = DEFAULT_MAX_CHARS) -> tuple[list[MarkupArticle], list[LabelledDoc], dict[str, Any]]:
    """Parse markup files (or folders of ``*.txt``); return the articles, their records and a report."""
    files = markup_files(paths)
    arts, docs = [], []
    ids: dict[str, Path] = {}
    for path in files:
        art = parse_markup(path)
        recs = to_records(art, source=f"{seeds_dir}/{path.name}", annotator=annotator, max_chars=max_chars)
        aid = recs[0].meta["article_id"]
        if aid in ids:
            raise InputError(f"same text as {ids[aid]}", path=path)
        ids[aid] = path
        arts.append(art)
        docs.extend(recs)
    report = {
        "files": len(files), "documents": len(docs),
        "entities": dict(sorted(Counter(e.label for d in docs for e in d.entities).items())),
        "relations": dict(sorted(Counter(r.label for d in docs for r in d.relations).items())),
    }
    return arts, docs, report


# ------------------------------------------------------------------------------------------ writing


def _escape(text: str) -> str:
    return re.sub(r"([\[\]{}\\])", r"\\\1", text)


def to_markup(docs: list[LabelledDoc], *, date: str | None = None) -> str:
    """One article's records (its chunks, in order) as markup; keys are the entity ids, made unique."""
    docs = sorted(docs, key=lambda d: d.meta.get("char_offset", 0))
    date = date or docs[0].meta.get("date")
    if not date:
        raise InputError(f"record {docs[0].id}: no meta.date to write the 'date' line")
    parts: list[str] = []
    rel_lines: list[str] = []
    end_of_previous = 0
    for doc in docs:
        off = doc.meta.get("char_offset", 0)
        if parts and off > end_of_previous:  # chunks split at paragraphs ("\n\n") or sentences (" ")
            parts.append("\n\n" if off - end_of_previous == 2 else " " * (off - end_of_previous))
        prefix = f"c{doc.meta.get('chunk', 0)}." if len(docs) > 1 else ""
        cursor = 0
        for ent in sorted(doc.entities, key=lambda e: (e.start, e.end)):
            if ent.start < cursor:
                raise InputError(f"record {doc.id}: entity {ent.id} overlaps another; markup spans never nest")
            parts.append(_escape(doc.text[cursor:ent.start]))
            parts.append(f"[{_escape(doc.text[ent.start:ent.end])}]{{{ent.label} {prefix}{ent.id}}}")
            cursor = ent.end
        parts.append(_escape(doc.text[cursor:]))
        end_of_previous = off + len(doc.text)
        for rel in doc.relations:
            flags = [a for a in ATTRIBUTES if rel.attrs.get(a)]
            rel_lines.append(" ".join([f"{prefix}{rel.head}", rel.label, f"{prefix}{rel.tail}", *flags]))
    out = f"date {date}\n" + "".join(parts) + "\n"
    if rel_lines:
        out += f"\n{RELATIONS_HEADER}\n" + "\n".join(rel_lines) + "\n"
    return out


def import_markup(paths: Iterable[Path | str], out: Path | str | None = None, *, seeds_out: Path | str | None = None,
                  schema_path: Path | str | None = None, annotator: str = "gold",
                  max_chars: int = DEFAULT_MAX_CHARS) -> dict[str, Any]:
    """Convert markup files to records, validate them against the schema, then write.

    Writes ``out/labelled.jsonl`` (when ``out`` is given) and each stripped article as
    ``seeds_out/<file name>`` (when ``seeds_out`` is given); nothing is written if any file or record is
    invalid. ``meta.source`` is ``<seeds_out>/<file name>`` (default ``seeds/<file name>``).
    """
    from ..errors import ValidationError
    from ..records import OutputSet, write_jsonl
    from ..schema import load_schema

    seeds_dir = Path(seeds_out).as_posix() if seeds_out is not None else "seeds"
    arts, docs, report = read_markup(paths, seeds_dir=seeds_dir, annotator=annotator, max_chars=max_chars)
    violations = _violations(docs, load_schema(schema_path))
    if violations:
        raise ValidationError(violations, source="markup")
    with OutputSet() as outputs:  # the records and every seed file land together, or none does
        if out is not None:
            write_jsonl(outputs.path(Path(out) / "labelled.jsonl"), docs)
        for art in arts if seeds_out is not None else []:
            outputs.path(Path(seeds_out) / art.path.name).write_text(art.seed_text, encoding="utf-8")
    report.update({"out": None if out is None else str(out), "seeds_out": None if seeds_out is None else str(seeds_out),
                   "negated": sum(bool(r.attrs.get("negated")) for d in docs for r in d.relations),
                   "hypothetical": sum(bool(r.attrs.get("hypothetical")) for d in docs for r in d.relations)})
    return report


def _violations(docs: list[LabelledDoc], schema: Any) -> list[str]:
    """Schema violations, each naming the markup file (``meta.source``'s name) and the entity texts."""
    from ..schema import validate_doc

    out = []
    for doc in docs:
        for v in validate_doc(doc, schema):
            span = f" {doc.text[v.start:v.end]!r}" if v.start is not None and v.end is not None and v.end > v.start else ""
            out.append(f"{Path(doc.meta['source']).name}:{span} {v.message}")
    return out


def check_markup(paths: Iterable[Path | str], *, schema_path: Path | str | None = None) -> tuple[list[str], dict[str, Any]]:
    """Every problem in every markup file (syntax, normal form, schema), for annotators; writes nothing."""
    from ..schema import load_schema

    schema = load_schema(schema_path)
    problems: list[str] = []
    docs: list[LabelledDoc] = []
    files = markup_files(paths)
    for file in files:
        try:
            recs = to_records(parse_markup(file), source=f"seeds/{file.name}")
        except InputError as err:
            problems.append(str(err))
            continue
        problems.extend(_violations(recs, schema))
        docs.extend(recs)
    words = [len(d.text.split()) for d in docs]
    report = {"files": len(files), "documents": len(docs), "words": sum(words),
              "entities": dict(sorted(Counter(e.label for d in docs for e in d.entities).items())),
              "relations": dict(sorted(Counter(r.label for d in docs for r in d.relations).items())),
              "problems": len(problems)}
    return problems, report
