"""Design and power: the ICC estimate, and the planner's MDE and grids needed against a direct simulation."""

from __future__ import annotations

import numpy as np
import pytest

from fercore.analysis.clustered import contrast_from_totals
from fercore.analysis.power import design_of, icc_anova, mde_curve, mde_from_se, mde_gap, plan


def beta_binomial(rng, reps, k, g, kept, icc, mean):
    total = 1 / icc - 1
    return rng.binomial(kept, rng.beta(mean * total, (1 - mean) * total, (reps, k, g))).astype(float)


def simulated_power(delta, g, kept=30, n_real=429, icc=0.2, k=7, acc=0.6, reps=1500, seed=0):
    """Direct simulation: beta-binomial grids (observed-scale ICC), independent real faces, the chapters' CR2 gap test."""
    rng = np.random.default_rng(seed)
    syn = beta_binomial(rng, reps, k, g, kept, icc, acc - delta).reshape(reps, -1)
    real = (rng.random((reps, k, n_real)) < acc).reshape(reps, -1).astype(float)
    counts = np.r_[np.ones(k * n_real), np.full(k * g, float(kept))]
    cell = np.r_[np.repeat(np.arange(k), n_real), k + np.repeat(np.arange(k), g)]
    weights = np.r_[np.full(k, 1 / k), np.full(k, -1 / k)]
    r = contrast_from_totals(np.concatenate([real, syn], 1), counts, cell, weights)
    return float(np.mean(r["p_value"] < 0.05))


def crossing(values, powers, target=0.8):
    """Where the simulated power curve crosses ``target`` (linear interpolation)."""
    return float(np.interp(target, powers, values))


def test_icc_estimate_recovers_the_simulated_value_and_is_assumed_without_two_grids():
    rng = np.random.default_rng(0)
    right = beta_binomial(rng, 1, 7, 12, 30, 0.2, 0.6)[0]
    values = np.concatenate([np.r_[np.ones(int(r)), np.zeros(30 - int(r))] for r in right.ravel()])
    groups = np.repeat(np.arange(84), 30)
    classes = np.repeat(np.arange(7), 12 * 30)
    est = icc_anova(values, classes, groups)
    assert not est.assumed and est.classes_used == 7
    assert est.low < 0.2 < est.high and abs(est.value - 0.2) < 0.08
    single = icc_anova(values[:60], np.r_[np.zeros(30), np.ones(30)], groups[:60], assumed=0.15)
    assert single.assumed and single.value == 0.15 and "assumed" in single.text()
    design = design_of(classes, values, groups, [f"c{i}" for i in range(7)], real_y=np.repeat(np.arange(7), 100))
    assert design.testable and design.grids_per_class["c0"] == 12 and design.faces_per_grid == 30


def test_planner_mde_matches_a_direct_simulation_within_two_points():
    for g in (2, 4):
        mde = 100 * mde_gap(g, 30, 429, 0.2, classes=7)
        gaps = mde + np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
        powers = [simulated_power(d / 100, g, seed=i) for i, d in enumerate(gaps)]
        assert np.all(np.diff(powers) > -0.03)
        assert abs(crossing(gaps, powers) - mde) <= 2.0, (g, mde, powers)


def test_planner_grids_for_a_target_gap_match_a_direct_simulation_within_20_percent():
    result = plan(credits=64, target_gap=10)
    needed = result.grids_per_class_needed
    grids = np.arange(max(2, needed - 3), needed + 4)
    powers = [simulated_power(0.10, int(g), seed=int(g)) for g in grids]
    simulated = crossing(grids, powers)
    assert abs(needed - simulated) <= 0.2 * simulated, (needed, simulated, powers)
    assert result.credits_needed == int(np.ceil(needed * 8 / 0.5))


def test_plan_prints_mde_and_warns_below_two_test_grids():
    thirty = plan(credits=30)
    assert 15 < 100 * thirty.mde_gap < 35 and any("warning" in line for line in thirty.lines())
    assert plan(credits=128).mde_gap < thirty.mde_gap
    with pytest.raises(ValueError, match="credits"):
        plan(credits=4)
    curve = mde_curve([2, 4, 8])
    assert curve.shape == (3, 2) and (curve.diff().dropna() < 0).all().all()


def test_mde_from_a_standard_error_is_the_textbook_multiplier():
    assert mde_from_se(1.0, 1e7) == pytest.approx(1.95996 + 0.84162, abs=1e-3)
    assert mde_from_se(1.0, 5) > mde_from_se(1.0, 50) and np.isnan(mde_from_se(float("nan"), 5))


def test_mde_contrast_gives_80_percent_power_to_welchs_t_on_grid_means():
    """Two arms of grids (two prompt templates): at the MDE, Welch's t test on the grid means (scipy)
    rejects in about 80 % of simulated designs; NaN below two grids in an arm."""
    from scipy import stats as st

    from fercore.analysis import mde_contrast

    grids, faces, icc, acc = 8, 30, 0.2, 0.6
    mde = mde_contrast(grids, grids, faces, icc, accuracy=acc)
    sd_grid = np.sqrt(acc * (1 - acc) * (1 + (faces - 1) * icc) / faces)  # SD of a grid's mean accuracy
    rng = np.random.default_rng(3)
    a = rng.normal(acc, sd_grid, (4000, grids))
    b = rng.normal(acc - mde, sd_grid, (4000, grids))
    rejected = st.ttest_ind(a, b, axis=1, equal_var=False).pvalue < 0.05
    assert abs(rejected.mean() - 0.8) < 0.03, rejected.mean()
    assert mde_contrast(40, 40, faces, icc, accuracy=acc) < mde < mde_contrast(3, 3, faces, icc, accuracy=acc)
    assert np.isnan(mde_contrast(1, 5, faces, icc))
