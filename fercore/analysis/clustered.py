"""Inference under clustering, in one place: synthetic faces come in grids (one prompt, one image),
so the faces of a grid are not independent; a real photograph is its own cluster.

* :func:`linear_contrast` : a linear contrast of per-cell means (a cell is a set x class, e.g. the
  balanced-accuracy gap real - synthetic) with the CR2 cluster-robust variance (Bell & McCaffrey 2002;
  Pustejovsky & Tipton 2018) and a Student t test and interval with Satterthwaite degrees of freedom.
  It holds its level with few clusters, where a Wald test from a bootstrap standard error does not
  (see :mod:`fercore.analysis.harness` and ``docs/calibration.md``);
* :func:`balanced_contrast` : the balanced-accuracy gap of two independent sets, the balanced accuracy
  of one set, or a paired change on the same faces (raw minus matched, before minus after);
* :func:`stratified_weights` : a stratified cluster bootstrap, whole clusters resampled within each
  class, so every draw keeps every class and estimates the same quantity (Davison & Hinkley 1997, 3.8);
  :func:`bootstrap_accuracy`, :func:`bootstrap_macro_f1` and :func:`bootstrap_ece` use it for their
  intervals, percentile intervals widened for few clusters (:func:`widening`); the plain percentile
  interval under-covers (78 % at two grids per class, 91 % at eight in the harness). It is the library's
  one bootstrap for scores: :func:`score_intervals` gives the three intervals that
  :func:`fercore.analysis.metrics.evaluate_predictions` writes to metrics.json. With every face its own
  cluster it is the ordinary bootstrap of faces, stratified by class.

Each cluster must lie within one cell; the grids of this project hold one emotion each. A cluster that
spans classes is split into one cluster per class (documented, not hidden: the result says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import stats

from fercore.analysis.calibration import ece_mce

#: Degrees-of-freedom methods of :func:`contrast_from_totals`.
DF_METHODS = ("satterthwaite", "bell-mccaffrey")


@dataclass(frozen=True)
class Contrast:
    """A linear contrast of cell means: estimate, CR2 standard error, Satterthwaite df, t test, 95 % interval."""

    estimate: float
    se: float
    df: float
    low: float
    high: float
    p_value: float
    clusters: int
    min_clusters: int  # fewest clusters in a cell that the contrast weighs
    testable: bool  # False where a weighted cell has one cluster: no variance estimate, descriptive only
    classes: int = 0  # classes averaged over (balanced contrasts: those with faces in every set)


def _cell_parts(sums: np.ndarray, counts: np.ndarray, cell: np.ndarray, n_cells: int) -> tuple[np.ndarray, ...]:
    """Per-cell totals N_c, means and, per cluster, the residual sum S_g and leverage h_g = n_g / N_c."""
    onehot = np.zeros((len(cell), n_cells))
    onehot[np.arange(len(cell)), cell] = 1.0
    n_cell = counts @ onehot
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (sums @ onehot) / n_cell
    fitted = mean[..., cell]
    resid = sums - counts * fitted
    lev = counts / n_cell[..., cell]
    return n_cell, mean, resid, lev, onehot


def contrast_from_totals(
    sums: np.ndarray, counts: np.ndarray, cell: np.ndarray, weights: np.ndarray, *, df_method: str = "satterthwaite",
    level: float = 0.95,
) -> dict[str, np.ndarray]:
    """Vectorised core of :func:`linear_contrast` on cluster totals. ``sums`` (..., G): the sum of the
    outcome in each cluster (leading axes: independent data sets, e.g. simulation repetitions);
    ``counts`` (G,) or (..., G): faces per cluster (0 for padding); ``cell`` (G,): each cluster's cell;
    ``weights`` (C,): the contrast over cell means. Returns arrays ``estimate, se, df, low, high, p_value``.

    CR2 for cell means has a closed form: with h_g = n_g / N_c the cluster's leverage, the variance is
    sum_g w_c^2 S_g^2 / (N_c^2 (1 - h_g)), S_g the cluster's residual sum. ``satterthwaite`` pools the
    cells' variances with Welch-Satterthwaite df, each cell with (its clusters - 1) df; ``bell-mccaffrey``
    uses the Bell-McCaffrey df under working independence (design only)."""
    if df_method not in DF_METHODS:
        raise ValueError(f"df_method must be one of {DF_METHODS}, got {df_method!r}")
    sums, counts = np.asarray(sums, dtype=np.float64), np.asarray(counts, dtype=np.float64)
    cell, w = np.asarray(cell, dtype=np.int64), np.asarray(weights, dtype=np.float64)
    counts = np.broadcast_to(counts, sums.shape)
    n_cell, mean, resid, lev, onehot = _cell_parts(sums, counts, cell, len(w))
    used = counts > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        per_cluster = np.where(used, resid ** 2 / (1 - lev), 0.0) * (w[cell] / n_cell[..., cell]) ** 2
    var_cell = per_cluster @ onehot
    clusters = used.astype(np.float64) @ onehot
    estimate = np.nansum(np.where(w != 0, mean * w, 0.0), axis=-1)
    var = var_cell.sum(-1)
    if df_method == "satterthwaite":
        with np.errstate(invalid="ignore", divide="ignore"):
            denom = np.where(w != 0, var_cell ** 2 / (clusters - 1), 0.0).sum(-1)
            df = var ** 2 / denom
    else:
        df = _bell_mccaffrey_df(counts, lev, n_cell, cell, w, onehot)
    df = np.where(np.isfinite(df) & (df > 0), df, np.nan)
    se = np.sqrt(var)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = estimate / se
        p = np.where(se > 0, 2 * stats.t.sf(np.abs(t), df), np.where(estimate == 0, 1.0, 0.0))
    with np.errstate(invalid="ignore"):
        half = np.where(se > 0, stats.t.ppf(0.5 + level / 2, df) * se, 0.0)  # no spread at all: a point interval
    few = np.where(w != 0, clusters, np.inf).min(-1) < 2
    nan = np.full(np.shape(estimate), np.nan)
    return {"estimate": estimate, "se": np.where(few, nan, se), "df": np.where(few, nan, df),
            "low": np.where(few, nan, estimate - half), "high": np.where(few, nan, estimate + half),
            "p_value": np.where(few, nan, p), "min_clusters": np.where(w != 0, clusters, np.inf).min(-1)}


def _bell_mccaffrey_df(counts, lev, n_cell, cell, w, onehot) -> np.ndarray:
    """Bell-McCaffrey df under working independence, from the design alone (closed form for cell means)."""
    nc = n_cell[..., cell]
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.where(counts > 0, counts * w[cell] ** 2 / (nc ** 2 * (1 - lev)), 0.0)
        a2 = np.where(counts > 0, counts ** 2 * w[cell] ** 2 / (nc ** 2 * (1 - lev)), 0.0)
        trace = (w ** 2 / n_cell)
        sq = (d ** 2) @ onehot - 2 * ((d * a2 / nc) @ onehot) + ((a2 @ onehot) / n_cell) ** 2
        return np.nansum(np.where(w != 0, trace, 0.0), -1) ** 2 / np.nansum(np.where(w != 0, sq, 0.0), -1)


def _clusters_within(strata: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Clusters as (stratum, group) pairs: (first face of each cluster, each face's cluster index)."""
    keys = np.array([f"{s}\x1f{g}" for s, g in zip(np.asarray(strata).tolist(), np.asarray(groups).tolist())], dtype=object)
    _, first, gid = np.unique(keys, return_index=True, return_inverse=True)
    return first, gid


