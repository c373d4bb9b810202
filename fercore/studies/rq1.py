"""RQ1: models trained on real faces, scored unchanged on every real test set and on synthetic faces.

Per model: accuracy with a (cluster-)bootstrap interval, macro-F1, balanced accuracy, per-class
recall and calibration on each set (:mod:`.scoring`); for every real set, the real-minus-synthetic
difference of class-balanced accuracy on the classes both hold, with synthetic faces as they
come (raw) and matched to the real set's format (:mod:`fercore.faces.matching`), each with a
CR2 t test and interval (few-cluster safe, :mod:`fercore.analysis.clustered`), a TOST against the
equivalence margin and the design's minimal detectable effect; the raw-minus-matched contrast paired on
the same faces; whether a temperature fitted on real faces calibrates the synthetic ones (raw and matched),
with ECE intervals. Findings are worded by :func:`fercore.analysis.wording.finding`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from fercore.analysis import (
    Comparison,
    balanced_contrast,
    bootstrap_ece,
    by_attribute,
    design_of,
    equivalence,
    finding,
    fit_temperature,
    holm,
    mde_gap,
    plots,
    recalibrate,
    restricted_logits,
    sample_groups,
    verdict,
)
from fercore.book import Chapter
from fercore.core import labels
from fercore.core.present import declare
from fercore.studies.common import frame, pct, slug
from fercore.studies.scoring import Scores, SetScore, by_model, matched_name, reliability_curves
from fercore.studies.session import MATCHED, RAW, Arms

#: RQ1's primary comparisons, declared before any result: Holm's correction runs over this family.
PRIMARY = "the balanced-accuracy gap (real - synthetic) of every model, real set and arm (raw, matched)"
#: Default equivalence margin (points of balanced accuracy) and assumed ICC; the notebook's parameters override them.
MARGIN, ASSUMED_ICC = 5.0, 0.2


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
    min_grids: int  # fewest synthetic grids in one class: below 2 no test holds (descriptive only)
    accuracy_real: float  # pooled, for information (depends on the class priors)
    accuracy_synthetic: float
    balanced_real: float
    balanced_real_low: float
    balanced_real_high: float
    balanced_synthetic: float
    balanced_synthetic_low: float
    balanced_synthetic_high: float
    difference: float  # balanced real - balanced synthetic
    low: float  # 95 % interval, CR2 t with Satterthwaite df
    high: float
    se: float
    df: float
    p_value: float  # CR2 t test (fercore.analysis.clustered), NaN where a class has one grid
    p_holm: float = float("nan")  # Holm over the chapter's primary family (PRIMARY)
    p_equivalence: float = float("nan")  # TOST against ±margin
    margin: float = MARGIN / 100
    mde: float = float("nan")  # minimal detectable gap at 80 % power for this design
    faces_per_grid: float = float("nan")
    icc: float = float("nan")
    icc_text: str = ""


def _answers(score: SetScore, classes: list[str], prefix: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true index into ``classes``, right/wrong under the restriction to ``classes``, group) of a set's
    readable faces whose class is in ``classes``."""
    preds = score.preds[score.preds["label"].isin(classes) & score.preds["pred"].notna()].reset_index(drop=True)
    logits, y_true = restricted_logits(preds, classes)
    return y_true, logits.argmax(axis=1) == y_true, sample_groups(preds, prefix=prefix)


def _shared(a: tuple, b: tuple, classes: list[str]) -> tuple[tuple, tuple, list[str]]:
    """Both sets' answers restricted to the classes with faces in both, class indices renumbered."""
    present = np.intersect1d(np.unique(a[0]), np.unique(b[0]))
    if len(present) == 0:
        raise ValueError("the real and synthetic sets share no class with faces: nothing to compare")

    def keep(x: tuple) -> tuple:
        mask = np.isin(x[0], present)
        return np.searchsorted(present, x[0][mask]), x[1][mask], x[2][mask]

    return keep(a), keep(b), [classes[i] for i in present]


