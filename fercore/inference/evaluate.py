"""``fercore evaluate``: predictions, metrics and figures for one split of a dataset, after the
duplicate policy (test images with a twin in the training data are dropped and counted).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fercore.analysis import (
    arrays,
    calibration_bins,
    evaluate_predictions,
    fit_temperature,
    most_confident_errors,
    plots,
    recalibrate,
    restricted_logits,
    roc_pr,
)
from fercore.core import labels
from fercore.core.files import write_json
from fercore.data import dataset_classes, discover, drop_test_duplicates, load_rgb, load_samples, within_classes
from fercore.inference.predictions import predict, write_predictions
from fercore.models import Classifier

log = logging.getLogger(__name__)


def training_references(
    model: Classifier, data_root: str | Path, split: str, train_root: str | Path | None = None
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
    config = model.facts.training_config
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


def with_sources(samples: pd.DataFrame, data_root: str | Path) -> pd.DataFrame:
    """``samples`` with each face's ``source`` grid from ``data_root/manifest.csv`` (``fercore extract``)
    where there is one, so the intervals resample whole grids; faces the manifest does not name keep no
    source (each its own cluster). Without a manifest, ``samples`` unchanged."""
    manifest = Path(data_root) / "manifest.csv"
    if "source" in samples.columns or not manifest.is_file():
        return samples
    table = load_samples(manifest)
    if "source" not in table.columns:
        return samples
    table = table[table["source"].notna()]
    lookup = dict(zip((str(Path(p).resolve()) for p in table["path"]), table["source"].astype(str), strict=True))
    sources = [lookup.get(str(Path(p).resolve())) for p in samples["path"]]
    log.info("%d of %d faces have a source grid in %s", sum(s is not None for s in sources), len(sources), manifest)
    return samples.assign(source=sources)


def evaluate_folder(
    model: Classifier,
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
    backend: str = "auto",
    threads: int | None = None,
    preprocess: str = "exact",
) -> dict[str, Any]:
    """Predict a split, write predictions.csv, metrics.json and figures/ under ``out`` (a new folder).

    Predictions are restricted to ``labels.class_set(classes, available=<classes of every split
    of data_root>, within=<the model's trained classes>)`` (FER2013: 7, no Contempt). Test images
    with a pixel-identical twin in the training data (see :func:`training_references`) or
    duplicated with another label are dropped first, unless ``keep_duplicates``; metrics.json
    says how many under ``"duplicates"``. ``calibrate_on`` names a validation split on which a
    temperature is fitted; metrics.json then reports the test calibration before and after
    scaling (predictions stay unscaled). ``backend`` / ``threads`` / ``preprocess``: see :func:`fercore.inference.infer`.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty; fercore never overwrites an evaluation")
    samples = with_sources(discover(data_root, [split]), data_root)
    scored_classes = labels.class_set(classes, available=dataset_classes(data_root), within=model.trained_classes)
    duplicates = None
    if not keep_duplicates:
        refs, note = training_references(model, data_root, split, train_root)
        samples, report = drop_test_duplicates(samples, refs, note=note, workers=max(1, workers or 2), progress=progress)
        log.info("%s", report.line())
        duplicates = report.to_json()
    samples = within_classes(samples, scored_classes)
    run = {"workers": workers, "batch_size": batch_size, "progress": progress, "backend": backend, "threads": threads,
           "preprocess": preprocess}
    preds = predict(model, samples, classes=scored_classes, **run)
    write_predictions(preds, out / "predictions.csv")
    scored = preds[preds["error"] == ""]
    metrics = evaluate_predictions(scored, classes=scored_classes)  # clustered by the source grids, where known
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
        metrics["temperature_scaling"] = _temperature_report(model, data_root, calibrate_on, scored, scored_classes, run)
        write_json(out / "metrics.json", metrics)
    return metrics


def _temperature_report(model, data_root, split, scored, classes, run: dict[str, Any]) -> dict[str, Any]:
    """Fit T on ``split`` (validation), report test ECE before and after dividing logits by T;
    ``run``: the keyword options of :func:`fercore.inference.predictions.predict`."""
    val = predict(model, within_classes(discover(data_root, [split]), classes), classes=classes, **run)
    temperature = fit_temperature(*restricted_logits(val, classes))
    test = recalibrate(*restricted_logits(scored, classes), temperature)
    return {"fitted_on": split, "temperature": temperature, "test_before": test.before, "test_after": test.after}
