"""The inference audit: with ``FERCORE_INFERENCE_AUDIT`` set to a file, every inference pass and every
forward pass of a watched network appends a JSON line there (what ran, for which model and images,
in which kind of pass), so a suite run can show that each (model, image set) ran once."""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
from torch import nn

AUDIT_ENV = "FERCORE_INFERENCE_AUDIT"
_pass_kind: contextvars.ContextVar[str] = contextvars.ContextVar("fercore_pass_kind", default="other")



@contextlib.contextmanager
def pass_kind(kind: str) -> Iterator[None]:
    """Label the forward passes inside the block (``inference``, ``grad-cam``, ...) in the audit."""
    token = _pass_kind.set(kind)
    try:
        yield
    finally:
        _pass_kind.reset(token)


def audit_event(record: dict[str, Any]) -> None:
    path = os.environ.get(AUDIT_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({**record, "pid": os.getpid()}) + "\n")


def watch_forward_passes(net: nn.Module, label: str) -> None:
    """When ``FERCORE_INFERENCE_AUDIT`` is set: log every forward pass of ``net`` (batch size and
    the :func:`pass_kind` it ran in) under ``label``."""
    if not os.environ.get(AUDIT_ENV):
        return

    def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        audit_forward(label, int(inputs[0].shape[0]))

    net.register_forward_hook(hook)
    net.fercore_audit_label = label  # runs of its ONNX export are logged under the same label


def audit_forward(label: str, batch: int) -> None:
    audit_event({"event": "forward", "model": label, "kind": _pass_kind.get(), "batch": batch})


def read_audit(path: str | Path) -> pd.DataFrame:
    """The audit file as a table (one row per event)."""
    lines = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return pd.DataFrame(lines)
