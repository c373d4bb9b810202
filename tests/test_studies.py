import numpy as np
import pandas as pd
import pytest
import torch

from fercore import studies
from fercore.data import per_class_subset
from fercore.labels import CLASSES
from fercore.models import create_model, default_image_size, save_model


def preds_table(y_true, y_pred, logits=None, classes=CLASSES, **extra) -> pd.DataFrame:
    """A predictions table as ``predict`` writes it, from class indices (and optional logits)."""
    n = len(y_true)
    if logits is None:
        logits = np.full((n, len(CLASSES)), -2.0)
        logits[np.arange(n), y_pred] = 2.0
    allowed = np.array([c in classes for c in CLASSES])
    masked = np.where(allowed, logits, -np.inf)
    probs = np.exp(masked - masked.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    table = pd.DataFrame({"path": [f"{i}.png" for i in range(n)], "label": [CLASSES[i] for i in y_true],
                          "pred": [CLASSES[i] for i in probs.argmax(1)]})
    for i, c in enumerate(CLASSES):
        table[f"p_{c}"] = probs[:, i]
    for i, c in enumerate(CLASSES):
        table[f"logit_{c}"] = logits[:, i]
    return table.assign(**extra)


def test_per_class_subset_is_seeded_and_capped():
    samples = pd.DataFrame({"path": [f"{i}.png" for i in range(50)], "label": [i % 3 for i in range(50)]})
    small = per_class_subset(samples, 4, seed=1)
    assert small["label"].value_counts().to_dict() == {0: 4, 1: 4, 2: 4}
    assert small.equals(per_class_subset(samples, 4, seed=1)) and not small.equals(per_class_subset(samples, 4, seed=2))
    assert len(per_class_subset(samples, None)) == 50 and len(per_class_subset(samples, 100)) == 50
    with pytest.raises(ValueError, match="at least 1"):
        per_class_subset(samples, 0)


def test_accuracy_gap_difference_interval_and_test():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 8, 400)
    good = np.where(rng.random(400) < 0.8, y, (y + 1) % 8)
    bad = np.where(rng.random(400) < 0.4, y, (y + 1) % 8)
    gap = studies.accuracy_gap(preds_table(y, good), preds_table(y, bad))
    expected = (good == y).mean() - (bad == y).mean()
    assert gap["difference"] == pytest.approx(expected)
    assert gap["low"] < expected < gap["high"] and gap["p_value"] < 1e-6
    same = studies.accuracy_gap(preds_table(y, good), preds_table(y, good))
    assert same["difference"] == 0 and same["p_value"] == pytest.approx(1.0)


def test_temperature_fitted_on_real_halves_and_transfers():
    rng = np.random.default_rng(0)
    n = 2000
    y = rng.integers(0, 8, n)
    base = rng.normal(0, 1, (n, 8))
    base[np.arange(n), y] += 1.5  # a calibrated-ish score; scaled by 4 it is over-confident
    real = studies.DomainResult("real", preds_table(y, None, logits=4 * base), {}, list(CLASSES))
    synthetic = studies.DomainResult("synthetic", preds_table(y, None, logits=4 * base), {}, list(CLASSES))
    table = studies.temperature_transfer({"real": real, "synthetic": synthetic}, fit_on="real")
    assert table.index.tolist() == ["real (held-out half)", "synthetic"]
    assert table["temperature"].iloc[0] > 2.5
    assert (table["ECE after"] < table["ECE before"]).all()
    assert (table["mean conf. after"] < table["mean conf. before"]).all()


def test_temperature_respects_missing_classes():
    rng = np.random.default_rng(1)
    y = rng.choice([0, 2, 3, 4, 5, 6, 7], 300)  # FER2013: no Contempt
    logits = rng.normal(0, 1, (300, 8))
    logits[:, 1] = 50.0  # a huge Contempt logit must not matter
    seven = [c for c in CLASSES if c != "Contempt"]
    fer = studies.DomainResult("fer", preds_table(y, None, logits=logits, classes=seven), {}, seven)
    table = studies.temperature_transfer({"fer": fer}, fit_on="fer")
    assert np.isfinite(table.to_numpy(dtype=float)).all()


