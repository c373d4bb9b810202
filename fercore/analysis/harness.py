"""Calibration harness: does each test keep its level, and each interval its coverage, at a design?

Data are simulated under a true null and every procedure is run on each simulated data set at once
(vectorised over repetitions). The generating model, per kind of data:

* **right/wrong answers** (RQ1, RQ2): K classes with class accuracies spread over 45-80 %; a synthetic
  grid of class c answers each of its faces right with probability expit(logit(mu_c) + u_g),
  u_g ~ N(0, s^2), s^2 = ICC / (1 - ICC) * pi^2 / 3 (the ICC on the latent logit scale); a real face
  is independent with probability E[expit(logit(mu_c) + u)], so both sets have the same balanced
  accuracy (the null holds exactly);
* **paired arms** (raw vs matched, before vs after, same faces): each grid's two arms get effects
  u_g + a_g and u_g - a_g, a_g ~ N(0, s^2 / 4) symmetric, so the expected change is zero.

:func:`calibrate` returns one row per (procedure, design): false-positive rate at alpha and 95 %
interval coverage, each with its Monte-Carlo standard error, and whether it meets the acceptance bar
(FPR <= 7 %, coverage >= 92 %). ``benchmarks/bench_calibration.py`` prints the table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit, logit

from fercore.analysis.agreement import kappa_from_counts
from fercore.analysis.clustered import contrast_from_totals, percentile_interval
from fercore.analysis.replicates import combine

#: Acceptance bar of the harness.
MAX_FPR, MIN_COVERAGE = 0.07, 0.92
#: Procedures :func:`calibrate` knows.
PROCEDURES = ("gap-cr2", "paired-cr2", "balanced-cr2", "factor-cr2", "null-excess-cr2", "replicate-mean-r3", "replicate-mean-r5",
              "bootstrap-widened", "bootstrap-percentile", "gap-wald-bootstrap", "single-checkpoint", "kappa-bootstrap", "kappa-percentile")


def logit_sd(icc: float) -> float:
    """SD of a logit-scale grid effect giving latent intra-class correlation ``icc``."""
    return float(np.sqrt(icc / (1 - icc) * np.pi ** 2 / 3))


def class_accuracies(k: int) -> np.ndarray:
    """The simulated classes' median accuracies (on the grid-effect scale), 45 % to 80 %."""
    return np.linspace(0.45, 0.8, k)


def marginal(mu: np.ndarray, sd: float) -> np.ndarray:
    """E[expit(logit(mu) + u)], u ~ N(0, sd^2), by Gauss-Hermite quadrature (the population recall)."""
    x, w = np.polynomial.hermite_e.hermegauss(40)
    return (expit(logit(mu)[:, None] + sd * x[None, :]) * w).sum(1) / w.sum()


@dataclass(frozen=True)
class Design:
    """One simulated design: grids per class, faces per grid, latent ICC, real faces per class, classes."""

    grids: int
    icc: float
    n_real: int = 100
    faces: int = 36
    classes: int = 7


def _synthetic(rng: np.random.Generator, d: Design, reps: int, shift: np.ndarray | float = 0.0) -> np.ndarray:
    """Right answers per grid, (reps, K, G), with latent grid effects (plus ``shift`` on the logit scale)."""
    mu = logit(class_accuracies(d.classes))[None, :, None]
    u = rng.normal(0.0, logit_sd(d.icc), (reps, d.classes, d.grids))
    return rng.binomial(d.faces, expit(mu + u + shift)).astype(np.float64)


def _layout(d: Design) -> tuple[np.ndarray, np.ndarray]:
    """(faces per cluster, cell per cluster) of a real set (cells 0..K-1) and a synthetic set (K..2K-1)."""
    counts = np.r_[np.ones(d.classes * d.n_real), np.full(d.classes * d.grids, float(d.faces))]
    cell = np.r_[np.repeat(np.arange(d.classes), d.n_real), d.classes + np.repeat(np.arange(d.classes), d.grids)]
    return counts, cell


def gap_data(rng: np.random.Generator, d: Design, reps: int) -> np.ndarray:
    """Cluster sums (reps, clusters) of a real set and a synthetic set with equal balanced accuracy."""
    p_real = marginal(class_accuracies(d.classes), logit_sd(d.icc))
    real = (rng.random((reps, d.classes, d.n_real)) < p_real[None, :, None]).astype(np.float64)
    return np.concatenate([real.reshape(reps, -1), _synthetic(rng, d, reps).reshape(reps, -1)], axis=1)


