"""The one bootstrap for score intervals (``clustered.score_intervals``, behind ``evaluate_predictions``):
close to the plain face bootstrap on independent faces, wider on faces clustered in grids, covering the
truth where a face bootstrap does not, and the same numbers under the same seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from fercore.analysis import metrics as M
from fercore.analysis.clustered import bootstrap_accuracy, score_intervals
from fercore.core.labels import CLASSES


def independent_faces(seed: int, n: int = 600, k: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true, predicted, probabilities over ``k`` classes) of ``n`` independent faces, about 70 % right."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    pred = np.where(rng.random(n) < 0.7, y, rng.integers(0, k, n))
    probs = np.full((n, k), 0.3 / (k - 1))
    probs[np.arange(n), pred] = 0.7
    return y, pred, probs


def grid_faces(seed: int, grids: int = 6, size: int = 30, k: int = 4, icc: float = 0.3):
    """Faces in ``grids`` grids per class of ``size`` faces; each grid has its own chance of a right
    answer (Beta with mean 0.65 and intra-class correlation ``icc``). Returns (true, pred, probs, grid)."""
    rng = np.random.default_rng(seed)
    total = 1 / icc - 1
    p = rng.beta(0.65 * total, 0.35 * total, grids * k)
    grid = np.repeat(np.arange(grids * k), size)
    y = grid % k
    right = rng.random(len(grid)) < p[grid]
    pred = np.where(right, y, (y + rng.integers(1, k, len(grid))) % k)
    probs = np.full((len(grid), k), 0.3 / (k - 1))
    probs[np.arange(len(grid)), pred] = 0.7
    return y, pred, probs, grid


def face_bootstrap(y: np.ndarray, pred: np.ndarray, metric, n_boot: int, seed: int) -> tuple[float, float]:
    """The face bootstrap the library had before: faces resampled with replacement, percentile interval."""
    rng = np.random.default_rng(seed)
    draws = [metric(y[i], pred[i]) for i in rng.integers(0, len(y), (n_boot, len(y)))]
    low, high = np.quantile(draws, [0.025, 0.975])
    return float(low), float(high)


def _macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    return float(f1_score(y, pred, labels=sorted(set(y.tolist())), average="macro", zero_division=0))


def test_on_independent_faces_the_interval_is_the_face_bootstrap():
    y, pred, probs = independent_faces(0)
    ours = score_intervals(y, pred, probs, n_boot=2000, seed=1)
    acc = face_bootstrap(y, pred, lambda a, b: float((a == b).mean()), 2000, 2)
    f1 = face_bootstrap(y, pred, _macro_f1, 600, 3)
    assert ours["accuracy"]["value"] == pytest.approx((y == pred).mean())
    assert ours["macro_f1"]["value"] == pytest.approx(_macro_f1(y, pred))
    # the binomial standard error sqrt(p(1-p)/n) = 0.019 gives a half-width of about 0.037
    width = ours["accuracy"]["high"] - ours["accuracy"]["low"]
    assert width == pytest.approx(2 * 1.96 * np.sqrt(ours["accuracy"]["value"] * (1 - ours["accuracy"]["value"]) / 600), rel=0.12)
    assert ours["accuracy"]["low"] == pytest.approx(acc[0], abs=0.008) and ours["accuracy"]["high"] == pytest.approx(acc[1], abs=0.008)
    assert ours["macro_f1"]["low"] == pytest.approx(f1[0], abs=0.01) and ours["macro_f1"]["high"] == pytest.approx(f1[1], abs=0.01)
    assert ours["ece"]["low"] <= ours["ece"]["value"] <= ours["ece"]["high"]
    assert not ours["accuracy"]["clustered"] and ours["accuracy"]["groups"] == 600
    assert ours["interval"].startswith("stratified bootstrap over 600 faces")


def test_clustered_faces_get_wider_intervals_than_the_face_bootstrap():
    """6 grids of 30 faces per class, ICC 0.3 (design effect about 9.7): every interval is more than
    twice as wide with the grids as clusters as with the faces as independent."""
    y, pred, probs, grid = grid_faces(0)
    faces = score_intervals(y, pred, probs, n_boot=1000, seed=0)
    grids = score_intervals(y, pred, probs, grid, n_boot=1000, seed=0)
    for name in ("accuracy", "macro_f1", "ece"):
        assert grids[name]["value"] == faces[name]["value"]
        ratio = (grids[name]["high"] - grids[name]["low"]) / (faces[name]["high"] - faces[name]["low"])
        assert ratio > 2.0, (name, ratio)
        assert grids[name]["groups"] == 24 and grids[name]["min_clusters"] == 6 and grids[name]["clustered"]
    assert grids["interval"].startswith("stratified cluster bootstrap over 24 clusters of 720 faces")


def test_grid_bootstrap_covers_where_the_face_bootstrap_does_not():
    """200 simulated test sets of 8 grids x 30 faces per class (4 classes), ICC 0.2: the grid interval
    holds the true accuracy in 90-99 % of them, the face interval in clearly fewer."""
    hits = {"grids": 0, "faces": 0}
    runs = 200
    for i in range(runs):
        y, pred, _, grid = grid_faces(100 + i, grids=8, icc=0.2)
        for name, groups in (("grids", grid), ("faces", None)):
            r = bootstrap_accuracy(y, y == pred, groups, n_boot=400, seed=i)
            hits[name] += r.low <= 0.65 <= r.high
    assert 0.90 <= hits["grids"] / runs <= 0.99, hits
    assert hits["faces"] / runs < 0.75 and hits["faces"] < hits["grids"] - 0.15 * runs, hits


def test_same_seed_same_interval_another_seed_another():
    y, pred, probs, grid = grid_faces(3)
    first = score_intervals(y, pred, probs, grid, n_boot=300, seed=7)
    assert score_intervals(y, pred, probs, grid, n_boot=300, seed=7) == first
    other = score_intervals(y, pred, probs, grid, n_boot=300, seed=8)
    assert other["accuracy"]["value"] == first["accuracy"]["value"]
    assert (other["accuracy"]["low"], other["macro_f1"]["low"]) != (first["accuracy"]["low"], first["macro_f1"]["low"])
    with pytest.raises(ValueError, match="cluster ids"):
        score_intervals(y, pred, probs, grid[:-1], n_boot=10)


def predictions_table(y: np.ndarray, pred: np.ndarray, **columns) -> pd.DataFrame:
    frame = pd.DataFrame({"path": [f"face{i}.png" for i in range(len(y))], "label": [CLASSES[i] for i in y],
                          "pred": [CLASSES[i] for i in pred], **columns})
    probs = np.full((len(y), 8), 0.02)
    probs[np.arange(len(y)), pred] = 0.86
    for i, c in enumerate(CLASSES):
        frame[f"p_{c}"] = probs[:, i]
    return frame


def test_evaluate_predictions_clusters_by_the_source_grid():
    """A synthetic set's predictions carry each face's ``source`` grid: evaluate_predictions resamples
    whole grids within each class and says so; given ids win; a face without a source is its own cluster."""
    y, pred, _, grid = grid_faces(5, grids=3, size=12)
    classes = list(CLASSES[:4])
    by_source = M.evaluate_predictions(predictions_table(y, pred, source=[f"g{g}.png" for g in grid]), classes=classes, n_boot=300)
    given = M.evaluate_predictions(predictions_table(y, pred), classes=classes, groups=grid, n_boot=300)
    faces = M.evaluate_predictions(predictions_table(y, pred), classes=classes, n_boot=300)
    assert by_source["bootstrap_95ci"] == given["bootstrap_95ci"]
    assert by_source["bootstrap_95ci"]["interval"].startswith("stratified cluster bootstrap over 12 clusters of 144 faces")
    assert faces["bootstrap_95ci"]["interval"].startswith("stratified bootstrap over 144 faces")
    wide, narrow = by_source["bootstrap_95ci"]["macro_f1"], faces["bootstrap_95ci"]["macro_f1"]
    assert wide["value"] == pytest.approx(by_source["macro avg"]["f1-score"]) and wide["high"] - wide["low"] > narrow["high"] - narrow["low"]
    mixed = [f"g{g}.png" if i % 2 else None for i, g in enumerate(grid)]  # half the faces without a grid
    part = M.evaluate_predictions(predictions_table(y, pred, source=mixed), classes=classes, n_boot=50)["bootstrap_95ci"]
    assert part["accuracy"]["groups"] == 12 + 72
    with pytest.raises(ValueError, match="one per row"):
        M.evaluate_predictions(predictions_table(y, pred), classes=classes, groups=grid[:10], n_boot=10)