def compare_domains(real: SetScore, synthetic: SetScore, *, arm: str, margin: float = MARGIN,
                    assumed_icc: float = ASSUMED_ICC) -> DomainComparison:
    """``real`` against ``synthetic`` on the classes both were scored on (FER2013 and the synthetic
    set: 7), each face's prediction restricted to them. Balanced accuracy (mean per-class recall)
    does not depend on the class priors; the gap is a linear contrast of per-class means with a CR2
    t test and interval (:func:`fercore.analysis.clustered.balanced_contrast`), a TOST against
    ±``margin`` points and the design's MDE (:mod:`fercore.analysis.power`)."""
    classes = labels.class_set(real.classes, within=synthetic.classes)
    a, b, classes = _shared(_answers(real, classes, "real:"), _answers(synthetic, classes, "synthetic:"), classes)
    k = len(classes)
    gap, ra, sy = balanced_contrast(a, b, k), balanced_contrast(a, None, k), balanced_contrast(b, None, k)
    design = design_of(b[0], b[1], b[2], classes, real_y=a[0], assumed_icc=assumed_icc)
    p_eq = equivalence(gap.estimate, gap.se, gap.df, margin / 100) if gap.testable and np.isfinite(gap.se) else float("nan")
    accuracy = float(np.clip((ra.estimate + sy.estimate) / 2, 0.05, 0.95))
    mde = mde_gap(list(design.grids_per_class.values()), design.faces_per_grid, list(design.real_per_class.values()),
                  design.icc.value, accuracy=accuracy) if design.testable else float("nan")
    return DomainComparison(real.model, real.test_set, arm, gap.classes, len(a[0]), len(b[0]), len(np.unique(b[2])), gap.min_clusters,
                            float(a[1].mean()), float(b[1].mean()), ra.estimate, ra.low, ra.high, sy.estimate, sy.low, sy.high,
                            gap.estimate, gap.low, gap.high, gap.se, gap.df, gap.p_value, p_equivalence=p_eq, margin=margin / 100,
                            mde=mde, faces_per_grid=design.faces_per_grid, icc=design.icc.value, icc_text=design.icc.text())


def domain_comparisons(scores: Scores, real_sets: list[str], *, margin: float = MARGIN, assumed_icc: float = ASSUMED_ICC,
                       seed: int = 0) -> list[DomainComparison]:
    """:func:`compare_domains` for every model and real set, raw and (where scored) matched; Holm's
    correction over this whole family (:data:`PRIMARY`). ``seed`` is kept for callers; nothing here resamples."""
    out = []
    for model, per_set in by_model(scores).items():
        for real in real_sets:
            out.append(compare_domains(per_set[real], per_set["synthetic"], arm=RAW, margin=margin, assumed_icc=assumed_icc))
            if matched_name(real) in per_set:
                out.append(compare_domains(per_set[real], per_set[matched_name(real)], arm=MATCHED, margin=margin,
                                           assumed_icc=assumed_icc))
    adjusted = holm([row.p_value for row in out])
    return [replace(row, p_holm=float(p)) for row, p in zip(out, adjusted)]


@dataclass(frozen=True)
class ArmContrast:
    """Raw gap minus matched gap of one model and real set, paired on the same synthetic faces (the real
    set cancels: it is the matched-minus-raw change of synthetic balanced accuracy), grids resampled jointly."""

    model: str
    real_set: str
    classes: int
    grids: int
    raw_gap: float
    matched_gap: float
    contrast: float  # raw gap - matched gap
    low: float
    high: float
    se: float
    df: float
    p_value: float
    p_equivalence: float
    margin: float


