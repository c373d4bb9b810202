"""Real against synthetic embeddings, tested at the level of the grid.

Synthetic faces share their grid's style, so single faces are not exchangeable between the domains:
a face-level permutation of an MMD statistic rejects a true null almost always when faces cluster
by grid (the calibration harness, :mod:`fercore.analysis.calibration_rq34`, shows it). Here:

* :func:`balanced_design` : on the classes both sets hold, the same number of faces per class and
  domain (class-balanced sampling), and each synthetic grid paired with a block of as many real
  faces of its class (real faces are independent, so any block of them is a set of clusters of one);
* :func:`grid_pair_design` : the same for two clustered sides (synthetic grids against the null arm's grids):
  each grid paired with a whole grid of the other side, of its class;
* :func:`mmd_grid_test` : unbiased squared MMD (RBF kernel, median heuristic; Gretton et al. 2012)
  with a p-value from swapping the domain labels of whole (grid, block) pairs, within class. The
  swaps form a group, so the test is exact when each pair's two halves are exchangeable under the
  null; every labelling is enumerated when there are few, and the smallest attainable p is reported;
* :func:`probe_grid_test` : a linear (ridge) domain probe, out-of-fold ROC AUC with folds of whole
  pairs, read against its null reference: the AUCs under the same pair swaps;
* :func:`centroid_distance` : per class, the distance between the domains' centroids with the
  small-sample bias removed (an unbiased estimate of the squared distance, the synthetic centroid
  a mean of grid means) and a stratified grid-bootstrap interval.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["Design", "balanced_design", "centroid_distance", "grid_pair_design", "labellings", "mmd_grid_test", "probe_grid_test"]

#: Enumerate every labelling up to this many pairs (2 ** (pairs - 1) labellings); draw them above.
ENUMERATE_PAIRS = 14


@dataclass(frozen=True)
class Design:
    """Kept rows of a real + synthetic table with, per row, its class, domain and (grid, block) pair."""

    rows: np.ndarray  # indices into the caller's table
    synthetic: np.ndarray  # bool per kept row
    klass: np.ndarray  # class label per kept row
    pair: np.ndarray  # pair id per kept row (a grid and its block of real faces)
    pairs: int

    @property
    def min_p(self) -> float:
        """The smallest p-value the pair swaps can give (the labelling and its mirror image)."""
        return float(2.0 ** -(self.pairs - 1)) if self.pairs > 0 else 1.0


def balanced_design(synthetic: np.ndarray, classes: np.ndarray, groups: np.ndarray, *, seed: int = 0) -> Design:
    """Class-balanced pairs on the classes both domains hold: per class, every synthetic grid keeps
    ``floor(size * min(1, real / synthetic))`` faces (at least one), drawn at random, and is paired with
    a random block of as many real faces of its class. ``groups`` names each synthetic face's grid."""
    synthetic, classes, groups = np.asarray(synthetic, dtype=bool), np.asarray(classes), np.asarray(groups)
    rng = np.random.default_rng(seed)
    parts: tuple[list, list, list, list] = ([], [], [], [])
    for c in sorted(set(classes[synthetic].tolist()) & set(classes[~synthetic].tolist()), key=str):
        real = rng.permutation(np.flatnonzero(~synthetic & (classes == c)))
        grids = [np.flatnonzero(synthetic & (classes == c) & (groups == g)) for g in sorted(set(groups[synthetic & (classes == c)].tolist()), key=str)]
        scale = min(1.0, len(real) / sum(len(g) for g in grids))
        sizes = [max(1, int(np.floor(len(g) * scale))) for g in grids]
        start = 0
        for members, size in zip(grids, sizes, strict=True):
            if start + size > len(real):
                break
            block = real[start:start + size]
            start += size
            _add_pair(parts, rng.choice(members, size, replace=False), block, c)
    if not parts[3]:
        raise ValueError("no class holds both real and synthetic faces: nothing to compare")
    return _design(parts)


