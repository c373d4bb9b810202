"""Training and fine-tuning (SAM, freeze then unfreeze), and the experiments built on it: cross-validation and gender splits."""

from __future__ import annotations

from fercore.training.experiments import run_cv, run_gender_splits, run_or_resume, summarise
from fercore.training.loop import Stage, TrainConfig, TrainingDivergedError, train, train_step
from fercore.training.sam import SAM

__all__ = [
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
]
