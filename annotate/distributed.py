"""``annotate predict --engine dask``: the same prediction mapped over partitions of a dataset on a Dask cluster.

Why Dask (``dask.distributed``) rather than Ray Data: it installs from PyPI next to our pins (pydantic<2,
urllib3<2) with small pure-Python dependencies, a ``LocalCluster`` of worker processes is a real cluster for
tests, and pointing at machines is one address (``dask scheduler`` / ``dask worker tcp://HOST:8786``).

Input: records JSONL (split into byte ranges, each starting at the first line that begins in it) or Parquet
(split by row groups). Each partition is one task: the worker loads the model once (a per-process cache keyed
by the model path), predicts the partition with :func:`annotate.predict.predict_docs` and writes
``part-NNNNN.jsonl`` (or ``.parquet`` when ``out`` ends in ``.parquet``) atomically. Partitions are numbered
in input order, so the parts read in order are exactly what the single-process run writes.

Every worker must see the model, the inputs and the output's parent folder at the same paths (a shared file
system) and have this package installed. The parts go to ``<out>.partial/`` with a progress file (the
partition plan and the partitions done): an interrupted run given the same model and inputs runs only the
partitions missing. At the end ``manifest.json`` (partitions and counts) is written and the folder takes the
place of ``out``, never replacing an output of more records unless ``force``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import EngineError, InputError, OutputError
from .parquet import is_parquet, iter_parquet_articles, open_parquet
from .predict import (
    DEFAULT_BATCH_SIZE,
    PARTIAL_SUFFIX,
    PROGRESS_NAME,
    counted,
    files_signature,
    load_model,
    open_progress,
    predict_docs,
    run_key,
    write_records,
)
from .records import Article, refuse_fewer, write_json

if TYPE_CHECKING:
    from dask.distributed import Client
    from spacy.language import Language

logger = logging.getLogger(__name__)

LOCAL_PREFIX = "local:"  # --scheduler local:N starts a LocalCluster of N worker processes
CONNECT_TIMEOUT_S = 10  # seconds to reach a scheduler and to see its first worker
PARTITIONS_PER_WORKER = 4  # default partitions: a few per worker so a slow one does not hold the run
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class Partition:
    """A slice of one input file: bytes ``[start, stop)`` of a JSONL file, or row groups ``[start, stop)``."""

    index: int
    path: str
    kind: str
    start: int
    stop: int

    def file_name(self, fmt: str) -> str:
        return f"part-{self.index:05d}.{fmt}"


def _kind(path: Path) -> str:
    from .predict import _is_records_file

    if is_parquet(path) and path.is_file():
        return "parquet"
    if _is_records_file(path):
        return "jsonl"
    raise InputError("the dask engine reads records JSONL (objects with 'id' and 'text') or Parquet files; "
                     "turn raw articles into records with `annotate ingest` first", path=path)


def plan_partitions(inputs: list[Path], n_partitions: int) -> list[Partition]:
    """About ``n_partitions`` partitions over ``inputs``, shared out by file size, in input order."""
    kinds = [_kind(p) for p in inputs]
    sizes = [max(p.stat().st_size, 1) for p in inputs]
    plan: list[Partition] = []
    for path, kind, size in zip(inputs, kinds, sizes):
        wanted = max(1, round(n_partitions * size / sum(sizes)))
        units = open_parquet(path).num_row_groups if kind == "parquet" else path.stat().st_size
        pieces = max(1, min(wanted, units))
        bounds = [units * i // pieces for i in range(pieces + 1)]
        plan += [Partition(len(plan) + i, str(path), kind, a, b) for i, (a, b) in enumerate(pairwise(bounds))]
    return plan


def iter_jsonl_range(path: Path | str, start: int, stop: int) -> Iterator[Article]:
    """Articles from the lines of a JSONL file that begin at a byte offset in ``[start, stop)``."""
    with open(path, "rb") as handle:
        if start > 0:
            handle.seek(start - 1)
            handle.readline()  # the rest of a line that began before ``start`` belongs to the partition before
        offset = handle.tell()
        while offset < stop:
            line = handle.readline()
            if not line:
                break
            if line.strip():
                try:
                    yield Article.from_dict(json.loads(line))
                except (ValueError, TypeError) as err:  # JSON and UTF-8 decoding errors are ValueErrors
                    raise InputError(f"record at byte {offset}: {err}", path=path) from err
            offset = handle.tell()


def read_partition(part: Partition) -> Iterator[Article]:
    if part.kind == "parquet":
        return iter_parquet_articles(part.path, row_groups=range(part.start, part.stop))
    return iter_jsonl_range(part.path, part.start, part.stop)


# --------------------------------------------------------------------------------------------- on a worker

_MODELS: dict[str, Language] = {}
_LOADS: dict[str, int] = {}
_LOCK = threading.Lock()


def worker_model(path: str) -> tuple[Language, int]:
    """The pipeline at ``path``, loaded once per worker process and kept for its later tasks (loaded again only
    if the files at ``path`` change: workers outlive runs); with the number of loads of ``path`` here."""
    key = f"{path}\0{files_signature(path)}"
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = load_model(path)
            _LOADS[path] = _LOADS.get(path, 0) + 1
        return _MODELS[key], _LOADS[path]


def predict_partition(model: str, part: Partition, folder: str, fmt: str, batch_size: int) -> dict[str, Any]:
    """The task: predict one partition into ``folder/part-NNNNN.<fmt>`` (atomically); return its counts."""
    nlp, loads = worker_model(model)
    counts = {"docs": 0, "entities": 0, "relations": 0}
    records = predict_docs(nlp, read_partition(part), batch_size=batch_size)
    write_records(Path(folder) / part.file_name(fmt), counted(records, counts), fmt)
    return {"index": part.index, **counts, "worker": f"{socket.gethostname()}:{os.getpid()}", "model_loads": loads}


# --------------------------------------------------------------------------------------------- the client


@contextlib.contextmanager
def connect(scheduler: str) -> Iterator[Client]:
    """A Dask client: on a new ``LocalCluster`` of worker processes for ``local:N``, else on the scheduler at
    ``scheduler`` (``tcp://HOST:PORT``), given :data:`CONNECT_TIMEOUT_S` to answer and show a worker."""
    from dask.distributed import Client, LocalCluster

    if scheduler.startswith(LOCAL_PREFIX):
        count = scheduler[len(LOCAL_PREFIX):]
        if not count.isdigit() or int(count) < 1:
            raise EngineError(f"--scheduler {scheduler!r}: local:N needs a number of workers N >= 1")
        with (LocalCluster(n_workers=int(count), threads_per_worker=1, processes=True, dashboard_address=None)
              as cluster, Client(cluster) as client):
            yield client
        return
    try:
        client = Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
    except (OSError, TimeoutError, ValueError, TypeError) as err:
        raise EngineError(f"cannot reach the Dask scheduler at {scheduler!r} within {CONNECT_TIMEOUT_S} s "
                          f"({type(err).__name__}: {err}); start one with `dask scheduler` and workers with "
                          "`dask worker ADDRESS`, or pass --scheduler local:N".replace("\n", " ")) from err
    with client:
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as err:
            raise EngineError(f"the Dask scheduler at {scheduler!r} has no worker after {CONNECT_TIMEOUT_S} s; "
                              "start some with `dask worker ADDRESS`") from err
        yield client


def _manifest_docs(out: Path) -> int:
    try:
        return int(json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))["docs"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _swap_into_place(folder: Path, out: Path) -> None:
    """Put the finished ``folder`` where ``out`` is (two renames; the old output is removed after)."""
    old = out.with_name(f".{out.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if out.exists():
        os.replace(out, old)
    try:
        os.replace(folder, out)
    except OSError as err:
        if old.exists():
            os.replace(old, out)
        raise OutputError(f"{out}: cannot replace ({err.strerror or err}); the earlier output was put back") from err
    if old.exists():
        shutil.rmtree(old)


def predict_distributed(
    model: Path | str, inputs: list[Path | str], out: Path | str, *, scheduler: str,
    partitions: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE, force: bool = False, restart: bool = False,
    on_partition: Callable[[dict[str, Any]], Any] | None = None,
) -> dict[str, Any]:
    """Predict ``inputs`` on the Dask cluster at ``scheduler`` into the folder ``out`` of part files; return counts
    per run and the workers that ran partitions, with their model loads. ``on_partition`` is called with each
    partition's result as it finishes."""
    model_path, out = str(Path(model).resolve()), Path(out)
    paths = [Path(p).resolve() for p in inputs]
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: is a file; the dask engine writes a folder of part files")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST_NAME).is_file():
        raise OutputError(f"{out}: is a folder with files but no {MANIFEST_NAME}, not an earlier output of "
                          "predict --engine dask; give a new or empty folder (nothing was changed)")
    fmt = "parquet" if is_parquet(out) else "jsonl"
    key = run_key(model_path, paths, fmt)
    folder = out.with_name(out.name + PARTIAL_SUFFIX)
    saved = open_progress(folder, key, restart=restart, fields={"plan": list, "done": dict})
    with connect(scheduler) as client:
        workers = len(client.scheduler_info(n_workers=-1)["workers"])
        if saved is not None:
            plan = [Partition(**p) for p in saved["plan"]]
            done: dict[str, dict[str, Any]] = saved["done"]
            logger.info("continuing the interrupted run in %s: %d of %d partitions done", folder, len(done), len(plan))
        else:
            plan = plan_partitions(paths, partitions or PARTITIONS_PER_WORKER * max(workers, 1))
            done = {}
        folder.mkdir(parents=True, exist_ok=True)
        progress = {"key": key, "plan": [asdict(p) for p in plan], "done": done}
        write_json(folder / PROGRESS_NAME, progress)
        todo = [p for p in plan if str(p.index) not in done]
        _run_partitions(client, todo, model_path, folder, fmt, batch_size, progress, on_partition)
    results = [done[str(p.index)] for p in plan]
    totals = {k: sum(r[k] for r in results) for k in ("docs", "entities", "relations")}
    loads = {r["worker"]: r["model_loads"] for r in results}
    refuse_fewer(out, totals["docs"], force=force, what="predicted records", before=_manifest_docs(out))
    summary = {"model": model_path, "out": str(out), "format": fmt, "engine": "dask", "scheduler": scheduler,
               "workers": workers, "partitions": len(plan), "resumed_partitions": len(plan) - len(todo), **totals}
    write_json(folder / MANIFEST_NAME, {**summary, "parts": [p.file_name(fmt) for p in plan],
                                        "partition_counts": [{k: r[k] for k in ("docs", "entities", "relations")}
                                                             for r in results]})
    (folder / PROGRESS_NAME).unlink()
    _swap_into_place(folder, out)
    return {**summary, "model_loads": loads}


def _run_partitions(client: Client, todo: list[Partition], model: str, folder: Path, fmt: str, batch_size: int,
                    progress: dict[str, Any], on_partition: Callable[[dict[str, Any]], Any] | None) -> None:
    """Submit one task per partition; record each in the progress file as it finishes; on the first failure
    cancel the rest and raise it (the finished partitions stay for the next run)."""
    from dask.distributed import as_completed

    futures = [client.submit(predict_partition, model, part, str(folder), fmt, batch_size, pure=False)
               for part in todo]
    try:
        for future in as_completed(futures):
            result = future.result()
            progress["done"][str(result["index"])] = result
            write_json(folder / PROGRESS_NAME, progress)
            if on_partition is not None:
                on_partition(result)
    except BaseException:
        client.cancel(futures)
        raise


def read_output(out: Path | str) -> Iterator[dict[str, Any]]:
    """The records of a partitioned output folder, parts in order (as the single-process run writes them)."""
    from .parquet import read_parquet_records
    from .records import iter_json_lines

    out = Path(out)
    manifest = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
    for name in manifest["parts"]:
        if is_parquet(name):
            yield from read_parquet_records(out / name)
        else:
            yield from (obj for _, obj in iter_json_lines(out / name))
