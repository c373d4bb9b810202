"""RQ3's findings name their interval: the largest difference's is simultaneous over the Holm family
(Bonferroni level alpha / m), the raw-minus-matched contrast's is unadjusted beside Holm's p."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fercore.studies import rq3_tests


def _tests() -> pd.DataFrame:
    return pd.DataFrame({"emotion": ["Happiness", "Happiness", "Fear"], "region": ["mouth", "nose", "mouth"],
                         "difference": [0.10, 0.02, np.nan], "se": [0.01, 0.01, np.nan], "df": [3.0, 3.0, np.nan],
                         "p_value": [0.001, 0.2, np.nan], "p_holm": [0.002, 0.2, np.nan], "grids": [4, 4, 1],
                         "test": [rq3_tests.GRID_LEVEL, rq3_tests.GRID_LEVEL, rq3_tests.ONE_GRID]})


def test_largest_difference_states_a_simultaneous_holm_family_interval():
    text = " ".join(rq3_tests.study_findings("B0, real, fer", _tests()))
    half = 100 * stats.t.ppf(1 - 0.05 / 4, 3.0) * 0.01  # two tested rows: alpha / 2, two-sided
    assert half == pytest.approx(4.18, abs=0.01)
    assert (f"region share (real - synthetic, Holm p) +10.0 points (Holm-family simultaneous 95 % interval, Bonferroni level "
            f"alpha / 2 {10 - half:+.1f} to {10 + half:+.1f}, p = 0.002)") in text
    assert "(95 % interval" not in text and "Fear has one synthetic grid" in text


def test_not_detectable_states_the_mde_at_the_family_level():
    tests = _tests().assign(p_value=[0.3, 0.4, np.nan], p_holm=[0.6, 0.6, np.nan], difference=[0.02, 0.01, np.nan])
    text = " ".join(rq3_tests.study_findings("B0, real, fer", tests))
    assert "not detectable at this design (MDE" in text and "points at 80 % power and alpha / 2)" in text


def test_contrast_interval_is_named_unadjusted():
    contrast = pd.DataFrame({"emotion": ["Happiness"], "region": ["mouth"], "grids": [4], "difference": [0.05], "low": [0.01],
                             "high": [0.09], "p_value": [0.01], "p_holm": [0.04]})
    line = rq3_tests.contrast_finding("B0, real, fer", contrast, _tests())
    assert "+5.0 points (unadjusted 95 % interval +1.0 to +9.0, p = 0.040)" in line
