"""Calibration harness for RQ3's and RQ4's tests: false-positive rate and interval coverage under a
true null, at the thesis's scale (1, 2, 4 and 8 synthetic grids per class).

Generating models (fixed seed; every cell its own stream):

* **region shares** (RQ3): one region's share of a map, ``0.2 + u_g + e`` on a synthetic face of grid
  ``g`` (``u_g ~ N(0, icc * s^2)``, ``e ~ N(0, (1 - icc) * s^2)``, ``s = 0.08``), ``0.2 + e'`` on a
  real face (``e' ~ N(0, s^2)``): the domains share their mean and total variance; synthetic faces
  cluster by grid with intra-class correlation ``icc``;
* **embeddings** (RQ4): ``classes`` classes with means ``mu_c ~ N(0, 1.5^2 I)`` in ``dims`` dimensions;
  a real face ``mu_c + e`` (``e ~ N(0, I)``), a synthetic face ``mu_c + b_g + e`` with a grid-level
  offset ``b_g ~ N(0, icc I)`` and ``e ~ N(0, (1 - icc) I)``: the same distribution per face, clustered.

Procedures: the chapters' tests (Welch t on grid means, the pair-swap MMD and probe, the centroid
interval) and the old face-level ones (Mann-Whitney on faces, the face-permutation MMD), which the
harness must flag. Each cell gives the rejection rate at alpha and the coverage of the 95 % interval
(where the procedure has one), each with its Monte-Carlo standard error ``sqrt(p (1 - p) / reps)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

from fercore.analysis.domain_tests import balanced_design, centroid_distance, mmd_grid_test, probe_grid_test
from fercore.analysis.grid_level import welch_cluster_means

__all__ = ["Cell", "EMBEDDING_PROCEDURES", "REGION_PROCEDURES", "calibrate", "embedding_cell", "region_cell", "table"]

FACES, SHARE_SD, SHARE_MEAN = 36, 0.08, 0.2


@dataclass(frozen=True)
class Cell:
    """One procedure at one design: rejection rate under the null and interval coverage, with MC SEs."""

    procedure: str
    grids: int  # synthetic grids per class
    icc: float
    real: int  # real faces per class
    reps: int
    fpr: float
    fpr_se: float
    coverage: float  # NaN: no interval
    coverage_se: float


def _cell(procedure: str, grids: int, icc: float, real: int, rejected: np.ndarray, covered: np.ndarray | None) -> Cell:
    reps = len(rejected)
    fpr = float(np.mean(rejected))
    cov = float(np.mean(covered)) if covered is not None else np.nan
    return Cell(procedure, grids, icc, real, reps, fpr, float(np.sqrt(fpr * (1 - fpr) / reps)), cov,
                float(np.sqrt(cov * (1 - cov) / reps)) if covered is not None else np.nan)


def _region_data(rng: np.random.Generator, reps: int, grids: int, icc: float, real: int) -> tuple[np.ndarray, np.ndarray]:
    """(real shares reps x real, synthetic shares reps x grids x FACES) under the null."""
    real_values = SHARE_MEAN + rng.normal(0, SHARE_SD, (reps, real))
    offsets = rng.normal(0, SHARE_SD * np.sqrt(icc), (reps, grids, 1))
    return real_values, SHARE_MEAN + offsets + rng.normal(0, SHARE_SD * np.sqrt(1 - icc), (reps, grids, FACES))


def _welch_grid(real: np.ndarray, synthetic: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    out = welch_cluster_means(real[..., None], synthetic.mean(-1)[..., None], axis=1, alpha=alpha)
    p, low, high = out["p_value"][:, 0], out["low"][:, 0], out["high"][:, 0]
    return np.nan_to_num(p, nan=1.0) < alpha, (low <= 0) & (0 <= high)


def _mann_whitney_faces(real: np.ndarray, synthetic: np.ndarray, alpha: float) -> tuple[np.ndarray, None]:
    p = stats.mannwhitneyu(real, synthetic.reshape(len(synthetic), -1), axis=1, alternative="two-sided").pvalue
    return p < alpha, None


REGION_PROCEDURES: dict[str, Callable] = {"RQ3 Welch t on grid means": _welch_grid,
                                          "RQ3 old: Mann-Whitney on faces": _mann_whitney_faces}


def region_cell(procedure: str, grids: int, icc: float, real: int = 100, reps: int = 1000, *, alpha: float = 0.05,
                seed: int = 0) -> Cell:
    """One RQ3 cell (vectorised over repetitions)."""
    rng = np.random.default_rng([seed, grids, int(icc * 1000), real, 3])
    rejected, covered = REGION_PROCEDURES[procedure](*_region_data(rng, reps, grids, icc, real), alpha)
    return _cell(procedure, grids, icc, real, rejected, covered)


def _embedding_data(rng: np.random.Generator, grids: int, icc: float, real: int, classes: int, dims: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(features, synthetic?, class, group) of one simulated data set under the null."""
    feats, syn, klass, group = [], [], [], []
    for c in range(classes):
        mu = rng.normal(0, 1.5, dims)
        feats.append(mu + rng.normal(size=(real, dims)))
        syn.append(np.zeros(real, bool))
        klass.append(np.full(real, c))
        group.append(np.full(real, -1))
        for g in range(grids):
            feats.append(mu + rng.normal(0, np.sqrt(icc), dims) + rng.normal(0, np.sqrt(1 - icc), (FACES, dims)))
            syn.append(np.ones(FACES, bool))
            klass.append(np.full(FACES, c))
            group.append(np.full(FACES, c * 100 + g))
    return np.concatenate(feats), np.concatenate(syn), np.concatenate(klass), np.concatenate(group)


