"""CrossRE and CoNLL (CrossNER) importers on tiny inline fixtures written in those formats."""

import json
import textwrap

import pytest
from typer.testing import CliRunner

from annotate.cli import app
from annotate.errors import InputError
from annotate.importers._schema import distinct_colours
from annotate.importers.crossner import (
    decode_spans,
    import_conll,
    read_conll,
    read_crossner,
)
from annotate.importers.crossre import import_crossre, read_crossre, token_offsets
from annotate.records import read_docs
from annotate.schema import COLOUR_RE, load_schema, validate_doc

# Sentence 1 joined with single spaces: "Nenad Popović leads the Serbian People 's Party ."
#                                        0     6       14    20  24      32     39 42    48
CROSSRE = """\
{"doc_key": "politics-train-1", "sentence": ["Nenad", "Popović", "leads", "the", "Serbian", "People", "'s", "Party", "."], "ner": [[0, 1, "politician"], [4, 7, "politicalparty"], [4, 4, "country"], [4, 7, "politicalparty"], [9, 9, "misc"]], "relations": [[0, 1, 4, 7, "role", "leader_of", false, true], [4, 7, 4, 4, "physical", "", true, false], [0, 1, 4, 7, "role", "", false, false], [2, 2, 4, 7, "role", "", false, false]]}

{"doc_key": "politics-train-2", "sentence": ["Tito", "met", "Nehru", "."], "ner": [[0, 0, "politician"], [2, 2, "politician"]], "relations": [[0, 0, 2, 2, "social", "", false, false]]}
"""

# CrossNER style: tabs, BIO, one I- without a B- ("Nehru"), no blank line at the end.
CONLL_BIO = """\
-DOCSTART-\tO

Tony\tB-politician
Abbott\tI-politician
lost\tO
Warringah\tB-location
.\tO

Nehru\tI-politician
met\tO
Tito\tB-politician
Broz\tI-politician"""

# CoNLL-2003 style: spaces, four columns, IOB1 (B- only between two adjacent spans of one label).
CONLL_IOB1 = """\
-DOCSTART- -X- -X- O

EU NNP B-NP I-ORG
rejects VBZ B-VP O
German JJ B-NP I-MISC
call NN I-NP O
. . O O

Paris NNP B-NP I-LOC
Berlin NNP I-NP B-LOC
"""


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def crossre_file(tmp_path):
    return _write(tmp_path, "politics-train.json", CROSSRE)


# --------------------------------------------------------------------------------------------- CrossRE


def test_crossre_token_offsets_join_with_single_spaces():
    assert token_offsets(["Nenad", "Popović", "."]) == [(0, 5), (6, 13), (14, 15)]


def test_crossre_maps_tokens_entities_and_relations(crossre_file, tmp_path):
    summary = import_crossre(crossre_file, tmp_path / "out")
    assert (summary["documents"], summary["entities"], summary["relations"]) == (2, 5, 3)
    first, second = read_docs(tmp_path / "out" / "labelled.jsonl")
    assert first.id == "politics-train-1" and first.text == "Nenad Popović leads the Serbian People 's Party ."
    assert first.meta == {"article_id": "politics-train-1", "source": "politics-train.json", "corpus": "CrossRE"}
    assert [(e.id, e.start, e.end, e.label, e.text, e.attrs) for e in first.entities] == [
        ("e1", 0, 13, "politician", "Nenad Popović", {"tokens": [0, 1]}),
        ("e2", 24, 47, "politicalparty", "Serbian People 's Party", {"tokens": [4, 7]}),
        ("e3", 24, 31, "country", "Serbian", {"tokens": [4, 4]}),  # nested span kept
    ]
    assert [(r.head, r.label, r.tail, r.attrs) for r in first.relations] == [
        ("e1", "role", "e2", {"explanation": "leader_of", "syntax_ambiguity": True}),
        ("e2", "physical", "e3", {"uncertain": True}),
    ]
    assert [(second.text, [(e.start, e.end) for e in second.entities])] == [("Tito met Nehru .", [(0, 4), (9, 14)])]
    assert [(r.head, r.label, r.tail, r.attrs) for r in second.relations] == [("e1", "social", "e2", {})]


