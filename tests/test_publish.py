import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from annotate.cli import app
from annotate.docbin import build_docbins, read_docbin
from annotate.errors import InputError
from annotate.publish import build_dataset, check_gold, iob_labels, publish
from annotate.records import Entity, LabelledDoc, Relation, read_docs
from annotate.schema import load_schema

GOLD = Path(__file__).parents[1] / "corpora" / "diplomacy-defence" / "labelled.jsonl"
TEXT = "French President Emmanuel Macron met NATO in Paris."


def doc(**kw):
    base = dict(id="a#0", text=TEXT, meta={"article_id": "a", "chunk": 0, "char_offset": 0, "date": "2025-03-11", "extra": 1},
                entities=[Entity("e1", 0, 6, "GPE"), Entity("e2", 7, 16, "ROLE"), Entity("e3", 17, 32, "PERSON"),
                          Entity("e4", 0, 16, "ROLE"), Entity("e5", 37, 41, "ORG"), Entity("e6", 45, 50, "GPE"),
                          Entity("e7", 34, 36, "DATE")],
                relations=[Relation("r1", "e3", "e2", "HAS_ROLE"), Relation("r2", "e3", "e5", "MEETS", attrs={"negated": True})],
                annotator="gold", status="confirmed")
    base.update(kw)
    return LabelledDoc(**base)


def test_publish_row_features_and_iob_tags():
    schema = load_schema()
    dataset, report = build_dataset([doc()], schema, ratios=(1, 0, 0))
    assert list(dataset) == ["train"]
    row = dataset["train"][0]
    feats = dataset["train"].features
    assert row["tokens"] == ["French", "President", "Emmanuel", "Macron", "met", "NATO", "in", "Paris", "."]
    tags = [feats["ner_tags"].feature.int2str(t) for t in row["ner_tags"]]
    # "French President" (ROLE, the longest) wins over the nested GPE and ROLE spans in the flat tags; the DATE
    # "et" (inside "met") is widened to the whole token, as `annotate docbin` does by default
    assert tags == ["B-ROLE", "I-ROLE", "B-PERSON", "I-PERSON", "B-DATE", "B-ORG", "O", "B-GPE", "O"]
    assert report["left_out_of_ner_tags"] == {"GPE": {"overlapping": 1, "misaligned": 0},
                                              "ROLE": {"overlapping": 1, "misaligned": 0}}
    assert report["alignment"]["entities"]["DATE"]["expanded"] == 1
    assert (report["misaligned"], report["overlap"]) == ("expand", "longest")
    # nested and misaligned spans stay in entities, labels are ClassLabels of the schema
    assert len(row["entities"]) == 7
    label = feats["entities"].feature["label"]
    assert [label.int2str(e["label"]) for e in row["entities"]] == ["GPE", "ROLE", "PERSON", "ROLE", "ORG", "GPE", "DATE"]
    assert row["entities"][2]["text"] == "Emmanuel Macron"
    rel_label = feats["relations"].feature["label"]
    assert [(rel_label.int2str(r["label"]), r["negated"], r["hypothetical"]) for r in row["relations"]] == [
        ("HAS_ROLE", False, False), ("MEETS", True, False)]
    assert (row["article_id"], row["chunk"], row["date"], row["title"]) == ("a", 0, "2025-03-11", None)
    assert json.loads(row["meta"]) == {"extra": 1}
    assert iob_labels(schema)[:3] == ["O", "B-PERSON", "I-PERSON"]


@pytest.mark.parametrize(
    ("docs", "match"),
    [
        ([doc(), doc(annotator="bob")], r"document 'a#0' appears more than once \(annotators 'gold', 'bob'\)"),
        ([doc(entities=[Entity("e1", 0, 6, "NATION")], relations=[])], r"document 'a#0' \[0:6\]: unknown entity label 'NATION'"),
        ([], "no records to publish"),
    ],
)
def test_publish_refuses_non_gold_input(docs, match):
    with pytest.raises(InputError, match=match):
        check_gold(docs, load_schema())


