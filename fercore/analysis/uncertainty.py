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

