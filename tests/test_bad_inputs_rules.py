"""Issue 29, rules 4 and 5, case by case: outputs apart from inputs (``--force`` replaces only a
command's own earlier output), messages that point at the real cause and fix, one-line errors
where there were tracebacks, and Ctrl-C at named points (exit 130, every file complete or absent).

Every case runs in-process (:func:`fercore.cli.main`) on one small workspace: a 3-class data set,
a resnet10t trained one epoch at 32 px (``model/checkpoint.pt`` and ``model/last.pt``), 2x2 grids.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from conftest import REPO, pattern_image
from PIL import Image
from test_bad_inputs import write_dataset, write_grids

from fercore import cli

CLASSES = ("angry", "happy", "sad")
CONFIG = {"experiment": "t", "data_root": "d", "val_fraction": 0.25, "arch": "resnet10t", "image_size": 32,
          "batch_size": 8, "epochs": 1, "lr": 1e-3, "optimizer": "adamw", "workers": 0, "progress": False, "seed": 0}
M = "{ws}/model/checkpoint.pt"


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Iterator[Path]:
    from fercore.training import TrainConfig, train

    root = tmp_path_factory.mktemp("rules")
    write_dataset(root / "d", {"train": 4, "val": 2}, classes=CLASSES)
    (root / "cfg.yaml").write_text(yaml.safe_dump({**CONFIG, "data_root": str(root / "d")}))
    train(TrainConfig.from_yaml(root / "cfg.yaml"), out=root / "model")
    write_grids(root / "raw")
    yield root


def digest(*roots: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for r in roots for p in sorted(r.rglob("*")) if p.is_file()}


@dataclass
class Case:
    """``fercore ARGV`` in a fresh case folder (``{ws}``: the workspace) after ``setup``: the exit
    code, text the message must hold (and must not), and an optional ``check`` of the folder."""

    id: str
    argv: list[str]
    code: int
    says: str
    setup: Callable[[Path, Path], None] | None = None
    never: tuple[str, ...] = ()
    check: Callable[[Path, Path], None] | None = None


def _jpeg(case: Path, ws: Path) -> None:
    pattern_image(32, 32, seed=7).save(case / "face.jpg")


def _user_csv(case: Path, ws: Path) -> None:
    (case / "p.csv").write_text("my own notes\n")


def _folder(case: Path, ws: Path) -> None:
    (case / "folder").mkdir()
    (case / "folder" / "notes.txt").write_text("mine\n")


def _copy_data(case: Path, ws: Path) -> None:
    shutil.copytree(ws / "d", case / "d")
    (case / "cfg.yaml").write_text(yaml.safe_dump({**CONFIG, "data_root": str(case / "d")}))


def _own_predictions(case: Path, ws: Path) -> None:
    assert cli.main(["predict", str(ws / "model" / "checkpoint.pt"), str(ws / "d" / "val"), "--out", "p.csv", "-q"]) == 0


def _own_evaluation(case: Path, ws: Path) -> None:
    assert cli.main(["evaluate", str(ws / "model" / "checkpoint.pt"), str(ws / "d"), "--split", "val", "--out", "ev",
                     "-q", "--backend", "torch"]) == 0


def _own_run(case: Path, ws: Path) -> None:
    _copy_data(case, ws)
    assert cli.main(["train", "--config", "cfg.yaml", "--out", "run"]) == 0


def _foreign_run(case: Path, ws: Path) -> None:
    _copy_data(case, ws)
    (case / "run").mkdir()
    (case / "run" / "thesis.tex").write_text("chapter 1\n")


def _extra_key(case: Path, ws: Path) -> None:
    payload = torch.load(ws / "model" / "checkpoint.pt", weights_only=True)
    payload["state_dict"]["extra.weight"] = torch.zeros(2)
    torch.save(payload, case / "m.pt")


def _big_size(case: Path, ws: Path) -> None:
    payload = torch.load(ws / "model" / "checkpoint.pt", weights_only=True)
    payload["image_size"] = "big"
    torch.save(payload, case / "m.pt")


def _onnx(case: Path, ws: Path) -> None:
    (case / "model.onnx").write_bytes(b"\x08\x08\x12\x07pytorch" + bytes(64))


def _grids(case: Path, ws: Path, edit: Callable[[Path], None]) -> None:
    shutil.copytree(ws / "raw", case / "raw")
    edit(case / "raw" / "train")


def _grid_in_subfolder(split: Path) -> None:
    (split / "batch2").mkdir()
    shutil.move(split / "g3.png", split / "batch2" / "g3.png")
    table = pd.read_csv(split / "grids.csv")
    table.loc[table["file"] == "g3.png", "file"] = "batch2/g3.png"
    table.to_csv(split / "grids.csv", index=False)


def _semicolons(split: Path) -> None:
    pd.read_csv(split / "grids.csv").to_csv(split / "grids.csv", index=False, sep=";")


def _listed_twice(split: Path) -> None:
    table = pd.read_csv(split / "grids.csv")
    twin = table.iloc[[1]].assign(emotion="angry")
    pd.concat([table, twin]).to_csv(split / "grids.csv", index=False)


def _truncated_last(case: Path, ws: Path) -> None:
    shutil.copytree(ws / "model", case / "run")
    data = (case / "run" / "last.pt").read_bytes()
    (case / "run" / "last.pt").write_bytes(data[: len(data) // 2])


def _suite_typo(case: Path, ws: Path) -> None:
    (case / "p.yaml").write_text(yaml.safe_dump({
        "name": "t", "results_dir": str(case / "results"), "notebooks_dir": str(REPO / "notebooks"),
        "parameters": {}, "notebooks": {"02": {"epochss": 1}}}))


def _unchanged(name: str) -> Callable[[Path, Path], None]:
    def check(case: Path, ws: Path) -> None:
        assert (case / name).read_bytes() == CASE_BYTES[name], f"{name} changed"
    return check


CASE_BYTES: dict[str, bytes] = {}

CASES = [
    # rule 4: outputs apart from inputs
    Case("predict-out-is-input-jpeg", ["predict", M, "face.jpg", "--out", "face.jpg", "--force", "-q"], 2,
         "the output face.jpg is the input", setup=_jpeg, check=_unchanged("face.jpg")),
    Case("predict-out-other-image", ["predict", M, "{ws}/d/val/happy", "--out", "face.jpg", "--force", "-q"], 2,
         "face.jpg is an image, not an output of fercore predict", setup=_jpeg, check=_unchanged("face.jpg")),
    Case("predict-out-new-image-name", ["predict", M, "{ws}/d/val/happy", "--out", "p.png", "-q"], 2,
         "would write a CSV under the name of an image"),
    Case("predict-out-checkpoint", ["predict", M, "{ws}/d/val/happy", "--out", M, "--force", "-q"], 2, "is the input"),
    Case("predict-out-inside-input", ["predict", M, "d", "--out", "d/p.csv", "-q"], 2, "lies inside the input",
         setup=_copy_data),
    Case("predict-force-foreign-file", ["predict", M, "{ws}/d/val/happy", "--out", "p.csv", "--force", "-q"], 2,
         "p.csv was not written by fercore predict", setup=_user_csv, check=_unchanged("p.csv")),
    Case("predict-force-own-file", ["predict", M, "{ws}/d/val/happy", "--out", "p.csv", "--force", "-q"], 0, "",
         setup=_own_predictions, check=lambda c, w: len(pd.read_csv(c / "p.csv")) == 2 or pytest.fail("not replaced")),
    Case("evaluate-out-in-data", ["evaluate", M, "d", "--split", "val", "--out", "d/ev", "-q"], 2,
         "lies inside the data folder", setup=_copy_data),
    Case("evaluate-force-foreign", ["evaluate", M, "{ws}/d", "--split", "val", "--out", "folder", "--force", "-q"], 2,
         "folder was not written by fercore evaluate", setup=_folder),
    Case("evaluate-force-own", ["evaluate", M, "{ws}/d", "--split", "val", "--out", "ev", "--force", "-q",
                                "--backend", "torch"], 0, "", setup=_own_evaluation,
         check=lambda c, w: (c / "ev" / "metrics.json").is_file() or pytest.fail("no metrics")),
    Case("train-out-not-empty", ["train", "--config", "cfg.yaml", "--out", "run"], 2,
         "run is a folder that is not empty; choose another output or pass --force to replace it (only an earlier "
         "output of fercore train is replaced)", setup=_foreign_run),
    Case("train-force-foreign", ["train", "--config", "cfg.yaml", "--out", "run", "--force"], 2,
         "run was not written by fercore train", setup=_foreign_run,
         check=lambda c, w: (c / "run" / "thesis.tex").is_file() or pytest.fail("user file removed")),
    Case("train-force-own", ["train", "--config", "cfg.yaml", "--out", "run", "--force"], 0, "", setup=_own_run),
    Case("train-out-in-data", ["train", "--config", "cfg.yaml", "--out", "d/run"], 2, "lies inside the data folder",
         setup=_copy_data),
    Case("check-data-out-in-data", ["check-data", "d", "--out", "d/report.json", "-q"], 2, "lies inside the data folder",
         setup=_copy_data),
    Case("convert-onto-itself", ["weights", "convert", "m.pt", "m.pt", "--force"], 2, "is the input", setup=_extra_key),
    # rule 5: messages that point at the cause and the fix
    Case("predict-out-folder", ["predict", M, "{ws}/d/val/happy", "--out", "folder", "-q"], 2,
         "folder is a folder; --out takes a file name", setup=_folder, never=("--force",)),
    Case("folder-as-weights", ["predict", "{ws}/model", "{ws}/d/val/happy", "--out", "p.csv", "-q"], 2,
         "model is a folder, not a weight file; the model in it is", never=("does not exist",)),
    Case("last-pt-to-predict", ["predict", "{ws}/model/last.pt", "{ws}/d/val/happy", "--out", "p.csv", "-q"], 2,
         "is a run's resumable training state (last.pt), not a saved model", never=("load_classifier",)),
    Case("onnx-to-predict", ["predict", "model.onnx", "{ws}/d/val/happy", "--out", "p.csv", "-q"], 2,
         "model.onnx is an ONNX export", setup=_onnx, never=("truncated",)),
    Case("extra-key-resnet10t", ["predict", "m.pt", "{ws}/d/val/happy", "--out", "p.csv", "-q"], 2,
         "m.pt does not fit resnet10t", setup=_extra_key, never=("EfficientNet", "arch (b0")),
    Case("metadata-image-size", ["predict", "m.pt", "{ws}/d/val/happy", "--out", "p.csv", "-q"], 2,
         "m.pt: the checkpoint's metadata has image_size='big', not a whole number", setup=_big_size),
    Case("stage-key-via-set", ["train", "--config", "{ws}/cfg.yaml", "--set", "stages=[{epochs: 1, lrr: 0.1}]"], 2,
         "--set stages=[{epochs: 1, lrr: 0.1}]: config stages[0]: unknown config key 'lrr'"),
    Case("grid-in-subfolder", ["extract", "raw", "faces", "--layout", "2x2", "--detector", "none", "-q"], 2,
         "lists batch2/g3.png, in a subfolder", setup=lambda c, w: _grids(c, w, _grid_in_subfolder),
         never=("do not exist",)),
    Case("grids-semicolons", ["extract", "raw", "faces", "--layout", "2x2", "--detector", "none", "-q"], 2,
         "separates its columns with ';', not commas", setup=lambda c, w: _grids(c, w, _semicolons)),
    Case("grids-listed-twice", ["extract", "raw", "faces", "--layout", "2x2", "--detector", "none", "-q"], 2,
         "lists g1.png 2 times (line 3: sad, line 6: angry)", setup=lambda c, w: _grids(c, w, _listed_twice)),
    Case("resume-truncated-last", ["train", "--resume", "run"], 2, "last.pt cannot be read", setup=_truncated_last),
    Case("suite-refused-start", ["suite", "run", "--params", "p.yaml", "--only", "02"], 2, "does not declare ['epochss'] (did you mean 'epochs'?)",
         setup=_suite_typo, check=lambda c, w: not (c / "results").exists() or not any((c / "results").rglob("*"))
         or pytest.fail(f"left behind: {sorted((c / 'results').rglob('*'))}")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule_case(case: Case, ws: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    folder = tmp_path / case.id
    folder.mkdir()
    monkeypatch.chdir(folder)
    if case.setup is not None:
        case.setup(folder, ws)
    CASE_BYTES.clear()
    CASE_BYTES.update({p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()})
    before = digest(ws / "d", ws / "model")
    capsys.readouterr()
    try:
        code = cli.main([a.replace("{ws}", str(ws)) for a in case.argv])
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("INFO ", "DEBUG ", "WARNING "))]
    assert code == case.code, err
    if case.code == 2:
        assert "Traceback" not in err and lines and case.says in lines[0], err
    for word in case.never:
        assert word not in err, err
    if case.check is not None:
        case.check(folder, ws)
    assert digest(ws / "d", ws / "model") == before, "an input of the workspace changed"


def test_weights_inspect_reads_a_fercore_checkpoint(ws: Path, capsys) -> None:
    """It said "head none (backbone only)" for a resnet10t checkpoint with fc.weight 8 x 512."""
    assert cli.main(["weights", "inspect", str(ws / "model" / "checkpoint.pt")]) == 0
    out = capsys.readouterr().out
    assert "arch guess    resnet10t (from the checkpoint's metadata)" in out and "head          8 classes" in out


def test_read_only_export_cache_names_fercore_cache(ws: Path, tmp_path: Path, monkeypatch, capsys, caplog) -> None:
    """A cache folder that cannot be written gave a raw [Errno 13]; root ignores permissions, so the
    export's write is made to fail as a read-only folder does."""
    from fercore.models import onnx as onnxrt

    def denied(module, example, out, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(out))

    monkeypatch.setenv("FERCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(onnxrt, "export_module", denied)
    argv = ["predict", str(ws / "model" / "checkpoint.pt"), str(ws / "d" / "val"), "-q"]
    assert cli.main([*argv, "--out", str(tmp_path / "a.csv"), "--backend", "onnxruntime"]) == 2
    err = capsys.readouterr().err
    assert "cannot write the ONNX export to" in err and "set FERCORE_CACHE to a writable folder" in err
    assert "--backend torch" in err and "[Errno 13]" not in err
    assert cli.main([*argv, "--out", str(tmp_path / "b.csv"), "--backend", "auto"]) == 0  # auto: PyTorch, with a warning
    assert "set FERCORE_CACHE to a writable folder" in caplog.text


# --------------------------------------------------------------------------- Ctrl-C at named points


def _complete(folder: Path) -> None:
    """Every file under ``folder`` is complete: no temporary file, images decode, tables and checkpoints load."""
    for path in folder.rglob("*"):
        assert not path.name.endswith(".tmp"), f"partial file left: {path}"
        if path.suffix == ".png":
            with Image.open(path) as image:
                image.load()
        elif path.suffix == ".csv":
            pd.read_csv(path)
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".pt":
            torch.load(path, weights_only=True)


def _interrupted_save(obj, handle) -> None:
    """torch.save cut by Ctrl-C: part of the archive written, then the RuntimeError torch raises around it."""
    handle.write(b"PK\x03\x04partial")
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0") from None


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("where", ["saving last.pt", "training step"])
def test_ctrl_c_in_training(where: str, ws: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    from fercore.core import files
    from fercore.training import loop

    monkeypatch.chdir(tmp_path)
    real_save = files.torch.save
    if where == "saving last.pt":
        monkeypatch.setattr(files.torch, "save", lambda obj, handle: _interrupted_save(obj, handle)
                            if "rng" in obj else real_save(obj, handle))
    else:
        monkeypatch.setattr(loop, "train_step", _interrupt)
    code = cli.main(["train", "--config", str(ws / "cfg.yaml"), "--out", "run"])
    err = capsys.readouterr().err
    assert code == 130 and err.strip().splitlines()[-1] == "fercore train: interrupted" and "Traceback" not in err
    _complete(tmp_path)


def test_ctrl_c_during_extraction(ws: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    from fercore.grids import extract

    real, calls = extract.extract_grid, []

    def second_grid_interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(extract, "extract_grid", second_grid_interrupted)
    code = cli.main(["extract", str(ws / "raw"), "faces", "--layout", "2x2", "--detector", "none", "--workers", "0", "-q"])
    assert code == 130 and capsys.readouterr().err.strip().splitlines()[-1] == "fercore extract: interrupted"
    _complete(tmp_path)


def test_ctrl_c_inside_a_suite_run(tmp_path: Path, monkeypatch, capsys) -> None:
    import papermill

    (tmp_path / "p.yaml").write_text(yaml.safe_dump({"name": "t", "results_dir": str(tmp_path / "results"),
                                                     "notebooks_dir": str(REPO / "notebooks"), "parameters": {}}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(papermill, "execute_notebook", _interrupt)
    code = cli.main(["suite", "run", "--params", "p.yaml", "--only", "01", "-q"])
    assert code == 130 and capsys.readouterr().err.strip().splitlines()[-1] == "fercore suite: interrupted"
    _complete(tmp_path)
    assert not any(p.is_file() for p in (tmp_path / "results").rglob("*")), "a run that ran nothing is left behind"