def cluster_totals(values: np.ndarray, cells: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sum of ``values``, faces, cell) per cluster, a cluster being one (group, cell) pair."""
    first, gid = _clusters_within(cells, groups)
    sums = np.bincount(gid, weights=np.asarray(values, dtype=np.float64))
    counts = np.bincount(gid).astype(np.float64)
    return sums, counts, np.asarray(cells)[first]


def linear_contrast(values: np.ndarray, cells: np.ndarray, groups: np.ndarray, weights: Sequence[float], *,
                    df_method: str = "satterthwaite", level: float = 0.95) -> Contrast:
    """sum_c w_c mean_c of per-face ``values`` (``cells``: each face's cell index 0..C-1, ``groups``: its
    cluster) with a CR2 t test and interval (:func:`contrast_from_totals`)."""
    values, cells = np.asarray(values, dtype=np.float64), np.asarray(cells, dtype=np.int64)
    if len(values) == 0:
        raise ValueError("no faces to compare")
    w = np.asarray(weights, dtype=np.float64)
    sums, counts, cell = cluster_totals(values, cells, groups)
    empty = [c for c in np.flatnonzero(w) if not (cell == c).any()]
    if empty:
        raise ValueError(f"cells {empty} have weight but no faces: leave those classes out of the contrast")
    r = contrast_from_totals(sums, counts, cell, w, df_method=df_method, level=level)
    few = int(r["min_clusters"])
    return Contrast(float(r["estimate"]), float(r["se"]), float(r["df"]), float(r["low"]), float(r["high"]), float(r["p_value"]),
                    len(sums), few, few >= 2)


def balanced_contrast(a: tuple[np.ndarray, np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
                      n_classes: int, *, paired: bool = False, df_method: str = "satterthwaite") -> Contrast:
    """Balanced accuracy (mean per-class recall over the classes of ``range(n_classes)`` with faces in
    every set, as ``Contrast.classes``) as a linear contrast, each set given as (true class index, right/wrong, group):

    * ``b`` None: the balanced accuracy of ``a`` with its interval;
    * two independent sets: balanced accuracy of ``a`` minus that of ``b``;
    * ``paired``: the same faces in the same order answered twice (raw and matched, before and after):
      the mean per-class change ``a - b``, the face's grid its cluster in both."""
    y_a, right_a, g_a = (np.asarray(x) for x in a)
    y_b = np.asarray(b[0]) if b is not None else y_a
    present = np.intersect1d(np.unique(y_a), np.unique(y_b))
    present = present[(present >= 0) & (present < n_classes)]
    if len(present) == 0:
        raise ValueError("no class has faces in both sets: nothing to compare")
    k = len(present)
    keep_a = np.isin(y_a, present)
    if b is None or paired:
        values = right_a.astype(np.float64)
        if paired:
            right_b = np.asarray(b[1])
            if len(y_b) != len(y_a) or not np.array_equal(y_b, y_a):
                raise ValueError("a paired change needs the same faces, in the same order, in both arms")
            values = values - right_b.astype(np.float64)
        c = linear_contrast(values[keep_a], np.searchsorted(present, y_a[keep_a]), g_a[keep_a], np.full(k, 1.0 / k),
                            df_method=df_method)
        return replace(c, classes=k)
    right_b, g_b = np.asarray(b[1]), np.asarray(b[2])
    keep_b = np.isin(y_b, present)
    values = np.r_[right_a[keep_a].astype(np.float64), right_b[keep_b].astype(np.float64)]
    cells = np.r_[np.searchsorted(present, y_a[keep_a]), np.searchsorted(present, y_b[keep_b]) + k]
    groups = np.r_[np.array([f"a:{g}" for g in g_a[keep_a]], dtype=object), np.array([f"b:{g}" for g in g_b[keep_b]], dtype=object)]
    weights = np.r_[np.full(k, 1.0 / k), np.full(k, -1.0 / k)]
    return replace(linear_contrast(values, cells, groups, weights, df_method=df_method), classes=k)


