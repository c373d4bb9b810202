"""Clustered inference: the CR2 contrast against textbook tests, the stratified bootstrap keeps every class."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import balanced_accuracy_score, f1_score

from fercore.analysis.calibration import ece_mce
from fercore.analysis.clustered import (
    balanced_contrast,
    bootstrap_ece,
    bootstrap_macro_f1,
    linear_contrast,
    stratified_weights,
)


def test_independent_faces_in_one_class_reduce_to_welch():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.3, 1.0, 40), rng.normal(0.0, 2.0, 25)
    values = np.r_[a, b]
    cells = np.r_[np.zeros(40, int), np.ones(25, int)]
    result = linear_contrast(values, cells, np.arange(65), [1.0, -1.0])
    welch = stats.ttest_ind(a, b, equal_var=False)
    assert result.estimate == pytest.approx(a.mean() - b.mean())
    assert result.p_value == pytest.approx(welch.pvalue, rel=1e-6)
    assert result.se == pytest.approx(np.sqrt(a.var(ddof=1) / 40 + b.var(ddof=1) / 25))


def test_equal_grids_in_one_cell_give_the_t_test_on_grid_means():
    rng = np.random.default_rng(1)
    grid_means = rng.normal(0.0, 1.0, 5)
    values = np.repeat(grid_means, 6) + rng.normal(0, 0.5, 30)
    groups = np.repeat(np.arange(5), 6)
    result = linear_contrast(values, np.zeros(30, int), groups, [1.0])
    means = values.reshape(5, 6).mean(1)
    ref = stats.ttest_1samp(means, 0.0)
    assert result.df == pytest.approx(4.0)
    assert result.p_value == pytest.approx(ref.pvalue)
    bm = linear_contrast(values, np.zeros(30, int), groups, [1.0], df_method="bell-mccaffrey")
    assert bm.df == pytest.approx(4.0) and bm.se == pytest.approx(result.se)


def test_balanced_gap_ignores_class_priors_and_one_grid_is_descriptive_only():
    rng = np.random.default_rng(2)
    y_a = np.r_[np.zeros(900, int), np.ones(100, int)]
    right_a = np.r_[rng.random(900) < 0.9, rng.random(100) < 0.5]
    y_b = np.r_[np.zeros(100, int), np.ones(900, int)]
    right_b = np.r_[rng.random(100) < 0.9, rng.random(900) < 0.5]
    gap = balanced_contrast((y_a, right_a, np.arange(1000)), (y_b, right_b, np.arange(1000)), 2)
    expected = balanced_accuracy_score(y_a, np.where(right_a, y_a, 1 - y_a)) - balanced_accuracy_score(y_b, np.where(right_b, y_b, 1 - y_b))
    assert gap.estimate == pytest.approx(expected)
    assert abs(gap.estimate) < 0.06 and gap.testable and gap.p_value > 0.01
    one_grid = balanced_contrast((y_b, right_b, y_b), None, 2)
    assert not one_grid.testable and np.isnan(one_grid.p_value) and np.isnan(one_grid.low)


def test_paired_change_needs_the_same_faces():
    y = np.repeat(np.arange(2), 20)
    groups = np.repeat(np.arange(8), 5)
    raw, matched = np.ones(40, bool), np.r_[np.ones(30, bool), np.zeros(10, bool)]
    change = balanced_contrast((y, raw, groups), (y, matched, groups), 2, paired=True)
    assert change.estimate == pytest.approx(0.25)
    with pytest.raises(ValueError, match="same faces"):
        balanced_contrast((y, raw, groups), (y[::-1], matched, groups), 2, paired=True)


def test_stratified_bootstrap_keeps_every_class_and_whole_grids():
    groups = np.repeat(np.arange(6), 4)
    strata = np.repeat([0, 0, 1, 1, 2, 2], 4)
    w = stratified_weights(groups, strata, 200, np.random.default_rng(0))
    for c in range(3):
        assert np.all(w[:, strata == c].sum(1) == 8)  # two grids of 4 faces drawn in every class
    assert np.all(w.reshape(200, 6, 4).std(-1) == 0)  # a grid's faces are drawn together


def test_macro_f1_and_ece_intervals_hold_the_reference_estimates():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 400)
    pred = np.where(rng.random(400) < 0.7, y, rng.integers(0, 4, 400))
    groups = np.repeat(np.arange(100), 4)
    f1 = bootstrap_macro_f1(y, pred, groups, n_classes=4, n_boot=300)
    assert f1.estimate == pytest.approx(f1_score(y, pred, average="macro"))
    assert f1.low < f1.estimate < f1.high
    probs = rng.dirichlet(np.ones(4), 400)
    ece = bootstrap_ece(y, probs, groups, n_boot=300)
    assert ece.estimate == pytest.approx(ece_mce(y, probs)["ece"])
    assert ece.low < ece.estimate < ece.high


def test_balanced_gap_of_opposite_priors_is_zero_and_a_recall_difference_shows_as_its_share():
    """Same per-class recall (0.9, 0.3) under opposite priors: pooled accuracies differ by 48 points,
    the balanced gap is 0 and not significant; a 0.4 drop in one of 2 classes is a 0.2 gap."""
    def make(n_easy, n_hard, easy_recall=0.9):
        y = np.r_[np.zeros(n_easy, int), np.ones(n_hard, int)]
        correct = np.r_[np.arange(n_easy) < easy_recall * n_easy, np.arange(n_hard) < 0.3 * n_hard]
        return y, correct, np.arange(len(y))

    a, b = make(900, 100), make(100, 900)
    gap = balanced_contrast(a, b, 2)
    assert gap.estimate == pytest.approx(0.0, abs=1e-12) and gap.p_value > 0.5 and gap.classes == 2
    worse = balanced_contrast(a, make(100, 900, easy_recall=0.5), 2)
    assert worse.estimate == pytest.approx(0.2) and worse.p_value < 0.001 and worse.low > 0.05
