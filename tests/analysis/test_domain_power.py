"""The RQ4 MMD test's MDE: defined only where the design can reach alpha, shrinking with grids, and
checked against a direct simulation with the chapter's own test (:func:`mmd_grid_test`)."""

from __future__ import annotations

import numpy as np
import pytest

from fercore.analysis import calibration_rq34 as H
from fercore.analysis import domain_power as D
from fercore.analysis.domain_tests import balanced_design, mmd_grid_test


def test_not_defined_where_the_smallest_p_exceeds_alpha():
    r = D.mmd_mde([36] * 4, [0, 1, 2, 3])  # one grid in each of 4 classes: p >= 1/8
    assert np.isnan(r.mde) and r.min_p == 0.125 and "allow no p below 0.125" in r.text()
    assert D.mmd_mde([36] * 5, [0, 1, 2, 3, 4]).min_p == 0.0625  # 5 pairs: 1/16 > 0.05, still not defined
    assert np.isnan(D.mmd_mde([36] * 5, [0, 1, 2, 3, 4]).mde)


def test_mde_at_the_thesis_scale_and_more_grids():
    """Seed 0, 100 data sets: one grid per emotion (7 pairs, p >= 1/64) needs about 0.9 face SDs, two
    grids about 0.65; each value's power is at least 80 % and the next smaller shift's below."""
    one = D.mmd_mde([30] * 7, list(range(7)))
    two = D.mmd_mde([30] * 14, np.repeat(np.arange(7), 2))
    assert one.mde == pytest.approx(0.92, abs=0.1) and two.mde == pytest.approx(0.66, abs=0.1) and two.mde < one.mde
    assert one.power >= 0.8 and two.power >= 0.8 and one.min_p == pytest.approx(1 / 64)
    assert two.mde_between == pytest.approx(two.mde / np.sqrt(0.2))
    assert "face SDs" in two.text() and "ICC 0.2 assumed" in two.text()


def test_mde_matches_a_direct_simulation_with_the_chapters_test():
    """2 grids of 36 faces in each of 4 classes, 100 real faces per class (8 pairs): at the simulated MDE the
    library's mmd_grid_test (every labelling) rejects in about 80 % of 150 data sets from the harness's model
    plus the shift, at half the MDE in far fewer."""
    r = D.mmd_mde([36] * 8, np.repeat(np.arange(4), 2))
    assert 0.5 < r.mde < 1.5, r
    rng = np.random.default_rng(5)
    power = {}
    for factor in (1.0, 0.5):
        rejected = []
        for rep in range(150):
            feats, syn, klass, group = H._embedding_data(rng, 2, 0.2, 100, 4, 8)
            feats[syn, 0] += factor * r.mde
            design = balanced_design(syn, klass, group, seed=rep)
            rejected.append(mmd_grid_test(feats, design, seed=rep)["p_value"] < 0.05)
        power[factor] = float(np.mean(rejected))
    assert 0.68 <= power[1.0] <= 0.95 and power[0.5] < 0.5, power


def test_bad_design_is_refused():
    with pytest.raises(ValueError, match="one size >= 1 and one class per pair"):
        D.mmd_power(0.5, [36, 36], [0])
