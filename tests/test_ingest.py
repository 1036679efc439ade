import textwrap
from pathlib import Path

import pytest

from annotate.errors import InputError
from annotate.ingest import Ingestor, article_id, chunk_spans, ingest, normalise_text

SEED = Path(__file__).parents[1] / "seeds" / "2025-03-11-paris-chiefs-of-staff.txt"


def test_ingest_seed_file():
    articles, report = ingest([SEED])
    assert len(articles) == 1
    art = articles[0]
    assert art.meta["date"] == "2025-03-11"
    assert art.text.startswith("French President Emmanuel Macron")
    assert art.id == f"{art.meta['article_id']}#0"
    assert (art.meta["chunk"], art.meta["char_offset"], art.meta["n_chunks"]) == (0, 0, 1)
    assert report.articles == 1 and report.exact_duplicates == []


def test_ingest_twice_or_with_changed_whitespace_gives_one_article(tmp_path):
    raw = SEED.read_text(encoding="utf-8")
    copy = tmp_path / "copy.txt"
    # re-wrapped lines, doubled spaces, tabs, CRLF and a non-breaking space: same normalised text
    copy.write_text(raw.replace(" the ", "  the\n").replace("\n\n", "\r\n \r\n\t").replace("Paris", "Paris\u00a0", 1)
                    .replace("Paris\u00a0 ", "Paris "), encoding="utf-8")
    articles, report = ingest([SEED, SEED, copy])
    assert len(articles) == 1
    assert [d["source"] for d in report.exact_duplicates] == [str(SEED), str(copy)]
    assert {d["duplicate_of"] for d in report.exact_duplicates} == {str(SEED)}


def test_ingest_ids_are_stable_across_runs():
    first, _ = ingest([SEED])
    second, _ = ingest([SEED])
    assert [a.to_dict() for a in first] == [a.to_dict() for a in second]
    assert first[0].meta["article_id"] == article_id(first[0].text)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Kyiv\u00a0\u00a0 and\tParis \n", "Kyiv and Paris"),
        ("line one\nline two\n\n\n\nnext para", "line one line two\n\nnext para"),
        ("e\u0301te\u0301", "\u00e9t\u00e9"),  # NFC
        ("zero\u200bwidth soft\u00adhyphen", "zerowidth softhyphen"),
        ("a\r\nb\r\rc", "a b\n\nc"),
        ("👨‍👩‍👧 stays", "👨‍👩‍👧 stays"),  # zero-width joiners inside emoji are kept
    ],
)
def test_ingest_normalise_text(raw, expected):
    assert normalise_text(raw) == expected


def test_ingest_near_duplicates_flagged_not_dropped(tmp_path):
    words = [f"word{i}" for i in range(200)]
    (tmp_path / "a.txt").write_text(" ".join(words), encoding="utf-8")
    (tmp_path / "b.txt").write_text(" ".join(words[:-1] + ["changed"]), encoding="utf-8")
    (tmp_path / "c.txt").write_text(" ".join(reversed(words)), encoding="utf-8")
    articles, report = ingest([tmp_path])
    assert len(articles) == 3
    assert len(report.near_duplicates) == 1
    flagged = report.near_duplicates[0]
    assert flagged["source"] == str(tmp_path / "b.txt") and flagged["similar_to_source"] == str(tmp_path / "a.txt")
    assert flagged["similarity"] >= 0.8 and flagged["dropped"] is False
    dropped, report2 = ingest([tmp_path], drop_near_duplicates=True)
    assert len(dropped) == 2 and report2.near_duplicates[0]["dropped"] is True
    none, report3 = ingest([tmp_path], near_threshold=0)
    assert len(none) == 3 and report3.near_duplicates == []


def test_ingest_jsonl_with_meta(tmp_path):
    path = tmp_path / "news.jsonl"
    path.write_text(textwrap.dedent("""\
        {"id": "x1", "body": "NATO met in Brussels.", "date": "2025-03-11T09:00:00", "meta": {"outlet": "AFP"}}

        {"id": "x2", "body": "Second story.", "url": null}
    """), encoding="utf-8")
    articles, _ = ingest([path], text_field="body")
    assert [a.text for a in articles] == ["NATO met in Brussels.", "Second story."]
    assert articles[0].meta["date"] == "2025-03-11"
    assert articles[0].meta["outlet"] == "AFP" and articles[0].meta["source_id"] == "x1"
    assert articles[0].meta["source"] == f"{path}:1" and articles[1].meta["source"] == f"{path}:3"
    assert "url" not in articles[1].meta