def grid_pair_design(synthetic: np.ndarray, classes: np.ndarray, groups: np.ndarray, *, seed: int = 0) -> Design:
    """Pairs of whole grids for two clustered sides (e.g. synthetic faces against the null arm's grids of real faces):
    per class both sides hold, the grids of each side in a random order, the i-th grid of one side paired with the
    i-th of the other, each keeping as many faces (drawn at random) as the smaller of the two holds; grids without a
    partner are left out. Swapping the domain labels of whole pairs is then exact when the two sides' grids are
    exchangeable (:func:`mmd_grid_test`, :func:`probe_grid_test`). ``groups`` names each face's grid on both sides."""
    synthetic, classes, groups = np.asarray(synthetic, dtype=bool), np.asarray(classes), np.asarray(groups)
    rng = np.random.default_rng(seed)
    parts: tuple[list, list, list, list] = ([], [], [], [])
    for c in sorted(set(classes[synthetic].tolist()) & set(classes[~synthetic].tolist()), key=str):
        sides = []
        for side in (synthetic, ~synthetic):
            names = sorted(set(groups[side & (classes == c)].tolist()), key=str)
            sides.append([np.flatnonzero(side & (classes == c) & (groups == names[i])) for i in rng.permutation(len(names))])
        for a, b in zip(*sides, strict=False):
            size = min(len(a), len(b))
            _add_pair(parts, rng.choice(a, size, replace=False), rng.choice(b, size, replace=False), c)
    if not parts[3]:
        raise ValueError("no class holds grids on both sides: nothing to compare")
    return _design(parts)


def _add_pair(parts: tuple[list, list, list, list], first: np.ndarray, second: np.ndarray, klass) -> None:
    """Append one pair (the first side's rows, the second side's, equally many) to ``parts`` (rows, first-side flags,
    classes, pair ids)."""
    rows, is_first, classes, pairs = parts
    size = len(first)
    rows += [first, second]
    is_first += [np.ones(size, bool), np.zeros(size, bool)]
    classes += [np.full(size, klass, dtype=object)] * 2
    pairs.append(np.full(2 * size, len(pairs)))


def _design(parts: tuple[list, list, list, list]) -> Design:
    rows, is_first, classes, pairs = parts
    return Design(np.concatenate(rows), np.concatenate(is_first), np.concatenate(classes), np.concatenate(pairs), len(pairs))


def labellings(pairs: int, *, draws: int = 999, seed: int = 0) -> np.ndarray:
    """Swap patterns (labellings x pairs, 1 = swap the pair's domains), the observed one (no swap)
    first: all ``2 ** (pairs - 1)`` with the first pair fixed when ``pairs <= ENUMERATE_PAIRS``
    (a statistic symmetric in the domains is the same for a pattern and its complement), else ``draws`` at random."""
    if pairs <= ENUMERATE_PAIRS:
        rest = np.array(list(itertools.product((0, 1), repeat=pairs - 1)), dtype=np.int8).reshape(2 ** (pairs - 1), pairs - 1)
        return np.hstack([np.zeros((len(rest), 1), np.int8), rest])
    rng = np.random.default_rng(seed)
    return np.vstack([np.zeros((1, pairs), np.int8), rng.integers(0, 2, (draws, pairs), dtype=np.int8)])


def _null_band(statistics: np.ndarray) -> dict[str, float]:
    """2.5 % and 97.5 % quantiles of the statistic over the swapped labellings (the observed one left out)."""
    rest = statistics[1:]
    if len(rest) == 0:
        return {"null_q025": np.nan, "null_q975": np.nan}
    low, high = np.quantile(rest, [0.025, 0.975])
    return {"null_q025": float(low), "null_q975": float(high)}


def _p_value(statistics: np.ndarray, enumerated: bool) -> float:
    """Share of labellings at least as extreme as the first (observed); a drawn set counts the observed too."""
    return float((statistics >= statistics[0] - 1e-12).mean()) if enumerated else float((statistics >= statistics[0] - 1e-12).sum() / len(statistics))


