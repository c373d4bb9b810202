"""Networks: building timm architectures, reading weight files, the :class:`Classifier` (network + facts), ONNX export and the ONNX Runtime backend."""

from __future__ import annotations

from fercore.models import onnx
from fercore.models.architectures import (
    create_model,
    default_image_size,
    features,
    logits_and_features,
    preprocess_for,
    resolve_arch,
    set_trainable,
    train_mode,
)
from fercore.models.classifier import Classifier, checkpoint_payload, load_classifier, load_model, save_model
from fercore.models.diagnose import nonfinite_tensors
from fercore.models.onnx import OrtRunner, available, export_onnx
from fercore.models.weights import WeightsError, convert_weights, inspect_weights

__all__ = [
    "available",
    "checkpoint_payload",
    "Classifier",
    "convert_weights",
    "create_model",
    "default_image_size",
    "export_onnx",
    "features",
    "inspect_weights",
    "load_classifier",
    "logits_and_features",
    "nonfinite_tensors",
    "load_model",
    "onnx",
    "OrtRunner",
    "preprocess_for",
    "resolve_arch",
    "save_model",
    "set_trainable",
    "train_mode",
    "WeightsError",
]
