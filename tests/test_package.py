"""`annotate package`: a trained pipeline -> wheel + Hugging Face model card.

The card tests read the shipped model's meta.json and metrics (no model is loaded). The slow tests train a tiny
NER + relation pipeline (the data of test_train.py), package it, and install the wheel into a fresh virtual
environment. That environment gets spaCy and `annotate` from this one through a `.pth` file (standing in for
installing them from the package registry, which would take minutes); the wheel itself is installed with
`pip --no-index`, so pip only succeeds if every requirement the wheel declares is already met there.
"""

import json
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from annotate.cli import app
from annotate.package import build_package, model_card, push

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models" / "diplomacy-defence"
NAME, VERSION = "en_diplomacy_defence", "0.1.0"
WHEEL = f"{NAME}-{VERSION}-py3-none-any.whl"
DEAD_HUB = "http://127.0.0.1:9"  # the discard port: nothing listens, the connection is refused at once


def _shipped() -> tuple[dict, dict, dict]:
    read = lambda p: json.loads(p.read_text(encoding="utf-8"))
    return read(SHIPPED / "eval" / "metrics.json"), read(SHIPPED / "model" / "meta.json"), read(SHIPPED / "train-summary.json")


def _results(card_text: str) -> dict[str, float]:
    """metric name -> value, as huggingface_hub's card parser reads the model-index."""
    from huggingface_hub import ModelCard

    card = ModelCard(card_text)
    return {r.metric_name: r.metric_value for r in card.data.eval_results}


# ----------------------------------------------------------------------------------------- the card

def test_package_card_metadata_parses_with_hub_tools(tmp_path):
    from huggingface_hub import ModelCard, metadata_load

    metrics, meta, summary = _shipped()
    text = model_card(metrics, meta, name=NAME, version=VERSION, summary=summary)
    (tmp_path / "README.md").write_text(text, encoding="utf-8")
    header = metadata_load(tmp_path / "README.md")
    assert header["license"] == "cc-by-4.0"
    assert header["language"] == ["en"]
    assert header["library_name"] == "spacy"
    assert header["datasets"] == ["diplomacy-defence"]
    assert header["base_model"] == "spacy/en_core_web_md"
    assert header["model-index"][0]["name"] == NAME
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.base_model == "spacy/en_core_web_md"
    # three views; per view every scored label and micro, each with P, R and F1: 11 entity labels, 14 relation types
    assert len(card.data.eval_results) == 3 * (11 + 1) + 2 * 3 * (14 + 1)
    assert {r.dataset_split for r in card.data.eval_results} == {"test"}


@pytest.mark.parametrize(("name", "value"), [
    ("entities.exact PERSON f1", 0.9543),        # tp 94, fp 4, fn 5: 188 / 197
    ("entities.exact PERSON precision", 0.9592),  # 94 / 98
    ("entities.exact micro f1", 0.8679),         # tp 943, fp 132, fn 155: 1886 / 2173
    ("relations.strict HAS_ROLE f1", 0.9041),    # tp 66, fp 5, fn 9: 132 / 146
    ("relations.classification micro recall", 0.6585),  # 401 / 609
])
def test_package_card_model_index_has_per_label_metrics(name, value):
    metrics, meta, summary = _shipped()
    assert _results(model_card(metrics, meta, name=NAME, version=VERSION, summary=summary))[name] == value


def test_package_card_states_training_data_base_and_limitations():
    metrics, meta, summary = _shipped()
    text = model_card(metrics, meta, name=NAME, version=VERSION, summary=summary)
    assert "split by article: 127 train, 25 dev, 22 test records" in text
    assert "- Base pipeline: en_core_web_md 3.8.0 (MIT licence)" in text
    assert "## Limitations" in text and "coreference" in text
    assert f"pip install {WHEEL}" in text and f'spacy.load("{NAME}")' in text
    assert "| PERSON | 0.959 | 0.949 | 0.954 | [0.924, 0.979] | 99 | 94 | 4 | 5 |" in text


def test_package_card_without_base_or_summary():
    metrics, meta, _ = _shipped()
    meta = {**meta, "annotate": {k: v for k, v in meta["annotate"].items() if k != "base"}}
    text = model_card(metrics, meta, name="en_x", version="1.0", dataset="my-news", split="dev", license_id="mit")
    from huggingface_hub import ModelCard

    data = ModelCard(text).data
    assert data.base_model is None and data.license == "mit" and data.datasets == ["my-news"]
    assert {r.dataset_split for r in data.eval_results} == {"dev"}
    assert "- Base pipeline: none" in text and "- Data: `my-news`." in text


def test_shipped_card_is_the_library_card():
    """models/diplomacy-defence/README.md is what build_model.py writes with annotate.package.model_card."""
    metrics, meta, summary = _shipped()
    expected = model_card(metrics, meta, name=NAME, version=VERSION, summary=summary)
    assert (SHIPPED / "README.md").read_text(encoding="utf-8") == expected


