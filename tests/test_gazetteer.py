"""The shipped gazetteer ``annotate/patterns/diplomacy-defence.jsonl``: spaCy EntityRuler patterns, one JSON
object a line (``{"label": ..., "pattern": ...}``), used to suggest spans to annotators.

Phrase patterns (strings) are matched on ORTH, i.e. case-sensitively, so that "US", "Polish" and "May" do not
fire on "us", "polish" and "may"; token patterns choose their own attributes (ROLE titles use LOWER).
"""

import json
from collections import defaultdict
from importlib import resources

import pytest
import spacy

from annotate.schema import load_schema

GAZETTEER = resources.files("annotate") / "patterns" / "diplomacy-defence.jsonl"
TOKEN_KEYS = {"LOWER", "ORTH", "IS_DIGIT", "LIKE_NUM", "SHAPE", "OP"}
# PERSON is left to models and annotators: a list of names would date quickly.
UNCOVERED_LABELS = {"PERSON"}


def _rows() -> list[dict]:
    lines = GAZETTEER.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def nlp():
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "ORTH", "validate": True})
    ruler.add_patterns(_rows())
    return nlp


def test_gazetteer_every_line_is_a_pattern_with_a_schema_label():
    labels = set(load_schema().entity_labels)
    for number, line in enumerate(GAZETTEER.read_text(encoding="utf-8").splitlines(), start=1):
        row = json.loads(line)
        assert set(row) == {"label", "pattern"}, f"line {number}: {row}"
        assert row["label"] in labels, f"line {number}: unknown label {row['label']!r}"
        pattern = row["pattern"]
        if isinstance(pattern, str):
            assert pattern and pattern == pattern.strip(), f"line {number}: {pattern!r}"
        else:
            assert isinstance(pattern, list) and pattern, f"line {number}: {pattern!r}"
            for token in pattern:
                assert set(token) <= TOKEN_KEYS, f"line {number}: {token}"


def test_gazetteer_covers_every_schema_label_but_person():
    assert {row["label"] for row in _rows()} == set(load_schema().entity_labels) - UNCOVERED_LABELS


def test_gazetteer_loads_into_a_validating_entity_ruler(nlp):
    assert len(nlp.get_pipe("entity_ruler").patterns) == len(_rows())


def test_gazetteer_has_no_duplicate_or_conflicting_phrases():
    keys = [(row["label"], json.dumps(row["pattern"], sort_keys=True)) for row in _rows()]
    assert len(keys) == len(set(keys))
    labels_by_phrase = defaultdict(set)
    for row in _rows():
        if isinstance(row["pattern"], str):
            labels_by_phrase[row["pattern"]].add(row["label"])
    assert {phrase: ls for phrase, ls in labels_by_phrase.items() if len(ls) > 1} == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "French President Emmanuel Macron met Ukrainian Defense Minister Rustem Umerov in Paris on Tuesday, "
            "March 11, to discuss the EUR 800 billion plan and F-16 deliveries with NATO.",
            [("French", "GPE"), ("President", "ROLE"), ("Ukrainian", "GPE"), ("Defense Minister", "ROLE"),
             ("Paris", "GPE"), ("Tuesday", "DATE"), ("March 11", "DATE"), ("EUR 800 billion", "MONEY"),
             ("F-16", "WEAPON"), ("NATO", "ORG")],
        ),
        (
            "NATO Secretary-General Mark Rutte told Reuters in Brussels that the United States and the U.K. "
            "would send more Patriot batteries and Storm Shadow missiles to Kyiv.",
            [("NATO", "ORG"), ("Secretary-General", "ROLE"), ("Reuters", "ORG"), ("Brussels", "GPE"),
             ("United States", "GPE"), ("U.K.", "GPE"), ("Patriot", "WEAPON"), ("Storm Shadow", "WEAPON"),
             ("Kyiv", "GPE")],
        ),
        (
            "The Black Sea Fleet of the Russian Armed Forces lost two Su-34s over Crimea, Chief of the General "
            "Staff Valery Gerasimov told the Russian Defence Ministry at 16:30 on 3 June 2025.",
            [("Black Sea Fleet", "MILITARY_UNIT"), ("Russian Armed Forces", "MILITARY_UNIT"),
             ("Su-34s", "WEAPON"), ("Crimea", "GPE"), ("Chief of the General Staff", "ROLE"),
             ("Russian", "GPE"), ("Defence Ministry", "ORG"), ("16:30", "DATE"), ("3 June 2025", "DATE")],
        ),
        (
            "Rheinmetall and Lockheed Martin won a £2.5bn contract and Germany pledged 800 million euros for "
            "IRIS-T SLM systems in the Baltic Sea region, the Bundeswehr said.",
            [("Rheinmetall", "ORG"), ("Lockheed Martin", "ORG"), ("£2.5bn", "MONEY"), ("Germany", "GPE"),
             ("800 million euros", "MONEY"), ("IRIS-T SLM", "WEAPON"), ("Baltic Sea", "LOC"),
             ("Bundeswehr", "MILITARY_UNIT")],
        ),
        (
            "In general, the general public said the US would help us as Polish troops polish boots in May "
            "and may march.",
            [("US", "GPE"), ("Polish", "GPE")],
        ),
    ],
    ids=["seed-like", "nato-weapons", "units-role-dates", "companies-money", "case-sensitive"],
)
def test_gazetteer_finds_pinned_spans(nlp, text, expected):
    assert [(ent.text, ent.label_) for ent in nlp(text).ents] == expected
