"""Finding sentences: one wording function, from intervals and equivalence tests only."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from fercore.analysis.wording import Comparison, equivalence, finding, holm, verdict

SUBJECT = "B0 on FER2013 vs synthetic, matched arm"
GAP = "balanced-accuracy gap (real - synthetic)"


def test_significant_result_states_direction_estimate_and_interval():
    c = Comparison(SUBJECT, GAP, 12.34, 4.0, 20.7, p_value=0.004, margin=5.0, p_equivalence=0.9, mde=9.0)
    text = finding(c)
    assert verdict(c) == "significant"
    assert text.startswith(SUBJECT)
    assert "+12.3 points" in text and "+4.0 to +20.7" in text and "p = 0.004" in text
    assert "significant and positive" in text
    assert "equivalent" not in text and "not detectable" not in text
    negative = finding(Comparison(SUBJECT, GAP, -8.0, -15.0, -1.0, p_value=0.03))
    assert "significant and negative" in negative


def test_equivalent_result_is_the_only_way_to_no_difference():
    c = Comparison(SUBJECT, GAP, 0.5, -2.5, 3.5, p_value=0.7, margin=5.0, p_equivalence=0.01, mde=4.0)
    text = finding(c)
    assert verdict(c) == "equivalent"
    assert "equivalent within ±5.0 points" in text and "TOST p = 0.010" in text
    assert "significant" not in text and "not detectable" not in text


def test_neither_result_says_not_detectable_with_mde_and_interval():
    c = Comparison(SUBJECT, GAP, 2.6, -10.1, 15.3, p_value=0.66, margin=5.0, p_equivalence=0.35, mde=17.2)
    text = finding(c)
    assert verdict(c) == "neither"
    assert "not detectable at this design (MDE 17.2 points at 80 % power)" in text
    assert "-10.1 to +15.3" in text and "not shown equivalent within ±5.0 points" in text
    assert "no difference" not in text


def test_without_p_value_the_interval_decides_and_a_note_is_appended():
    assert verdict(Comparison("s", "q", 3.0, 1.0, 5.0)) == "significant"
    text = finding(Comparison("s", "q", 3.0, -1.0, 5.0, note="descriptive only: one grid per class"))
    assert "not detectable" in text and text.endswith("one grid per class.")


def test_both_significant_and_equivalent_is_worded_as_smaller_than_the_margin():
    c = Comparison(SUBJECT, GAP, 1.0, 0.5, 1.5, p_value=0.001, margin=5.0, p_equivalence=0.0001)
    assert verdict(c) == "both"
    assert "smaller than the margin" in finding(c)


def test_tost_matches_two_one_sided_t_tests_and_the_interval_rule():
    est, se, df, m = 1.2, 1.5, 9.0, 5.0
    expected = max(stats.t.sf((est + m) / se, df), stats.t.cdf((est - m) / se, df))
    assert equivalence(est, se, df, m) == pytest.approx(expected)
    # TOST at alpha rejects exactly when the 90 % interval lies inside the margin
    half = stats.t.ppf(0.95, df) * se
    assert (equivalence(est, se, df, m) < 0.05) == (est - half > -m and est + half < m)
    assert equivalence(est, se, None, m) < equivalence(est, se, 3.0, m)
    assert equivalence(6.0, 1.0, 20.0, m) > 0.5
    with pytest.raises(ValueError, match="margin"):
        equivalence(0.0, 1.0, 5.0, 0.0)


def test_holm_matches_statsmodels_and_skips_untested():
    p = [0.01, 0.04, float("nan"), 0.03]
    out = holm(p)
    ref = multipletests([0.01, 0.04, 0.03], method="holm")[1]
    np.testing.assert_allclose(out[[0, 1, 3]], ref)
    assert np.isnan(out[2])
    assert out[0] == pytest.approx(0.03)


def test_without_an_interval_the_result_is_descriptive_only():
    c = Comparison(SUBJECT, GAP, 4.0, float("nan"), float("nan"), note="one synthetic test grid in a class")
    assert verdict(c) == "descriptive"
    text = finding(c)
    assert "descriptive only" in text and "+4.0 points" in text and text.endswith("in a class.")
    assert "significant" not in text and "equivalent" not in text


def test_interval_and_mde_level_are_named_where_not_the_plain_95_percent():
    c = Comparison("s", "q", 1.0, -2.0, 4.0, p_value=0.5, mde=6.3, interval="simultaneous 95 % interval, alpha / 8",
                   mde_level="alpha / 8")
    assert finding(c) == ("s: q +1.0 points (simultaneous 95 % interval, alpha / 8 -2.0 to +4.0, p = 0.500); "
                          "not detectable at this design (MDE 6.3 points at 80 % power and alpha / 8).")
    assert "(95 % interval -2.0 to +4.0" in finding(Comparison("s", "q", 1.0, -2.0, 4.0))
