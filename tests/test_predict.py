"""annotate predict at scale: Parquet in and out, resuming an interrupted run, --n-process, and the Dask engine
on a real local cluster of worker processes; all on a tiny pipeline trained here (real training, 60 steps)."""

import json
import signal
import subprocess
import sys
import textwrap
import time
from itertools import pairwise
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from annotate import distributed
from annotate.cli import app
from annotate.errors import EngineError, InputError, OutputError
from annotate.parquet import (
    iter_parquet_articles,
    read_parquet_records,
    record_to_row,
    row_to_record,
    write_parquet,
)
from annotate.predict import PARTIAL_SUFFIX, PROGRESS_NAME, open_progress, predict
from annotate.records import LabelledDoc

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "models" / "configs" / "ner-rel-cpu.cfg"
SCHEMA = ROOT / "annotate" / "schemas" / "diplomacy-defence.yaml"
TRAIN = [
    ("Macron is President of France.", [("Macron", "PERSON"), ("President", "ROLE"), ("France", "GPE")],
     [(0, 1, "HAS_ROLE"), (1, 2, "ROLE_IN")]),
    ("Lecornu met Umerov in Paris on Tuesday.",
     [("Lecornu", "PERSON"), ("Umerov", "PERSON"), ("Paris", "GPE"), ("Tuesday", "DATE")], [(0, 1, "MEETS")]),
    ("NATO supports Ukraine against Russia.", [("NATO", "ORG"), ("Ukraine", "GPE"), ("Russia", "GPE")],
     [(0, 1, "SUPPORTS"), (0, 2, "OPPOSES")]),
    ("Poland is part of NATO and supplies Patriot missiles.", [("Poland", "GPE"), ("NATO", "ORG"), ("Patriot", "WEAPON")],
     [(0, 1, "PART_OF"), (0, 2, "SUPPLIES")]),
]
N_ARTICLES = 23  # not a multiple of the checkpoint sizes used below: the last part is a short one


def _labelled(i: int, text: str, ents, rels) -> LabelledDoc:
    entities = [{"id": f"e{j}", "start": text.index(s), "end": text.index(s) + len(s), "label": lab}
                for j, (s, lab) in enumerate(ents)]
    relations = [{"id": f"r{k}", "head": f"e{h}", "tail": f"e{t}", "label": lab} for k, (h, t, lab) in enumerate(rels)]
    return LabelledDoc.from_dict({"id": f"d{i}", "text": text, "meta": {"article_id": f"a{i}"},
                                  "entities": entities, "relations": relations})


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    from annotate.docbin import build_docbins
    from annotate.train import train

    root = tmp_path_factory.mktemp("predict-model")
    build_docbins([_labelled(i, *doc) for i, doc in enumerate(TRAIN)], root / "bins", ratios=(1, 0, 0))
    for name in ("dev", "tune"):
        (root / "bins" / f"{name}.spacy").write_bytes((root / "bins" / "train.spacy").read_bytes())
    overrides = {f"paths.{n}": str(root / "bins" / f"{n}.spacy") for n in ("train", "dev", "tune")}
    overrides |= {"paths.schema": str(SCHEMA), "training.max_steps": 60, "training.eval_frequency": 20}
    return Path(train(CONFIG, root / "out", overrides=overrides)["model"])


def _articles(n: int = N_ARTICLES) -> list[dict]:
    texts = [text for text, _, _ in TRAIN]
    return [{"id": f"a{i}", "text": f"{texts[i % 4]} {texts[(3 * i + 1) % 4]}", "meta": {"n": i, "source": "é"}}
            for i in range(n)]


@pytest.fixture
def articles(tmp_path) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(a) + "\n" for a in _articles()), encoding="utf-8")
    return path


def _write_parquet_input(path: Path, rows: list[dict], *, row_group_size: int, meta_as_json: bool = True) -> Path:
    table = pa.Table.from_pylist([{**r, "meta": json.dumps(r["meta"]) if meta_as_json else r["meta"]} for r in rows])
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


# --------------------------------------------------------------------------------------------- Parquet


RECORDS = [
    {"id": "d1", "text": "Macron met Umerov.", "meta": {"date": "2025-03-11", "chunk": 0}, "entities": [
        {"id": "e1", "start": 0, "end": 6, "label": "PERSON", "text": "Macron"},
        {"id": "e2", "start": 11, "end": 17, "label": "PERSON", "attrs": {"confidence": 0.8}}],
     "relations": [{"id": "r1", "head": "e1", "tail": "e2", "label": "MEETS", "attrs": {"score": 0.9731, "negated": True}}],
     "annotator": "model:x", "status": "predicted"},
    {"id": "d2", "text": "Nothing here ✓.", "meta": {}, "entities": [], "relations": [], "annotator": None, "status": None},
]