def test_model_comparison_counts_discordant_pairs():
    y = np.array([0, 1, 2, 3, 4, 5, 6, 7] * 5)
    a = y.copy()
    a[:10] = (y[:10] + 1) % 8  # A wrong on the first 10
    b = y.copy()
    b[30:] = (y[30:] + 1) % 8  # B wrong on the last 10
    before = {"real": studies.DomainResult("real", preds_table(y, a), {"macro avg": {"f1-score": 0.7}}, list(CLASSES))}
    after = {"real": studies.DomainResult("real", preds_table(y, b), {"macro avg": {"f1-score": 0.7}}, list(CLASSES))}
    table = studies.model_comparison(before, after)
    row = table.loc["real"]
    assert row["only pretrained right"] == 10 and row["only fine-tuned right"] == 10
    assert row["accuracy pretrained"] == pytest.approx(0.75) and row["McNemar p"] == pytest.approx(1.0)
    assert list(studies.accuracy_columns(table).columns) == ["pretrained", "fine-tuned"]
    shuffled = {"real": studies.DomainResult("real", preds_table(y, b).iloc[::-1].reset_index(drop=True), {}, list(CLASSES))}
    with pytest.raises(ValueError, match="different images"):
        studies.model_comparison(before, shuffled)


def test_rq1_findings_follow_the_numbers():
    summary = pd.DataFrame({"accuracy": [0.8, 0.4], "acc 95% low": [0.75, 0.35], "acc 95% high": [0.85, 0.45], "ECE": [0.05, 0.2],
                            "conf. correct": [0.8, 0.9], "conf. wrong": [0.5, 0.8]}, index=["fer", "synthetic"])
    recall = pd.DataFrame({"fer": [0.9, np.nan, 0.7], "synthetic": [0.2, 0.5, 0.6]}, index=["Anger", "Contempt", "Happiness"])
    calibration = pd.DataFrame({"temperature": [1.5, 1.5], "ECE before": [0.05, 0.2], "ECE after": [0.03, 0.1]},
                               index=["fer (held-out half)", "synthetic"])
    gap = {"fer": {"difference": 0.4, "low": 0.3, "high": 0.5, "p_value": 1e-9}}
    text = " ".join(studies.rq1_findings(summary, gap, recall, calibration, {"female": {"accuracy": 0.5, "support": 10}}))
    assert "significantly higher on real faces" in text and "80.0%" in text and "40.0%" in text
    assert "Happiness is recognised best" in text and "Anger worst" in text
    assert "changes most for Anger (-70.0 points)" in text and "over-confident" in text
    assert "lowers the synthetic ECE from 0.200 to 0.100" in text and "female 50.0%" in text
    gap["fer"]["p_value"] = 0.3
    assert "not significantly different" in " ".join(studies.rq1_findings(summary, gap, recall, calibration))


def test_rq2_and_rq4_findings_follow_the_numbers():
    comparison = pd.DataFrame({"accuracy pretrained": [0.6], "accuracy fine-tuned": [0.7], "only pretrained right": [3],
                               "only fine-tuned right": [23], "McNemar p": [0.001]}, index=["fer"])
    gender = pd.DataFrame({"base": ["female"] * 4, "percent": [0, 0, 100, 100], "test_on": ["female", "male"] * 2,
                           "accuracy": [0.7, 0.4, 0.7, 0.65]})
    text = " ".join(studies.rq2_findings(comparison, 500, gender))
    assert "from 60.0% to 70.0%: a significant gain" in text and "500 synthetic faces" in text
    assert "70.0% on female and 40.0% on male" in text and "to 65.0%" in text
    table = pd.DataFrame({"domain AUC": [0.99, 0.55], "AUC sd": [0.01, 0.05], "MMD²": [0.3, 0.01], "MMD p": [0.002, 0.4],
                          "distance / between-emotion distance": [1.4, 0.3]}, index=["pretrained", "fine-tuned"])
    centroids = {k: pd.DataFrame({"emotion": ["Anger", "Fear"], "euclidean": [1.0, 2.0]}) for k in table.index}
    text = " ".join(studies.rq4_findings(table, centroids))
    assert "almost perfectly" in text and "hardly" in text and "is significant" in text and "is not significant" in text
    assert "narrows the domain gap" in text and "furthest apart: Fear" in text


