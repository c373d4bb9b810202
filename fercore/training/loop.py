"""Training and fine-tuning: SAM (or Adam/AdamW), staged unfreezing, resumable runs, DDP.

``train(config)`` reads the data, builds the model, runs the stages (e.g. head only at
lr 1e-3, then everything at lr 1e-4), validates after every epoch, keeps the best
validation epoch as ``checkpoint.pt`` and writes ``config.yaml``, ``log.csv``,
``metrics.json`` into a run folder that never replaces an earlier run. ``last.pt`` holds
the full training state after every epoch, so ``train(resume=run_dir)`` continues an
interrupted run and ends with the same weights as an uninterrupted one (same seed, CPU).
Under ``torchrun --nproc_per_node N`` it trains with DistributedDataParallel.

Model selection uses the validation split only; a ``test_split`` is scored once, at the end,
with the selected model. Data hygiene (:mod:`fercore.data.duplicates`): every copy of an image that
carries two labels is dropped from training; a selection split carved from ``train`` keeps
pixel-identical twins on one side; an explicit validation split and the test split lose
their images with a twin in ``train``. ``keep_duplicates: true`` turns this off.
"""

from __future__ import annotations

import contextlib
import logging
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
import yaml
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from fercore.core import labels
from fercore.core.config import ConfigError, check_fields, check_keys, read_yaml_mapping, rules
from fercore.core.files import atomic_open, check_output, new_run_dir, save_torch, write_csv, write_json
from fercore.core.labels import CLASSES, NUM_CLASSES, class_indices
from fercore.core.overrides import apply_overrides
from fercore.core.progress import progress_bar as tqdm  # a bar in a terminal, log lines in a log file
from fercore.core.runtime import Dist, init_distributed, pick_device, seed_everything
from fercore.data import (
    PREPROCESS_MODES,
    FaceDataset,
    InputPipeline,
    dataset_classes,
    discover,
    drop_conflicting,
    drop_test_duplicates,
    grouped_split,
    manifest_hash,
    pixel_hashes,
    within_classes,
)
from fercore.models import checkpoint_payload, create_model, resolve_arch, set_trainable, train_mode
from fercore.training.sam import SAM

log = logging.getLogger(__name__)


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


# --------------------------------------------------------------------------- configuration


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
    seed: int = rules(0, ge=0)
    device: str = "auto"
    amp: str = rules("auto", choices=("auto", "bf16", "fp16", "off"))  # CUDA only; auto = bf16 where supported
    channels_last: bool = True
    grad_clip: float | None = rules(None, gt=0)
    workers: int = rules(2, ge=0)
    progress: bool = True

    def __post_init__(self) -> None:
        check_fields(self)
        if self.classes is not None:
            self.classes = labels.class_set(self.classes)
        for i, stage in enumerate(self.stages):
            if not isinstance(stage, (Stage, dict)):
                raise ConfigError(f"config stages[{i}]: expected a mapping like {{epochs: 2, trainable: head, lr: 1e-3}}, "
                                  f"got {stage!r}", "stages")
            if isinstance(stage, dict):
                check_keys(Stage, stage)
        self.stages = [s if isinstance(s, Stage) else Stage(**s) for s in self.stages]
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


# --------------------------------------------------------------------------- mixed precision


def _amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or config.amp == "off":
        return None
    if config.amp == "fp16" or (config.amp == "auto" and not torch.cuda.is_bf16_supported()):
        if config.optimizer == "sam":
            raise ValueError("SAM with fp16 needs loss scaling per pass; use amp: bf16 (Ampere or newer) or amp: off")
        return torch.float16
    return torch.bfloat16


# --------------------------------------------------------------------------- data


def _limit(samples: pd.DataFrame, n: int | None, seed: int) -> pd.DataFrame:
    if n is None or n >= len(samples):
        return samples
    from sklearn.model_selection import train_test_split

    subset, _ = train_test_split(samples, train_size=n, random_state=seed, stratify=samples["label"])
    return subset.sort_values("path").reset_index(drop=True)


