"""Batched prediction into a table, and ``evaluate``: predictions + metrics + figures for a split.

A file that cannot be read does not stop the run: its row has an ``error`` and no prediction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from . import labels
from .data import dataset_classes, default_workers, discover, within_classes
from .fileio import write_csv, write_json
from .images import Preprocess, is_image_file, load_rgb
from .labels import CLASSES, UnknownLabelError, canonical_name
from .models import default_image_size, trained_classes
from .train import pick_device

log = logging.getLogger(__name__)

PASS_THROUGH = ("split", "domain", "gender", "intensity", "source")


class _SafeImages(Dataset):
    """(resized uint8 image, index, error message); unreadable files give zeros and the message."""

    def __init__(self, paths: Sequence[str], preprocess: Preprocess):
        self.paths, self.preprocess = list(paths), preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, str]:
        try:
            return self.preprocess.resized_uint8(load_rgb(self.paths[index])), index, ""
        except Exception as err:  # PIL raises many types for bad files
            size = self.preprocess.image_size
            return torch.zeros(3, size, size, dtype=torch.uint8), index, f"{type(err).__name__}: {err}"


def model_image_size(model: nn.Module) -> int:
    """The size a fercore model was trained at (checkpoint metadata), else the architecture's."""
    meta = getattr(model, "fercore_metadata", None) or {}
    if "image_size" in meta:
        return int(meta["image_size"])
    return default_image_size(getattr(model, "fercore_arch", None) or model.pretrained_cfg["architecture"])


def predict(
    model: nn.Module,
    samples: pd.DataFrame | Sequence[str | Path],
    *,
    classes: Sequence[str] | None = None,
    image_size: int | None = None,
    batch_size: int = 64,
    workers: int | None = None,
    device: str | torch.device = "auto",
    progress: bool = True,
) -> pd.DataFrame:
    """Predict every image; returns path, label, pred, ``p_<Class>``, ``logit_<Class>``, error,
    and the columns split / domain / gender / intensity / source when ``samples`` has them.

    The prediction is restricted to ``labels.class_set(classes, within=trained_classes(model))``:
    the given classes (e.g. the 7 of a FER2013 root, from :func:`fercore.data.dataset_classes`)
    or, without them, the classes the model was trained on (all 8 for an HSEmotion file). Their
    logits are soft-maxed among themselves; the other classes get probability 0.
    """
    table = samples.reset_index(drop=True) if isinstance(samples, pd.DataFrame) else pd.DataFrame({"path": [str(p) for p in samples]})
    device = pick_device(str(device)) if not isinstance(device, torch.device) else device
    size = image_size or model_image_size(model)
    scored_classes = labels.class_set(classes, within=trained_classes(model))
    preprocess = Preprocess(size)
    loader = DataLoader(_SafeImages(table["path"].astype(str).tolist(), preprocess), batch_size=batch_size,
                        num_workers=default_workers() if workers is None else workers, pin_memory=device.type == "cuda")
    model = model.to(device).eval().to(memory_format=torch.channels_last)
    logits_all = np.zeros((len(table), len(CLASSES)), dtype=np.float32)
    errors = [""] * len(table)
    with torch.inference_mode():
        for x, index, err in tqdm(loader, desc="predict", unit="batch", disable=not progress):
            # uint8 crosses process and device boundaries; normalisation runs on the device
            x = preprocess.normalize(x.to(device, non_blocking=True)).contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = model(x)
            logits_all[index.numpy()] = logits.float().cpu().numpy()
            for i, message in zip(index.tolist(), err, strict=True):
                errors[i] = message
    probs = labels.restricted_probabilities(logits_all, scored_classes)
    failed = np.array([bool(e) for e in errors])
    pred = np.array(CLASSES, dtype=object)[probs.argmax(axis=1)]
    pred[failed] = None
    out = pd.DataFrame({"path": table["path"].astype(str)})
    out["label"] = _labels(table)
    out["pred"] = pred
    for i, name in enumerate(CLASSES):
        out[f"p_{name}"] = np.where(failed, np.nan, probs[:, i])
    for i, name in enumerate(CLASSES):
        out[f"logit_{name}"] = np.where(failed, np.nan, logits_all[:, i])
    for column in PASS_THROUGH:
        if column in table.columns:
            out[column] = table[column].to_numpy()
    out["error"] = errors
    if failed.any():
        log.warning("%d of %d images could not be read (see the 'error' column)", int(failed.sum()), len(out))
    return out


