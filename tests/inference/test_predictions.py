"""Prediction, evaluation, CLI and ONNX export with small models the tests save."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from fercore import cli
from fercore.data import discover
from fercore.inference.evaluate import evaluate_folder
from fercore.inference.predictions import collect_images, predict
from fercore.models import create_model, load_model, save_model


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    model = create_model("resnet10t")
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.pt"
    save_model(path, model, arch="resnet10t", image_size=32)
    return path


def test_predict_rows_probabilities_and_bad_files(tiny_dataset, small_checkpoint):
    bad = tiny_dataset / "test" / "sad" / "broken.png"
    bad.write_bytes(b"not a png")
    samples = discover(tiny_dataset, ["test"])
    preds = predict(load_model(small_checkpoint), samples, workers=0, progress=False)
    assert len(preds) == len(samples) == 7
    assert {"path", "label", "pred", "error", "p_Contempt", "logit_Surprise"} <= set(preds.columns)
    broken = preds[preds.path.str.endswith("broken.png")].iloc[0]
    assert broken.error.startswith("UnidentifiedImageError") and pd.isna(broken.pred) and np.isnan(broken.p_Anger)
    good = preds[preds.error == ""]
    assert np.allclose(good[[c for c in good.columns if c.startswith("p_")]].sum(axis=1), 1.0)
    assert set(good.label) == {"Anger", "Happiness", "Sadness"}
    restricted = predict(load_model(small_checkpoint), samples, classes=["Anger", "Happiness"], workers=0, progress=False)
    ok = restricted[restricted.error == ""]
    assert set(ok.pred) <= {"Anger", "Happiness"} and (ok.p_Sadness == 0).all()
    assert np.allclose(ok.logit_Sadness, good.logit_Sadness)  # logits are the raw ones


def test_collect_images_labels_from_folders(tiny_dataset):
    table = collect_images([tiny_dataset / "train", tiny_dataset / "test" / "happy" / "0.png"])
    assert len(table) == 13 and set(table.emotion) == {"Anger", "Happiness", "Sadness"}
    with pytest.raises(FileNotFoundError):
        collect_images([tiny_dataset / "nope"])


def test_evaluate_folder_writes_predictions_metrics_figures(tiny_dataset, small_checkpoint, tmp_path):
    out = tmp_path / "eval"
    metrics = evaluate_folder(load_model(small_checkpoint), tiny_dataset, out, split="test", workers=0, progress=False)
    assert (out / "predictions.csv").is_file() and (out / "metrics.json").is_file()
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["accuracy"] == metrics["accuracy"] and saved["Contempt"]["support"] == 0
    assert saved["restricted_to_classes"] == ["Anger", "Happiness", "Sadness"]
    assert saved["bootstrap_95ci"]["interval"].startswith("stratified bootstrap over 6 faces")  # no manifest: faces independent
    for name in ("confusion", "roc", "pr", "reliability", "confidence"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 5000, name
    with pytest.raises(FileExistsError):
        evaluate_folder(load_model(small_checkpoint), tiny_dataset, out, split="test", workers=0, progress=False)


def test_evaluate_folder_clusters_by_the_manifest_grids(tiny_dataset, small_checkpoint, tmp_path):
    """A processed synthetic folder (``fercore extract`` writes manifest.csv): the faces of one source grid
    are one cluster of the intervals, and metrics.json says which clustering was used."""
    rows = [{"path": str(p.relative_to(tiny_dataset)), "emotion": p.parent.name, "split": p.parts[-3],
             "source": f"{p.parent.name}_{p.parts[-3]}.png", "kept": True} for p in sorted(tiny_dataset.rglob("*.png"))]
    pd.DataFrame(rows).to_csv(tiny_dataset / "manifest.csv", index=False)
    metrics = evaluate_folder(load_model(small_checkpoint), tiny_dataset, tmp_path / "ev", split="test", workers=0, progress=False)
    intervals = json.loads((tmp_path / "ev" / "metrics.json").read_text())["bootstrap_95ci"]
    assert intervals["interval"].startswith("stratified cluster bootstrap over 3 clusters of 6 faces")
    assert intervals["accuracy"]["min_clusters"] == 1 and intervals["accuracy"]["low"] is None  # one grid per class: no interval
    assert metrics["bootstrap_95ci"]["macro_f1"]["groups"] == 3
    assert set(pd.read_csv(tmp_path / "ev" / "predictions.csv")["source"]) == {"angry_test.png", "happy_test.png", "sad_test.png"}


def test_predict_and_evaluate_cli(tiny_dataset, small_checkpoint, tmp_path, capsys):
    csv = tmp_path / "preds.csv"
    assert cli.main(["predict", str(small_checkpoint), str(tiny_dataset / "test"), "--out", str(csv), "--workers", "0", "-q"]) == 0
    table = pd.read_csv(csv)
    assert len(table) == 6 and "p_Anger" in table.columns and "logit_Anger" not in table.columns
    assert cli.main(["predict", str(small_checkpoint), str(tiny_dataset / "test"), "--out", str(tmp_path / "l.csv"),
                     "--logits", "--workers", "0", "-q"]) == 0
    assert "logit_Anger" in pd.read_csv(tmp_path / "l.csv").columns
    assert cli.main(["predict", str(small_checkpoint), str(tiny_dataset / "test"), "--out", str(tmp_path / "f.csv"),
                     "--preprocess", "fast", "--backend", "torch", "--workers", "0", "-q"]) == 0
    fast = pd.read_csv(tmp_path / "f.csv")
    assert (fast["path"] == table["path"]).all() and np.abs(fast["p_Anger"] - table["p_Anger"]).max() < 0.02
    assert cli.main(["evaluate", str(small_checkpoint), str(tiny_dataset), "--split", "test", "--out", str(tmp_path / "ev"),
                     "--workers", "0", "-q"]) == 0
    assert "accuracy" in capsys.readouterr().out


@pytest.mark.slow
def test_predict_on_shared_fer2013_val(fer2013_root, small_checkpoint):
    samples = discover(fer2013_root, ["val"])
    preds = predict(load_model(small_checkpoint), samples, classes=["Anger", "Disgust", "Fear", "Happiness", "Neutral",
                    "Sadness", "Surprise"], batch_size=256, workers=2, progress=False)
    assert len(preds) == 3589 and (preds.error == "").all()
    assert preds.label.value_counts()["Happiness"] == 895 and "Contempt" not in set(preds.pred)


def test_export_onnx_parity(small_checkpoint, tmp_path, capsys):
    pytest.importorskip("onnxruntime", reason="onnx extra not installed (pip install 'fercore[onnx]')")
    out = tmp_path / "model.onnx"
    assert cli.main(["export-onnx", str(small_checkpoint), str(out)]) == 0
    assert "max |onnx - torch|" in capsys.readouterr().out
    import onnxruntime as ort

    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = torch.randn(5, 3, 32, 32)
    with torch.inference_mode():
        expected = load_model(small_checkpoint).net(x).numpy()
    got = session.run(["logits"], {"image": x.numpy()})[0]
    assert got.shape == (5, 8) and np.abs(got - expected).max() < 1e-4
    assert cli.main(["export-onnx", str(small_checkpoint), str(out)]) == 2  # never replaced silently


def test_embeddings_and_figures(tiny_dataset, small_checkpoint, tmp_path):
    from fercore.analysis import plots
    from fercore.explain import embeddings as E

    samples = discover(tiny_dataset).assign(domain=lambda t: np.where(t.split == "train", "real", "synthetic"))
    feats = E.extract(load_model(small_checkpoint), samples, workers=0, progress=False)
    assert feats.shape == (18, 512)  # resnet10t's pooled features
    coords = E.project(feats, "pca")
    fig = plots.embedding_scatter(coords, samples, tmp_path / "pca", hue="domain", style="emotion", formats=("png", "svg"))
    assert (tmp_path / "pca.png").stat().st_size > 5000 and (tmp_path / "pca.svg").is_file() and fig is not None
    images = [np.random.default_rng(i).random((16, 16, 3)) for i in range(5)]
    plots.gallery(images, [f"#{i}" for i in range(5)], tmp_path / "gallery", ncols=3)
    assert (tmp_path / "gallery.png").is_file()


def test_predict_logits_equal_the_reference_preprocessing(tiny_dataset, small_checkpoint):
    from fercore.data.images import Preprocess, load_rgb

    model = load_model(small_checkpoint)
    path = str(tiny_dataset / "test" / "happy" / "0.png")
    preds = predict(model, [path], workers=0, progress=False)
    with torch.inference_mode():
        expected = model.net.eval()(Preprocess(32)(load_rgb(path)).unsqueeze(0))[0].numpy()
    got = preds[[f"logit_{c}" for c in ("Anger", "Contempt", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise")]]
    assert np.allclose(got.to_numpy()[0], expected, atol=1e-5)


def test_cam_report_writes_tables_and_figures(demo_root, small_checkpoint, tmp_path):
    """Every explained image gets a row (prediction, landmarks or the reason it is left out, region
    shares of the fine map); the two layers, the canonical mean maps and the figures are written."""
    from fercore.core.labels import CLASSES
    from fercore.data import per_class_subset
    from fercore.explain.cam import cam_report
    from fercore.faces.regions import REGIONS

    faces = discover(demo_root / "real", ["test"])
    faces = per_class_subset(faces[faces["label"].isin([CLASSES.index(c) for c in ("Anger", "Happiness", "Sadness")])], 6, seed=0)
    samples = faces.reset_index(drop=True).assign(domain=lambda t: np.where(t.index % 2 == 0, "real", "synthetic"))
    result = cam_report(load_model(small_checkpoint), samples, tmp_path / "cam", classes=["Anger", "Happiness", "Sadness"],
                        face_cache=tmp_path / "faces", per_class=2, progress=False)
    regions = pd.read_csv(tmp_path / "cam" / "cam_regions.csv", keep_default_na=False, na_values=[""])
    assert len(regions) == 18 and (regions["excluded"].isna()).sum() >= 3 and {"pred", "correct", "group", "iod_px", "excluded", *REGIONS} <= set(regions.columns)
    assert set(regions["excluded"].fillna("")) <= {"", "no landmarks", "implausible landmarks", "zero map"}
    used = regions[regions["excluded"].fillna("") == ""]
    assert np.allclose(used[list(REGIONS)].sum(axis=1), 1.0) and regions.loc[regions["excluded"].notna(), list(REGIONS)].isna().all().all()
    layers = json.loads((tmp_path / "cam" / "layers.json").read_text())
    assert layers["reference"]["method"] == "gradcam" and layers["fine"]["method"] == "layercam"
    assert layers["fine"]["cell_px"] < layers["reference"]["cell_px"]
    assert len(result.table) == 18 and len(result.used) == len(used)
    stored = np.load(tmp_path / "cam" / "mean_maps.npz")
    assert set(stored.files) == {"|".join(k) for k in result.mean_maps} and all(stored[k].shape == (128, 128) for k in stored.files)
    assert (tmp_path / "cam" / "figures" / "cam_mean.png").is_file()
    assert list((tmp_path / "faces").rglob("batch-*.json")), "landmarks are cached by content"


def test_evaluate_with_temperature_scaling(tiny_dataset, small_checkpoint, tmp_path):
    metrics = evaluate_folder(load_model(small_checkpoint), tiny_dataset, tmp_path / "ev", split="test",
                              calibrate_on="train", workers=0, progress=False)
    scaling = metrics["temperature_scaling"]
    assert scaling["fitted_on"] == "train" and scaling["temperature"] > 0
    assert scaling["test_after"]["ece"] >= 0
    assert (tmp_path / "ev" / "figures" / "reliability_per_class.png").is_file()
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["temperature_scaling"]["temperature"] == scaling["temperature"]
