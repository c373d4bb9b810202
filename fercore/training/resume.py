"""What makes a run resumable: ``last.pt`` (weights, optimiser, schedule, history, every rank's RNG
state, the data digest) written after every epoch, and reading it back."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import yaml

from fercore.core.runtime import Dist
from fercore.training.config import TrainConfig


def rng_state() -> dict[str, Any]:
    """This process's torch (CPU and CUDA), numpy and Python RNG states, as tensors and plain values."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def gather_rng(ddp: Dist) -> list[dict[str, Any]]:
    """Every rank's RNG state (rank 0 keeps the list)."""
    mine = rng_state()
    if not ddp.active:
        return [mine]
    states: list[Any] = [None] * ddp.world
    dist.all_gather_object(states, mine)
    return states


def read_resume(run_dir: Path) -> tuple[TrainConfig, dict[str, Any]]:
    """The config and ``last.pt`` state of an interrupted run."""
    if not (run_dir / "last.pt").is_file():
        raise FileNotFoundError(f"{run_dir} has no last.pt to resume from (was any epoch completed?)")
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    config = TrainConfig.from_dict(saved)
    try:
        state = torch.load(run_dir / "last.pt", map_location="cpu", weights_only=True)
        missing = {"model", "optimizer", "scheduler", "epoch", "history", "best", "rng", "data_hash"} - set(state)
    except Exception as err:  # a cut-off zip, a pickle error ...: the file is damaged
        raise ValueError(f"{run_dir / 'last.pt'} cannot be read ({type(err).__name__}: {str(err).splitlines()[0]}): the "
                         "file is damaged (cut off while it was written or copied?), so the run cannot be resumed from it; "
                         "start a new run (fercore train --config ...); the selected epoch's weights are in checkpoint.pt") from None
    if missing:
        raise ValueError(f"{run_dir / 'last.pt'} is not a fercore resumable state (no {', '.join(sorted(missing))}); "
                         "resume only a run folder written by fercore train")
    return config, state