def mmd_grid_test(feats: np.ndarray, design: Design, *, gamma: float | None = None, draws: int = 999, seed: int = 0) -> dict[str, float]:
    """Unbiased squared MMD between the design's synthetic and real faces and its p-value from
    swapping whole (grid, block) pairs (see the module docstring). Returns ``mmd2, p_value, min_p,
    labellings, gamma`` and the null's 2.5 / 97.5 % quantiles ``null_q025, null_q975``."""
    z = np.asarray(feats, dtype=np.float64)[design.rows]
    sq = (z * z).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0.0)
    if gamma is None:
        median = float(np.median(d2[np.triu_indices(len(z), 1)]))
        gamma = 1.0 / median if median > 0 else 1.0
    k = np.exp(-gamma * d2)
    np.fill_diagonal(k, 0.0)  # the unbiased statistic leaves out k(x, x)
    unit = 2 * design.pair + design.synthetic.astype(int)  # 2p: the real block, 2p + 1: the grid
    onehot = np.zeros((len(z), 2 * design.pairs))
    onehot[np.arange(len(z)), unit] = 1.0
    blocks = onehot.T @ k @ onehot
    swaps = labellings(design.pairs, draws=draws, seed=seed)
    zs = np.empty((len(swaps), 2 * design.pairs))
    zs[:, 1::2], zs[:, 0::2] = 1 - swaps, swaps  # 1: the unit is on the synthetic side
    n = design.synthetic.sum()
    zb, wb = zs @ blocks, (1 - zs) @ blocks  # matrix products: einsum over three operands loops naively
    within = (zb * zs).sum(1) + (wb * (1 - zs)).sum(1)
    cross = (zb * (1 - zs)).sum(1)
    mmd2 = within / (n * (n - 1)) - 2 * cross / (n * n)
    enumerated = design.pairs <= ENUMERATE_PAIRS
    return {"mmd2": float(mmd2[0]), "p_value": _p_value(mmd2, enumerated), **_null_band(mmd2),
            "min_p": design.min_p if enumerated else max(design.min_p, 1 / len(swaps)), "labellings": len(swaps), "gamma": float(gamma)}


