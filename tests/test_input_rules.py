"""Issue 29, rules 2 and 3, one case per row: each input the issue names is either used correctly or
reported, never guessed or dropped without a word. Every command runs in-process (fercore.cli.main).

Rule 2: one strict reader for YAML (a key written twice is an error naming it and its lines);
notebook keys matched to the notebooks that exist and their declared parameters before the run
folder is made. Rule 3: one walk over a data root accounts for every entry (check-data lists each
category; train, evaluate and predict warn in one line when anything was left out).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from inputkit import CONFIG, NO_KERNEL, run, suite_file, train_tiny_model, write_dataset, write_images
from PIL import Image

SUITE = ["suite", "run", "--params", "p.yaml"]


@dataclass
class Case:
    """A planted input (``setup`` in an empty folder), the command, its exit code and what its output says."""

    id: str
    setup: Callable[[Path], None]
    argv: list[str]
    code: int
    expect: tuple[str, ...]


def _suite(body: str) -> Callable[[Path], None]:
    return lambda folder: suite_file(folder, body)


def _config(text: str) -> Callable[[Path], None]:
    return lambda folder: (folder / "cfg.yaml").write_text(text)


def _data(plant: Callable[[Path], None]) -> Callable[[Path], None]:
    """d/train/{happy,sad}/ with three images each, then ``plant`` (given d/train)."""
    return lambda folder: plant(write_dataset(folder / "d") / "train")


def _nested(train: Path) -> None:
    write_images(train / "happy" / "old", 2, seed=7)


def _broken_link(train: Path) -> None:
    (train / "sad" / "gone.png").symlink_to(train / "sad" / "nowhere.png")


def _link_loop(train: Path) -> None:
    (train / "sad" / "loop.png").symlink_to(train / "sad" / "loop.png")


def _jpeg_without_suffix(train: Path) -> None:
    Image.new("RGB", (32, 32), (200, 30, 30)).save(train / "happy" / "face", format="JPEG")


def _truncated_jfif(train: Path) -> None:
    Image.new("RGB", (64, 64), (10, 200, 30)).save(train / "happy" / "cut.jfif", format="JPEG")
    data = (train / "happy" / "cut.jfif").read_bytes()
    (train / "happy" / "cut.jfif").write_bytes(data[: len(data) // 3])


RULE2 = [
    Case("suite-second-02-block", _suite('notebooks:\n  "02": {epochs: 1}\n  "02": {max_per_class: 3}\n'), SUITE, 2,
         ("key '02' is written 2 times (lines 5, 6)",)),
    Case("suite-set-05-without-notebook-05", _suite(""), [*SUITE, "--set", "05.epochs=1"], 2,
         ("--set 05.epochs=1: there is no notebook 05", "notebooks: 01, 02, 03")),
    Case("train-epochs-three-times", _config(CONFIG + "epochs: 2\nepochs: 3\n"), ["train", "--config", "cfg.yaml"], 2,
         ("cfg.yaml: key 'epochs' is written 3 times (lines 8, 14, 15)",)),
    Case("suite-unquoted-02-reaches-notebook-02", _suite("notebooks:\n  02: {epochz: 1}\n"), SUITE, 2,
         ("02_rq2_second.ipynb does not declare ['epochz'] (did you mean 'epochs'?)",)),
    Case("suite-2-and-02-name-one-notebook", _suite('notebooks:\n  2: {epochs: 1}\n  "02": {epochs: 2}\n'), SUITE, 2,
         ("notebooks 2 and '02' both name notebook 02",)),
    Case("suite-notebook-key-not-a-number", _suite("notebooks:\n  rq2: {epochs: 1}\n"), SUITE, 2,
         ("notebook key 'rq2' is not a notebook number",)),
    Case("suite-undeclared-key-checked-before-any-run", _suite('notebooks:\n  "02": {max_per_clas: 1}\n'), SUITE, 2,
         ("notebooks.02: 02_rq2_second.ipynb does not declare ['max_per_clas']",)),
    Case("suite-set-undeclared-key", _suite(""), [*SUITE, "--set", "02.lr=0.5"], 2,
         ("--set 02.lr=0.5: 02_rq2_second.ipynb does not declare ['lr']",)),
    Case("suite-shared-parameter-twice", _suite("parameters:\n  epochs: 1\n  seed: 2\n  epochs: 2\n"), SUITE, 2,
         ("key 'epochs' is written 2 times (lines 5, 7)",)),
    Case("set-value-with-a-key-twice", _config(CONFIG), ["train", "--config", "cfg.yaml", "--set",
                                                        "stages=[{epochs: 1, epochs: 2}]"], 2,
         ("--set stages=[{epochs: 1, epochs: 2}]: key 'epochs' is written 2 times",)),
    Case("stage-key-twice-in-config", _config(CONFIG + "stages:\n  - epochs: 1\n    lr: 0.1\n    lr: 0.2\n"),
         ["train", "--config", "cfg.yaml"], 2, ("key 'lr' is written 2 times (lines 16, 17)",)),
]

RULE3 = [
    Case("folder-inside-a-class-folder", _data(_nested), ["check-data", "d", "--out", "r.json", "-q", "--workers", "0"], 0,
         ("left out: 1 folder inside a class folder", "train/happy/old (2 files not used)")),
    Case("link-that-resolves-nowhere", _data(_broken_link), ["check-data", "d", "--out", "r.json", "-q", "--workers", "0"], 0,
         ("left out: 1 link that resolves nowhere", "train/sad/gone.png")),
    Case("link-that-loops", _data(_link_loop), ["check-data", "d", "--out", "r.json", "-q", "--workers", "0"], 0,
         ("left out: 1 link that loops", "train/sad/loop.png")),
    Case("file-that-is-not-an-image", _data(lambda t: (t / "sad" / "notes.txt").write_text("labels by hand")),
         ["check-data", "d", "--out", "r.json", "-q", "--workers", "0"], 0, ("left out: 1 file that is not an image", "train/sad/notes.txt")),
    Case("hidden-file", _data(lambda t: (t / "happy" / ".DS_Store").write_bytes(b"\0Bud1")),
         ["check-data", "d", "--out", "r.json", "-q", "--workers", "0"], 0, ("left out: 1 hidden file or folder", "train/happy/.DS_Store")),
    Case("image-without-suffix-is-used", _data(_jpeg_without_suffix), ["check-data", "d", "--out", "r.json", "-q", "--workers", "0"], 0,
         ("images                    7",)),
    Case("image-that-cannot-be-read", _data(_truncated_jfif), ["check-data", "d", "--out", "r.json", "-q", "--workers", "0"], 0,
         ("left out: 1 image that cannot be read", "train/happy/cut.jfif")),
    Case("predict-warns-what-it-left-out", _data(lambda t: (t / "sad" / "notes.txt").write_text("x")),
         ["predict", "MODEL", "d/train", "--out", "p.csv", "-q"], 0,
         ("d/train: 6 images used; left out 1: 1 file that is not an image (sad/notes.txt)",)),
    Case("evaluate-warns-what-it-left-out", _data(_nested),
         ["evaluate", "MODEL", "d", "--split", "train", "--out", "ev", "-q", "--keep-duplicates"], 0,
         ("d: 6 images used; left out 1: 1 folder inside a class folder (train/happy/old)",)),
]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A resnet10t checkpoint trained one epoch on 32 px images of happy and sad."""
    return train_tiny_model(tmp_path_factory.mktemp("model"))


