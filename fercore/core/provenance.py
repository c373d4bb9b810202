"""What a reader needs to trust a number: the code, the packages, the machine, the weights and the
samples behind it.

The suite runner records :func:`environment` when a run starts (``suite.json``); each chapter
records the models it loaded and the sample tables it scored (:func:`model_record`,
:func:`sample_record`) in its ``chapter.json``; the book's run page prints all of it.
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from fercore import __version__
from fercore.core.files import sha256_file, write_csv
from fercore.core.runtime import pick_device

#: Packages whose versions decide the numbers (model code, data loading, statistics) or the book.
KEY_PACKAGES = ("torch", "torchvision", "timm", "numpy", "pandas", "scipy", "scikit-learn", "Pillow",
                "onnxruntime", "facenet-pytorch", "grad-cam", "papermill", "jupyter-book", "myst-nb")


def code_version(source: str | Path | None = None) -> dict[str, Any]:
    """fercore's version and the git commit of the source tree it was imported from (``source``:
    default this package's folder), with a dirty flag (uncommitted changes to tracked files);
    ``commit`` is None and ``git`` says why when it is not a git checkout."""
    folder = Path(source) if source is not None else Path(__file__).resolve().parent
    found: dict[str, Any] = {"fercore": __version__, "commit": None, "dirty": None, "git": "not a git checkout"}

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit:
        status = git("status", "--porcelain", "--untracked-files=no")
        found.update(commit=commit, dirty=bool(status), git="dirty" if status else "clean")
    return found


def package_versions(names: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str]:
    """Installed version of each package (``not installed`` when absent)."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def machine(device: str = "auto") -> dict[str, Any]:
    """The machine: Python, OS, CPU model and cores this process may use, and the accelerator
    ``device`` resolves to (its name for CUDA)."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    chosen = pick_device(device)
    accelerator = torch.cuda.get_device_name(chosen) if chosen.type == "cuda" else chosen.type
    return {"python": platform.python_version(), "os": platform.platform(), "cpu": cpu, "cores": cores,
            "device": str(chosen), "accelerator": accelerator}


def environment(device: str = "auto") -> dict[str, Any]:
    """Code version, key package versions and the machine, in one record."""
    return {"code": code_version(), "packages": package_versions(), "machine": machine(device)}


def model_record(name: str, weights: str | Path, *, arch: str, image_size: int, regime: str | None = None) -> dict[str, Any]:
    """One model as used: name, regime, architecture, input size, weights file and its sha256."""
    weights = Path(weights)
    return {"model": name, "regime": regime, "arch": arch, "image_size": int(image_size), "weights": str(weights),
            "sha256": sha256_file(weights)}


def sample_record(name: str, samples: pd.DataFrame, folder: str | Path) -> dict[str, Any]:
    """Write the sample table a set was scored on (``<folder>/<name>.csv``: path, label and the
    grouping columns) and return its file and sha256, so a reader can check which images a number
    rests on."""
    columns = [c for c in ("path", "label", "source", "dataset", "domain", "gender") if c in samples.columns]
    target = Path(folder) / f"{name}.csv"
    write_csv(target, samples[columns].reset_index(drop=True))
    return {"set": name, "images": int(len(samples)), "file": str(target), "sha256": sha256_file(target)}