def test_crossre_reports_what_did_not_map(crossre_file, tmp_path):
    summary = import_crossre(crossre_file, tmp_path / "out")
    assert summary["not_mapped"] == {"duplicate_entity": 1, "duplicate_relation": 1, "entity_outside_sentence": 1,
                                     "relation_end_without_entity": 1}
    saved = json.loads((tmp_path / "out" / "import-report.json").read_text(encoding="utf-8"))
    assert saved["counts"]["entity_outside_sentence"] == {"misc": 1}
    assert saved["counts"]["flag_uncertain"] == {"physical": 1}
    assert saved["counts"]["flag_syntax_ambiguity"] == {"role": 1}
    assert saved["relation_pairs"] == {"physical": [["politicalparty", "country"]], "role": [["politician", "politicalparty"]],
                                       "social": [["politician", "politician"]]}
    assert saved["text"].startswith("tokens joined with single spaces")


def test_crossre_generated_schema_validates_the_records(crossre_file, tmp_path):
    import_crossre(crossre_file, tmp_path / "out")
    schema = load_schema(tmp_path / "out" / "schema.yaml")
    assert schema.name == "out"
    assert [(e.name, e.colour, e.shortcut) for e in schema.entities] == [
        ("country", "#e6194b", "c"), ("politicalparty", "#3cb44b", "p"), ("politician", "#ffe119", "o")]
    assert [(r.name, r.head, r.tail, r.symmetric, r.colour) for r in schema.relations] == [
        ("physical", ("politicalparty",), ("country",), False, "#4363d8"),
        ("role", ("politician",), ("politicalparty",), False, "#f58231"),
        ("social", ("politician",), ("politician",), False, "#911eb4"),
    ]
    assert [validate_doc(doc, schema) for doc in read_docs(tmp_path / "out" / "labelled.jsonl")] == [[], []]


@pytest.mark.parametrize("count", [3, 20, 45])
def test_crossre_distinct_colours_never_repeat(count):
    colours = distinct_colours(count)
    assert len(colours) == len(set(colours)) == count
    assert all(COLOUR_RE.match(c) for c in colours)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("[1, 2]", "expected a JSON object"),
        ('{"doc_key": "d", "ner": [], "relations": []}', "missing field 'sentence'"),
        ('{"doc_key": "d", "sentence": "A B", "ner": [], "relations": []}', "field 'sentence' must be a list"),
        ('{"doc_key": "d", "sentence": ["A"], "ner": [[0, "politician"]], "relations": []}', r"bad NER span \[0, 'politician'\]"),
        ('{"doc_key": "d", "sentence": ["A"], "ner": [], "relations": [[0, 0, 0, 0, "role"]]}', "bad relation"),
        ('{"doc_key": "d", "sentence": ["A"]', "malformed JSON"),
    ],
)
def test_crossre_malformed_row_names_file_and_line(tmp_path, line, message):
    good = '{"doc_key": "ok", "sentence": ["A"], "ner": [], "relations": []}'
    path = _write(tmp_path, "bad.json", f"{good}\n{line}\n")
    with pytest.raises(InputError, match=rf"bad\.json:2: {message}"):
        import_crossre(path, tmp_path / "out")
    assert not (tmp_path / "out" / "labelled.jsonl").exists()


def test_crossre_relation_end_with_two_labels_uses_the_first_and_counts_it(tmp_path):
    row = ('{"doc_key": "d1", "sentence": ["Labour", "won", "2019"], "ner": [[0, 0, "politicalparty"], '
           '[0, 0, "organisation"], [2, 2, "election"]], "relations": [[0, 0, 2, 2, "win-defeat", "", false, false]]}')
    summary = import_crossre(_write(tmp_path, "d.json", row + "\n"), tmp_path / "out")
    [doc] = read_docs(tmp_path / "out" / "labelled.jsonl")
    assert [(r.head, r.tail) for r in doc.relations] == [("e1", "e3")]
    assert summary["counts"]["relation_end_ambiguous"] == {"win-defeat": 1} and summary["not_mapped"] == {}


def test_crossre_repeated_doc_key_names_both_lines(tmp_path):
    row = '{"doc_key": "d1", "sentence": ["A"], "ner": [], "relations": []}'
    with pytest.raises(InputError, match=r"d\.json:3: doc_key 'd1' already used on line 1"):
        import_crossre(_write(tmp_path, "d.json", f"{row}\n\n{row}\n"), tmp_path / "out")


def test_crossre_empty_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match=r"no records found in \S*empty\.json \(expected CrossRE JSON lines\)"):
        import_crossre(_write(tmp_path, "empty.json", "\n"), tmp_path / "out")


def _files(out):
    return {p.name: p.read_bytes() for p in out.iterdir()}