def _face_permutation_mmd(feats: np.ndarray, synthetic: np.ndarray, rng: np.random.Generator, permutations: int = 200) -> float:
    """The old test (``explain.embeddings.mmd_test``'s scheme): unbiased MMD on every face, faces permuted one by one."""
    sq = (feats * feats).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * feats @ feats.T, 0.0)
    k = np.exp(-d2 / np.median(d2[np.triu_indices(len(feats), 1)]))
    np.fill_diagonal(k, 0.0)
    n, m = int(synthetic.sum()), int((~synthetic).sum())
    z = np.vstack([synthetic, [rng.permutation(synthetic) for _ in range(permutations)]]).astype(np.float64)
    rows = k.sum(1)
    zkz = ((z @ k) * z).sum(1)
    cross = z @ rows - zkz
    other = k.sum() - 2 * z @ rows + zkz
    stat = zkz / (n * (n - 1)) + other / (m * (m - 1)) - 2 * cross / (n * m)
    return float((stat >= stat[0]).sum() / len(stat))


def _centroid_covers(feats, syn, klass, group) -> bool:
    """Whether class 0's bias-corrected squared-distance interval holds the true value 0."""
    real, mine = ~syn & (klass == 0), syn & (klass == 0)
    result = centroid_distance(feats[real], feats[mine], group[mine], n_boot=200)
    return bool(result["low"] <= 0 <= result["high"]) if np.isfinite(result["low"]) else False


EMBEDDING_PROCEDURES = ("RQ4 MMD, grid-pair swaps", "RQ4 probe, grid-pair swaps", "RQ4 centroid distance interval",
                        "RQ4 old: MMD, face permutation")


def embedding_cell(procedure: str, grids: int, icc: float, real: int = 100, reps: int = 200, *, classes: int = 4, dims: int = 8,
                   alpha: float = 0.05, seed: int = 0) -> Cell:
    """One RQ4 cell (a loop over repetitions; each test is vectorised over its labellings)."""
    rng = np.random.default_rng([seed, grids, int(icc * 1000), real, 4])
    rejected, covered = np.zeros(reps, bool), np.zeros(reps, bool)
    for r in range(reps):
        feats, syn, klass, group = _embedding_data(rng, grids, icc, real, classes, dims)
        if procedure == "RQ4 centroid distance interval":
            covered[r] = _centroid_covers(feats, syn, klass, group)
            continue
        if "old" in procedure:
            rejected[r] = _face_permutation_mmd(feats, syn, rng) < alpha
            continue
        design = balanced_design(syn, klass, group, seed=r)
        if procedure == "RQ4 MMD, grid-pair swaps":
            rejected[r] = mmd_grid_test(feats, design, seed=r)["p_value"] < alpha
        elif procedure == "RQ4 probe, grid-pair swaps":
            rejected[r] = probe_grid_test(feats, design, seed=r, draws=99)["p_value"] < alpha
        else:
            raise ValueError(f"unknown procedure {procedure!r}; one of {EMBEDDING_PROCEDURES}")
    if procedure == "RQ4 centroid distance interval":
        return _cell(procedure, grids, icc, real, ~covered, covered)
    return _cell(procedure, grids, icc, real, rejected, None)


def calibrate(grids: Sequence[int] = (1, 2, 4, 8), iccs: Sequence[float] = (0.05, 0.2), reals: Sequence[int] = (100,), *,
              region_reps: int = 1000, embedding_reps: int = 200, old_reps: int = 40, seed: int = 0) -> list[Cell]:
    """Every procedure at every design (the old face-level procedures with ``old_reps``)."""
    cells = []
    for icc in iccs:
        for real in reals:
            for g in grids:
                cells += [region_cell(p, g, icc, real, region_reps, seed=seed) for p in REGION_PROCEDURES]
                cells += [embedding_cell(p, g, icc, real, old_reps if "old" in p else embedding_reps, seed=seed)
                          for p in EMBEDDING_PROCEDURES]
    return cells


def table(cells: Sequence[Cell]) -> pd.DataFrame:
    """The cells as a table (one row each), rates in percent."""
    frame = pd.DataFrame([asdict(c) for c in cells])
    for column in ("fpr", "fpr_se", "coverage", "coverage_se"):
        frame[column] = 100 * frame[column]
    return frame
