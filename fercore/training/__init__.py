"""Training and fine-tuning (SAM, freeze then unfreeze), and the experiments built on it: cross-validation and gender splits.

Modules by idea: ``config`` (TrainConfig, Stage), ``hygiene`` (the run's data: duplicates, unreadable
images, class set), ``step`` (one optimisation step, precision, optimiser and schedule), ``validation``
(scoring the model being trained on a split), ``resume`` (last.pt), ``loop`` (the
run: set-up, epochs, selection, final test), ``experiments`` (cross-validation, gender splits).
"""

from __future__ import annotations

from fercore.training.config import Stage, TrainConfig
from fercore.training.experiments import (
    cv_samples,
    gender_split_samples,
    run_cv,
    run_gender_splits,
    run_or_resume,
    summarise,
)
from fercore.training.hygiene import load_split_samples
from fercore.training.loop import TrainResult, train
from fercore.training.sam import SAM
from fercore.training.step import TrainingDivergedError, train_step

__all__ = [
    "cv_samples",
    "gender_split_samples",
    "load_split_samples",
    "run_cv",
    "run_gender_splits",
    "run_or_resume",
    "SAM",
    "Stage",
    "summarise",
    "train",
    "train_step",
    "TrainConfig",
    "TrainingDivergedError",
    "TrainResult",
]
