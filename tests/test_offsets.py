import pytest

from annotate.errors import InputError
from annotate.offsets import OffsetMap, convert_span

FLAG_TEXT = "🇺🇦 Sébastien Lecornu met Rustem Umerov 👋 in Kyiv."


@pytest.mark.parametrize(
    ("unit", "expected"),
    # measured against Doccano 1.8.4's UI (shared/DOCCANO.md): "Rustem Umerov" is 25-38 in code points
    [("codepoint", (25, 38)), ("utf16", (27, 40)), ("grapheme", (24, 37))],
)
def test_offsets_doccano_example(unit, expected):
    assert convert_span(FLAG_TEXT, 25, 38, src="codepoint", dst=unit) == expected
    assert convert_span(FLAG_TEXT, *expected, src=unit, dst="codepoint") == (25, 38)


@pytest.mark.parametrize("unit", ["utf16", "grapheme"])
@pytest.mark.parametrize("text", ["plain ascii", "e\u0301 combining", "👋🏽 skin tone, 👨‍👩‍👧 family", "日本語 🇫🇷🇺🇦"])
def test_offsets_round_trip_on_cluster_boundaries(unit, text):
    import regex

    bounds = [0] + [m.end() for m in regex.finditer(r"\X", text)]
    m = OffsetMap(text, unit)
    for b in bounds:
        assert m.to_codepoint(m.from_codepoint(b)) == b


def test_offsets_inside_a_cluster_snap_outward():
    text = "a👋🏽b"  # the wave and its skin-tone modifier are one grapheme of two code points
    m = OffsetMap(text, "grapheme")
    assert m.from_codepoint(2) == 2  # inside the cluster -> its end
    assert OffsetMap(text, "utf16").to_codepoint(2) == 1  # inside a surrogate pair -> the character start


def test_offsets_unknown_unit():
    with pytest.raises(InputError, match="unknown offset unit 'bytes'"):
        OffsetMap("x", "bytes")