@pytest.mark.parametrize(
    ("ner", "relations", "message"),
    [
        ("[[2, 0, \"politician\"]]", "[]", r"NER span \[2, 0, 'politician'\] is reversed"),
        ("[[0, 0, \"politician\"], [2, 2, \"politician\"]]", "[[2, 0, 0, 0, \"social\", \"\", false, false]]",
         r"relation \[2, 0, 0, 0, 'social'\]: head span \[2, 0\] is reversed"),
        ("[[0, 0, \"politician\"], [2, 2, \"politician\"]]", "[[0, 0, 2, 1, \"social\", \"\", false, false]]",
         r"relation \[0, 0, 2, 1, 'social'\]: tail span \[2, 1\] is reversed"),
    ],
)
def test_crossre_reversed_span_names_file_and_line_and_writes_nothing(crossre_file, tmp_path, ner, relations, message):
    # Before: a reversed NER span was counted as outside the sentence, a reversed end as matching no entity.
    out = tmp_path / "out"
    import_crossre(crossre_file, out)
    before = _files(out)
    good = '{"doc_key": "ok", "sentence": ["Tito", "met", "Nehru"], "ner": [[0, 0, "politician"]], "relations": []}'
    bad = f'{{"doc_key": "d", "sentence": ["Tito", "met", "Nehru"], "ner": {ner}, "relations": {relations}}}'
    path = _write(tmp_path, "bad.json", f"{good}\n{bad}\n")
    with pytest.raises(InputError, match=rf"bad\.json:2: {message}"):
        import_crossre(path, out, force=True)
    assert _files(out) == before


def test_crossre_read_returns_records_and_report(crossre_file, tmp_path):
    docs, report = read_crossre(crossre_file)
    assert [d.id for d in docs] == ["politics-train-1", "politics-train-2"] and report["relations"] == 3
    assert "out" not in report and not (tmp_path / "out").exists()


def test_crossre_cli(crossre_file, tmp_path):
    out = tmp_path / "corpora" / "crossre-politics"
    result = CliRunner().invoke(app, ["import", "crossre", str(crossre_file), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["relations"] == 3
    assert load_schema(out / "schema.yaml").name == "crossre-politics"
    conll = _write(tmp_path, "train.txt", CONLL_BIO)
    result = CliRunner().invoke(app, ["import", "crossre", str(conll), "--out", str(tmp_path / "o2")])
    assert result.exit_code == 1 and "train.txt:1: malformed JSON" in result.output


# --------------------------------------------------------------------------------------------- CoNLL


@pytest.mark.parametrize(
    ("tags", "spans"),
    [
        (["B-X", "I-X", "O", "B-Y"], [(0, 1, "X"), (3, 3, "Y")]),
        (["I-X", "I-X", "B-X"], [(0, 1, "X"), (2, 2, "X")]),  # IOB1: B- splits two adjacent X spans
        (["B-X", "I-Y", "I-Y"], [(0, 0, "X"), (1, 2, "Y")]),  # I- of another label starts a span
        (["O", "I-X", "B-X", "I-X"], [(1, 1, "X"), (2, 3, "X")]),
        (["O", "O"], []),
    ],
)
def test_conll_decode_spans(tags, spans):
    assert decode_spans(tags) == spans


def test_conll_bio_tabs_one_record_per_sentence(tmp_path):
    path = _write(tmp_path, "train.txt", CONLL_BIO)
    summary = import_conll(path, tmp_path / "out")
    first, second = read_docs(tmp_path / "out" / "labelled.jsonl")
    assert (first.id, first.text, first.meta) == (
        "train-1", "Tony Abbott lost Warringah .", {"article_id": "train-1", "source": "train.txt", "line": 3, "document": 1})
    assert [(e.start, e.end, e.label, e.text, e.attrs) for e in first.entities] == [
        (0, 11, "politician", "Tony Abbott", {"tokens": [0, 1]}), (17, 26, "location", "Warringah", {"tokens": [3, 3]})]
    assert (second.id, second.text, second.meta["line"]) == ("train-2", "Nehru met Tito Broz", 9)
    assert [(e.start, e.end, e.label) for e in second.entities] == [(0, 5, "politician"), (10, 19, "politician")]
    assert summary == {
        "path": str(path), "out": str(tmp_path / "out"),
        "text": "tokens joined with single spaces; offsets are code points into that text, end exclusive",
        "documents": 2, "tokens": 9, "entities": 4, "docstarts": 1, "separators": {"tab": 9},
        "scheme": "BIO (with I- tags that start a span, repaired)",
        "counts": {"entities": {"location": 1, "politician": 3}, "i_without_b": {"politician": 1}},
        "i_without_b": 1,
    }
    assert json.loads((tmp_path / "out" / "import-report.json").read_text(encoding="utf-8")) == summary


def test_conll_iob1_spaces_four_columns(tmp_path):
    summary = import_conll(_write(tmp_path, "eng.testa", CONLL_IOB1), tmp_path / "out")
    docs = list(read_docs(tmp_path / "out" / "labelled.jsonl"))
    assert [(d.text, [(e.start, e.end, e.label) for e in d.entities]) for d in docs] == [
        ("EU rejects German call .", [(0, 2, "ORG"), (11, 17, "MISC")]),
        ("Paris Berlin", [(0, 5, "LOC"), (6, 12, "LOC")]),
    ]
    assert (summary["scheme"], summary["separators"], summary["i_without_b"]) == ("IOB1", {"space": 7}, 3)


def test_conll_generated_schema_validates_the_records(tmp_path):
    import_conll(_write(tmp_path, "train.txt", CONLL_BIO), tmp_path / "crossner-politics")
    schema = load_schema(tmp_path / "crossner-politics" / "schema.yaml")
    assert schema.name == "crossner-politics" and schema.relations == ()
    assert [(e.name, e.colour, e.shortcut) for e in schema.entities] == [("location", "#e6194b", "l"), ("politician", "#3cb44b", "p")]
    assert [validate_doc(d, schema) for d in read_docs(tmp_path / "crossner-politics" / "labelled.jsonl")] == [[], []]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("Tony", "expected 'TOKEN<TAB>TAG'"),
        ("Tony\t", "expected 'TOKEN<TAB>TAG'"),
        ("Tony\tX-politician", "bad tag 'X-politician'"),
        ("Tony\tB-", "bad tag 'B-'"),
        ("Tony\tB-two words", "bad tag 'B-two words'"),
    ],
)
def test_conll_malformed_line_names_file_and_line(tmp_path, line, message):
    path = _write(tmp_path, "train.txt", f"Abbott\tB-politician\n{line}\n")
    with pytest.raises(InputError, match=rf"train\.txt:2: {message}"):
        import_conll(path, tmp_path / "out")


