"""The record format every stage passes on, and its JSONL reader and writer.

One JSON object per line. An article::

    {"id": "3f1c...#0", "text": "...", "meta": {"article_id": "3f1c...", "date": "2025-03-11",
     "source": "seeds/x.txt", "chunk": 0, "char_offset": 0}}

A labelled document is the same object with ``entities``, ``relations``, ``annotator`` and ``status``::

    "entities": [{"id": "e1", "start": 26, "end": 41, "label": "PERSON"}],
    "relations": [{"id": "r1", "head": "e1", "tail": "e2", "label": "HAS_ROLE"}],
    "annotator": "alice", "status": "confirmed"

Offsets are Python code-point offsets into ``text``, ``end`` exclusive. Entities and relations may carry
``attrs`` (e.g. ``{"negated": true}``, ``{"confidence": 0.8}``); an entity may carry the ``text`` it
covers, which validation then checks. Conversions to other units happen at the edges (``offsets.py``).

Reading is streaming and names file and line on every error; writing is atomic (temporary file in the
same folder, then rename), so a failed run never leaves a partial file behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .errors import InputError, OutputError

STATUSES = ("confirmed", "unconfirmed", "predicted")


@dataclass
class Entity:
    id: str
    start: int
    end: int
    label: str
    text: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "start": self.start, "end": self.end, "label": self.label}
        if self.text is not None:
            out["text"] = self.text
        if self.attrs:
            out["attrs"] = self.attrs
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entity:
        _require(data, ("id", "start", "end", "label"), "entity")
        start, end = data["start"], data["end"]
        if not _is_int(start) or not _is_int(end):
            raise ValueError(f"entity {data['id']!r}: start and end must be integers, got {start!r}, {end!r}")
        return cls(
            id=str(data["id"]),
            start=start,
            end=end,
            label=str(data["label"]),
            text=data.get("text"),
            attrs=dict(data.get("attrs") or {}),
        )


@dataclass
class Relation:
    id: str
    head: str
    tail: str
    label: str
    attrs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "head": self.head, "tail": self.tail, "label": self.label}
        if self.attrs:
            out["attrs"] = self.attrs
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Relation:
        _require(data, ("id", "head", "tail", "label"), "relation")
        return cls(
            id=str(data["id"]),
            head=str(data["head"]),
            tail=str(data["tail"]),
            label=str(data["label"]),
            attrs=dict(data.get("attrs") or {}),
        )


@dataclass
class Article:
    """A normalised article (or a chunk of one): text and meta, no labels."""

    id: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "meta": self.meta}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Article:
        _require(data, ("id", "text"), "record")
        return cls(id=str(data["id"]), text=_text(data), meta=_meta(data))


@dataclass
class LabelledDoc(Article):
    """An article with entity spans and relations, as one annotator (or a model) left them."""

    entities: list[Entity] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    annotator: str | None = None
    status: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["entities"] = [e.to_dict() for e in self.entities]
        out["relations"] = [r.to_dict() for r in self.relations]
        out["annotator"] = self.annotator
        out["status"] = self.status
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabelledDoc:
        _require(data, ("id", "text"), "record")
        entities = data.get("entities")
        relations = data.get("relations")
        entities = [] if entities is None else entities
        relations = [] if relations is None else relations
        if not isinstance(entities, list) or not isinstance(relations, list):
            raise ValueError("'entities' and 'relations' must be lists")
        return cls(
            id=str(data["id"]),
            text=_text(data),
            meta=_meta(data),
            entities=[Entity.from_dict(e) for e in entities],
            relations=[Relation.from_dict(r) for r in relations],
            annotator=data.get("annotator"),
            status=data.get("status"),
        )

    @classmethod
    def from_article(cls, article: Article, **kwargs: Any) -> LabelledDoc:
        return cls(id=article.id, text=article.text, meta=dict(article.meta), **kwargs)

    def entity_by_id(self) -> dict[str, Entity]:
        return {e.id: e for e in self.entities}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _require(data: Any, keys: tuple[str, ...], what: str) -> None:
    if not isinstance(data, dict):
        raise ValueError(f"{what} must be a JSON object, got {type(data).__name__}")
    missing = [k for k in keys if k not in data]
    if missing:
        raise ValueError(f"{what} is missing field(s) {', '.join(repr(k) for k in missing)}")


def _text(data: dict[str, Any]) -> str:
    if not isinstance(data["text"], str):
        raise ValueError(f"'text' must be a string, got {type(data['text']).__name__}")
    return data["text"]


def _meta(data: dict[str, Any]) -> dict[str, Any]:
    meta = data.get("meta") or {}
    if not isinstance(meta, dict):
        raise ValueError(f"'meta' must be an object, got {type(meta).__name__}")
    return dict(meta)


# --------------------------------------------------------------------------------------------- reading


def iter_json_lines(path: Path | str) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, object)`` for each non-blank line; malformed JSON names file and line."""
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8")
    except OSError as err:
        raise InputError(f"cannot read file ({err.strerror or err})", path=path) from err
    with handle:
        line_no = 0
        try:
            for line_no, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield line_no, json.loads(line)
                except json.JSONDecodeError as err:
                    raise InputError(f"malformed JSON ({err.msg} at column {err.colno})", path=path, line=line_no) from err
        except UnicodeDecodeError as err:
            raise InputError("not valid UTF-8", path=path, line=line_no + 1) from err


