"""Where and how code runs: the device, seeds, the DistributedDataParallel process group,
DataLoader worker counts, and library logging shown in a notebook."""

from __future__ import annotations

import logging
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then CPU; anything else is taken as a torch device name."""
    if isinstance(device, torch.device):
        return device
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: numpy and ``random`` follow torch's per-worker seed."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def cpu_cores() -> int:
    """Cores this process may use (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_workers() -> int:
    """DataLoader workers for inference: 0 on machines with <= 2 cores (a worker process there
    steals a core from the model: measured 0.90 vs 0.96 of pure forward speed), else up to 4."""
    cores = cpu_cores()
    return 0 if cores <= 2 else min(4, cores - 1)


@dataclass
class Dist:
    """Process-group facts: rank 0 logs and writes files."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def init_distributed(device: str) -> Dist:
    """Join the process group torchrun describes (WORLD_SIZE > 1); gloo on CPU, nccl on CUDA."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        use_cuda = pick_device(device).type == "cuda"
        if use_cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return Dist(rank, world, local_rank)


_HANDLER_NAME = "fercore-notebook"
#: The name of :func:`show_library_logs`'s handler (a chapter's notes replace it).
LIBRARY_LOGS = _HANDLER_NAME


def show_library_logs(level: int = logging.INFO) -> logging.Handler:
    """Show fercore's log records (``INFO`` and up) in a notebook's output, once per kernel.

    A Jupyter kernel has no handler on the root logger, so library ``log.info`` would vanish;
    this adds one stream handler on the ``fercore`` logger (to stdout, which the notebook and
    papermill keep). Calling it again returns the same handler.
    """
    logger = logging.getLogger("fercore")
    for handler in logger.handlers:
        if handler.get_name() == _HANDLER_NAME:
            handler.setLevel(level)
            return handler
    handler = logging.StreamHandler(sys.stdout)
    handler.set_name(_HANDLER_NAME)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    return handler


def cache_dir() -> Path:
    """Where content hashes are cached: ``$FERCORE_CACHE`` or ``~/.cache/fercore``."""
    return Path(os.environ.get("FERCORE_CACHE") or Path.home() / ".cache" / "fercore")
