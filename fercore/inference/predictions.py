"""Predictions as a table: the rows of one :func:`fercore.inference.infer` pass, restricted to a
class set, with the sample table's labels and attributes.

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

from fercore.core.files import write_csv
from fercore.core.labels import CLASSES, UnknownLabelError, canonical_name
from fercore.data import walk_folder
from fercore.inference import engine as inference
from fercore.inference.engine import Inference
from fercore.models import Classifier

log = logging.getLogger(__name__)

PASS_THROUGH = ("split", "domain", "dataset", "gender", "intensity", "source")


def prediction_table(result: Inference, samples: pd.DataFrame | Sequence[str | Path], classes: Sequence[str] | None = None, *,
                     keep: Sequence[str] = ()) -> pd.DataFrame:
    """path, label, pred, ``p_<Class>``, ``logit_<Class>``, error (and split / domain / dataset /
    gender / intensity / source, and the ``keep`` columns such as a grid's generator, template and
    seed, when ``samples`` has them) for the images of ``samples``, taken
    from ``result``. Probabilities and the prediction are restricted to
    ``labels.class_set(classes, within=<the model's trained classes>)``; other classes get 0."""
    table = samples.reset_index(drop=True) if isinstance(samples, pd.DataFrame) else pd.DataFrame({"path": [str(p) for p in samples]})
    rows = result.subset(table["path"].astype(str).tolist())
    probs = rows.probabilities(classes)
    failed = ~rows.readable
    pred = np.array(CLASSES, dtype=object)[probs.argmax(axis=1)]
    pred[failed] = None
    out = pd.DataFrame({"path": table["path"].astype(str)})
    out["label"] = _labels(table)
    out["pred"] = pred
    for i, name in enumerate(CLASSES):
        out[f"p_{name}"] = np.where(failed, np.nan, probs[:, i])
    for i, name in enumerate(CLASSES):
        out[f"logit_{name}"] = rows.logits[:, i]
    for column in dict.fromkeys([*PASS_THROUGH, *keep]):
        if column in table.columns and column not in out.columns:
            out[column] = table[column].to_numpy()
    out["error"] = rows.errors
    return out


def predict(
    model: Classifier,
    samples: pd.DataFrame | Sequence[str | Path],
    *,
    classes: Sequence[str] | None = None,
    batch_size: int = 64,
    workers: int | None = None,
    device: str | torch.device = "auto",
    progress: bool = True,
    cache_dir: str | Path | None = None,
    backend: str = "auto",
    threads: int | None = None,
    preprocess: str = "exact",
) -> pd.DataFrame:
    """Predict every image (:func:`fercore.inference.infer`) into a :func:`prediction_table`.

    The prediction is restricted to ``labels.class_set(classes, within=<trained classes>)``:
    the given classes (e.g. the 7 of a FER2013 root, from :func:`fercore.data.dataset_classes`)
    or, without them, the classes the model was trained on (all 8 for an HSEmotion file). Their
    logits are soft-maxed among themselves; the other classes get probability 0. ``backend`` and
    ``threads`` choose how the network runs, ``preprocess`` (``exact`` | ``fast``) where the images
    are resized (see :func:`fercore.inference.infer`).
    """
    result = inference.infer(model, samples, batch_size=batch_size, workers=workers, device=device, progress=progress,
                             cache_dir=cache_dir, backend=backend, threads=threads, preprocess=preprocess)
    return prediction_table(result, samples, classes)


def _labels(table: pd.DataFrame) -> list[Any]:
    if "emotion" in table.columns:
        return [canonical_name(e) for e in table["emotion"]]
    if "label" in table.columns:
        return [CLASSES[int(i)] for i in table["label"]]
    return [None] * len(table)


def collect_images(inputs: Sequence[str | Path]) -> pd.DataFrame:
    """Files and folders (walked recursively, :func:`fercore.data.walk_folder`: what is left out is
    logged in one line, as a warning) -> table of image paths; a parent folder named after an
    emotion (``happy/``) gives the label. A file named on its own is always used."""
    rows = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = walk_folder(item)
            found.log()
            files = [Path(row[0]) for row in found.used]
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
    if not rows:
        raise FileNotFoundError(f"no image files in {', '.join(map(str, inputs))} (looked for .png, .jpg, ... recursively)")
    table = pd.DataFrame(rows, columns=["path", "emotion"])
    if table["emotion"].isna().any():
        table = table.drop(columns="emotion") if table["emotion"].isna().all() else table
    return table


def write_predictions(preds: pd.DataFrame, path: str | Path, *, logits: bool = False) -> Path:
    """predictions.csv: probabilities (default) or raw logits, written atomically."""
    drop = [c for c in preds.columns if c.startswith("p_" if logits else "logit_")]
    return write_csv(path, preds.drop(columns=drop))
