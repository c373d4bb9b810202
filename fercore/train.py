"""Training: a plain supervised loop with per-epoch validation (SAM and staged schedules build on it).

``fit`` trains a model on a DataLoader, validates after every epoch, keeps the weights of the
best validation epoch, and returns the history. Model selection uses the validation loader
only; the test split is never seen here.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .models import train_mode

log = logging.getLogger(__name__)


def pick_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then CPU."""
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass
class FitConfig:
    """Options of :func:`fit`."""

    epochs: int = 6
    lr: float = 1e-4
    weight_decay: float = 1e-5
    label_smoothing: float = 0.1
    warmup_epochs: float = 0.0
    device: str = "auto"
    channels_last: bool = True
    amp: bool = True  # bf16 autocast on CUDA only
    grad_clip: float | None = None
    progress: bool = True


@dataclass
class EpochLog:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    lr: float
    seconds: float


@dataclass
class FitResult:
    history: list[EpochLog] = field(default_factory=list)
    best_epoch: int = -1
    best_val_accuracy: float = float("nan")


def _to_device(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.ndim == 4 else x


@torch.inference_mode()
def evaluate(
    model: nn.Module, loader: DataLoader, device: torch.device | str = "cpu", *, channels_last: bool = True
) -> dict[str, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``loader`` (eval mode)."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    for x, y in loader:
        x, y = _to_device(x, device, channels_last), y.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(x)
        total_loss += nn.functional.cross_entropy(logits.float(), y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        count += len(y)
    if was_training:
        train_mode(model)
    return {"loss": total_loss / max(count, 1), "accuracy": correct / max(count, 1)}


def fit(model: nn.Module, train_loader: DataLoader, val_loader: DataLoader | None, config: FitConfig) -> FitResult:
    """Train with AdamW, linear warm-up then cosine decay; keep the best validation epoch's weights."""
    device = pick_device(config.device)
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("no trainable parameters: unfreeze part of the model first (models.set_trainable)")
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    steps = config.epochs * len(train_loader)
    warmup = int(config.warmup_epochs * len(train_loader))

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    result = FitResult()
    best_state = None
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        train_mode(model)
        losses, correct, count = [], 0, 0
        bar = tqdm(train_loader, desc=f"epoch {epoch}/{config.epochs}", leave=False, disable=not config.progress)
        for x, y in bar:
            x, y = _to_device(x, device, config.channels_last), y.to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.amp and device.type == "cuda"):
                logits = model(x)
                loss = loss_fn(logits.float(), y)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} in epoch {epoch}; lower the learning rate")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            correct += (logits.argmax(1) == y).sum().item()
            count += len(y)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        val = evaluate(model, val_loader, device, channels_last=config.channels_last) if val_loader else {"loss": float("nan"), "accuracy": float("nan")}
        entry = EpochLog(
            epoch=epoch,
            train_loss=float(np.mean(losses)),
            train_accuracy=correct / max(count, 1),
            val_loss=val["loss"],
            val_accuracy=val["accuracy"],
            lr=optimizer.param_groups[0]["lr"],
            seconds=time.perf_counter() - start,
        )
        result.history.append(entry)
        log.info(
            "epoch %d/%d: train loss %.3f acc %.3f | val loss %.3f acc %.3f | lr %.2g | %.1f s",
            epoch, config.epochs, entry.train_loss, entry.train_accuracy, entry.val_loss, entry.val_accuracy,
            entry.lr, entry.seconds,
        )
        if val_loader is not None and (result.best_epoch < 0 or entry.val_accuracy > result.best_val_accuracy):
            result.best_epoch, result.best_val_accuracy = epoch, entry.val_accuracy
            best_state = copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return result