def _summary(reject: np.ndarray, covered: np.ndarray, testable: np.ndarray | None = None) -> dict[str, float]:
    """FPR and coverage with Monte-Carlo SEs; an untestable data set (one grid in a class: no p-value,
    no interval) counts as no rejection and not covered, so a design without a test cannot meet the bar."""
    n = len(reject)
    fpr, cov = float(np.mean(reject)), float(np.mean(covered))
    return {"reps": n, "testable": float(np.mean(testable)) if testable is not None else 1.0, "fpr": fpr,
            "fpr_se": float(np.sqrt(fpr * (1 - fpr) / n)), "coverage": cov, "coverage_se": float(np.sqrt(cov * (1 - cov) / n))}


def _from_contrast(r: dict[str, np.ndarray], alpha: float) -> dict[str, float]:
    return _summary(r["p_value"] < alpha, (r["low"] <= 0) & (r["high"] >= 0), np.isfinite(r["p_value"]))


def run_gap_cr2(rng: np.random.Generator, d: Design, reps: int, alpha: float = 0.05, df_method: str = "satterthwaite") -> dict:
    """The chapters' gap test (:func:`fercore.analysis.clustered.contrast_from_totals`) under the null."""
    counts, cell = _layout(d)
    weights = np.r_[np.full(d.classes, 1 / d.classes), np.full(d.classes, -1 / d.classes)]
    chunk = max(1, int(2e6 // len(counts)))  # bounded memory with thousands of real faces
    parts = [contrast_from_totals(gap_data(rng, d, min(chunk, reps - start)), counts, cell, weights, df_method=df_method)
             for start in range(0, reps, chunk)]
    return _from_contrast({key: np.concatenate([np.atleast_1d(p[key]) for p in parts]) for key in ("p_value", "low", "high")}, alpha)


def run_paired_cr2(rng: np.random.Generator, d: Design, reps: int, alpha: float = 0.05) -> dict:
    """Raw-minus-matched (or before-minus-after) change on the same grids, under the null."""
    mu = logit(class_accuracies(d.classes))[None, :, None]
    u = rng.normal(0.0, logit_sd(d.icc), (reps, d.classes, d.grids))
    a = rng.normal(0.0, logit_sd(d.icc) / 2, u.shape)
    change = rng.binomial(d.faces, expit(mu + u + a)) - rng.binomial(d.faces, expit(mu + u - a))
    cell = np.repeat(np.arange(d.classes), d.grids)
    r = contrast_from_totals(change.reshape(reps, -1).astype(np.float64), np.full(len(cell), float(d.faces)), cell,
                             np.full(d.classes, 1 / d.classes))
    return _from_contrast(r, alpha)


def run_balanced_cr2(rng: np.random.Generator, d: Design, reps: int, alpha: float = 0.05) -> dict:
    """Interval of one synthetic set's balanced accuracy (CR2 t): coverage of the population value."""
    truth = marginal(class_accuracies(d.classes), logit_sd(d.icc)).mean()
    sums = _synthetic(rng, d, reps).reshape(reps, -1)
    cell = np.repeat(np.arange(d.classes), d.grids)
    r = contrast_from_totals(sums - d.faces * truth, np.full(len(cell), float(d.faces)), cell, np.full(d.classes, 1 / d.classes))
    return _from_contrast(r, alpha)


def run_factor_cr2(rng: np.random.Generator, d: Design, reps: int, alpha: float = 0.05) -> dict:
    """A prompt factor's level against its reference (RQ1's factor effects, issue 31) under the null: per class,
    ``d.grids`` grids at each of two levels with the same accuracy; the class-balanced difference of the
    (class, level) cell means, grids as clusters on both sides (CR2, Satterthwaite t)."""
    sums = np.concatenate([_synthetic(rng, d, reps).reshape(reps, -1), _synthetic(rng, d, reps).reshape(reps, -1)], axis=1)
    per_level = np.repeat(np.arange(d.classes), d.grids)
    cell = np.r_[per_level, d.classes + per_level]
    weights = np.r_[np.full(d.classes, -1 / d.classes), np.full(d.classes, 1 / d.classes)]
    return _from_contrast(contrast_from_totals(sums, np.full(len(cell), float(d.faces)), cell, weights), alpha)


def matched_logits(p: np.ndarray, sd: float) -> np.ndarray:
    """Per class, the median logit whose population recall under grid effects of SD ``sd`` is ``p`` (:func:`marginal` inverted)."""
    from scipy.optimize import brentq

    return np.array([brentq(lambda m, t=t: marginal(np.array([expit(m)]), sd)[0] - t, -12.0, 12.0) for t in p])


def run_null_excess_cr2(rng: np.random.Generator, d: Design, reps: int, alpha: float = 0.05) -> dict:
    """RQ1's excess over the null arm (:mod:`fercore.studies.rq1_null`) under the null: per class, ``d.grids`` synthetic
    grids of ``d.faces`` faces (ICC ``d.icc``) and as many null grids of real faces, which hold fewer kept faces (85 %)
    and a weaker grid effect (ICC / 4), with the same population recall per class. The excess (gap vs synthetic - gap
    vs null: the real faces cancel) is the class-balanced null - synthetic difference, grids as clusters in both arms
    (CR2, Satterthwaite t)."""
    sd_null, faces_null = logit_sd(d.icc / 4), max(1, int(round(0.85 * d.faces)))
    target = marginal(class_accuracies(d.classes), logit_sd(d.icc))
    mu_null = matched_logits(target, sd_null)[None, :, None]
    null = rng.binomial(faces_null, expit(mu_null + rng.normal(0.0, sd_null, (reps, d.classes, d.grids)))).astype(np.float64)
    sums = np.concatenate([null.reshape(reps, -1), _synthetic(rng, d, reps).reshape(reps, -1)], axis=1)
    per_arm = np.repeat(np.arange(d.classes), d.grids)
    cell = np.r_[per_arm, d.classes + per_arm]
    counts = np.r_[np.full(len(per_arm), float(faces_null)), np.full(len(per_arm), float(d.faces))]
    weights = np.r_[np.full(d.classes, 1 / d.classes), np.full(d.classes, -1 / d.classes)]
    return _from_contrast(contrast_from_totals(sums, counts, cell, weights), alpha)


def run_replicate_mean(rng: np.random.Generator, d: Design, reps: int, replicates: int, alpha: float = 0.05, *,
                       share: float = 0.5, grid_sd: float = 0.05, seed_sd: float = 0.03, shared: float = 0.7,
                       single: bool = False) -> dict:
    """RQ2's replicate-mean change (:func:`fercore.analysis.replicates.combine`) under the null, conditional on the
    training grids. ``d.grids`` training grids per class, each with an effect v_g ~ N(0, grid_sd^2) on the fine-tuned
    model's recall (centred within its class: these grids, on average over draws, change nothing); each replicate
    draws ``share`` of them per class without replacement (at least one) and adds a seed effect ~ N(0, seed_sd^2).
    ``d.n_real`` real test faces per class with recall q_i = expit(logit(mu_c) + w_i) (w_i at ``d.icc``) before, and
    q_i + delta_rc 4 q_i (1 - q_i) after replicate r (so the expected change is exactly zero); a face's answers
    share one uniform draw with probability ``shared`` (the same face tends to be right in every run). ``single``: the
    procedure replicates replaced, the paired CR2 test of one checkpoint's change (replicate 0) read as the effect of
    fine-tuning."""
    k, n, g = d.classes, d.n_real, d.grids
    q = expit(logit(class_accuracies(k))[None, :, None] + rng.normal(0.0, logit_sd(d.icc), (reps, k, n)))
    v = rng.normal(0.0, grid_sd, (reps, k, g))
    v -= v.mean(-1, keepdims=True)
    take = max(1, int(round(share * g)))
    order = np.argsort(rng.random((reps, k, replicates, g)), axis=-1)[..., :take]
    delta = np.take_along_axis(np.broadcast_to(v[:, :, None, :], order.shape[:-1] + (g,)), order, -1).mean(-1)
    delta = np.clip(delta + rng.normal(0.0, seed_sd, delta.shape), -0.25, 0.25)  # (reps, k, R)
    u = rng.random((reps, k, n))
    before = (u < q).astype(np.float64)
    fresh = rng.random((reps, k, replicates, n))
    u_after = np.where(rng.random(fresh.shape) < shared, u[:, :, None, :], fresh)
    p_after = q[:, :, None, :] + delta[..., None] * 4 * q[:, :, None, :] * (1 - q[:, :, None, :])
    after = (u_after < p_after).astype(np.float64)  # (reps, k, R, n)
    cell = np.repeat(np.arange(k), n)
    if single:
        return _from_contrast(contrast_from_totals((after[:, :, 0] - before).reshape(reps, -1), np.ones(k * n), cell,
                                                   np.full(k, 1 / k)), alpha)
    per_face = (after.mean(2) - before).reshape(reps, -1)
    test = contrast_from_totals(per_face, np.ones(k * n), cell, np.full(k, 1 / k))
    runs = after.mean(-1).mean(1) - before.mean(-1).mean(1)[:, None]  # (reps, R): each run's balanced change
    r = combine(test["estimate"], test["se"] ** 2, test["df"], [runs.var(1, ddof=1)], [replicates])
    return _from_contrast(r, alpha)


def run_bootstrap(rng: np.random.Generator, d: Design, reps: int, n_boot: int = 200, widen: bool = True) -> dict:
    """Stratified cluster-bootstrap interval of one synthetic set's balanced accuracy (the resampling
    behind the macro-F1 and ECE intervals), widened for few clusters (:func:`~fercore.analysis.clustered.widening`)
    or plain percentile: coverage, and 'rejection' = the interval misses the truth."""
    truth = marginal(class_accuracies(d.classes), logit_sd(d.icc)).mean()
    sums = _synthetic(rng, d, reps)
    draws = np.empty((reps, n_boot))
    for start in range(0, reps, 100):
        block = sums[start:start + 100]
        w = rng.multinomial(d.grids, np.full(d.grids, 1 / d.grids), size=(n_boot, len(block), d.classes))
        draws[start:start + 100] = ((w * block[None]).sum(-1) / (d.grids * d.faces)).mean(-1).T
    if widen:
        estimate = (sums / d.faces).mean(-1).mean(-1)
        low, high = percentile_interval(estimate, draws, [d.grids] * d.classes)
    else:
        low, high = np.quantile(draws, [0.025, 0.975], axis=1)
    covered = (low <= truth) & (high >= truth)
    return _summary(~covered, covered, np.isfinite(low))


def run_gap_wald_bootstrap(rng: np.random.Generator, d: Design, reps: int, alpha: float = 0.05, n_boot: int = 200) -> dict:
    """The procedure this harness replaced: a cluster bootstrap not stratified by class (a class may
    vanish from a draw), percentile interval, and a Wald p-value from the bootstrap SE."""
    data = gap_data(rng, d, reps)
    counts, cell = _layout(d)
    n_real = d.classes * d.n_real
    reject, covered = np.zeros(reps, bool), np.zeros(reps, bool)
    for i in range(reps):
        diffs = np.zeros(n_boot)
        for sign, part in ((1.0, slice(0, n_real)), (-1.0, slice(n_real, None))):
            s, n, c = data[i, part], counts[part], cell[part] % d.classes
            w = rng.multinomial(len(s), np.full(len(s), 1 / len(s)), size=n_boot).astype(np.float64)
            onehot = np.eye(d.classes)[c]
            with np.errstate(invalid="ignore", divide="ignore"):
                diffs += sign * np.nanmean((w @ (s[:, None] * onehot)) / (w @ (n[:, None] * onehot)), axis=1)
        estimate = np.mean([data[i, cell == j].sum() / counts[cell == j].sum() for j in range(d.classes)]) - np.mean(
            [data[i, cell == d.classes + j].sum() / counts[cell == d.classes + j].sum() for j in range(d.classes)])
        se = np.nanstd(diffs, ddof=1)
        reject[i] = 2 * stats.norm.sf(abs(estimate) / se) < alpha
        low, high = np.nanquantile(diffs, [0.025, 0.975])
        covered[i] = low <= 0 <= high
    return _summary(reject, covered)


def run_kappa_bootstrap(rng: np.random.Generator, d: Design, reps: int, n_boot: int = 200, agree: float = 0.8,
                        widen: bool = True) -> dict:
    """The label sheet's Cohen's kappa (prompt against person, :func:`fercore.synthetic.label_agreement`): ``d.grids``
    grids of ``d.faces`` faces per prompt emotion; the person reads a face as its prompt with probability
    expit(logit(``agree``) + u_g) (grid effect u_g at ``d.icc``), else as one of the other emotions at random, so both
    codings have uniform margins and the population kappa is (m - 1/K) / (1 - 1/K), m the mean agreement. The interval
    is the stratified grid bootstrap's percentile interval widened for few grids (``widen`` False: the plain percentile
    interval it replaced): coverage of the population kappa, and 'rejection' = the interval misses it."""
    counts, truth = kappa_data(rng, d, reps, agree)
    k, g = d.classes, d.grids
    estimate = kappa_from_counts(counts.sum(2))
    w = np.moveaxis(rng.multinomial(g, np.full(g, 1 / g), size=(n_boot, reps, k)), 0, 1).astype(np.float64)  # (reps, boot, k, g)
    draws = kappa_from_counts(np.einsum("rbcg,rcge->rbce", w, counts))
    if widen:
        low, high = percentile_interval(estimate, draws, [g] * k)
    else:
        low, high = np.nanquantile(draws, [0.025, 0.975], axis=-1) if g > 1 else (np.full(reps, np.nan),) * 2
    low, high = np.maximum(low, -1.0), np.minimum(high, 1.0)  # kappa's range, as the label sheet clips it
    covered = (low <= truth) & (high >= truth)
    return _summary(~covered, covered, np.isfinite(low))


def kappa_data(rng: np.random.Generator, d: Design, reps: int, agree: float = 0.8) -> tuple[np.ndarray, float]:
    """Per data set, prompt emotion and grid, how many faces the person read as each emotion ``(reps, K, G, K)``, and
    the population kappa (:func:`run_kappa_bootstrap`'s model)."""
    k, g = d.classes, d.grids
    m = marginal(np.array([agree]), logit_sd(d.icc))[0]
    truth = (m - 1 / k) / (1 - 1 / k)
    right = rng.binomial(d.faces, expit(logit(agree) + rng.normal(0.0, logit_sd(d.icc), (reps, k, g))))
    wrong = rng.multinomial(d.faces - right.reshape(-1), np.full(k - 1, 1 / (k - 1))).reshape(reps, k, g, k - 1)
    counts = np.zeros((reps, k, g, k))  # per grid: how many of its faces the person read as each emotion
    for c in range(k):
        counts[:, c, :, c] = right[:, c]
        counts[:, c, :, [e for e in range(k) if e != c]] = np.moveaxis(wrong[:, c], -1, 0)
    return counts, float(truth)


RUNNERS = {"gap-cr2": run_gap_cr2, "paired-cr2": run_paired_cr2, "balanced-cr2": run_balanced_cr2, "factor-cr2": run_factor_cr2,
           "null-excess-cr2": run_null_excess_cr2,
           "replicate-mean-r3": lambda rng, d, reps: run_replicate_mean(rng, d, reps, 3),
           "replicate-mean-r5": lambda rng, d, reps: run_replicate_mean(rng, d, reps, 5),
           "single-checkpoint": lambda rng, d, reps: run_replicate_mean(rng, d, reps, 1, single=True),
           "bootstrap-widened": run_bootstrap,
           "bootstrap-percentile": lambda rng, d, reps: run_bootstrap(rng, d, reps, widen=False), "gap-wald-bootstrap": run_gap_wald_bootstrap,
           "kappa-bootstrap": run_kappa_bootstrap, "kappa-percentile": lambda rng, d, reps: run_kappa_bootstrap(rng, d, reps, widen=False)}


def calibrate(procedures: Iterable[str], designs: Iterable[Design], reps: int | dict[Design, int], *, seed: int = 0) -> pd.DataFrame:
    """One row per (procedure, design): reps, fpr, fpr_se, coverage, coverage_se, meets (the bar).
    ``reps`` is one count or a count per design; the seed is fixed per (procedure, design)."""
    rows = []
    for p_index, procedure in enumerate(procedures):
        if procedure not in RUNNERS:
            raise ValueError(f"unknown procedure {procedure!r}; known: {PROCEDURES}")
        for d_index, d in enumerate(designs):
            n = reps[d] if isinstance(reps, dict) else reps
            rng = np.random.default_rng([seed, p_index, d_index])
            result = RUNNERS[procedure](rng, d, n)
            rows.append({"procedure": procedure, **asdict(d), **result,
                         "meets": result["fpr"] <= MAX_FPR and result["coverage"] >= MIN_COVERAGE})
    return pd.DataFrame(rows)


def table_text(table: pd.DataFrame) -> str:
    """The calibration table as Markdown (percentages with their Monte-Carlo SEs)."""
    lines = ["| procedure | grids/class | ICC | real/class | reps | testable % | FPR % (MC SE) | coverage % (MC SE) | meets bar |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.procedure} | {r.grids} | {r.icc} | {r.n_real} | {r.reps} | {100 * r.testable:.0f} | {100 * r.fpr:.1f} ({100 * r.fpr_se:.1f}) "
                     f"| {100 * r.coverage:.1f} ({100 * r.coverage_se:.1f}) | {'yes' if r.meets else 'no'} |")
    return "\n".join(lines)
