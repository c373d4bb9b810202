"""Scoring the model being trained on a split (selection after every epoch, the test split once).

The batches come from the library's one inference pass (:func:`fercore.inference.image_batches`:
the same decoding, preprocessing and batching as :func:`fercore.inference.infer`); the forward
runs on the training model itself, at the run's precision and memory format.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import f1_score
from torch import nn

from fercore.core import labels
from fercore.data import InputPipeline
from fercore.inference import image_batches
from fercore.models import train_mode
from fercore.training.step import label_positions


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    samples: pd.DataFrame,
    pipeline: InputPipeline,
    device: torch.device | str = "cpu",
    *,
    classes: list[str],
    batch_size: int = 64,
    workers: int = 0,
    channels_last: bool = True,
    amp_dtype: torch.dtype | None = None,
) -> dict[str, float]:
    """Loss, accuracy and macro-F1 (over the classes with support) of ``model`` on the images of
    ``samples`` (``path``, ``label``), in order and in batches of ``batch_size``; logits are restricted
    to ``classes`` (:func:`fercore.core.labels.restrict_logits`) before loss and argmax.
    ``pipeline``: the :class:`~fercore.data.InputPipeline` that makes the batches."""
    device = torch.device(device)
    position = label_positions(classes, device)
    paths = samples["path"].astype(str).tolist()
    truth_all = samples["label"].to_numpy(dtype=np.int64)
    was_training = model.training
    model.eval()
    total_loss, preds = 0.0, np.zeros(len(paths), dtype=np.int64)
    for x, index, errors in image_batches(paths, pipeline, batch_size=batch_size, workers=workers, device=device):
        _check_readable([paths[i] for i in index.tolist()], errors)
        x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
        rows = index.numpy()
        target = position[torch.as_tensor(truth_all[rows], device=device)]
        with torch.autocast(device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
            out = model(x)
            logits = labels.restrict_logits(out, classes).float()
        total_loss += nn.functional.cross_entropy(logits, target, reduction="sum").item()
        preds[rows] = labels.predict_restricted(out.float(), classes)
    if was_training:
        train_mode(model)
    return {
        "loss": total_loss / max(len(truth_all), 1),
        "accuracy": float((truth_all == preds).mean()) if len(truth_all) else float("nan"),
        "macro_f1": float(f1_score(truth_all, preds, labels=sorted(set(truth_all)), average="macro", zero_division=0)),
    }


def _check_readable(paths: list[str], errors: list[str]) -> None:
    """Training data was checked for unreadable images; one that fails now stops the run."""
    for path, message in zip(paths, errors, strict=True):
        if message:
            raise OSError(f"cannot read image {path}: {message}. Run `fercore check-data` on the dataset")
