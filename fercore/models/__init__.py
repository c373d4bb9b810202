"""Networks: building timm architectures, reading weight files, the :class:`Classifier` (network + facts), ONNX export and the ONNX Runtime backend."""

from __future__ import annotations

from fercore.models import onnx
from fercore.models.classifier import (
    Classifier,
    WeightsError,
    checkpoint_payload,
    convert_weights,
    create_model,
    default_image_size,
    inspect_weights,
    load_classifier,
    load_model,
    preprocess_for,
    resolve_arch,
    set_trainable,
    train_mode,
)
from fercore.models.onnx import OrtRunner, available, export_onnx

__all__ = [
    "available",
    "checkpoint_payload",
    "Classifier",
    "convert_weights",
    "create_model",
    "default_image_size",
    "export_onnx",
    "inspect_weights",
    "load_classifier",
    "load_model",
    "onnx",
    "OrtRunner",
    "preprocess_for",
    "resolve_arch",
    "set_trainable",
    "train_mode",
    "WeightsError",
]
