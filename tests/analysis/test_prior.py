"""Prior-adjusted accuracy: a pure class-prior effect (a head bias shift, no feature change) moves plain accuracy but
not the prior-adjusted figure."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from fercore.analysis.prior import adjust_logits, class_prior, estimate_training_prior, label_prior, prior_adjusted

TEST_COUNTS = [600, 60, 90, 250]  # imbalanced, like FER2013's test split
BEFORE_COUNTS = [4000, 400, 700, 2500]  # the original model's training faces (imbalanced)
AFTER_COUNTS = [500, 500, 500, 500]  # fine-tuned on a balanced synthetic set


def planted(seed: int = 0):
    """Gaussian class-conditional features (one logit per class = log-likelihood), a model before with its training
    prior in the bias, and after: the same features, the bias moved to the balanced prior."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(4), TEST_COUNTS)
    means = np.eye(4) * 1.2
    x = means[y] + rng.normal(size=(len(y), 4))
    loglik = -0.5 * ((x[:, None, :] - means[None]) ** 2).sum(axis=2)
    before = loglik + np.log(class_prior(BEFORE_COUNTS))
    shift = np.log(class_prior(AFTER_COUNTS)) - np.log(class_prior(BEFORE_COUNTS))  # the head's bias, nothing else
    return y, before, before + shift


def test_a_pure_prior_shift_changes_plain_accuracy_but_not_the_adjusted_one():
    y, before, after = planted()
    a = prior_adjusted(y, before, BEFORE_COUNTS)
    b = prior_adjusted(y, after, AFTER_COUNTS)
    assert a.prior_source == b.prior_source == "checkpoint"
    assert a.accuracy - b.accuracy > 0.05  # the balanced head predicts the rare classes more: plain accuracy drops
    assert b.balanced_accuracy - a.balanced_accuracy > 0.03  # and balanced accuracy rises
    assert b.accuracy_adjusted == pytest.approx(a.accuracy_adjusted, abs=1e-12)  # no change once the prior is moved
    assert b.balanced_accuracy_adjusted == pytest.approx(a.balanced_accuracy_adjusted, abs=1e-12)
    assert a.accuracy_adjusted >= a.accuracy  # the test prior is the Bayes choice for plain accuracy
    assert a.balanced_accuracy == pytest.approx(balanced_accuracy_score(y, before.argmax(axis=1)))


def test_the_estimated_training_prior_ignores_a_bias_shift():
    y, before, after = planted(1)
    a, b = prior_adjusted(y, before), prior_adjusted(y, after)
    assert a.prior_source == b.prior_source == "estimated"
    assert a.accuracy != pytest.approx(b.accuracy, abs=0.03)
    assert b.accuracy_adjusted == pytest.approx(a.accuracy_adjusted, abs=1e-3)
    test_prior = label_prior(y, 4)
    pi_a, pi_b = estimate_training_prior(before, test_prior), estimate_training_prior(after, test_prior)
    ratio = pi_b / pi_a
    expected = class_prior(AFTER_COUNTS) / class_prior(BEFORE_COUNTS)
    np.testing.assert_allclose(ratio / ratio.sum(), expected / expected.sum(), rtol=1e-6)


def test_adjustment_and_priors_are_checked():
    np.testing.assert_allclose(class_prior([1, 0, 3]), [1.5 / 5.5, 0.5 / 5.5, 3.5 / 5.5])
    z = np.zeros((2, 3))
    np.testing.assert_allclose(adjust_logits(z, np.array([0.5, 0.25, 0.25]), np.array([0.25, 0.25, 0.5]))[0],
                               [np.log(0.5), 0, np.log(2)])
    with pytest.raises(ValueError, match="share the classes"):
        adjust_logits(np.zeros((2, 4)), np.ones(3) / 3, np.ones(3) / 3)
    with pytest.raises(ValueError, match="non-negative"):
        class_prior([1, -1])