def test_publish_corpus_round_trips_through_load_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import datasets

    gold = list(read_docs(GOLD))
    summary = publish(gold, load_schema(), tmp_path / "ds", name="diplomacy-defence")
    assert sum(summary["documents"].values()) == len(gold) == 174
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = datasets.load_dataset(str(tmp_path / "ds"), cache_dir=str(tmp_path / "cache"))  # reads the card's `configs` like the Hub does
    assert {s: len(d) for s, d in loaded.items()} == {s: n for s, n in summary["documents"].items() if n}
    rows = {r["id"]: r for split in loaded.values() for r in split}
    assert set(rows) == {d.id for d in gold}
    first = gold[0]
    assert [(e["start"], e["end"]) for e in rows[first.id]["entities"]] == [(e.start, e.end) for e in first.entities]
    assert len(rows[first.id]["relations"]) == len(first.relations)
    card = (tmp_path / "ds" / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\npretty_name: diplomacy-defence\n")
    n_gpe = sum(e.label == "GPE" for d in gold for e in d.entities)
    n_has_role = sum(r.label == "HAS_ROLE" for d in gold for r in d.relations)
    assert f"| GPE | a country, city, state or region with a government (nationality adjectives included) | {n_gpe} |" in card
    assert f"| HAS_ROLE | PERSON -> ROLE | the person holds the role | {n_has_role} |" in card


def test_publish_cli_and_push_without_token(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    runner = CliRunner()
    ok = runner.invoke(app, ["publish", str(GOLD), "--out", str(tmp_path / "ds"), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["name"] == "diplomacy-defence"
    bad = runner.invoke(app, ["publish", str(GOLD), "--out", str(tmp_path / "ds2"), "--push-to-hub", "me/x"])
    assert bad.exit_code == 1
    assert bad.stderr.strip().splitlines()[-1] == "error: --push-to-hub needs a Hugging Face token in $HF_TOKEN"



@pytest.mark.parametrize("repo, message", [
    ("not-a-repo", r"error: --push-to-hub 'not-a-repo': give a Hub repository as ORG/NAME"),
    ("me/x", r"error: push of .* to the Hub dataset repo 'me/x' failed .*the local dataset is kept"),
])
def test_publish_push_failures_are_one_line_and_keep_the_dataset(tmp_path, monkeypatch, repo, message):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_TOKEN", "hf_not_a_token")
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens: connection refused
    result = CliRunner().invoke(app, ["publish", str(GOLD), "--out", str(tmp_path / "ds"), "--push-to-hub", repo])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and re.fullmatch(message, lines[0]), lines
    if repo == "me/x":  # the dataset was built before the push and stays
        assert (tmp_path / "ds" / "README.md").is_file() and list((tmp_path / "ds" / "data").glob("*.parquet"))
    else:  # refused before anything was built
        assert not (tmp_path / "ds").exists()

# ------------------------------------------------------------------------- tokens and tags = the DocBins'

LONG = " ".join(
    f"In round {i}, the Polish Defence Minister Wladyslaw Kosiniak-Kamysz said Warsaw would buy more F-35 jets "
    f"from the United States by 203{i % 10}. NATO officials in Brussels welcomed the plan."
    for i in range(12)
)


def _ent(text, eid, phrase, label, nth=0, trim=(0, 0)):
    """An entity over the ``nth`` occurrence of ``phrase``, its edges moved inwards by ``trim`` characters."""
    start = -1
    for _ in range(nth + 1):
        start = text.index(phrase, start + 1)
    return Entity(eid, start + trim[0], start + len(phrase) - trim[1], label)


def _records():
    f16 = "Ukraine received F-16 jets from Denmark on Monday."
    nested = "French President Emmanuel Macron met NATO's chief in Paris."
    offb = "The Pentagon approved $400 million in aid to Kyiv."
    return [
        LabelledDoc(id="f16#0", text=f16, meta={"article_id": "f16"}, entities=[
            _ent(f16, "e1", "Ukraine", "GPE"), _ent(f16, "e2", "F-16 jets", "WEAPON"), _ent(f16, "e3", "F-16", "WEAPON"),
            _ent(f16, "e4", "Denmark", "GPE"), _ent(f16, "e5", "Monday", "DATE")]),
        LabelledDoc(id="nested#0", text=nested, meta={"article_id": "nested"}, entities=[
            _ent(nested, "e1", "French", "GPE"), _ent(nested, "e2", "President", "ROLE"),
            _ent(nested, "e3", "French President", "ROLE"), _ent(nested, "e4", "Emmanuel Macron", "PERSON"),
            _ent(nested, "e5", "NATO", "ORG"), _ent(nested, "e6", "chief", "ROLE"), _ent(nested, "e7", "Paris", "GPE")],
            relations=[Relation("r1", "e4", "e3", "HAS_ROLE")]),
        # "entagon" and "$400 millio" are off token boundaries (widened to whole tokens in both outputs)
        LabelledDoc(id="offb#0", text=offb, meta={"article_id": "offb"}, entities=[
            _ent(offb, "e1", "Pentagon", "ORG", trim=(1, 0)), _ent(offb, "e2", "$400 million", "MONEY", trim=(0, 1)),
            _ent(offb, "e3", "Kyiv", "GPE")]),
        LabelledDoc(id="long#0", text=LONG, meta={"article_id": "long"}, entities=[
            ent for i in range(12) for ent in (
                _ent(LONG, f"p{i}", "Wladyslaw Kosiniak-Kamysz", "PERSON", nth=i),
                _ent(LONG, f"w{i}", "F-35 jets", "WEAPON", nth=i),
                _ent(LONG, f"g{i}", "Warsaw", "GPE", nth=i),
                _ent(LONG, f"u{i}", "United States", "GPE", nth=i),
                _ent(LONG, f"b{i}", "Brussels", "GPE", nth=i),
                _ent(LONG, f"o{i}", "NATO", "ORG", nth=i),
                _ent(LONG, f"r{i}", "Defence Minister", "ROLE", nth=i),
                _ent(LONG, f"x{i}", "Polish Defence Minister", "ROLE", nth=i))]),
        *[LabelledDoc(id=f"art{i}#{c}", text=(part := f"Part {c}: the F-16 jets landed in Rzeszow."),
                      meta={"article_id": f"art{i}"},
                      entities=[_ent(part, "e1", "F-16 jets", "WEAPON"), _ent(part, "e2", "Rzeszow", "GPE")])
          for i in range(6) for c in range(2)],
    ]


def _iob2(doc):
    """IOB2 of ``doc.ents``, straight from the spans (independent of ``annotate.tokens.iob2_tags``)."""
    tags = ["O"] * len(doc)
    for span in doc.ents:
        tags[span.start] = f"B-{span.label_}"
        for i in range(span.start + 1, span.end):
            tags[i] = f"I-{span.label_}"
    return tags


def test_publish_tokens_and_ner_tags_are_the_docbin_docs(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import datasets

    records = _records()
    ratios = (0.4, 0.3, 0.3)
    build_docbins(records, tmp_path / "bins", seed=5, ratios=ratios)
    publish(records, load_schema(), tmp_path / "ds", name="x", seed=5, ratios=ratios)
    loaded = datasets.load_dataset(str(tmp_path / "ds"), cache_dir=str(tmp_path / "cache"))
    published = {row["id"]: (split, row) for split, ds in loaded.items() for row in ds}
    hf_split = {"train": "train", "dev": "validation", "test": "test"}
    seen = set()
    for split in ("train", "dev", "test"):
        for doc in read_docbin(tmp_path / "bins" / f"{split}.spacy"):
            rid = doc.user_data["annotate_id"]
            pub_split, row = published[rid]
            assert pub_split == hf_split[split], rid
            assert row["tokens"] == [t.text for t in doc], rid
            names = loaded[pub_split].features["ner_tags"].feature
            assert [names.int2str(t) for t in row["ner_tags"]] == _iob2(doc), rid
            seen.add(rid)
    assert seen == set(published) == {r.id for r in records}
    assert len({split for split, _ in published.values()}) > 1  # the records are spread over several splits
    # the cases the issue is about: "F-16" is three tokens in both, nested and off-boundary spans agree
    f16 = published["f16#0"][1]
    assert f16["tokens"][2:6] == ["F", "-", "16", "jets"]
    names = loaded[published["f16#0"][0]].features["ner_tags"].feature
    assert [names.int2str(t) for t in f16["ner_tags"]][2:6] == ["B-WEAPON", "I-WEAPON", "I-WEAPON", "I-WEAPON"]
    offb = published["offb#0"][1]
    names = loaded[published["offb#0"][0]].features["ner_tags"].feature
    assert [names.int2str(t) for t in offb["ner_tags"]][:7] == ["O", "B-ORG", "O", "B-MONEY", "I-MONEY", "I-MONEY", "O"]
    assert len(published["long#0"][1]["tokens"]) > 300


# ------------------------------------------------------------------------- re-publishing into a folder


def _splits_in_card(folder):
    import yaml

    header = (folder / "README.md").read_text(encoding="utf-8").split("---\n")[1]
    return [f["split"] for f in yaml.safe_load(header)["configs"][0]["data_files"]]


def test_publish_again_removes_parquet_of_splits_not_written(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import datasets

    records, out = _records(), tmp_path / "ds"
    first = publish(records, load_schema(), out, name="x", seed=5, ratios=(0.4, 0.3, 0.3))
    assert first["documents"]["test"] > 0 and (out / "data" / "test.parquet").is_file()
    assert "test" in _splits_in_card(out)
    (out / "data" / "notes.txt").write_text("mine", encoding="utf-8")  # not publish's: left alone
    (out / "data" / "extra.parquet").write_bytes(b"not a split")
    second = publish(records, load_schema(), out, name="x", seed=5, ratios=(1, 0, 0))
    assert second["documents"] == {"train": len(records), "validation": 0, "test": 0}
    assert sorted(p.name for p in (out / "data").iterdir()) == ["extra.parquet", "notes.txt", "train.parquet"]
    card = (out / "README.md").read_text(encoding="utf-8")
    assert _splits_in_card(out) == ["train"]
    assert "data/test.parquet" not in card and "data/validation.parquet" not in card
    (out / "data" / "extra.parquet").unlink()  # a stray Parquet file would be read as data by load_dataset
    loaded = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert {s: len(d) for s, d in loaded.items()} == {"train": len(records)}
