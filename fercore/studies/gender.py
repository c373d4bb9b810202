"""The gender-split study (RQ2's second part): train on all synthetic faces of one gender plus p%
of the other's, test on each gender's synthetic test faces (:func:`fercore.experiments.run_gender_splits`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .common import frame, pct


@dataclass(frozen=True)
class GenderPoint:
    """One training run of the study scored on one test part."""

    base: str  # the gender whose training faces are all used
    percent: float  # % of the other gender's training faces added
    n_train: int
    test_on: str  # a gender, or "all"
    n_test: int
    accuracy: float
    macro_f1: float


def run(config, train_faces: pd.DataFrame, test_faces: pd.DataFrame, percents: Sequence[float], out: str | Path) -> list[GenderPoint]:
    """Train and score every (base gender, percent) run; resumable (see ``run_gender_splits``)."""
    from ..experiments import run_gender_splits

    table = run_gender_splits(config, train_faces, test_faces, percents, out=out)
    return [GenderPoint(str(r.base), float(r.percent), int(r.n_train), str(r.test_on), int(r.n_test), float(r.accuracy),
                        float(r.macro_f1)) for r in table.itertuples()]


TITLES = {"base": "base gender", "percent": "% other added", "n_train": "training faces", "test_on": "tested on",
          "n_test": "test faces", "accuracy": "accuracy", "macro_f1": "macro-F1"}


def table(points: list[GenderPoint]) -> pd.DataFrame:
    return frame(points, TITLES)


def findings(points: list[GenderPoint]) -> list[str]:
    """Per base gender: accuracy on its own and on the other gender's faces at the lowest and the highest share."""
    out = []
    for base in sorted({p.base for p in points}):
        mine = [p for p in points if p.base == base]
        other = next(p.test_on for p in mine if p.test_on not in (base, "all"))
        lo, hi = min(p.percent for p in mine), max(p.percent for p in mine)

        def acc(test_on: str, percent: float) -> float:
            return next(p.accuracy for p in mine if p.test_on == test_on and p.percent == percent)

        size = {p.percent: p.n_train for p in mine}
        out.append(f"Trained on {base} faces plus {lo:.0f}% of the {other} ones ({size[lo]} faces): {pct(acc(base, lo))} on {base}, "
                   f"{pct(acc(other, lo))} on {other} test faces; with {hi:.0f}% ({size[hi]} faces) the {other} accuracy is "
                   f"{pct(acc(other, hi))}.")
    return out
