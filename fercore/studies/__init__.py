"""The research questions' analyses, one module per question, called by the thesis notebooks.

* :mod:`.data`: the test sets (every real set and the synthetic one), their class sets and the
  duplicate policy; the training faces.
* :mod:`.regimes`: the models a run compares (B0, B2, ...) and their training regimes (trained on
  real faces, fine-tuned on synthetic, trained on synthetic only), found by name in the run folder.
* :mod:`.scoring`: every model on every test set, from the run's one inference pass per
  (model, set) (:mod:`fercore.inference`), and on the synthetic faces matched to each real set.
* :mod:`.session`: a chapter's set-up (:class:`Study`) and the two arms of every real-vs-synthetic
  comparison (``RAW``: the faces as they come; ``MATCHED``: synthetic faces in the real set's format).
* :mod:`.labelcheck`: whether a person checked the synthetic labels (a line in every chapter), and with a filled
  label sheet the prompt-person agreement and the scores on confirmed faces.
* :mod:`.nullarm`: the null arm, real faces no model saw sent down the synthetic faces' path (composed into grids,
  extracted, matched), built once per run folder; :mod:`.rq1_null` RQ1's excess over it, :mod:`.rq3_null` RQ3's and
  :mod:`.rq4_null` RQ4's tables beside it (and on the faces whose label a person confirmed).
* :mod:`.grid_sets`: which synthetic grids RQ3 and RQ4 explain or embed per regime (every grid for a model that never
  saw synthetic faces, the test grids for the others) and the null arm's faces beside them.
* :mod:`.parameters`: the notebook parameters all four chapters share, declared once.
* :mod:`.rq1` real-trained models on synthetic faces; :mod:`.rq2` fine-tuning on synthetic
  faces and the synthetic-only regime; :mod:`.gender` the gender-split study; :mod:`.rq3`
  class activation maps in each face's landmark regions, per emotion; :mod:`.rq4` embeddings and the domain gap.

Each returns typed results (dataclasses); ``*_table`` functions turn them into tables for
display only, and ``findings`` functions state computed facts. The interpretation a thesis
author writes lives in the notebooks, with the numbers glued in (:func:`glue_numbers`).
"""

from __future__ import annotations

from fercore.studies import (
    data,
    gender,
    grid_sets,
    labelcheck,
    nullarm,
    parameters,
    regimes,
    rq1,
    rq1_null,
    rq2,
    rq3,
    rq3_null,
    rq4,
    rq4_null,
    scoring,
)
from fercore.studies.common import glue_numbers, slug
from fercore.studies.session import MATCHED, RAW, Arms, Study, open_study

__all__ = [
    "MATCHED",
    "RAW",
    "Arms",
    "Study",
    "data",
    "gender",
    "glue_numbers",
    "grid_sets",
    "labelcheck",
    "nullarm",
    "open_study",
    "parameters",
    "regimes",
    "rq1",
    "rq1_null",
    "rq2",
    "rq3",
    "rq3_null",
    "rq4",
    "rq4_null",
    "scoring",
    "slug",
]
