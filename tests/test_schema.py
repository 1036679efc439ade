import textwrap

import pytest

from annotate.errors import SchemaError
from annotate.records import Entity, LabelledDoc, Relation
from annotate.schema import load_schema, schema_from_dict, validate_doc


def test_schema_default_is_the_diplomacy_defence_schema():
    schema = load_schema()
    assert schema.name == "diplomacy-defence"
    assert schema.entity_labels == ["PERSON", "ROLE", "GPE", "LOC", "ORG", "MILITARY_UNIT", "EVENT", "AGREEMENT",
                                    "WEAPON", "MONEY", "DATE"]
    assert len(schema.relation_labels) == 14
    assert schema.relation("MEETS").symmetric is True
    assert schema.relation("HAS_ROLE").head == ("PERSON",)
    assert schema.allowed_relations("PERSON", "ROLE") == ["HAS_ROLE"]
    assert schema.allowed_relations("ROLE", "PERSON") == []


def test_schema_loads_json_and_yaml_the_same(tmp_path):
    (tmp_path / "s.yaml").write_text(textwrap.dedent("""\
        name: tiny
        entities: [{name: A, colour: "#112233", shortcut: a}, {name: B}]
        relations: [{name: R, head: [A], tail: [B]}]
    """), encoding="utf-8")
    (tmp_path / "s.json").write_text(
        '{"name": "tiny", "entities": [{"name": "A", "colour": "#112233", "shortcut": "a"}, {"name": "B"}],'
        ' "relations": [{"name": "R", "head": ["A"], "tail": ["B"]}]}', encoding="utf-8")
    assert load_schema(tmp_path / "s.yaml") == load_schema(tmp_path / "s.json")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"entities": [{"name": "A"}, {"name": "A"}]}, "duplicate entity label 'A'"),
        ({"entities": [{"name": "A"}], "relations": [{"name": "R", "head": ["A"], "tail": ["X"]}]},
         "relation 'R' names unknown tail label\\(s\\) 'X'"),
        ({"entities": [{"name": "A", "colour": "red"}]}, "entity 'A' has bad colour 'red'"),
        ({"entities": [{"name": "A", "shortcut": "a"}, {"name": "B", "shortcut": "A"}]}, "reuses shortcut"),
        ({"entities": []}, "'entities' must be a non-empty list"),
        ({"entities": [{"name": "A"}], "relations": [{"name": "R"}, {"name": "R"}]}, "duplicate relation type 'R'"),
        ([1, 2], "a schema must be a mapping"),
    ],
)
def test_schema_rejects_bad_files(data, match):
    with pytest.raises(SchemaError, match=match):
        schema_from_dict(data, source="s.yaml")


def test_schema_reports_every_problem_at_once():
    with pytest.raises(SchemaError, match=r"3 problem\(s\)"):
        schema_from_dict({"entities": [{"name": "A", "colour": "x"}, {"name": "A"}],
                          "relations": [{"name": "R", "head": ["Q"], "tail": ["A"]}]})


def test_schema_unreadable_and_malformed(tmp_path):
    with pytest.raises(SchemaError, match=r"nope\.yaml: cannot read schema file"):
        load_schema(tmp_path / "nope.yaml")
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(SchemaError, match=r"bad\.json: not valid JSON"):
        load_schema(tmp_path / "bad.json")


TEXT = "French President Emmanuel Macron met Rustem Umerov."


def doc(entities, relations=()):
    return LabelledDoc(id="d1", text=TEXT, entities=list(entities), relations=list(relations))


def test_schema_valid_doc_has_no_violations():
    d = doc([Entity("e1", 0, 6, "GPE", text="French"), Entity("e2", 7, 16, "ROLE"), Entity("e3", 17, 32, "PERSON"),
             Entity("e4", 37, 50, "PERSON")],
            [Relation("r1", "e3", "e2", "HAS_ROLE"), Relation("r2", "e2", "e1", "ROLE_IN"),
             Relation("r3", "e4", "e3", "MEETS")])
    assert validate_doc(d, load_schema()) == []


def test_schema_symmetric_relation_accepts_either_direction():
    schema = schema_from_dict({"entities": ["A", "B"], "relations": [
        {"name": "S", "head": ["A"], "tail": ["B"], "symmetric": True},
        {"name": "D", "head": ["A"], "tail": ["B"]}]})
    d = LabelledDoc(id="d", text="ab", entities=[Entity("x", 0, 1, "B"), Entity("y", 1, 2, "A")],
                    relations=[Relation("r1", "x", "y", "S"), Relation("r2", "x", "y", "D")])
    assert [v.message for v in validate_doc(d, schema)] == ["relation 'r2' D does not allow B -> A"]


def test_schema_reports_every_violation_with_id_and_offsets():
    d = doc([Entity("e1", 0, 6, "NATION"), Entity("e2", 40, 99, "PERSON"), Entity("e3", 7, 16, "ROLE", text="Preside"),
             Entity("e1", 17, 32, "PERSON")],
            [Relation("r1", "e3", "e9", "HAS_ROLE"), Relation("r2", "e3", "e1", "LIKES"),
             Relation("r3", "e3", "e2", "HAS_ROLE")])
    got = [str(v) for v in validate_doc(d, load_schema())]
    assert got == [
        "document 'd1' [0:6]: unknown entity label 'NATION'",
        "document 'd1' [40:99]: entity 'e2' offsets out of range for text of length 51",
        "document 'd1' [7:16]: entity 'e3' text 'Preside' does not match 'President'",
        "document 'd1' [17:32]: duplicate entity id 'e1'",
        "document 'd1': relation 'r1' points to missing entity id(s) 'e9'",
        "document 'd1': unknown relation type 'LIKES' in relation 'r2'",
        "document 'd1' [7:99]: relation 'r3' HAS_ROLE does not allow ROLE -> PERSON",
    ]


def test_schema_guidelines_are_generated_from_the_schema():
    from annotate.schema import guidelines_markdown

    md = guidelines_markdown(load_schema())
    assert md.startswith("# Annotation guidelines: diplomacy-defence (schema version 1)\n")
    assert "| HAS_ROLE | PERSON | ROLE | the person holds the role |" in md
    assert "| PERSON | p | a named person |" in md
    assert "- SUPPLIES(United States -> Patriot), negated" in md


@pytest.mark.parametrize(
    ("example", "match"),
    [
        ({"text": "Kyiv", "entities": [["Kyiv", "CITY"]]}, "example #1 uses unknown entity label 'CITY'"),
        ({"text": "Kyiv", "entities": [["Lviv", "A"]]}, "example #1 span 'Lviv' is not in its text"),
        ({"text": "a b", "entities": [["a", "A"], ["b", "B"]], "relations": [["b", "R", "a"]]},
         "example #1: R does not allow B -> A"),
    ],
)
def test_schema_checks_worked_examples(example, match):
    data = {"entities": ["A", "B"], "relations": [{"name": "R", "head": ["A"], "tail": ["B"]}], "examples": [example]}
    with pytest.raises(SchemaError, match=match):
        schema_from_dict(data)


def test_schema_shipped_guidelines_are_up_to_date():
    """docs/guidelines.md is generated: `annotate schema guidelines --out docs/guidelines.md` after a schema change."""
    from pathlib import Path

    from annotate.schema import guidelines_markdown

    shipped = Path(__file__).parents[1] / "docs" / "guidelines.md"
    assert shipped.read_text(encoding="utf-8") == guidelines_markdown(load_schema())
