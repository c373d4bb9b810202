"""RQ1: models trained on real faces, scored unchanged on every real test set and on synthetic faces.

Per model: accuracy with a (cluster-)bootstrap interval, macro-F1, balanced accuracy, per-class
recall and calibration on each set (:mod:`.scoring`); for every real set, the real-minus-synthetic
difference of class-balanced accuracy on the classes both hold, with synthetic faces as they
come (raw) and matched to the real set's format (:mod:`fercore.faces.matching`), each with a
cluster-bootstrap interval and a Wald test; whether a temperature fitted on real faces
calibrates the synthetic ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fercore.analysis import (
    balanced_gap,
    by_attribute,
    fit_temperature,
    plots,
    recalibrate,
    restricted_logits,
    sample_groups,
)
from fercore.book import Chapter
from fercore.core import labels
from fercore.core.present import declare
from fercore.studies.common import ALPHA, frame, p_text, pct, slug
from fercore.studies.scoring import Scores, SetScore, by_model, matched_name, reliability_curves
from fercore.studies.session import MATCHED, RAW, Arms


@dataclass(frozen=True)
class DomainComparison:
    """A real test set against the synthetic faces (raw, or matched to the real set's format), for
    one model, on the classes both hold: class-balanced accuracies and their difference."""

    model: str
    real_set: str
    arm: str  # raw | matched
    classes: int
    n_real: int
    n_synthetic: int
    groups_synthetic: int
    accuracy_real: float  # pooled, for information (depends on the class priors)
    accuracy_synthetic: float
    balanced_real: float
    balanced_real_low: float
    balanced_real_high: float
    balanced_synthetic: float
    balanced_synthetic_low: float
    balanced_synthetic_high: float
    difference: float  # balanced real - balanced synthetic
    low: float  # cluster-bootstrap 95 % interval
    high: float
    p_value: float  # Wald test with the cluster-bootstrap standard error


def _answers(score: SetScore, classes: list[str], prefix: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true index into ``classes``, right/wrong under the restriction to ``classes``, group) of a set's
    readable faces whose class is in ``classes``."""
    preds = score.preds[score.preds["label"].isin(classes) & score.preds["pred"].notna()].reset_index(drop=True)
    logits, y_true = restricted_logits(preds, classes)
    return y_true, logits.argmax(axis=1) == y_true, sample_groups(preds, prefix=prefix)


def compare_domains(real: SetScore, synthetic: SetScore, *, arm: str, n_boot: int = 2000, seed: int = 0) -> DomainComparison:
    """``real`` against ``synthetic`` on the classes both were scored on (FER2013 and the synthetic
    set: 7), each face's prediction restricted to them. Balanced accuracy (mean per-class recall)
    does not depend on the class priors; its interval and the difference's resample whole source
    grids (:func:`fercore.analysis.uncertainty.balanced_gap`)."""
    classes = labels.class_set(real.classes, within=synthetic.classes)
    a, b = _answers(real, classes, "real:"), _answers(synthetic, classes, "synthetic:")
    gap = balanced_gap(a, b, classes, n_boot=n_boot, seed=seed)
    return DomainComparison(real.model, real.test_set, arm, len(classes), len(a[0]), len(b[0]), gap.b.groups,
                            float(a[1].mean()), float(b[1].mean()), gap.a.estimate, gap.a.low, gap.a.high,
                            gap.b.estimate, gap.b.low, gap.b.high, gap.difference, gap.low, gap.high, gap.p_value)


def domain_comparisons(scores: Scores, real_sets: list[str], *, seed: int = 0) -> list[DomainComparison]:
    """:func:`compare_domains` for every model and real set, raw and (where scored) matched."""
    out = []
    for model, per_set in by_model(scores).items():
        for real in real_sets:
            out.append(compare_domains(per_set[real], per_set["synthetic"], arm=RAW, seed=seed))
            if matched_name(real) in per_set:
                out.append(compare_domains(per_set[real], per_set[matched_name(real)], arm=MATCHED, seed=seed))
    return out


#: n, pooled accuracy and macro-F1 of each set are in the summary table beside it
COMPARISON_TITLES = {"model": "model", "real_set": "real set", "arm": "synthetic faces", "classes": "classes",
                     "groups_synthetic": "grids", "balanced_real": "bal. acc. real", "balanced_synthetic": "bal. acc. synthetic",
                     "difference": "real - synthetic", "low": "95% low", "high": "95% high", "p_value": "p"}


def comparison_table(rows: list[DomainComparison]) -> pd.DataFrame:
    table = frame(rows, COMPARISON_TITLES, index=["model", "real_set", "arm"])
    return declare(table, percent=["bal. acc. real", "bal. acc. synthetic"], points=["real - synthetic"], p=["p"],
                   ci={"real - synthetic": ("95% low", "95% high")})


def format_share(raw: DomainComparison, matched: DomainComparison) -> float:
    """Share of the raw gap that matching the format removes: 1 - matched / raw (NaN for no raw gap)."""
    return float(1 - matched.difference / raw.difference) if abs(raw.difference) > 1e-9 else float("nan")


def paired_arms(rows: list[DomainComparison]) -> list[tuple[DomainComparison, DomainComparison | None]]:
    """(raw, matched or None) per (model, real set)."""
    matched = {(r.model, r.real_set): r for r in rows if r.arm == MATCHED}
    return [(r, matched.get((r.model, r.real_set))) for r in rows if r.arm == RAW]


@dataclass(frozen=True)
class CalibrationTransfer:
    """ECE of one model on one set before and after a temperature fitted on half of a real set."""

    model: str
    fitted_on: str
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
        r = recalibrate(z, y, temperature)
        rows.append(CalibrationTransfer(score.model, fit_on, name, temperature, r.before["ece"], r.after["ece"],
                                        float(r.probs_before.max(1).mean()), float(r.probs_after.max(1).mean()), r.accuracy))
    return rows


CALIBRATION_TITLES = {"model": "model", "fitted_on": "T fitted on", "test_set": "test set", "temperature": "T", "ece_before": "ECE before",
                      "ece_after": "ECE after", "confidence_before": "mean conf. before", "confidence_after": "mean conf. after",
                      "accuracy": "accuracy"}


def calibration_table(rows: list[CalibrationTransfer]) -> pd.DataFrame:
    table = frame(rows, CALIBRATION_TITLES, index=["model", "fitted_on", "test_set"])
    return declare(table, percent=["ECE before", "ECE after", "mean conf. before", "mean conf. after", "accuracy"])


def _verdict(row: DomainComparison) -> str:
    if row.p_value >= ALPHA:
        return "not significantly different"
    return f"higher on {row.real_set}" if row.difference > 0 else "higher on synthetic faces"


def findings(scores: Scores, comparisons: list[DomainComparison], calibration: list[CalibrationTransfer]) -> list[str]:
    """Computed statements of fact (numbers, test outcomes at α = 0.05); no interpretation."""
    out = []
    for raw, matched in paired_arms(comparisons):
        line = (f"{raw.model}, {raw.real_set} against synthetic faces on their {raw.classes} shared classes: balanced accuracy "
                f"{pct(raw.balanced_real)} [{pct(raw.balanced_real_low)}, {pct(raw.balanced_real_high)}] against {pct(raw.balanced_synthetic)} "
                f"[{pct(raw.balanced_synthetic_low)}, {pct(raw.balanced_synthetic_high)}] as the faces come; difference "
                f"{100 * raw.difference:+.1f} points [{100 * raw.low:+.1f}, {100 * raw.high:+.1f}], {_verdict(raw)} ({p_text(raw.p_value)}).")
        if matched is not None:
            survives = ("the difference survives matching" if raw.p_value < ALPHA and matched.p_value < ALPHA
                        and np.sign(raw.difference) == np.sign(matched.difference)
                        else "matching removes the significant difference" if raw.p_value < ALPHA
                        else "no significant difference in either arm" if matched.p_value >= ALPHA
                        else "a significant difference appears only after matching")
            line += (f" Matched to {raw.real_set}'s format: synthetic {pct(matched.balanced_synthetic)} "
                     f"[{pct(matched.balanced_synthetic_low)}, {pct(matched.balanced_synthetic_high)}], difference "
                     f"{100 * matched.difference:+.1f} points [{100 * matched.low:+.1f}, {100 * matched.high:+.1f}] "
                     f"({p_text(matched.p_value)}): {survives}.")
        out.append(line)
    for model, per_set in by_model(scores).items():
        recall = per_set["synthetic"].recall()
        best, worst = max(recall, key=recall.get), min(recall, key=recall.get)
        out.append(f"{model} on synthetic faces: highest recall {best} ({pct(recall[best])}), lowest {worst} ({pct(recall[worst])}).")
    for row in calibration:
        if row.test_set == "synthetic":
            out.append(f"{row.model}: a temperature fitted on {row.fitted_on} (T = {row.temperature:.2f}) moves the synthetic ECE "
                       f"from {row.ece_before:.3f} to {row.ece_after:.3f}.")
    return out


def glue_values(scores: Scores, comparisons: list[DomainComparison]) -> dict[str, float | str]:
    """Numbers for the chapter's prose: per model and set ``rq1_<model>_<set>_accuracy``; per
    model and real set ``rq1_<model>_<set>_gap_raw`` / ``_gap_matched`` (balanced points); plus
    run-independent keys (``rq1_models``, ``rq1_best_synthetic_model`` / ``_accuracy``,
    ``rq1_largest_gap`` / ``_points``, ``rq1_largest_gap_matched_points``, ``rq1_survive``)."""
    values: dict[str, float | str] = {}
    for (model, test_set), score in scores.items():
        values[f"rq1_{slug(model)}_{slug(test_set)}_accuracy"] = score.accuracy
    for row in comparisons:
        values[f"rq1_{slug(row.model)}_{slug(row.real_set)}_gap_{row.arm}"] = 100 * row.difference
    synthetic = {model: score.accuracy for (model, test_set), score in scores.items() if test_set == "synthetic"}
    best = max(synthetic, key=synthetic.get)
    pairs = paired_arms(comparisons)
    widest, widest_matched = max(pairs, key=lambda p: abs(p[0].difference))
    survive = sum(1 for raw, m in pairs if m is not None and raw.p_value < ALPHA and m.p_value < ALPHA
                  and np.sign(raw.difference) == np.sign(m.difference))
    significant_raw = sum(1 for raw, _ in pairs if raw.p_value < ALPHA)
    values.update({"rq1_models": ", ".join(synthetic), "rq1_best_synthetic_model": best,
                   "rq1_best_synthetic_accuracy": 100 * synthetic[best],
                   "rq1_largest_gap": f"{widest.model} on {widest.real_set}", "rq1_largest_gap_points": 100 * widest.difference,
                   "rq1_largest_gap_matched_points": 100 * widest_matched.difference if widest_matched else float("nan"),
                   "rq1_comparisons": float(len(pairs)), "rq1_significant_raw": float(significant_raw), "rq1_survive": float(survive)})
    return values


def gender_breakdown(preds: pd.DataFrame) -> dict[str, dict[str, float]] | None:
    """Accuracy per ``gender`` value when the predictions carry one (synthetic faces), else None."""
    if "gender" not in preds.columns or preds["gender"].isna().all():
        return None
    return by_attribute(preds[preds["gender"].notna() & preds["pred"].notna()], "gender")


# --------------------------------------------------------------------------- the chapter's loops and figures


def calibration_transfers(scores: Scores, real_sets: Sequence[str], *, seed: int = 0) -> list[CalibrationTransfer]:
    """:func:`temperature_transfer` for every model, fitted on each real set in turn."""
    rows: list[CalibrationTransfer] = []
    for per_set in by_model(scores).values():
        for real in real_sets:
            rows += temperature_transfer(per_set, fit_on=real, seed=seed)
    return rows


def show_confusion(chapter: Chapter, scores: Scores, *, ncols: int) -> str:
    """The confusion matrices, one row of panels per model and one panel per test set."""
    counts = {f"{name} · {s}": r.metrics["confusion_matrix"]["counts"] for name, per_set in by_model(scores).items()
              for s, r in per_set.items()}
    return chapter.figure(plots.confusion_panels(counts, ncols=ncols),
                          "confusion", "Confusion matrices, one row of panels per model and one panel per test set: colour is the share of "
                                       "the true class's images, numbers are counts.")


def show_confidence(chapter: Chapter, scores: Scores) -> list[str]:
    """The reliability curves of every model on every test set and the confidence of its right and
    wrong answers on synthetic faces."""
    per_model = by_model(scores)
    return [
        chapter.figure(plots.reliability_panels({name: reliability_curves(per_set) for name, per_set in per_model.items()}),
                       "reliability", "Reliability: accuracy against mean confidence per confidence bin, one panel per model and one line "
                                      "per test set; marker area is the bin's share of images, the dashed diagonal is perfect calibration."),
        chapter.figure(plots.confidence_panels({name: per_set["synthetic"].preds for name, per_set in per_model.items()}),
                       "confidence_synthetic", "Top-1 confidence of right and wrong predictions on synthetic faces, one panel per model."),
    ]


def record(scores: Scores, matched_scores: Scores, comparisons: list[DomainComparison], arms: Arms,
           calibration: list[CalibrationTransfer], glued: Mapping[str, float | str]) -> dict:
    """What ``chapter.json`` keeps of RQ1: every score's summary, the comparisons, the measured formats,
    the temperature transfers, each model's accuracy by gender on synthetic faces and the glued numbers."""
    return {"summary": [s.summary() for s in {**scores, **matched_scores}.values()], "comparisons": comparisons,
            "formats": {k: v.to_dict() for k, v in arms.formats.items()}, "temperature": calibration,
            "synthetic_by_gender": {name: gender_breakdown(per_set["synthetic"].preds) for name, per_set in by_model(scores).items()},
            "glued": dict(glued)}
