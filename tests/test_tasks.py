import pytest

from annotate.errors import InputError
from annotate.records import Article, Entity, LabelledDoc, Relation
from annotate.tasks import clean_meta, from_task, to_task, to_tasks

TEXT = "🇺🇦 Sébastien Lecornu met Rustem Umerov 👋 in Kyiv."


def labelled():
    return LabelledDoc(
        id="a1#0", text=TEXT, meta={"article_id": "a1", "chunk": 0, "char_offset": 0, "title": None},
        entities=[Entity("p1", 3, 20, "PERSON"), Entity("p2", 25, 38, "PERSON"), Entity("g1", 44, 48, "GPE")],
        relations=[Relation("m1", "p1", "p2", "MEETS")],
    )


@pytest.mark.parametrize(("unit", "umerov"), [("utf16", (27, 40)), ("grapheme", (24, 37)), ("codepoint", (25, 38))])
def test_tasks_offsets_in_the_ui_unit(unit, umerov):
    task = to_task(labelled(), unit=unit)
    assert (task["entities"][1]["start_offset"], task["entities"][1]["end_offset"]) == umerov
    assert task["entities"][1]["label"] == "PERSON"


def test_tasks_row_shape_and_meta():
    task = to_task(labelled())
    assert task == {
        "text": TEXT,
        "entities": [
            {"id": 1, "label": "PERSON", "start_offset": 5, "end_offset": 22},
            {"id": 2, "label": "PERSON", "start_offset": 27, "end_offset": 40},
            {"id": 3, "label": "GPE", "start_offset": 47, "end_offset": 51},
        ],
        "relations": [{"id": 1, "from_id": 1, "to_id": 2, "type": "MEETS"}],
        "meta": {"article_id": "a1", "chunk": 0, "char_offset": 0, "record_id": "a1#0", "offset_unit": "utf16",
                 "entity_ids": ["p1", "p2", "g1"], "entity_spans": [[3, 20, "PERSON"], [25, 38, "PERSON"], [44, 48, "GPE"]],
                 "relation_ids": ["m1"], "relation_ends": [["p1", "p2", "MEETS"]]},
    }


def with_extras():
    doc = labelled()
    doc.entities[1].text = "Rustem Umerov"
    doc.entities[2].attrs = {"source": "patterns"}
    doc.relations[0].attrs = {"negated": True}
    return doc


def test_tasks_row_keeps_span_texts_and_attributes():
    assert to_task(with_extras())["meta"]["label_extras"] == {
        "entities": {"p2": {"text": "Rustem Umerov"}, "g1": {"attrs": {"source": "patterns"}}},
        "relations": {"m1": {"attrs": {"negated": True}}},
    }


@pytest.mark.parametrize("unit", ["utf16", "grapheme", "codepoint"])
def test_tasks_from_task_inverts_to_task(unit):
    doc = with_extras()
    assert from_task(to_task(doc, unit=unit)).to_dict() == {**doc.to_dict(), "meta": clean_meta(doc.meta)}


def test_tasks_from_task_numbers_spans_without_our_ids():
    row = {"text": "👋 Kyiv", "entities": [{"id": 7, "label": "GPE", "start_offset": 3, "end_offset": 7}],
           "relations": [], "meta": {"record_id": "k#0", "source": "s"}}
    doc = from_task(row)
    assert (doc.id, doc.meta, [(e.id, e.start, e.end) for e in doc.entities]) == ("k#0", {"source": "s"}, [("e7", 2, 6)])


def test_tasks_plain_article_has_no_spans():
    task = to_task(Article(id="b#0", text="NATO", meta={"date": "2025-03-11"}))
    assert task == {"text": "NATO", "entities": [], "relations": [],
                    "meta": {"date": "2025-03-11", "record_id": "b#0", "offset_unit": "utf16"}}


def test_tasks_clean_meta_drops_nulls_recursively():
    assert clean_meta({"a": None, "b": {"c": None, "d": 1}, "e": [None]}) == {"b": {"d": 1}, "e": [None]}


def test_tasks_unknown_unit_fails_before_any_row():
    with pytest.raises(InputError, match="unknown offset unit 'bytes'"):
        to_tasks([], unit="bytes")