@pytest.mark.parametrize("record", RECORDS, ids=["labelled", "empty"])
def test_parquet_row_round_trip(record):
    assert row_to_record(record_to_row(record)) == record


def test_parquet_file_round_trip_in_small_row_groups(tmp_path):
    path = tmp_path / "r.parquet"
    assert write_parquet(path, RECORDS * 3, row_group_rows=2) == 6
    assert pq.ParquetFile(path).num_row_groups == 3  # 6 rows in groups of 2
    assert list(read_parquet_records(path)) == RECORDS * 3


@pytest.mark.parametrize("drop, column", [("id", "'id'"), ("text", "'text'")])
def test_parquet_input_missing_column_names_column_and_file(tmp_path, drop, column):
    path = tmp_path / "articles.parquet"
    pq.write_table(pa.Table.from_pylist([{k: v for k, v in {"id": "a", "text": "t"}.items() if k != drop}]), path)
    with pytest.raises(InputError, match=rf"articles\.parquet: no column {column}"):
        list(iter_parquet_articles(path))


@pytest.mark.parametrize("rows, message", [
    ([{"id": "a", "text": "ok", "meta": "{}"}, {"id": "b", "text": None, "meta": "{}"}], "row 2: 'id' and 'text' must be set"),
    ([{"id": "a", "text": "ok", "meta": "{not json"}], "row 1: bad 'meta'"),
    ([{"id": "a", "text": "ok", "meta": "[1]"}], "row 1: bad 'meta' \\('meta' must be an object, got list\\)"),
])
def test_parquet_input_bad_rows_name_the_row(tmp_path, rows, message):
    path = tmp_path / "articles.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    with pytest.raises(InputError, match=message):
        list(iter_parquet_articles(path))


def test_parquet_input_not_parquet_is_one_line(tmp_path):
    path = tmp_path / "fake.parquet"
    path.write_text("not parquet\n")
    with pytest.raises(InputError, match=r"fake\.parquet: not a readable Parquet file"):
        list(iter_parquet_articles(path))


@pytest.mark.slow
def test_predict_parquet_and_jsonl_carry_the_same_records(model, articles, tmp_path):
    by_jsonl = predict(model, [articles], tmp_path / "out.jsonl")
    by_parquet = predict(model, [articles], tmp_path / "out.parquet", checkpoint_every=5)
    assert by_jsonl["docs"] == by_parquet["docs"] == N_ARTICLES
    assert by_jsonl["relations"] == by_parquet["relations"] > 0  # the tiny pipeline does find relations
    expected = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert list(read_parquet_records(tmp_path / "out.parquet")) == expected
    # Parquet input (meta as JSON text or as a struct) predicts the same records as the JSONL input
    for as_json in (True, False):
        source = _write_parquet_input(tmp_path / f"in-{as_json}.parquet", _articles(), row_group_size=4,
                                      meta_as_json=as_json)
        predict(model, [source], tmp_path / f"from-parquet-{as_json}.jsonl")
        assert (tmp_path / f"from-parquet-{as_json}.jsonl").read_bytes() == (tmp_path / "out.jsonl").read_bytes()
    assert not list(tmp_path.glob(f"*{PARTIAL_SUFFIX}"))  # finished runs leave no partial folder


# --------------------------------------------------------------------------------------------- resuming


class Interrupt(Exception):
    pass


def _stop_after(k: int):
    seen = []

    def on_record(_record):
        seen.append(1)
        if len(seen) == k:
            raise Interrupt(f"stopped after {k} records")
    return on_record


@pytest.mark.slow
@pytest.mark.parametrize("name, stop_at, resumed_after", [
    ("out.jsonl", 11, 8),  # checkpoint 4: parts of 4 and 4 are done when record 11 stops the run
    ("out.parquet", 11, 8),
    ("out.jsonl", 3, 0),  # stopped in the first part: nothing kept, no partial folder left
])
def test_predict_resumes_after_interrupt_equal_to_uninterrupted(model, articles, tmp_path, name, stop_at, resumed_after):
    whole = predict(model, [articles], tmp_path / "whole" / name, checkpoint_every=4)
    out = tmp_path / "resumed" / name
    with pytest.raises(Interrupt):
        predict(model, [articles], out, checkpoint_every=4, on_record=_stop_after(stop_at))
    assert not out.exists()
    assert (out.parent / (name + PARTIAL_SUFFIX)).exists() == (resumed_after > 0)
    again = []
    summary = predict(model, [articles], out, checkpoint_every=4, on_record=again.append)
    assert summary["resumed_after"] == resumed_after
    assert len(again) == N_ARTICLES - resumed_after  # no record predicted (or written) twice
    assert summary["docs"] == whole["docs"] == N_ARTICLES and summary["entities"] == whole["entities"]
    assert out.read_bytes() == (tmp_path / "whole" / name).read_bytes()
    assert not (out.parent / (name + PARTIAL_SUFFIX)).exists()


