"""spaCy components of the toolkit, registered on import (and through entry points, see pyproject.toml).

* factory ``relation_extractor`` (:mod:`.relation_extractor`); factory ``label_filter`` (:mod:`.label_filter`);
* architectures ``annotate.RelationModel.v1``/``.v2``/``.v3`` and the tutorial-style ``annotate.RelationBaseline.v1``
  (:mod:`.relation_model`);
* scorer ``annotate.relation_scorer.v1`` (:mod:`.scorer`);
* misc ``annotate.tokenizer_tweaks.v1`` (:mod:`annotate.docbin`), for ``[initialize.before_init]``.
"""

from __future__ import annotations

from ..docbin import make_tokenizer_tweaks
from .label_filter import LabelFilter, make_label_filter
from .relation_extractor import RelationExtractor, make_relation_extractor
from .relation_model import (
    build_relation_baseline,
    build_relation_model,
    build_relation_model_v2,
)
from .scorer import make_relation_scorer, score_relations

__all__ = [
    "LabelFilter",
    "RelationExtractor",
    "build_relation_baseline",
    "build_relation_model",
    "build_relation_model_v2",
    "make_label_filter",
    "make_relation_extractor",
    "make_relation_scorer",
    "make_tokenizer_tweaks",
    "score_relations",
]
