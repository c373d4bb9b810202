"""Findings worded from intervals and equivalence tests, in one place.

Every chapter's finding sentence comes from :func:`finding`, so the rules hold everywhere:

* a **significant** result (p < alpha, or without a p-value an interval that excludes zero) states its
  direction, estimate and interval;
* a result is called **equivalent** ("no difference" in plain words) only through an equivalence test:
  two one-sided tests against ``±margin`` (TOST, Schuirmann 1987, :func:`equivalence`) with p < alpha;
* without an interval (one grid in a class: no valid test) the number is **descriptive only**;
* otherwise the sentence says the difference is **not detectable at this design**, gives the interval
  and, where known, the minimal detectable effect (MDE at 80 % power).

Significance is never compared across arms: a contrast between arms is its own :class:`Comparison`.
:func:`holm` adjusts a family of p-values declared in advance (Holm 1979, statsmodels' reference code).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

__all__ = ["Comparison", "equivalence", "finding", "holm", "verdict"]


@dataclass(frozen=True)
class Comparison:
    """One estimated difference with its interval (95 % unless ``interval`` names another, e.g. a
    simultaneous one over a Holm family) and, optionally, the tests that word it."""

    subject: str  # e.g. "B0 (real-trained) on FER2013 vs synthetic, matched arm"
    quantity: str  # e.g. "balanced-accuracy gap (real - synthetic)"
    estimate: float
    low: float  # the interval ``interval`` names (95 % by default)
    high: float
    p_value: float | None = None
    margin: float | None = None  # equivalence margin, same units as estimate
    p_equivalence: float | None = None  # TOST p-value against ±margin
    mde: float | None = None  # minimal detectable effect at 80 % power
    units: str = "points"
    digits: int = 1  # decimals shown for estimate, interval, margin and MDE
    note: str = ""  # appended as its own sentence (e.g. "descriptive only: one grid per class")
    interval: str = "95 % interval"  # what the interval is, as printed (e.g. "simultaneous 95 % interval, alpha / 12")
    mde_level: str = ""  # the level of the MDE where it is not alpha, as printed (e.g. "alpha / 12")


def equivalence(estimate: float, se: float, df: float | None, margin: float) -> float:
    """TOST p-value (Schuirmann 1987): the larger of the two one-sided t tests of
    ``estimate <= -margin`` and ``estimate >= margin``; ``df`` None or inf uses the normal.
    Below alpha, the difference lies within ``±margin`` at level alpha (the 1 - 2 alpha interval is inside)."""
    if margin <= 0:
        raise ValueError(f"an equivalence margin must be positive, got {margin}")
    if not np.isfinite(se) or se < 0:
        raise ValueError(f"standard error must be finite and >= 0, got {se}")
    if se == 0:
        return 0.0 if abs(estimate) < margin else 1.0
    ref = stats.norm if df is None or not np.isfinite(df) else stats.t(df)
    p_lower = ref.sf((estimate + margin) / se)  # H0: estimate <= -margin
    p_upper = ref.cdf((estimate - margin) / se)  # H0: estimate >= +margin
    return float(max(p_lower, p_upper))


def holm(p_values: Sequence[float], alpha: float = 0.05) -> np.ndarray:
    """Holm-adjusted p-values (Holm 1979) of one family of comparisons declared before the results;
    NaN entries (comparisons that could not be tested) are left out of the family and stay NaN."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], alpha=alpha, method="holm")[1]
    return out


def verdict(c: Comparison, alpha: float = 0.05) -> str:
    """``"significant"``, ``"equivalent"``, ``"both"`` (a difference smaller than the margin), ``"neither"``
    or ``"descriptive"`` (no interval: the design allows no test)."""
    if not (math.isfinite(c.low) and math.isfinite(c.high)):
        return "descriptive"
    if c.p_value is not None and math.isfinite(c.p_value):
        significant = c.p_value < alpha
    else:
        significant = c.low > 0 or c.high < 0
    equivalent = c.margin is not None and c.p_equivalence is not None and c.p_equivalence < alpha
    return {(True, True): "both", (True, False): "significant", (False, True): "equivalent"}.get(
        (significant, equivalent), "neither")


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def finding(c: Comparison, alpha: float = 0.05) -> str:
    """The finding sentence for ``c`` (see the module docstring for the rules)."""
    d = c.digits
    if not (math.isfinite(c.low) and math.isfinite(c.high)):
        text = f"{c.subject}: {c.quantity} {c.estimate:+.{d}f} {c.units}, descriptive only (no valid test or interval at this design)."
        return f"{text} {c.note.rstrip('.')}." if c.note else text
    head = (f"{c.subject}: {c.quantity} {c.estimate:+.{d}f} {c.units} "
            f"({c.interval} {c.low:+.{d}f} to {c.high:+.{d}f}")
    if c.p_value is not None and math.isfinite(c.p_value):
        head += f", {_p(c.p_value)}"
    head += ")"
    kind = verdict(c, alpha)
    margin = f"±{c.margin:.{d}f} {c.units}" if c.margin is not None else ""
    tost = f" (TOST {_p(c.p_equivalence)})" if c.p_equivalence is not None else ""
    if kind in ("significant", "both"):
        direction = "positive" if c.estimate > 0 else "negative"
        text = f"{head}; the difference is significant and {direction}"
        if kind == "both":
            text += f", and equivalent within {margin}{tost}, so it is smaller than the margin"
    elif kind == "equivalent":
        text = f"{head}; equivalent within {margin}{tost}"
    else:
        level = f" and {c.mde_level}" if c.mde_level else ""
        mde = f" (MDE {c.mde:.{d}f} {c.units} at 80 % power{level})" if c.mde is not None and math.isfinite(c.mde) else ""
        text = f"{head}; not detectable at this design{mde}"
        if c.margin is not None:
            text += f", and not shown equivalent within {margin}{tost}"
    text += "."
    if c.note:
        text += f" {c.note.rstrip('.')}."
    return text
