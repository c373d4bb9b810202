"""What a training run depends on: :class:`TrainConfig` (loadable from YAML) and its schedule's :class:`Stage` s."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fercore.core import labels
from fercore.core.config import ConfigError, check_fields, check_keys, read_yaml_mapping, rules
from fercore.core.overrides import apply_overrides
from fercore.data import PREPROCESS_MODES


@dataclass
class Stage:
    """A part of the schedule: ``epochs`` at ``lr`` with ``trainable`` = head | all | N last stages;
    ``warmup_epochs`` (None: the config's) of linear warm-up at the start of this stage."""

    epochs: int = rules(ge=0)  # a stage of 0 epochs is skipped
    trainable: str | int = "all"
    lr: float = rules(1e-4, gt=0)
    warmup_epochs: float | None = rules(None, ge=0)

    def __post_init__(self) -> None:
        check_fields(self)


def _stage(index: int, stage: Stage | dict[str, Any]) -> Stage:
    """A stage of the schedule; a bad key or value is an error about ``stages`` (so a ``--set stages=...`` is named)."""
    if isinstance(stage, Stage):
        return stage
    try:
        check_keys(Stage, stage)
        return Stage(**stage)
    except ConfigError as err:
        raise ConfigError(f"config stages[{index}]: {str(err).removeprefix('config ')}", "stages") from None


@dataclass
class TrainConfig:
    """Everything a training run depends on; loadable from YAML (``TrainConfig.from_yaml``).

    Every field is checked on construction from its type hint and its ``rules`` (bounds,
    choices; :mod:`fercore.core.config`); unknown keys are refused with a did-you-mean.
    ``classes``: the class set to train and score on (default: every class folder of
    ``data_root`` over all splits; see :func:`fercore.core.labels.class_set`).
    ``warmup_epochs``: linear warm-up at the start of *each* stage (each stage starts a fresh
    optimizer and schedule), lasting this many epochs of that stage (capped at the stage's
    length); a stage may set its own ``warmup_epochs``.
    """

    experiment: str = "train"
    data_root: str = ""
    train_split: str = "train"
    val_split: str | None = None  # None: a stratified (or grid-grouped) part of the train split
    val_fraction: float = rules(0.1, gt=0, lt=1)
    test_split: str | None = None  # scored once with the selected model; never used for selection
    max_train_samples: int | None = rules(None, ge=1)  # stratified subset, for CPU budgets
    max_val_samples: int | None = rules(None, ge=1)
    classes: list[str] | None = None  # None: the data set's classes (all splits)
    keep_duplicates: bool = False  # True: no duplicate hygiene (see the module docstring)
    arch: str = "tf_efficientnet_b0"
    weights: str | None = None
    trust_pickle: bool = False
    head: str = rules("auto", choices=("auto", "fresh", "load"))  # see models.load_weights
    drop_rate: float = rules(0.0, ge=0, lt=1)
    image_size: int = rules(224, ge=8)
    batch_size: int = rules(32, ge=1)
    epochs: int = rules(6, ge=1)  # used when `stages` is empty: one stage, everything trainable, at `lr`
    lr: float = rules(1e-4, gt=0)
    stages: list[Stage] = field(default_factory=list)
    optimizer: str = rules("sam", choices=("sam", "adam", "adamw"))
    base_optimizer: str = rules("adam", choices=("adam", "adamw", "sgd"))  # what SAM wraps
    sam_rho: float = rules(0.05, ge=0)
    sam_adaptive: bool = False
    weight_decay: float = rules(0.0, ge=0)
    schedule: str = rules("cosine", choices=("cosine", "constant"))  # within each stage
    warmup_epochs: float = rules(0.0, ge=0)
    label_smoothing: float = rules(0.1, ge=0, lt=1)
    class_weights: bool = True  # inverse-frequency weighted cross-entropy
    augment: bool = False
    # exact: PIL resize (and augmentation) in the loader workers; fast: workers decode only, resizing,
    # augmentation and normalisation run batched on the device (fercore.data.InputPipeline)
    preprocess: str = rules("exact", choices=PREPROCESS_MODES)
    select_metric: str = rules("accuracy", choices=("accuracy", "macro_f1"))  # on validation
    seed: int = rules(0, ge=0, le=2**32 - 1)  # numpy and scikit-learn take seeds below 2**32
    device: str = "auto"
    amp: str = rules("auto", choices=("auto", "bf16", "fp16", "off"))  # CUDA only; auto = bf16 where supported
    channels_last: bool = True
    grad_clip: float | None = rules(None, gt=0)
    workers: int = rules(2, ge=0)
    progress: bool = True

    def __post_init__(self) -> None:
        check_fields(self)
        self.data_root = os.path.expanduser(self.data_root)  # `~/data/fer2013`, as a shell would read it
        if self.weights:
            self.weights = os.path.expanduser(self.weights)
        if self.classes is not None:
            self.classes = labels.class_set(self.classes)
        for i, stage in enumerate(self.stages):
            if not isinstance(stage, (Stage, dict)):
                raise ConfigError(f"config stages[{i}]: expected a mapping like {{epochs: 2, trainable: head, lr: 1e-3}}, "
                                  f"got {stage!r}", "stages")
        self.stages = [_stage(i, s) for i, s in enumerate(self.stages)]
        if self.total_epochs < 1:
            raise ConfigError("config stages: the stages add up to 0 epochs; give at least one epoch", "stages")

    @property
    def schedule_stages(self) -> list[Stage]:
        return self.stages or [Stage(self.epochs, "all", self.lr)]

    @property
    def total_epochs(self) -> int:
        return sum(s.epochs for s in self.schedule_stages)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        check_keys(cls, data)
        return cls(**data)

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
        """Read a YAML config and apply ``key=value`` overrides (values parsed as YAML); a bad key
        or value is a :class:`~fercore.core.config.ConfigError` naming the file (or the ``--set``)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist (configs live in configs/)")
        data = read_yaml_mapping(path)
        overrides = overrides or []
        try:
            return cls.from_dict(apply_overrides(data, overrides))
        except ConfigError as err:
            given = [o for o in overrides if o.partition("=")[0].strip() == err.key]
            where = f"--set {given[-1]}" if given else str(path)
            raise ConfigError(f"{where}: {err}", err.key) from None
