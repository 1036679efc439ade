import textwrap

import pytest

from annotate.errors import InputError, SchemaError
from annotate.preannotate import PatternSuggester, adjacency_relations, load_patterns, suggestion_counts
from annotate.records import Article, Entity
from annotate.schema import load_schema

PATTERNS = textwrap.dedent("""\
    {"label": "GPE", "pattern": "French"}
    {"label": "GPE", "pattern": "Ukraine"}
    {"label": "ROLE", "pattern": [{"LOWER": "president"}]}
    {"label": "PERSON", "pattern": "Emmanuel Macron"}
    {"label": "ORG", "pattern": "NATO"}
""")


@pytest.fixture
def patterns_file(tmp_path):
    path = tmp_path / "patterns.jsonl"
    path.write_text(PATTERNS, encoding="utf-8")
    return path


def test_preannotate_patterns_and_adjacency_relations(patterns_file):
    schema = load_schema()
    text = "French President Emmanuel Macron spoke to NATO about Ukraine."
    [doc] = PatternSuggester(schema, patterns_file).suggest([Article(id="a#0", text=text, meta={"chunk": 0})])
    assert [(text[e.start:e.end], e.label) for e in doc.entities] == [
        ("French", "GPE"), ("President", "ROLE"), ("Emmanuel Macron", "PERSON"), ("NATO", "ORG"), ("Ukraine", "GPE")]
    by_id = doc.entity_by_id()
    assert [(r.label, text[by_id[r.head].start:by_id[r.head].end], text[by_id[r.tail].start:by_id[r.tail].end])
            for r in doc.relations] == [("ROLE_IN", "President", "French"), ("HAS_ROLE", "Emmanuel Macron", "President")]
    assert doc.status == "predicted" and doc.annotator == "patterns" and doc.meta == {"chunk": 0}
    assert all(e.attrs == {"source": "patterns"} for e in doc.entities)
    ents, rels = suggestion_counts([doc])
    assert ents == {"GPE": 2, "ROLE": 1, "PERSON": 1, "ORG": 1} and rels == {"ROLE_IN": 1, "HAS_ROLE": 1}


def test_preannotate_adjacency_needs_a_single_space():
    schema = load_schema()
    text = "President, Macron"
    ents = [Entity("e1", 0, 9, "ROLE"), Entity("e2", 11, 17, "PERSON")]
    assert adjacency_relations(text, ents, schema) == []


def test_preannotate_shipped_gazetteer_loads_with_schema_labels():
    schema = load_schema()
    patterns = load_patterns(None, schema)
    assert len(patterns) > 100
    assert {p["label"] for p in patterns} <= set(schema.entity_labels)


@pytest.mark.parametrize(
    ("content", "error", "match"),
    [
        ('{"label": "NATION", "pattern": "France"}\n', SchemaError, r"p\.jsonl:1: pattern label 'NATION' is not in schema"),
        ('{"label": "GPE"}\n', InputError, r"p\.jsonl:1: a pattern needs 'label' and 'pattern'"),
        ("\n", InputError, r"p\.jsonl: no patterns in file"),
    ],
)
def test_preannotate_bad_patterns(tmp_path, content, error, match):
    (tmp_path / "p.jsonl").write_text(content, encoding="utf-8")
    with pytest.raises(error, match=match):
        load_patterns(tmp_path / "p.jsonl", load_schema())
