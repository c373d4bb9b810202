"""RQ1: models trained on real faces, scored unchanged on every real test set and on synthetic faces.

Per model: accuracy with a bootstrap interval, macro-F1, per-class recall and calibration on
each set (:mod:`.scoring`); the real-minus-synthetic accuracy difference with a bootstrap
interval and Fisher's exact test; whether a temperature fitted on real faces calibrates the
synthetic ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..metrics import arrays, ece_mce, fit_temperature, restricted_logits, softmax
from .common import ALPHA, frame, p_text, pct, slug
from .scoring import Scores, SetScore, by_model


@dataclass(frozen=True)
class AccuracyGap:
    """Accuracy on a real set minus accuracy on the synthetic set, for one model."""

    model: str
    real_set: str
    real_accuracy: float
    synthetic_accuracy: float
    difference: float
    low: float  # bootstrap 95% interval of the difference
    high: float
    p_value: float  # Fisher's exact test on the right / wrong counts


def accuracy_gap(real: SetScore, synthetic: SetScore, *, n_boot: int = 2000, seed: int = 0) -> AccuracyGap:
    """Accuracy of ``real`` minus accuracy of ``synthetic`` on two independent test sets: bootstrap
    95% interval of the difference (each set resampled on its own) and the p-value of Fisher's
    exact test on the 2x2 (right / wrong) table. Both treat images as independent."""
    a = np.equal(*arrays(real.preds)[:2])
    b = np.equal(*arrays(synthetic.preds)[:2])
    rng = np.random.default_rng(seed)
    diffs = rng.choice(a, (n_boot, len(a))).mean(axis=1) - rng.choice(b, (n_boot, len(b))).mean(axis=1)
    table = [[int(a.sum()), int((~a).sum())], [int(b.sum()), int((~b).sum())]]
    return AccuracyGap(real.model, real.test_set, float(a.mean()), float(b.mean()), float(a.mean() - b.mean()),
                       float(np.quantile(diffs, 0.025)), float(np.quantile(diffs, 0.975)), float(stats.fisher_exact(table).pvalue))


def accuracy_gaps(scores: Scores, *, seed: int = 0) -> list[AccuracyGap]:
    """:func:`accuracy_gap` for every model and real test set."""
    return [accuracy_gap(per_set[name], per_set["synthetic"], seed=seed)
            for per_set in by_model(scores).values() for name in per_set if name != "synthetic"]


GAP_TITLES = {"model": "model", "real_set": "real test set", "real_accuracy": "accuracy real",
              "synthetic_accuracy": "accuracy synthetic", "difference": "real - synthetic", "low": "95% low",
              "high": "95% high", "p_value": "Fisher p"}


def gap_table(gaps: list[AccuracyGap]) -> pd.DataFrame:
    return frame(gaps, GAP_TITLES, index=["model", "real_set"])


@dataclass(frozen=True)
class CalibrationTransfer:
    """ECE of one model on one set before and after a temperature fitted on half of a real set."""

    model: str
    test_set: str
    temperature: float
    ece_before: float
    ece_after: float
    confidence_before: float
    confidence_after: float
    accuracy: float


def temperature_transfer(per_set: Mapping[str, SetScore], fit_on: str, *, seed: int = 0) -> list[CalibrationTransfer]:
    """Does calibration learnt on real faces carry over? A temperature is fitted on a random half
    of ``fit_on``; ECE before and after it is reported on the other half and on every other set."""
    first = per_set[fit_on]
    logits, y_true = restricted_logits(first.preds, first.classes)
    order = np.random.default_rng(seed).permutation(len(y_true))
    fit_idx, held_idx = order[: len(order) // 2], order[len(order) // 2:]
    temperature = fit_temperature(logits[fit_idx], y_true[fit_idx])
    rows = []
    for name, score in per_set.items():
        z, y = restricted_logits(score.preds, score.classes)
        if name == fit_on:
            z, y, name = z[held_idx], y[held_idx], f"{name} (held-out half)"
        before, after = softmax(z), softmax(z, temperature)
        rows.append(CalibrationTransfer(score.model, name, temperature, ece_mce(y, before)["ece"], ece_mce(y, after)["ece"],
                                        float(before.max(1).mean()), float(after.max(1).mean()), float((before.argmax(1) == y).mean())))
    return rows


CALIBRATION_TITLES = {"model": "model", "test_set": "test set", "temperature": "T", "ece_before": "ECE before",
                      "ece_after": "ECE after", "confidence_before": "mean conf. before", "confidence_after": "mean conf. after",
                      "accuracy": "accuracy"}


def calibration_table(rows: list[CalibrationTransfer]) -> pd.DataFrame:
    return frame(rows, CALIBRATION_TITLES, index=["model", "test_set"])


def findings(scores: Scores, gaps: list[AccuracyGap], calibration: list[CalibrationTransfer]) -> list[str]:
    """Computed statements of fact (numbers, test outcomes at α = 0.05); no interpretation."""
    out = []
    for gap in gaps:
        s_real, s_syn = scores[(gap.model, gap.real_set)], scores[(gap.model, "synthetic")]
        r, y = s_real.summary(), s_syn.summary()
        outcome = (f"higher on {gap.real_set}" if gap.difference > 0 else "higher on synthetic faces") if gap.p_value < ALPHA \
            else "not significantly different"
        out.append(f"{gap.model}: {pct(r.accuracy)} accuracy on {gap.real_set} (95% CI {pct(r.accuracy_low)}–{pct(r.accuracy_high)}), "
                   f"{pct(y.accuracy)} on synthetic faces ({pct(y.accuracy_low)}–{pct(y.accuracy_high)}); difference "
                   f"{100 * gap.difference:+.1f} points (95% CI {100 * gap.low:+.1f} to {100 * gap.high:+.1f}), "
                   f"{outcome} at α = {ALPHA} (Fisher {p_text(gap.p_value)}).")
    for model, per_set in by_model(scores).items():
        recall = per_set["synthetic"].recall()
        best, worst = max(recall, key=recall.get), min(recall, key=recall.get)
        out.append(f"{model} on synthetic faces: highest recall {best} ({pct(recall[best])}), lowest {worst} ({pct(recall[worst])}).")
    for row in calibration:
        if row.test_set == "synthetic":
            out.append(f"{row.model}: a temperature fitted on real faces (T = {row.temperature:.2f}) moves the synthetic ECE "
                       f"from {row.ece_before:.3f} to {row.ece_after:.3f}.")
    return out


def glue_values(scores: Scores, gaps: list[AccuracyGap]) -> dict[str, float | str]:
    """Numbers for the chapter's prose: per model and set ``rq1_<model>_<set>_accuracy`` and
    ``rq1_<model>_<set>_gap`` (points), plus run-independent keys (``rq1_models``,
    ``rq1_best_synthetic_model`` / ``_accuracy``, ``rq1_largest_gap`` / ``_points``)."""
    values: dict[str, float | str] = {}
    for (model, test_set), score in scores.items():
        values[f"rq1_{slug(model)}_{slug(test_set)}_accuracy"] = score.accuracy
    for gap in gaps:
        values[f"rq1_{slug(gap.model)}_{slug(gap.real_set)}_gap"] = 100 * gap.difference
    synthetic = {model: score.accuracy for (model, test_set), score in scores.items() if test_set == "synthetic"}
    best = max(synthetic, key=synthetic.get)
    widest = max(gaps, key=lambda g: abs(g.difference))
    values.update({"rq1_models": ", ".join(synthetic), "rq1_best_synthetic_model": best,
                   "rq1_best_synthetic_accuracy": 100 * synthetic[best],
                   "rq1_largest_gap": f"{widest.model} on {widest.real_set}", "rq1_largest_gap_points": 100 * widest.difference})
    return values


def gender_breakdown(preds: pd.DataFrame) -> dict[str, dict[str, float]] | None:
    """Accuracy per ``gender`` value when the predictions carry one (synthetic faces), else None."""
    from ..metrics import by_attribute

    if "gender" not in preds.columns or preds["gender"].isna().all():
        return None
    return by_attribute(preds[preds["gender"].notna() & preds["pred"].notna()], "gender")