def read_jsonl(path: Path | str, cls: type[Article] = LabelledDoc) -> Iterator[Any]:
    """Stream records of type ``cls`` from a JSONL file."""
    for line_no, obj in iter_json_lines(path):
        try:
            yield cls.from_dict(obj)
        except (ValueError, TypeError) as err:
            raise InputError(str(err), path=path, line=line_no) from err


def read_docs(path: Path | str) -> Iterator[LabelledDoc]:
    return read_jsonl(path, LabelledDoc)


def read_articles(path: Path | str) -> Iterator[Article]:
    return read_jsonl(path, Article)


# --------------------------------------------------------------------------------------------- writing


def _mode_for(path: Path) -> int:
    """The permission bits an output should get: the existing file's, else what ``open()`` would give."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: Path | str, *, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside ``path`` for writers that want a file name (DocBin, Parquet, PNG); it is
    renamed over ``path`` only if the block succeeds, and removed otherwise."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder, not a file; nothing was replaced")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
        os.close(fd)
    except OSError as err:
        raise OutputError(f"{path}: cannot write here ({err.strerror or err})") from err
    try:
        yield Path(tmp)
        os.chmod(tmp, _mode_for(path))  # mkstemp makes 0600; keep the old file's mode, else the umask's default
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_writer(path: Path | str, *, encoding: str = "utf-8") -> Iterator[IO[str]]:
    """Open a temporary file beside ``path``; rename it over ``path`` only if the block succeeds."""
    with atomic_path(path) as tmp, tmp.open("w", encoding=encoding, newline="\n") as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


def dumps(obj: Any, *, ensure_ascii: bool = False) -> str:
    return json.dumps(obj, ensure_ascii=ensure_ascii, separators=(", ", ": "))


def write_jsonl(path: Path | str, items: Iterable[Any], *, ensure_ascii: bool = False) -> int:
    """Atomically write records (objects with ``to_dict``) or plain dicts, one per line; return the count."""
    count = 0
    with atomic_writer(path) as handle:
        for item in items:
            obj = item.to_dict() if hasattr(item, "to_dict") else item
            handle.write(dumps(obj, ensure_ascii=ensure_ascii))
            handle.write("\n")
            count += 1
    return count


def write_json(path: Path | str, obj: Any) -> None:
    """Atomically write one JSON document (reports, summaries)."""
    with atomic_writer(path) as handle:
        json.dump(obj, handle, ensure_ascii=False, indent=2)
        handle.write("\n")


class OutputSet:
    """All the files one command writes, renamed into place together at the end, or none of them.

    ``path(final)`` gives a temporary name beside ``final`` to write to (any writer: :func:`write_jsonl`,
    DocBin, Parquet); leaving the ``with`` block normally renames every temporary file over its target (keeping
    the target's mode; if a rename fails, the targets already replaced are put back from hard links made just
    before); an exception removes them all and leaves every earlier output as it was::

        with OutputSet() as outputs:
            write_jsonl(outputs.path(gold), docs)
            write_jsonl(outputs.path(review), items)
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []

    def path(self, final: Path | str) -> Path:
        final = Path(final)
        if final.is_dir():
            raise OutputError(f"{final}: is a folder, not a file; nothing was replaced")
        if any(f == final for _, f in self._pending):
            raise OutputError(f"{final}: the same file is given for two outputs")
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".pending", dir=final.parent)
            os.close(fd)
        except OSError as err:
            raise OutputError(f"{final}: cannot write here ({err.strerror or err})") from err
        self._pending.append((Path(tmp), final))
        return Path(tmp)

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, kind: Any, err: Any, tb: Any) -> None:
        backups: list[Path] = []
        try:
            if kind is None:
                for tmp, final in self._pending:
                    os.chmod(tmp, _mode_for(final))
                _replace_all(self._pending, backups)
        finally:
            for leftover in [tmp for tmp, _ in self._pending] + backups:  # renamed ones are gone already
                with contextlib.suppress(OSError):
                    os.unlink(leftover)