KILLER = textwrap.dedent("""
    import os, signal, sys
    from annotate.predict import predict
    seen = []
    def on_record(_):
        seen.append(1)
        if len(seen) == int(sys.argv[4]):
            os.kill(os.getpid(), signal.SIGKILL)
    predict(sys.argv[1], [sys.argv[2]], sys.argv[3], checkpoint_every=5, on_record=on_record)
""")


KEY = {"model": "m1", "inputs": "i1", "format": "jsonl"}


@pytest.mark.parametrize(("content", "fields", "message"), [
    ("{not json", {"parts": list}, "unreadable progress file of an interrupted run .*Expecting property name"),
    ('{"parts": []}', {"parts": list}, "unreadable progress file .*'key'"),
    (json.dumps({"key": KEY, "parts": 5}), {"parts": list}, r"unreadable progress file .*\(parts of the wrong type\)"),
    (json.dumps({"key": KEY, "plan": [], "done": []}), {"plan": list, "done": dict}, r"\(done of the wrong type\)"),
    (json.dumps({"key": {**KEY, "model": "m2"}, "parts": []}), {"parts": list}, "an interrupted run with another model"),
])
def test_predict_open_progress_refuses_what_it_cannot_continue(tmp_path, content, fields, message):
    folder = tmp_path / f"out.jsonl{PARTIAL_SUFFIX}"
    folder.mkdir()
    (folder / PROGRESS_NAME).write_text(content, encoding="utf-8")
    with pytest.raises(OutputError, match=message):
        open_progress(folder, KEY, fields=fields)
    assert (folder / PROGRESS_NAME).read_text(encoding="utf-8") == content  # kept for the user to decide


def test_predict_open_progress_continues_or_starts_afresh(tmp_path):
    folder = tmp_path / f"out.jsonl{PARTIAL_SUFFIX}"
    assert open_progress(folder, KEY) is None  # no interrupted run
    folder.mkdir()
    (folder / "part-00000.jsonl").write_text("{}\n")
    assert open_progress(folder, KEY) is None and not folder.exists()  # no progress file: nothing to continue
    folder.mkdir()
    (folder / PROGRESS_NAME).write_text(json.dumps({"key": KEY, "parts": [{"file": "p", "docs": 3}]}))
    assert open_progress(folder, KEY, fields={"parts": list})["parts"] == [{"file": "p", "docs": 3}]
    assert open_progress(folder, KEY, restart=True) is None and not folder.exists()

@pytest.mark.slow
def test_predict_resumes_after_sigkill_byte_for_byte(model, articles, tmp_path):
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    out = tmp_path / "out.jsonl"
    run = subprocess.run([sys.executable, str(script), str(model), str(articles), str(out), "17"],
                         capture_output=True, text=True, check=False)
    assert run.returncode == -signal.SIGKILL, run.stderr
    progress = json.loads((tmp_path / f"out.jsonl{PARTIAL_SUFFIX}" / "progress.json").read_text())
    assert [p["docs"] for p in progress["parts"]] == [5, 5, 5]  # killed at record 17: three parts of 5 kept
    result = CliRunner().invoke(app, ["predict", str(model), str(articles), "--out", str(out), "--checkpoint-every", "5",
                                      "--json"])
    assert result.exit_code == 0, result.output
    assert "continued an interrupted run after 15 records" in result.output
    predict(model, [articles], tmp_path / "whole.jsonl")
    assert out.read_bytes() == (tmp_path / "whole.jsonl").read_bytes()


@pytest.mark.slow
def test_predict_refuses_to_resume_on_changed_input(model, articles, tmp_path):
    out = tmp_path / "out.jsonl"
    with pytest.raises(Interrupt):
        predict(model, [articles], out, checkpoint_every=4, on_record=_stop_after(6))
    with articles.open("a") as handle:
        handle.write(json.dumps({"id": "new", "text": "Macron met Umerov."}) + "\n")
    result = CliRunner().invoke(app, ["predict", str(model), str(articles), "--out", str(out), "--checkpoint-every", "4"])
    assert result.exit_code == 1
    assert "an interrupted run with another input is waiting here" in result.output
    assert "--restart" in result.output and len(result.output.strip().splitlines()) == 1
    with pytest.raises(OutputError, match="with another model and another input is waiting"):
        predict(model.parent / "model-last", [articles], out, checkpoint_every=4)
    summary = predict(model, [articles], out, checkpoint_every=4, restart=True)
    assert summary["resumed_after"] == 0 and summary["docs"] == N_ARTICLES + 1


