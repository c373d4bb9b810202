"""What RQ4's grid-swap MMD test can detect: its minimal detectable effect (MDE) at a run's design.

The effect is a **shift of every synthetic face by ``delta`` along one direction** of the standardised
embedding, ``delta`` in face-level standard deviations (a standardised mean difference, Cohen's d along
that direction; ``delta / sqrt(icc)`` in between-grid SDs). Data come from the calibration harness's
embedding model (:mod:`fercore.analysis.calibration_rq34`): class means ``mu_c ~ N(0, 1.5^2 I)`` in
``dims`` dimensions, a real face ``mu_c + e`` (``e ~ N(0, I)``), a synthetic face ``mu_c + b_g + e' +
delta * v`` with a grid-level offset ``b_g ~ N(0, icc I)`` and ``e' ~ N(0, (1 - icc) I)``. Each data set
has the run's pairs (a grid and a block of as many real faces of its class, :class:`~fercore.analysis.
domain_tests.Design`) and is tested as :func:`~fercore.analysis.domain_tests.mmd_grid_test` does:
unbiased MMD² (RBF kernel, median heuristic per data set) with whole pairs swapped, every labelling when
there are few (up to :data:`SIMULATE_ENUMERATED` pairs), else ``draws`` drawn.

Power at ``delta`` is the rejection share over ``reps`` simulated data sets, the same data sets (common
random numbers) for every ``delta``; the MDE is the smallest ``delta`` with power >= the target, by
bisection. Where the design's smallest attainable p exceeds alpha no shift can be detected and the MDE is
not defined (NaN, with the reason). Vectorised over the data sets; cached per design.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fercore.analysis.domain_tests import ENUMERATE_PAIRS, labellings

__all__ = ["DomainMDE", "mmd_mde", "mmd_power"]

CLASS_SD = 1.5  # the harness's spread of class means
#: The simulation enumerates every labelling up to this many pairs (256), and draws ``draws`` above: a Monte-Carlo
#: version of the same test, whose power is at most a little lower than the exact test's (the MDE errs large).
SIMULATE_ENUMERATED = 9


@dataclass(frozen=True)
class DomainMDE:
    """The MMD test's MDE at one design: ``mde`` in face SDs (NaN: not defined, ``reason`` says why)."""

    mde: float
    mde_between: float  # the same shift in between-grid SDs (mde / sqrt(icc))
    power: float  # the simulated power at ``mde``
    pairs: int
    min_p: float
    icc: float
    dims: int
    reps: int
    reason: str = ""

    def text(self) -> str:
        if not math.isfinite(self.mde):
            return f"MDE not defined: {self.reason}"
        return (f"MDE: a shift of the synthetic faces by {self.mde:.2f} face SDs ({self.mde_between:.1f} between-grid SDs) along "
                f"one direction is detected with 80 % power (ICC {self.icc:g} assumed; the harness's {self.dims}-dimensional "
                f"model, {self.reps} simulated data sets)")


def _layout(sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit per face, synthetic per face, first face of each unit); unit 2p is pair p's real block, 2p + 1 its grid."""
    unit = np.repeat(np.arange(2 * len(sizes)), np.repeat(sizes, 2))
    starts = np.r_[0, np.cumsum(np.repeat(sizes, 2))[:-1]]
    return unit, unit % 2 == 1, starts


