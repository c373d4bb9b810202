"""Numbers from predictions alone: every function takes arrays or a predictions table.

A predictions table (``predict`` writes it) has ``label`` and ``pred`` (canonical class
names) and ``p_<Class>`` for the 8 classes; optional columns ``gender``, ``intensity``,
``domain`` group the metrics.

Rule for classes without support in the scored rows (FER2013 has no Contempt; a CV fold may
lack a class by chance): their recall and F1 are undefined and reported as NaN (``null`` in
metrics.json), their precision too unless the class was predicted (then it is 0, a real
number of false alarms); the macro average is taken over the classes *with support*, and the
report states how many under ``"macro avg"["classes"]`` and ``"averaging"``. Weighted averages
are unaffected (weight 0). Which classes a model could *predict* is decided before, by
:func:`fercore.core.labels.class_set` and the restriction in :func:`fercore.inference.predictions.predict`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn import metrics as skm

from fercore.analysis.calibration import ece_mce
from fercore.analysis.clustered import score_intervals
from fercore.analysis.uncertainty import sample_groups
from fercore.core import labels
from fercore.core.labels import CLASSES, EMOTION_GROUPS

PROB_COLUMNS = [f"p_{c}" for c in CLASSES]


def _indices(names: Sequence[str] | np.ndarray) -> np.ndarray:
    lookup = {c: i for i, c in enumerate(CLASSES)}
    return np.array([lookup[n] for n in names], dtype=np.int64)


def arrays(preds: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true indices, predicted indices, probabilities N x 8) from a predictions table."""
    missing = [c for c in ["label", "pred", *PROB_COLUMNS] if c not in preds.columns]
    if missing:
        raise ValueError(f"predictions lack columns {missing}")
    ok = preds["label"].notna() & preds["pred"].notna()
    preds = preds[ok]
    return _indices(preds["label"]), _indices(preds["pred"]), preds[PROB_COLUMNS].to_numpy(dtype=np.float64)


def classification_report(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """scikit-learn's ``classification_report(output_dict=True)`` shape over all 8 canonical
    classes; undefined per-class values are NaN; macro average over the classes with support."""
    all_labels = list(range(len(CLASSES)))
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=all_labels, zero_division=np.nan)
    present = sorted(set(y_true.tolist()))
    recall = np.where(support > 0, recall, np.nan)
    f1 = np.where(support > 0, f1, np.nan)
    report: dict[str, Any] = {
        name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1-score": float(f1[i]), "support": int(support[i])}
        for i, name in enumerate(CLASSES)
    }
    report["accuracy"] = float(skm.accuracy_score(y_true, y_pred))
    report["macro avg"] = {
        "precision": float(np.nan_to_num(precision[present], nan=0.0).mean()) if present else float("nan"),
        "recall": float(recall[present].mean()) if present else float("nan"),
        "f1-score": float(f1[present].mean()) if present else float("nan"),
        "support": int(support.sum()),
        "classes": len(present),
    }
    weights = support / max(support.sum(), 1)
    report["weighted avg"] = {
        "precision": float((np.nan_to_num(precision) * weights).sum()),
        "recall": float((np.nan_to_num(recall) * weights).sum()),
        "f1-score": float((np.nan_to_num(f1) * weights).sum()),
        "support": int(support.sum()),
    }
    absent = [CLASSES[i] for i in all_labels if i not in present]
    report["averaging"] = (
        f"macro avg over the {len(present)} classes with support"
        + (f"; no support, recall and F1 undefined (null): {', '.join(absent)}" if absent else "")
    )
    return report


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(counts, row-normalised) 8x8 confusion matrices; rows without samples are zeros."""
    counts = skm.confusion_matrix(y_true, y_pred, labels=list(range(len(CLASSES))))
    rows = counts.sum(axis=1, keepdims=True)
    return counts, np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)


def top_k_accuracy(y_true: np.ndarray, probs: np.ndarray, k: int) -> float:
    """Share of samples whose true class is among the k most probable."""
    top = np.argsort(-probs, axis=1)[:, :k]
    return float((top == y_true[:, None]).any(axis=1).mean())


def roc_pr(y_true: np.ndarray, probs: np.ndarray) -> dict[str, dict[str, Any]]:
    """One-vs-rest ROC (fpr, tpr, AUC) and precision-recall (precision, recall, AP) per present class."""
    out = {}
    for i, name in enumerate(CLASSES):
        positive = y_true == i
        if positive.all() or not positive.any():
            continue
        fpr, tpr, _ = skm.roc_curve(positive, probs[:, i])
        precision, recall, _ = skm.precision_recall_curve(positive, probs[:, i])
        out[name] = {
            "auc": float(skm.roc_auc_score(positive, probs[:, i])),
            "ap": float(skm.average_precision_score(positive, probs[:, i])),
            "fpr": fpr.tolist(), "tpr": tpr.tolist(), "precision": precision.tolist(), "recall": recall.tolist(),
        }
    return out


def confidence_summary(y_true: np.ndarray, y_pred: np.ndarray, probs: np.ndarray) -> dict[str, dict[str, float]]:
    """Distribution of the top probability for correct and incorrect predictions."""
    confidence = probs.max(axis=1)
    out = {}
    for name, mask in (("correct", y_true == y_pred), ("incorrect", y_true != y_pred)):
        values = confidence[mask]
        out[name] = {
            "count": int(mask.sum()),
            "mean": float(values.mean()) if len(values) else float("nan"),
            "median": float(np.median(values)) if len(values) else float("nan"),
            "q10": float(np.quantile(values, 0.1)) if len(values) else float("nan"),
            "q90": float(np.quantile(values, 0.9)) if len(values) else float("nan"),
        }
    return out


def most_confident_errors(preds: pd.DataFrame, n: int = 12) -> pd.DataFrame:
    """The ``n`` misclassified rows with the highest predicted probability."""
    wrong = preds[preds["label"] != preds["pred"]].copy()
    wrong["confidence"] = wrong[PROB_COLUMNS].max(axis=1)
    return wrong.sort_values("confidence", ascending=False).head(n)


def group_accuracy(y_true: np.ndarray, y_pred: np.ndarray, groups: dict[str, str] | None = None) -> dict[str, Any]:
    """Accuracy over valence groups: a prediction is right when it falls in the true class's group."""
    groups = groups or EMOTION_GROUPS
    true_group = np.array([groups[CLASSES[i]] for i in y_true])
    pred_group = np.array([groups[CLASSES[i]] for i in y_pred])
    out: dict[str, Any] = {"accuracy": float((true_group == pred_group).mean())}
    for g in sorted(set(true_group)):
        mask = true_group == g
        out[g] = {"accuracy": float((pred_group[mask] == g).mean()), "support": int(mask.sum())}
    return out


