"""re3d importer on a tiny inline fixture in re3d's mongoexport format."""

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from annotate.cli import app
from annotate.errors import InputError
from annotate.importers.re3d import find_subsets, import_re3d, read_re3d
from annotate.records import read_docs
from annotate.schema import load_schema, validate_doc

# "On Dec. 6th, Iraqi Security Forces attacked ISIL fighters in East Mosul."
#  0  3       11 13   18                34       43            57 60 63   68   73
DOCUMENTS = """\
{ "_id" : "D1", "sourceName" : "CENTCOM", "sourceUrl" : "http://x", "wordCount" : 12, "sentenceCount" : 1, "title" : "Strike", "text" : "On Dec. 6th, Iraqi Security Forces attacked ISIL fighters in East Mosul." }
"""
ENTITIES = """\
{ "_id" : "D1-0-3-11-Temporal", "begin" : 3, "end" : 11, "type" : "Temporal", "value" : "Dec. 6th", "documentId" : "D1", "confidence" : 1 }
{ "_id" : "D1-0-13-18-Nationality", "begin" : 13, "end" : 18, "type" : "Nationality", "value" : "Iraqi", "documentId" : "D1", "confidence" : 0 }
{ "_id" : "D1-0-13-34-Organisation", "begin" : 13, "end" : 34, "type" : "Organisation", "value" : "Iraqi Security Forces", "documentId" : "D1", "confidence" : 0.75 }
{ "_id" : "D1-0-13-34-Organisation-dup", "begin" : 13, "end" : 34, "type" : "Organisation", "value" : "Iraqi Security Forces", "documentId" : "D1", "confidence" : 1 }
{ "_id" : "D1-0-44-57-Organisation", "begin" : 44, "end" : 57, "type" : "Organisation", "value" : "ISIL fighters", "documentId" : "D1", "confidence" : 1 }
{ "_id" : "D1-0-61-71-Location", "begin" : 61, "end" : 71, "type" : "Location", "value" : "East Mosul", "documentId" : "D1", "confidence" : 1 }
{ "_id" : "D9-0-0-4-Location", "begin" : 0, "end" : 4, "type" : "Location", "value" : "Nowhere", "documentId" : "D9", "confidence" : 1 }
"""
RELATIONS = """\
{ "_id" : "D1-R1", "begin" : 35, "end" : 43, "sourceBegin" : 13, "sourceEnd" : 34, "source" : "Iraqi Security Forces", "targetBegin" : 44, "targetEnd" : 57, "target" : "ISIL fighters", "type" : "FightingAgainst", "value" : "attacked", "documentId" : "D1", "confidence" : 0.756 }
{ "_id" : "D1-R2", "begin" : 58, "end" : 60, "sourceBegin" : 44, "sourceEnd" : 57, "source" : "ISIL fighters", "targetBegin" : 61, "targetEnd" : 71, "target" : "East Mosul", "type" : "CoLocated", "value" : "in", "documentId" : "D1", "confidence" : 1 }
{ "_id" : "D1-R3", "begin" : 0, "end" : 2, "sourceBegin" : 0, "sourceEnd" : 2, "source" : "On", "targetBegin" : 61, "targetEnd" : 71, "target" : "East Mosul", "type" : "CoLocated", "value" : "On", "documentId" : "D1", "confidence" : 1 }
"""


