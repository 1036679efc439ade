"""What every importer shares: read_* -> write_corpus, all three files or none, never fewer records silently."""

import errno
import json
import os

import pytest

from annotate.errors import InputError, OutputError
from annotate.importers import _corpus
from annotate.importers._corpus import write_corpus
from annotate.importers.crossner import import_conll, read_crossner
from annotate.importers.crossre import import_crossre, read_crossre
from annotate.importers.re3d import import_re3d, read_re3d
from annotate.records import Entity, LabelledDoc, read_docs
from annotate.records import count_lines as count_records

FILES = ("import-report.json", "labelled.jsonl", "schema.yaml")


# Tiny inputs with n records (n = 0, 1, 2), one per format; every record has one entity.


def _re3d(tmp_path, n):
    folder = tmp_path / f"re3d-{n}" / "SRC"
    folder.mkdir(parents=True, exist_ok=True)
    docs = [{"_id": f"D{i}", "text": "Paris is far.", "sourceName": "SRC"} for i in range(1, n + 1)]
    ents = [{"_id": f"D{i}-0-5-Location", "documentId": f"D{i}", "begin": 0, "end": 5, "type": "Location",
             "value": "Paris", "confidence": 1} for i in range(1, n + 1)]
    for name, rows in (("documents.json", docs), ("entities.json", ents), ("relations.json", [])):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder.parent


