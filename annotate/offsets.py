"""Offset units at the edges: code points (ours) <-> UTF-16 code units or grapheme clusters (Doccano UI).

Records always hold Python code-point offsets. Doccano's server stores whatever it is given, but its
annotation UI reads and writes UTF-16 code units (project ``grapheme_mode`` off) or grapheme clusters
(``grapheme_mode`` on). These functions are the one place where those units are converted; they are
used only where data leaves for Doccano or comes back from it.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Literal

import regex

from .errors import InputError

Unit = Literal["codepoint", "utf16", "grapheme"]
UNITS: tuple[str, ...] = ("codepoint", "utf16", "grapheme")


class OffsetMap:
    """Boundaries of ``text`` in code points and in another unit, for conversions both ways."""

    def __init__(self, text: str, unit: Unit) -> None:
        if unit not in UNITS:
            raise InputError(f"unknown offset unit {unit!r} (expected one of {', '.join(UNITS)})")
        self.text = text
        self.unit = unit
        self._utf16: list[int] = []  # code-point index -> UTF-16 offset
        self._graphemes: list[int] = []  # grapheme index -> code-point offset of its start (plus the end)
        self.identity = unit == "codepoint" or (unit == "utf16" and text.isascii())
        if self.identity:
            return
        if unit == "utf16":
            self._utf16 = [0]
            for ch in text:
                self._utf16.append(self._utf16[-1] + (2 if ord(ch) > 0xFFFF else 1))
        else:
            self._graphemes = [0] + [m.end() for m in regex.finditer(r"\X", text)]

    def from_codepoint(self, offset: int) -> int:
        if self.identity:
            return offset
        if self.unit == "utf16":
            return self._utf16[offset]
        # an offset inside a grapheme cluster moves to the end of that cluster
        i = bisect_right(self._graphemes, offset) - 1
        return i if self._graphemes[i] == offset else i + 1

    def to_codepoint(self, offset: int) -> int:
        if self.identity:
            return offset
        bounds = self._utf16 if self.unit == "utf16" else self._graphemes
        if self.unit == "grapheme":
            return bounds[min(max(offset, 0), len(bounds) - 1)]
        # a UTF-16 offset inside a surrogate pair moves to the start of that character
        return max(bisect_right(bounds, offset) - 1, 0)


def convert_span(text: str, start: int, end: int, *, src: Unit, dst: Unit) -> tuple[int, int]:
    """Convert one span between units (use :class:`OffsetMap` for many spans on one text)."""
    if src == dst:
        return start, end
    if src != "codepoint":
        m = OffsetMap(text, src)
        start, end = m.to_codepoint(start), m.to_codepoint(end)
    if dst != "codepoint":
        m = OffsetMap(text, dst)
        start, end = m.from_codepoint(start), m.from_codepoint(end)
    return start, end
