"""Real training on tiny data: NER + relations fit a handful of documents, save, reload, predict."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from annotate.cli import app
from annotate.docbin import build_docbins
from annotate.records import Article, LabelledDoc, read_docs
from annotate.schema import load_schema

CONFIG = Path(__file__).resolve().parents[1] / "models" / "configs" / "ner-rel-cpu.cfg"
SCHEMA = Path(__file__).resolve().parents[1] / "annotate" / "schemas" / "diplomacy-defence.yaml"
MAX_STEPS = 300

DOCS = [
    ("Macron is President of France.", [("Macron", "PERSON"), ("President", "ROLE"), ("France", "GPE")],
     [(0, 1, "HAS_ROLE", {}), (1, 2, "ROLE_IN", {})]),
    ("Burkhardt is Chief of Staff of the French Armed Forces.",
     [("Burkhardt", "PERSON"), ("Chief of Staff", "ROLE"), ("French Armed Forces", "MILITARY_UNIT")],
     [(0, 1, "HAS_ROLE", {}), (1, 2, "ROLE_IN", {})]),
    ("Lecornu met Umerov in Paris on Tuesday.",
     [("Lecornu", "PERSON"), ("Umerov", "PERSON"), ("Paris", "GPE"), ("Tuesday", "DATE")], [(0, 1, "MEETS", {})]),
    ("NATO supports Ukraine against Russia.", [("NATO", "ORG"), ("Ukraine", "GPE"), ("Russia", "GPE")],
     [(0, 1, "SUPPORTS", {}), (0, 2, "OPPOSES", {})]),
    ("Poland is part of NATO and supplies Patriot missiles.", [("Poland", "GPE"), ("NATO", "ORG"), ("Patriot", "WEAPON")],
     [(0, 1, "PART_OF", {}), (0, 2, "SUPPLIES", {})]),
    ("The United States has not supplied F-16 jets to Ukraine.",
     [("United States", "GPE"), ("F-16", "WEAPON"), ("Ukraine", "GPE")], [(0, 1, "SUPPLIES", {"negated": True})]),
]


def _records() -> list[LabelledDoc]:
    out = []
    for i, (text, ents, rels) in enumerate(DOCS):
        entities = []
        for j, (surface, label) in enumerate(ents):
            start = text.index(surface)
            entities.append({"id": f"e{j}", "start": start, "end": start + len(surface), "label": label})
        relations = [{"id": f"r{k}", "head": f"e{h}", "tail": f"e{t}", "label": lab, "attrs": attrs}
                     for k, (h, t, lab, attrs) in enumerate(rels)]
        out.append(LabelledDoc.from_dict({"id": f"d{i}", "text": text, "meta": {"article_id": f"a{i}"},
                                          "entities": entities, "relations": relations}))
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from annotate.train import train

    root = tmp_path_factory.mktemp("train")
    build_docbins(_records(), root / "bins", ratios=(1, 0, 0))
    for name in ("dev", "tune"):  # fit = score (and tune) on train
        (root / "bins" / f"{name}.spacy").write_bytes((root / "bins" / "train.spacy").read_bytes())
    overrides = {"paths.train": str(root / "bins" / "train.spacy"), "paths.dev": str(root / "bins" / "dev.spacy"),
                 "paths.tune": str(root / "bins" / "tune.spacy"), "paths.schema": str(SCHEMA),
                 "training.max_steps": MAX_STEPS, "training.eval_frequency": 50}
    summary = train(CONFIG, root / "out", overrides=overrides)
    return root, summary


@pytest.mark.slow
def test_train_fits_tiny_training_set(trained):
    _, summary = trained
    scores = summary["dev_scores"]
    assert scores["ents_f"] >= 0.9
    assert scores["rel_micro_f"] >= 0.9
    assert scores["rel_f_per_type"]["HAS_ROLE"]["f"] == 1.0


@pytest.mark.slow
def test_train_writes_reproducibility_record(trained):
    root, summary = trained
    meta = json.loads((Path(summary["model"]) / "meta.json").read_text())
    assert meta["annotate"]["config_sha256"] == summary["config_sha256"]
    assert set(meta["annotate"]["data_sha256"]) == {"train", "dev", "tune", "schema"}
    assert meta["annotate"]["thresholds_tuned_on"] == "tune"
    # every type gets a threshold: its own with enough tune support, else the pooled one
    assert set(meta["annotate"]["thresholds"]) == {r.name for r in load_schema(SCHEMA).relations}
    assert summary["overrides"]["training.max_steps"] == MAX_STEPS
    assert "max_steps = 300" in (root / "out" / "config.cfg").read_text()
    assert Path(summary["model"]).name == "model-best"


SUBPROCESS = textwrap.dedent("""\
    import json, sys
    import spacy
    assert not any(m == "annotate" or m.startswith("annotate.") for m in sys.modules)
    nlp = spacy.load(sys.argv[1])
    out = []
    for doc in nlp.pipe(json.loads(sys.argv[2])):
        rels = [(r["label"], list(r["head"]), list(r["tail"]), r["attrs"]) for r in doc.user_data.get("annotate_relations", [])]
        out.append({"ents": [[e.start_char, e.end_char, e.label_] for e in doc.ents], "rels": rels})
    print(json.dumps(out))