def test_conll_file_without_tokens_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match=r"no records found in \S*empty\.txt \(expected 'TOKEN<TAB>TAG' lines\)"):
        import_conll(_write(tmp_path, "empty.txt", "-DOCSTART-\tO\n\n"), tmp_path / "out")


def test_conll_cli(tmp_path):
    path = _write(tmp_path, "train.txt", CONLL_BIO)
    out = tmp_path / "corpora" / "crossner-politics"
    result = CliRunner().invoke(app, ["import", "conll", str(path), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counts"]["entities"] == {"location": 1, "politician": 3}
    bad = _write(tmp_path, "bad.txt", "Tony\tB-politician\nAbbott I-politician extra Q-x\n")
    result = CliRunner().invoke(app, ["import", "conll", str(bad), "--out", str(tmp_path / "o2")])
    assert result.exit_code == 1 and "bad.txt:2: bad tag 'Q-x'" in result.output


BOM = "\ufeff"


@pytest.mark.parametrize(
    ("text", "docstarts"),
    [
        (BOM + "Tony\tB-politician\nAbbott\tI-politician\nlost\tO\n", 0),
        (BOM + "-DOCSTART-\tO\n\nTony\tB-politician\nAbbott\tI-politician\nlost\tO\n", 1),
        (BOM + "Tony NNP B-NP B-politician\nAbbott NNP I-NP I-politician\nlost VBD B-VP O\n", 0),
    ],
)
def test_conll_byte_order_mark_is_dropped(tmp_path, text, docstarts):
    path = tmp_path / "bom.txt"
    path.write_bytes(text.encode("utf-8"))  # the BOM as the three bytes EF BB BF
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert next(read_conll(path)).tokens == ["Tony", "Abbott", "lost"]
    [doc], report = read_crossner(path)
    assert doc.text == "Tony Abbott lost" and [(e.start, e.end, e.text) for e in doc.entities] == [(0, 11, "Tony Abbott")]
    assert report["docstarts"] == docstarts
    import_conll(path, tmp_path / "out")
    assert BOM not in (tmp_path / "out" / "labelled.jsonl").read_text(encoding="utf-8")


def test_conll_malformed_line_leaves_an_earlier_corpus(tmp_path):
    out = tmp_path / "out"
    import_conll(_write(tmp_path, "train.txt", CONLL_BIO), out)
    before = _files(out)
    with pytest.raises(InputError, match=r"bad\.txt:2: bad tag 'Q-x'"):
        import_conll(_write(tmp_path, "bad.txt", "Tony\tB-politician\nAbbott\tQ-x\n"), out, force=True)
    assert _files(out) == before
