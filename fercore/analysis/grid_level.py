"""Mean differences tested at the level of the grid, the unit the design replicates.

Synthetic faces come in grids of one prompt, so faces of one grid share a style (a grid effect) and
are not independent samples. Here every cluster (a grid; a real photograph is its own cluster) is
first reduced to its mean, and the two sides' cluster means are compared with the unequal-variance
t statistic (Welch 1947; ``scipy.stats.ttest_ind`` with ``equal_var=False``) referred to Student's t
with min(clusters) - 1 degrees of freedom. Satterthwaite's df always lies between that and the sum
of both sides' df, and with two or three grids it overstates the information (11 % false positives
at two grids per class in the harness); the smaller df is Hsu's conservative choice (Hsu 1938), in
line with G - 1 for few clusters (Cameron & Miller 2015). With one grid the between-grid spread
cannot be estimated and nothing is tested (:data:`ONE_CLUSTER`): the numbers are descriptive.

* :func:`cluster_means` : the mean of each column per cluster;
* :func:`welch_cluster_means` : vectorised Welch t on cluster means (harness and chapters alike);
* :func:`grid_mean_difference` : per column of a face table, the difference of the two sides'
  means of cluster means with its 95 % interval, p-value, SE, df and minimal detectable effect;
* :func:`paired_change` : the change of each cluster's mean between two arms (the same grids),
  a one-sample t over clusters;
* :func:`mde` : the minimal detectable effect of a t test from its SE and df.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["ONE_CLUSTER", "cluster_means", "grid_mean_difference", "mde", "paired_change", "welch_cluster_means"]

#: Why a row is not tested: a side with fewer than two clusters.
ONE_CLUSTER = "one grid: descriptive only"


def mde(se: np.ndarray | float, df: np.ndarray | float, *, alpha: float = 0.05, power: float = 0.8) -> np.ndarray:
    """Minimal detectable effect of a two-sided t test: ``(t_{1-alpha/2} + t_{power}) * se`` with ``df``
    degrees of freedom (the usual normal-approximation formula with t quantiles; Bloom 1995)."""
    se, df = np.asarray(se, dtype=np.float64), np.asarray(df, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return (stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)) * se


def cluster_means(values: np.ndarray, groups: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(mean of each column per cluster, faces per cluster), clusters in sorted order; ``groups``
    None: every row its own cluster. Rows with NaN in a column are left out of that column's mean."""
    values = np.asarray(values, dtype=np.float64)
    values = values[:, None] if values.ndim == 1 else values
    if groups is None:
        return values, np.ones(len(values))
    _, gid = np.unique(np.asarray(groups), return_inverse=True)
    if len(gid) == 0:  # no faces on this side: no clusters
        return np.empty((0, values.shape[1])), np.empty(0)
    finite = np.isfinite(values)
    sums = np.zeros((int(gid.max()) + 1, values.shape[1]))
    counts = np.zeros_like(sums)
    np.add.at(sums, gid, np.where(finite, values, 0.0))
    np.add.at(counts, gid, finite.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts, np.bincount(gid).astype(np.float64)


def welch_cluster_means(a: np.ndarray, b: np.ndarray, *, axis: int = -2, alpha: float = 0.05) -> dict[str, np.ndarray]:
    """Unequal-variance t test (min(clusters) - 1 df, see the module docstring) of the mean of ``a`` against that of ``b`` along ``axis`` (cluster means;
    any leading shape broadcasts, e.g. simulated data sets x clusters x regions). Returns arrays
    ``difference, low, high, se, df, p_value`` (the ``1 - alpha`` interval). With fewer than two
    clusters on a side every entry is NaN but the difference."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    difference = a.mean(axis=axis) - b.mean(axis=axis)
    if a.shape[axis] < 2 or b.shape[axis] < 2:
        nan = np.full(difference.shape, np.nan)
        return {"difference": difference, "low": nan, "high": nan, "se": nan, "df": nan, "p_value": nan}
    result = stats.ttest_ind(a, b, axis=axis, equal_var=False)
    va, vb = a.var(axis=axis, ddof=1) / a.shape[axis], b.var(axis=axis, ddof=1) / b.shape[axis]
    se = np.sqrt(va + vb)
    # Hsu's df: Satterthwaite's is never below min(clusters) - 1 and overstates it with two or three grids.
    df = np.minimum(np.asarray(result.df, dtype=np.float64), min(a.shape[axis], b.shape[axis]) - 1)
    half = stats.t.ppf(1 - alpha / 2, df) * se
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(se > 0, 2 * stats.t.sf(np.abs(difference) / se, df), np.where(difference == 0, 1.0, 0.0))
    return {"difference": difference, "low": difference - half, "high": difference + half, "se": se, "df": df,
            "p_value": np.asarray(p, dtype=np.float64)}


def grid_mean_difference(a: np.ndarray, b: np.ndarray, groups_a: np.ndarray | None = None, groups_b: np.ndarray | None = None, *,
                         alpha: float = 0.05, power: float = 0.8) -> pd.DataFrame:
    """Per column of ``a`` (n x k) and ``b`` (m x k): the mean of ``a``'s cluster means minus that of
    ``b``'s (a real face is its own cluster: ``groups`` None), Welch's t on the cluster means, and the
    minimal detectable effect at ``power`` from that test's SE. One row per column:
    ``mean_a, mean_b, difference, low, high, se, df, p_value, mde, clusters_a, clusters_b, test``."""
    means_a, _ = cluster_means(a, groups_a)
    means_b, _ = cluster_means(b, groups_b)
    if len(means_a) == 0 or len(means_b) == 0:
        raise ValueError("both samples need rows")
    rows = []
    for j in range(means_a.shape[1]):
        xa, xb = means_a[:, j], means_b[:, j]
        xa, xb = xa[np.isfinite(xa)], xb[np.isfinite(xb)]
        if len(xa) == 0 or len(xb) == 0:  # e.g. no areas in the table
            rows.append({"mean_a": np.nan, "mean_b": np.nan, "difference": np.nan, "low": np.nan, "high": np.nan, "se": np.nan,
                         "df": np.nan, "p_value": np.nan, "mde": np.nan, "clusters_a": len(xa), "clusters_b": len(xb), "test": ONE_CLUSTER})
            continue
        result = {k: float(np.ravel(v)[0]) for k, v in welch_cluster_means(xa[:, None], xb[:, None], axis=0, alpha=alpha).items()}
        tested = np.isfinite(result["p_value"])
        rows.append({"mean_a": float(xa.mean()) if len(xa) else np.nan, "mean_b": float(xb.mean()) if len(xb) else np.nan,
                     **result, "mde": float(mde(result["se"], result["df"], alpha=alpha, power=power)) if tested else np.nan,
                     "clusters_a": len(xa), "clusters_b": len(xb), "test": "Welch t on grid means" if tested else ONE_CLUSTER})
    return pd.DataFrame(rows)


def paired_change(before: np.ndarray, after: np.ndarray, groups: np.ndarray, *, alpha: float = 0.05) -> dict[str, float]:
    """The mean over clusters of (cluster mean ``before`` - cluster mean ``after``), faces of the same
    clusters measured twice (e.g. a grid's faces as they come and matched), with a one-sample t
    interval and p-value over the clusters (df = clusters - 1). NaN interval with one cluster."""
    mb, _ = cluster_means(np.asarray(before, dtype=np.float64), groups)
    ma, _ = cluster_means(np.asarray(after, dtype=np.float64), groups)
    d = (mb - ma)[:, 0]
    d = d[np.isfinite(d)]
    estimate = float(d.mean()) if len(d) else np.nan
    if len(d) < 2:
        return {"difference": estimate, "low": np.nan, "high": np.nan, "se": np.nan, "df": np.nan, "p_value": np.nan, "clusters": len(d)}
    se = float(d.std(ddof=1) / np.sqrt(len(d)))
    df = float(len(d) - 1)
    half = float(stats.t.ppf(1 - alpha / 2, df)) * se
    p = float(stats.ttest_1samp(d, 0.0).pvalue) if se > 0 else float(estimate == 0)
    return {"difference": estimate, "low": estimate - half, "high": estimate + half, "se": se, "df": df, "p_value": p, "clusters": len(d)}
