"""Numbers and figures from predictions: metrics, uncertainty (cluster bootstrap and friends) and plots."""

from __future__ import annotations

from fercore.analysis import harness, plots, power
from fercore.analysis.calibration import (
    Recalibration,
    apply_temperature,
    calibration_bins,
    ece_mce,
    fit_temperature,
    recalibrate,
)
from fercore.analysis.clustered import (
    Contrast,
    Resampled,
    balanced_contrast,
    bootstrap_accuracy,
    bootstrap_ece,
    bootstrap_macro_f1,
    linear_contrast,
    stratified_weights,
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
from fercore.analysis.power import (
    DesignSummary,
    ICCEstimate,
    design_of,
    icc_anova,
    mde_curve,
    mde_gap,
    mde_mean_difference,
    pilot_design,
    plan,
    plot_mde_curve,
)
from fercore.analysis.uncertainty import (
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
    "balanced_contrast",
    "bootstrap_accuracy",
    "bootstrap_ece",
    "bootstrap_macro_f1",
    "by_attribute",
    "calibration_bins",
    "Comparison",
    "confusion",
    "Contrast",
    "design_of",
    "DesignSummary",
    "ece_mce",
    "equivalence",
    "evaluate_predictions",
    "finding",
    "fit_temperature",
    "grouped_domain_auc",
    "harness",
    "heat_table",
    "holm",
    "icc_anova",
    "ICCEstimate",
    "linear_contrast",
    "macro_f1",
    "mcnemar",
    "mde_curve",
    "mde_gap",
    "mde_mean_difference",
    "mean_difference",
    "most_confident_errors",
    "pilot_design",
    "plan",
    "plot_mde_curve",
    "plots",
    "power",
    "recalibrate",
    "Recalibration",
    "Resampled",
    "restricted_logits",
    "roc_pr",
    "sample_groups",
    "save",
    "score_interval",
    "softmax",
    "stratified_weights",
    "verdict",
]