def _base(rng: np.random.Generator, sizes: np.ndarray, klass: np.ndarray, icc: float, dims: int, reps: int) -> np.ndarray:
    """Simulated faces (reps, faces, dims) under the null, in :func:`_layout`'s order."""
    unit, synthetic, _ = _layout(sizes)
    mu = rng.normal(0, CLASS_SD, (reps, int(klass.max()) + 1, dims))
    offsets = rng.normal(0, math.sqrt(icc), (reps, 2 * len(sizes), dims))
    offsets[:, 0::2] = 0.0  # a real face is its own cluster
    scale = np.where(synthetic, math.sqrt(1 - icc), 1.0)[None, :, None]
    return mu[:, klass[unit // 2]] + offsets[:, unit] + scale * rng.normal(size=(reps, len(unit), dims))


def _reject(x: np.ndarray, sizes: np.ndarray, swaps: np.ndarray, enumerated: bool, alpha: float, pairs_for_median: np.ndarray) -> np.ndarray:
    """Whether the grid-swap MMD test rejects, per data set of ``x`` (reps, faces, dims)."""
    _, synthetic, starts = _layout(sizes)
    x = x.astype(np.float32)  # single precision, in place: the kernel is the cost
    sq = (x * x).sum(-1)
    k = x @ x.transpose(0, 2, 1)
    k *= -2.0
    k += sq[:, :, None]
    k += sq[:, None, :]
    np.maximum(k, 0.0, out=k)  # squared distances
    median = np.median(k[:, pairs_for_median[0], pairs_for_median[1]], axis=1)
    k *= (-1.0 / np.where(median > 0, median, 1.0))[:, None, None].astype(np.float32)
    np.exp(k, out=k)
    k[:, np.arange(k.shape[1]), np.arange(k.shape[1])] = 0.0
    blocks = np.add.reduceat(np.add.reduceat(k, starts, axis=2), starts, axis=1).astype(np.float64)  # (reps, units, units)
    z = np.empty((len(swaps), 2 * len(sizes)))
    z[:, 1::2], z[:, 0::2] = 1 - swaps, swaps
    n = float(synthetic.sum())
    zb, wb = z @ blocks, (1 - z) @ blocks  # (reps, labellings, units)
    within = (zb * z).sum(-1) + (wb * (1 - z)).sum(-1)
    cross = (zb * (1 - z)).sum(-1)
    stat = within / (n * (n - 1)) - 2 * cross / (n * n)
    extreme = stat >= stat[:, :1] - 1e-12
    p = extreme.mean(1) if enumerated else extreme.sum(1) / stat.shape[1]
    return p < alpha


class _Simulation:
    """The simulated data sets of one design (common random numbers for every shift)."""

    def __init__(self, sizes: Sequence[int], klass: Sequence[int], icc: float, dims: int, reps: int, draws: int, seed: int):
        self.sizes, self.klass = np.asarray(sizes, dtype=int), np.asarray(klass, dtype=int)
        if len(self.sizes) != len(self.klass) or len(self.sizes) == 0 or (self.sizes < 1).any():
            raise ValueError("mmd_mde needs one size >= 1 and one class per pair")
        rng = np.random.default_rng([seed, 27])
        self.base = _base(rng, self.sizes, self.klass, icc, dims, reps)
        self.enumerated = len(self.sizes) <= SIMULATE_ENUMERATED
        self.swaps = labellings(len(self.sizes), draws=draws, seed=seed) if self.enumerated else np.vstack(
            [np.zeros((1, len(self.sizes)), np.int8), rng.integers(0, 2, (draws, len(self.sizes)), dtype=np.int8)])
        faces = self.base.shape[1]
        i, j = rng.integers(0, faces, (2, min(20000, faces * (faces - 1) // 2)))
        keep = i != j
        self.median_pairs = np.stack([i[keep], j[keep]])
        self.synthetic = _layout(self.sizes)[1]

    def power(self, delta: float, alpha: float, chunk: int = 8) -> float:
        x = self.base.copy()
        x[:, self.synthetic, 0] += delta
        rejected = [_reject(x[s:s + chunk], self.sizes, self.swaps, self.enumerated, alpha, self.median_pairs)
                    for s in range(0, len(x), chunk)]
        return float(np.concatenate(rejected).mean())


def mmd_power(delta: float, sizes: Sequence[int], klass: Sequence[int], *, icc: float = 0.2, dims: int = 8, alpha: float = 0.05,
              reps: int = 200, draws: int = 199, seed: int = 0) -> float:
    """Simulated power of the grid-swap MMD test against a shift ``delta`` (face SDs), pairs of ``sizes`` faces per side in classes ``klass``."""
    return _Simulation(sizes, klass, icc, dims, reps, draws, seed).power(delta, alpha)


@functools.lru_cache(maxsize=32)
def _cached(sizes: tuple[int, ...], klass: tuple[int, ...], icc: float, dims: int, alpha: float, target: float, reps: int, draws: int,
            seed: int, upper: float, steps: int) -> DomainMDE:
    pairs = len(sizes)
    min_p = 2.0 ** -(pairs - 1) if pairs <= ENUMERATE_PAIRS else 1.0 / (draws + 1)
    common = {"pairs": pairs, "min_p": min_p, "icc": icc, "dims": dims, "reps": reps}
    if min_p >= alpha:
        return DomainMDE(np.nan, np.nan, np.nan, reason=f"the {pairs} grid pairs allow no p below {min_p:.3g}, not below alpha {alpha:g}, "
                         "so no shift of any size can be significant", **common)
    sim = _Simulation(sizes, klass, icc, dims, reps, draws, seed)
    low, high = 0.0, 0.5
    at_high = sim.power(high, alpha)
    while at_high < target:  # doubling to a bracket
        if high >= upper:
            return DomainMDE(np.nan, np.nan, at_high, reason=f"even a shift of {high:g} face SDs is detected with power "
                             f"{100 * at_high:.0f} % only", **common)
        low, high = high, 2 * high
        at_high = sim.power(high, alpha)
    for _ in range(steps):
        mid = (low + high) / 2
        p = sim.power(mid, alpha)
        if p >= target:
            high, at_high = mid, p
        else:
            low = mid
    return DomainMDE(high, high / math.sqrt(icc), at_high, **common)


def mmd_mde(sizes: Sequence[int], klass: Sequence[int], *, icc: float = 0.2, dims: int = 8, alpha: float = 0.05, power: float = 0.8,
            reps: int = 100, draws: int = 199, seed: int = 0, upper: float = 4.0, steps: int = 5) -> DomainMDE:
    """The smallest shift (face SDs, along one direction) the grid-swap MMD test detects with ``power`` at ``alpha``,
    for pairs of ``sizes`` faces per side in classes ``klass`` (see the module docstring): shifts 0.5, 1, 2, ... up to
    ``upper`` until one is detected, then ``steps`` bisection steps in the last doubling (precision 1/32 of it). Cached per design."""
    return _cached(tuple(int(s) for s in sizes), tuple(int(k) for k in klass), float(icc), int(dims), float(alpha), float(power),
                   int(reps), int(draws), int(seed), float(upper), int(steps))