def arm_contrast(raw: SetScore, matched: SetScore, real: SetScore, *, margin: float = MARGIN) -> ArmContrast:
    """:class:`ArmContrast` of the synthetic faces scored raw and matched (only the faces readable in both)."""
    classes = labels.class_set(real.classes, within=raw.classes)
    pr = raw.preds[raw.preds["label"].isin(classes) & raw.preds["pred"].notna()]
    pm = matched.preds[matched.preds["label"].isin(classes) & matched.preds["pred"].notna()]
    both = pr["path"].isin(set(pm["path"]))
    pr = pr[both].reset_index(drop=True)
    pm = pm.set_index("path").loc[pr["path"]].reset_index()
    y, right_raw, groups = _answers(replace(raw, preds=pr), classes, "")
    _, right_matched, _ = _answers(replace(matched, preds=pm), classes, "")
    c = balanced_contrast((y, right_matched, groups), (y, right_raw, groups), len(classes), paired=True)
    p_eq = equivalence(c.estimate, c.se, c.df, margin / 100) if c.testable and np.isfinite(c.se) else float("nan")
    real_ans = _answers(real, classes, "real:")
    real_bal = balanced_contrast(real_ans, None, len(classes)).estimate
    raw_bal = balanced_contrast((y, right_raw, groups), None, len(classes)).estimate
    matched_bal = balanced_contrast((y, right_matched, groups), None, len(classes)).estimate
    return ArmContrast(raw.model, real.test_set, c.classes, len(np.unique(groups)), real_bal - raw_bal, real_bal - matched_bal,
                       c.estimate, c.low, c.high, c.se, c.df, c.p_value, p_eq, margin / 100)


def arm_contrasts(scores: Scores, real_sets: Sequence[str], *, margin: float = MARGIN) -> list[ArmContrast]:
    """:func:`arm_contrast` for every model and real set with a matched arm."""
    return [arm_contrast(per_set["synthetic"], per_set[matched_name(real)], per_set[real], margin=margin)
            for per_set in by_model(scores).values() for real in real_sets if matched_name(real) in per_set]


#: n, pooled accuracy and macro-F1 of each set are in the summary table beside it
COMPARISON_TITLES = {"model": "model", "real_set": "real set", "arm": "synthetic faces", "classes": "classes",
                     "groups_synthetic": "grids", "min_grids": "grids per class (min)", "faces_per_grid": "kept faces per grid",
                     "icc_text": "ICC", "balanced_real": "bal. acc. real", "balanced_synthetic": "bal. acc. synthetic",
                     "difference": "real - synthetic", "low": "95% low", "high": "95% high", "df": "df", "p_value": "p",
                     "p_holm": "p (Holm)", "p_equivalence": "p equivalence (TOST)", "mde": "MDE (80% power)"}


def comparison_table(rows: list[DomainComparison]) -> pd.DataFrame:
    table = frame(rows, COMPARISON_TITLES, index=["model", "real_set", "arm"])
    # the CSV keeps every column; the page shows the result and its tests (the design columns are the design table's)
    return declare(table, percent=["bal. acc. real", "bal. acc. synthetic"], points=["real - synthetic", "MDE (80% power)"],
                   p=["p", "p (Holm)", "p equivalence (TOST)"], ci={"real - synthetic": ("95% low", "95% high")},
                   decimals={"df": 1, "kept faces per grid": 1},
                   show=["bal. acc. real", "bal. acc. synthetic", "real - synthetic", "p", "p (Holm)", "p equivalence (TOST)",
                         "MDE (80% power)"],
                   titles={"bal. acc. real": "real", "bal. acc. synthetic": "synthetic", "p equivalence (TOST)": "p TOST"})


CONTRAST_TITLES = {"model": "model", "real_set": "real set", "classes": "classes", "grids": "grids", "raw_gap": "gap raw",
                   "matched_gap": "gap matched", "contrast": "raw - matched", "low": "95% low", "high": "95% high", "df": "df",
                   "p_value": "p", "p_equivalence": "p equivalence (TOST)"}


def contrast_table(rows: list[ArmContrast]) -> pd.DataFrame:
    table = frame(rows, CONTRAST_TITLES, index=["model", "real_set"])
    return declare(table, points=["gap raw", "gap matched", "raw - matched"], p=["p", "p equivalence (TOST)"],
                   ci={"raw - matched": ("95% low", "95% high")}, decimals={"df": 1})


def design_table(rows: list[DomainComparison]) -> pd.DataFrame:
    """The design of each comparison: grids per class, kept faces per grid, ICC (measured or assumed), MDE."""
    records = [{"model": r.model, "real set": r.real_set, "synthetic faces": r.arm, "grids per class (min)": r.min_grids,
                "kept faces per grid": r.faces_per_grid, "real faces": r.n_real, "ICC": r.icc_text, "MDE (80% power)": r.mde,
                "tests": "yes" if r.min_grids >= 2 else "no: one grid in a class, descriptive only"} for r in rows]
    table = pd.DataFrame(records).set_index(["model", "real set", "synthetic faces"])
    return declare(table, points=["MDE (80% power)"], decimals={"kept faces per grid": 1})


