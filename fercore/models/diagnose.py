"""Why a file is not the model the caller wanted, said in terms of the fix: a folder, an ONNX
export, a resumable training state, tensors with NaN or infinite values, metadata of the wrong type.
Nothing here imports the other model modules, so the readers can all use it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

#: The weight names of a classifier head, as timm's families call it.
HEAD_WEIGHT_KEYS: tuple[str, ...] = ("classifier.weight", "fc.weight", "head.fc.weight", "head.weight", "last_linear.weight")


def not_a_weight_file(path: Path) -> str | None:
    """Why ``path`` is not a weight file fercore can read (a folder, an ONNX export), with the
    fix; None when nothing is known against it."""
    if path.is_dir():
        model = next((path / n for n in ("checkpoint.pt", "model.pt") if (path / n).is_file()), None)
        if model is not None:
            return f"{path} is a folder, not a weight file; the model in it is {model}: pass that file"
        return f"{path} is a folder, not a weight file; pass the checkpoint.pt of a training run (or a weight file)"
    if path.is_file() and path.suffix.lower() == ".onnx":
        return (f"{path} is an ONNX export; predict, evaluate and training read PyTorch checkpoints: pass the "
                "checkpoint.pt it was exported from (ONNX Runtime is used for you on CPU, --backend onnxruntime)")
    return None


def resumable_state(path: Path | str, metadata: Mapping[str, Any]) -> str | None:
    """A message when ``metadata`` is a training run's resumable state (``last.pt``), not a model."""
    if {"optimizer", "epoch", "rng"} <= set(metadata) or Path(path).name == "last.pt":
        sibling = Path(path).with_name("checkpoint.pt")
        return (f"{path} is a run's resumable training state (last.pt), not a saved model: predict and evaluate "
                f"read {sibling} (the selected epoch); last.pt is for `fercore train --resume {Path(path).parent}`")
    return None


def nonfinite_tensors(state: Mapping[str, torch.Tensor]) -> list[str]:
    """The names of the floating-point tensors of ``state`` holding NaN or an infinity."""
    return [k for k, v in state.items()
            if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())]


def nonfinite_message(source: str, state: Mapping[str, torch.Tensor]) -> str | None:
    """A message naming ``source`` when any of its tensors (parameters or buffers) is not finite."""
    bad = nonfinite_tensors(state)
    if not bad:
        return None
    shown = ", ".join(bad[:4]) + (f" and {len(bad) - 4} more" if len(bad) > 4 else "")
    return (f"{source}: {len(bad)} of {len(state)} tensors hold NaN or infinite values ({shown}); the model is "
            "broken (a training run that diverged?): use an earlier checkpoint or retrain with a lower lr")


def metadata_int(source: Path | str, metadata: Mapping[str, Any], key: str, default: int) -> int:
    """An integer field of a checkpoint's metadata, or an error naming the file and the field."""
    value = metadata.get(key)
    if value is None or value == "":
        return default
    try:
        if isinstance(value, bool) or float(value) != int(float(value)):
            raise ValueError
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{source}: the checkpoint's metadata has {key}={value!r}, not a whole number; the file was "
                         "edited or written by another tool: save it again with fercore (fercore.models.save_model)") from None


def head_classes(state: Mapping[str, torch.Tensor]) -> int | None:
    """The number of classes of the head in ``state`` (any timm family's head name), None without one."""
    for key in HEAD_WEIGHT_KEYS:
        weight = state.get(key)
        if isinstance(weight, torch.Tensor) and weight.ndim == 2:
            return int(weight.shape[0])
    return None