# ---------------------------------------------------------------------------------------- bad input

def _pipeline_stub(root: Path, *, with_eval: bool = True) -> Path:
    """A folder with the shipped model's meta.json and config.cfg (enough for every check before the build)."""
    model = root / "run" / "model"
    model.mkdir(parents=True)
    for name in ("meta.json", "config.cfg"):
        shutil.copy(SHIPPED / "model" / name, model / name)
    if with_eval:
        (root / "run" / "eval").mkdir()
        shutil.copy(SHIPPED / "eval" / "metrics.json", root / "run" / "eval" / "metrics.json")
    return model


@pytest.mark.parametrize(("args", "message"), [
    (["--name", "diplomacy_defence"], "--name 'diplomacy_defence': must start with 'en_'"),
    (["--name", "de_diplomacy"], "--name 'de_diplomacy': must start with 'en_'"),
    (["--name", "en_Diplomacy"], "--name 'en_Diplomacy': use lowercase letters, digits and single underscores"),
    (["--name", "en__diplomacy"], "use lowercase letters, digits and single underscores"),
    (["--name", "en_diplomacy-defence"], "use lowercase letters, digits and single underscores"),
    (["--version", "banana"], "--version 'banana': not a PEP 440 version"),
    (["--version", "1.0.0-beta"], "--version '1.0.0-beta': write it in its normal form, '1.0.0b0'"),
    (["--push-to-hub", "no-org"], "--push-to-hub 'no-org': give a Hub repository as ORG/NAME"),
    (["--push-to-hub", "me/x"], "--push-to-hub needs a Hugging Face token in \\$HF_TOKEN"),
])
def test_package_cli_rejects_bad_options(tmp_path, monkeypatch, args, message):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    model = _pipeline_stub(tmp_path)
    options = {"--name": NAME, "--version": VERSION}
    options.update(dict(zip(args[::2], args[1::2])))
    result = CliRunner().invoke(app, ["package", str(model), "--out", str(tmp_path / "dist"),
                                      *[x for kv in options.items() for x in kv]])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert re.search(message, lines[0])
    assert not (tmp_path / "dist").exists()


@pytest.mark.parametrize(("case", "message"), [
    ("missing", r"model: no such folder"),
    ("training-output", r"run: not a spaCy pipeline folder \(no meta\.json; give the model-best folder"),
    ("no-eval", r"model: no evaluation beside the model \(.*eval/metrics\.json is missing\): run `annotate evaluate"),
    ("eval-not-metrics", r"meta\.json: not a metrics file written by `annotate evaluate`"),
    ("no-components", r"model: cannot load the spaCy pipeline \(.*No such file or directory: '.*/run/model/tokenizer'\)"),
])
def test_package_rejects_bad_model_or_metrics(tmp_path, case, message):
    from annotate.errors import InputError

    model = _pipeline_stub(tmp_path, with_eval=case != "no-eval")
    metrics = None
    if case == "missing":
        model = tmp_path / "model"
    elif case == "training-output":
        (model / "meta.json").unlink()
        shutil.move(model / "config.cfg", model.parent / "config.cfg")
        shutil.rmtree(model)
        model = model.parent
    elif case == "eval-not-metrics":
        metrics = model / "meta.json"
    with pytest.raises(InputError, match=message):
        build_package(model, tmp_path / "dist", name=NAME, version=VERSION, metrics=metrics)
    assert not (tmp_path / "dist").exists()


# ------------------------------------------------------------------------- a real wheel of a tiny model

@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    """Train the tiny pipeline of test_train.py, evaluate it on its training records, package it."""
    from test_train import CONFIG, MAX_STEPS, SCHEMA, _records

    from annotate.docbin import build_docbins
    from annotate.evaluate import run_evaluate
    from annotate.schema import load_schema
    from annotate.train import train

    root = tmp_path_factory.mktemp("package")
    build_docbins(_records(), root / "bins", ratios=(1, 0, 0))
    for name in ("dev", "tune"):
        shutil.copy(root / "bins" / "train.spacy", root / "bins" / f"{name}.spacy")
    overrides = {"paths.train": str(root / "bins" / "train.spacy"), "paths.dev": str(root / "bins" / "dev.spacy"),
                 "paths.tune": str(root / "bins" / "tune.spacy"), "paths.schema": str(SCHEMA),
                 "training.max_steps": MAX_STEPS, "training.eval_frequency": 100}
    model = Path(train(CONFIG, root / "run", overrides=overrides)["model"])
    run_evaluate(_records(), model=model, schema=load_schema(SCHEMA), n_boot=20, seed=0, out=root / "run" / "eval")
    report = build_package(model, root / "dist", name=NAME, version=VERSION, split="train")
    return root, report


