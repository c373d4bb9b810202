"""Finite or refused: after every epoch the model's weights and buffers, and its logits (on every
validation image, or on a fixed probe batch of training images when the run has no validation),
must be finite before the epoch is saved; a run that diverges names the last
checkpoint that passed this check (or says there is none)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from torch import nn

from fercore.data import FaceDataset, InputPipeline
from fercore.models import nonfinite_tensors, train_mode

#: Images in the probe batch (the first of the training table, through the evaluation pipeline).
PROBE_IMAGES = 8


def probe_batch(samples: pd.DataFrame, pipeline: InputPipeline) -> tuple[torch.Tensor, ...]:
    """The loader batch of the first :data:`PROBE_IMAGES` images of ``samples`` (not yet on a device)."""
    dataset = FaceDataset(samples.head(PROBE_IMAGES).reset_index(drop=True), pipeline.item)
    return pipeline.collate([dataset[i] for i in range(len(dataset))])


@torch.inference_mode()
def nonfinite_reason(model: nn.Module, probe: tuple[torch.Tensor, ...] | None, pipeline: InputPipeline,
                     device: torch.device, *, channels_last: bool = False) -> str | None:
    """Why ``model`` is not finite (a weight or buffer, or its logits on ``probe``), None when it is.
    ``probe`` None: the weights only (a run with validation checks the logits of every validation image)."""
    bad = nonfinite_tensors(model.state_dict())
    if bad:
        return f"the weights became NaN or infinite ({', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''})"
    if probe is None:
        return None
    was_training = model.training
    model.eval()
    logits = model(pipeline.prepare(probe[0], device, channels_last=channels_last)).float()
    if was_training:
        train_mode(model)
    if not bool(torch.isfinite(logits).all()):
        return f"the logits on a probe batch of {len(logits)} training images became NaN or infinite"
    return None


def last_good(run_dir: Path | None, good_epoch: int, best_epoch: int) -> str:
    """The sentence naming the last checkpoint whose weights and logits were finite."""
    if good_epoch < 1 or run_dir is None:
        return "Last good checkpoint: none (no epoch ended with finite weights and logits)."
    best = f"; the selected weights: {run_dir / 'checkpoint.pt'} (epoch {best_epoch})" if best_epoch >= 1 else ""
    return f"Last good checkpoint: {run_dir / 'last.pt'} (epoch {good_epoch}), resumable with --resume {run_dir}{best}."
