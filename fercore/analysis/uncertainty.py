"""Uncertainty that respects how faces were made: many synthetic faces come from one grid image
(one prompt, one style), so they are not independent samples.

* :func:`sample_groups` : the cluster of each face (its ``source`` grid; a real face is its own);
* :func:`cluster_weights` : bootstrap draws as multinomial counts over groups (a cluster bootstrap:
  whole groups are resampled with replacement, as Davison & Hinkley 1997, sec. 3.8);
* :func:`score_interval` : accuracy or balanced accuracy with a cluster-bootstrap 95 % interval;
* the balanced-accuracy gap and every other few-cluster test live in :mod:`fercore.analysis.clustered`
  (the Wald test from a bootstrap SE that was here did not keep its level with few grids: docs/calibration.md);
* :func:`grouped_domain_auc` : a domain probe with grouped folds (no grid on both sides) and a
  cluster-bootstrap interval of its out-of-fold ROC AUC.

With every face its own group the cluster bootstrap is the ordinary (naive) bootstrap, which
is how the naive intervals are computed for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

#: Columns that name a face's cluster, in order of preference.
GROUP_COLUMNS = ("source",)


def sample_groups(samples: pd.DataFrame, *, prefix: str = "") -> np.ndarray:
    """One group label per row: the ``source`` grid where a row has one (extracted faces), else the
    row's own path (a real photograph is its own group). ``prefix`` keeps two sets' labels apart."""
    groups = samples["path"].astype(str).to_numpy(dtype=object)
    for column in GROUP_COLUMNS:
        if column in samples.columns:
            source = samples[column]
            has = source.notna() & (source.astype(str) != "")
            groups = np.where(has.to_numpy(), source.astype(str).to_numpy(dtype=object), groups)
            break
    return np.array([f"{prefix}{g}" for g in groups], dtype=object)


def cluster_weights(n_groups: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``n_boot`` x ``n_groups`` counts: how often each group is drawn in each bootstrap sample
    (``n_groups`` draws with replacement)."""
    return rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_boot).astype(np.float64)