# --------------------------------------------------------------------------- stratified cluster bootstrap


def stratified_weights(groups: np.ndarray, strata: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``n_boot`` x faces bootstrap weights: within each stratum (class) its clusters are drawn with
    replacement, as many as it has, and every face of a drawn cluster counts once per draw."""
    groups, strata = np.asarray(groups), np.asarray(strata)
    first, gid = _clusters_within(strata, groups)
    cluster_stratum = strata[first]
    counts = np.zeros((n_boot, len(first)))
    for s in np.unique(cluster_stratum):
        members = np.flatnonzero(cluster_stratum == s)
        counts[:, members] = rng.multinomial(len(members), np.full(len(members), 1.0 / len(members)), size=n_boot)
    return counts[:, gid]


def _macro_f1_from_confusion(conf: np.ndarray) -> np.ndarray:
    """Macro-F1 over the classes with true faces, from (..., K, K) confusion counts (rows: true)."""
    tp = np.diagonal(conf, axis1=-2, axis2=-1)
    support, predicted = conf.sum(-1), conf.sum(-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(support + predicted > 0, 2 * tp / (support + predicted), 0.0)
    present = support > 0
    return (f1 * present).sum(-1) / present.sum(-1)


@dataclass(frozen=True)
class Resampled:
    """A statistic with its stratified cluster-bootstrap 95 % percentile interval."""

    estimate: float
    low: float  # NaN where a class has one cluster
    high: float
    clusters: int
    min_clusters: int  # fewest clusters in one class


def widening(per_class: Sequence[int], level: float = 0.95) -> float:
    """Factor applied to a stratified cluster bootstrap's percentile half-widths: sqrt(G / (G - 1)) undoes
    the bootstrap's (G - 1) / G shrinkage of the variance (G the fewest clusters in a class) and
    t(df) / z with df = sum over classes of (G_c - 1) allows for few clusters. 1 at large G."""
    g = min(per_class)
    if g < 2:
        return float("nan")
    df = float(sum(c - 1 for c in per_class))
    return float(np.sqrt(g / (g - 1)) * stats.t.ppf(0.5 + level / 2, df) / stats.norm.ppf(0.5 + level / 2))


def percentile_interval(estimate: float, draws: np.ndarray, per_class: Sequence[int], level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of ``draws`` (axis -1), each side's distance from ``estimate`` times
    :func:`widening`; NaN where a class has one cluster (no interval, descriptive only)."""
    low, high = np.nanquantile(draws, [0.5 - level / 2, 0.5 + level / 2], axis=-1)
    factor = widening(per_class, level)
    return estimate - factor * (estimate - low), estimate + factor * (high - estimate)


def _interval(estimate: float, draws: np.ndarray, groups: np.ndarray, y_true: np.ndarray, level: float) -> Resampled:
    per_class = [len(np.unique(np.asarray(groups)[y_true == c])) for c in np.unique(y_true)]
    low, high = percentile_interval(estimate, draws, per_class, level)
    return Resampled(float(estimate), float(low), float(high), int(sum(per_class)), int(min(per_class)))


def bootstrap_macro_f1(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray | None = None, *, n_classes: int | None = None,
                       n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> Resampled:
    """Macro-F1 with a stratified cluster-bootstrap interval (None groups: every face its own)."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    k = n_classes or int(max(y_true.max(), y_pred.max())) + 1
    groups = np.arange(len(y_true)) if groups is None else np.asarray(groups)
    pair = np.zeros((len(y_true), k * k))
    pair[np.arange(len(y_true)), y_true * k + y_pred] = 1.0
    w = stratified_weights(groups, y_true, n_boot, np.random.default_rng(seed))
    draws = _macro_f1_from_confusion((w @ pair).reshape(n_boot, k, k))
    estimate = _macro_f1_from_confusion(pair.sum(0).reshape(k, k))
    return _interval(float(estimate), draws, groups, y_true, level)


def bootstrap_accuracy(y_true: np.ndarray, correct: np.ndarray, groups: np.ndarray | None = None, *, n_boot: int = 1000,
                       seed: int = 0, level: float = 0.95) -> Resampled:
    """Accuracy (share right) with a stratified cluster-bootstrap interval (None groups: every face its own)."""
    y_true, correct = np.asarray(y_true, dtype=np.int64), np.asarray(correct, dtype=np.float64)
    groups = np.arange(len(y_true)) if groups is None else np.asarray(groups)
    w = stratified_weights(groups, y_true, n_boot, np.random.default_rng(seed))
    return _interval(float(correct.mean()), (w @ correct) / w.sum(1), groups, y_true, level)


def bootstrap_ece(y_true: np.ndarray, probs: np.ndarray, groups: np.ndarray | None = None, *, n_bins: int = 15, n_boot: int = 1000,
                  seed: int = 0, level: float = 0.95) -> Resampled:
    """Expected calibration error (top-1, equal-width bins as :func:`fercore.analysis.calibration.ece_mce`)
    with a stratified cluster-bootstrap interval."""
    y_true, probs = np.asarray(y_true, dtype=np.int64), np.asarray(probs, dtype=np.float64)
    groups = np.arange(len(y_true)) if groups is None else np.asarray(groups)
    confidence = probs.max(1)
    correct = (probs.argmax(1) == y_true).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    onehot = np.zeros((len(y_true), n_bins))
    onehot[np.arange(len(y_true)), which] = 1.0
    w = stratified_weights(groups, y_true, n_boot, np.random.default_rng(seed))
    count, conf, right = w @ onehot, w @ (onehot * confidence[:, None]), w @ (onehot * correct[:, None])
    draws = np.abs(right - conf).sum(-1) / count.sum(-1)
    return _interval(ece_mce(y_true, probs, n_bins)["ece"], draws, groups, y_true, level)


def score_intervals(y_true: np.ndarray, y_pred: np.ndarray, probs: np.ndarray, groups: np.ndarray | None = None, *,
                    n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """Accuracy, macro-F1 and ECE of one scored set with stratified cluster-bootstrap intervals
    (:func:`stratified_weights`; ``groups`` None: every face its own cluster), as metrics.json records
    them: one entry per score (``value, low, high, groups, min_clusters, clustered``) and ``interval``,
    a sentence naming the clustering. ``low``/``high`` are NaN where a class has one cluster."""
    y_true = np.asarray(y_true, dtype=np.int64)
    if len(y_true) == 0:
        raise ValueError("no faces to score")
    groups = np.arange(len(y_true)) if groups is None else np.asarray(groups)
    if len(groups) != len(y_true):
        raise ValueError(f"{len(groups)} cluster ids for {len(y_true)} faces: give one per face")
    probs = np.asarray(probs, dtype=np.float64)
    options = {"n_boot": n_boot, "seed": seed, "level": level}
    results = {"accuracy": bootstrap_accuracy(y_true, y_true == np.asarray(y_pred), groups, **options),
               "macro_f1": bootstrap_macro_f1(y_true, y_pred, groups, n_classes=probs.shape[1], **options),
               "ece": bootstrap_ece(y_true, probs, groups, **options)}
    clusters = results["accuracy"].clusters
    out: dict[str, Any] = {name: {"value": r.estimate, "low": r.low, "high": r.high, "groups": r.clusters,
                                  "min_clusters": r.min_clusters, "clustered": r.clusters < len(y_true)}
                           for name, r in results.items()}
    if clusters < len(y_true):
        text = (f"stratified cluster bootstrap over {clusters} clusters of {len(y_true)} faces (whole source grids "
                "resampled within each class; a face without a grid is its own cluster), widened for few clusters")
    else:
        text = f"stratified bootstrap over {len(y_true)} faces (faces resampled within each class; no face shares a cluster)"
    out.update({"interval": text, "level": level, "n_boot": n_boot})
    return out
