"""Duplicate hygiene: planted train/test twins and conflicting labels are dropped and counted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fercore import cli
from fercore.data import discover
from fercore.data import duplicates as dedup
from fercore.inference.evaluate import evaluate_folder
from fercore.models import create_model, load_model, save_model
from fercore.training import TrainConfig, load_split_samples


@pytest.fixture
def planted(tiny_dataset: Path) -> Path:
    """tiny_dataset + a test image that is a same-label copy of a train image (a twin) and one
    that is a copy of a train image under another label (conflicting)."""
    shutil.copy(tiny_dataset / "train" / "happy" / "0.png", tiny_dataset / "test" / "happy" / "twin.png")
    shutil.copy(tiny_dataset / "train" / "angry" / "0.png", tiny_dataset / "test" / "sad" / "relabelled.png")
    return tiny_dataset


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_model(tmp_path_factory.mktemp("ckpt") / "c.pt", create_model("resnet10t"), arch="resnet10t", image_size=32)


def test_pixel_hashes_see_pixels_not_bytes_and_are_cached(tmp_path):
    from conftest import pattern_image
    from PIL import Image

    image = pattern_image(20, 20)
    image.save(tmp_path / "a.png")
    image.save(tmp_path / "b.png", compress_level=0)  # other bytes, same pixels
    pattern_image(20, 20, seed=1).save(tmp_path / "c.png")
    paths = [str(tmp_path / n) for n in ("a.png", "b.png", "c.png")]
    first = dedup.pixel_hashes(paths)
    assert first[0] == first[1] != first[2]
    cached = pd.read_csv(dedup.cache_dir() / dedup.CACHE_FILE)
    assert set(paths) <= set(cached["path"])
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "a.png")  # changed file: hashed again
    assert dedup.pixel_hashes(paths)[0] != first[0]
    assert list(dedup.content_groups(["x", "y", "x", ""])[:3]) == [0, 1, 0]


def test_evaluation_drops_a_planted_twin_and_a_conflicting_copy(planted, checkpoint, tmp_path, capsys):
    out = tmp_path / "ev"
    assert cli.main(["evaluate", str(checkpoint), str(planted), "--out", str(out), "--workers", "0", "-q"]) == 0
    printed = capsys.readouterr().out
    assert "dropped 2 of 8 test images (1 with a pixel-identical twin" in printed and "1 duplicated with another label" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    dup = metrics["duplicates"]
    assert (dup["dropped_train_twins"], dup["dropped_conflicting_labels"], dup["dropped_total"]) == (1, 1, 2)
    assert {Path(d["path"]).name for d in dup["dropped"]} == {"twin.png", "relabelled.png"}
    assert "no twin check against the model's own training data" in dup["note"]  # the checkpoint names no data
    assert metrics["n"] == 6
    predictions = pd.read_csv(out / "predictions.csv")
    assert not predictions["path"].str.endswith(("twin.png", "relabelled.png")).any()
    kept = evaluate_folder(load_model(checkpoint), planted, tmp_path / "kept", keep_duplicates=True, workers=0, progress=False)
    assert kept["n"] == 8 and kept["duplicates"] == {"policy": "kept (--keep-duplicates)"}


def test_evaluation_checks_the_checkpoints_own_training_data(tiny_dataset, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(tiny_dataset / "train", other / "train")
    only_test = tmp_path / "only_test"
    shutil.copytree(tiny_dataset / "test", only_test / "test")
    shutil.copy(other / "train" / "sad" / "1.png", only_test / "test" / "sad" / "seen.png")
    model = create_model("resnet10t")
    path = save_model(tmp_path / "c.pt", model, arch="resnet10t", image_size=32, config={"data_root": str(other), "train_split": "train"})
    metrics = evaluate_folder(load_model(path), only_test, tmp_path / "ev", workers=0, progress=False)
    assert metrics["duplicates"]["dropped_train_twins"] == 1 and metrics["duplicates"]["compared_with"] == [f"{other}/train"]


def test_training_drops_conflicting_copies_and_keeps_twins_on_one_side(tiny_dataset):
    train = tiny_dataset / "train"
    shutil.copy(train / "angry" / "0.png", train / "sad" / "conflict.png")  # the same face labelled twice
    for i in range(4):  # same-label twins
        shutil.copy(train / "happy" / f"{i}.png", train / "happy" / f"{i}_copy.png")
        shutil.copy(train / "sad" / f"{i}.png", train / "sad" / f"{i}_copy.png")
    config = TrainConfig(data_root=str(tiny_dataset), val_fraction=0.3, seed=3, workers=0, progress=False, test_split="test")
    kept, val, test, hygiene = load_split_samples(config)
    assert hygiene["train_conflicting_dropped"] == 2  # both copies of the relabelled face
    names = set(kept["path"].map(lambda p: Path(p).name)) | set(val["path"].map(lambda p: Path(p).name))
    assert "conflict.png" not in names and len(kept) + len(val) == 12 + 8 - 1
    stems = lambda t: {Path(p).parent.name + Path(p).stem.removesuffix("_copy") for p in t["path"]}  # noqa: E731
    assert not stems(kept) & stems(val)  # no twin pair straddles the selection split
    assert "grouped by content_group" in hygiene["selection_split"]
    assert hygiene["test"]["dropped_total"] == 0 and len(test) == 6
    unchecked = load_split_samples(TrainConfig(data_root=str(tiny_dataset), val_fraction=0.3, keep_duplicates=True, workers=0,
                                               progress=False))
    assert len(unchecked[0]) + len(unchecked[1]) == 12 + 8 + 1


def test_discover_still_lists_every_file(planted):
    assert len(discover(planted, ["test"])) == 8  # raw data is never touched; only scoring leaves files out
