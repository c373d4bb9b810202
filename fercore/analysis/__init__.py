"""Numbers and figures from predictions: metrics, uncertainty (cluster bootstrap and friends) and plots."""

from __future__ import annotations

from fercore.analysis import domain_tests, grid_level, plots
from fercore.analysis.calibration import (
    Recalibration,
    apply_temperature,
    calibration_bins,
    ece_mce,
    fit_temperature,
    recalibrate,
)
from fercore.analysis.metrics import (
    accuracy,
    arrays,
    by_attribute,
    confusion,
    evaluate_predictions,
    macro_f1,
    mcnemar,
    most_confident_errors,
    restricted_logits,
    roc_pr,
)
from fercore.analysis.plots import heat_table, save
from fercore.analysis.uncertainty import (
    balanced_gap,
    grouped_domain_auc,
    mean_difference,
    sample_groups,
    score_interval,
)
from fercore.analysis.wording import Comparison, equivalence, finding, holm, verdict
from fercore.core.labels import softmax

__all__ = [
    "accuracy",
    "apply_temperature",
    "arrays",
    "balanced_gap",
    "by_attribute",
    "calibration_bins",
    "Comparison",
    "confusion",
    "domain_tests",
    "ece_mce",
    "equivalence",
    "evaluate_predictions",
    "finding",
    "fit_temperature",
    "grid_level",
    "grouped_domain_auc",
    "heat_table",
    "holm",
    "macro_f1",
    "mcnemar",
    "mean_difference",
    "most_confident_errors",
    "plots",
    "recalibrate",
    "Recalibration",
    "restricted_logits",
    "roc_pr",
    "sample_groups",
    "save",
    "score_interval",
    "softmax",
    "verdict",
]