def _backup(target: Path, backups: list[Path]) -> Path | None:
    """A hard link to (or, where links fail, a copy of) ``target`` beside it; None if there is no target."""
    if not target.exists():
        return None
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent)
    os.close(fd)
    os.unlink(name)
    backups.append(Path(name))
    try:
        os.link(target, name)
    except OSError:
        shutil.copy2(target, name)
    return Path(name)


def _replace_all(moves: list[tuple[Path, Path]], backups: list[Path]) -> None:
    """Rename each ``(temporary, target)`` into place; if one rename fails, undo the ones done before it."""
    try:
        saved = [_backup(target, backups) for _, target in moves]
    except OSError as err:
        raise OutputError(f"{moves[0][1].parent}: cannot keep the earlier files while replacing them "
                          f"({err.strerror or err}); nothing was replaced") from err
    done: list[tuple[Path, Path | None]] = []
    try:
        for (tmp, target), backup in zip(moves, saved):
            os.replace(tmp, target)
            done.append((target, backup))
    except BaseException as err:
        for target, backup in reversed(done):
            with contextlib.suppress(OSError):
                if backup is None:
                    os.unlink(target)
                else:
                    os.replace(backup, target)
        if isinstance(err, OSError):
            raise OutputError(f"{moves[len(done)][1]}: cannot replace ({err.strerror or err}); "
                              "the earlier files were put back") from err
        raise


def file_sha256(path: Path | str) -> str:
    """The SHA-256 of a file's bytes, read in chunks (files here can be large: wheels, database dumps)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def count_lines(path: Path | str) -> int:
    """Non-empty lines of a JSONL file (0 when it does not exist)."""
    path = Path(path)
    if not path.is_file():
        return 0
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def refuse_fewer(
    path: Path | str, new_count: int, *, force: bool = False, what: str = "records", before: int | None = None,
) -> None:
    """Raise :class:`OutputError` when ``path`` holds more records than the ``new_count`` about to replace it
    (``before``: the records it holds, for files that are not JSONL; default: its non-empty lines)."""
    before = count_lines(path) if before is None else before
    if before > new_count and not force:
        raise OutputError(f"{path}: holds {before} {what}, this run would replace them with {new_count}; "
                          "pass --force to overwrite it")