def _group_tables(y_true: np.ndarray, correct: np.ndarray, groups: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(right answers, faces) per group (rows) and class (columns)."""
    _, gid = np.unique(groups, return_inverse=True)
    n_groups = int(gid.max()) + 1 if len(gid) else 0
    right = np.zeros((n_groups, n_classes))
    count = np.zeros((n_groups, n_classes))
    np.add.at(count, (gid, y_true), 1.0)
    np.add.at(right, (gid, y_true), correct.astype(np.float64))
    return right, count


def _scores(right: np.ndarray, count: np.ndarray, balanced: bool) -> np.ndarray:
    """Accuracy (or mean per-class recall, classes with faces only) of each row of summed tables."""
    if not balanced:
        return right.sum(-1) / count.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = right / count
    return np.nanmean(recall, axis=-1)


@dataclass(frozen=True)
class Interval:
    """A score with its 95 % bootstrap interval and standard error; ``groups`` clusters of ``n`` faces."""

    estimate: float
    low: float
    high: float
    se: float
    n: int
    groups: int
    clustered: bool


def score_interval(
    y_true: np.ndarray, correct: np.ndarray, groups: np.ndarray | None = None, *, n_classes: int | None = None,
    balanced: bool = False, n_boot: int = 2000, seed: int = 0,
) -> Interval:
    """Accuracy (``balanced``: mean per-class recall) of right/wrong answers ``correct`` with a
    percentile bootstrap interval that resamples whole ``groups`` (None: every face its own)."""
    y_true, correct = np.asarray(y_true, dtype=np.int64), np.asarray(correct, dtype=bool)
    if len(y_true) == 0:
        raise ValueError("no faces to score")
    clustered = groups is not None
    groups = np.arange(len(y_true)) if groups is None else np.asarray(groups)
    interval, _ = _resampled(y_true, correct, groups, n_classes or int(y_true.max()) + 1, balanced=balanced, n_boot=n_boot,
                             rng=np.random.default_rng(seed), clustered=clustered)
    return interval


def _resampled(y_true: np.ndarray, correct: np.ndarray, groups: np.ndarray, n_classes: int, *, balanced: bool, n_boot: int,
               rng: np.random.Generator, clustered: bool = True) -> tuple[Interval, np.ndarray]:
    """The score of one set with its cluster-bootstrap :class:`Interval`, and the ``n_boot`` bootstrap draws."""
    right, count = _group_tables(y_true, correct, groups, n_classes)
    w = cluster_weights(len(right), n_boot, rng)
    with np.errstate(invalid="ignore"):
        draws = _scores(w @ right, w @ count, balanced)
    estimate = float(_scores(right.sum(0), count.sum(0), balanced))
    low, high = np.nanquantile(draws, [0.025, 0.975])
    interval = Interval(estimate, float(low), float(high), float(np.nanstd(draws, ddof=1)), len(y_true), len(right),
                        clustered and len(right) < len(y_true))
    return interval, draws


@dataclass(frozen=True)
class DomainProbe:
    """Out-of-fold ROC AUC of a linear probe telling two domains apart, with grouped folds."""

    auc: float  # pooled out-of-fold AUC
    low: float  # cluster-bootstrap 95 % interval
    high: float
    fold_mean: float
    fold_sd: float
    folds: int
    groups: int
    grouped: bool


def grouped_domain_auc(
    feats: np.ndarray, domains: np.ndarray, groups: np.ndarray | None = None, *, folds: int = 5, n_boot: int = 500, seed: int = 0,
) -> DomainProbe:
    """Logistic-regression domain probe (standardised features, C = 0.1): out-of-fold scores from
    folds that never split a group (``StratifiedGroupKFold``), the pooled AUC, the per-fold mean
    and sd, and a cluster-bootstrap interval of the pooled AUC (groups resampled in each domain)."""
    values = np.asarray(domains)
    kinds = sorted(set(values.tolist()))
    if len(kinds) != 2:
        raise ValueError(f"a domain probe needs exactly two domains, got {kinds}")
    y = (values == kinds[1]).astype(int)
    grouped = groups is not None
    groups = np.asarray(groups) if grouped else np.arange(len(y))
    per_domain_groups = min(len(np.unique(groups[y == v])) for v in (0, 1))
    folds = max(2, min(folds, per_domain_groups))
    splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=seed) if grouped else StratifiedKFold(folds, shuffle=True, random_state=seed)
    scores = np.full(len(y), np.nan)
    fold_aucs = []
    for train, held in splitter.split(feats, y, groups if grouped else None):
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1)).fit(feats[train], y[train])
        scores[held] = clf.decision_function(feats[held])
        if len(set(y[held])) == 2:
            fold_aucs.append(roc_auc_score(y[held], scores[held]))
    auc = float(roc_auc_score(y, scores))
    rng = np.random.default_rng(seed)
    members = {v: [np.flatnonzero((y == v) & (groups == g)) for g in np.unique(groups[y == v])] for v in (0, 1)}
    draws = []
    for _ in range(n_boot):
        idx = np.concatenate([members[v][i] for v in (0, 1) for i in rng.integers(0, len(members[v]), len(members[v]))])
        draws.append(roc_auc_score(y[idx], scores[idx]))
    low, high = np.quantile(draws, [0.025, 0.975])
    return DomainProbe(auc, float(low), float(high), float(np.mean(fold_aucs)), float(np.std(fold_aucs, ddof=1)) if len(fold_aucs) > 1 else 0.0,
                       folds, len(np.unique(groups)), grouped and len(np.unique(groups)) < len(y))


def _group_sums(values: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sum of each column per group, faces per group)."""
    _, gid = np.unique(groups, return_inverse=True)
    sums = np.zeros((int(gid.max()) + 1, values.shape[1]))
    np.add.at(sums, gid, values)
    return sums, np.bincount(gid).astype(np.float64)


def mean_difference(
    a: np.ndarray, b: np.ndarray, groups_a: np.ndarray | None = None, groups_b: np.ndarray | None = None, *,
    n_boot: int = 2000, seed: int = 0,
) -> pd.DataFrame:
    """Mean of each column of ``a`` (n x k) minus that of ``b`` (m x k), two independent samples,
    with a cluster-bootstrap test fit for few clusters.

    Whole groups are resampled within each sample (None: every row its own group). The variance
    of each sample's mean is its bootstrap variance times G / (G - 1) (the CR1 small-sample
    factor, G its groups), the standard error is their sum's root, and the test and the 95 %
    interval use Student's t with min(G) - 1 degrees of freedom, as recommended for few clusters
    (Cameron & Miller 2015). A normal reference with the plain bootstrap SE rejects a true null
    in 7-11 % of data sets with 5-6 grids of 4 faces at alpha 0.05; this one in 1-3 % (tests/test_uncertainty.py).
    One row per column: ``difference, low, high, se, df, p_value``."""
    a, b = (np.asarray(x, dtype=np.float64) for x in (a, b))
    a, b = (x[:, None] if x.ndim == 1 else x for x in (a, b))
    if len(a) == 0 or len(b) == 0:
        raise ValueError("both samples need rows")
    rng = np.random.default_rng(seed)
    variance, sizes = np.zeros(a.shape[1]), []
    for values, groups in ((a, groups_a), (b, groups_b)):
        groups = np.arange(len(values)) if groups is None else np.asarray(groups)
        sums, counts = _group_sums(values, groups)
        g = len(counts)
        if g < 2:
            raise ValueError(f"a sample needs two groups or more for a bootstrap, got {g}")
        w = cluster_weights(g, n_boot, rng)
        means = (w @ sums) / (w @ counts)[:, None]
        variance += means.var(axis=0, ddof=1) * g / (g - 1)
        sizes.append(g)
    difference = a.mean(axis=0) - b.mean(axis=0)
    se = np.sqrt(variance)
    df = float(min(sizes) - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(se > 0, 2 * stats.t.sf(np.abs(difference) / se, df), (difference == 0).astype(float))
    half = stats.t.ppf(0.975, df) * se
    return pd.DataFrame({"difference": difference, "low": difference - half, "high": difference + half, "se": se,
                         "df": df, "p_value": p})