def _crossre(tmp_path, n):
    path = tmp_path / f"crossre-{n}.json"
    rows = [{"doc_key": f"d{i}", "sentence": ["Tito", "met", "Nehru"], "ner": [[0, 0, "politician"]], "relations": []}
            for i in range(1, n + 1)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _conll(tmp_path, n):
    path = tmp_path / f"conll-{n}.txt"
    path.write_text("\n\n".join(["Tito\tB-politician\nmet\tO"] * n) + "\n", encoding="utf-8")
    return path


IMPORTERS = {"re3d": (_re3d, import_re3d), "crossre": (_crossre, import_crossre), "conll": (_conll, import_conll)}
READERS = {"re3d": (_re3d, read_re3d), "crossre": (_crossre, read_crossre), "conll": (_conll, read_crossner)}


def _snapshot(out):
    """Every entry of ``out`` (temporary files included) -> its bytes (None for a folder)."""
    return {p.name: None if p.is_dir() else p.read_bytes() for p in out.iterdir()}


@pytest.fixture(params=sorted(IMPORTERS))
def importer(request, tmp_path):
    """(make_input(n) -> path, import_<format>, out) with an earlier import of 2 records already in ``out``."""
    make, run = IMPORTERS[request.param]
    out = tmp_path / "out"
    run(make(tmp_path, 2), out)
    assert count_records(out / "labelled.jsonl") == 2 and sorted(_snapshot(out)) == list(FILES)
    return (lambda n: make(tmp_path, n)), run, out


# --------------------------------------------------------------------------------------------- readers


@pytest.mark.parametrize("fmt", sorted(READERS))
def test_read_returns_records_and_report_and_writes_nothing(tmp_path, fmt):
    make, read = READERS[fmt]
    before = set(tmp_path.rglob("*"))
    path = make(tmp_path, 2)
    records, report = read(path)
    assert [len(r.entities) for r in records] == [1, 1]
    assert report["path"] == str(path) and report["documents"] == 2 and "out" not in report
    assert set(tmp_path.rglob("*")) - before == {path, *path.rglob("*")}  # only the input


@pytest.mark.parametrize("fmt", sorted(READERS))
def test_read_without_records_is_an_input_error(tmp_path, fmt):
    make, read = READERS[fmt]
    with pytest.raises(InputError, match=r"no records found in .*(re3d-0|crossre-0\.json|conll-0\.txt)"):
        read(make(tmp_path, 0))


# --------------------------------------------------------------------------------------------- fewer records


def test_fewer_records_do_not_replace_an_earlier_corpus(importer):
    make, run, out = importer
    before = _snapshot(out)
    with pytest.raises(OutputError, match=r"out/labelled\.jsonl: holds 2 records, this run would replace them with 1; pass --force"):
        run(make(1), out)
    assert _snapshot(out) == before


def test_force_replaces_with_fewer_records(importer):
    make, run, out = importer
    summary = run(make(1), out, force=True)
    assert summary["documents"] == 1 and summary["out"] == str(out)
    assert len(list(read_docs(out / "labelled.jsonl"))) == 1
    assert json.loads((out / "import-report.json").read_text(encoding="utf-8")) == summary
    assert sorted(_snapshot(out)) == list(FILES)


def test_as_many_records_replace_without_force(importer):
    make, run, out = importer
    assert run(make(2), out)["documents"] == 2
    assert sorted(_snapshot(out)) == list(FILES)


def test_import_without_records_writes_nothing(importer):
    make, run, out = importer
    before = _snapshot(out)
    with pytest.raises(InputError, match="no records found in"):
        run(make(0), out, force=True)
    assert _snapshot(out) == before


def test_import_without_records_creates_no_folder(tmp_path):
    with pytest.raises(InputError, match="no records found in"):
        import_conll(_conll(tmp_path, 0), tmp_path / "new" / "out")
    assert not (tmp_path / "new").exists()


# --------------------------------------------------------------------------------------------- write failures


def _schema_is_a_folder(out, monkeypatch):
    (out / "schema.yaml").unlink()
    (out / "schema.yaml").mkdir()
    (out / "schema.yaml" / "keep.txt").write_text("x", encoding="utf-8")


def _disk_full_while_writing_the_schema(out, monkeypatch):
    def full(schema, handle):
        handle.write("name: half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(_corpus, "dump_schema", full)


def _report_cannot_be_renamed(out, monkeypatch):
    real = os.replace

    def replace(src, dst, **kwargs):
        if os.fspath(dst).endswith("import-report.json"):
            raise OSError(errno.EACCES, os.strerror(errno.EACCES))
        return real(src, dst, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize(("break_it", "message"), [
    (_schema_is_a_folder, r"out/schema\.yaml: is a folder, not a file; nothing was replaced"),
    (_disk_full_while_writing_the_schema, r"out/schema\.yaml: cannot write \(No space left on device\); nothing was replaced"),
    (_report_cannot_be_renamed, r"out/import-report\.json: cannot replace \(Permission denied\); the earlier files were put back"),
])
def test_a_failed_write_leaves_the_earlier_files_and_no_temporary_file(importer, monkeypatch, break_it, message):
    make, run, out = importer
    break_it(out, monkeypatch)
    before = _snapshot(out)
    with pytest.raises(OutputError, match=message):
        run(make(3), out)  # 3 records: new bytes in every file, so a file left replaced would show
    assert _snapshot(out) == before  # same names (no .tmp / .old left) and the same bytes


def test_a_failed_rename_removes_files_that_did_not_exist_before(tmp_path, monkeypatch):
    out = tmp_path / "out"
    _report_cannot_be_renamed(out, monkeypatch)
    with pytest.raises(OutputError, match=r"import-report\.json: cannot replace"):
        import_crossre(_crossre(tmp_path, 1), out)
    assert list(out.iterdir()) == []


# --------------------------------------------------------------------------------------------- write_corpus


DOC = LabelledDoc(id="d1", text="Paris", entities=[Entity(id="e1", start=0, end=5, label="LOC")])
SCHEMA = {"name": "t", "version": 1, "entities": [{"name": "LOC", "colour": "#e6194b"}], "relations": []}


def test_write_corpus_writes_the_three_files_with_the_old_modes(tmp_path):
    out = tmp_path / "out"
    write_corpus(out, [DOC], SCHEMA, {"documents": 1})
    (out / "labelled.jsonl").chmod(0o640)
    write_corpus(out, [DOC], SCHEMA, {"documents": 1, "é": "ü"})
    assert sorted(_snapshot(out)) == list(FILES)
    assert [d.id for d in read_docs(out / "labelled.jsonl")] == ["d1"]
    assert (out / "import-report.json").read_text(encoding="utf-8") == '{\n  "documents": 1,\n  "é": "ü"\n}\n'
    assert (out / "schema.yaml").read_text(encoding="utf-8").startswith("name: t\nversion: 1\n")
    assert (out / "labelled.jsonl").stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize(("records", "report", "error", "message"), [
    ([], {}, InputError, r"no records to write to .*labelled\.jsonl"),
    ([DOC], {"bad": object()}, TypeError, "not JSON serializable"),  # fails while writing the third file
])
def test_write_corpus_failure_keeps_the_earlier_files(tmp_path, records, report, error, message):
    out = tmp_path / "out"
    write_corpus(out, [DOC, DOC], SCHEMA, {"documents": 2})
    before = _snapshot(out)
    with pytest.raises(error, match=message):
        write_corpus(out, records, SCHEMA, report, force=True)
    assert _snapshot(out) == before


def test_count_records_ignores_blank_lines(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"id": 1}\n\n  \n{"id": 2}', encoding="utf-8")
    assert count_records(path) == 2
