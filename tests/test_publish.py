import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from annotate.cli import app
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
    # "French President" (ROLE, the longest) wins over the nested GPE and ROLE spans in the flat tags
    assert tags == ["B-ROLE", "I-ROLE", "B-PERSON", "I-PERSON", "O", "B-ORG", "O", "B-GPE", "O"]
    assert report["left_out_of_ner_tags"] == {"DATE": {"overlapping": 0, "misaligned": 1},
                                              "GPE": {"overlapping": 1, "misaligned": 0},
                                              "ROLE": {"overlapping": 1, "misaligned": 0}}
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
    loaded = datasets.load_dataset(str(tmp_path / "ds"))  # reads the card's `configs` like the Hub does
    assert {s: len(d) for s, d in loaded.items()} == {s: n for s, n in summary["documents"].items() if n}
    rows = {r["id"]: r for split in loaded.values() for r in split}
    assert set(rows) == {d.id for d in gold}
    first = gold[0]
    assert [(e["start"], e["end"]) for e in rows[first.id]["entities"]] == [(e.start, e.end) for e in first.entities]
    assert len(rows[first.id]["relations"]) == len(first.relations)
    card = (tmp_path / "ds" / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\npretty_name: diplomacy-defence\n")
    assert "| GPE | a country, city, state or region with a government (nationality adjectives included) | 2872 |" in card
    assert "| HAS_ROLE | PERSON -> ROLE | the person holds the role | 626 |" in card


def test_publish_cli_and_push_without_token(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    runner = CliRunner()
    ok = runner.invoke(app, ["publish", str(GOLD), "--out", str(tmp_path / "ds"), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["name"] == "diplomacy-defence"
    bad = runner.invoke(app, ["publish", str(GOLD), "--out", str(tmp_path / "ds2"), "--push-to-hub", "me/x"])
    assert bad.exit_code == 1
    assert bad.stderr.strip().splitlines()[-1] == "error: --push-to-hub needs a Hugging Face token in $HF_TOKEN"