def by_attribute(preds: pd.DataFrame, column: str) -> dict[str, dict[str, float]]:
    """Accuracy and macro-F1 (present classes) for each value of ``column`` (gender, intensity, domain)."""
    out = {}
    for value, part in preds.groupby(column):
        y_true, y_pred, _ = arrays(part)
        report = classification_report(y_true, y_pred)
        out[str(value)] = {"accuracy": report["accuracy"], "macro_f1": report["macro avg"]["f1-score"], "support": len(part)}
    return out


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Macro-F1 over the classes present in ``y_true``."""
    return float(skm.f1_score(y_true, y_pred, labels=sorted(set(y_true.tolist())), average="macro", zero_division=0))


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float((y_true == y_pred).mean())


def mcnemar(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, *, exact: bool | None = None) -> dict[str, float]:
    """McNemar's test: do two models on the same images differ in accuracy?

    b = A right & B wrong, c = A wrong & B right. Exact binomial test when b + c < 25
    (or ``exact=True``), else the chi-square statistic with continuity correction.
    """
    a_right, b_right = pred_a == y_true, pred_b == y_true
    b = int((a_right & ~b_right).sum())
    c = int((~a_right & b_right).sum())
    return mcnemar_from_counts(b, c, exact=exact)


def mcnemar_from_counts(b: int, c: int, *, exact: bool | None = None) -> dict[str, float]:
    """McNemar's test from the two discordant counts of the 2x2 table."""
    n = b + c
    if n == 0:
        return {"b": b, "c": c, "statistic": 0.0, "p_value": 1.0, "method": "no discordant pairs"}
    if exact if exact is not None else n < 25:
        p = float(min(1.0, 2 * stats.binom.cdf(min(b, c), n, 0.5)))
        return {"b": b, "c": c, "statistic": float(min(b, c)), "p_value": p, "method": "exact binomial"}
    statistic = (abs(b - c) - 1) ** 2 / n
    return {"b": b, "c": c, "statistic": float(statistic), "p_value": float(stats.chi2.sf(statistic, 1)),
            "method": "chi-square with continuity correction"}


