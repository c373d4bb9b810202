import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import classification_report as sk_report

from fercore.analysis import calibration as C
from fercore.analysis import metrics as M
from fercore.analysis.clustered import bootstrap_accuracy
from fercore.core import labels as labels_mod
from fercore.core.labels import CLASSES, CONTEMPT, predict_restricted, softmax


def table(y_true, y_pred, probs=None):
    n = len(y_true)
    if probs is None:
        probs = np.full((n, 8), 0.02)
        probs[np.arange(n), y_pred] = 0.86
    frame = pd.DataFrame({"label": [CLASSES[i] for i in y_true], "pred": [CLASSES[i] for i in y_pred]})
    for i, c in enumerate(CLASSES):
        frame[f"p_{c}"] = probs[:, i]
    return frame


def test_report_matches_sklearn_on_eight_classes():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 8, 400)
    y_pred = np.where(rng.random(400) < 0.6, y_true, rng.integers(0, 8, 400))
    ours = M.classification_report(y_true, y_pred)
    ref = sk_report(y_true, y_pred, labels=list(range(8)), target_names=list(CLASSES), output_dict=True, zero_division=0)
    for key in [*CLASSES, "macro avg", "weighted avg"]:
        for field in ("precision", "recall", "f1-score", "support"):
            assert ours[key][field] == pytest.approx(ref[key][field]), (key, field)
    assert ours["accuracy"] == pytest.approx(ref["accuracy"])


def test_seven_class_test_set_scored_by_an_eight_class_model():
    rng = np.random.default_rng(1)
    seven = [i for i in range(8) if i != CONTEMPT]
    y_true = rng.choice(seven, 300)
    logits = rng.normal(size=(300, 8))
    logits[np.arange(300), y_true] += 1.5
    logits[:, CONTEMPT] += 3.0  # the model loves Contempt; restriction must remove it
    y_pred = predict_restricted(logits)
    assert CONTEMPT not in y_pred
    ours = M.classification_report(y_true, y_pred)
    contempt = ours["Contempt"]  # no support and never predicted: every value undefined, not 0
    assert contempt["support"] == 0 and all(np.isnan(contempt[k]) for k in ("precision", "recall", "f1-score"))
    ref = sk_report(y_true, y_pred, labels=seven, output_dict=True, zero_division=0)
    assert ours["macro avg"]["f1-score"] == pytest.approx(ref["macro avg"]["f1-score"])
    assert ours["macro avg"]["precision"] == pytest.approx(ref["macro avg"]["precision"])
    assert ours["weighted avg"]["f1-score"] == pytest.approx(ref["weighted avg"]["f1-score"])
    assert ours["macro avg"]["classes"] == 7
    assert "macro avg over the 7 classes with support" in ours["averaging"] and "Contempt" in ours["averaging"]


def test_a_class_without_support_but_predicted_has_precision_zero_and_no_recall():
    y_true = np.array([0, 0, 4, 4])
    y_pred = np.array([0, 2, 4, 4])  # Disgust predicted once, never true
    report = M.classification_report(y_true, y_pred)
    assert report["Disgust"]["precision"] == 0.0 and np.isnan(report["Disgust"]["recall"])
    assert np.isnan(report["Disgust"]["f1-score"]) and report["macro avg"]["classes"] == 2
    assert report["macro avg"]["recall"] == pytest.approx((0.5 + 1.0) / 2)


def test_undefined_metrics_are_null_in_json(tmp_path):
    import json

    from fercore.core.files import write_json

    path = write_json(tmp_path / "m.json", {"Contempt": M.classification_report(np.array([0]), np.array([0]))["Contempt"]})
    assert json.loads(path.read_text())["Contempt"] == {"precision": None, "recall": None, "f1-score": None, "support": 0}


