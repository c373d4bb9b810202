"""Scoring the model being trained on a split (selection after every epoch, the test split once).

The forward runs on the training model itself, at the run's precision and memory format. Batches
come through the inference data path (:func:`fercore.inference.prepared_batches`, as every
inference pass's do) from the run's own persistent validation loader: a fresh loader per epoch,
as :func:`fercore.inference.image_batches` makes, would draw one more seed from the global torch
RNG each epoch and so change the training that follows (main-process augmentation with
``workers: 0``). The labels go through :mod:`fercore.core.labels` (one restriction, one argmax).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import f1_score
from torch import nn
from torch.utils.data import DataLoader

from fercore.core import labels
from fercore.data import InputPipeline
from fercore.inference import prepared_batches
from fercore.models import train_mode
from fercore.training.step import label_positions


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device | str = "cpu",
    *,
    classes: list[str],
    channels_last: bool = True,
    amp_dtype: torch.dtype | None = None,
    pipeline: InputPipeline | None = None,
) -> dict[str, float]:
    """Loss, accuracy and macro-F1 (over the classes with support) of ``model`` on ``loader``;
    logits are restricted to ``classes`` (:func:`fercore.core.labels.restrict_logits`) before loss and argmax.
    ``pipeline``: the :class:`~fercore.data.InputPipeline` that made the loader's batches (None:
    batches are ready float tensors, which :meth:`~fercore.data.InputPipeline.prepare` only moves)."""
    device = torch.device(device)
    pipeline = pipeline or InputPipeline()
    position = label_positions(classes, device)
    was_training = model.training
    model.eval()
    total_loss, truth, preds = 0.0, [], []
    for x, y in prepared_batches(loader, pipeline, device, channels_last=channels_last):
        target = position[y.to(device)]
        with torch.autocast(device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
            out = model(x)
            logits = labels.restrict_logits(out, classes).float()
        total_loss += nn.functional.cross_entropy(logits, target, reduction="sum").item()
        truth.append(y.numpy())
        preds.append(labels.predict_restricted(out.float(), classes))
    if was_training:
        train_mode(model)
    truth_all, pred_all = np.concatenate(truth), np.concatenate(preds)
    return {
        "loss": total_loss / max(len(truth_all), 1),
        "accuracy": float((truth_all == pred_all).mean()) if len(truth_all) else float("nan"),
        "macro_f1": float(f1_score(truth_all, pred_all, labels=sorted(set(truth_all)), average="macro", zero_division=0)),
    }
