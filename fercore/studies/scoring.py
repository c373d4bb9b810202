"""Every model on every test set, from the run's inference passes (one per model, set and size).

Each test set is scored on its data set's classes (FER2013: 7) within the model's trained
classes (:func:`fercore.core.labels.class_set`); the metrics are :func:`fercore.analysis.metrics.evaluate_predictions`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fercore.analysis import (
    arrays,
    calibration_bins,
    evaluate_predictions,
    sample_groups,
)
from fercore.core import labels
from fercore.core.files import write_json
from fercore.core.labels import CLASSES
from fercore.core.present import declare
from fercore.data import within_classes
from fercore.grids import grid_columns
from fercore.inference import InferenceCache, prediction_table, write_predictions
from fercore.models import Classifier
from fercore.studies.common import frame, slug
from fercore.studies.data import NULL_ARM, TestSets, real_names


@dataclass
class SetScore:
    """One model (in one regime) on one test set: its predictions and every metric."""

    model: str
    regime: str
    test_set: str
    classes: list[str]
    preds: pd.DataFrame
    metrics: dict[str, Any]

    @property
    def accuracy(self) -> float:
        return float(self.metrics["accuracy"])

    @property
    def macro_f1(self) -> float:
        return float(self.metrics["macro avg"]["f1-score"])

    def recall(self) -> dict[str, float]:
        """Recall per class of the scored set (classes without test images left out)."""
        return {c: float(self.metrics[c]["recall"]) for c in self.classes if self.metrics[c]["support"]}

    def summary(self) -> ScoreSummary:
        m = self.metrics
        intervals = m["bootstrap_95ci"]
        ci = intervals["accuracy"]
        f1 = intervals.get("macro_f1", {"low": float("nan"), "high": float("nan")})
        ece = intervals.get("ece", {"low": float("nan"), "high": float("nan")})
        return ScoreSummary(self.model, self.regime, self.test_set, int(m["n"]), int(ci.get("groups", m["n"])), len(self.classes),
                            self.accuracy, float(ci["low"]), float(ci["high"]), self.macro_f1, float(m["balanced_accuracy"]),
                            float(m["calibration"]["ece"]), float(m["confidence"]["correct"]["mean"]),
                            float(m["confidence"]["incorrect"]["mean"]), float(f1["low"]), float(f1["high"]), float(ece["low"]),
                            float(ece["high"]), int(ci.get("min_clusters", m["n"])))


@dataclass(frozen=True)
class ScoreSummary:
    """The headline numbers of a :class:`SetScore`; intervals from the stratified cluster bootstrap
    (whole grids within each class; NaN where a class has one grid: descriptive only)."""

    model: str
    regime: str
    test_set: str
    n: int
    groups: int  # independent units: source grids of synthetic faces, single real faces
    classes: int
    accuracy: float
    accuracy_low: float
    accuracy_high: float
    macro_f1: float
    balanced_accuracy: float
    ece: float
    confidence_correct: float
    confidence_wrong: float
    macro_f1_low: float = float("nan")
    macro_f1_high: float = float("nan")
    ece_low: float = float("nan")
    ece_high: float = float("nan")
    min_groups: int = 0  # fewest groups in one class


#: ``{(model, test set): SetScore}``
Scores = dict[tuple[str, str], SetScore]


def score_models(
    models: Mapping[str, Classifier], sets: TestSets, run: InferenceCache, *, regime: str, n_boot: int = 1000, seed: int = 0,
    out: str | Path | None = None,
) -> Scores:
    """Score each model on each test set (one :func:`fercore.inference.infer` pass per pair, from
    the run's cache when an earlier chapter made it); with ``out``, write
    ``<model>/predictions_<set>.csv`` and ``<model>/metrics_<set>.json`` there."""
    scores: Scores = {}
    for name, model in models.items():
        for set_name, samples in sets.items():
            scores[(name, set_name)] = _score(model, name, regime, set_name, samples, sets.classes[set_name], run, n_boot, seed, out)
    return scores


def score_matched(
    models: Mapping[str, Classifier], sets: TestSets, arms, run: InferenceCache, *, regime: str, n_boot: int = 1000, seed: int = 0,
    out: str | Path | None = None,
) -> Scores:
    """Each model on the synthetic test faces matched to each real set's format (:class:`~fercore.studies.session.Arms`),
    keyed ``(model, matched_name(real set))``; and, when ``sets`` holds the null arm, on its faces matched likewise
    (``matched_name(real set, "null arm")``)."""
    from dataclasses import replace

    scores: Scores = {}
    sources = ["synthetic", *([NULL_ARM] if NULL_ARM in sets else [])]
    for name, model in models.items():
        for source in sources:
            for real in real_names(sets):
                set_name = matched_name(real, source)
                matched_run = replace(run, transform=arms.transform(real, "matched", source=source))
                scores[(name, set_name)] = _score(model, name, regime, set_name, sets[source], sets.classes[source], matched_run,
                                                  n_boot, seed, out)
    return scores


def matched_name(real_set: str, source: str = "synthetic") -> str:
    """The name of the ``source`` test set (synthetic faces, or the null arm) matched to ``real_set``'s format."""
    return f"{source} matched to {real_set}"


def _score(model: Classifier, name: str, regime: str, set_name: str, samples: pd.DataFrame, classes: list[str], run: InferenceCache,
           n_boot: int, seed: int, out: str | Path | None) -> SetScore:
    """One model on one set: predictions (with the grids.csv columns of each face's grid: generator, template,
    prompt, seed ...) and metrics, with stratified cluster-bootstrap intervals of accuracy, macro-F1 and ECE
    (whole source grids within each class; a real face is its own cluster)."""
    scored = labels.class_set(classes, within=model.trained_classes)
    preds = prediction_table(run(model, samples), within_classes(samples, scored), scored, keep=grid_columns(samples))
    readable = preds[preds["error"] == ""].reset_index(drop=True)
    metrics = evaluate_predictions(readable, classes=scored, groups=sample_groups(readable), n_boot=n_boot, seed=seed)
    if out is not None:
        folder = Path(out) / slug(name)
        write_predictions(preds, folder / f"predictions_{slug(set_name)}.csv")
        write_json(folder / f"metrics_{slug(set_name)}.json", metrics)
    return SetScore(name, regime, set_name, scored, preds, metrics)


SUMMARY_TITLES = {"model": "model", "test_set": "test set", "n": "n", "groups": "groups", "classes": "classes", "accuracy": "accuracy",
                  "accuracy_low": "acc. 95% low", "accuracy_high": "acc. 95% high", "macro_f1": "macro-F1",
                  "macro_f1_low": "macro-F1 95% low", "macro_f1_high": "macro-F1 95% high", "ece_low": "ECE 95% low",
                  "ece_high": "ECE 95% high", "min_groups": "groups per class (min)",
                  "balanced_accuracy": "balanced acc.", "ece": "ECE", "confidence_correct": "conf. right",
                  "confidence_wrong": "conf. wrong"}


def summary_table(scores: Scores) -> pd.DataFrame:
    """Display table: one row per (model, test set)."""
    table = frame([s.summary() for s in scores.values()], SUMMARY_TITLES, index=["model", "test_set"])
    return declare(table, percent=["accuracy", "macro-F1", "balanced acc."],
                   ci={"accuracy": ("acc. 95% low", "acc. 95% high"), "macro-F1": ("macro-F1 95% low", "macro-F1 95% high")},
                   show=["n", "groups", "groups per class (min)", "classes", "accuracy", "macro-F1", "balanced acc."])


def confidence_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The confidence columns of :func:`summary_table`: ECE, mean confidence when right and when wrong."""
    columns = ["n", "ECE", "ECE 95% low", "ECE 95% high", "conf. right", "conf. wrong"]
    return declare(summary[columns].copy(), percent=["ECE", "conf. right", "conf. wrong"], ci={"ECE": ("ECE 95% low", "ECE 95% high")})


def recall_table(scores: Scores) -> pd.DataFrame:
    """Recall per emotion (rows) and (model, test set) (columns); NaN where a set lacks the class."""
    columns = {key: {c: s.recall().get(c, np.nan) for c in CLASSES} for key, s in scores.items()}
    table = pd.DataFrame(columns)
    table.columns = pd.MultiIndex.from_tuples(list(columns), names=["model", "test set"])
    return table.rename_axis("emotion")


def by_model(scores: Scores) -> dict[str, dict[str, SetScore]]:
    """``{model: {test set: SetScore}}``."""
    grouped: dict[str, dict[str, SetScore]] = {}
    for (model, test_set), score in scores.items():
        grouped.setdefault(model, {})[test_set] = score
    return grouped


def reliability_curves(scores: Mapping[str, SetScore], n_bins: int = 10) -> dict[str, pd.DataFrame]:
    """Calibration bins per test set of one model (for :func:`fercore.analysis.plots.reliability_panels`)."""
    return {name: calibration_bins(*true_probs(s.preds), n_bins=n_bins) for name, s in scores.items()}


def true_probs(preds: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(true class indices, N x 8 probabilities) of the readable rows of a predictions table."""
    y_true, _, probs = arrays(preds)
    return y_true, probs
