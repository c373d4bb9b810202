"""The replicate-mean contrast against a hand computation; its interval widens with replicate-to-replicate spread."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from fercore.analysis import replicate_contrast

Y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1])
BEFORE = np.array([1, 0, 1, 0, 1, 1, 0, 0, 0])
RUNS = [np.array([1, 1, 1, 0, 1, 1, 1, 0, 1]), np.array([1, 1, 0, 0, 1, 1, 1, 1, 0]), np.array([1, 0, 1, 1, 1, 1, 0, 0, 1])]


def balanced(right):
    return np.mean([right[Y == c].mean() for c in (0, 1)])


def test_the_replicate_mean_contrast_matches_a_hand_computation():
    result = replicate_contrast(Y, np.arange(len(Y)), RUNS, [BEFORE])
    per_run = np.array([balanced(r) for r in RUNS]) - balanced(BEFORE)
    assert result.estimate == pytest.approx(per_run.mean())
    np.testing.assert_allclose(result.per_replicate, per_run)
    # test part: every face its own cluster, so CR2 of a cell mean is s_c^2 / n_c; classes weighed 1/2 each
    face = np.mean(RUNS, axis=0) - BEFORE
    cells = [face[Y == c] for c in (0, 1)]
    v_cells = [0.25 * c.var(ddof=1) / len(c) for c in cells]
    between = per_run.var(ddof=1) / 3
    var = sum(v_cells) + between
    df = var ** 2 / (sum(v ** 2 / (len(c) - 1) for v, c in zip(v_cells, cells)) + between ** 2 / 2)
    assert result.test_var == pytest.approx(sum(v_cells)) and result.between_var == pytest.approx(between)
    assert result.se == pytest.approx(np.sqrt(var)) and result.df == pytest.approx(df)
    half = stats.t.ppf(0.975, df) * np.sqrt(var)
    assert (result.low, result.high) == pytest.approx((per_run.mean() - half, per_run.mean() + half))
    assert result.p_value == pytest.approx(2 * stats.t.sf(abs(per_run.mean()) / np.sqrt(var), df))
    assert result.replicated and result.replicates == (3, 1)


def test_the_interval_widens_with_the_spread_between_replicates():
    y, before = np.array([0, 0, 0, 0, 1, 1, 1, 1]), np.array([0, 1, 0, 1, 0, 1, 0, 1])
    alike = [np.array([1, 1, 0, 0, 1, 1, 0, 0]), np.array([0, 0, 1, 1, 0, 0, 1, 1])]  # each run: balanced accuracy 0.5
    spread = [np.array([1, 1, 1, 1, 1, 1, 1, 1]), np.array([0, 0, 0, 0, 0, 0, 0, 0])]  # 1.0 and 0.0; the same face means
    a, b = (replicate_contrast(y, np.arange(8), runs, [before]) for runs in (alike, spread))
    assert a.estimate == b.estimate == 0.0 and a.test_var == pytest.approx(b.test_var)
    assert a.between_var == 0.0 and b.between_var == pytest.approx(0.25)
    assert b.high - b.low > a.high - a.low


def test_one_run_per_arm_covers_the_test_faces_only():
    one = replicate_contrast(Y, np.arange(len(Y)), RUNS[:1], [BEFORE])
    assert not one.replicated and one.between_var == 0.0 and one.se == pytest.approx(np.sqrt(one.test_var))
    with pytest.raises(ValueError, match="same faces"):
        replicate_contrast(Y, np.arange(len(Y)), [RUNS[0][:-1]], [BEFORE])
