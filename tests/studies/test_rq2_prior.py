"""RQ2's change tables separate the class prior: a planted head-bias shift (no feature change) moves plain accuracy,
not the prior-adjusted accuracy; McNemar is named a per-checkpoint descriptive check."""

from __future__ import annotations

import numpy as np
import pytest

from fercore.core.labels import CLASSES
from fercore.core.present import present
from fercore.models import Classifier
from fercore.models.classifier import ModelFacts
from fercore.studies import rq2
from fercore.studies.scoring import SetScore

SEVEN = [c for c in CLASSES if c != "Contempt"]
TEST = [300, 0, 30, 60, 400, 250, 120, 90]  # FER2013-like, no Contempt
REAL_TRAIN = [4000, 0, 400, 2000, 7000, 5000, 3000, 2500]
SYNTHETIC_TRAIN = [60, 60, 60, 60, 60, 60, 60, 60]


def facts(counts) -> Classifier:
    return Classifier(None, ModelFacts("resnet10t", 64, tuple(CLASSES), metadata={
        "class_counts": dict(zip(CLASSES, counts, strict=True)), "config": {"class_weights": False}}))


def table(y, logits):
    import pandas as pd

    keep = [CLASSES.index(c) for c in SEVEN]
    masked = np.full_like(logits, -np.inf)
    masked[:, keep] = logits[:, keep]
    out = pd.DataFrame({"path": [f"{i}.png" for i in range(len(y))], "label": [CLASSES[i] for i in y],
                        "pred": [CLASSES[i] for i in masked.argmax(1)]})
    probs = np.exp(masked - masked.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    for i, c in enumerate(CLASSES):
        out[f"p_{c}"] = probs[:, i]
    for i, c in enumerate(CLASSES):
        out[f"logit_{c}"] = logits[:, i]
    return out


def test_a_planted_prior_shift_is_all_prior():
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(8), TEST)
    means = np.eye(8) * 1.3
    x = means[y] + rng.normal(size=(len(y), 8))
    loglik = -0.5 * ((x[:, None, :] - means[None]) ** 2).sum(axis=2)
    smooth = lambda c: (np.asarray(c, float) + 0.5) / (np.sum(c) + 4.0)  # noqa: E731 (the training prior as fercore smooths it)
    before_logits = loglik + np.log(smooth(REAL_TRAIN))
    after_logits = before_logits + np.log(smooth(SYNTHETIC_TRAIN)) - np.log(smooth(REAL_TRAIN))  # the head's bias only
    before = {("m", "fer"): SetScore("m", "trained on real", "fer", SEVEN, table(y, before_logits), {"macro avg": {"f1-score": 0.5}})}
    after = {("m", "fer"): SetScore("m", "fine-tuned on synthetic", "fer", SEVEN, table(y, after_logits),
                                    {"macro avg": {"f1-score": 0.5}})}
    models = {("m", "trained on real"): facts(REAL_TRAIN), ("m", "fine-tuned on synthetic"): facts(SYNTHETIC_TRAIN)}
    (row,) = rq2.changes(before, after, models=models)
    assert row.prior_before == row.prior_after == "checkpoint"
    assert row.accuracy_before - row.accuracy_after > 0.04  # plain accuracy falls on the imbalanced set
    assert row.adjusted_after == pytest.approx(row.adjusted_before, abs=1e-12)  # prior-adjusted: no change
    assert row.balanced_adjusted_after == pytest.approx(row.balanced_adjusted_before, abs=1e-12)
    assert row.prior_part == pytest.approx(row.accuracy_after - row.accuracy_before)  # the whole change is prior
    shown = rq2.prior_table([row])
    assert shown["prior-adj. accuracy change"].iloc[0] == pytest.approx(0.0, abs=1e-12)
    assert shown["of which prior"].iloc[0] == pytest.approx(row.accuracy_after - row.accuracy_before)
    assert rq2.MCNEMAR in rq2.checkpoint_table([row]).columns and "descriptive" in rq2.MCNEMAR
    for built in (rq2.change_table([row]), rq2.checkpoint_table([row]), shown):  # each fits the book's content column
        assert len(present(built).columns) <= 10, list(present(built).columns)
    estimated = rq2.changes(before, after)[0]  # no checkpoint counts: the training priors are estimated
    assert estimated.prior_before == "estimated" and estimated.adjusted_after == pytest.approx(estimated.adjusted_before, abs=2e-3)


def test_class_weighted_training_counts_are_a_balanced_prior():
    model = Classifier(None, ModelFacts("resnet10t", 64, tuple(CLASSES), metadata={
        "class_counts": {"Anger": 10, "Happiness": 30}, "config": {"class_weights": True}}))
    assert model.facts.training_counts(["Anger", "Fear", "Happiness"]) == [20.0, 0.0, 20.0]
    assert Classifier(None, ModelFacts("resnet10t", 64, tuple(CLASSES))).facts.training_counts(["Anger"]) is None