@pytest.mark.parametrize("case", RULE2 + RULE3, ids=lambda c: c.id)
def test_input_is_used_or_reported(case: Case, tmp_path, capsys, caplog, request):
    case.setup(tmp_path)
    argv = list(case.argv)
    if "MODEL" in argv:
        argv[argv.index("MODEL")] = str(request.getfixturevalue("model"))
    code, out = run(argv, tmp_path, capsys, caplog)
    assert code == case.code, out
    for text in case.expect:
        assert text in out, out
    assert not (tmp_path / "out").exists(), "a refused suite start left a run folder behind"
    assert NO_KERNEL not in out or case.code == 0, "the input passed every check (stopped only at the kernel)"


def test_train_warns_in_one_line_what_it_left_out(tmp_path, capsys, caplog):
    write_dataset(tmp_path / "d", per_class=6)
    (tmp_path / "d" / "train" / "happy" / ".DS_Store").write_bytes(b"\0")
    write_images(tmp_path / "d" / "train" / "sad" / "rejected", 1)
    (tmp_path / "cfg.yaml").write_text(CONFIG)
    code, out = run(["train", "--config", "cfg.yaml", "--out", "run"], tmp_path, capsys, caplog)
    assert code == 0, out
    assert ("d: 12 images used; left out 2: 1 hidden file or folder (train/happy/.DS_Store); "
            "1 folder inside a class folder (train/sad/rejected)") in out, out


def test_unquoted_notebook_numbers_are_normalised(tmp_path):
    from fercore.book import SuiteParams

    path = suite_file(tmp_path, "notebooks:\n  02: {max_per_class: 3}\n  1: {lr: 0.5}\n")
    params = SuiteParams.from_yaml(path, ["2.epochs=4"])
    assert params.notebooks == {"02": {"max_per_class": 3, "epochs": 4}, "01": {"lr": 0.5}}


def test_clean_data_is_discovered_as_before(tmp_path):
    """The walk changes nothing on clean data: the same rows, in the same order, as a plain listing."""
    from fercore.data import discover

    root = write_dataset(tmp_path / "d", classes=("happy", "sad", "Angry"), splits=("train", "test"))
    table = discover(root)
    listing = [str(p) for split in ("test", "train") for p in sorted((root / split).rglob("*.png"))]
    assert table["path"].tolist() == listing
    assert table.groupby("split").size().to_dict() == {"test": 9, "train": 9}
    assert sorted(set(table["emotion"])) == ["Anger", "Happiness", "Sadness"]
    assert os.path.basename(table["path"].iloc[0]) == "0.png"
