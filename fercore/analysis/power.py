"""Design and power: what a run's design (grids per class, kept faces per grid, the intra-class
correlation) can detect.

* :func:`icc_anova` : the ICC of right/wrong answers within grids, one-way ANOVA pooled over the
  classes with two grids or more, with Searle's F interval; none such: the assumed value, labelled so;
* :func:`design_of` : a :class:`DesignSummary` of a synthetic test set (the chapters' design table);
* :func:`mde_gap` / :func:`mde_mean_difference` : the minimal detectable balanced-accuracy gap and
  region-share (or any mean) difference at 80 % power, for the clustered tests of
  :mod:`fercore.analysis.clustered` (Student t with Welch-Satterthwaite df from the design);
* :func:`mde_contrast` : the same for an accuracy difference between two sets of grids (prompt factors);
* :func:`plan` : the planner behind ``fercore plan-power`` (MDE at a number of credits, credits for a
  target gap), :func:`pilot_design` measures kept faces per grid and the ICC from a pilot run.

The ICC here is on the observed (0/1) scale, the one a pilot measures; the design effect of a grid
of m faces is 1 + (m - 1) ICC (Kish 1965).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from fercore.analysis.plots import save

#: The planner's stated defaults (``fercore plan-power --help`` prints them).
DEFAULTS = {"credits": 30, "kept": 30.0, "test_share": 0.5, "n_real": 3000, "icc": 0.2, "emotions": 8, "classes": 7,
            "accuracy": 0.6, "share_sd": 0.1, "alpha": 0.05, "power": 0.8}


@dataclass(frozen=True)
class ICCEstimate:
    """Intra-class correlation with its 95 % interval; ``assumed``: not measured (no class had two grids)."""

    value: float
    low: float
    high: float
    classes_used: int
    assumed: bool

    def text(self) -> str:
        if self.assumed:
            return f"{self.value:.2f} (assumed: no emotion has two test grids)"
        interval = f" [{self.low:.2f}, {self.high:.2f}]" if np.isfinite(self.low) and np.isfinite(self.high) else ""
        return f"{self.value:.2f}{interval} (pooled over {self.classes_used} emotions)"


def icc_anova(values: np.ndarray, classes: np.ndarray, groups: np.ndarray, *, assumed: float = DEFAULTS["icc"]) -> ICCEstimate:
    """One-way ANOVA ICC of ``values`` (e.g. right/wrong) within ``groups``, grids nested in ``classes``,
    pooled over the classes with >= 2 groups; 95 % interval from the F distribution (Searle 1971),
    exact for balanced normal data and clipped to [0, 1]."""
    frame = pd.DataFrame({"y": np.asarray(values, dtype=np.float64), "c": np.asarray(classes), "g": np.asarray(groups)})
    ssb = ssw = dfb = dfw = n0_num = 0.0
    used = 0
    for _, part in frame.groupby("c"):
        per = part.groupby("g")["y"].agg(["mean", "count", "var"])
        if len(per) < 2:
            continue
        used += 1
        n, mean = per["count"].to_numpy(float), per["mean"].to_numpy()
        ssb += float((n * (mean - part["y"].mean()) ** 2).sum())
        ssw += float(((n - 1) * per["var"].fillna(0.0)).sum())
        dfb += len(per) - 1
        dfw += n.sum() - len(per)
        n0_num += n.sum() - (n ** 2).sum() / n.sum()
    if used == 0 or dfw <= 0:
        return ICCEstimate(float(assumed), float("nan"), float("nan"), 0, True)
    msb, msw, n0 = ssb / dfb, ssw / dfw, n0_num / dfb
    if msw == 0:
        return ICCEstimate(1.0 if msb > 0 else 0.0, float("nan"), float("nan"), used, False)
    f = msb / msw
    icc = (f - 1) / (f + n0 - 1)
    f_low, f_high = f / stats.f.ppf(0.975, dfb, dfw), f / stats.f.ppf(0.025, dfb, dfw)
    low, high = ((x - 1) / (x + n0 - 1) for x in (f_low, f_high))
    return ICCEstimate(float(np.clip(icc, 0, 1)), float(np.clip(low, 0, 1)), float(np.clip(high, 0, 1)), used, False)


@dataclass(frozen=True)
class DesignSummary:
    """A run's design for one comparison: grids per class, kept faces per grid, real faces per class, ICC."""

    grids_per_class: dict[str, int]
    faces_per_grid: float
    real_per_class: dict[str, int]
    icc: ICCEstimate
    testable: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "testable", min(self.grids_per_class.values(), default=0) >= 2)

    def row(self) -> dict[str, object]:
        g = list(self.grids_per_class.values())
        return {"grids per class": f"{min(g)}-{max(g)}" if min(g) != max(g) else str(min(g)),
                "kept faces per grid": round(self.faces_per_grid, 1),
                "real faces per class": int(np.mean(list(self.real_per_class.values()))) if self.real_per_class else 0,
                "ICC": self.icc.text(), "tests": "yes" if self.testable else "no: one grid in a class, descriptive only"}