def load_split_samples(config: TrainConfig) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None, dict[str, Any]]:
    """(train, val, test, hygiene report) sample tables for a folder dataset, as the config asks.

    Unless ``keep_duplicates``: conflicting-label copies leave the train split; a carved
    selection split is grouped by pixel content (twins stay on one side); an explicit
    validation split and the test split lose the images that have a twin in ``train``."""
    if not config.data_root:
        raise ValueError("config data_root is empty: set it in the YAML or pass --data-root")
    train = discover(config.data_root, [config.train_split])
    full_train = train
    hygiene: dict[str, Any] = {"policy": "kept (keep_duplicates: true)"} if config.keep_duplicates else {}
    workers = max(1, config.workers)
    if not config.keep_duplicates:
        train, dropped = drop_conflicting(train, workers=workers, progress=config.progress)
        hygiene["train_conflicting_dropped"] = len(dropped)
        log.info("%s/%s: dropped %d images duplicated with another label", config.data_root, config.train_split, len(dropped))
    reference = {f"{config.data_root}/{config.train_split}": full_train}
    if config.val_split:
        val = discover(config.data_root, [config.val_split])
        if not config.keep_duplicates:
            val, report = drop_test_duplicates(val, reference, workers=workers, progress=config.progress)
            hygiene["val"] = report.to_json()
            log.info("validation split: %s", report.line())
    else:
        group = "source" if "source" in train.columns else "content_group" if "content_group" in train.columns else "source"
        train, val = grouped_split(train, config.val_fraction, group=group, seed=config.seed)
        hygiene["selection_split"] = f"carved from {config.train_split} ({config.val_fraction:.0%}), grouped by {group}"
    test = discover(config.data_root, [config.test_split]) if config.test_split else None
    if test is not None and not config.keep_duplicates:
        test, report = drop_test_duplicates(test, reference, workers=workers, progress=config.progress)
        hygiene["test"] = report.to_json()
        log.info("test split: %s", report.line())
    train, val = train.drop(columns="content_group", errors="ignore"), val.drop(columns="content_group", errors="ignore")
    return _limit(train, config.max_train_samples, config.seed), _limit(val, config.max_val_samples, config.seed), test, hygiene


def class_weights(targets: np.ndarray, classes: list[int]) -> torch.Tensor:
    """Inverse-frequency weights over ``classes`` (mean weight 1 over the samples)."""
    counts = np.array([(targets == c).sum() for c in classes], dtype=np.float64)
    weights = len(targets) / (len(classes) * np.maximum(counts, 1))
    return torch.tensor(weights, dtype=torch.float32)


