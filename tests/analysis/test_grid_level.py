"""Grid-level mean differences and the RQ4 grid-pair tests, checked against reference code and planted effects."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from fercore.analysis import domain_tests as D
from fercore.analysis import grid_level as G


def test_welch_statistic_from_scipy_with_hsu_degrees_of_freedom():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, (60, 2)), rng.normal(0.5, 2, (40, 2))
    out = G.grid_mean_difference(a, b)
    for j in range(2):
        ref = stats.ttest_ind(a[:, j], b[:, j], equal_var=False)
        assert ref.df >= 39 and out["df"].iloc[j] == 39  # Satterthwaite's df never falls below min(n) - 1
        assert out["difference"].iloc[j] / out["se"].iloc[j] == pytest.approx(ref.statistic)
        assert out["p_value"].iloc[j] == pytest.approx(2 * stats.t.sf(abs(ref.statistic), 39))
        half = stats.t.ppf(0.975, 39) * out["se"].iloc[j]
        assert (out["low"].iloc[j], out["high"].iloc[j]) == pytest.approx((out["difference"].iloc[j] - half, out["difference"].iloc[j] + half))
    assert out["mde"].iloc[0] == pytest.approx((stats.t.ppf(0.975, 39) + stats.t.ppf(0.8, 39)) * out["se"].iloc[0])


def test_grid_means_weigh_grids_equally_and_cap_df():
    real = np.array([0.0, 1.0, 2.0, 3.0])
    synthetic = np.array([1.0] * 10 + [3.0, 5.0])  # a grid of ten faces and one of two
    out = G.grid_mean_difference(real, synthetic, None, np.array([0] * 10 + [1] * 2)).iloc[0]
    assert out["mean_b"] == pytest.approx(2.5) and out["difference"] == pytest.approx(1.5 - 2.5)
    assert out["df"] == 1.0 and out["clusters_b"] == 2 and out["test"] == "Welch t on grid means"
    assert G.grid_mean_difference(real, synthetic, None, np.zeros(12)).iloc[0]["test"] == G.ONE_CLUSTER


def test_paired_change_is_a_one_sample_t_over_clusters():
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(5), 6)
    before = rng.normal(size=30)
    after = before - 0.3 + np.repeat(rng.normal(0, 0.1, 5), 6)
    out = G.paired_change(before, after, groups)
    d = np.array([before[groups == g].mean() - after[groups == g].mean() for g in range(5)])
    assert out["difference"] == pytest.approx(d.mean()) and out["p_value"] == pytest.approx(stats.ttest_1samp(d, 0).pvalue)
    assert out["clusters"] == 5 and out["low"] < 0.3 < out["high"]


def _clouds(rng, shift: float, grids: int = 2, classes: int = 3):
    feats, syn, klass, group = [], [], [], []
    for c in range(classes):
        mu = rng.normal(0, 2, 6)
        feats.append(mu + rng.normal(size=(70, 6)))
        syn += [False] * 70
        klass += [c] * 70
        group += [-1] * 70
        for g in range(grids):
            feats.append(mu + shift + rng.normal(0, 0.3, 6) + rng.normal(size=(30, 6)))
            syn += [True] * 30
            klass += [c] * 30
            group += [10 * c + g] * 30
    return np.concatenate(feats), np.array(syn), np.array(klass), np.array(group)


def test_balanced_design_pairs_each_grid_with_a_real_block_of_its_class():
    feats, syn, klass, group = _clouds(np.random.default_rng(2), 0.0, grids=3)  # 90 synthetic, 70 real per class
    design = D.balanced_design(syn, klass, group)
    assert design.pairs == 9 and design.min_p == 2.0 ** -8
    for p in range(design.pairs):
        rows = design.rows[design.pair == p]
        assert syn[rows].sum() == (~syn[rows]).sum() == 23 and len(set(klass[rows])) == 1  # floor(30 * 70 / 90)
    assert len(set(design.rows)) == len(design.rows)
    with pytest.raises(ValueError, match="no class holds both"):
        D.balanced_design(syn, np.where(syn, 0, 1), group)


def test_mmd_and_probe_find_a_shift_and_their_p_values_are_exact_permutation_shares():
    rng = np.random.default_rng(3)
    feats, syn, klass, group = _clouds(rng, 1.0)
    design = D.balanced_design(syn, klass, group)
    mmd, probe = D.mmd_grid_test(feats, design), D.probe_grid_test(feats, design)
    assert mmd["labellings"] == 32 and mmd["p_value"] == pytest.approx(1 / 32) == pytest.approx(mmd["min_p"])
    assert probe["auc"] > 0.8 > probe["null_q95"] and probe["p_value"] == pytest.approx(1 / 32)
    feats, syn, klass, group = _clouds(rng, 0.0)
    calm = D.mmd_grid_test(feats, D.balanced_design(syn, klass, group))
    assert calm["p_value"] > 0.05 and calm["null_q025"] <= calm["null_q975"]
    assert D.labellings(20, draws=50).shape == (51, 20) and not D.labellings(20, draws=50)[0].any()


def test_centroid_distance_is_unbiased_where_the_raw_one_is_not():
    rng = np.random.default_rng(4)
    corrected, plain = [], []
    for _ in range(300):
        real = rng.normal(size=(20, 5))
        synthetic = rng.normal(0, np.sqrt(0.8), (4, 1, 5)) + rng.normal(0, np.sqrt(0.2), (4, 10, 5))
        out = D.centroid_distance(real, synthetic.reshape(-1, 5), np.repeat(np.arange(4), 10), n_boot=10)
        corrected.append(out["d2"])
        plain.append(out["plain"] ** 2)
    assert abs(np.mean(corrected)) < 0.1 < np.mean(plain)  # true squared distance 0
    one = D.centroid_distance(real, synthetic[0], np.zeros(10))
    assert np.isnan(one["d2"]) and one["plain"] > 0 and one["grids"] == 1


def test_one_pair_gives_no_probe_and_an_mmd_p_of_one():
    feats, syn, klass, group = _clouds(np.random.default_rng(5), 1.0, grids=1, classes=1)
    design = D.balanced_design(syn, klass, group)
    assert design.pairs == 1 and D.mmd_grid_test(feats, design)["p_value"] == 1.0
    assert np.isnan(D.probe_grid_test(feats, design)["auc"])


def test_vectorised_bootstrap_draws_match_the_plain_formula():
    rng = np.random.default_rng(6)
    real, means = rng.normal(size=(15, 4)), rng.normal(size=(3, 4))
    w_real, w_means = rng.multinomial(15, np.full(15, 1 / 15), 5), rng.multinomial(3, np.full(3, 1 / 3), 5)
    draws = D._boot_d2(real, w_real, means, w_means)
    for b in range(5):
        expected = D._corrected_d2(np.repeat(real, w_real[b], axis=0), np.repeat(means, w_means[b], axis=0))
        assert draws[b] == pytest.approx(expected)