def format_share(raw: DomainComparison, matched: DomainComparison) -> float:
    """Share of the raw gap that matching the format removes: 1 - matched / raw (NaN for no raw gap)."""
    return float(1 - matched.difference / raw.difference) if abs(raw.difference) > 1e-9 else float("nan")


def paired_arms(rows: list[DomainComparison]) -> list[tuple[DomainComparison, DomainComparison | None]]:
    """(raw, matched or None) per (model, real set)."""
    matched = {(r.model, r.real_set): r for r in rows if r.arm == MATCHED}
    return [(r, matched.get((r.model, r.real_set))) for r in rows if r.arm == RAW]


@dataclass(frozen=True)
class CalibrationTransfer:
    """ECE of one model on one set before and after a temperature fitted on half of a real set, each
    ECE with a stratified cluster-bootstrap 95 % interval (NaN where a class has one grid)."""

    model: str
    fitted_on: str
    test_set: str
    temperature: float
    ece_before: float
    ece_after: float
    confidence_before: float
    confidence_after: float
    accuracy: float
    ece_before_low: float = float("nan")
    ece_before_high: float = float("nan")
    ece_after_low: float = float("nan")
    ece_after_high: float = float("nan")


def _logits_groups(score: SetScore) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(restricted logits, true indices, group) of a set's readable, labelled rows."""
    ok = score.preds[score.preds["label"].notna() & score.preds["pred"].notna()]
    z, y = restricted_logits(ok, score.classes)
    return z, y, sample_groups(ok)


