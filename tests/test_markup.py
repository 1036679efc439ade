"""Inline markup -> records (and back), on tiny inline articles; the shipped corpus stays in sync with its markup."""

import json
from collections import defaultdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

from annotate.cli import app
from annotate.errors import InputError, ValidationError
from annotate.ingest import ingest
from annotate.importers.markup import check_markup, import_markup, parse_markup, read_markup, to_markup, to_records
from annotate.records import read_docs

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpora" / "diplomacy-defence"

ARTICLE = """date 2024-03-07
[Sweden]{GPE se} joined [NATO]{ORG nato} on [Thursday]{DATE thu}, \\[officials\\] said.

[Prime Minister]{ROLE pm} [Ulf Kristersson]{PERSON uk} attended the [ceremony]{EVENT c} in [Washington]{GPE dc}.

--- relations
se PART_OF nato
uk HAS_ROLE pm
uk PARTICIPATES_IN c
c LOCATED_IN dc
c DATE_OF thu hypothetical
"""


def write(tmp_path: Path, text: str, name: str = "2024-03-07-sweden.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_parse_offsets_and_escapes(tmp_path):
    art = parse_markup(write(tmp_path, ARTICLE))
    assert art.date == "2024-03-07"
    assert art.body.startswith("Sweden joined NATO on Thursday, [officials] said.\n\nPrime Minister Ulf")
    assert [(art.body[s:e], label) for s, e, label, _key, _line in art.entities] == [
        ("Sweden", "GPE"), ("NATO", "ORG"), ("Thursday", "DATE"), ("Prime Minister", "ROLE"),
        ("Ulf Kristersson", "PERSON"), ("ceremony", "EVENT"), ("Washington", "GPE")]
    assert art.relations[-1][:4] == ("c", "DATE_OF", "thu", {"hypothetical": True})


def test_records_match_what_ingest_makes_of_the_seed_file(tmp_path):
    path = write(tmp_path, ARTICLE)
    art = parse_markup(path)
    seed = tmp_path / "seeds" / path.name
    seed.parent.mkdir()
    seed.write_text(art.seed_text, encoding="utf-8")
    [doc] = to_records(art, source=str(seed))
    [article], _ = ingest([seed])
    assert (doc.id, doc.text, doc.meta) == (article.id, article.text, article.meta)
    assert doc.meta["date"] == "2024-03-07"
    assert [(doc.text[e.start:e.end], e.text) for e in doc.entities][4] == ("Ulf Kristersson", "Ulf Kristersson")
    assert [(r.head, r.label, r.tail, r.attrs) for r in doc.relations][0] == ("e1", "PART_OF", "e2", {})


def test_long_article_is_chunked_like_ingest(tmp_path):
    para = " ".join(["[France]{GPE f} backed the [plan]{AGREEMENT p}."] + ["Words follow here."] * 60)
    text = "date 2020-01-01\n" + "\n\n".join(para.replace("{GPE f}", "{GPE f%d}" % i).replace("{AGREEMENT p}", "{AGREEMENT p%d}" % i)
                                            for i in range(3))
    text += "\n\n--- relations\n" + "\n".join(f"f{i} SUPPORTS p{i}" if False else f"f{i} PARTY_TO p{i}" for i in range(3)) + "\n"
    docs = to_records(parse_markup(write(tmp_path, text)), source="seeds/x.txt", max_chars=1200)
    assert len(docs) == 3
    assert [d.meta["chunk"] for d in docs] == [0, 1, 2]
    assert all(len(d.entities) == 2 and len(d.relations) == 1 for d in docs)
    assert all(d.text[d.entities[0].start:d.entities[0].end] == "France" for d in docs)


@pytest.mark.parametrize("text, message", [
    ("2024-03-07\nText.", "first line must be 'date YYYY-MM-DD'"),
    ("date 2024-03-07\n[Sweden]{GPE} and [NATO.", "not closed on its line"),
    ("date 2024-03-07\n[Sweden [NATO]{ORG}]{GPE}.", "spans never nest"),
    ("date 2024-03-07\nSweden]{GPE}.", "without an opening"),
    ("date 2024-03-07\n[Sweden] joined.", r"must be followed by \{LABEL\}"),
    ("date 2024-03-07\n[]{GPE} joined.", "empty entity"),
    ("date 2024-03-07\nThe [Sweden ]{GPE}, joined.", "starts or ends with a space"),
    ("date 2024-03-07\nSweden  joined.", "not in normal form"),
    ("date 2024-03-07\nSweden\njoined.", "not in normal form"),
    ("date 2024-03-07\n[Sweden]{GPE a} [NATO]{ORG a}.", "key 'a' used twice"),
    ("date 2024-03-07\n[Sweden]{GPE a}.\n\n--- relations\na PART_OF b", "unknown entity key 'b'"),
    ("date 2024-03-07\n[Sweden]{GPE a}.\n\n--- relations\na PART_OF", "is not 'HEAD TYPE TAIL"),
    ("date 2024-03-07\n[Sweden]{GPE a} [NATO]{ORG b}.\n\n--- relations\na PART_OF b maybe", "unknown relation attribute 'maybe'"),
    ("date 2024-03-07\n[Sweden]{GPE a} [NATO]{ORG b}.\n\n--- relations\na PART_OF b\na PART_OF b", "written twice"),
    ("date 2024-03-07\n[Sweden]{GPE a}.\n\n--- relations\na PART_OF a", "to itself"),
    ("date 2024-03-07\nSweden {joined}.", "stray"),
])
def test_markup_errors_name_file_and_line(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(InputError, match=message) as info:
        parse_markup(path)
    assert str(path) in str(info.value)


def test_error_line_number(tmp_path):
    path = write(tmp_path, "date 2024-03-07\nFine.\n\n[Bad]{GPE} [x]{ORG a} [y]{ORG a}.")
    with pytest.raises(InputError, match=r":4: entity key 'a' used twice"):
        parse_markup(path)


def test_schema_violations_block_every_write(tmp_path):
    path = write(tmp_path, "date 2024-03-07\n[Sweden]{GPE a} bought [Gripen]{WEAPON b}.\n\n--- relations\nb SUPPLIES a\n")
    out = tmp_path / "out"
    with pytest.raises(ValidationError, match=r"2024-03-07-sweden.txt: relation .*SUPPLIES does not allow WEAPON -> GPE"):
        import_markup([path], out, seeds_out=tmp_path / "seeds")
    assert not out.exists() and not (tmp_path / "seeds").exists()


def test_check_lists_every_problem_across_files(tmp_path):
    write(tmp_path, "date 2024-03-07\n[Sweden]{SWEDE}.", "a.txt")
    write(tmp_path, "no header", "b.txt")
    write(tmp_path, ARTICLE, "c.txt")
    problems, report = check_markup([tmp_path])
    assert len(problems) == 2
    assert "a.txt" in problems[0] and "SWEDE" in problems[0]
    assert "b.txt:1:" in problems[1]
    assert report["documents"] == 2 and report["entities"]["GPE"] == 2


def test_round_trip_records_to_markup(tmp_path):
    path = write(tmp_path, ARTICLE)
    [doc] = to_records(parse_markup(path), source="seeds/x.txt")
    again = write(tmp_path, to_markup([doc]), "again.txt")
    [doc2] = to_records(parse_markup(again), source="seeds/x.txt")
    assert doc2.to_dict() == doc.to_dict()


def test_cli_import_and_check(tmp_path):
    path = write(tmp_path, ARTICLE)
    runner = CliRunner()
    result = runner.invoke(app, ["import", "markup", str(path), "--out", str(tmp_path / "c"), "--seeds-out",
                                 str(tmp_path / "s"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["relations"] == {"DATE_OF": 1, "HAS_ROLE": 1, "LOCATED_IN": 1,
                                                      "PARTICIPATES_IN": 1, "PART_OF": 1}
    assert (tmp_path / "s" / path.name).read_text(encoding="utf-8").startswith("date 2024-03-07\nSweden joined")
    bad = write(tmp_path, "date 2024-03-07\n[x]{NOPE}.", "bad.txt")
    result = runner.invoke(app, ["import", "markup", str(bad), "--check"])
    assert result.exit_code == 1
    assert "unknown label" in result.stderr.lower() or "NOPE" in result.stderr


@pytest.mark.skipif(not (CORPUS / "labelled.jsonl").exists(), reason="corpus not built yet")
def test_shipped_corpus_is_its_markup_and_its_seeds():
    """corpora/diplomacy-defence/labelled.jsonl and seeds/ are exactly what the markup gives."""
    arts, docs, _ = read_markup([CORPUS / "markup"])
    shipped = {d.id: d.to_dict() for d in read_docs(CORPUS / "labelled.jsonl")}
    assert {d.id: d.to_dict() for d in docs} == shipped
    for art in arts:
        assert (ROOT / "seeds" / art.path.name).read_text(encoding="utf-8") == art.seed_text
    by_article = defaultdict(int)
    for d in docs:
        by_article[d.meta["article_id"]] += 1
    assert len(by_article) == len(arts)