def test_hand_computed_small_case():
    y_true = np.array([0, 0, 4, 4, 4, 5])
    y_pred = np.array([0, 4, 4, 4, 5, 5])
    report = M.classification_report(y_true, y_pred)
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["Happiness"]["precision"] == pytest.approx(2 / 3) and report["Happiness"]["recall"] == pytest.approx(2 / 3)
    assert report["Anger"] == {"precision": 1.0, "recall": 0.5, "f1-score": pytest.approx(2 / 3), "support": 2}
    assert report["Neutral"]["precision"] == pytest.approx(0.5) and report["Neutral"]["recall"] == 1.0
    assert report["macro avg"]["recall"] == pytest.approx((0.5 + 2 / 3 + 1) / 3)  # 3 present classes
    counts, rows = M.confusion(y_true, y_pred)
    assert counts[0, 4] == 1 and counts[4, 5] == 1 and counts.sum() == 6
    assert rows[4].tolist()[4] == pytest.approx(2 / 3) and rows[1].sum() == 0
    groups = M.group_accuracy(y_true, y_pred)
    # Anger->Happiness crosses groups (negative->positive), Happiness->Neutral too
    assert groups["accuracy"] == pytest.approx(4 / 6) and groups["neutral"]["support"] == 1


def test_top_k():
    probs = np.array([[0.5, 0.3, 0.2, 0, 0, 0, 0, 0], [0.1, 0.2, 0.3, 0.4, 0, 0, 0, 0]])
    y = np.array([1, 0])
    assert M.top_k_accuracy(y, probs, 1) == 0.0
    assert M.top_k_accuracy(y, probs, 2) == 0.5
    assert M.top_k_accuracy(y, probs, 4) == 1.0


def test_ece_and_mce_on_a_known_example():
    probs = np.zeros((10, 8))
    probs[:5, 0], probs[:5, 1] = 0.9, 0.1  # 5 at confidence 0.9, all correct: gap 0.1
    probs[5:, 0], probs[5:, 1] = 0.6, 0.4  # 5 at confidence 0.6, 2 correct: gap 0.2
    y = np.array([0] * 5 + [0, 0, 1, 1, 1])
    result = C.ece_mce(y, probs, n_bins=10)
    assert result["ece"] == pytest.approx(0.5 * 0.1 + 0.5 * 0.2)
    assert result["mce"] == pytest.approx(0.2)


def test_mcnemar_on_known_tables():
    chi = M.mcnemar_from_counts(25, 10)
    assert chi["statistic"] == pytest.approx(196 / 35) and chi["p_value"] == pytest.approx(stats.chi2.sf(5.6, 1))
    exact = M.mcnemar_from_counts(1, 9)
    assert exact["method"] == "exact binomial" and exact["p_value"] == pytest.approx(22 / 1024)
    y = np.array([0, 0, 0, 0])
    a, b = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    assert M.mcnemar(y, a, b) == M.mcnemar_from_counts(1, 1)


def test_face_interval_covers_the_truth():
    """Independent faces (each its own cluster): the stratified bootstrap's accuracy interval holds the truth."""
    rng = np.random.default_rng(3)
    covered = 0
    for trial in range(80):
        y_true = np.zeros(300, dtype=int)
        y_pred = np.where(rng.random(300) < 0.7, 0, 1)
        ci = bootstrap_accuracy(y_true, y_true == y_pred, n_boot=300, seed=trial)
        covered += ci.low <= 0.7 <= ci.high
    assert 0.87 <= covered / 80 <= 1.0


def test_temperature_scaling_fixes_overconfidence():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 8, 2000)
    base = rng.normal(size=(2000, 8))
    base[np.arange(2000), y] += 1.0
    true_probs = softmax(base)
    y = np.array([rng.choice(8, p=p) for p in true_probs])  # labels drawn from the calibrated model
    temperature = C.fit_temperature(3.0 * base, y)
    assert 2.4 < temperature < 3.6
    assert C.ece_mce(y, softmax(3.0 * base, temperature))["ece"] < C.ece_mce(y, softmax(3.0 * base))["ece"]