def temperature_transfer(per_set: Mapping[str, SetScore], fit_on: str, *, seed: int = 0, n_boot: int = 500) -> list[CalibrationTransfer]:
    """Does calibration learnt on real faces carry over? A temperature is fitted on a random half
    of ``fit_on``; ECE before and after it is reported on the other half and on every other set
    (raw and matched synthetic faces alike), with grid-resampled intervals."""
    logits, y_true, _ = _logits_groups(per_set[fit_on])
    order = np.random.default_rng(seed).permutation(len(y_true))
    fit_idx, held_idx = order[: len(order) // 2], order[len(order) // 2:]
    temperature = fit_temperature(logits[fit_idx], y_true[fit_idx])
    rows = []
    for name, score in per_set.items():
        z, y, groups = _logits_groups(score)
        if name == fit_on:
            z, y, groups, name = z[held_idx], y[held_idx], groups[held_idx], f"{name} (held-out half)"
        r = recalibrate(z, y, temperature)
        before = bootstrap_ece(y, r.probs_before, groups, n_boot=n_boot, seed=seed)
        after = bootstrap_ece(y, r.probs_after, groups, n_boot=n_boot, seed=seed)
        rows.append(CalibrationTransfer(score.model, fit_on, name, temperature, r.before["ece"], r.after["ece"],
                                        float(r.probs_before.max(1).mean()), float(r.probs_after.max(1).mean()), r.accuracy,
                                        before.low, before.high, after.low, after.high))
    return rows


CALIBRATION_TITLES = {"model": "model", "fitted_on": "T fitted on", "test_set": "test set", "temperature": "T", "ece_before": "ECE before",
                      "ece_before_low": "ECE before 95% low", "ece_before_high": "ECE before 95% high", "ece_after": "ECE after",
                      "ece_after_low": "ECE after 95% low", "ece_after_high": "ECE after 95% high",
                      "confidence_before": "mean conf. before", "confidence_after": "mean conf. after", "accuracy": "accuracy"}


def calibration_table(rows: list[CalibrationTransfer]) -> pd.DataFrame:
    table = frame(rows, CALIBRATION_TITLES, index=["model", "fitted_on", "test_set"])
    return declare(table, percent=["ECE before", "ECE after", "mean conf. before", "mean conf. after", "accuracy"],
                   ci={"ECE before": ("ECE before 95% low", "ECE before 95% high"), "ECE after": ("ECE after 95% low", "ECE after 95% high")})


def gap_comparison(row: DomainComparison, family: int) -> Comparison:
    """A primary gap as a :class:`~fercore.analysis.wording.Comparison` (points; Holm-adjusted p)."""
    note = "" if row.min_grids >= 2 else "a class has one synthetic test grid, so no test or interval holds (docs/calibration.md)"
    arm = "as they come" if row.arm == RAW else f"matched to {row.real_set}'s format"
    return Comparison(f"{row.model}, {row.real_set} against synthetic faces {arm}",
                      f"balanced-accuracy gap (real - synthetic, {row.classes} shared classes, Holm over {family} primary comparisons)",
                      100 * row.difference, 100 * row.low, 100 * row.high, p_value=row.p_holm, margin=100 * row.margin,
                      p_equivalence=row.p_equivalence if np.isfinite(row.p_equivalence) else None,
                      mde=100 * row.mde if np.isfinite(row.mde) else None, note=note)


def contrast_comparison(row: ArmContrast) -> Comparison:
    """Raw gap minus matched gap as a :class:`~fercore.analysis.wording.Comparison` (points)."""
    return Comparison(f"{row.model}, {row.real_set}: raw gap {100 * row.raw_gap:+.1f} and matched gap {100 * row.matched_gap:+.1f} points",
                      "paired contrast raw gap - matched gap (same synthetic faces)", 100 * row.contrast, 100 * row.low,
                      100 * row.high, p_value=row.p_value, margin=100 * row.margin,
                      p_equivalence=row.p_equivalence if np.isfinite(row.p_equivalence) else None)


def findings(scores: Scores, comparisons: list[DomainComparison], calibration: list[CalibrationTransfer],
             contrasts: Sequence[ArmContrast] = ()) -> list[str]:
    """Computed statements of fact, each worded by :func:`fercore.analysis.wording.finding`: the design,
    every primary gap (Holm-adjusted, with its MDE and TOST), every raw-minus-matched contrast."""
    out = []
    for row in comparisons:
        if row.arm == RAW:
            out.append(f"Design of {row.model} against {row.real_set}: {row.min_grids}+ synthetic test grids per class, "
                       f"{row.faces_per_grid:.1f} kept faces per grid, {row.n_real} real faces, ICC {row.icc_text}.")
    out += [finding(gap_comparison(row, len(comparisons))) for row in comparisons]
    out += [finding(contrast_comparison(row)) for row in contrasts]
    for model, per_set in by_model(scores).items():
        recall = per_set["synthetic"].recall()
        best, worst = max(recall, key=recall.get), min(recall, key=recall.get)
        out.append(f"{model} on synthetic faces: highest recall {best} ({pct(recall[best])}), lowest {worst} ({pct(recall[worst])}).")
    for row in calibration:
        if row.test_set.startswith("synthetic"):
            interval = (f" [{row.ece_before_low:.3f}, {row.ece_before_high:.3f}] to {row.ece_after:.3f} "
                        f"[{row.ece_after_low:.3f}, {row.ece_after_high:.3f}]" if np.isfinite(row.ece_after_low)
                        else f" to {row.ece_after:.3f} (no interval: a class has one grid)")
            out.append(f"{row.model}: a temperature fitted on {row.fitted_on} (T = {row.temperature:.2f}) moves the ECE on "
                       f"{row.test_set} from {row.ece_before:.3f}{interval}.")
    return out


def glue_values(scores: Scores, comparisons: list[DomainComparison], contrasts: Sequence[ArmContrast] = ()) -> dict[str, float | str]:
    """Numbers for the chapter's prose: per model and set ``rq1_<model>_<set>_accuracy``; per
    model and real set ``rq1_<model>_<set>_gap_raw`` / ``_gap_matched`` (balanced points) and ``_mde_raw``;
    plus run-independent keys (``rq1_models``, ``rq1_best_synthetic_model`` / ``_accuracy``,
    ``rq1_largest_gap`` / ``_points``, ``rq1_largest_gap_matched_points``, ``rq1_comparisons``,
    ``rq1_significant`` (Holm), ``rq1_equivalent`` (TOST), ``rq1_contrasts_significant``, ``rq1_primary``)."""
    values: dict[str, float | str] = {}
    for (model, test_set), score in scores.items():
        values[f"rq1_{slug(model)}_{slug(test_set)}_accuracy"] = score.accuracy
    for row in comparisons:
        values[f"rq1_{slug(row.model)}_{slug(row.real_set)}_gap_{row.arm}"] = 100 * row.difference
        values[f"rq1_{slug(row.model)}_{slug(row.real_set)}_mde_{row.arm}"] = 100 * row.mde
    synthetic = {model: score.accuracy for (model, test_set), score in scores.items() if test_set == "synthetic"}
    best = max(synthetic, key=synthetic.get)
    pairs = paired_arms(comparisons)
    widest, widest_matched = max(pairs, key=lambda p: abs(p[0].difference))
    verdicts = [verdict(gap_comparison(row, len(comparisons))) for row in comparisons]
    values.update({"rq1_models": ", ".join(synthetic), "rq1_best_synthetic_model": best,
                   "rq1_best_synthetic_accuracy": 100 * synthetic[best],
                   "rq1_largest_gap": f"{widest.model} on {widest.real_set}", "rq1_largest_gap_points": 100 * widest.difference,
                   "rq1_largest_gap_matched_points": 100 * widest_matched.difference if widest_matched else float("nan"),
                   "rq1_comparisons": float(len(comparisons)), "rq1_primary": PRIMARY,
                   "rq1_significant": float(sum(v in ("significant", "both") for v in verdicts)),
                   "rq1_equivalent": float(sum(v in ("equivalent", "both") for v in verdicts)),
                   "rq1_descriptive": float(sum(v == "descriptive" for v in verdicts)),
                   "rq1_contrasts_significant": float(sum(verdict(contrast_comparison(c)) in ("significant", "both") for c in contrasts))})
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


def show_comparisons(chapter: Chapter, scores: Scores, real_sets: Sequence[str], *, margin: float = MARGIN,
                     assumed_icc: float = ASSUMED_ICC) -> tuple[list[DomainComparison], list[ArmContrast]]:
    """The primary gaps (Holm over :data:`PRIMARY`) and the raw-minus-matched contrasts, shown as three
    tables: the design with its MDE, the gaps, the contrasts."""
    comparisons = domain_comparisons(scores, list(real_sets), margin=margin, assumed_icc=assumed_icc)
    contrasts = arm_contrasts(scores, real_sets, margin=margin)
    chapter.table(design_table(comparisons), "design",
                  "The design of each comparison: synthetic test grids per class, kept faces per grid, real faces, the ICC of right "
                  "answers within a grid, and the minimal detectable gap (MDE, 80% power, α = 0.05).")
    chapter.table(comparison_table(comparisons), "real_vs_synthetic",
                  "Each real set against the synthetic faces, as they come (raw) and matched to the real set's format: balanced "
                  "accuracy (real, synthetic) on the classes both sets hold, the difference with its CR2 interval, p (raw and "
                  "Holm-adjusted), the TOST p-value against the equivalence margin and the MDE. The CSV adds the classes, the "
                  "degrees of freedom and the design columns of the table above.")
    chapter.table(contrast_table(contrasts), "raw_minus_matched",
                  "Raw gap minus matched gap, paired on the same synthetic faces (grids resampled jointly): the part of the gap "
                  "that matching the format explains, with its interval.")
    return comparisons, contrasts


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
           calibration: list[CalibrationTransfer], glued: Mapping[str, float | str], contrasts: Sequence[ArmContrast] = ()) -> dict:
    """What ``chapter.json`` keeps of RQ1: every score's summary, the comparisons, the measured formats,
    the temperature transfers, each model's accuracy by gender on synthetic faces and the glued numbers."""
    return {"summary": [s.summary() for s in {**scores, **matched_scores}.values()], "comparisons": comparisons,
            "primary": PRIMARY, "contrasts": list(contrasts),
            "formats": {k: v.to_dict() for k, v in arms.formats.items()}, "temperature": calibration,
            "synthetic_by_gender": {name: gender_breakdown(per_set["synthetic"].preds) for name, per_set in by_model(scores).items()},
            "glued": dict(glued)}