def test_ingest_html_page(tmp_path):
    page = tmp_path / "page.html"
    page.write_text(textwrap.dedent("""\
        <html><head><title>Chiefs of staff meet in Paris</title><meta name="date" content="2025-03-11"></head>
        <body><nav>Home | World | Defence</nav>
        <article><h1>Chiefs of staff meet in Paris</h1>
        <p>French President Emmanuel Macron met army chiefs from some thirty countries in Paris on Tuesday.</p>
        <p>The meeting was hosted by Chief of the General Staff Thierry Burkhardt at the Elysee Palace.</p>
        </article><footer>All rights reserved</footer></body></html>
    """), encoding="utf-8")
    [art], _ = ingest([page])
    assert art.meta["title"] == "Chiefs of staff meet in Paris"
    assert art.meta["date"] == "2025-03-11"
    assert art.text == ("French President Emmanuel Macron met army chiefs from some thirty countries in Paris on Tuesday."
                        "\n\nThe meeting was hosted by Chief of the General Staff Thierry Burkhardt at the Elysee Palace.")


def test_ingest_chunks_map_back_to_the_article(tmp_path):
    paras = [" ".join(f"Sentence {p}.{s} is here." for s in range(6)) for p in range(5)]
    (tmp_path / "long.txt").write_text("\n\n".join(paras), encoding="utf-8")
    articles, report = ingest([tmp_path / "long.txt"], max_chars=250)
    full = normalise_text("\n\n".join(paras))
    assert len(articles) == report.chunks > 1
    for i, art in enumerate(articles):
        assert art.meta["chunk"] == i and art.meta["n_chunks"] == len(articles)
        assert len(art.text) <= 250
        start = art.meta["char_offset"]
        assert full[start : start + len(art.text)] == art.text
        assert art.text[0] == "S" and art.text.endswith(".")


@pytest.mark.parametrize(
    ("text", "max_chars", "expected"),
    [
        ("short", 10, [(0, 5)]),
        ("aaaa\n\nbbbb\n\ncccc", 10, [(0, 10), (12, 16)]),  # paragraphs packed while they fit
        ("One two. Three four. Five.", 12, [(0, 8), (9, 20), (21, 26)]),  # then sentences
        ("abcdefghij klm", 5, [(0, 5), (5, 10), (11, 14)]),  # then words, then a hard cut
    ],
)
def test_ingest_chunk_spans(text, max_chars, expected):
    assert chunk_spans(text, max_chars) == expected


@pytest.mark.parametrize(
    ("setup", "match"),
    [
        (lambda d: (d / "empty").mkdir() or d / "empty", r"empty: no input files"),
        (lambda d: d / "missing.txt", r"missing\.txt: no such file or folder"),
        (lambda d: (d / "x.pdf").write_text("x") and d / "x.pdf", r"x\.pdf: unsupported file type '\.pdf'"),
        (lambda d: (d / "bad.jsonl").write_text('{"text": "ok"}\n{"text": \n') and d / "bad.jsonl",
         r"bad\.jsonl:2: malformed JSON"),
        (lambda d: (d / "nt.jsonl").write_text('{"body": "x"}\n') and d / "nt.jsonl", r"nt\.jsonl:1: missing text field 'text'"),
        (lambda d: (d / "seed.txt").write_text("date 2025-13-45\nText") and d / "seed.txt", r"seed\.txt:1: invalid date '2025-13-45'"),
        (lambda d: (d / "latin.txt").write_bytes(b"caf\xe9") and d / "latin.txt", r"latin\.txt: not valid UTF-8"),
    ],
)
def test_ingest_bad_input(tmp_path, setup, match):
    with pytest.raises(InputError, match=match):
        ingest([setup(tmp_path)])


def test_ingest_append_keeps_existing_and_skips_known(tmp_path):
    first, _ = ingest([SEED])
    ingestor = Ingestor()
    ingestor.seed(first)
    more = tmp_path / "new.txt"
    more.write_text("A new article about the Black Sea.", encoding="utf-8")
    added = list(ingestor.run([SEED, more]))
    assert [a.text for a in added] == ["A new article about the Black Sea."]
    assert ingestor.report.exact_duplicates[0]["duplicate_of"] == "existing output"


def test_ingest_seeds_reproduce_the_gold_corpus_ids_and_texts():
    """The gold corpus was labelled on `annotate ingest seeds/`: normalisation changes would orphan its labels."""
    from annotate.records import read_docs

    articles, report = ingest([SEED.parent])
    gold = {d.id: d for d in read_docs(SEED.parents[1] / "corpora" / "diplomacy-defence" / "labelled.jsonl")}
    assert report.exact_duplicates == [] and report.near_duplicates == []
    assert {a.id: a.text for a in articles} == {i: d.text for i, d in gold.items()}
    def comparable(meta):  # the source is the path as given on the command line
        return {**meta, "source": Path(meta["source"]).name}

    assert {a.id: comparable(a.meta) for a in articles} == {i: comparable(d.meta) for i, d in gold.items()}