# --------------------------------------------------------------------------- steps and evaluation


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device | str = "cpu",
    *,
    classes: list[str],
    channels_last: bool = True,
    amp_dtype: torch.dtype | None = None,
    pipeline: InputPipeline | None = None,
) -> dict[str, float]:
    """Loss, accuracy and macro-F1 (over the classes with support) of ``model`` on ``loader``;
    logits are restricted to ``classes`` (:func:`fercore.core.labels.restrict_logits`) before loss and argmax.
    ``pipeline``: the :class:`~fercore.data.InputPipeline` that made the loader's batches (None:
    batches are ready float tensors, which :meth:`~fercore.data.InputPipeline.prepare` only moves)."""
    from sklearn.metrics import f1_score

    device = torch.device(device)
    pipeline = pipeline or InputPipeline()
    cols = torch.tensor(class_indices(classes), device=device)
    position = {int(c): i for i, c in enumerate(cols.tolist())}
    was_training = model.training
    model.eval()
    total_loss, truth, preds = 0.0, [], []
    for x, y in loader:
        x = pipeline.prepare(x, device, channels_last=channels_last)
        target = torch.tensor([position[int(v)] for v in y], device=device)
        with torch.autocast(device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
            logits = labels.restrict_logits(model(x), classes).float()
        total_loss += nn.functional.cross_entropy(logits, target, reduction="sum").item()
        truth.append(y.numpy())
        preds.append(cols[logits.argmax(1)].cpu().numpy())
    if was_training:
        train_mode(model)
    truth_all, pred_all = np.concatenate(truth), np.concatenate(preds)
    return {
        "loss": total_loss / max(len(truth_all), 1),
        "accuracy": float((truth_all == pred_all).mean()) if len(truth_all) else float("nan"),
        "macro_f1": float(f1_score(truth_all, pred_all, labels=sorted(set(truth_all)), average="macro", zero_division=0)),
    }


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
    :class:`TrainingDivergedError` before any weight changes. ``scaler`` (fp16 only, not
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
    optimizer.zero_grad(set_to_none=True)
    if isinstance(optimizer, SAM):
        loss.backward()
        optimizer.first_step(zero_grad=True)
        with _FrozenBatchNormStats(net):
            forward_loss()[0].backward()
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
        if grad_clip:
            nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
    return loss.detach(), logits.detach()


def _make_optimizer(config: TrainConfig, params: list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
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


def _make_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer, stage: Stage,
                    steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
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


# --------------------------------------------------------------------------- the run


@dataclass
class TrainResult:
    """What ``train`` returns (rank 0; other ranks get the same numbers without files)."""

    run_dir: Path | None
    best_epoch: int
    best: dict[str, float]
    history: list[dict[str, Any]]
    test: dict[str, float] | None = None
    seconds: float = 0.0
    config: TrainConfig | None = None


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def train(
    config: TrainConfig | None = None,
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    samples: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None] | None = None,
    stop_after_epochs: int | None = None,
) -> TrainResult:
    """Run (or resume) a training run; see the module docstring. A run that fails before its first
    epoch is saved leaves no run folder behind (an ``out`` folder that existed is emptied, not removed).

    ``samples`` = (train, val, test) tables overrides reading ``config.data_root`` (used by
    cross-validation and gender splits). A val table that is None or empty means no model
    selection: every epoch trains, none is validated, and the final epoch's weights are kept
    (``metrics.json``: ``"selection": "none"``). ``stop_after_epochs`` ends the call early, as an
    interruption would (the run stays resumable).
    """
    made: list[tuple[Path, bool]] = []
    try:
        return _train(config, out, resume, samples, stop_after_epochs, made)
    except BaseException:
        for run_dir, existed in made:
            if not (run_dir / "last.pt").exists():
                shutil.rmtree(run_dir, ignore_errors=True)
                if existed:
                    run_dir.mkdir(exist_ok=True)
                elif out is None:  # results/<experiment>/ made for it: removed when left empty
                    with contextlib.suppress(OSError):
                        run_dir.parent.rmdir()
                        run_dir.parent.parent.rmdir()
        raise


def drop_unreadable(samples: pd.DataFrame | None, name: str, workers: int = 1) -> pd.DataFrame | None:
    """``samples`` without the images that cannot be decoded, with a warning that counts and lists them."""
    if samples is None or samples.empty:
        return samples
    bad = pixel_hashes(samples["path"].tolist(), workers=workers) == ""
    if bad.any():
        listed = samples["path"][bad].astype(str).tolist()
        log.warning("%s: skipped %d unreadable or truncated image(s): %s%s", name, len(listed), ", ".join(listed[:10]),
                    " ..." if len(listed) > 10 else "")
    return samples[~bad].reset_index(drop=True)


def warn_meaningless(train_samples: pd.DataFrame, val_samples: pd.DataFrame, class_names: list[str]) -> None:
    """Warnings for data whose scores cannot mean much: one class, or a split missing classes."""
    present = {name: sorted({CLASSES[int(i)] for i in part["label"]}) for name, part in
               (("training data", train_samples), ("selection split", val_samples))}
    if len(present["training data"]) < 2:
        log.warning("the training data has only one class (%s): accuracy and F1 of this run cannot mean anything; "
                    "give a dataset with several emotion folders", ", ".join(present["training data"]) or "none")
    for name, found in present.items():
        missing = [c for c in class_names if c not in found]
        if missing and len(present["training data"]) >= 2 and found:  # an empty selection split: no selection, said elsewhere
            log.warning("the %s has no images of %s: its scores leave those classes out", name, ", ".join(missing))


def _train(config: TrainConfig | None, out: str | Path | None, resume: str | Path | None,
           samples: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None] | None, stop_after_epochs: int | None,
           made: list[tuple[Path, bool]]) -> TrainResult:
    """:func:`train`; every run folder it creates is added to ``made``."""
    start_time = time.perf_counter()
    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / "last.pt").is_file():
            raise FileNotFoundError(f"{run_dir} has no last.pt to resume from (was any epoch completed?)")
        saved = yaml.safe_load((run_dir / "config.yaml").read_text())
        config = TrainConfig.from_dict(saved)
        state = torch.load(run_dir / "last.pt", map_location="cpu", weights_only=True)
    elif config is None:
        raise ValueError("pass a TrainConfig or resume=<run folder>")
    else:
        state = None
        if out is not None:
            check_output(out, folder=True)
    ddp = init_distributed(config.device)
    device = torch.device(f"cuda:{ddp.local_rank}") if ddp.active and pick_device(config.device).type == "cuda" else pick_device(config.device)
    amp_dtype = _amp_dtype(config, device)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    seed_everything(config.seed + ddp.rank)

    if samples is not None:
        train_samples, val_samples, test_samples = samples
        if val_samples is None:
            val_samples = train_samples.iloc[:0]
        available = dataset_classes(pd.concat([t for t in samples if t is not None]))
        hygiene: dict[str, Any] = {"policy": "samples given by the caller"}
        if not config.keep_duplicates:  # one pass over both parts: a face relabelled across train and val goes too
            both = pd.concat([train_samples.assign(_part="train"), val_samples.assign(_part="val")], ignore_index=True)
            kept, dropped = drop_conflicting(both, workers=max(1, config.workers))
            kept = kept.drop(columns="content_group")
            train_samples, val_samples = (kept[kept["_part"] == part].drop(columns="_part").reset_index(drop=True)
                                          for part in ("train", "val"))
            hygiene["conflicting_dropped"] = len(dropped)
    else:
        train_samples, val_samples, test_samples, hygiene = load_split_samples(config)
        available = dataset_classes(config.data_root)
    class_names = labels.class_set(config.classes, available=available)
    classes = class_indices(class_names)
    train_samples, val_samples, test_samples = (None if t is None else within_classes(t, class_names)
                                                for t in (train_samples, val_samples, test_samples))
    train_samples, val_samples, test_samples = (drop_unreadable(t, name, max(1, config.workers)) for t, name in
                                                ((train_samples, "training data"), (val_samples, "selection split"),
                                                 (test_samples, "test split")))
    if train_samples.empty:
        raise ValueError(f"no readable training images are left in the classes {', '.join(class_names)}; "
                         "check the data with `fercore check-data`")
    warn_meaningless(train_samples, val_samples, class_names)
    data_hash = manifest_hash(pd.concat([train_samples, val_samples]), config.data_root or None)
    selecting = len(val_samples) > 0
    if state is not None and state["data_hash"] != data_hash:
        raise ValueError(f"{resume}: the data changed since the run started (the list of images and labels differs from "
                         "the one the run was trained on); start a new run (fercore train --config ... ) instead of --resume")

    run_dir = None
    if ddp.main:
        if resume is not None:
            run_dir = Path(resume)
        elif out is not None:
            run_dir = Path(out)
            if run_dir.exists() and any(run_dir.iterdir()):
                raise FileExistsError(f"{run_dir} exists and is not empty; choose another --out or --resume it")
            made.append((run_dir, run_dir.exists()))
            run_dir.mkdir(parents=True, exist_ok=True)
        else:
            run_dir = new_run_dir(Path("results") / config.experiment)
            made.append((run_dir, False))
        if state is None:
            with atomic_open(run_dir / "config.yaml", "w") as handle:
                yaml.safe_dump(config.to_dict(), handle, sort_keys=False)
        log.info("run folder %s (%d train / %d val images, classes %s)", run_dir, len(train_samples),
                 len(val_samples), [CLASSES[c] for c in classes])
        if not selecting:
            log.info("no validation images: no model selection; training %d epochs and keeping the final epoch's weights",
                     config.total_epochs)

    train_pipe = InputPipeline(config.preprocess, config.image_size, augment=config.augment)
    eval_pipe = InputPipeline(config.preprocess, config.image_size)
    train_set = FaceDataset(train_samples, train_pipe.item)
    sampler = DistributedSampler(train_set, num_replicas=ddp.world, rank=ddp.rank, shuffle=True, seed=config.seed)
    generator = torch.Generator()
    train_loader = DataLoader(
        train_set, batch_size=config.batch_size, sampler=sampler, num_workers=config.workers,
        pin_memory=device.type == "cuda", generator=generator, drop_last=len(train_set) > config.batch_size * ddp.world,
        persistent_workers=False, collate_fn=train_pipe.collate,
    )
    val_loader = DataLoader(
        FaceDataset(val_samples, eval_pipe.item), batch_size=max(64, config.batch_size), num_workers=config.workers,
        pin_memory=device.type == "cuda", persistent_workers=config.workers > 0, collate_fn=eval_pipe.collate,
    )
    augment_draws = torch.Generator()  # fast + augment: the on-device augmentation's parameters, seeded per epoch

    model = create_model(config.arch, NUM_CLASSES, config.weights, trust_pickle=config.trust_pickle,
                         head=config.head, drop_rate=config.drop_rate)
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    core = model
    weights = class_weights(train_samples["label"].to_numpy(), classes).to(device) if config.class_weights else None
    loss_fn = nn.CrossEntropyLoss(weight=weights, label_smoothing=config.label_smoothing)
    position = torch.full((NUM_CLASSES,), -1, dtype=torch.long)
    position[classes] = torch.arange(len(classes))
    position = position.to(device)

    stages = config.schedule_stages
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"epoch": -1}
    first_epoch = 1
    if state is not None:
        core.load_state_dict(state["model"])
        history, best, first_epoch = state["history"], state["best"], state["epoch"] + 1
    epoch_stage = [i for i, s in enumerate(stages) for _ in range(s.epochs)]
    steps_per_epoch = len(train_loader)
    optimizer = scheduler = None
    active_stage = -1
    net: nn.Module = model

    for epoch in range(first_epoch, config.total_epochs + 1):
        stage_index = epoch_stage[epoch - 1]
        if stage_index != active_stage:  # a new stage: freeze/unfreeze, fresh optimizer + schedule
            stage = stages[stage_index]
            trainable = int(stage.trainable) if str(stage.trainable).isdigit() else stage.trainable
            set_trainable(core, trainable)
            net = nn.parallel.DistributedDataParallel(core, device_ids=[ddp.local_rank] if device.type == "cuda" else None) if ddp.active else core
            optimizer = _make_optimizer(config, [p for p in core.parameters() if p.requires_grad], stage.lr)
            scheduler = _make_scheduler(config, optimizer, stage, steps_per_epoch)
            active_stage = stage_index
            if state is not None and state["stage"] == stage_index:
                optimizer.load_state_dict(state["optimizer"])
                scheduler.load_state_dict(state["scheduler"])
                if scaler is not None and state.get("scaler"):
                    scaler.load_state_dict(state["scaler"])
        if state is not None:
            _set_rng_state(state["rng"][ddp.rank] if ddp.rank < len(state["rng"]) else state["rng"][0])
            state = None
        sampler.set_epoch(epoch)
        generator.manual_seed(config.seed * 1_000_003 + epoch)
        augment_draws.manual_seed((config.seed * 1_000_003 + epoch) * 1_009 + ddp.rank + 1)
        train_mode(net)
        epoch_start = time.perf_counter()
        loss_sum, correct, count = torch.zeros((), device=device), torch.zeros((), device=device), 0
        bar = tqdm(train_loader, desc=f"epoch {epoch}/{config.total_epochs}", leave=False,
                   disable=not (config.progress and ddp.main))
        for step, (x, y) in enumerate(bar):
            x = train_pipe.prepare(x, device, generator=augment_draws, channels_last=config.channels_last)
            y = y.to(device)
            target = position[y]
            try:
                loss, logits = train_step(net, optimizer, loss_fn, x, target, classes=class_names, amp_dtype=amp_dtype,
                                          grad_clip=config.grad_clip, scaler=scaler)
            except TrainingDivergedError as err:
                good = f"{run_dir / 'last.pt'} (epoch {epoch - 1})" if epoch > 1 else "none yet (no epoch completed)"
                raise TrainingDivergedError(
                    f"{err} in epoch {epoch}, step {step + 1}; training stopped. Last good checkpoint: {good}. "
                    "Lower the learning rate, set grad_clip, or check the inputs."
                ) from None
            scheduler.step()
            loss_sum += loss * len(y)
            correct += (logits.argmax(1) == target).sum()
            count += len(y)
            if config.progress and ddp.main and step % 10 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}")
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        train_seconds = time.perf_counter() - epoch_start
        totals = torch.stack([loss_sum, correct.float(), torch.tensor(float(count), device=device)])
        if ddp.active:
            dist.all_reduce(totals)
        row: dict[str, Any] = {
            "epoch": epoch,
            "stage": stage_index,
            "train_loss": float(totals[0] / totals[2]),
            "train_accuracy": float(totals[1] / totals[2]),
        }
        if ddp.main:
            val = evaluate(core, val_loader, device, classes=class_names, channels_last=config.channels_last,
                           amp_dtype=amp_dtype, pipeline=eval_pipe) if selecting else {}
            row.update({f"val_{k}": v for k, v in val.items()})
            row.update({"lr": optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - epoch_start,
                        "train_seconds": train_seconds, "train_img_per_s": count * ddp.world / train_seconds})
            if device.type == "cuda":
                row["gpu_peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
            history.append(row)
            scored = f"val loss {val['loss']:.3f} acc {val['accuracy']:.3f} F1 {val['macro_f1']:.3f}" if selecting else "no validation"
            log.info("epoch %d/%d: train loss %.3f acc %.3f | %s | %.1f s", epoch, config.total_epochs, row["train_loss"],
                     row["train_accuracy"], scored, row["seconds"])
            if not selecting or best["epoch"] < 0 or val[config.select_metric] > best[config.select_metric]:
                best = {"epoch": epoch, **val}  # without selection: the latest epoch
                save_torch(run_dir / "checkpoint.pt", checkpoint_payload(
                    core, arch=resolve_arch(config.arch), image_size=config.image_size, trained_classes=[CLASSES[c] for c in classes],
                    config=config.to_dict(), best_epoch=best["epoch"], val={k: v for k, v in best.items() if k != "epoch"},
                    data_manifest_sha256=data_hash))
            write_csv(run_dir / "log.csv", pd.DataFrame(history))
            save_torch(run_dir / "last.pt", {
                "model": {k: v.detach().cpu() for k, v in core.state_dict().items()},
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "epoch": epoch, "stage": stage_index, "history": history, "best": best,
                "rng": _gather_rng(ddp), "data_hash": data_hash,
                "scaler": scaler.state_dict() if scaler is not None else None,
            })
        elif ddp.active:
            _gather_rng(ddp)
        if ddp.active:
            dist.barrier()
        if stop_after_epochs is not None and epoch - first_epoch + 1 >= stop_after_epochs and epoch < config.total_epochs:
            log.info("stopping after epoch %d as asked; resume with train(resume=%s)", epoch, run_dir)
            return TrainResult(run_dir, best["epoch"], best, history, seconds=time.perf_counter() - start_time, config=config)

    result = TrainResult(run_dir, best["epoch"], best, history, seconds=time.perf_counter() - start_time, config=config)
    if ddp.main:
        result.test = _final_metrics(run_dir, core, config, class_names, test_samples, device, amp_dtype, result, hygiene)
    if ddp.active:
        dist.barrier()
    return result


def _gather_rng(ddp: Dist) -> list[dict[str, Any]]:
    """Every rank's RNG state (rank 0 keeps the list)."""
    mine = _rng_state()
    if not ddp.active:
        return [mine]
    states: list[Any] = [None] * ddp.world
    dist.all_gather_object(states, mine)
    return states


def _final_metrics(run_dir, core, config, classes, test_samples, device, amp_dtype, result, hygiene) -> dict[str, float] | None:
    """Reload the selected epoch's weights, score the test split if any (on the run's class set),
    write metrics.json."""
    payload = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    core.load_state_dict(payload["state_dict"])
    test = None
    if test_samples is not None:
        pipe = InputPipeline(config.preprocess, config.image_size)
        loader = DataLoader(FaceDataset(test_samples, pipe.item), batch_size=max(64, config.batch_size),
                            num_workers=config.workers, collate_fn=pipe.collate)
        test = evaluate(core, loader, device, classes=classes, channels_last=config.channels_last, amp_dtype=amp_dtype,
                        pipeline=pipe)
    val = {k: v for k, v in result.best.items() if k != "epoch"}
    write_json(run_dir / "metrics.json", {
        "best_epoch": result.best_epoch,
        "selection": f"best validation {config.select_metric}" if val else "none (no validation images: final epoch kept)",
        "val": val or None,
        "test": test,
        "trained_classes": list(classes),
        "test_split": config.test_split,
        "n_test": None if test_samples is None else len(test_samples),
        "duplicates": hygiene,
        "epochs": len(result.history),
        "seconds_total": sum(r["seconds"] for r in result.history),
        "seconds_per_epoch": float(np.mean([r["seconds"] for r in result.history])) if result.history else None,
    })
    return test
