"""Importers: other corpora -> our records (see ``annotate import --help``).

One module per format. Each has a reader ``read_<format>(path) -> (records, report)`` (``read_re3d``,
``read_crossre``, ``read_crossner``) that raises :class:`~annotate.errors.InputError` on data it would
otherwise change silently, and an entry point ``import_<format>(path, out, *, force=False) -> dict`` that
writes ``labelled.jsonl`` (records), a schema file for the corpus's labels and an import report through
:func:`annotate.importers._corpus.write_corpus` (all three or none; an earlier corpus with more records is
kept unless ``force``) and returns the report. ``markup`` is the project's own format (see its module).
"""
