"""Uncertainty that respects how faces were made: many synthetic faces come from one grid image
(one prompt, one style), so they are not independent samples.

* :func:`sample_groups` : the cluster of each face (its ``source`` grid; a real face is its own);
* every bootstrap here draws its weights from :func:`fercore.analysis.clustered.stratified_weights`
  (whole groups resampled with replacement within each stratum, Davison & Hinkley 1997, sec. 3.8);
* intervals on accuracy, macro-F1 and ECE (the stratified cluster bootstrap), the balanced-accuracy gap
  and every other few-cluster test live in :mod:`fercore.analysis.clustered` (the Wald test from a
  bootstrap SE that was here did not keep its level with few grids: docs/calibration.md);
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

from fercore.analysis.clustered import stratified_weights

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
    weights = stratified_weights(groups, y, n_boot, np.random.default_rng(seed))  # whole groups within each domain
    draws = [roc_auc_score(y, scores, sample_weight=w) for w in weights]
    low, high = np.quantile(draws, [0.025, 0.975])
    return DomainProbe(auc, float(low), float(high), float(np.mean(fold_aucs)), float(np.std(fold_aucs, ddof=1)) if len(fold_aucs) > 1 else 0.0,
                       folds, len(np.unique(groups)), grouped and len(np.unique(groups)) < len(y))


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
        g = len(np.unique(groups))
        if g < 2:
            raise ValueError(f"a sample needs two groups or more for a bootstrap, got {g}")
        w = stratified_weights(groups, np.zeros(len(values), dtype=np.int64), n_boot, rng)  # one stratum: the sample
        means = (w @ values) / w.sum(1)[:, None]
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
