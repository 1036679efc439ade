"""``label_filter``: keep only the entity labels the pipeline was trained on.

A NER sourced from a base pipeline (en_core_web_md's, trained on OntoNotes) keeps its old labels (NORP,
CARDINAL, ...) next to ours: training on our data teaches it not to predict them, but nothing removes them, and
an occasional stray one would reach pre-annotations and schema validation. This component, placed right after
``ner``, drops every entity whose label is not in its list. The list is filled at initialisation from the gold
entities of the training examples (or given as ``labels`` in the config) and saved with the pipeline.
"""


from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import srsly
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import ensure_path

CFG_FILE = "cfg"


@Language.factory("label_filter", assigns=["doc.ents"], default_config={"labels": None})
def make_label_filter(nlp: Language, name: str, labels: list[str] | None) -> "LabelFilter":
    return LabelFilter(name, labels)


class LabelFilter:
    def __init__(self, name: str, labels: Iterable[str] | None = None) -> None:
        self.name = name
        self.labels: list[str] = sorted(labels or [])

    def initialize(self, get_examples: Callable[[], Iterable[Example]], *, nlp: Language | None = None,
                   labels: Iterable[str] | None = None) -> None:
        if labels is not None:
            self.labels = sorted(labels)
        elif not self.labels:
            self.labels = sorted({ent.label_ for eg in get_examples() for ent in eg.reference.ents})

    def __call__(self, doc: Doc) -> Doc:
        if self.labels:
            keep = set(self.labels)
            doc.ents = [ent for ent in doc.ents if ent.label_ in keep]
        return doc

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        path = ensure_path(path)
        path.mkdir(parents=True, exist_ok=True)
        srsly.write_json(path / CFG_FILE, {"labels": self.labels})

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> "LabelFilter":
        cfg: dict[str, Any] = srsly.read_json(ensure_path(path) / CFG_FILE)
        self.labels = list(cfg.get("labels") or [])
        return self
