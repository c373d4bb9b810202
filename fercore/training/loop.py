"""Training and fine-tuning: SAM (or Adam/AdamW), staged unfreezing, resumable runs, DDP.

``train(config)`` reads the data, builds the model, runs the stages (e.g. head only at
lr 1e-3, then everything at lr 1e-4), validates after every epoch, keeps the best
validation epoch as ``checkpoint.pt`` and writes ``config.yaml``, ``log.csv``,
``metrics.json`` into a run folder that never replaces an earlier run. ``last.pt`` holds
the full training state after every epoch, so ``train(resume=run_dir)`` continues an
interrupted run and ends with the same weights as an uninterrupted one (same seed, CPU).
Under ``torchrun --nproc_per_node N`` it trains with DistributedDataParallel.

Model selection uses the validation split only; a ``test_split`` is scored once, at the end,
with the selected model. Data hygiene: :mod:`fercore.training.hygiene`.

A run is read as four steps: set-up (:func:`_set_up`: data, run folder, loaders, model), one
epoch (:func:`_run_epoch`: a new stage's optimiser, the training batches), selection and
checkpointing (:func:`_select_and_save`), and the final test (:func:`_final_metrics`).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
import yaml
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from fercore.core.files import atomic_open, check_output, new_run_dir, save_torch, write_csv, write_json
from fercore.core.labels import CLASSES, NUM_CLASSES
from fercore.core.progress import progress_bar as tqdm  # a bar in a terminal, log lines in a log file
from fercore.core.runtime import Dist, init_distributed, pick_device, seed_everything
from fercore.data import FaceDataset, InputPipeline, seen_record
from fercore.models import checkpoint_payload, create_model, resolve_arch, set_trainable, train_mode
from fercore.training.config import Stage, TrainConfig
from fercore.training.finite import last_good, nonfinite_reason, probe_batch
from fercore.training.hygiene import Samples, TrainData, training_data
from fercore.training.resume import gather_rng, read_resume, set_rng_state
from fercore.training.step import (
    TrainingDivergedError,
    autocast_dtype,
    class_weights,
    label_positions,
    make_optimizer,
    make_scheduler,
    train_step,
)
from fercore.training.validation import evaluate

log = logging.getLogger(__name__)


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


@dataclass
class _Run:
    """One run while it trains: settings, data, loaders, model, the stage's optimiser and the selection so far."""

    config: TrainConfig
    ddp: Dist
    device: torch.device
    amp_dtype: torch.dtype | None
    scaler: torch.amp.GradScaler | None
    data: TrainData
    run_dir: Path | None
    train_pipe: InputPipeline
    eval_pipe: InputPipeline
    sampler: DistributedSampler
    generator: torch.Generator  # the loader's shuffling / worker seeds, seeded per epoch
    augment_draws: torch.Generator  # fast + augment: the on-device augmentation's parameters, seeded per epoch
    train_loader: DataLoader
    val_loader: DataLoader
    model: nn.Module  # the network itself (``net`` is its DDP wrapper under torchrun)
    loss_fn: nn.Module
    position: torch.Tensor  # canonical label -> column of the restricted logits
    state: dict[str, Any] | None = None  # last.pt of a resumed run, until its first epoch starts
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"epoch": -1})
    first_epoch: int = 1
    net: nn.Module | None = None
    optimizer: torch.optim.Optimizer | None = None
    scheduler: torch.optim.lr_scheduler.LambdaLR | None = None
    active_stage: int = -1
    good_epoch: int = 0  # the last epoch saved with finite weights and probe logits (0: none)
    probe: tuple[torch.Tensor, ...] | None = None  # a fixed batch of training images: its logits must stay finite

    @property
    def epoch_stage(self) -> list[int]:
        """The stage index of every epoch (1-based epoch e at position e - 1)."""
        return [i for i, s in enumerate(self.config.schedule_stages) for _ in range(s.epochs)]

    def result(self, start_time: float) -> TrainResult:
        return TrainResult(self.run_dir, self.best["epoch"], self.best, self.history,
                           seconds=time.perf_counter() - start_time, config=self.config)