@pytest.fixture
def re3d_dir(tmp_path):
    folder = tmp_path / "re3d" / "train" / "CENTCOM"
    folder.mkdir(parents=True)
    for name, text in (("documents.json", DOCUMENTS), ("entities.json", ENTITIES), ("relations.json", RELATIONS)):
        (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return tmp_path / "re3d" / "train"


def test_re3d_maps_documents_entities_relations(re3d_dir, tmp_path):
    summary = import_re3d(re3d_dir, tmp_path / "out")
    assert (summary["documents"], summary["entities"], summary["relations"]) == (1, 5, 2)
    [doc] = read_docs(tmp_path / "out" / "labelled.jsonl")
    assert doc.id == "D1" and doc.meta["source"] == "CENTCOM" and doc.meta["subset"] == "CENTCOM"
    spans = [(doc.text[e.start:e.end], e.label, e.attrs["confidence"]) for e in doc.entities]
    assert spans == [("Dec. 6th", "Temporal", 1), ("Iraqi", "Nationality", 0), ("Iraqi Security Forces", "Organisation", 0.75),
                     ("ISIL fighters", "Organisation", 1), ("East Mosul", "Location", 1)]  # nested "Iraqi" kept
    by_id = {e.id: doc.text[e.start:e.end] for e in doc.entities}
    rels = [(by_id[r.head], r.label, by_id[r.tail], r.attrs["confidence"], r.attrs["trigger"]) for r in doc.relations]
    assert rels == [("Iraqi Security Forces", "FightingAgainst", "ISIL fighters", 0.756, {"start": 35, "end": 43}),
                    ("ISIL fighters", "CoLocated", "East Mosul", 1, {"start": 58, "end": 60})]


def test_re3d_reports_what_did_not_map(re3d_dir, tmp_path):
    summary = import_re3d(re3d_dir, tmp_path / "out")
    assert summary["not_mapped"] == {"duplicate_entity": 1, "entity_without_document": 1, "relation_end_without_entity": 1}
    saved = json.loads((tmp_path / "out" / "import-report.json").read_text())
    assert saved["counts"]["relation_end_without_entity"] == {"CoLocated": 1}


def test_re3d_generated_schema_validates_the_records(re3d_dir, tmp_path):
    import_re3d(re3d_dir, tmp_path / "out")
    schema = load_schema(tmp_path / "out" / "schema.yaml")
    assert schema.entity_labels == ["Location", "Nationality", "Organisation", "Temporal"]
    fighting = schema.relation("FightingAgainst")
    assert fighting.head == ("Organisation",) and fighting.tail == ("Organisation",) and not fighting.symmetric
    assert schema.relation("CoLocated").symmetric
    [doc] = read_docs(tmp_path / "out" / "labelled.jsonl")
    assert validate_doc(doc, schema) == []


def test_re3d_single_source_folder_is_accepted(re3d_dir):
    assert [p.name for p in find_subsets(re3d_dir / "CENTCOM")] == ["CENTCOM"]


def test_re3d_folder_without_exports_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no re3d folder here"):
        find_subsets(tmp_path)


def test_re3d_malformed_line_names_file_and_line(re3d_dir, tmp_path):
    (re3d_dir / "CENTCOM" / "entities.json").write_text('{ "_id" : "x", "begin" : 1 }\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"entities.json:1: missing field 'type'"):
        import_re3d(re3d_dir, tmp_path / "out")


def test_re3d_cli(re3d_dir, tmp_path):
    result = CliRunner().invoke(app, ["import", "re3d", str(re3d_dir), "--out", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["relations"] == 2
    result = CliRunner().invoke(app, ["import", "re3d", str(tmp_path / "out"), "--out", str(tmp_path / "o2")])
    assert result.exit_code == 1 and "no re3d folder here" in result.output


SHIPPED_MAP = Path(__file__).resolve().parents[1] / "annotate" / "maps" / "re3d-to-diplomacy-defence.yaml"


def test_re3d_mapped_onto_our_schema(re3d_dir, tmp_path):
    summary = import_re3d(re3d_dir, tmp_path / "out", map_path=SHIPPED_MAP)
    [doc] = read_docs(tmp_path / "out" / "labelled.jsonl")
    by_id = {e.id: doc.text[e.start:e.end] for e in doc.entities}
    assert [(by_id[e.id], e.label) for e in doc.entities] == [
        ("Dec. 6th", "DATE"), ("Iraqi", "GPE"), ("Iraqi Security Forces", "ORG"), ("ISIL fighters", "ORG"), ("East Mosul", "GPE")]
    assert [(by_id[r.head], r.label, by_id[r.tail]) for r in doc.relations] == [
        ("Iraqi Security Forces", "OPPOSES", "ISIL fighters"), ("ISIL fighters", "LOCATED_IN", "East Mosul")]
    assert summary["label_map"]["relations_mapped"] == {"CoLocated": 1, "FightingAgainst": 1}
    assert load_schema(tmp_path / "out" / "schema.yaml").name == "diplomacy-defence"
    assert validate_doc(doc, load_schema()) == []


@pytest.mark.parametrize("text, message", [
    ("relations: {}", "needs an 'entities' mapping"),
    ("entities: {Person: HUMAN}", "maps to 'HUMAN', not a label"),
    ("entities: {Person: PERSON}\nrelations: {Likes: [SUPPORTS, ADORES]}", "maps to 'ADORES', not a relation type"),
    ("entities: [", "cannot read label map"),
])
def test_bad_label_map(re3d_dir, tmp_path, text, message):
    bad = tmp_path / "map.yaml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        import_re3d(re3d_dir, tmp_path / "out", map_path=bad)
    assert not (tmp_path / "out").exists()


def test_unlisted_and_disallowed_are_counted(re3d_dir, tmp_path):
    small = tmp_path / "map.yaml"
    small.write_text("entities: {Organisation: ORG, Location: LOC}\nrelations: {FightingAgainst: SUPPLIES, CoLocated: LOCATED_IN}\n")
    summary = import_re3d(re3d_dir, tmp_path / "out", map_path=small)
    assert summary["label_map"]["entities_unlisted"] == {"Nationality": 1, "Temporal": 1}
    assert summary["label_map"]["relations_not_allowed"] == {"FightingAgainst": 1}
    assert summary["mapped_relations"] == 1


def _files(out):
    return {p.name: p.read_bytes() for p in out.iterdir()}


@pytest.mark.parametrize(("where", "message"), [
    ("same file", r"CENTCOM/documents\.json:2: document _id 'D1' already used at \S*CENTCOM/documents\.json:1$"),
    ("another sub-folder", r"Other/documents\.json:1: document _id 'D1' already used at \S*CENTCOM/documents\.json:1$"),
])
def test_re3d_document_id_used_twice_is_an_input_error(re3d_dir, tmp_path, where, message):
    out = tmp_path / "out"
    import_re3d(re3d_dir, out)
    before = _files(out)
    second = DOCUMENTS.replace('"title" : "Strike"', '"title" : "Another strike"')
    if where == "same file":
        (re3d_dir / "CENTCOM" / "documents.json").write_text(DOCUMENTS + second, encoding="utf-8")
    else:
        other = re3d_dir / "Other"
        other.mkdir()
        (other / "documents.json").write_text(second, encoding="utf-8")
        (other / "entities.json").write_text("", encoding="utf-8")
        (other / "relations.json").write_text("", encoding="utf-8")
    with pytest.raises(InputError, match=message):
        import_re3d(re3d_dir, out, force=True)
    assert _files(out) == before


def test_re3d_read_returns_records_and_report(re3d_dir, tmp_path):
    docs, report = read_re3d(re3d_dir)
    assert [d.id for d in docs] == ["D1"] and report["relations"] == 2 and "out" not in report
    assert not (tmp_path / "out").exists()
