"""Which synthetic grids RQ3 and RQ4 explain or embed for each model, and the null arm's faces beside them.

* **Every grid a model never trained on** (issue 30, item 5): a model that never saw synthetic faces (regime
  *trained on real*) is explained and embedded on every synthetic grid, the training split's and the test split's
  alike; a model trained on synthetic faces (fine-tuned, synthetic only) on the test split only. Each result names
  the grids it used (:data:`TEST_GRIDS`, :data:`ALL_GRIDS`).
* **The null arm** (item 2): real faces no evaluated model trained or selected on, composed into grids in the
  synthetic set's layout and extracted by the same path (:mod:`fercore.studies.nullarm`). RQ3 and RQ4 take it
  as :class:`NullFaces` (its ``faces`` table with ``domain == "null"`` and a ``source`` grid per face, or None and
  the ``reason`` the arm is off) and compare real with null beside real with synthetic.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pandas as pd

from fercore.core.labels import CLASSES
from fercore.inference import ImageTransform, Inference, InferenceCache
from fercore.models import Classifier
from fercore.studies.data import TestSets, training_faces
from fercore.studies.regimes import REAL
from fercore.studies.session import MATCHED, Arms, Study

log = logging.getLogger(__name__)

#: The grids a row used: the synthetic test split only, or every split (a model that never saw synthetic faces).
TEST_GRIDS, ALL_GRIDS = "test grids", "test + train grids"
#: The null arm's ``domain`` value.
NULL = "null"


class NullFaces(Protocol):
    """What RQ3 and RQ4 read of the null arm (:class:`fercore.studies.nullarm.NullArm`)."""

    faces: pd.DataFrame | None  # path, label, emotion, source (null grid), domain == "null", dataset == "null"; None: off
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
    """The synthetic test faces and, where the run has one, the synthetic training split's faces."""

    test: pd.DataFrame
    train: pd.DataFrame | None = None

    def used(self, regime: str) -> str:
        """:data:`ALL_GRIDS` for a model that never saw synthetic faces (when a training split exists), else :data:`TEST_GRIDS`."""
        return ALL_GRIDS if regime == REAL and self.train is not None and len(self.train) else TEST_GRIDS

    def faces(self, regime: str) -> pd.DataFrame:
        """The synthetic faces ``regime``'s models are explained or embedded on (:meth:`used`)."""
        if self.used(regime) == TEST_GRIDS:
            return self.test.reset_index(drop=True)
        return pd.concat([self.test, self.train], ignore_index=True)

    def inference(self, run: InferenceCache, model: Classifier, regime: str) -> Inference:
        """The run's passes over :meth:`faces` in that order: the test set's pass (shared with RQ1) and the training split's."""
        if self.used(regime) == TEST_GRIDS:
            return run(model, self.test)
        return Inference.join([run(model, self.test), run(model, self.train)])

    def sets(self, sets: TestSets, regime: str) -> TestSets:
        """``sets`` with its synthetic set replaced by :meth:`faces`."""
        return TestSets({**sets, "synthetic": self.faces(regime)}, sets.classes, sets.duplicates)


def synthetic_grids(sets: TestSets, synthetic_root: str | Path, *, split: str = "train", max_per_class: int | None = None,
                    seed: int = 0) -> SyntheticGrids:
    """The test set's synthetic faces and the ``split`` faces (at most ``max_per_class`` per emotion, seeded), for the
    models that never saw synthetic faces; without such a split only the test faces (logged)."""
    try:
        train = training_faces(synthetic_root, split, max_per_class, seed=seed)
    except (ValueError, FileNotFoundError) as error:
        log.info("no synthetic %s split (%s): every model uses the synthetic test grids only", split, error)
        train = None
    if train is not None:
        train = train.assign(domain="synthetic", dataset="synthetic")
        train = train[~train["path"].astype(str).isin(set(sets["synthetic"]["path"].astype(str)))].reset_index(drop=True)
    return SyntheticGrids(sets["synthetic"], train if train is not None and len(train) else None)


def study_grids(study: Study, sets: TestSets, *, max_per_class: int | None = None) -> SyntheticGrids:
    """:func:`synthetic_grids` of the chapter's run (its synthetic root and seed), the training split's faces recorded in the
    chapter's provenance as ``synthetic train``."""
    grids = synthetic_grids(sets, study.synthetic_root, max_per_class=max_per_class, seed=study.seed)
    if grids.train is not None:
        study.record_samples({"synthetic train": grids.train})
    return grids


def real_trained(networks: Mapping[tuple[str, str], Classifier]) -> dict[str, Classifier]:
    """``{model: classifier}`` of the models as given (trained on real faces), e.g. for the null arm's check of what they saw."""
    return {name: model for (name, regime), model in networks.items() if regime == REAL}