""")


@pytest.mark.slow
def test_train_model_reloads_in_fresh_process_with_same_output(trained, tmp_path):
    from annotate.predict import load_model, predict_docs

    _, summary = trained
    texts = [text for text, _, _ in DOCS]
    script = tmp_path / "load.py"
    script.write_text(SUBPROCESS, encoding="utf-8")
    run = subprocess.run([sys.executable, str(script), summary["model"], json.dumps(texts)],
                         capture_output=True, text=True, check=False, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    fresh = json.loads(run.stdout)
    here = list(predict_docs(load_model(summary["model"]), [Article(id=str(i), text=t) for i, t in enumerate(texts)]))
    for got, record in zip(fresh, here):
        assert got["ents"] == [[e.start, e.end, e.label] for e in record.entities[:len(got["ents"])]]
        ids = {e.id: [e.start, e.end, e.label] for e in record.entities}
        mine = [(r.label, ids[r.head], ids[r.tail], {k: v for k, v in r.attrs.items() if k != "score"}) for r in record.relations]
        assert [tuple(r) for r in got["rels"]] == mine
    assert any(r[3] == {"negated": True} for r in fresh[5]["rels"])  # the attribute is learned and carried


@pytest.mark.slow
def test_train_predict_cli_writes_predicted_records(trained, tmp_path):
    _, summary = trained
    src = tmp_path / "articles.jsonl"
    src.write_text('{"id": "x#0", "text": "Macron is President of France.", "meta": {"article_id": "x"}}\n', encoding="utf-8")
    raw = tmp_path / "raw.txt"
    raw.write_text("date 2025-03-11\nNATO supports Ukraine against Russia.\n", encoding="utf-8")
    out = tmp_path / "pred.jsonl"
    result = CliRunner().invoke(app, ["predict", summary["model"], str(src), str(raw), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["docs"] == 2
    record, ingested = read_docs(out)
    assert ingested.meta["date"] == "2025-03-11" and ingested.text == "NATO supports Ukraine against Russia."
    assert record.status == "predicted" and record.meta == {"article_id": "x"}
    assert {(e.label, record.text[e.start:e.end]) for e in record.entities} == {
        ("PERSON", "Macron"), ("ROLE", "President"), ("GPE", "France")}
    assert sorted(r.label for r in record.relations) == ["HAS_ROLE", "ROLE_IN"]


@pytest.mark.slow
def test_train_model_pre_annotates_doccano_tasks(trained, tmp_path):
    """`annotate tasks --model` turns the pipeline's predictions into Doccano suggestions (UTF-16 offsets)."""
    _, summary = trained
    src = tmp_path / "articles.jsonl"
    src.write_text('{"id": "x#0", "text": "🇫🇷 Macron is President of France.", "meta": {"article_id": "x"}}\n',
                   encoding="utf-8")
    out = tmp_path / "tasks.jsonl"
    result = CliRunner().invoke(app, ["tasks", str(src), "--model", summary["model"], "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)["entity_suggestions"]
    task = json.loads(out.read_text(encoding="ascii"))
    text16 = task["text"].encode("utf-16-le")
    spans = {(e["label"], text16[2 * e["start_offset"]:2 * e["end_offset"]].decode("utf-16-le")) for e in task["entities"]}
    # the three names it was trained on come back at the right UTF-16 offsets (the unseen flag may be labelled too)
    assert {("PERSON", "Macron"), ("ROLE", "President"), ("GPE", "France")} <= spans
    assert sum(counts.values()) == len(task["entities"])
    assert task["meta"]["record_id"] == "x#0"


def test_train_cli_rejects_bad_override(tmp_path):
    result = CliRunner().invoke(app, ["train", str(CONFIG), "--output", str(tmp_path / "o"), "training.max_steps"])
    assert result.exit_code != 0
    assert "--section.key=value" in result.output


def test_train_cli_missing_corpus_is_one_line_error(tmp_path):
    result = CliRunner().invoke(app, ["train", str(CONFIG), "--output", str(tmp_path / "o"),
                                      "--paths.train", str(tmp_path / "nope.spacy"), "--paths.dev", str(tmp_path / "nope.spacy")])
    assert result.exit_code != 0
    assert "nope.spacy" in result.output


def test_train_cli_missing_tune_corpus_is_one_line_error(tmp_path):
    build_docbins(_records(), tmp_path / "bins", ratios=(1, 0, 0))
    train_path = str(tmp_path / "bins" / "train.spacy")
    result = CliRunner().invoke(app, ["train", str(CONFIG), "--output", str(tmp_path / "o"), "--paths.train", train_path,
                                      "--paths.dev", train_path, "--paths.tune", str(tmp_path / "held-out.spacy")])
    assert result.exit_code != 0
    assert "paths.tune does not exist" in result.output and "held-out.spacy" in result.output


def test_train_predict_cli_missing_model_is_one_line_error(tmp_path):
    (tmp_path / "m").mkdir()
    src = tmp_path / "a.jsonl"
    src.write_text('{"id": "x", "text": "y"}\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "m"), str(src), "--out", str(tmp_path / "p.jsonl")])
    assert result.exit_code == 1
    assert "error:" in result.output and "cannot load spaCy pipeline" in result.output


# ------------------------------------------------------------------ pretrained tok2vec (scripts/pretrain_tok2vec.py)

PRETRAINED_CONFIG = CONFIG.with_name("ner-rel-pretrained.cfg")
PRETRAIN_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "pretrain_tok2vec.py"


@pytest.fixture(scope="module")
def pretrain_script():
    """The script as a module (scripts/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("pretrain_tok2vec", PRETRAIN_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pretrained_config_is_default_pipeline_plus_pretraining_block():
    from spacy.util import load_config

    default, pretrained = (load_config(p, interpolate=False) for p in (CONFIG, PRETRAINED_CONFIG))
    for section in ("nlp", "components", "training", "initialize"):
        assert pretrained[section] == default[section], section
    # spaCy skips init_tok2vec without a word when [pretraining] has no component
    assert pretrained["pretraining"]["component"] == "tok2vec"


def test_pretrain_reads_conll_and_crossre_sentences(pretrain_script, tmp_path):
    conll = tmp_path / "train.txt"
    conll.write_text("NATO\tB-organisation\nmet\tO\n\nKyiv\tB-location\n", encoding="utf-8")
    crossre = tmp_path / "politics-train.json"
    crossre.write_text('{"sentence": ["Macron", "visited", "Berlin", "."]}\n\n', encoding="utf-8")
    assert list(pretrain_script.conll_texts(conll)) == ["NATO met", "Kyiv"]
    assert list(pretrain_script.crossre_texts(crossre)) == ["Macron visited Berlin ."]


def test_pretrain_config_without_pretraining_component_is_rejected(pretrain_script, tmp_path):
    from annotate.errors import InputError

    with pytest.raises(InputError, match="component must be"):
        pretrain_script.pretraining_config(CONFIG, tmp_path / "raw.jsonl", 1)


@pytest.mark.slow
def test_pretrained_weights_are_loaded_at_initialization(pretrain_script, tmp_path):
    import numpy
    from spacy.training.initialize import init_nlp
    from spacy.training.pretrain import pretrain
    from spacy.util import load_config

    from annotate.records import write_jsonl

    raw = tmp_path / "raw.jsonl"
    write_jsonl(raw, [{"text": text} for text, _, _ in DOCS])
    config = pretrain_script.pretraining_config(PRETRAINED_CONFIG, raw, 1)
    assert config["nlp"]["pipeline"] == ["tok2vec"]
    pretrain(config.interpolate(), tmp_path)
    weights = tmp_path / "model-last.bin"
    build_docbins(_records(), tmp_path / "bins", ratios=(1, 0, 0))
    bins = str(tmp_path / "bins" / "train.spacy")
    overrides = {"paths.train": bins, "paths.dev": bins, "paths.schema": str(SCHEMA)}
    loaded, fresh = (init_nlp(load_config(PRETRAINED_CONFIG, overrides={**overrides, "paths.init_tok2vec": init})
                              .interpolate()) for init in (str(weights), None))

    def hash_table(nlp):
        return next(n for n in nlp.get_pipe("tok2vec").model.walk() if n.has_param("E")).get_param("E").copy()

    untouched = hash_table(fresh)
    fresh.get_pipe("tok2vec").model.from_bytes(weights.read_bytes())
    assert not numpy.array_equal(hash_table(loaded), untouched)
    assert numpy.array_equal(hash_table(loaded), hash_table(fresh))


# ---------------------------------------------------------------------- NER-only corpora and base pipelines

MD_CONFIG = CONFIG.with_name("ner-rel-md.cfg")


def _bins_without_relations(root: Path) -> Path:
    records = [LabelledDoc.from_dict({**d.to_dict(), "relations": []}) for d in _records()]
    build_docbins(records, root / "bins", ratios=(1, 0, 0))
    return root / "bins" / "train.spacy"


@pytest.mark.slow
def test_train_ner_only_corpus_drops_relation_component(tmp_path):
    """A corpus without relations (CrossNER) trains NER alone and says so, instead of a traceback."""
    train_path = _bins_without_relations(tmp_path)
    result = CliRunner().invoke(app, ["train", str(CONFIG), "--output", str(tmp_path / "out"), "--paths.train", str(train_path),
                                      "--paths.dev", str(train_path), "--training.max_steps=20", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["notes"] == ["the training data has no relations: trained without relation_extractor"]
    import spacy

    assert "relation_extractor" not in spacy.load(tmp_path / "out" / "model-best").pipe_names


@pytest.mark.slow
def test_train_on_base_pipeline_records_base_and_filters_foreign_labels(tmp_path):
    """ner-rel-md.cfg on en_core_web_md: trains, records the base in meta.json, predicts only our labels."""
    import spacy

    from annotate.train import train

    build_docbins(_records(), tmp_path / "bins", ratios=(1, 0, 0))
    path = str(tmp_path / "bins" / "train.spacy")
    summary = train(MD_CONFIG, tmp_path / "out", base="en_core_web_md",
                    overrides={"paths.train": path, "paths.dev": path, "training.max_steps": 40, "training.eval_frequency": 20})
    meta = json.loads((Path(summary["model"]) / "meta.json").read_text())
    base = meta["annotate"]["base"]
    assert (base["name"], base["version"], base["license"]) == ("en_core_web_md", "3.8.0", "MIT")
    assert len(base["sha256"]) == 64 and base["distribution"].startswith("mooring")
    nlp = spacy.load(summary["model"])
    assert nlp.pipe_names == ["tok2vec", "tagger", "ner", "label_filter", "parser", "relation_extractor"]
    ours = {label for _, ents, _ in DOCS for _, label in ents}
    assert set(nlp.get_pipe("label_filter").labels) == ours
    doc = nlp("The Russian army and 3,000 Chinese troops crossed the Danube on Friday, the BBC said.")
    assert {e.label_ for e in doc.ents} <= ours  # OntoNotes' NORP, CARDINAL, ... never come out


@pytest.mark.parametrize("base, message", [
    ("en_core_web_xl", "base pipeline 'en_core_web_xl' not found"),
    ("srsly", "base pipeline 'srsly' not found"),  # a module, but it carries no pipeline
])
def test_train_bad_base_is_one_line_error(tmp_path, base, message):
    train_path = _bins_without_relations(tmp_path)
    result = CliRunner().invoke(app, ["train", str(MD_CONFIG), "--base", base, "--output", str(tmp_path / "o"),
                                      "--paths.train", str(train_path), "--paths.dev", str(train_path)])
    assert result.exit_code == 1
    assert message in result.output


def test_train_base_config_without_base_is_one_line_error(tmp_path):
    train_path = _bins_without_relations(tmp_path)
    result = CliRunner().invoke(app, ["train", str(MD_CONFIG), "--output", str(tmp_path / "o"),
                                      "--paths.train", str(train_path), "--paths.dev", str(train_path)])
    assert result.exit_code == 1
    assert "pass --base" in result.output


def test_base_folder_that_is_not_a_pipeline(tmp_path):
    from annotate.base import resolve_base
    from annotate.errors import InputError

    with pytest.raises(InputError, match="not a spaCy pipeline folder"):
        resolve_base(str(tmp_path))
