"""Benchmark: pulling labels from Doccano through the toolkit vs the stock client's per-example listing.

Uploads N examples (default 2,000; 5 spans and 2 relations each) to a Doccano, then, in the same run,
times (1) the server's own dataset export (schedule, wait for the Celery task, download the zip),
(2) the toolkit's pull (export + example state + conversion to records + schema validation) and
(3) the stock doccano-client way: ``list_examples`` then ``list_spans`` and ``list_relations`` per
example. Prints the three times and the ratios; asserts nothing (targets: toolkit >= 5x faster than
per-example listing, and within 1.5x of the server's export).

By default it starts a throwaway embedded Doccano (temporary data dir, free port) and stops it at the
end; ``--url`` uses yours, with ANNOTATE_DOCCANO_USER / ANNOTATE_DOCCANO_PASSWORD.

    .venv/bin/python scripts/bench_pull.py --examples 2000
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from annotate import doccano, doccano_server
from annotate.doccano_server import Credentials
from annotate.records import Entity, LabelledDoc, Relation
from annotate.schema import load_schema

SPANS = 5
RELATIONS = 2
TEMPLATE = "{i}: 🇫🇷 Sébastien Lecornu met Rustem Umerov in Kyiv on Tuesday about the EUR {i} million package."
WORDS = [("Sébastien Lecornu", "PERSON"), ("Rustem Umerov", "PERSON"), ("Kyiv", "GPE"), ("Tuesday", "DATE"), ("package", "AGREEMENT")]


def synthetic_docs(count: int) -> list[LabelledDoc]:
    docs = []
    for i in range(count):
        text = TEMPLATE.format(i=i)
        entities = [Entity(f"e{k}", text.index(w), text.index(w) + len(w), label) for k, (w, label) in enumerate(WORDS[:SPANS])]
        relations = [Relation("r0", "e0", "e1", "MEETS"), Relation("r1", "e4", "e3", "DATE_OF")][:RELATIONS]
        docs.append(LabelledDoc(f"bench-{i}#0", text, {"article_id": f"bench-{i}", "chunk": 0}, entities, relations))
    return docs


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def server_export(conn: doccano.Connection, project: doccano.ProjectRef) -> int:
    """The server's own export: schedule it, wait for the Celery task, download the zip (bytes)."""
    task = conn.post(f"projects/{project.id}/download", {"format": doccano.DATA_FORMAT, "exportApproved": False}, what="export")
    while not conn.get(f"tasks/status/{task['task_id']}", what="export status").get("ready"):
        time.sleep(0.05)
    return len(conn.get_bytes(f"projects/{project.id}/download", what="export download", taskId=task["task_id"]))


def per_example_listing(conn: doccano.Connection, project: doccano.ProjectRef) -> tuple[int, int]:
    """What a doccano-client user writes: list every example, then its spans and its relations."""
    client = conn.client
    spans = relations = 0
    for example in client.list_examples(project.id):
        spans += len(client.list_spans(project.id, example.id))
        relations += len(client.list_relations(project.id, example.id))
    return spans, relations


def _fmt(times: list[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in times)


def run(url: str, creds: Credentials, examples: int, project_name: str, repeat: int) -> None:
    conn = doccano.connect(url, creds)
    schema = load_schema()
    docs = synthetic_docs(examples)
    push_s, pushed = timed(lambda: doccano.push(conn, project_name, docs, schema))
    print(f"push: {pushed.uploaded} examples uploaded ({pushed.skipped} already there) in {push_s:.1f} s")
    project = pushed.project

    # interleaved and repeated, best of each: the first export after an upload is slower (cold caches)
    export_times, pull_times = [], []
    for _ in range(repeat):
        export_s, size = timed(lambda: server_export(conn, project))
        pull_s, result = timed(lambda: doccano.pull(conn, project_name, schema))
        export_times.append(export_s)
        pull_times.append(pull_s)
    export_s, pull_s = min(export_times), min(pull_times)
    listing_s, (spans, relations) = timed(lambda: per_example_listing(conn, project))

    print(f"server export (task + download, {size / 1e6:.2f} MB zip): best {export_s:.2f} s of {_fmt(export_times)}")
    print(f"toolkit pull ({len(result.docs)} records, {result.label_count} labels, validated): best {pull_s:.2f} s of {_fmt(pull_times)}")
    print(f"stock client per-example listing ({spans} spans, {relations} relations): {listing_s:.2f} s")
    print(f"per-example listing / toolkit pull: {listing_s / pull_s:.1f}x   (target >= 5x)")
    print(f"toolkit pull / server export: {pull_s / export_s:.2f}x   (target <= 1.5x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--url", help="an existing Doccano (credentials from ANNOTATE_DOCCANO_USER/PASSWORD)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of export and pull (best is reported)")
    parser.add_argument("--project", default=f"bench-pull-{secrets.token_hex(3)}")
    args = parser.parse_args()
    if args.url:
        creds = doccano_server.credentials_from_env()
        if creds is None:
            parser.error(f"--url needs {doccano_server.PASSWORD_ENV} in the environment")
        run(args.url, creds, args.examples, args.project, args.repeat)
        return
    with tempfile.TemporaryDirectory(prefix="bench-doccano-") as tmp:
        creds = Credentials("admin", secrets.token_urlsafe(12))
        started = doccano_server.start(Path(tmp), port=doccano_server.free_port(), credentials=creds)
        print(f"started a throwaway Doccano at {started.info.url} (pid {os.getpid()} drives it)")
        try:
            run(started.info.url, creds, args.examples, args.project, args.repeat)
        finally:
            doccano_server.stop(Path(tmp))


if __name__ == "__main__":
    main()
