"""Load test of the embedded Doccano: N simulated annotators labelling at once, on SQLite and on PostgreSQL.

For each database a real Doccano 1.8.4 is started on 127.0.0.1 in a fresh data dir (PostgreSQL: a local
cluster, ``--database postgres``), with ``max(--annotators)`` real users. For each N a fresh project gets
the shipped corpus's texts (no labels) and N annotators as members. Each annotator is a thread with its own
logged-in session that labels through the REST endpoints the annotation UI uses (one POST per span, one
per relation, then the example's state = confirmed), each starting at a different example, until
``--seconds`` are up (or it has labelled every example). Then one ``pull`` (the dataset export) and a
comparison: labels saved (span and relation creates answered 2xx) against labels pulled. Lost = saved -
pulled; nothing may be lost. 5xx answers are counted by status, and ``database is locked`` in the web log.

Bounded: loopback only, at most ``len(annotators) x seconds`` of load per database. Prints a markdown table.

Usage: .venv/bin/python scripts/bench_doccano_load.py [--annotators 5,10,20] [--seconds 25] [--databases sqlite,postgres]
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import statistics
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from annotate import doccano, doccano_server
from annotate.doccano_server import Credentials
from annotate.errors import DoccanoError
from annotate.offsets import OffsetMap
from annotate.records import LabelledDoc, read_docs

CORPUS = Path(__file__).resolve().parent.parent / "corpora" / "diplomacy-defence" / "labelled.jsonl"


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    saved: int = 0
    examples: int = 0
    lock = threading.Lock()

    def add(self, other: Tally) -> None:
        with self.lock:
            self.latencies += other.latencies
            self.errors.update(other.errors)
            self.saved += other.saved
            self.examples += other.examples


def corpus_docs() -> list[LabelledDoc]:
    seen: dict[str, LabelledDoc] = {}
    for doc in read_docs(CORPUS):
        seen.setdefault(doc.id, doc)  # one annotator's version per document
    return list(seen.values())


def _call(conn: doccano.Connection, tally: Tally, resource: str, payload: dict) -> dict | None:
    started = time.perf_counter()
    try:
        answer = conn.post(resource, payload, what="bench")
    except DoccanoError as err:
        text = str(err)
        kind = text.split("answered ", 1)[1].split(":")[0] if "answered HTTP" in text else text[:60]
        tally.errors[kind] += 1
        return None
    finally:
        tally.latencies.append(time.perf_counter() - started)
    return answer


def annotate_for(url: str, creds: Credentials, project: str, docs: list[LabelledDoc], start: int, go: threading.Barrier,
                 seconds: float, total: Tally) -> None:
    """One annotator: its own login, then (all together) label example after example for ``seconds``."""
    tally = Tally()
    try:
        conn = doccano.connect(url, creds)
        ref = doccano.require_project(conn, project)
        examples = doccano.existing_record_ids(conn, ref)
        types = doccano._type_ids(conn, ref)
    except BaseException:
        go.abort()  # the whole cell fails loudly rather than waiting for an annotator who never comes
        raise
    go.wait()
    deadline = time.monotonic() + seconds
    for i in range(len(docs)):
        if time.monotonic() >= deadline:
            break
        doc = docs[(start + i) % len(docs)]
        base = f"projects/{ref.id}/examples/{examples[doc.id]}"
        offsets = OffsetMap(doc.text, ref.unit)
        made: dict[str, int] = {}
        for ent in doc.entities:
            answer = _call(conn, tally, f"{base}/spans", {"start_offset": offsets.from_codepoint(ent.start),
                                                         "end_offset": offsets.from_codepoint(ent.end), "label": types["span"][ent.label]})
            if answer is not None:
                made[ent.id] = answer["id"]
                tally.saved += 1
        for rel in doc.relations:
            if rel.head in made and rel.tail in made:
                answer = _call(conn, tally, f"{base}/relations", {"from_id": made[rel.head], "to_id": made[rel.tail],
                                                                  "type": types["relation"][rel.label]})
                tally.saved += answer is not None
        _call(conn, tally, f"{base}/states", {})
        tally.examples += 1
    total.add(tally)


def run_cell(url: str, admin: Credentials, users: list[Credentials], n: int, seconds: float, docs: list[LabelledDoc], db: str) -> dict:
    project = f"load-{db}-{n}"
    conn = doccano.connect(url, admin)
    doccano.push(conn, project, [LabelledDoc.from_article(d) for d in docs], _schema(), members=[(u.username, "annotator") for u in users[:n]])
    total = Tally()
    go = threading.Barrier(n + 1)  # the clock starts once every annotator has logged in and found the examples
    threads = [threading.Thread(target=annotate_for, args=(url, u, project, docs, i * len(docs) // n, go, seconds, total))
               for i, u in enumerate(users[:n])]
    for t in threads:
        t.start()
    go.wait()
    started = time.monotonic()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    pulled = doccano.count_labels(doccano.pull(conn, project).docs)
    lat = sorted(total.latencies)
    return {"db": db, "n": n, "seconds": round(elapsed, 1), "requests": len(lat), "rps": len(lat) / elapsed,
            "p50_ms": 1000 * statistics.median(lat) if lat else 0.0, "p95_ms": 1000 * lat[int(0.95 * (len(lat) - 1))] if lat else 0.0,
            "errors": dict(total.errors), "examples": total.examples, "saved": total.saved, "pulled": pulled, "lost": total.saved - pulled}


def _schema():
    from annotate.schema import load_schema

    return load_schema()


def bench_database(db: str, ns: list[int], seconds: float, docs: list[LabelledDoc]) -> list[dict]:
    folder = Path(tempfile.mkdtemp(prefix=f"annotate-load-{db}-"))
    folder.chmod(0o711)  # the postgres user must reach its cluster inside
    admin = Credentials("admin", secrets.token_urlsafe(12))
    try:
        t0 = time.monotonic()
        result = doccano_server.start(folder, port=doccano_server.free_port(), credentials=admin, database=db)
        users = [Credentials(f"annotator{i:02d}", secrets.token_urlsafe(12)) for i in range(max(ns))]
        for user in users:
            doccano_server.create_user(folder, user)
        print(f"{db}: server and {len(users)} users ready in {time.monotonic() - t0:.0f} s", flush=True)
        rows = []
        for n in ns:
            log_before = (folder / "logs" / "web.log").read_text(errors="replace").count("database is locked")
            row = run_cell(result.info.url, admin, users, n, seconds, docs, db)
            row["locked_in_log"] = (folder / "logs" / "web.log").read_text(errors="replace").count("database is locked") - log_before
            print(row, flush=True)
            rows.append(row)
        return rows
    finally:
        doccano_server.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


def table(rows: list[dict]) -> str:
    lines = ["| database | N | requests/s | p50 ms | p95 ms | errors | examples | labels saved | labels pulled | lost |",
             "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        errors = ", ".join(f"{k}: {v}" for k, v in sorted(r["errors"].items())) or "0"
        if r["locked_in_log"]:
            errors += f" ('database is locked' x{r['locked_in_log']} in web.log)"
        lines.append(f"| {r['db']} | {r['n']} | {r['rps']:.1f} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {errors} | {r['examples']} | "
                     f"{r['saved']} | {r['pulled']} | {r['lost']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotators", default="5,10,20")
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--databases", default="sqlite,postgres")
    args = parser.parse_args()
    ns = [int(x) for x in args.annotators.split(",")]
    if max(ns) > 50 or args.seconds > 120:
        parser.error("bounded: at most 50 annotators and 120 s per cell")
    docs = corpus_docs()
    rows = []
    for db in args.databases.split(","):
        rows += bench_database(db, ns, args.seconds, docs)
    print(table(rows))


if __name__ == "__main__":
    main()