def _labels(table: pd.DataFrame) -> list[Any]:
    if "emotion" in table.columns:
        return [canonical_name(e) for e in table["emotion"]]
    if "label" in table.columns:
        return [CLASSES[int(i)] for i in table["label"]]
    return [None] * len(table)


def collect_images(inputs: Sequence[str | Path]) -> pd.DataFrame:
    """Files and folders (searched recursively) -> table of image paths; a parent folder named
    after an emotion (``happy/``) gives the label."""
    rows = []
    for item in map(Path, inputs):
        if item.is_dir():
            files = sorted(p for p in item.rglob("*") if p.is_file() and is_image_file(p))
        elif item.is_file():
            files = [item]
        else:
            raise FileNotFoundError(f"{item} does not exist")
        for path in files:
            try:
                emotion = canonical_name(path.parent.name)
            except UnknownLabelError:
                emotion = None
            rows.append({"path": str(path), "emotion": emotion})
    table = pd.DataFrame(rows, columns=["path", "emotion"])
    if table["emotion"].isna().any():
        table = table.drop(columns="emotion") if table["emotion"].isna().all() else table
    return table


def write_predictions(preds: pd.DataFrame, path: str | Path, *, logits: bool = False) -> Path:
    """predictions.csv: probabilities (default) or raw logits, written atomically."""
    drop = [c for c in preds.columns if c.startswith("p_" if logits else "logit_")]
    return write_csv(path, preds.drop(columns=drop))


def training_references(
    model: nn.Module, data_root: str | Path, split: str, train_root: str | Path | None = None
) -> tuple[dict[str, pd.DataFrame], str]:
    """Training data a test split is checked against for pixel-identical twins, and a note.

    The union of: ``train_root`` (``ROOT`` or ``ROOT/<split>``) when given; the ``train`` split of
    the same dataset root; the data named in a fercore checkpoint's config. An HSEmotion file
    names no training data, which the note says."""
    refs: dict[str, pd.DataFrame] = {}
    notes = []

    def add(root: Path, train_split: str) -> None:
        key = f"{root}/{train_split}"
        if (root / train_split).is_dir() and key not in refs and not (root.resolve() == Path(data_root).resolve() and train_split == split):
            refs[key] = discover(root, [train_split])

    if train_root is not None:
        given = Path(train_root)
        if not given.is_dir():
            raise FileNotFoundError(f"--train-root {given} does not exist")
        if (given / "train").is_dir():
            add(given, "train")
        else:  # a split folder itself: ROOT/<split>
            add(given.parent, given.name)
    add(Path(data_root), "train")
    config = (getattr(model, "fercore_metadata", None) or {}).get("config") or {}
    if config.get("data_root"):
        trained_on = Path(config["data_root"])
        if (trained_on / config.get("train_split", "train")).is_dir():
            add(trained_on, config.get("train_split", "train"))
        else:
            notes.append(f"the model's training data {trained_on} is not on this machine")
    elif not config:
        notes.append("the weights file names no training data (not a fercore checkpoint): "
                     "no twin check against the model's own training data was possible")
    return refs, "; ".join(notes)


