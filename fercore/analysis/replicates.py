"""The replicate-mean contrast: the effect of a training procedure run several times (seeds and draws of training
grids), not of one checkpoint.

Each arm is a list of replicate runs scored on the same test faces (a fixed model, e.g. the original before
fine-tuning, is an arm of one run). The estimate is the difference of the arms' replicate-mean balanced accuracies,
which equals the balanced contrast of each face's replicate-averaged answer (``plus`` mean minus ``minus`` mean).
Its variance has two parts:

* **replicate-to-replicate**: for each arm with R >= 2 runs, the between-replicate variance of its runs' balanced
  accuracies over R (R - 1 degrees of freedom); the seed and the grid draw live here;
* **test sampling**: the CR2 variance (:func:`fercore.analysis.clustered.linear_contrast`; a synthetic face's grid
  its cluster, a real face its own) of the replicate-averaged per-face contrast, with its Satterthwaite df.

The interval is Student t with Welch-Satterthwaite df pooled over the parts. The face-by-replicate part of the test
noise enters both parts, so the interval is a little conservative (the harness's ``replicate-mean-r3`` /
``replicate-mean-r5`` show how much). With R runs the replicate part has only R - 1 df: at R = 3, when it dominates,
the 95 % t quantile is 4.30 (at R = 5 it is 2.78, against 1.96 for many replicates). With one run per arm the
interval covers the test faces only (``replicated`` False): it says nothing about another seed or draw.
The estimand is conditional on the training grids at hand: the variation from generating a new set of grids is
not in the interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from fercore.analysis.clustered import linear_contrast


@dataclass(frozen=True)
class ReplicateContrast:
    """Replicate-mean contrast of balanced accuracy (plus arm minus minus arm) with its 95 % interval."""

    estimate: float
    se: float
    df: float
    low: float
    high: float
    p_value: float
    replicates: tuple[int, int]  # runs in the plus and the minus arm
    between_var: float  # the replicate-to-replicate part of the variance (sum over arms of s^2 / R)
    test_var: float  # the test-sampling part (CR2)
    per_replicate: tuple[float, ...]  # each plus run's balanced accuracy minus the minus arm's mean
    replicated: bool  # some arm has two or more runs: the interval includes replicate variance

    @property
    def t_quantile(self) -> float:
        """The 95 % t quantile the interval used (how much wider than 1.96 few replicates make it)."""
        return float(stats.t.ppf(0.975, self.df)) if np.isfinite(self.df) else float("nan")


def combine(estimate: np.ndarray, test_var: np.ndarray, test_df: np.ndarray, arm_vars: Sequence[np.ndarray],
            arm_runs: Sequence[int], *, level: float = 0.95) -> dict[str, np.ndarray]:
    """Vectorised core: ``arm_vars`` the between-replicate sample variances of each arm's balanced accuracy (runs
    ``arm_runs``; an arm of one run adds nothing). Returns ``estimate, se, df, low, high, p_value, between``."""
    parts = [np.asarray(v, dtype=np.float64) / r for v, r in zip(arm_vars, arm_runs, strict=True) if r >= 2]
    between = np.sum(parts, axis=0) if parts else np.zeros_like(np.asarray(test_var, dtype=np.float64))
    var = between + test_var
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = np.where(test_var > 0, np.asarray(test_var) ** 2 / test_df, 0.0)
        for part, r in zip(parts, [r for r in arm_runs if r >= 2], strict=True):
            denom = denom + part ** 2 / (r - 1)
        df = np.where(denom > 0, var ** 2 / denom, np.nan)
        se = np.sqrt(var)
        t = np.asarray(estimate) / se
        p = np.where(se > 0, 2 * stats.t.sf(np.abs(t), df), np.where(np.asarray(estimate) == 0, 1.0, 0.0))
        half = np.where(se > 0, stats.t.ppf(0.5 + level / 2, df) * se, 0.0)  # no spread at all: a point interval
    return {"estimate": np.asarray(estimate, dtype=np.float64), "se": se, "df": df, "low": estimate - half,
            "high": estimate + half, "p_value": p, "between": between}


def _balanced(values: np.ndarray, cells: np.ndarray, k: int) -> float:
    return float(np.mean([values[cells == c].mean() for c in range(k)]))


def replicate_contrast(y: np.ndarray, groups: np.ndarray, plus: Sequence[np.ndarray], minus: Sequence[np.ndarray],
                       *, level: float = 0.95) -> ReplicateContrast:
    """The replicate-mean contrast on one test set: ``y`` each face's true class, ``groups`` its cluster, ``plus`` and
    ``minus`` one right/wrong array per run of each arm (same faces, same order). Classes of ``y`` are averaged with
    equal weight (balanced accuracy)."""
    y = np.asarray(y)
    if not len(plus) or not len(minus):
        raise ValueError("each arm needs at least one run")
    if any(len(np.asarray(r)) != len(y) for r in (*plus, *minus)):
        raise ValueError("every run must answer the same faces, in the same order, as y")
    present, cells = np.unique(y, return_inverse=True)
    k = len(present)
    plus_m = np.array([np.asarray(r, dtype=np.float64) for r in plus])
    minus_m = np.array([np.asarray(r, dtype=np.float64) for r in minus])
    per_face = plus_m.mean(0) - minus_m.mean(0)
    test = linear_contrast(per_face, cells, np.asarray(groups), np.full(k, 1.0 / k), level=level)
    scores = [[_balanced(run, cells, k) for run in arm] for arm in (plus_m, minus_m)]
    arm_vars = [np.var(s, ddof=1) if len(s) >= 2 else 0.0 for s in scores]
    r = combine(np.float64(test.estimate), np.float64(test.se ** 2), np.float64(test.df), arm_vars, [len(plus), len(minus)],
                level=level)
    minus_mean = float(np.mean(scores[1]))
    return ReplicateContrast(float(r["estimate"]), float(r["se"]), float(r["df"]), float(r["low"]), float(r["high"]),
                             float(r["p_value"]), (len(plus), len(minus)), float(r["between"]), float(test.se ** 2),
                             tuple(s - minus_mean for s in scores[0]), len(plus) >= 2 or len(minus) >= 2)
