"""One optimisation step and what it needs: mixed precision, class weights, label positions,
the optimiser (SAM or Adam/AdamW/SGD) and each stage's warm-up + cosine schedule."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from fercore.core import labels
from fercore.core.labels import NUM_CLASSES, class_indices
from fercore.training.config import Stage, TrainConfig
from fercore.training.sam import SAM


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


# --------------------------------------------------------------------------- precision, weights, targets


def autocast_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a run (None: full precision): CUDA only; ``auto`` is bf16 where supported."""
    if device.type != "cuda" or config.amp == "off":
        return None
    if config.amp == "fp16" or (config.amp == "auto" and not torch.cuda.is_bf16_supported()):
        if config.optimizer == "sam":
            raise ValueError("SAM with fp16 needs loss scaling per pass; use amp: bf16 (Ampere or newer) or amp: off")
        return torch.float16
    return torch.bfloat16


def class_weights(targets: np.ndarray, classes: list[int]) -> torch.Tensor:
    """Inverse-frequency weights over ``classes`` (mean weight 1 over the samples)."""
    counts = np.array([(targets == c).sum() for c in classes], dtype=np.float64)
    weights = len(targets) / (len(classes) * np.maximum(counts, 1))
    return torch.tensor(weights, dtype=torch.float32)


def label_positions(classes: list[str], device: torch.device | str = "cpu") -> torch.Tensor:
    """A lookup from canonical label to its column in logits restricted to ``classes``
    (:func:`fercore.core.labels.restrict_logits`); -1 for a label outside ``classes``."""
    cols = class_indices(classes)
    position = torch.full((NUM_CLASSES,), -1, dtype=torch.long)
    position[cols] = torch.arange(len(cols))
    return position.to(device)


# --------------------------------------------------------------------------- the step


class _FrozenBatchNormStats:
    """Inside the block, BatchNorm layers normalise with batch statistics as usual (gradients are
    unchanged) but do not move their running mean / var or ``num_batches_tracked``: SAM's second
    pass runs at perturbed weights, whose activations must not leak into the statistics."""

    def __init__(self, net: nn.Module):
        self.layers = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]

    def __enter__(self) -> None:
        self.saved = [(m.momentum, m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None)
                      for m in self.layers]
        for m in self.layers:
            m.momentum = 0.0

    def __exit__(self, *exc: object) -> None:
        for m, (momentum, tracked) in zip(self.layers, self.saved, strict=True):
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)


def train_step(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    classes: list[str] | None = None,
    amp_dtype: torch.dtype | None = None,
    grad_clip: float | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step (two forward/backward passes under SAM); returns (loss, logits).

    ``classes`` restricts the logits to the trained classes (:func:`fercore.core.labels.restrict_logits`);
    SAM's second pass leaves BatchNorm statistics as the first pass set them; a non-finite loss raises
    :class:`TrainingDivergedError` before any weight changes, and so does a non-finite gradient (not under
    ``scaler``, which skips such steps itself) or weight after the step. ``scaler`` (fp16 only, not
    with SAM) scales the loss against gradient underflow.
    """

    def forward_loss() -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(x.device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
            logits = net(x)
        logits = (logits if classes is None else labels.restrict_logits(logits, classes)).float()
        return loss_fn(logits, target), logits

    loss, logits = forward_loss()
    if not torch.isfinite(loss):
        raise TrainingDivergedError(f"loss became {loss.item()}")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    trained = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    optimizer.zero_grad(set_to_none=True)
    if isinstance(optimizer, SAM):
        loss.backward()
        check_finite("gradient", [(n, p.grad) for n, p in trained])
        optimizer.first_step(zero_grad=True)
        with _FrozenBatchNormStats(net):
            forward_loss()[0].backward()
        check_finite("gradient", [(n, p.grad) for n, p in trained])
        if grad_clip:
            nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.second_step(zero_grad=True)
    elif scaler is not None:
        scaler.scale(loss).backward()
        if grad_clip:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(params, grad_clip)
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        check_finite("gradient", [(n, p.grad) for n, p in trained])
        if grad_clip:
            nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
    check_finite("weight", trained)
    return loss.detach(), logits.detach()


def check_finite(what: str, named: list[tuple[str, torch.Tensor | None]]) -> None:
    """Raise :class:`TrainingDivergedError` naming the first tensor of ``named`` (name, tensor) that
    holds NaN or an infinity; ``what`` says whose (gradient, weight). One device sync when all are finite."""
    present = [(n, t) for n, t in named if t is not None]
    if not present or bool(torch.stack([torch.isfinite(t).all() for _, t in present]).all()):
        return
    name = next(n for n, t in present if not bool(torch.isfinite(t).all()))
    raise TrainingDivergedError(f"the {what} of {name} became NaN or infinite")


# --------------------------------------------------------------------------- optimiser and schedule


def make_optimizer(config: TrainConfig, params: list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """The config's optimiser at ``lr`` over ``params`` (SAM wraps ``base_optimizer``)."""
    bases = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
    kwargs: dict[str, Any] = {"lr": lr, "weight_decay": config.weight_decay}
    if config.optimizer == "sam":
        base = bases[config.base_optimizer]
        if base is torch.optim.SGD:
            kwargs["momentum"] = 0.9
        return SAM(params, base, rho=config.sam_rho, adaptive=config.sam_adaptive, **kwargs)
    return bases[config.optimizer](params, **kwargs)


def warmup_steps(warmup_epochs: float, steps_per_epoch: int, stage_steps: int) -> int:
    """Warm-up steps at the start of a stage: ``warmup_epochs`` epochs of it, capped at the stage."""
    return min(stage_steps, int(round(warmup_epochs * steps_per_epoch)))


def make_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer, stage: Stage,
                   steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A stage's per-step schedule: linear warm-up, then cosine (or constant) over the rest of the stage."""
    steps = stage.epochs * steps_per_epoch
    warmup = warmup_steps(config.warmup_epochs if stage.warmup_epochs is None else stage.warmup_epochs, steps_per_epoch, steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if config.schedule == "constant":
            return 1.0
        return float(0.5 * (1 + np.cos(np.pi * min(1.0, (step - warmup) / max(1, steps - warmup)))))

    # SAM steps through its base optimizer (second_step); schedule that one, it shares the groups
    return torch.optim.lr_scheduler.LambdaLR(getattr(optimizer, "base_optimizer", optimizer), factor)
