"""One class set, one restriction: every path that scores a model agrees, and changes together.

The model here is a fercore checkpoint trained on FER2013's 7 classes whose head is biased so
that, over all 8 logits, it always answers Contempt (the failure seen with a weakly trained
7-class model); restricted to any class set without Contempt it answers Happiness.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fercore import cli
from fercore.core import labels
from fercore.data import dataset_classes, discover
from fercore.explain.cam import cam_report
from fercore.inference.evaluate import evaluate_folder
from fercore.models import create_model, load_model, save_model
from fercore.training import TrainConfig, experiments

SEVEN = [c for c in labels.CLASSES if c != "Contempt"]


def biased_checkpoint(path: Path, bias: dict[str, float], trained: list[str] = SEVEN) -> Path:
    """resnet10t whose logits ignore the image: a constant ``bias`` per class."""
    model = create_model("resnet10t")
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.copy_(torch.tensor([bias.get(c, 0.0) for c in labels.CLASSES]))
    return save_model(path, model, arch="resnet10t", image_size=32, trained_classes=trained)


@pytest.fixture(scope="module")
def contempt_lover(tmp_path_factory) -> Path:
    return biased_checkpoint(tmp_path_factory.mktemp("ckpt") / "checkpoint.pt",
                             {"Contempt": 10.0, "Happiness": 5.0, "Sadness": 3.0})


def test_class_set_order_of_rules():
    assert labels.class_set() == list(labels.CLASSES)
    assert labels.class_set(available=["sad", "happy", "angry"]) == ["Anger", "Happiness", "Sadness"]
    assert labels.class_set(["fear"], available=["sad"]) == ["Fear"]  # a declared list wins
    assert labels.class_set(available=labels.CLASSES, within=SEVEN) == SEVEN  # the checkpoint trained on fewer
    with pytest.raises(ValueError, match="no class left"):
        labels.class_set(["Contempt"], within=SEVEN)


def test_dataset_classes_are_the_union_over_splits(tiny_dataset):
    (tiny_dataset / "val" / "fearful").mkdir(parents=True)
    shutil.copy(next((tiny_dataset / "test" / "sad").iterdir()), tiny_dataset / "val" / "fearful" / "x.png")
    assert dataset_classes(tiny_dataset) == ["Anger", "Fear", "Happiness", "Sadness"]
    assert dataset_classes(discover(tiny_dataset, ["test"])) == ["Anger", "Happiness", "Sadness"]


def _flat_copy(samples: pd.DataFrame, folder: Path) -> dict[str, str]:
    """Copy images into one unlabelled folder; returns {copied path: true emotion}."""
    folder.mkdir()
    truth = {}
    for i, (path, emotion) in enumerate(zip(samples["path"], samples["emotion"], strict=True)):
        target = folder / f"img{i}.png"
        shutil.copy(path, target)
        truth[str(target)] = emotion
    return truth


def _cli_predict_accuracy(checkpoint: Path, samples: pd.DataFrame, tmp: Path, capsys) -> float:
    truth = _flat_copy(samples, tmp / "unlabelled")
    out = tmp / "preds.csv"
    assert cli.main(["predict", str(checkpoint), str(tmp / "unlabelled"), "--out", str(out), "--workers", "0", "-q"]) == 0
    printed = capsys.readouterr().out
    assert "the classes the model was trained on" in printed
    scored = printed.split("predictions among ")[1].split("(")[1].split(")")[0].split(", ")
    preds = pd.read_csv(out).assign(truth=lambda t: t["path"].map(truth))
    preds = preds[preds["truth"].isin(scored)]  # images of a class outside the set cannot be scored, as elsewhere
    return float((preds["pred"] == preds["truth"]).mean())


def _paths_accuracy(checkpoint: Path, root: Path, tmp: Path, capsys, monkeypatch) -> dict[str, float]:
    """Accuracy of one checkpoint on root's test split through every scoring path."""
    test = discover(root, ["test"])
    classes = dataset_classes(root)
    out = {"predict_cli": _cli_predict_accuracy(checkpoint, test, tmp, capsys)}
    out["evaluate"] = evaluate_folder(load_model(checkpoint), root, tmp / "eval", workers=0, progress=False)["accuracy"]
    cam_report(load_model(checkpoint), test, tmp / "cam", classes=classes, per_class=1, progress=False)
    out["cam_report"] = float(pd.read_csv(tmp / "cam" / "cam_regions.csv")["correct"].mean())

    def fake_run(config, run_dir, samples):  # the trained model is the biased checkpoint
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(checkpoint, run_dir / "checkpoint.pt")
        return run_dir

    monkeypatch.setattr(experiments, "run_or_resume", fake_run)
    config = TrainConfig(arch="resnet10t", image_size=32, workers=0, progress=False, val_fraction=0.5)
    table = discover(root)  # every split: the CV table; a third of it is happy, as in the test split
    folds = experiments.run_cv(config, 2, samples=table.assign(source=np.arange(len(table))), out=tmp / "cv")
    out["cv"] = float((folds["accuracy"] * folds["n_test"]).sum() / folds["n_test"].sum())
    train = discover(root, ["train"]).assign(gender=lambda t: np.where(np.arange(len(t)) % 2, "female", "male"))
    gender_test = test.assign(gender=np.where(np.arange(len(test)) % 2, "female", "male"))
    table = experiments.run_gender_splits(config, train, gender_test, [0], out=tmp / "gender")
    out["gender"] = float(table.loc[table["test_on"] == "all", "accuracy"].iloc[0])
    return out


