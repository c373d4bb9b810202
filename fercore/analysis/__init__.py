"""Numbers and figures from predictions: metrics, uncertainty (cluster bootstrap and friends) and plots."""

from __future__ import annotations

from fercore.analysis import plots
from fercore.analysis.metrics import (
    accuracy,
    arrays,
    by_attribute,
    calibration_bins,
    confusion,
    ece_mce,
    evaluate_predictions,
    fit_temperature,
    macro_f1,
    mcnemar,
    most_confident_errors,
    restricted_logits,
    roc_pr,
    softmax,
)
from fercore.analysis.plots import heat_table, save
from fercore.analysis.uncertainty import (
    balanced_gap,
    grouped_domain_auc,
    mean_difference,
    sample_groups,
    score_interval,
)

__all__ = [
    "accuracy",
    "arrays",
    "balanced_gap",
    "by_attribute",
    "calibration_bins",
    "confusion",
    "ece_mce",
    "evaluate_predictions",
    "fit_temperature",
    "grouped_domain_auc",
    "heat_table",
    "macro_f1",
    "mcnemar",
    "mean_difference",
    "most_confident_errors",
    "plots",
    "restricted_logits",
    "roc_pr",
    "sample_groups",
    "save",
    "score_interval",
    "softmax",
]
