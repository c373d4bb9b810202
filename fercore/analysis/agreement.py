"""Agreement between two codings of the same items (a prompt's emotion and a person's reading): Cohen's kappa from
integer codes, for many bootstrap draws at once."""

from __future__ import annotations

import numpy as np


def kappa_codes(a: np.ndarray, b: np.ndarray, k: int, weights: np.ndarray | None = None) -> float | np.ndarray:
    """Cohen's kappa of two integer codings in ``0 .. k-1`` from their confusion matrix (the bootstrap's fast path;
    equal to :func:`sklearn.metrics.cohen_kappa_score`, tested); NaN where chance agreement is 1. ``weights``: how often
    each row counts, one row of weights per bootstrap draw (``(draws, n)``: one kappa per draw)."""
    if len(a) == 0:
        return float("nan") if weights is None or np.ndim(weights) == 1 else np.full(len(weights), np.nan)
    cells = np.asarray(a) * k + np.asarray(b)
    w = np.ones((1, len(cells))) if weights is None else np.atleast_2d(weights)
    counts = w @ (cells[:, None] == np.arange(k * k)[None, :])  # (draws, k*k) weighted confusion counts
    kappa = kappa_from_counts(counts.reshape(-1, k, k))
    return float(kappa[0]) if weights is None or np.ndim(weights) == 1 else kappa


def kappa_from_counts(counts: np.ndarray) -> np.ndarray:
    """Cohen's kappa of confusion counts ``(..., k, k)`` (rows: one coding, columns: the other), one per leading index;
    NaN where chance agreement is 1."""
    table = counts / counts.sum(axis=(-2, -1), keepdims=True)
    expected = np.einsum("...i,...i->...", table.sum(axis=-1), table.sum(axis=-2))
    observed = np.trace(table, axis1=-2, axis2=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(expected >= 1 - 1e-12, np.nan, (observed - expected) / (1 - expected))