def test_a_contempt_biased_model_has_one_accuracy_on_every_path(tiny_dataset, contempt_lover, tmp_path, capsys, monkeypatch):
    accuracy = _paths_accuracy(contempt_lover, tiny_dataset, tmp_path, capsys, monkeypatch)
    # Restricted, the model always answers Happiness: 2 of the 6 test images. Over all 8 logits
    # it would always answer Contempt (accuracy 0).
    assert accuracy == pytest.approx(dict.fromkeys(accuracy, 1 / 3)), accuracy


def test_one_restriction_changes_every_path_together(tiny_dataset, contempt_lover, tmp_path, capsys, monkeypatch):
    original = labels.class_set

    def without_happiness(*args, **kwargs):
        chosen = [c for c in original(*args, **kwargs) if c != "Happiness"]
        return chosen or original(*args, **kwargs)

    monkeypatch.setattr(labels, "class_set", without_happiness)
    accuracy = _paths_accuracy(contempt_lover, tiny_dataset, tmp_path, capsys, monkeypatch)
    # Happiness gone, its images leave the scoring and the model answers Sadness everywhere: 2 of 4.
    assert accuracy == pytest.approx(dict.fromkeys(accuracy, 1 / 2)), accuracy
    preds = pd.read_csv(tmp_path / "eval" / "predictions.csv")
    assert set(preds["pred"]) == {"Sadness"}
    assert set(pd.read_csv(tmp_path / "cam" / "cam_regions.csv")["pred"]) == {"Sadness"}
    assert set(pd.read_csv(tmp_path / "preds.csv")["pred"]) == {"Sadness"}


def test_training_uses_the_one_class_set(tiny_dataset, tmp_path, monkeypatch):
    from fercore import training as T

    seen = []
    original_restrict = labels.restrict_logits

    def spy(logits, classes=labels.SEVEN_CLASSES):
        seen.append(tuple(classes))
        return original_restrict(logits, classes)

    monkeypatch.setattr(labels, "restrict_logits", spy)
    original = labels.class_set
    monkeypatch.setattr(labels, "class_set", lambda *a, **k: [c for c in original(*a, **k) if c != "Happiness"])
    config = TrainConfig(data_root=str(tiny_dataset), arch="resnet10t", image_size=32, batch_size=4, epochs=1,
                         optimizer="adam", workers=0, progress=False, test_split="test", val_fraction=0.25)
    result = T.train(config, out=tmp_path / "run")
    payload = torch.load(result.run_dir / "checkpoint.pt", weights_only=True)
    assert payload["trained_classes"] == ["Anger", "Sadness"]
    assert set(seen) == {("Anger", "Sadness")}  # the loss, the training argmax and validation all restricted


def test_a_cv_fold_missing_a_class_is_scored_on_the_datasets_classes(tiny_dataset, tmp_path, monkeypatch):
    sad_lover = biased_checkpoint(tmp_path / "sad.pt", {"Contempt": 10.0, "Sadness": 5.0, "Happiness": 3.0})

    def fake_run(config, run_dir, samples):
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(sad_lover, run_dir / "checkpoint.pt")
        return run_dir

    monkeypatch.setattr(experiments, "run_or_resume", fake_run)
    samples = discover(tiny_dataset, ["train"]).assign(source=lambda t: np.arange(len(t)))
    # the splitter stratifies, so plant the folds: fold 0 holds out 2 angry and 2 happy faces, no sad one
    no_sad = np.concatenate([np.flatnonzero(samples["emotion"] == e)[:2] for e in ("Anger", "Happiness")])
    rest = np.setdiff1d(np.arange(len(samples)), no_sad)
    monkeypatch.setattr(experiments, "grouped_folds", lambda *a, **k: [(rest, np.sort(no_sad)), (np.sort(no_sad), rest)])
    folds = experiments.run_cv(TrainConfig(arch="resnet10t", image_size=32, workers=0, progress=False, val_fraction=0.5), 2,
                               samples=samples, out=tmp_path / "cv")
    import json

    summary = json.loads((tmp_path / "cv" / "summary.json").read_text())
    assert summary["classes"] == ["Anger", "Happiness", "Sadness"]
    # scored on the data set's 3 classes the model still answers Sadness in fold 0: 0 right
    # (restricted to the fold's own 2 classes it would answer Happiness and score 0.5)
    assert folds.loc[0, "n_test"] == 4 and folds.loc[0, "accuracy"] == 0.0
    assert folds.loc[1, "accuracy"] == pytest.approx(4 / 8)
