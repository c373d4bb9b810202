"""Small inputs for the input-rule tests (issue 29): folder datasets, suite notebooks and parameter
files, and one command run in-process with its exit code, output and warnings."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import nbformat
from conftest import pattern_image

from fercore import cli

#: Two notebooks and what their parameters cells declare.
NOTEBOOKS = {"01_rq1_first.ipynb": "epochs = 1\nlr = 0.1\nseed = 0\noutput_dir = ''",
             "02_rq2_second.ipynb": "epochs = 1\nmax_per_class = 5\noutput_dir = ''",
             "03_rq3_third.ipynb": "epochs = 1\nmax_per_class = 5\noutput_dir = ''"}
#: A kernel no machine has: a parameter file that passes every input check stops there, before any folder is made.
NO_KERNEL = "no-such-kernel-issue29"
CONFIG = ("experiment: t\ndata_root: d\ntrain_split: train\nval_fraction: 0.2\narch: resnet10t\nimage_size: 32\n"
          "batch_size: 16\nepochs: 1\nlr: 1.0e-3\noptimizer: adamw\nworkers: 0\nprogress: false\nseed: 0\n")


def write_images(folder: Path, n: int, seed: int = 0, suffix: str = ".png") -> list[Path]:
    """``n`` distinct 32 px pattern images in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"{i}{suffix}"
        pattern_image(32, 32, seed=seed * 1000 + i).save(path, format="PNG" if suffix == ".png" else "JPEG")
        paths.append(path)
    return paths


def write_dataset(root: Path, classes: tuple[str, ...] = ("happy", "sad"), per_class: int = 3,
                  splits: tuple[str, ...] = ("train",)) -> Path:
    """root/<split>/<class>/<i>.png."""
    for s, split in enumerate(splits):
        for c, name in enumerate(classes):
            write_images(root / split / name, per_class, seed=100 * s + c)
    return root


def write_notebooks(folder: Path) -> Path:
    """The :data:`NOTEBOOKS`, each a parameters cell and one line."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, parameters in NOTEBOOKS.items():
        cell = nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]})
        notebook = nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_code_cell("print(epochs)")])
        notebook.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
        nbformat.write(notebook, folder / name)
    return folder


def suite_file(folder: Path, body: str) -> Path:
    """p.yaml: the notebooks in ``folder/nb``, results under ``folder/out``, a kernel nobody has, then ``body``."""
    write_notebooks(folder / "nb")
    text = f"notebooks_dir: {folder / 'nb'}\nresults_dir: {folder / 'out'}\nkernel: {NO_KERNEL}\n" + body
    (folder / "p.yaml").write_text(text)
    return folder / "p.yaml"


def run(argv: list[str], cwd: Path, capsys, caplog) -> tuple[int, str]:
    """(exit code, stdout + stderr + warnings) of ``fercore ARGV`` run in-process in ``cwd``."""
    old = Path.cwd()
    os.chdir(cwd)
    caplog.clear()
    capsys.readouterr()
    try:
        with caplog.at_level(logging.INFO):
            code = cli.main(argv)
    except SystemExit as exit_:  # argparse
        code = int(exit_.code or 0)
    finally:
        os.chdir(old)
    out = capsys.readouterr()
    warnings = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    return code, "\n".join((out.out, out.err, warnings))


def train_tiny_model(folder: Path) -> Path:
    """Train a resnet10t one epoch on 32 px images of happy and sad in ``folder``; its checkpoint."""
    from fercore.training import TrainConfig, train

    write_dataset(folder / "d", per_class=6)
    (folder / "cfg.yaml").write_text(CONFIG.replace("data_root: d", f"data_root: {folder / 'd'}"))
    train(TrainConfig.from_yaml(folder / "cfg.yaml"), out=folder / "run")
    return folder / "run" / "checkpoint.pt"