def test_evaluate_predictions_has_every_section():
    rng = np.random.default_rng(5)
    y_true = rng.integers(0, 8, 200)
    y_pred = np.where(rng.random(200) < 0.5, y_true, rng.integers(0, 8, 200))
    frame = table(y_true, y_pred).assign(gender=np.where(np.arange(200) % 2, "female", "male"),
                                         intensity=np.where(np.arange(200) % 3, "high", "extreme"))
    out = M.evaluate_predictions(frame, classes=list(CLASSES), n_boot=100)
    assert out["restricted_to_classes"] == list(CLASSES)
    with pytest.raises(ValueError, match="outside the scored classes"):
        M.evaluate_predictions(frame, classes=["Anger", "Happiness"], n_boot=10)
    for key in ("accuracy", "macro avg", "weighted avg", "Anger", "balanced_accuracy", "top_k_accuracy", "roc_auc",
                "average_precision", "confidence", "calibration", "emotion_groups", "bootstrap_95ci", "confusion_matrix",
                "by_gender", "by_intensity"):
        assert key in out, key
    assert out["top_k_accuracy"]["1"] == pytest.approx(out["accuracy"])
    intervals = out["bootstrap_95ci"]
    assert intervals["interval"].startswith("stratified bootstrap over 200 faces") and intervals["n_boot"] == 100
    for name, value in (("accuracy", out["accuracy"]), ("macro_f1", out["macro avg"]["f1-score"]), ("ece", out["calibration"]["ece"])):
        assert intervals[name]["low"] < value < intervals[name]["high"] and intervals[name]["value"] == pytest.approx(value), name
    assert out["by_gender"]["female"]["support"] == 100
    wrong = M.most_confident_errors(frame, 5)
    assert len(wrong) == 5 and (wrong.label != wrong.pred).all()
    cross = M.cross_domain_table({("real", "real"): out, ("real", "synthetic"): {"accuracy": 0.4}})
    assert cross.loc["real", "synthetic"] == 0.4 and cross.index.name == "trained on"


def test_restricted_logits_keep_the_classes_of_the_labels():
    import pandas as pd

    from fercore.analysis.metrics import restricted_logits
    from fercore.core.labels import CLASSES

    table = pd.DataFrame({"label": ["Anger", "Sadness", "Anger", None], "pred": ["Anger", "Anger", None, "Anger"]})
    for i, c in enumerate(CLASSES):
        table[f"logit_{c}"] = [float(i), float(i) + 10, 0.0, 0.0]
    logits, y = restricted_logits(table, ["Anger", "Sadness"])  # unreadable and unlabelled rows drop out
    assert logits.tolist() == [[0.0, 6.0], [10.0, 16.0]] and y.tolist() == [0, 1]
    logits, y = restricted_logits(table, ["Anger", "Contempt", "Sadness"])
    assert logits.shape == (2, 3) and y.tolist() == [0, 2]
    with pytest.raises(ValueError, match="outside the scored classes"):
        restricted_logits(table, ["Anger", "Happiness"])


def test_recalibrate_reports_what_was_computed_by_hand():
    rng = np.random.default_rng(1)
    logits, y = rng.normal(size=(200, 7)) * 3, rng.integers(0, 7, 200)
    temperature = C.fit_temperature(logits, y)
    r = C.recalibrate(logits, y, temperature)
    assert r.before == C.ece_mce(y, softmax(logits)) and r.after == C.ece_mce(y, softmax(logits, temperature))
    assert np.array_equal(r.probs_after, C.apply_temperature(logits, temperature))
    assert r.accuracy == float((logits.argmax(1) == y).mean())


def test_one_softmax_behind_restricted_probabilities():
    logits = np.random.default_rng(2).normal(size=(5, 8)) * 4
    seven = [c for c in CLASSES if c != CONTEMPT]
    probs = labels_mod.restricted_probabilities(logits, seven)
    cols = labels_mod.class_indices(seven)
    others = [i for i in range(len(CLASSES)) if i not in cols]
    assert np.array_equal(probs[:, cols], softmax(logits[:, cols])) and (probs[:, others] == 0).all()
