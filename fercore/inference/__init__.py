"""The one inference pass (logits and features, cached), predictions and folder evaluation."""

from __future__ import annotations

from fercore.inference.engine import (
    ImageTransform,
    Inference,
    InferenceCache,
    TorchRunner,
    image_batches,
    infer,
    prepared_batches,
)
from fercore.inference.evaluate import evaluate_folder
from fercore.inference.predictions import collect_images, predict, prediction_table, write_predictions

__all__ = [
    "collect_images",
    "evaluate_folder",
    "image_batches",
    "ImageTransform",
    "infer",
    "Inference",
    "InferenceCache",
    "predict",
    "prepared_batches",
    "prediction_table",
    "TorchRunner",
    "write_predictions",
]