def test_domain_gap_separates_shifted_clouds_only():
    rng = np.random.default_rng(0)
    n = 60
    table = pd.DataFrame({"domain": ["real"] * n + ["synthetic"] * n, "emotion": (["Anger", "Happiness"] * n)})
    shifted = np.concatenate([rng.normal(0, 1, (n, 16)), rng.normal(1.5, 1, (n, 16))])
    gap = studies.domain_gap(shifted, table, permutations=100)
    assert gap.auc["auc_mean"] > 0.95 and gap.mmd["p_value"] < 0.05
    assert set(gap.centroids["emotion"]) == {"Anger", "Happiness"}
    same = studies.domain_gap(rng.normal(0, 1, (2 * n, 16)), table, permutations=100)
    assert same.auc["auc_mean"] < 0.75 and same.mmd["p_value"] > 0.01
    assert studies.gap_table({"a": gap, "b": same}).loc["a", "domain AUC"] > studies.gap_table({"b": same}).loc["b", "domain AUC"]


def test_face_table_reads_manifest_splits(tmp_path):
    (tmp_path / "train" / "anger").mkdir(parents=True)
    pd.DataFrame({"path": ["train/anger/a.png", "test/anger/b.png", "train/anger/c.png"], "split": ["train", "test", "train"],
                  "emotion": ["Anger"] * 3, "gender": ["Female", "male", "male"], "kept": [True, True, False]}
                 ).to_csv(tmp_path / "manifest.csv", index=False)
    train = studies.face_table(tmp_path, "train")
    assert len(train) == 1 and train["gender"].iloc[0] == "female" and train["path"].iloc[0] == str(tmp_path / "train/anger/a.png")
    with pytest.raises(ValueError, match="no kept faces in split 'val'"):
        studies.face_table(tmp_path, "val")


def test_test_sets_label_domains(tiny_dataset):
    sets = studies.test_sets({"tiny": tiny_dataset}, tiny_dataset, max_per_class=1)
    assert list(sets) == ["tiny", "synthetic"]
    assert set(sets["tiny"]["domain"]) == {"real"} and set(sets["synthetic"]["domain"]) == {"synthetic"}
    assert len(sets["tiny"]) == 3 and studies.class_table(sets).loc["Anger"].tolist() == [1, 1]
    paired = studies.paired_domains(sets)
    assert len(paired) == 6 and paired["domain"].value_counts().to_dict() == {"real": 3, "synthetic": 3}


def test_load_classifier_from_a_fercore_checkpoint_and_a_state_dict(tmp_path):
    model = create_model("resnet10t")
    save_model(tmp_path / "m.pt", model, image_size=48)
    loaded = studies.load_classifier(tmp_path / "m.pt", "b0")
    assert loaded.fercore_arch == "resnet10t" and loaded.fercore_metadata["image_size"] == 48
    assert studies.load_classifier(tmp_path / "m.pt", "b0", image_size=64).fercore_metadata["image_size"] == 64
    torch.save(model.state_dict(), tmp_path / "plain.pt")
    plain = studies.load_classifier(tmp_path / "plain.pt", "resnet10t")
    assert plain.fercore_metadata["image_size"] == default_image_size("resnet10t") == 176
    x = torch.randn(2, 3, 48, 48)
    with torch.inference_mode():
        assert torch.allclose(plain(x), model.eval()(x), atol=1e-6)


def test_finetune_config_is_the_staged_recipe():
    config = studies.finetune_config("w.pt", "b0", image_size=224, epochs=6, head_epochs=2, lr=1e-4, head_lr=1e-3)
    assert [(s.epochs, s.trainable, s.lr) for s in config.stages] == [(2, "head", 1e-3), (4, "all", 1e-4)]
    assert config.optimizer == "sam" and config.total_epochs == 6 and config.head == "load"
    assert studies.finetune_config("w.pt", "b0", image_size=224, epochs=3).stages == []
    with pytest.raises(ValueError, match="head_epochs"):
        studies.finetune_config("w.pt", "b0", image_size=224, epochs=2, head_epochs=3)


def test_rq3_findings_name_significant_regions():
    table = pd.DataFrame({"region": ["eyes", "mouth", "other"], "mean_real": [0.30, 0.20, 0.50], "mean_synthetic": [0.10, 0.21, 0.69],
                          "difference": [0.20, -0.01, -0.19], "p_value_holm": [0.001, 0.9, 0.02]})
    text = " ".join(studies.rq3_findings({"pretrained": table}, {"pretrained": {"real": 0.7, "synthetic": 0.4}}))
    assert "differs significantly" in text and "for eyes, other" in text and "largest difference is in the eyes region" in text
    assert "real 30.0% vs synthetic 10.0%" in text and "synthetic 40.0%" in text
    table["p_value_holm"] = 0.5
    assert "no region's attention share differs significantly" in " ".join(studies.rq3_findings({"m": table}, {}))