def _auc_columns(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """ROC AUC of each column of ``scores`` for the 0/1 ``labels`` of the same column (Mann-Whitney form)."""
    ranks = stats.rankdata(scores, axis=0)
    n1 = labels.sum(0)
    n0 = len(labels) - n1
    return ((ranks * labels).sum(0) - n1 * (n1 + 1) / 2) / (n1 * n0)


def probe_grid_test(feats: np.ndarray, design: Design, *, folds: int = 5, ridge: float = 1.0, draws: int = 199,
                    seed: int = 0) -> dict[str, float]:
    """A ridge domain probe on standardised features, out-of-fold ROC AUC with folds of whole pairs
    (a grid and its real block always in the same fold), and its null reference: the AUC under
    swapped pairs (up to ``draws`` labellings). Returns ``auc, null_median, null_q95, null_q025, null_q975, p_value, min_p, folds``."""
    if design.pairs < 2:  # one pair: no fold can hold out data the probe was not fitted on
        return {"auc": np.nan, "null_q025": np.nan, "null_q975": np.nan, "null_median": np.nan, "null_q95": np.nan,
                "p_value": np.nan, "min_p": 1.0, "folds": 0}
    x = np.asarray(feats, dtype=np.float64)[design.rows]
    rng = np.random.default_rng(seed)
    swaps = labellings(design.pairs, draws=draws, seed=seed)
    if len(swaps) > draws + 1:
        swaps = np.vstack([swaps[:1], swaps[1 + rng.choice(len(swaps) - 1, draws, replace=False)]])
    labels = (design.synthetic[:, None] ^ swaps[:, design.pair].T.astype(bool)).astype(np.float64)  # faces x labellings
    folds = max(2, min(folds, design.pairs))
    fold_of_pair = rng.permutation(np.arange(design.pairs) % folds)
    fold = fold_of_pair[design.pair]
    scores = np.zeros_like(labels)
    for f in range(folds):
        train, held = fold != f, fold == f
        mu, sd = x[train].mean(0), x[train].std(0) + 1e-8
        xt, xh = (x[train] - mu) / sd, (x[held] - mu) / sd
        y = 2 * labels[train] - 1
        y = y - y.mean(0)
        lam = ridge * len(xt)
        if xt.shape[0] < xt.shape[1]:  # dual form: (X X' + lam I)^-1 Y
            w = xt.T @ np.linalg.solve(xt @ xt.T + lam * np.eye(len(xt)), y)
        else:
            w = np.linalg.solve(xt.T @ xt + lam * np.eye(xt.shape[1]), xt.T @ y)
        scores[held] = xh @ w
    aucs = _auc_columns(scores, labels)
    enumerated = len(swaps) == 2 ** (design.pairs - 1)
    return {"auc": float(aucs[0]), **_null_band(aucs), "null_median": float(np.median(aucs[1:])) if len(aucs) > 1 else np.nan,
            "null_q95": float(np.quantile(aucs[1:], 0.95)) if len(aucs) > 1 else np.nan, "p_value": _p_value(aucs, enumerated),
            "min_p": design.min_p if enumerated else max(design.min_p, 1 / len(swaps)), "folds": folds}


def _corrected_d2(real: np.ndarray, grid_means: np.ndarray) -> float:
    """Unbiased squared distance between the real mean and the mean of grid means."""
    gap = real.mean(0) - grid_means.mean(0)
    bias = real.var(0, ddof=1).sum() / len(real) + grid_means.var(0, ddof=1).sum() / len(grid_means)
    return float(gap @ gap - bias)


def _boot_d2(real: np.ndarray, w_real: np.ndarray, means: np.ndarray, w_means: np.ndarray) -> np.ndarray:
    """:func:`_corrected_d2` of every bootstrap draw given as counts (draws x rows) of each side, vectorised."""
    parts = []
    for x, w in ((real, w_real), (means, w_means)):
        n = len(x)
        mean = w @ x / n
        total = w @ (x * x).sum(1)
        parts.append((mean, (total - n * (mean * mean).sum(1)) / (n - 1) / n))
    gap = parts[0][0] - parts[1][0]
    return (gap * gap).sum(1) - parts[0][1] - parts[1][1]


def centroid_distance(real: np.ndarray, synthetic: np.ndarray, groups: np.ndarray, *, n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """Distance between the real centroid and the synthetic one (the mean of the grids' means) of one
    class: ``d2`` an unbiased estimate of the squared distance (the sampling variance of both centroids
    subtracted; it can be negative), ``distance`` = sqrt(max(d2, 0)), and a percentile interval of
    ``d2`` from a bootstrap that resamples real faces and whole grids (NaN with one grid, where only
    the raw ``plain`` distance is given; NaN with ``n_boot=0``)."""
    real, synthetic, groups = np.asarray(real, np.float64), np.asarray(synthetic, np.float64), np.asarray(groups)
    names = sorted(set(groups.tolist()), key=str)
    means = np.stack([synthetic[groups == g].mean(0) for g in names])
    plain = float(np.linalg.norm(real.mean(0) - means.mean(0)))
    if len(names) < 2 or len(real) < 2:
        return {"d2": np.nan, "distance": np.nan, "low": np.nan, "high": np.nan, "plain": plain, "grids": len(names)}
    d2 = _corrected_d2(real, means)
    if n_boot == 0:  # the point estimate only (the interval misses its coverage at few grids: docs/calibration_rq34.md)
        return {"d2": d2, "distance": float(np.sqrt(max(d2, 0.0))), "low": np.nan, "high": np.nan, "plain": plain, "grids": len(names)}
    rng = np.random.default_rng(seed)
    draws = _boot_d2(real, rng.multinomial(len(real), np.full(len(real), 1 / len(real)), n_boot),
                     means, rng.multinomial(len(means), np.full(len(means), 1 / len(means)), n_boot))
    low, high = np.nanquantile(draws, [0.025, 0.975])
    return {"d2": d2, "distance": float(np.sqrt(max(d2, 0.0))), "low": float(low), "high": float(high), "plain": plain, "grids": len(names)}