@pytest.mark.slow
def test_predict_refusing_fewer_keeps_the_parts_for_force(model, articles, tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("".join(json.dumps(a) + "\n" for a in _articles(N_ARTICLES + 5)))
    before = out.read_bytes()
    with pytest.raises(OutputError, match=f"holds {N_ARTICLES + 5} predicted records, this run would replace them "
                                          f"with {N_ARTICLES}"):
        predict(model, [articles], out, checkpoint_every=10)
    assert out.read_bytes() == before
    summary = predict(model, [articles], out, checkpoint_every=10, force=True)
    assert summary["resumed_after"] == N_ARTICLES  # nothing predicted again
    assert len(out.read_text().splitlines()) == N_ARTICLES


@pytest.mark.slow
def test_predict_n_process_2_equals_1(model, articles, tmp_path):
    predict(model, [articles], tmp_path / "one.jsonl", n_process=1)
    predict(model, [articles], tmp_path / "two.jsonl", n_process=2, batch_size=4)
    assert (tmp_path / "two.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()


# --------------------------------------------------------------------------------------------- Dask


@pytest.mark.parametrize("bounds", [
    [0, 1, 2, 3, 500],  # tiny ranges: most hold no line start
    [0, 24, 25, 26, 50, 500],  # around the first newline (byte 24) and the second line's start (25)
    [0, 500],
])
def test_distributed_jsonl_ranges_cover_every_line_once(tmp_path, bounds):
    lines = [json.dumps({"id": f"a{i}", "text": "x" * i}) for i in range(12)]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert len(lines[0]) == 24  # the first newline is byte 24
    got = [art.id for a, b in pairwise(bounds) for art in distributed.iter_jsonl_range(path, a, b)]
    assert got == [f"a{i}" for i in range(12)]


def test_distributed_plan_splits_by_size_and_row_groups(tmp_path):
    big = tmp_path / "big.jsonl"
    big.write_text("".join(json.dumps(a) + "\n" for a in _articles(30)))
    small = _write_parquet_input(tmp_path / "small.parquet", _articles(6), row_group_size=2)  # 3 row groups
    plan = distributed.plan_partitions([big, small], 8)
    kinds = [(p.kind, p.index) for p in plan]
    assert kinds[0] == ("jsonl", 0) and [i for _, i in kinds] == list(range(len(plan)))
    parquet = [p for p in plan if p.kind == "parquet"]
    assert 1 <= len(parquet) <= 3 and parquet[0].start == 0 and parquet[-1].stop == 3
    jsonl = [p for p in plan if p.kind == "jsonl"]
    assert jsonl[0].start == 0 and jsonl[-1].stop == big.stat().st_size


def test_distributed_raw_input_is_refused(tmp_path):
    raw = tmp_path / "article.txt"
    raw.write_text("Macron met Umerov.")
    with pytest.raises(InputError, match=r"article\.txt: the dask engine reads records JSONL .* or Parquet"):
        distributed.plan_partitions([raw], 2)


@pytest.mark.parametrize("scheduler, message", [
    ("local:0", "local:N needs a number of workers N >= 1"),
    ("local:two", "local:N needs a number of workers N >= 1"),
    ("tcp://127.0.0.1:9", "cannot reach the Dask scheduler at 'tcp://127.0.0.1:9' within 2 s"),
    ("no-port", "cannot reach the Dask scheduler at 'no-port'"),
])
def test_distributed_bad_scheduler_is_one_line_within_timeout(tmp_path, articles, monkeypatch, scheduler, message):
    monkeypatch.setattr(distributed, "CONNECT_TIMEOUT_S", 2)
    model = tmp_path / "model"  # never loaded: the scheduler is checked first
    model.mkdir()
    started = time.monotonic()
    result = CliRunner().invoke(app, ["predict", str(model), str(articles), "--out", str(tmp_path / "out"),
                                      "--engine", "dask", "--scheduler", scheduler])
    assert time.monotonic() - started < 30
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert isinstance(result.exception, SystemExit)
    with pytest.raises(EngineError), distributed.connect(scheduler):
        pass


def test_distributed_never_replaces_a_folder_it_did_not_write(tmp_path, articles):
    out = tmp_path / "home"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"home: is a folder with files but no manifest\.json"):
        distributed.predict_distributed(tmp_path, [articles], out, scheduler="local:2")
    assert (out / "notes.txt").read_text() == "mine"


def test_predict_unknown_engine_is_a_usage_error(tmp_path, articles):
    result = CliRunner().invoke(app, ["predict", str(tmp_path), str(articles), "--out", "o.jsonl", "--engine", "spark"])
    assert result.exit_code == 2
    assert "'spark' is not one of 'local', 'dask'" in result.output


@pytest.fixture
def scheduler(request):
    """``local:2`` (the engine starts the cluster), or the tcp:// address of a cluster of two worker processes
    started here, as a scheduler on another machine would be given."""
    if request.param == "local:2":
        yield "local:2"
        return
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


@pytest.mark.slow
@pytest.mark.parametrize("source, out_name, scheduler", [("jsonl", "out", "tcp"), ("parquet", "out.parquet", "local:2")],
                         indirect=["scheduler"])
def test_distributed_two_workers_equal_single_process(model, articles, tmp_path, source, out_name, scheduler):
    """A real cluster of two worker processes: the parts in order are the single-process output."""
    if source == "parquet":
        articles = _write_parquet_input(tmp_path / "in.parquet", _articles(), row_group_size=3)  # 8 row groups
    single = tmp_path / ("single.parquet" if out_name.endswith(".parquet") else "single.jsonl")
    predict(model, [articles], single)
    out = tmp_path / out_name
    result = CliRunner().invoke(app, ["predict", str(model), str(articles), "--out", str(out), "--engine", "dask",
                                      "--scheduler", scheduler, "--partitions", "6", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["workers"] == 2 and summary["partitions"] == 6 and summary["docs"] == N_ARTICLES
    assert sorted(summary["model_loads"].values()) == [1, 1]  # both workers ran tasks, each loaded the model once
    parts = sorted(out.glob("part-*"))
    assert [p.name for p in parts] == [f"part-{i:05d}.{'parquet' if out_name.endswith('.parquet') else 'jsonl'}"
                                       for i in range(6)]
    if single.suffix == ".jsonl":
        assert b"".join(p.read_bytes() for p in parts) == single.read_bytes()
    else:
        assert list(distributed.read_output(out)) == list(read_parquet_records(single))
    assert not (tmp_path / (out_name + PARTIAL_SUFFIX)).exists()
    before = [p.read_bytes() for p in parts]
    # what a run interrupted after partitions 0-2 leaves: their part files and the progress file listing them
    from annotate.predict import run_key

    folder = tmp_path / (out_name + PARTIAL_SUFFIX)
    folder.mkdir()
    counts = json.loads((out / "manifest.json").read_text())["partition_counts"]
    done = {str(i): {"index": i, **counts[i], "worker": "earlier:1", "model_loads": 1} for i in range(3)}
    for i in range(3):
        (folder / parts[i].name).write_bytes(before[i])
    key = run_key(str(model.resolve()), [articles.resolve()], summary["format"])
    plan = [vars(p) for p in distributed.plan_partitions([articles.resolve()], 6)]
    (folder / "progress.json").write_text(json.dumps({"key": key, "plan": plan, "done": done}))
    again = distributed.predict_distributed(model, [articles], out, scheduler=scheduler)
    assert again["resumed_partitions"] == 3 and again["partitions"] == 6 and again["docs"] == N_ARTICLES
    assert "earlier:1" in again["model_loads"]  # partitions 0-2 were taken from the interrupted run
    assert [p.read_bytes() for p in sorted(out.glob("part-*"))] == before


@pytest.mark.slow
def test_distributed_bad_record_on_a_worker_is_one_line_and_keeps_finished_partitions(model, tmp_path):
    lines = [json.dumps(a) for a in _articles(12)]
    lines[10] = '{"id": "a10", "text": '  # malformed JSON, in the last of 3 partitions
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    offset = sum(len(line) + 1 for line in lines[:10])
    result = CliRunner().invoke(app, ["predict", str(model), str(source), "--out", str(tmp_path / "out"),
                                      "--engine", "dask", "--scheduler", "local:2", "--partitions", "3"])
    assert result.exit_code == 1
    assert f"in.jsonl: record at byte {offset}: " in result.output
    assert not (tmp_path / "out").exists()
    progress = json.loads((tmp_path / f"out{PARTIAL_SUFFIX}" / "progress.json").read_text())
    assert "2" not in progress["done"]  # the bad partition is not listed as done; the others may be