def train(
    config: TrainConfig | None = None,
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    samples: Samples | None = None,
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


def _train(config: TrainConfig | None, out: str | Path | None, resume: str | Path | None, samples: Samples | None,
           stop_after_epochs: int | None, made: list[tuple[Path, bool]]) -> TrainResult:
    """:func:`train`; every run folder it creates is added to ``made``."""
    start_time = time.perf_counter()
    if resume is not None:
        config, state = read_resume(Path(resume))
    elif config is None:
        raise ValueError("pass a TrainConfig or resume=<run folder>")
    else:
        state = None
        if out is not None:
            check_output(out, folder=True)
    run = _set_up(config, state, out, resume, samples, made)
    for epoch in range(run.first_epoch, config.total_epochs + 1):
        _run_epoch(run, epoch)
        if stop_after_epochs is not None and epoch - run.first_epoch + 1 >= stop_after_epochs and epoch < config.total_epochs:
            log.info("stopping after epoch %d as asked; resume with train(resume=%s)", epoch, run.run_dir)
            return run.result(start_time)
    result = run.result(start_time)
    if run.ddp.main:
        result.test = _final_metrics(run, result)
    if run.ddp.active:
        dist.barrier()
    return result


# --------------------------------------------------------------------------- set-up


def _set_up(config: TrainConfig, state: dict[str, Any] | None, out: str | Path | None, resume: str | Path | None,
            samples: Samples | None, made: list[tuple[Path, bool]]) -> _Run:
    """Process group, device and precision, seeds, data, run folder, loaders and model (in that
    order: the model's initial weights follow the seed), and a resumed run's saved progress."""
    ddp = init_distributed(config.device)
    device = torch.device(f"cuda:{ddp.local_rank}") if ddp.active and pick_device(config.device).type == "cuda" else pick_device(config.device)
    amp_dtype = autocast_dtype(config, device)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    seed_everything(config.seed + ddp.rank)
    data = training_data(config, samples)
    if state is not None and state["data_hash"] != data.data_hash:
        raise ValueError(f"{resume}: the data changed since the run started (the list of images and labels differs from "
                         "the one the run was trained on); start a new run (fercore train --config ... ) instead of --resume")
    run_dir = _run_folder(config, data, out, resume, made, fresh=state is None) if ddp.main else None
    train_pipe = InputPipeline(config.preprocess, config.image_size, augment=config.augment)
    eval_pipe = InputPipeline(config.preprocess, config.image_size)
    train_set = FaceDataset(data.train, train_pipe.item)
    sampler = DistributedSampler(train_set, num_replicas=ddp.world, rank=ddp.rank, shuffle=True, seed=config.seed)
    generator = torch.Generator()
    train_loader = DataLoader(
        train_set, batch_size=config.batch_size, sampler=sampler, num_workers=config.workers,
        pin_memory=device.type == "cuda", generator=generator, drop_last=len(train_set) > config.batch_size * ddp.world,
        persistent_workers=False, collate_fn=train_pipe.collate,
    )
    val_loader = DataLoader(
        FaceDataset(data.val, eval_pipe.item), batch_size=max(64, config.batch_size), num_workers=config.workers,
        pin_memory=device.type == "cuda", persistent_workers=config.workers > 0, collate_fn=eval_pipe.collate,
    )
    augment_draws = torch.Generator()
    model, loss_fn = _build_model(config, data, device)
    run = _Run(config, ddp, device, amp_dtype, scaler, data, run_dir, train_pipe, eval_pipe, sampler, generator,
               augment_draws, train_loader, val_loader, model, loss_fn, label_positions(data.class_names, device), state=state, net=model)
    if state is not None:
        model.load_state_dict(state["model"])
        run.history, run.best, run.first_epoch = state["history"], state["best"], state["epoch"] + 1
        run.good_epoch = state["epoch"]
    return run


def _run_folder(config: TrainConfig, data: TrainData, out: str | Path | None, resume: str | Path | None,
                made: list[tuple[Path, bool]], *, fresh: bool) -> Path:
    """The run folder (rank 0): the resumed one, ``out`` (new or empty) or a new one under
    ``results/<experiment>/``; a fresh run writes its ``config.yaml`` there."""
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
    if fresh:
        with atomic_open(run_dir / "config.yaml", "w") as handle:
            yaml.safe_dump(config.to_dict(), handle, sort_keys=False)
    log.info("run folder %s (%d train / %d val images, classes %s)", run_dir, len(data.train),
             len(data.val), [CLASSES[c] for c in data.classes])
    if not data.selecting:
        log.info("no validation images: no model selection; training %d epochs and keeping the final epoch's weights",
                 config.total_epochs)
    return run_dir


def _build_model(config: TrainConfig, data: TrainData, device: torch.device) -> tuple[nn.Module, nn.Module]:
    """The network (8 outputs, on ``device``) and the (class-weighted, label-smoothed) loss."""
    model = create_model(config.arch, NUM_CLASSES, config.weights, trust_pickle=config.trust_pickle,
                         head=config.head, drop_rate=config.drop_rate)
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    weights = class_weights(data.train["label"].to_numpy(), data.classes).to(device) if config.class_weights else None
    return model, nn.CrossEntropyLoss(weight=weights, label_smoothing=config.label_smoothing)


# --------------------------------------------------------------------------- one epoch


def _run_epoch(run: _Run, epoch: int) -> None:
    """Train one epoch (a new stage first, when it starts one), then validate and save on rank 0."""
    stage_index = run.epoch_stage[epoch - 1]
    if stage_index != run.active_stage:
        _begin_stage(run, stage_index)
    if run.state is not None:
        ddp, rng = run.ddp, run.state["rng"]
        set_rng_state(rng[ddp.rank] if ddp.rank < len(rng) else rng[0])
        run.state = None
    row, seconds = _train_epoch(run, epoch, stage_index)
    if run.ddp.main:
        _select_and_save(run, epoch, stage_index, row, seconds)
    elif run.ddp.active:
        gather_rng(run.ddp)
    if run.ddp.active:
        dist.barrier()


def _begin_stage(run: _Run, stage_index: int) -> None:
    """A new stage: freeze / unfreeze, a fresh optimiser and schedule (a resumed run's, when it stopped in this stage)."""
    stage: Stage = run.config.schedule_stages[stage_index]
    trainable = int(stage.trainable) if str(stage.trainable).isdigit() else stage.trainable
    set_trainable(run.model, trainable)
    device = run.device
    run.net = (nn.parallel.DistributedDataParallel(run.model, device_ids=[run.ddp.local_rank] if device.type == "cuda" else None)
               if run.ddp.active else run.model)
    run.optimizer = make_optimizer(run.config, [p for p in run.model.parameters() if p.requires_grad], stage.lr)
    run.scheduler = make_scheduler(run.config, run.optimizer, stage, len(run.train_loader))
    run.active_stage = stage_index
    state = run.state
    if state is not None and state["stage"] == stage_index:
        run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
        if run.scaler is not None and state.get("scaler"):
            run.scaler.load_state_dict(state["scaler"])


def _train_epoch(run: _Run, epoch: int, stage_index: int) -> tuple[dict[str, Any], dict[str, float]]:
    """One pass over the training batches: the log row's training part (summed over the ranks)
    and the epoch's timings (start, training seconds, images on this rank)."""
    config = run.config
    run.sampler.set_epoch(epoch)
    run.generator.manual_seed(config.seed * 1_000_003 + epoch)
    run.augment_draws.manual_seed((config.seed * 1_000_003 + epoch) * 1_009 + run.ddp.rank + 1)
    train_mode(run.net)
    epoch_start = time.perf_counter()
    loss_sum, correct, count = _train_batches(run, epoch)
    if run.device.type == "cuda":
        torch.cuda.synchronize(run.device)
    train_seconds = time.perf_counter() - epoch_start
    totals = torch.stack([loss_sum, correct.float(), torch.tensor(float(count), device=run.device)])
    if run.ddp.active:
        dist.all_reduce(totals)
    row: dict[str, Any] = {
        "epoch": epoch,
        "stage": stage_index,
        "train_loss": float(totals[0] / totals[2]),
        "train_accuracy": float(totals[1] / totals[2]),
    }
    return row, {"start": epoch_start, "train": train_seconds, "count": count}


def _train_batches(run: _Run, epoch: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The training steps of one epoch: (summed loss, correct predictions, images) on this rank.
    A diverged loss stops the run, naming the last good checkpoint."""
    config, device = run.config, run.device
    loss_sum, correct, count = torch.zeros((), device=device), torch.zeros((), device=device), 0
    bar = tqdm(run.train_loader, desc=f"epoch {epoch}/{config.total_epochs}", leave=False,
               disable=not (config.progress and run.ddp.main))
    for step, (x, y) in enumerate(bar):
        x = run.train_pipe.prepare(x, device, generator=run.augment_draws, channels_last=config.channels_last)
        y = y.to(device)
        target = run.position[y]
        try:
            loss, logits = train_step(run.net, run.optimizer, run.loss_fn, x, target, classes=run.data.class_names,
                                      amp_dtype=run.amp_dtype, grad_clip=config.grad_clip, scaler=run.scaler)
        except TrainingDivergedError as err:
            raise _diverged(run, f"{err} in epoch {epoch}, step {step + 1}") from None
        run.scheduler.step()
        loss_sum += loss * len(y)
        correct += (logits.argmax(1) == target).sum()
        count += len(y)
        if config.progress and run.ddp.main and step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    return loss_sum, correct, count


# --------------------------------------------------------------------------- selection and checkpoints


def _select_and_save(run: _Run, epoch: int, stage_index: int, row: dict[str, Any], seconds: dict[str, float]) -> None:
    """Rank 0 after an epoch: validate, log, keep ``checkpoint.pt`` when the epoch is the best so
    far (every epoch without selection), write ``log.csv`` and the resumable ``last.pt``."""
    config, device = run.config, run.device
    _check_finite(run, epoch)
    val = _score(run, run.val_loader, run.eval_pipe) if run.data.selecting else {}
    if val and not np.isfinite(val["loss"]):
        raise _diverged(run, f"the validation loss became {val['loss']} after epoch {epoch}")
    row.update({f"val_{k}": v for k, v in val.items()})
    row.update({"lr": run.optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - seconds["start"],
                "train_seconds": seconds["train"], "train_img_per_s": seconds["count"] * run.ddp.world / seconds["train"]})
    if device.type == "cuda":
        row["gpu_peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    run.history.append(row)
    scored = (f"val loss {val['loss']:.3f} acc {val['accuracy']:.3f} F1 {val['macro_f1']:.3f}" if run.data.selecting
              else "no validation")
    log.info("epoch %d/%d: train loss %.3f acc %.3f | %s | %.1f s", epoch, config.total_epochs, row["train_loss"],
             row["train_accuracy"], scored, row["seconds"])
    if not run.data.selecting or run.best["epoch"] < 0 or val[config.select_metric] > run.best[config.select_metric]:
        run.best = {"epoch": epoch, **val}  # without selection: the latest epoch
        _save_checkpoint(run)
    write_csv(run.run_dir / "log.csv", pd.DataFrame(run.history))
    save_torch(run.run_dir / "last.pt", {
        "model": {k: v.detach().cpu() for k, v in run.model.state_dict().items()},
        "optimizer": run.optimizer.state_dict(), "scheduler": run.scheduler.state_dict(),
        "epoch": epoch, "stage": stage_index, "history": run.history, "best": run.best,
        "rng": gather_rng(run.ddp), "data_hash": run.data.data_hash,
        "scaler": run.scaler.state_dict() if run.scaler is not None else None,
    })
    run.good_epoch = epoch


def _check_finite(run: _Run, epoch: int) -> None:
    """Stop before saving an epoch whose weights or buffers (or, without validation, probe-batch logits) are not finite."""
    if run.probe is None and not run.data.selecting:  # with validation, the validation logits are checked
        run.probe = probe_batch(run.data.train, run.eval_pipe)
    reason = nonfinite_reason(run.model, run.probe, run.eval_pipe, run.device, channels_last=run.config.channels_last)
    if reason is not None:
        raise _diverged(run, f"{reason} after epoch {epoch}")


def _diverged(run: _Run, what: str) -> TrainingDivergedError:
    """The error that stops a diverged run, naming the last checkpoint that passed the finiteness check."""
    return TrainingDivergedError(f"{what}; training stopped. {last_good(run.run_dir, run.good_epoch, run.best['epoch'])} "
                                 "Lower the learning rate (lr, stages[].lr), set grad_clip, or check the inputs.")


def _score(run: _Run, loader: DataLoader, pipeline: InputPipeline) -> dict[str, float]:
    """Loss, accuracy and macro-F1 of the model (not its DDP wrapper) on ``loader``, at the run's precision."""
    return evaluate(run.model, loader, run.device, classes=run.data.class_names, channels_last=run.config.channels_last,
                    amp_dtype=run.amp_dtype, pipeline=pipeline)


def _save_checkpoint(run: _Run) -> None:
    """``checkpoint.pt``: the selected epoch's weights with what they were trained on and how they scored."""
    config, best = run.config, run.best
    save_torch(run.run_dir / "checkpoint.pt", checkpoint_payload(
        run.model, arch=resolve_arch(config.arch), image_size=config.image_size,
        trained_classes=[CLASSES[c] for c in run.data.classes], config=config.to_dict(), best_epoch=best["epoch"],
        val={k: v for k, v in best.items() if k != "epoch"}, data_manifest_sha256=run.data.data_hash,
        class_counts=training_counts(run.data.train), **seen_metadata(config.weights, run.data.train, run.data.val)))


def training_counts(train: pd.DataFrame) -> dict[str, int]:
    """Training faces per class name (the training prior that prior-adjusted accuracy moves)."""
    counts = train["label"].astype(int).value_counts()
    return {CLASSES[int(c)]: int(n) for c, n in sorted(counts.items())}


def seen_metadata(weights: str | None, train: pd.DataFrame, val: pd.DataFrame) -> dict[str, Any]:
    """``seen`` (the data-set splits trained and selected on, with those the starting weights had seen) and
    ``seen_complete`` (False when the starting weights do not record theirs: a foreign file is declared in the
    parameter file instead, :mod:`fercore.data.seen`)."""
    inherited, complete = [], True
    if weights:
        try:
            payload = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception:  # a pickled foreign model (HSEmotion) or an unreadable file: what it saw is not recorded
            payload = None
        complete = isinstance(payload, dict) and isinstance(payload.get("seen"), list) and bool(payload.get("seen_complete", True))
        inherited = payload["seen"] if complete else []
    return {"seen": seen_record(train, val, inherited), "seen_complete": complete}


# --------------------------------------------------------------------------- the final test


def _final_metrics(run: _Run, result: TrainResult) -> dict[str, float] | None:
    """Reload the selected epoch's weights, score the test split if any (on the run's class set),
    write metrics.json."""
    config, test_samples = run.config, run.data.test
    payload = torch.load(run.run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    run.model.load_state_dict(payload["state_dict"])
    test = None
    if test_samples is not None:
        pipe = InputPipeline(config.preprocess, config.image_size)
        loader = DataLoader(FaceDataset(test_samples, pipe.item), batch_size=max(64, config.batch_size),
                            num_workers=config.workers, collate_fn=pipe.collate)
        test = _score(run, loader, pipe)
    val = {k: v for k, v in result.best.items() if k != "epoch"}
    write_json(run.run_dir / "metrics.json", {
        "best_epoch": result.best_epoch,
        "selection": f"best validation {config.select_metric}" if val else "none (no validation images: final epoch kept)",
        "val": val or None,
        "test": test,
        "trained_classes": list(run.data.class_names),
        "test_split": config.test_split,
        "n_test": None if test_samples is None else len(test_samples),
        "duplicates": run.data.hygiene,
        "epochs": len(result.history),
        "seconds_total": sum(r["seconds"] for r in result.history),
        "seconds_per_epoch": float(np.mean([r["seconds"] for r in result.history])) if result.history else None,
    })
    return test
