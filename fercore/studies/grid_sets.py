"""Which synthetic grids RQ3 and RQ4 explain or embed for each model, and the null arm's faces beside them.

* **Every grid a model never trained on** (issue 30, item 5): a model that never saw synthetic faces (regime
  *trained on real*, or the real-faces control) is explained and embedded on every synthetic grid, the training split's
  and the test split's alike (the pooled set RQ1 scores, ``synthetic_scored_splits``); a model trained on synthetic faces
  (fine-tuned, synthetic only) on the test split only (the set RQ2 scores). Each result names the grids it used
  (:data:`TEST_GRIDS`, :data:`ALL_GRIDS`).
* **The null arm** (item 2): real faces no evaluated model trained or selected on, composed into grids in the
  synthetic set's layout and extracted by the same path (:mod:`fercore.studies.nullarm`). RQ3 and RQ4 take it
  as :class:`NullFaces` (its ``faces`` table with ``domain == "null arm"`` and a ``source`` grid per face, or None and
  the ``reason`` the arm is off) and compare real with null beside real with synthetic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from fercore.core.labels import CLASSES
from fercore.inference import ImageTransform, Inference, InferenceCache
from fercore.models import Classifier
from fercore.studies.data import NULL_ARM, TestSets, test_sets
from fercore.studies.regimes import CONTROL, REAL
from fercore.studies.session import MATCHED, Arms, Study

#: The grids a row used: the synthetic test split only, or every split (a model that never saw synthetic faces).
TEST_GRIDS, ALL_GRIDS = "test grids", "test + train grids"
#: The null arm's ``domain`` value.
NULL = NULL_ARM
#: The regimes whose models never saw a synthetic face: explained and embedded on every synthetic grid.
NEVER_SYNTHETIC: tuple[str, ...] = (REAL, CONTROL)


class NullFaces(Protocol):
    """What RQ3 and RQ4 read of the null arm (:class:`fercore.studies.nullarm.NullArm`)."""

    faces: pd.DataFrame | None  # path, label, emotion, source (null grid), domain == dataset == "null arm"; None: off
    reason: str  # "" when built, else why the arm is off or refused
    grids: int


def null_faces(null: NullFaces | None) -> pd.DataFrame | None:
    """The null arm's faces with ``domain`` and ``dataset`` = :data:`NULL` (None when the arm is off or empty)."""
    if null is None or null.faces is None or not len(null.faces):
        return None
    faces = null.faces.assign(domain=NULL, dataset=NULL).reset_index(drop=True)
    if "label" not in faces.columns and "emotion" in faces.columns:  # a sample table names each class twice: index and name
        faces["label"] = [CLASSES.index(e) for e in faces["emotion"]]
    if "emotion" not in faces.columns and "label" in faces.columns:
        faces["emotion"] = [CLASSES[int(i)] for i in faces["label"]]
    return faces


def null_transform(arms: Arms, real_set: str, arm: str) -> ImageTransform | None:
    """The null arm's faces' transform in ``arm``: None as they come; matched, the transform measured from the null faces'
    own format to ``real_set``'s where the arms hold one (``Arms.null_transforms``, when the null set was among the sets
    measured), else the synthetic faces' (the null faces come down the same path)."""
    measured = getattr(arms, "null_transforms", None) or {}
    if arm == MATCHED and real_set in measured:
        return measured[real_set]
    return arms.transform(real_set, arm)


def null_line(null: NullFaces | None) -> str:
    """One line for the chapter: the null arm's own (``line()``, as every chapter of the run prints it) or what it holds,
    or why it is off."""
    if null is not None and callable(getattr(null, "line", None)):
        return str(null.line())
    if null_faces(null) is None:
        why = (null.reason if null is not None else "") or "no null faces were given"
        return f"The null arm is off in this run: {why}. The tables compare real with synthetic faces only; no excess over the null is computed."
    faces = null_faces(null)
    return (f"The null arm holds {len(faces)} real faces that no evaluated model trained or selected on, composed into "
            f"{int(faces['source'].nunique())} grids in the synthetic set's layout and extracted by the same path.")


@dataclass(frozen=True)
class SyntheticGrids:
    """The synthetic faces each regime is explained or embedded on: the test split's, and every scored split's pooled
    (``every``: train and test, each face keeping its ``split``, as RQ1 scores them) for the models that never saw a
    synthetic face (:data:`NEVER_SYNTHETIC`); ``every`` None: the test split for all."""

    test: pd.DataFrame
    every: pd.DataFrame | None = None

    def used(self, regime: str) -> str:
        """:data:`ALL_GRIDS` for a model that never saw synthetic faces (when more than the test split is scored), else :data:`TEST_GRIDS`."""
        return ALL_GRIDS if regime in NEVER_SYNTHETIC and self.every is not None else TEST_GRIDS

    def faces(self, regime: str) -> pd.DataFrame:
        """The synthetic faces ``regime``'s models are explained or embedded on (:meth:`used`)."""
        chosen = self.every if self.used(regime) == ALL_GRIDS else self.test
        return chosen.reset_index(drop=True)

    def inference(self, run: InferenceCache, model: Classifier, regime: str) -> Inference:
        """The run's pass over :meth:`faces` (the same sample table as RQ1's or RQ2's pass, so it is read from the cache)."""
        return run(model, self.faces(regime))


def study_grids(study: Study, sets: TestSets, *, test_split: str = "test", max_per_class: int | None = None) -> SyntheticGrids:
    """The chapter's :class:`SyntheticGrids`: ``sets``' synthetic faces (``synthetic_scored_splits``: every grid, as RQ1
    scores them) for the models that never saw synthetic faces, and the ``test_split`` faces alone (as RQ2 scores them, at
    most ``max_per_class`` per emotion, seeded; recorded in the chapter's provenance as ``synthetic test``) for the others."""
    scored = sets["synthetic"]
    splits = set(scored["split"].astype(str)) if "split" in scored.columns else {test_split}
    if splits <= {test_split}:
        return SyntheticGrids(scored)
    test = test_sets({}, study.synthetic_root, synthetic_split=test_split, max_per_class=max_per_class, seed=study.seed)["synthetic"]
    study.record_samples({"synthetic test": test})
    return SyntheticGrids(test, scored)


def real_trained(networks: Mapping[tuple[str, str], Classifier]) -> dict[str, Classifier]:
    """``{model: classifier}`` of the models as given (trained on real faces), e.g. for the null arm's check of what they saw."""
    return {name: model for (name, regime), model in networks.items() if regime == REAL}