def design_of(y_true: np.ndarray, right: np.ndarray, groups: np.ndarray, classes: Sequence[str], *,
              real_y: np.ndarray | None = None, assumed_icc: float = DEFAULTS["icc"]) -> DesignSummary:
    """The design of a synthetic test set (class index, right/wrong, grid per face) against a real set
    (``real_y``: its class indices): grids and real faces per class, kept faces per grid, pooled ICC."""
    y_true, groups = np.asarray(y_true), np.asarray(groups)
    grids = {c: len(np.unique(groups[y_true == i])) for i, c in enumerate(classes)}
    faces = pd.Series(groups).value_counts()
    real = {c: int((np.asarray(real_y) == i).sum()) for i, c in enumerate(classes)} if real_y is not None else {}
    return DesignSummary(grids, float(faces.mean()) if len(faces) else 0.0, real, icc_anova(right, y_true, groups, assumed=assumed_icc))


def _components(sd: float, grids: float | Sequence[float], faces_per_grid: float, n_real: float | Sequence[float], icc: float,
                strict: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """Variance components of a balanced mean difference and their degrees of freedom (grids - 1 per
    synthetic class, faces - 1 per real class); None below 2 grids in a class (``strict``)."""
    g = np.atleast_1d(np.asarray(grids, dtype=np.float64))
    n = np.broadcast_to(np.atleast_1d(np.asarray(n_real, dtype=np.float64)), g.shape)
    if g.min() < (2 if strict else 1):
        return None
    k = len(g)
    deff = 1 + (faces_per_grid - 1) * icc
    v = np.r_[sd ** 2 * deff / (g * faces_per_grid), sd ** 2 / n] / k ** 2
    return v, np.r_[np.maximum(g - 1, 1), np.maximum(n - 1, 1)]


def _null_draws(v: np.ndarray, d: np.ndarray, alpha: float, draws: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(estimate's deviation from the truth, the test's critical distance) per Monte Carlo draw."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(draws)
    parts = v[None, :] * rng.chisquare(d[None, :], (draws, len(v))) / d[None, :]
    v_hat = parts.sum(1)
    df_hat = v_hat ** 2 / (parts ** 2 / d[None, :]).sum(1)
    return math.sqrt(v.sum()) * z, stats.t.ppf(1 - alpha / 2, df_hat) * np.sqrt(v_hat)


def power_of(delta: float | np.ndarray, v: np.ndarray, d: np.ndarray, *, alpha: float = 0.05, draws: int = 20000,
             seed: int = 0) -> np.ndarray:
    """Power of the Satterthwaite t test of :mod:`fercore.analysis.clustered` against a true difference
    ``delta``: each variance component estimated with its ``d`` df (scaled chi-square), the df then
    estimated from them as the test does (few grids: the test's df are themselves noisy, which lowers
    its power below the textbook formula's). Monte Carlo with fixed draws, so it is smooth in ``delta``."""
    noise, critical = _null_draws(v, d, alpha, draws, seed)
    shift = np.asarray(delta, dtype=np.float64)[..., None]
    return (np.abs(shift + noise) > critical).mean(-1)


def _mde(v: np.ndarray, d: np.ndarray, alpha: float, power: float, draws: int = 20000) -> float:
    """The smallest difference whose :func:`power_of` reaches ``power`` (bisection on one set of draws)."""
    noise, critical = _null_draws(v, d, alpha, draws, 0)
    low, high = 0.0, 40 * math.sqrt(v.sum())
    for _ in range(40):
        mid = (low + high) / 2
        low, high = (mid, high) if np.mean(np.abs(mid + noise) > critical) < power else (low, mid)
    return high


def mde_from_se(se: float, df: float, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """MDE of a t test whose estimate has standard error ``se`` on ``df`` degrees of freedom (an observed
    design: e.g. a paired change on the same faces); NaN where either is missing."""
    if not (np.isfinite(se) and np.isfinite(df)) or se <= 0 or df <= 0:
        return float("nan")
    return float((stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)) * se)


def mde_mean_difference(sd: float, grids: float | Sequence[float], faces_per_grid: float, n_real: float | Sequence[float], icc: float,
                        *, alpha: float = 0.05, power: float = 0.8, strict: bool = True) -> float:
    """Smallest mean difference (same units as ``sd``) between ``n_real`` independent faces and
    ``grids`` grids of ``faces_per_grid`` faces detectable at ``power`` by the clustered two-sided
    t test at ``alpha``; several entries: the average over classes (a balanced contrast). NaN below
    2 grids in a class (``strict``); otherwise a fractional mean count of grids (a plan) is allowed down to 1."""
    parts = _components(sd, grids, faces_per_grid, n_real, icc, strict)
    return float("nan") if parts is None else _mde(*parts, alpha, power)


def mde_gap(grids: float | Sequence[float], faces_per_grid: float, n_real: float | Sequence[float], icc: float, *,
            accuracy: float = DEFAULTS["accuracy"], classes: int | None = None, alpha: float = 0.05, power: float = 0.8,
            strict: bool = True) -> float:
    """Minimal detectable balanced-accuracy gap (a proportion: 0.17 = 17 points) with ``grids`` test
    grids per class (one number with ``classes``, or one per class) and ``n_real`` real faces per class."""
    g = np.full(classes, float(grids)) if classes is not None and np.ndim(grids) == 0 else np.asarray(grids, dtype=np.float64)
    sd = math.sqrt(accuracy * (1 - accuracy))
    return mde_mean_difference(sd, g, faces_per_grid, n_real, icc, alpha=alpha, power=power, strict=strict)


def mde_contrast(grids_a: float, grids_b: float, faces_per_grid: float, icc: float, *, accuracy: float = DEFAULTS["accuracy"],
                 alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimal detectable accuracy difference (a proportion) between two sets of synthetic grids (two
    levels of a prompt factor: templates, intensity words, generators), each grid a cluster of
    ``faces_per_grid`` faces: the Satterthwaite t test with (grids - 1) df per arm. NaN below 2 grids in an arm."""
    if min(grids_a, grids_b) < 2:
        return float("nan")
    deff = 1 + (faces_per_grid - 1) * icc
    g = np.array([grids_a, grids_b], dtype=np.float64)
    return _mde(accuracy * (1 - accuracy) * deff / (g * faces_per_grid), g - 1, alpha, power)


def grids_needed(target: float, faces_per_grid: float, n_real: float, icc: float, *, classes: int, accuracy: float = DEFAULTS["accuracy"],
                 alpha: float = 0.05, power: float = 0.8, most: int = 500) -> int | None:
    """Fewest test grids per class at which the gap test detects ``target`` with ``power`` (None: not within ``most``)."""
    sd = math.sqrt(accuracy * (1 - accuracy))
    for g in range(2, most + 1):
        v, d = _components(sd, np.full(classes, float(g)), faces_per_grid, n_real, icc, True)
        if power_of(target, v, d, alpha=alpha) >= power:
            return g
    return None


@dataclass(frozen=True)
class Plan:
    """The planner's answer."""

    credits: int
    test_grids_per_class: float
    kept: float
    n_real_per_class: float
    icc: float
    mde_gap: float  # proportion
    mde_share: float  # same units as share_sd
    grids_per_class_needed: int | None = None
    credits_needed: int | None = None
    notes: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        out = [f"design: {self.credits} credits, {self.test_grids_per_class:.2f} test grids per emotion, {self.kept:g} kept faces per grid, "
               f"{self.n_real_per_class:.0f} real test faces per class, ICC {self.icc:g}",
               f"MDE balanced-accuracy gap (80 % power, alpha 0.05): {100 * self.mde_gap:.1f} points",
               f"MDE region-share difference per emotion: {100 * self.mde_share:.1f} points of share"]
        if self.credits_needed is not None:
            out.append(f"grids needed: {self.grids_per_class_needed} test grids per emotion, {self.credits_needed} credits in all")
        return out + list(self.notes)


def plan(*, credits: int = DEFAULTS["credits"], kept: float = DEFAULTS["kept"], test_share: float = DEFAULTS["test_share"],
         n_real: int = DEFAULTS["n_real"], icc: float = DEFAULTS["icc"], emotions: int = DEFAULTS["emotions"],
         classes: int = DEFAULTS["classes"], accuracy: float = DEFAULTS["accuracy"], share_sd: float = DEFAULTS["share_sd"],
         target_gap: float | None = None) -> Plan:
    """MDEs at ``credits`` grids spread evenly over ``emotions`` (``test_share`` of them for testing),
    the gap over ``classes`` shared with the real set of ``n_real`` test faces; with ``target_gap``
    (points), the test grids per emotion and credits that reach it."""
    if not 0 < test_share < 1:
        raise ValueError(f"test_share must lie between 0 and 1, got {test_share}")
    g = credits * test_share / emotions
    per_class = n_real / classes
    notes = []
    if g < 1:
        raise ValueError(f"{credits} credits x test share {test_share} leave fewer test grids than emotions ({emotions}): add credits")
    if g < 2:
        notes.append(f"warning: {g:.2f} test grids per emotion leaves some emotions with one; the tests need 2 per emotion "
                     f"({math.ceil(2 * emotions / test_share)} credits at this split); the MDE above is for the average design")
    gap = mde_gap(g, kept, per_class, icc, accuracy=accuracy, classes=classes, strict=False)
    share = mde_mean_difference(share_sd, g, kept, per_class, icc, strict=False)
    needed = credits_needed = None
    if target_gap is not None:
        needed = grids_needed(target_gap / 100, kept, per_class, icc, classes=classes, accuracy=accuracy)
        credits_needed = math.ceil(needed * emotions / test_share) if needed is not None else None
    return Plan(credits, g, kept, per_class, icc, gap, share, needed, credits_needed, tuple(notes))


def pilot_design(run_folder: str | Path) -> tuple[float, ICCEstimate]:
    """(kept faces per grid, ICC of right/wrong answers) measured from a pilot run's synthetic
    predictions (``**/predictions_synthetic*.csv`` with ``source``, ``label`` and ``pred`` columns)."""
    root = Path(run_folder)
    files = sorted(root.rglob("predictions_synthetic*.csv"))
    if not files:
        raise FileNotFoundError(f"{root}: no predictions_synthetic*.csv below it; run the suite on the pilot grids first")
    preds = pd.read_csv(files[0])
    missing = {"source", "label", "pred"} - set(preds.columns)
    if missing:
        raise ValueError(f"{files[0]}: no {sorted(missing)} column(s); extract the pilot grids with fercore extract so faces keep their grid")
    preds = preds[preds["pred"].notna() & preds["source"].notna()]
    kept = float(preds.groupby("source").size().mean())
    return kept, icc_anova((preds["pred"] == preds["label"]).to_numpy(), preds["label"].to_numpy(), preds["source"].to_numpy())


def mde_curve(grids: Sequence[int], *, kept: float = DEFAULTS["kept"], n_real: float = DEFAULTS["n_real"],
              classes: int = DEFAULTS["classes"], iccs: Sequence[float] = (0.05, 0.2), accuracy: float = DEFAULTS["accuracy"]) -> pd.DataFrame:
    """MDE of the balanced-accuracy gap (points) per test grids per class (rows) and ICC (columns)."""
    table = {f"ICC {icc:g}": [100 * mde_gap(g, kept, n_real / classes, icc, accuracy=accuracy, classes=classes) for g in grids]
             for icc in iccs}
    return pd.DataFrame(table, index=pd.Index(list(grids), name="test grids per class"))


def plot_mde_curve(curve: pd.DataFrame, *, title: str = "What the design can detect"):
    """Line plot of :func:`mde_curve` (a matplotlib Figure)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for column in curve.columns:
        ax.plot(curve.index, curve[column], marker="o", label=column)
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(curve.index), [str(g) for g in curve.index])
    ax.set_xlabel("synthetic test grids per class")
    ax.set_ylabel("MDE of the balanced-accuracy gap (points)")
    ax.axhline(10, color="grey", lw=0.8, ls="--")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(title="intra-class correlation")
    fig.tight_layout()
    return fig


#: Test grids per class on the method chapter's figure.
FIGURE_GRIDS = (2, 3, 4, 6, 8, 12, 16, 24, 32)


def write_mde_figure(path: str | Path, grids: Sequence[int] = FIGURE_GRIDS, **kwargs) -> Path:
    """The method chapter's figure (MDE of the gap against test grids per class, planner defaults) as a PNG;
    ``book/figures/mde_curve.png`` is written by ``fercore plan-power --figure book/figures/mde_curve.png``."""
    kept, n_real, classes = (kwargs.get(k, DEFAULTS[d]) for k, d in (("kept", "kept"), ("n_real", "n_real"), ("classes", "classes")))
    title = f"MDE at 80 % power: {kept:g} kept faces per grid, {n_real / classes:.0f} real faces per class"
    fig = plot_mde_curve(mde_curve(grids, **kwargs), title=title)
    (written,) = save(fig, Path(path).with_suffix(""), formats=("png",))
    plt.close(fig)
    return written
