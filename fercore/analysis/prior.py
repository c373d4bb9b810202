"""Class prior separated from the features: accuracy after moving a head's bias to the test set's class prior.

A classifier's logits carry its training data's class prior: ``logit_y(x) = log p(x | y) + log pi_train(y) + c(x)``.
**Logit adjustment** (Menon et al. 2021, "Long-tail learning via logit adjustment"; Saerens et al. 2002 for the
label-shift posterior) moves that prior to the test set's: ``logit_y + log pi_test(y) - log pi_train(y)``. A change between
two checkpoints that only moved the head's bias (a pure prior effect) leaves the adjusted predictions unchanged, so
"accuracy, prior-adjusted" beside plain accuracy shows how much of a change is prior.

The training prior comes from one of two places, and :class:`PriorAdjusted` says which (``prior_source``):

* ``"checkpoint"``: a fercore checkpoint records its training faces per class (``class_counts`` in its metadata),
  or the caller gives the counts (the faces it trained on);
* ``"estimated"``: otherwise (an HSEmotion file, a checkpoint from before the counts were recorded), the training
  prior is estimated from the scored images: the prior ``pi`` for which the adjusted posteriors average to the test
  prior (Saerens et al.'s condition ``mean_x p_adj(y | x) = pi_test(y)`` solved for the training prior by a fixed point).
  This is exact for a calibrated model under pure label shift and an approximation otherwise.

Both priors are smoothed with half a count per class (Jeffreys), so a class without test images keeps a finite logit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, recall_score

#: Pseudo-count added to every class of a prior (Jeffreys' half count).
SMOOTHING = 0.5


def class_prior(counts: Sequence[float] | np.ndarray) -> np.ndarray:
    """A class prior from counts per class, smoothed with :data:`SMOOTHING` per class."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0 or (counts < 0).any():
        raise ValueError(f"class counts must be a non-empty vector of non-negative numbers, got {counts!r}")
    smoothed = counts + SMOOTHING
    return smoothed / smoothed.sum()


def label_prior(y: np.ndarray, n_classes: int) -> np.ndarray:
    """The smoothed class prior of integer labels ``y`` in ``0 .. n_classes - 1``."""
    return class_prior(np.bincount(np.asarray(y, dtype=int), minlength=n_classes)[:n_classes])


def counts_prior(counts: Mapping[str, float], classes: Sequence[str]) -> np.ndarray:
    """The smoothed prior over ``classes`` from ``{class name: count}`` (a checkpoint's ``class_counts``)."""
    return class_prior([float(counts.get(c, 0)) for c in classes])


def adjust_logits(logits: np.ndarray, train_prior: np.ndarray, test_prior: np.ndarray) -> np.ndarray:
    """``logits + log(test_prior) - log(train_prior)`` (N x K logits, priors over the same K classes)."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] != len(train_prior) or len(train_prior) != len(test_prior):
        raise ValueError(f"logits {logits.shape} and priors ({len(train_prior)}, {len(test_prior)}) must share the classes")
    return logits + np.log(test_prior) - np.log(train_prior)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def estimate_training_prior(logits: np.ndarray, test_prior: np.ndarray, *, iterations: int = 500, tol: float = 1e-10) -> np.ndarray:
    """The training prior ``pi`` for which the posteriors adjusted from ``pi`` to ``test_prior`` average to
    ``test_prior`` over the scored images (fixed point ``pi <- pi * mean p_adj / test_prior``). The estimate does not
    depend on a constant shift of any class's logit's bias: a pure bias change moves ``pi`` by the same factor."""
    logits = np.asarray(logits, dtype=np.float64)
    prior = np.full(logits.shape[1], 1.0 / logits.shape[1])
    for _ in range(iterations):
        mean = _softmax(adjust_logits(logits, prior, test_prior)).mean(axis=0)
        updated = prior * mean / test_prior
        updated /= updated.sum()
        if np.abs(np.log(updated) - np.log(prior)).max() < tol:
            return updated
        prior = updated
    return prior


@dataclass(frozen=True)
class PriorAdjusted:
    """Accuracy and balanced accuracy of one model on one set, plain and after logit adjustment to the set's prior."""

    n: int
    accuracy: float
    balanced_accuracy: float
    accuracy_adjusted: float
    balanced_accuracy_adjusted: float
    prior_source: str  # "checkpoint" (recorded or given training counts) or "estimated" (see the module)


def prior_adjusted(y_true: np.ndarray, logits: np.ndarray, train_counts: Sequence[float] | None = None) -> PriorAdjusted:
    """Plain and prior-adjusted accuracy and balanced accuracy of ``logits`` (N x K over the scored classes) against
    integer labels ``y_true`` (0 .. K-1). ``train_counts``: the model's training faces per scored class (else estimated)."""
    y_true = np.asarray(y_true, dtype=int)
    logits = np.asarray(logits, dtype=np.float64)
    if len(y_true) != len(logits) or not len(y_true):
        raise ValueError(f"give one label per logit row, at least one: {len(y_true)} labels, {len(logits)} rows")
    k = logits.shape[1]
    test_prior = label_prior(y_true, k)
    if train_counts is not None:
        train_prior, source = class_prior(train_counts), "checkpoint"
    else:
        train_prior, source = estimate_training_prior(logits, test_prior), "estimated"
    plain = logits.argmax(axis=1)
    adjusted = adjust_logits(logits, train_prior, test_prior).argmax(axis=1)
    return PriorAdjusted(len(y_true), float(accuracy_score(y_true, plain)), balanced_accuracy(y_true, plain),
                         float(accuracy_score(y_true, adjusted)), balanced_accuracy(y_true, adjusted), source)


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``y_true`` (scikit-learn's balanced accuracy, without its warning
    when a prediction names a class the set lacks)."""
    present = np.unique(y_true)
    return float(np.mean(recall_score(y_true, y_pred, labels=present, average=None, zero_division=0)))