def evaluate_folder(
    model: nn.Module,
    data_root: str | Path,
    out: str | Path,
    *,
    split: str = "test",
    classes: Sequence[str] | None = None,
    calibrate_on: str | None = None,
    keep_duplicates: bool = False,
    train_root: str | Path | None = None,
    workers: int | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> dict[str, Any]:
    """Predict a split, write predictions.csv, metrics.json and figures/ under ``out`` (a new folder).

    Predictions are restricted to ``labels.class_set(classes, available=<classes of every split
    of data_root>, within=<the model's trained classes>)`` (FER2013: 7, no Contempt). Test images
    with a pixel-identical twin in the training data (see :func:`training_references`) or
    duplicated with another label are dropped first, unless ``keep_duplicates``; metrics.json
    says how many under ``"duplicates"``. ``calibrate_on`` names a validation split on which a
    temperature is fitted; metrics.json then reports the test calibration before and after
    scaling (predictions stay unscaled).
    """
    from . import plots
    from .dedup import drop_test_duplicates
    from .metrics import arrays, calibration_bins, evaluate_predictions, most_confident_errors, roc_pr

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty; fercore never overwrites an evaluation")
    samples = discover(data_root, [split])
    scored_classes = labels.class_set(classes, available=dataset_classes(data_root), within=trained_classes(model))
    duplicates = None
    if not keep_duplicates:
        refs, note = training_references(model, data_root, split, train_root)
        samples, report = drop_test_duplicates(samples, refs, note=note, workers=max(1, workers or 2), progress=progress)
        log.info("%s", report.line())
        duplicates = report.to_json()
    samples = within_classes(samples, scored_classes)
    preds = predict(model, samples, classes=scored_classes, workers=workers, batch_size=batch_size, progress=progress)
    write_predictions(preds, out / "predictions.csv")
    scored = preds[preds["error"] == ""]
    metrics = evaluate_predictions(scored, classes=scored_classes)
    metrics["duplicates"] = duplicates or {"policy": "kept (--keep-duplicates)"}
    metrics["unreadable"] = preds.loc[preds["error"] != "", ["path", "error"]].to_dict(orient="records")
    write_json(out / "metrics.json", metrics)
    y_true, _, probs = arrays(scored)
    figures = out / "figures"
    counts = np.array(metrics["confusion_matrix"]["counts"])
    plots.confusion_matrix(counts, figures / "confusion", title=f"{Path(data_root).name}/{split}")
    curves = roc_pr(y_true, probs)
    plots.roc_curves(curves, figures / "roc")
    plots.pr_curves(curves, figures / "pr")
    plots.reliability(calibration_bins(y_true, probs), figures / "reliability")
    plots.reliability_per_class(y_true, probs, figures / "reliability_per_class")
    plots.confidence_histogram(scored, figures / "confidence")
    errors = most_confident_errors(scored, 12)
    if len(errors):
        images = [np.asarray(load_rgb(p)) for p in errors["path"]]
        titles = [f"true {t}\npred {p} ({c:.2f})" for t, p, c in zip(errors["label"], errors["pred"], errors["confidence"], strict=True)]
        plots.gallery(images, titles, figures / "confident_errors")
    if calibrate_on:
        metrics["temperature_scaling"] = _temperature_report(model, data_root, calibrate_on, scored, scored_classes, workers,
                                                             batch_size, progress)
        write_json(out / "metrics.json", metrics)
    return metrics


def _temperature_report(model, data_root, split, scored, classes, workers, batch_size, progress) -> dict[str, Any]:
    """Fit T on ``split`` (validation), report test ECE before and after dividing logits by T."""
    from .metrics import ece_mce, fit_temperature, restricted_logits, softmax

    val = predict(model, within_classes(discover(data_root, [split]), classes), classes=classes, workers=workers,
                  batch_size=batch_size, progress=progress)
    temperature = fit_temperature(*restricted_logits(val, classes))
    test_logits, y_test = restricted_logits(scored, classes)
    return {"fitted_on": split, "temperature": temperature,
            "test_before": ece_mce(y_test, softmax(test_logits)), "test_after": ece_mce(y_test, softmax(test_logits, temperature))}
