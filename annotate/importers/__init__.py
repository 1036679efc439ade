"""Importers: other corpora -> our records (see ``annotate import --help``).

One module per format; each exposes one function ``import_<format>(path, out) -> dict`` that writes
``labelled.jsonl`` (records), a schema file for the corpus's labels and an import report, and returns the
report.
"""
