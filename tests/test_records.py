import json
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annotate.errors import InputError
from annotate.records import Article, Entity, LabelledDoc, Relation, read_articles, read_docs, write_json, write_jsonl

# Text with accents, CJK, emoji (astral plane), flags (regional indicators) and combining marks.
TEXT = st.lists(
    st.one_of(
        st.characters(blacklist_categories=("Cs",)),
        st.sampled_from(["é", "Ş", "ñ", "😀", "🇺🇦", "👋🏽", "e\u0301", "\n", " "]),
    ),
    max_size=40,
).map("".join)


@st.composite
def labelled_docs(draw):
    text = draw(TEXT)
    n = len(text)
    entities = []
    if n:
        for i in range(draw(st.integers(0, 5))):
            start = draw(st.integers(0, n - 1))
            end = draw(st.integers(start + 1, n))
            attrs = draw(st.sampled_from([{}, {"confidence": 0.5}, {"source": "patterns"}]))
            entities.append(Entity(id=f"e{i}", start=start, end=end, label=draw(st.sampled_from(["GPE", "PERSON"])),
                                   text=draw(st.sampled_from([None, text[start:end]])), attrs=attrs))
    relations = []
    if len(entities) >= 2:
        for i in range(draw(st.integers(0, 3))):
            h, t = draw(st.permutations(entities))[:2]
            relations.append(Relation(id=f"r{i}", head=h.id, tail=t.id, label="MEETS",
                                      attrs=draw(st.sampled_from([{}, {"negated": True}]))))
    meta = draw(st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), TEXT, st.none()), max_size=3))
    return LabelledDoc(id=draw(TEXT.filter(bool)), text=text, meta=meta, entities=entities, relations=relations,
                       annotator=draw(st.sampled_from([None, "alice", "zoë"])),
                       status=draw(st.sampled_from([None, "confirmed", "unconfirmed"])))


@settings(max_examples=150, deadline=None)
@given(docs=st.lists(labelled_docs(), max_size=4))
def test_records_jsonl_round_trip_is_lossless(tmp_path_factory, docs):
    path = tmp_path_factory.mktemp("rt") / "docs.jsonl"
    assert write_jsonl(path, docs) == len(docs)
    assert list(read_docs(path)) == docs


def test_records_article_round_trip_and_shape(tmp_path):
    art = Article(id="a#0", text="Kyiv 🇺🇦", meta={"article_id": "a", "chunk": 0, "char_offset": 0})
    path = tmp_path / "a.jsonl"
    write_jsonl(path, [art])
    assert json.loads(path.read_text(encoding="utf-8")) == {"id": "a#0", "text": "Kyiv 🇺🇦", "meta": art.meta}
    assert list(read_articles(path)) == [art]
    # an article read as a labelled doc has no labels
    assert list(read_docs(path)) == [LabelledDoc(id="a#0", text="Kyiv 🇺🇦", meta=art.meta)]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('{"id": "a", "text": "x"}\n{"id": "b", "text": \n', r"docs\.jsonl:2: malformed JSON"),
        ('{"id": "a"}\n', r"docs\.jsonl:1: record is missing field\(s\) 'text'"),
        ('\n\n{"id": "a", "text": 3}\n', r"docs\.jsonl:3: 'text' must be a string"),
        ('[1, 2]\n', r"docs\.jsonl:1: record must be a JSON object"),
        ('{"id": "a", "text": "x", "entities": [{"id": "e1", "start": "0", "end": 1, "label": "GPE"}]}\n',
         r"docs\.jsonl:1: entity 'e1': start and end must be integers"),
        ('{"id": "a", "text": "x", "relations": [{"id": "r1", "head": "e1"}]}\n',
         r"docs\.jsonl:1: relation is missing field\(s\) 'tail', 'label'"),
    ],
)
def test_records_read_errors_name_file_and_line(tmp_path, content, match):
    path = tmp_path / "docs.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=match):
        list(read_docs(path))


def test_records_unreadable_file(tmp_path):
    with pytest.raises(InputError, match=r"missing\.jsonl: cannot read file"):
        list(read_docs(tmp_path / "missing.jsonl"))
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes('{"id": "a", "text": "caf\u00e9"}\n'.encode("latin-1"))
    with pytest.raises(InputError, match=r"latin1\.jsonl:1: not valid UTF-8"):
        list(read_docs(bad))


def test_records_write_is_atomic_on_failure(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text("previous\n", encoding="utf-8")

    def failing():
        yield {"id": "a", "text": "x"}
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_jsonl(path, failing())
    assert path.read_text(encoding="utf-8") == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]  # no temp file left behind


def test_records_write_json_and_ascii_escape(tmp_path):
    write_json(tmp_path / "s.json", {"name": "Sébastien"})
    assert json.loads((tmp_path / "s.json").read_text(encoding="utf-8")) == {"name": "Sébastien"}
    write_jsonl(tmp_path / "t.jsonl", [{"text": "Sébastien 👋"}], ensure_ascii=True)
    raw = (tmp_path / "t.jsonl").read_text(encoding="ascii")
    assert raw == textwrap.dedent('{"text": "S\\u00e9bastien \\ud83d\\udc4b"}\n')


def test_atomic_write_keeps_mode_and_refuses_a_folder(tmp_path):
    import os
    import stat

    from annotate.errors import OutputError
    from annotate.records import write_jsonl

    fresh = tmp_path / "fresh.jsonl"
    write_jsonl(fresh, [{"a": 1}])
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600
    existing = tmp_path / "existing.jsonl"
    existing.write_text("{}\n")
    existing.chmod(0o640)
    write_jsonl(existing, [{"a": 2}])
    assert stat.S_IMODE(existing.stat().st_mode) == 0o640
    with pytest.raises(OutputError, match="is a folder, not a file"):
        write_jsonl(tmp_path, [{"a": 3}])
