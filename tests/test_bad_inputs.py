"""The bad-input campaign (issue 16): bad images, folders, grids, weights, configs, parameter
files, interrupted runs and read-only outputs fed to the command line. For each case: the exit
code, the first line of the message (or the warning), and that no earlier file changed (SHA-256
and modification time); a failing command (exit 2) leaves no new file behind either.

Cases run in-process through :func:`fercore.cli.main` on one small workspace (pattern images,
resnet10t at 32 px, one epoch). Read-only folders do not stop root, so those cases run the
command in a subprocess without the capabilities that override folder permissions.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from conftest import REPO, pattern_image
from PIL import Image

from fercore import cli

CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")  # FER2013's folders: no Contempt
CONFIG = {"experiment": "t", "data_root": "d", "train_split": "train", "val_fraction": 0.2, "test_split": "val",
          "arch": "resnet10t", "image_size": 32, "batch_size": 16, "epochs": 1, "lr": 1e-3, "optimizer": "adamw",
          "workers": 0, "progress": False, "seed": 0}
TRAIN = ["train", "--config", "{ws}/cfg.yaml"]  # data_root: the workspace's d/


# --------------------------------------------------------------------------- the workspace


def write_dataset(root: Path, per_class: dict[str, int], seed: int = 0, classes: tuple[str, ...] = CLASSES) -> Path:
    """root/<split>/<class>/*.png, 32 px pattern images with distinct pixels."""
    k = seed * 10_000
    for split, n in per_class.items():
        for name in classes:
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pattern_image(32, 32, seed=k).save(root / split / name / f"{i}.png")
                k += 1
    return root


def write_grids(raw: Path, n: int = 4) -> Path:
    """raw/train/g<i>.png: 2x2 grids of 64 px cells, grids.csv with emotion, gender and layout."""
    (raw / "train").mkdir(parents=True)
    rows = []
    for g in range(n):
        grid = Image.new("RGB", (128, 128))
        for c in range(4):
            grid.paste(pattern_image(64, 64, seed=500 + 4 * g + c), (64 * (c % 2), 64 * (c // 2)))
        grid.save(raw / "train" / f"g{g}.png")
        rows.append({"file": f"g{g}.png", "emotion": ("happy", "sad")[g % 2], "gender": ("women", "men")[g // 2 % 2],
                     "layout": "2x2"})
    pd.DataFrame(rows).to_csv(raw / "train" / "grids.csv", index=False)
    return raw


def write_gender_table(path: Path, root: Path, words: tuple[str, str] = ("women", "men")) -> Path:
    """A sample table over root's images with gender in the user's words, sources and splits."""
    rows = []
    for i, image in enumerate(sorted(root.rglob("*.png"))):
        split = image.parts[-3]  # train / val (the config's test split)
        rows.append({"path": str(image), "emotion": image.parent.name, "gender": words[i % 2], "split": split,
                     "source": f"grid{i // 3}"})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def ws() -> Iterator[Path]:
    """The shared inputs: d/ (7 classes, 6 train + 3 val images each), cfg.yaml, a trained model,
    grids, a gender table."""
    from fercore.training import TrainConfig, train

    root = Path(tempfile.mkdtemp(prefix="fercore-campaign-"))
    old = Path.cwd()
    os.chdir(root)
    try:
        write_dataset(root / "d", {"train": 6, "val": 3})
        (root / "cfg.yaml").write_text(yaml.safe_dump({**CONFIG, "data_root": str(root / "d")}))
        train(TrainConfig.from_yaml(root / "cfg.yaml"), out=root / "model")
        (root / "model" / "last.pt").unlink()
        write_grids(root / "raw")
        write_dataset(root / "g", {"train": 12, "val": 4}, seed=2, classes=("happy", "sad"))
        write_gender_table(root / "samples.csv", root / "g")
        (root / "cases").mkdir()
        yield root
    finally:
        os.chdir(old)
        shutil.rmtree(root, ignore_errors=True)


def snapshot(*roots: Path) -> dict[str, tuple[str, int]]:
    """SHA-256 and mtime of every file under ``roots``."""
    files = {}
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            files[str(path)] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    return files


# --------------------------------------------------------------------------- running a command


def _message_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.startswith(("INFO ", "DEBUG "))]


def run_in_process(argv: list[str], cwd: Path, capsys, caplog) -> tuple[int, str, str]:
    """(exit code, stderr, warnings logged) of ``fercore ARGV`` run in ``cwd``."""
    os.chdir(cwd)
    caplog.clear()
    capsys.readouterr()
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse
        code = int(exit_.code or 0)
    err = capsys.readouterr().err
    warnings = "\n".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    return code, err, warnings


def run_read_only(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    """``fercore ARGV`` in a subprocess that folder permissions bind: as root, without the
    capabilities that override them (util-linux ``setpriv``)."""
    command = [sys.executable, "-m", "fercore.cli", *argv]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv (util-linux): a read-only folder cannot stop root")
        command = [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", "--", *command]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    warnings = "\n".join(line for line in done.stderr.splitlines() if line.startswith("WARNING"))
    return done.returncode, done.stderr, warnings


# --------------------------------------------------------------------------- the cases


@dataclass
class Case:
    """One bad input: how to make it (``setup`` in the case folder), the command (``{ws}`` is the
    workspace), the exit code, and what the first message line (exit 2) or a warning (exit 0) says."""

    id: str
    category: str
    argv: list[str]
    code: int
    expect: str
    setup: Callable[[Path, Path], None] | None = None
    check: Callable[[Path, Path, str], None] | None = None
    changes: tuple[str, ...] = ()  # files (glob patterns in the case folder) the command may change or remove
    read_only: str | None = None  # a folder (in the case folder) made read-only; run as nobody
    unexpected: tuple[str, ...] = field(default_factory=tuple)  # must not appear in the output


def _copy_data(case: Path, ws: Path) -> None:
    shutil.copytree(ws / "d", case / "d")
    (case / "cfg.yaml").write_text(yaml.safe_dump(CONFIG))


def _corrupt_image(case: Path, ws: Path) -> None:
    _copy_data(case, ws)
    (case / "d" / "train" / "happy" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really" * 20)


def _empty_image(case: Path, ws: Path) -> None:
    _copy_data(case, ws)
    (case / "d" / "train" / "sad" / "empty.jpg").write_bytes(b"")


def _one_class(case: Path, ws: Path) -> None:
    write_dataset(case / "d", {"train": 8, "val": 2}, classes=("happy",))
    (case / "cfg.yaml").write_text(yaml.safe_dump(CONFIG))


def _val_missing_class(case: Path, ws: Path) -> None:
    _copy_data(case, ws)
    (case / "cfg.yaml").write_text(yaml.safe_dump({**CONFIG, "val_split": "val", "test_split": None}))
    shutil.rmtree(case / "d" / "val" / "fear")


def _unknown_folder(case: Path, ws: Path) -> None:
    _copy_data(case, ws)
    shutil.copytree(case / "d" / "train" / "happy", case / "d" / "train" / "happyish")


def _same_name_folders(case: Path, ws: Path) -> None:
    write_dataset(case / "a" / "faces", {"train": 1}, classes=("happy",))
    write_dataset(case / "b" / "faces", {"train": 2}, seed=1, classes=("sad",))


def _bad_yaml(case: Path, ws: Path) -> None:
    (case / "bad.yaml").write_text("arch: resnet10t\nepochs: [1, 2\nlr: 0.1\n")


def _seven_class_head(case: Path, ws: Path) -> None:
    import timm

    net = timm.create_model("resnet10t", num_classes=7)
    torch.save(net.state_dict(), case / "seven.pt")


def _pickled(case: Path, ws: Path) -> None:
    torch.save({"model": torch.nn.Linear(2, 2)}, case / "whole.pt")


def _truncated_checkpoint(case: Path, ws: Path) -> None:
    data = (ws / "model" / "checkpoint.pt").read_bytes()
    (case / "cut.pt").write_bytes(data[: len(data) // 2])


def _existing_predictions(case: Path, ws: Path) -> None:
    assert cli.main(["predict", str(ws / "model" / "checkpoint.pt"), str(ws / "d" / "val"), "--out", "p.csv", "-q"]) == 0


def _interrupted_run(case: Path, ws: Path) -> None:
    from fercore.training import TrainConfig, train

    _copy_data(case, ws)
    config = TrainConfig.from_yaml(case / "cfg.yaml", ["epochs=2"])
    train(config, out=case / "run", stop_after_epochs=1)
    shutil.copy(case / "d" / "train" / "happy" / "0.png", case / "d" / "train" / "happy" / "added.png")


def _started_run(case: Path, ws: Path) -> None:
    (case / "run").mkdir()
    (case / "run" / "config.yaml").write_text(yaml.safe_dump(CONFIG))


def _cv_done(case: Path, ws: Path) -> None:
    _ten_per_class(case, ws)
    assert cli.main(["cv", "--config", "cfg.yaml", "--k", "2", "--out", "cv"]) == 0


def _gender_done(case: Path, ws: Path) -> None:
    assert cli.main(["gender-splits", "--config", str(ws / "cfg.yaml"), "--samples", str(ws / "samples.csv"),
                     "--percents", "0", "--out", "gs"]) == 0


def _grids_extracted(case: Path, ws: Path) -> None:
    shutil.copytree(ws / "raw", case / "raw")
    assert cli.main(["extract", "raw", "x", "--layout", "2x2", "--detector", "none", "--workers", "1", "-q",
                     "--min-blur", "0"]) == 0


def _relabelled_grid(case: Path, ws: Path) -> None:
    _grids_extracted(case, ws)
    table = pd.read_csv(case / "raw" / "train" / "grids.csv")
    table.loc[table["file"] == "g0.png", "emotion"] = "angry"
    table.to_csv(case / "raw" / "train" / "grids.csv", index=False)


def _grids_copy(case: Path, ws: Path) -> None:
    shutil.copytree(ws / "raw", case / "raw")


def _grids_without_csv(case: Path, ws: Path) -> None:
    _grids_copy(case, ws)
    (case / "raw" / "train" / "grids.csv").unlink()


def _grids_unknown_emotion(case: Path, ws: Path) -> None:
    _grids_copy(case, ws)
    table = pd.read_csv(case / "raw" / "train" / "grids.csv")
    table.loc[0, "emotion"] = "hapy"
    table.to_csv(case / "raw" / "train" / "grids.csv", index=False)


def _grids_missing_file(case: Path, ws: Path) -> None:
    _grids_copy(case, ws)
    (case / "raw" / "train" / "g3.png").unlink()


def _grid_corrupt(case: Path, ws: Path) -> None:
    _grids_copy(case, ws)
    (case / "raw" / "train" / "g1.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)


def _unknown_gender(case: Path, ws: Path) -> None:
    write_gender_table(case / "samples.csv", ws / "g", words=("female", "x"))


def _ten_per_class(case: Path, ws: Path) -> None:
    write_dataset(case / "d", {"train": 10}, classes=("happy", "sad"))
    (case / "cfg.yaml").write_text(yaml.safe_dump({**CONFIG, "test_split": None}))


def _one_image_class(case: Path, ws: Path) -> None:
    write_dataset(case / "d", {"train": 6}, classes=("sad",))
    write_dataset(case / "d", {"train": 1}, seed=1, classes=("happy",))
    (case / "cfg.yaml").write_text(yaml.safe_dump({**CONFIG, "test_split": None}))


def _three_grids(case: Path, ws: Path) -> None:
    table = pd.read_csv(ws / "samples.csv")
    table["source"] = [f"grid{i % 3}" for i in range(len(table))]
    table.to_csv(case / "three.csv", index=False)


def _suite_params(case: Path, ws: Path, **parameters) -> None:
    (case / "p.yaml").write_text(yaml.safe_dump({"name": "t", "results_dir": str(case / "results"),
                                                 "notebooks_dir": str(REPO / "notebooks"),
                                                 "parameters": parameters}))


def _suite_run_folder(case: Path, ws: Path) -> None:
    from fercore.book.suite import input_fingerprints

    shutil.copytree(ws / "d", case / "d")
    run = case / "run"
    run.mkdir()
    params = {"name": "t", "kernel": "fercore", "notebooks_dir": str(REPO / "notebooks"), "results_dir": str(case),
              "start_timeout": 60, "parameters": {"real_roots": {"mine": str(case / "d")}}, "notebooks": {}}
    (run / "suite.yaml").write_text(yaml.safe_dump(params))
    (run / "suite.json").write_text(json.dumps({"name": "t", "started": "x", "notebooks": {},
                                                "inputs": input_fingerprints(params["parameters"])}))
    (case / "d" / "train" / "happy" / "0.png").unlink()


def _read_only_data(case: Path, ws: Path) -> None:
    (case / "ro").mkdir()


def _no_contempt(case: Path, ws: Path, output: str) -> None:
    preds = pd.read_csv(case / "p.csv")
    assert len(preds) == 21 and "Contempt" not in set(preds["pred"])


def _two_reports(case: Path, ws: Path, output: str) -> None:
    cli.main(["check-data", "b/faces", "--workers", "1", "-q"])
    reports = sorted((case / "results" / "check-data").glob("faces-*.json"))
    assert len(reports) == 2
    assert {json.loads(r.read_text())["root"].split("/")[-2] for r in reports} == {"a", "b"}


def _no_run_folder(case: Path, ws: Path, output: str) -> None:
    assert not (case / "results").exists()


def _says(text: str, output: str) -> None:
    assert text in output, output


def _plain_permissions(case: Path, ws: Path, output: str) -> None:
    mode = (case / "p.csv").stat().st_mode & 0o777
    assert mode == 0o666 & ~0o022, oct(mode)


def _gender_words_work(case: Path, ws: Path, output: str) -> None:
    table = pd.read_csv(case / "gs" / "results.csv")
    # the user's words (women / men) read as the canonical genders; "all" is the full training set (issue 13's second direction)
    assert set(table["base"]) == {"female", "male", "all"} and set(table["test_on"]) == {"female", "male", "all"}


def _stale_faces_gone(case: Path, ws: Path, output: str) -> None:
    assert not list((case / "x" / "train" / "happiness").glob("g0_*.png"))
    assert list((case / "x" / "train" / "happiness").glob("g2_*.png"))  # the other grids' faces stay
    manifest = pd.read_csv(case / "x" / "manifest.csv")
    assert set(manifest.loc[manifest["source"].str.endswith("g0.png"), "emotion"]) == {"Anger"}


M = "{ws}/model/checkpoint.pt"
CASES = [
    # configs
    Case("unknown-key", "configs", TRAIN + ["--set", "learning_rate=1"], 2, "unknown config key 'learning_rate' (did you mean 'lr'?)"),
    Case("not-an-integer", "configs", TRAIN + ["--set", "epochs=six"], 2, "epochs: expected an integer, got 'six'"),
    Case("negative-lr", "configs", TRAIN + ["--set", "lr=-0.01"], 2, "lr=-0.01: must be > 0", check=_no_run_folder),
    Case("empty-data-root", "configs", TRAIN + ["--set", "data_root="], 2, "data_root: expected a string"),
    Case("yaml-syntax", "configs", ["train", "--config", "bad.yaml"], 2, "bad.yaml is not valid YAML", setup=_bad_yaml),
    Case("batch-size-zero", "configs", TRAIN + ["--set", "batch_size=0"], 2, "batch_size=0: must be >= 1"),
    Case("predict-batch-size-zero", "configs", ["predict", M, "{ws}/d/val", "--out", "p.csv", "--batch-size", "0"], 2,
         "--batch-size: 0 is too small"),
    Case("bad-choice", "configs", TRAIN + ["--set", "optimizer=adamx"], 2, "optimizer='adamx': choose one of sam, adam, adamw"),
    Case("stage-not-mapping", "configs", TRAIN + ["--set", "stages=[3]"], 2, "stages[0]: expected a mapping"),
    Case("val-fraction", "configs", TRAIN + ["--set", "val_fraction=1.5"], 2, "val_fraction=1.5: must be < 1"),
    Case("unknown-class", "configs", TRAIN + ["--set", "classes=[Joy2]"], 2, "unknown emotion label 'Joy2'"),
    Case("config-missing", "configs", ["train", "--config", "nope.yaml"], 2, "config file nope.yaml does not exist"),
    Case("cv-default-k-adapts", "configs", ["cv", "--config", "{ws}/cfg.yaml", "--samples", "three.csv", "--out", "cv",
                                            "--set", "val_fraction=0.5"],
         0, "only 3 folds are possible with this data", setup=_three_grids),
    Case("cv-k-too-large", "configs", ["cv", "--config", "{ws}/cfg.yaml", "--samples", "three.csv", "--k", "5", "--out", "cv"],
         2, "5 folds need at least 5 grids and 5 images in some class; these 24 samples have 3 source grids", setup=_three_grids),
    # folders
    Case("predict-empty-folder", "folders", ["predict", M, "empty", "--out", "p.csv"], 2, "no image files in empty",
         setup=lambda c, w: (c / "empty").mkdir()),
    Case("missing-data-root", "folders", TRAIN + ["--data-root", "nowhere"], 2, "nowhere"),
    Case("one-class", "folders", ["train", "--config", "cfg.yaml", "--out", "run"], 0,
         "only one class (Happiness): accuracy and F1 of this run cannot mean anything", setup=_one_class),
    Case("val-missing-class", "folders", ["train", "--config", "cfg.yaml", "--out", "run"], 0,
         "the selection split has no images of Fear", setup=_val_missing_class),
    Case("unknown-emotion-folder", "folders", ["train", "--config", "cfg.yaml"], 2, "folder name 'happyish' is not an emotion fercore knows",
         setup=_unknown_folder),
    Case("check-data-missing", "folders", ["check-data", "nowhere", "-q"], 2, "nowhere"),
    Case("check-data-same-name", "folders", ["check-data", "a/faces", "--workers", "1", "-q"], 0, "", setup=_same_name_folders,
         check=_two_reports),
    Case("cv-ten-per-class", "folders", ["cv", "--config", "cfg.yaml", "--out", "cv"], 0, "", setup=_ten_per_class,
         check=lambda c, w, out: len(pd.read_csv(c / "cv" / "folds.csv")) == 5 or pytest.fail(out)),
    Case("class-with-one-image", "folders", ["train", "--config", "cfg.yaml"], 2,
         "cannot split 7 images of 2 classes into train and a 20% validation part", setup=_one_image_class,
         check=_no_run_folder),
    Case("out-under-a-file", "folders", ["predict", M, "{ws}/d/val", "--out", "{ws}/cfg.yaml/p.csv"], 2,
         "cannot write {ws}/cfg.yaml/p.csv"),
    # images
    Case("train-corrupt-image", "images", ["train", "--config", "cfg.yaml", "--out", "run"], 0,
         "training data: skipped 1 unreadable or truncated image(s): d/train/happy/broken.png", setup=_corrupt_image),
    Case("train-empty-file", "images", ["train", "--config", "cfg.yaml", "--out", "run"], 0,
         "skipped 1 unreadable or truncated image(s): d/train/sad/empty.jpg", setup=_empty_image),
    Case("predict-corrupt-image", "images", ["predict", M, "d/train/happy", "--out", "p.csv", "-q"], 0, "",
         setup=_corrupt_image, check=lambda c, w, out: (pd.read_csv(c / "p.csv")["error"].notna().sum() == 1) or pytest.fail(out)),
    Case("predict-text-file", "images", ["predict", M, "notes.txt", "--out", "p.csv", "-q"], 0, "",
         setup=lambda c, w: (c / "notes.txt").write_text("hello"),
         check=lambda c, w, out: (pd.read_csv(c / "p.csv")["error"].notna().all()) or pytest.fail(out)),
    Case("predict-7-class-model", "images", ["predict", M, "{ws}/d/val", "--out", "p.csv", "-q"], 0, "", check=_no_contempt),
    # grids
    Case("layout-typo", "grids", ["extract", "{ws}/raw", "x", "--layout", "6by6"], 2,
         "argument --layout: layout '6by6' is not ROWSxCOLS"),
    Case("layout-disagrees", "grids", ["extract", "raw", "x", "--layout", "3x3", "--detector", "none", "-q", "--workers", "1"],
         0, "--layout 3x3 disagrees with grids.csv, whose layout column says 2x2", setup=_grids_copy),
    Case("extract-other-options", "grids", ["extract", "raw", "x", "--layout", "1x2", "--detector", "none", "-q",
                                            "--min-blur", "0"], 2,
         "was extracted with other options (layout: '2x2' -> '1x2')", setup=_grids_extracted),
    Case("grids-csv-missing", "grids", ["extract", "raw", "x", "--detector", "none"], 2, "grids.csv is missing",
         setup=_grids_without_csv),
    Case("grids-csv-unknown-emotion", "grids", ["extract", "raw", "x", "--detector", "none"], 2, "hapy",
         setup=_grids_unknown_emotion),
    Case("grids-csv-lists-missing-file", "grids", ["extract", "raw", "x", "--detector", "none"], 2,
         "lists files that do not exist: g3.png", setup=_grids_missing_file),
    Case("grid-corrupt", "grids", ["extract", "raw", "x", "--layout", "2x2", "--detector", "none", "--workers", "1"], 0,
         "raw/train/g1.png: not a readable image", setup=_grid_corrupt),  # one bad grid never stops the batch
    Case("grid-corrupt-strict", "grids", ["extract", "raw", "x", "--layout", "2x2", "--detector", "none", "--workers", "1",
                                          "--strict"], 1, "raw/train/g1.png: not a readable image", setup=_grid_corrupt),
    Case("extract-into-raw", "grids", ["extract", "raw", "raw/faces", "--detector", "none"], 2, "outside the raw folder",
         setup=_grids_copy),
    Case("gender-words", "grids", ["gender-splits", "--config", "{ws}/cfg.yaml", "--samples", "{ws}/samples.csv",
                                   "--percents", "0", "--out", "gs"], 0, "", check=_gender_words_work),
    Case("gender-no-test-rows", "grids", ["gender-splits", "--config", "{ws}/cfg.yaml", "--samples", "{ws}/samples.csv",
                                          "--set", "test_split=test", "--out", "gs"], 2,
         "{ws}/samples.csv has no rows of split 'test' to test on"),
    Case("gender-unknown", "grids", ["gender-splits", "--config", "{ws}/cfg.yaml", "--samples", "samples.csv", "--out", "gs"],
         2, "unknown gender 'x'; accepted", setup=_unknown_gender),
    # weights
    Case("random-bytes", "weights", ["predict", "junk.pt", "{ws}/d/val", "--out", "p.csv"], 2,
         "junk.pt is not a PyTorch weight file", setup=lambda c, w: (c / "junk.pt").write_bytes(os.urandom(4096)),
         unexpected=("--trust",)),
    Case("missing-checkpoint", "weights", ["predict", "none.pt", "{ws}/d/val", "--out", "p.csv"], 2,
         "weight file none.pt does not exist"),
    Case("head-mismatch", "weights", TRAIN + ["--set", "weights=seven.pt", "--set", "head=load"],
         2, "seven.pt has a 7-class head but the model was built with 8 classes", setup=_seven_class_head,
         unexpected=("--fresh-head",), check=lambda c, w, out: _no_run_folder(c, w, out) or _says("train --set head=fresh", out)),
    Case("pickled-weights-in-train", "weights", TRAIN + ["--set", "weights=whole.pt"], 2,
         "whole.pt is not a plain state dict", setup=_pickled, unexpected=("CLI: --trust)",),
         check=lambda c, w, out: _no_run_folder(c, w, out) or _says("train --set trust_pickle=true", out)),
    Case("truncated-checkpoint", "weights", ["predict", "cut.pt", "{ws}/d/val", "--out", "p.csv"], 2,
         "cut.pt", setup=_truncated_checkpoint),
    Case("export-existing", "weights", ["export-onnx", M, "m.onnx"], 2, "m.onnx exists",
         setup=lambda c, w: (c / "m.onnx").write_text("earlier export")),
    # parameter files
    Case("suite-params-missing", "parameter files", ["suite", "run", "--params", "nope.yaml"], 2,
         "parameter file nope.yaml does not exist"),
    Case("suite-params-yaml", "parameter files", ["suite", "run", "--params", "p.yaml"], 2, "p.yaml is not valid YAML",
         setup=lambda c, w: (c / "p.yaml").write_text("parameters: {seed: 0\n")),
    Case("suite-params-unknown", "parameter files", ["suite", "run", "--params", "p.yaml"], 2,
         "parameters ['sed'] are declared by no notebook (did you mean 'seed'?)",
         setup=lambda c, w: _suite_params(c, w, sed=1)),
    Case("suite-params-list", "parameter files", ["suite", "run", "--params", "p.yaml"], 2, "must be a mapping",
         setup=lambda c, w: (c / "p.yaml").write_text("- a\n- b\n")),
    Case("suite-set-no-equals", "parameter files", ["suite", "run", "--params", "p.yaml", "--set", "seed"], 2,
         "must look like key=value", setup=lambda c, w: _suite_params(c, w)),
    Case("suite-book-no-run", "parameter files", ["suite", "book", "--run", "nowhere"], 2, "nowhere"),
    # interrupted runs
    Case("resume-data-changed", "interrupted runs", ["train", "--resume", "run"], 2, "the data changed since the run started",
         setup=_interrupted_run),
    Case("resume-nothing-saved", "interrupted runs", ["train", "--resume", "run"], 2, "run has no last.pt to resume from",
         setup=_started_run),
    Case("cv-other-config", "interrupted runs", ["cv", "--config", "cfg.yaml", "--k", "2", "--out", "cv", "--set", "lr=0.01"], 2,
         "holds a run of another experiment", setup=_cv_done),
    Case("cv-same-config", "interrupted runs", ["cv", "--config", "cfg.yaml", "--k", "2", "--out", "cv"], 0, "",
         setup=_cv_done, changes=("cv/folds.csv", "cv/summary.json")),  # the folds' checkpoints are reused as they are
    Case("gender-other-percents", "interrupted runs", ["gender-splits", "--config", "{ws}/cfg.yaml", "--samples",
                                                       "{ws}/samples.csv", "--percents", "0", "50", "--out", "gs"], 2,
         "holds a run of another experiment, which a resume would mix with this one (percents: [0.0] -> [0.0, 50.0])", setup=_gender_done),
    Case("suite-resume-data-changed", "interrupted runs", ["suite", "run", "--resume", "run"], 2,
         "the data or weights changed since the run started (real_roots.mine)", setup=_suite_run_folder),
    Case("extract-relabelled", "interrupted runs", ["extract", "raw", "x", "--layout", "2x2", "--detector", "none", "-q",
                                                    "--min-blur", "0"], 0, "", setup=_relabelled_grid,
         changes=("x/manifest.csv", "x/.grids/*", "x/contact_sheets/*", "x/train/happiness/g0_*"),
         check=_stale_faces_gone),
    # read-only outputs (and outputs that must not be lost)
    Case("predict-read-only", "read-only outputs", ["predict", M, "{ws}/d/val", "--out", "ro/p.csv", "-q"], 2,
         "cannot write ro/p.csv", read_only="ro", unexpected=(".tmp",)),
    Case("train-read-only", "read-only outputs", TRAIN + ["--out", "ro/run"], 2, "cannot write ro/run", read_only="ro"),
    Case("evaluate-read-only", "read-only outputs", ["evaluate", M, "{ws}/d", "--split", "val", "--out", "ro/ev", "-q"], 2,
         "cannot write ro/ev", read_only="ro"),
    Case("extract-read-only", "read-only outputs", ["extract", "{ws}/raw", "ro/x", "--detector", "none"], 2,
         "cannot write ro/x", read_only="ro"),
    Case("predict-twice", "read-only outputs", ["predict", M, "{ws}/d/val/happy", "--out", "p.csv"], 2,
         "p.csv exists; choose another output or pass --force", setup=_existing_predictions),
    Case("predict-force", "read-only outputs", ["predict", M, "{ws}/d/val/happy", "--out", "p.csv", "--force", "-q"], 0, "",
         setup=_existing_predictions, changes=("p.csv", ".p.csv.fercore.json"),
         check=lambda c, w, out: len(pd.read_csv(c / "p.csv")) == 3 or pytest.fail(out)),
    Case("output-permissions", "read-only outputs", ["predict", M, "{ws}/d/val", "--out", "p.csv", "-q"], 0, "",
         check=_plain_permissions),
]


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, ws: Path, capsys, caplog, umask_022) -> None:
    folder = ws / "cases" / case.id
    folder.mkdir()
    os.chdir(folder)
    if case.setup:
        case.setup(folder, ws)
    argv = [a.replace("{ws}", str(ws)) for a in case.argv]
    if case.read_only:
        (folder / case.read_only).mkdir(exist_ok=True)
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        (folder / case.read_only).chmod(0o555)
    before = snapshot(ws / "d", ws / "model", ws / "raw", folder)
    if case.read_only:
        code, err, warnings = run_read_only(argv, folder)
    else:
        code, err, warnings = run_in_process(argv, folder, capsys, caplog)
    output = err + "\n" + warnings
    after = snapshot(ws / "d", ws / "model", ws / "raw", folder)

    assert "Traceback" not in err, err
    assert code == case.code, output
    lines = _message_lines(err)
    expect = case.expect.replace("{ws}", str(ws))
    if case.code == 2:
        assert lines and lines[0].startswith(f"fercore {argv[0]}") and ": error: " in lines[0], output
        assert expect in lines[0], output
        assert set(after) == set(before), f"new or lost files: {set(after) ^ set(before)}"  # nothing half-made
    else:
        assert expect in warnings, output
    allowed = [str(folder / pattern) for pattern in case.changes]
    changed = [p for p in before if p in after and before[p] != after[p] and not any(fnmatch(p, a) for a in allowed)]
    lost = [p for p in before if p not in after and not any(fnmatch(p, a) for a in allowed)]
    assert not changed and not lost, f"changed {changed}, lost {lost}"
    for text in case.unexpected:
        assert text not in output, output
    if case.check:
        os.chdir(folder)
        case.check(folder, ws, output)


def test_campaign_covers_every_category() -> None:
    counts = pd.Series([c.category for c in CASES]).value_counts()
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)
    for category in ("images", "folders", "grids", "weights", "configs", "parameter files", "interrupted runs", "read-only outputs"):
        assert counts.get(category, 0) >= 3, (category, counts.to_dict())


def test_debug_shows_the_traceback(ws: Path, capsys) -> None:
    os.chdir(ws / "cases")
    with pytest.raises(Exception, match="unknown config key"):
        cli.main(["--debug", *TRAIN[:2], str(ws / "cfg.yaml"), "--set", "learning_rate=1"])


def test_only_errors_fercore_raised_are_user_errors() -> None:
    """A ValueError from fercore's own checks is the user's to fix; one from inside another library,
    or any other exception, is a bug and keeps its traceback."""
    from fercore.grids import parse_layout

    with pytest.raises(ValueError) as ours:
        parse_layout("6by6")
    with pytest.raises(ValueError) as theirs:
        pd.Timestamp("not a date")
    with pytest.raises(ZeroDivisionError) as bug:
        _ = 1 / 0
    assert cli._expected(ours.value) and not cli._expected(theirs.value) and not cli._expected(bug.value)


def test_readme_only_example_passes_the_parameter_check(ws: Path, monkeypatch, capsys) -> None:
    """`suite run --params configs/suite_demo.yaml --only 01 02` (README) no longer fails on keys
    that only the other notebooks declare: it runs 01 (here a stand-in that fails) and says where."""
    import papermill

    ran = []

    def fake_execute(notebook, executed, **kwargs):
        ran.append(Path(notebook).name)
        raise RuntimeError("stand-in notebook failure")

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    folder = ws / "cases" / "suite-only"
    folder.mkdir()
    os.chdir(folder)
    params = yaml.safe_load((REPO / "configs" / "suite_demo.yaml").read_text())
    (folder / "suite_demo.yaml").write_text(yaml.safe_dump({**params, "notebooks_dir": str(REPO / "notebooks")}))
    code = cli.main(["suite", "run", "--params", "suite_demo.yaml", "--set", "02.epochs=2", "--only", "01", "02"])
    err = capsys.readouterr().err
    assert code == 2 and ran == ["01_rq1_pretrained_on_synthetic.ipynb"], err
    assert "declared by no notebook" not in err and "01_rq1_pretrained_on_synthetic.ipynb could not run" in err.splitlines()[0]