LOAD = textwrap.dedent("""\
    import json, sys
    from importlib.metadata import requires
    import spacy
    nlp = spacy.load(sys.argv[1])
    doc = nlp("Macron is President of France.")
    print(json.dumps({"path": str(nlp.path), "requires": requires(sys.argv[1]),
                      "ents": [[e.text, e.label_] for e in doc.ents],
                      "rels": [[r["label"], r["head"][2], r["tail"][2]] for r in doc.user_data["annotate_relations"]]}))
""")


def _fresh_venv(where: Path) -> Path:
    """A new virtual environment that sees this one's packages (spaCy, annotate) through a .pth file."""
    import site

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    lines = [f"import site; site.addsitedir({p!r})" for p in site.getsitepackages()]
    Path(purelib, "parent-environment.pth").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return python


@pytest.mark.slow
def test_package_wheel_installs_in_fresh_venv_and_predicts(packaged, tmp_path):
    root, report = packaged
    wheel = Path(report["wheel"])
    assert wheel.name == WHEEL and wheel.parent == root / "dist" / f"{NAME}-{VERSION}"
    def install(python: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index",
                               "--quiet", str(wheel)], capture_output=True, text=True, check=False)

    # the requirements are declared: an environment without spaCy and annotate refuses the wheel
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True)
    refused = install(tmp_path / "bare" / "bin" / "python")
    assert refused.returncode != 0
    assert re.search(r"No matching distribution found for (annotate|spacy)", refused.stderr)
    python = _fresh_venv(tmp_path / "venv")
    installed = install(python)
    assert installed.returncode == 0, installed.stderr
    script = tmp_path / "load.py"
    script.write_text(LOAD, encoding="utf-8")
    run = subprocess.run([str(python), str(script), NAME], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    assert got["path"].startswith(str(tmp_path / "venv"))  # loaded from the installed package
    assert sorted(got["requires"]) == ["annotate<0.2.0,>=0.1.0", "spacy<3.9.0,>=3.8.11"]
    assert got["ents"] == [["Macron", "PERSON"], ["President", "ROLE"], ["France", "GPE"]]
    assert sorted(got["rels"]) == [["HAS_ROLE", "PERSON", "ROLE"], ["ROLE_IN", "ROLE", "GPE"]]


@pytest.mark.slow
def test_package_folder_holds_card_wheel_and_report(packaged):
    root, report = packaged
    folder = root / "dist" / f"{NAME}-{VERSION}"
    assert sorted(p.name for p in folder.iterdir()) == sorted(["README.md", WHEEL, "package-report.json"])
    card = (folder / "README.md").read_text(encoding="utf-8")
    # the tiny model scores 1.0 on its own training records
    assert _results(card)["entities.exact PERSON f1"] == 1.0
    with zipfile.ZipFile(folder / WHEEL) as whl:
        names = whl.namelist()
        assert f"{NAME}/{NAME}-{VERSION}/README.md" in names and f"{NAME}/{NAME}-{VERSION}/relation_extractor/model" in names
        assert whl.read(f"{NAME}/{NAME}-{VERSION}/README.md").decode("utf-8") == card
        meta = json.loads(whl.read(f"{NAME}/{NAME}-{VERSION}/meta.json"))
    assert (meta["name"], meta["version"]) == ("diplomacy_defence", VERSION)  # spaCy adds the "en_"
    on_disk = json.loads((folder / "package-report.json").read_text(encoding="utf-8"))
    assert on_disk == report and report["requirements"] == ["annotate>=0.1.0,<0.2.0", "spacy>=3.8.11,<3.9.0"]


@pytest.mark.slow
def test_package_push_without_network_keeps_dist(packaged, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from annotate.errors import OutputError

    root, _ = packaged
    dist = tmp_path / "dist"
    shutil.copytree(root / "dist", dist)
    before = {p.name: p.read_bytes() for p in (dist / f"{NAME}-{VERSION}").iterdir()}
    monkeypatch.setattr(constants, "ENDPOINT", DEAD_HUB)
    with pytest.raises(OutputError, match=r"push of .* to the Hub model repo 'me/diplo' failed .*the local package is kept"):
        push(dist / f"{NAME}-{VERSION}", "me/diplo", token="hf_not_a_token")
    assert {p.name: p.read_bytes() for p in (dist / f"{NAME}-{VERSION}").iterdir()} == before

    monkeypatch.setenv("HF_TOKEN", "hf_not_a_token")
    model = root / "run" / "model-best"
    result = CliRunner().invoke(app, ["package", str(model), "--name", NAME, "--version", VERSION, "--out", str(dist),
                                      "--push-to-hub", "me/diplo"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "error: push of" in lines[0] and "'me/diplo' failed" in lines[0]
    folder = dist / f"{NAME}-{VERSION}"
    assert sorted(p.name for p in folder.iterdir()) == sorted(before)  # no temporary files left behind
    assert "pushed_to" not in json.loads((folder / "package-report.json").read_text(encoding="utf-8"))
    assert zipfile.ZipFile(folder / WHEEL).testzip() is None