# --------------------------------------------------------------------------- calibration


def restricted_logits(preds: pd.DataFrame, classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(logits over ``classes``, true indices into ``classes``) of the readable, labelled rows of a
    predictions table, through :func:`fercore.core.labels.restrict_logits`."""
    ok = preds[preds["label"].notna() & preds["pred"].notna()]
    classes = labels.class_set(classes)
    logits = labels.restrict_logits(ok[[f"logit_{c}" for c in CLASSES]].to_numpy(dtype=np.float64), classes)
    outside = sorted(set(ok["label"]) - set(classes))
    if outside:
        raise ValueError(f"labels {outside} are outside the scored classes {classes}")
    return np.asarray(logits), np.array([classes.index(c) for c in ok["label"]], dtype=np.int64)


# --------------------------------------------------------------------------- everything at once


def evaluate_predictions(preds: pd.DataFrame, *, classes: Sequence[str], groups: Sequence[Any] | np.ndarray | None = None,
                         n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """metrics.json content: the classification report at top level plus every other metric.

    ``classes`` is the class set the predictions were restricted to (recorded as
    ``restricted_to_classes``); a prediction outside it is an error, not a silent wrong number.
    Accuracy, macro-F1 and ECE get stratified cluster-bootstrap 95 % intervals under ``bootstrap_95ci``
    (:func:`fercore.analysis.clustered.score_intervals`, which names the clustering under ``interval``):
    ``groups`` gives each row's cluster (e.g. its source grid); None takes the ``source`` column where
    ``preds`` has one (a face without a source is its own cluster), else every face is its own."""
    if groups is not None and len(groups) != len(preds):
        raise ValueError(f"{len(groups)} cluster ids for {len(preds)} prediction rows: give one per row")
    if groups is None:
        own = preds if "path" in preds.columns else preds.assign(path=[f"row {i}" for i in range(len(preds))])
        groups = sample_groups(own)
    groups = np.asarray(groups, dtype=object)
    scored = (preds["label"].notna() & preds["pred"].notna()).to_numpy()
    y_true, y_pred, probs = arrays(preds)
    outside = sorted({CLASSES[i] for i in y_pred} - set(classes))
    if outside:
        raise ValueError(f"predictions {outside} lie outside the scored classes {list(classes)}: predict with classes=...")
    unscorable = sorted({CLASSES[i] for i in y_true} - set(classes))
    if unscorable:
        raise ValueError(f"labels {unscorable} lie outside the scored classes {list(classes)}: leave those images out first "
                         "(fercore.data.within_classes)")
    report = classification_report(y_true, y_pred)
    counts, normalised = confusion(y_true, y_pred)
    curves = roc_pr(y_true, probs)
    out: dict[str, Any] = dict(report)
    out.update({
        "restricted_to_classes": list(classes),
        "n": len(y_true),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y_true, y_pred)),
        "top_k_accuracy": {str(k): top_k_accuracy(y_true, probs, k) for k in (1, 2, 3)},
        "confusion_matrix": {"labels": list(CLASSES), "counts": counts.tolist(), "row_normalised": normalised.round(4).tolist()},
        "roc_auc": {c: v["auc"] for c, v in curves.items()},
        "average_precision": {c: v["ap"] for c, v in curves.items()},
        "confidence": confidence_summary(y_true, y_pred, probs),
        "calibration": ece_mce(y_true, probs),
        "emotion_groups": group_accuracy(y_true, y_pred),
        "bootstrap_95ci": score_intervals(y_true, y_pred, probs, groups[scored], n_boot=n_boot, seed=seed),
    })
    for column in ("gender", "intensity", "domain"):
        if column in preds.columns and preds[column].notna().any():
            out[f"by_{column}"] = by_attribute(preds[preds[column].notna()], column)
    return out


def cross_domain_table(results: dict[tuple[str, str], dict[str, Any]], metric: str = "accuracy") -> pd.DataFrame:
    """Trained-on (rows) x tested-on (columns) table of ``metric`` from evaluate_predictions outputs."""
    rows = sorted({k[0] for k in results})
    cols = sorted({k[1] for k in results})
    table = pd.DataFrame(index=pd.Index(rows, name="trained on"), columns=pd.Index(cols, name="tested on"), dtype=float)
    for (trained, tested), values in results.items():
        value = values[metric]
        table.loc[trained, tested] = value["f1-score"] if isinstance(value, dict) else value
    return table
