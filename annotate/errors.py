"""The one exception family of the toolkit.

Library code raises subclasses of :class:`AnnotateError`; the CLI catches them in one place, prints the
message on one line and exits non-zero. Messages name the bad value (file and line, document id, offsets)
and, where it helps, what to do about it.
"""

from __future__ import annotations

from pathlib import Path


class AnnotateError(Exception):
    """Base class of every error the toolkit raises on purpose."""

    exit_code = 1


class InputError(AnnotateError):
    """Unreadable or malformed input: a file, a line, a field."""

    def __init__(self, message: str, *, path: Path | str | None = None, line: int | None = None) -> None:
        self.path = None if path is None else Path(path)
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")


class SchemaError(AnnotateError):
    """A label schema file that is unreadable or inconsistent."""


class ValidationError(AnnotateError):
    """Labelled documents that break the schema; carries every violation, not just the first."""

    def __init__(self, violations: list, *, source: str | None = None) -> None:
        self.violations = list(violations)
        first = self.violations[0] if self.violations else "no details"
        where = f"{source}: " if source else ""
        more = f" (and {len(self.violations) - 1} more)" if len(self.violations) > 1 else ""
        super().__init__(f"{where}{len(self.violations)} schema violation(s): {first}{more}")


class DoccanoError(AnnotateError):
    """The Doccano server is unreachable, refuses us, or answers something we cannot use."""


class OutputError(AnnotateError):
    """Refusing to write an output (it would lose labelled data, or the place is not writable)."""


class EngineError(AnnotateError):
    """A distributed engine (a Dask scheduler) that cannot be reached or used."""
