"""Clustered uncertainty: coverage by simulation, priors that do not move a balanced gap, and a
domain probe that cannot learn grids by heart."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from fercore.analysis.uncertainty import (
    grouped_domain_auc,
    mean_difference,
    sample_groups,
    score_interval,
)


def correlated_answers(rng: np.random.Generator, groups: int, size: int, mean: float, icc: float) -> tuple[np.ndarray, np.ndarray]:
    """Right/wrong answers of ``groups`` x ``size`` faces: each group has its own success
    probability, Beta-distributed with mean ``mean`` and intra-class correlation ``icc``."""
    total = 1 / icc - 1  # alpha + beta of the Beta distribution
    p = rng.beta(mean * total, (1 - mean) * total, groups)
    correct = rng.random((groups, size)) < p[:, None]
    return correct.ravel(), np.repeat(np.arange(groups), size)


def test_cluster_bootstrap_covers_where_the_naive_interval_does_not():
    """300 simulated test sets of 30 grids x 12 faces, intra-class correlation 0.2 (design
    effect 1 + 11 x 0.2 = 3.2): the cluster-bootstrap 95 % interval holds the true accuracy in
    90-98 % of them, the naive one (faces as independent) in clearly fewer."""
    rng = np.random.default_rng(0)
    truth, hits_clustered, hits_naive = 0.6, 0, 0
    runs = 300
    for i in range(runs):
        correct, groups = correlated_answers(rng, 30, 12, truth, 0.2)
        y = np.zeros(len(correct), dtype=int)
        clustered = score_interval(y, correct, groups, n_boot=400, seed=i)
        naive = score_interval(y, correct, None, n_boot=400, seed=i)
        hits_clustered += clustered.low <= truth <= clustered.high
        hits_naive += naive.low <= truth <= naive.high
    coverage_clustered, coverage_naive = hits_clustered / runs, hits_naive / runs
    assert 0.90 <= coverage_clustered <= 0.98, coverage_clustered
    assert coverage_naive < 0.82 and coverage_naive < coverage_clustered - 0.1, (coverage_naive, coverage_clustered)


def test_mean_difference_with_few_grids_keeps_its_level_where_faces_as_independent_do_not():
    """A true null, 24 independent real faces against 6 grids of 4 synthetic faces with
    intra-grid correlation 0.3, 300 data sets: the cluster-bootstrap test (CR1 factor, t with
    grids - 1 df) rejects at most about 5 % of them at alpha 0.05, a Mann-Whitney test on faces
    clearly more; the t interval holds the truth as often as the test says."""
    from scipy import stats

    rng = np.random.default_rng(0)
    rejected, naive, covered, runs = 0, 0, 0, 300
    for i in range(runs):
        real = rng.normal(size=24)
        grid = np.repeat(rng.normal(size=6), 4)
        synthetic = np.sqrt(0.3) * grid + np.sqrt(0.7) * rng.normal(size=24)
        result = mean_difference(real, synthetic, None, np.repeat(np.arange(6), 4), n_boot=500, seed=i).iloc[0]
        rejected += result["p_value"] < 0.05
        covered += result["low"] <= 0.0 <= result["high"]
        naive += stats.mannwhitneyu(real, synthetic).pvalue < 0.05
    assert rejected / runs <= 0.06 and covered / runs >= 0.94, (rejected, covered)
    assert naive / runs >= 0.09 and naive > 2 * rejected, (naive, rejected)


def test_mean_difference_on_independent_rows_matches_the_textbook_standard_error():
    rng = np.random.default_rng(4)
    a, b = rng.normal(1.0, 2.0, size=(200, 3)), rng.normal(0.0, 1.0, size=(150, 3))
    result = mean_difference(a, b, n_boot=4000, seed=0)
    textbook = np.sqrt(a.var(axis=0, ddof=1) / 200 + b.var(axis=0, ddof=1) / 150)
    assert np.allclose(result["difference"], a.mean(axis=0) - b.mean(axis=0))
    assert np.allclose(result["se"], textbook, rtol=0.06) and (result["df"] == 149).all()
    assert (result["p_value"] < 1e-4).all()
    with pytest.raises(ValueError, match="two groups or more"):
        mean_difference(a, b, None, np.zeros(150), n_boot=10)


def test_intervals_on_independent_faces_match_the_plain_numbers():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 400)
    pred = np.where(rng.random(400) < 0.7, y, rng.integers(0, 4, 400))
    plain = score_interval(y, pred == y, n_boot=1000)
    balanced = score_interval(y, pred == y, balanced=True, n_boot=1000)
    assert plain.estimate == pytest.approx((pred == y).mean())
    assert balanced.estimate == pytest.approx(balanced_accuracy_score(y, pred))
    # binomial standard error sqrt(p(1-p)/n) against the bootstrap's
    assert plain.se == pytest.approx(np.sqrt(plain.estimate * (1 - plain.estimate) / 400), rel=0.15)
    assert not plain.clustered and plain.groups == 400
    # one group per face given explicitly is still not clustered
    assert not score_interval(y, pred == y, np.arange(400), n_boot=50).clustered


def test_grouped_probe_does_not_learn_grids_by_heart():
    """Both domains drawn from one distribution, but faces of a grid share an offset: a probe
    with ungrouped folds recognises held-out faces of grids it saw (AUC well above 0.5); with
    grouped folds it cannot, and its cluster-bootstrap interval holds 0.5."""
    rng = np.random.default_rng(2)
    dims, grids, size = 32, 16, 12
    feats, domains, groups = [], [], []
    for domain in ("real", "synthetic"):
        for g in range(grids):
            offset = rng.normal(0, 1.0, dims)
            feats.append(offset + rng.normal(0, 0.5, (size, dims)))
            domains += [domain] * size
            groups += [f"{domain}{g}"] * size
    feats, domains, groups = np.concatenate(feats), np.array(domains), np.array(groups)
    naive = grouped_domain_auc(feats, domains, None, folds=4, n_boot=200)
    grouped = grouped_domain_auc(feats, domains, groups, folds=4, n_boot=200)
    assert naive.auc > 0.75 and not naive.grouped, naive
    assert grouped.grouped and grouped.groups == 2 * grids
    assert abs(grouped.auc - 0.5) < 0.15 and grouped.low < 0.5 < grouped.high, grouped
    assert grouped.high - grouped.low > naive.high - naive.low


def test_a_separable_probe_has_auc_near_one():
    rng = np.random.default_rng(3)
    feats = np.r_[rng.normal(0, 1, (100, 8)), rng.normal(1.5, 1, (100, 8))]
    domains = np.array(["real"] * 100 + ["synthetic"] * 100)
    probe = grouped_domain_auc(feats, domains, np.repeat(np.arange(20), 10), folds=5, n_boot=200)
    assert probe.auc > 0.97 and probe.low > 0.9
    assert probe.auc == pytest.approx(roc_auc_score(domains == "synthetic", feats.sum(1)), abs=0.03)


def test_sample_groups_use_the_source_grid_and_else_the_face():
    table = pd.DataFrame({"path": ["a.png", "b.png", "c.png", "d.png"], "source": ["g1.png", "g1.png", None, ""]})
    assert sample_groups(table, prefix="s:").tolist() == ["s:g1.png", "s:g1.png", "s:c.png", "s:d.png"]
    assert sample_groups(table.drop(columns="source")).tolist() == ["a.png", "b.png", "c.png", "d.png"]
