"""Calibration: reliability bins, expected / maximum calibration error, and temperature scaling
(fit T on held-out logits, apply it, report the calibration error before and after)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

from fercore.core.labels import softmax


def calibration_bins(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> pd.DataFrame:
    """Equal-width confidence bins: count, mean confidence, accuracy (top-1)."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        mask = which == b
        rows.append({"low": edges[b], "high": edges[b + 1], "count": int(mask.sum()),
                     "confidence": float(confidence[mask].mean()) if mask.any() else np.nan,
                     "accuracy": float(correct[mask].mean()) if mask.any() else np.nan})
    return pd.DataFrame(rows)


def ece_mce(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> dict[str, float]:
    """Expected and maximum calibration error of the top-1 confidence (equal-width bins)."""
    bins = calibration_bins(y_true, probs, n_bins).dropna()
    gaps = (bins["accuracy"] - bins["confidence"]).abs()
    return {"ece": float((gaps * bins["count"]).sum() / max(bins["count"].sum(), 1)),
            "mce": float(gaps.max()) if len(gaps) else 0.0, "n_bins": n_bins}


def fit_temperature(logits: np.ndarray, y_true: np.ndarray) -> float:
    """Temperature T minimising the negative log-likelihood of softmax(logits / T) (bounded search, T in [0.05, 20])."""

    def nll(log_t: float) -> float:
        p = softmax(logits, float(np.exp(log_t)))
        return float(-np.log(np.clip(p[np.arange(len(y_true)), y_true], 1e-12, None)).mean())

    best = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(best.x))


def apply_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities softmax(logits / T)."""
    return softmax(logits, temperature)


@dataclass(frozen=True)
class Recalibration:
    """One set of logits before (T = 1) and after dividing them by T: probabilities and calibration error."""

    temperature: float
    y_true: np.ndarray
    probs_before: np.ndarray
    probs_after: np.ndarray
    before: dict[str, float]  # ece_mce at T = 1
    after: dict[str, float]  # ece_mce at T

    @property
    def accuracy(self) -> float:
        """Top-1 accuracy (dividing by T does not change it)."""
        return float((self.probs_before.argmax(1) == self.y_true).mean())


def recalibrate(logits: np.ndarray, y_true: np.ndarray, temperature: float) -> Recalibration:
    """:class:`Recalibration` of ``logits`` (true indices ``y_true``) by ``temperature``."""
    before, after = softmax(logits), apply_temperature(logits, temperature)
    return Recalibration(temperature, y_true, before, after, ece_mce(y_true, before), ece_mce(y_true, after))
