"""Outputs apart from inputs (issue 29, rule 4): :func:`fercore.core.outputs.claim_output`."""

from __future__ import annotations

import pytest
from conftest import pattern_image

from fercore.core.outputs import claim_output, is_own_output, mark_output


@pytest.fixture
def data(tmp_path):
    """data/train/happy/0.png, a checkpoint file and a plain text file written by the user."""
    (tmp_path / "data" / "train" / "happy").mkdir(parents=True)
    pattern_image(16, 16).save(tmp_path / "data" / "train" / "happy" / "0.png")
    (tmp_path / "model.pt").write_bytes(b"PK\x03\x04 not really a checkpoint")
    (tmp_path / "notes.csv").write_text("mine\n")
    return tmp_path


@pytest.mark.parametrize("out, kwargs, says", [
    ("data/train/happy/0.png", dict(inputs=["data/train/happy/0.png"], force=True), "is the input"),
    ("data/train/p.csv", dict(inputs=["data/train"]), "lies inside the input"),
    ("data/ev", dict(folder=True, data_roots=["data"]), "lies inside the data folder"),
    ("data", dict(folder=True, data_roots=["data"]), "is the data folder"),
    (".", dict(folder=True, data_roots=["data"], force=True), "holds the data folder"),
    ("model.pt", dict(force=True), "is a model file (checkpoint or weights), not an output of fercore predict"),
    ("data/train/happy/0.png", dict(force=True), "is an image, not an output of fercore predict"),
    ("data", dict(folder=True, force=True), "is a data folder (it holds images)"),
    ("notes.csv", dict(force=True), "was not written by fercore predict (it has no .notes.csv.fercore.json marker)"),
    ("notes.csv", {}, "notes.csv exists; choose another output or pass --force"),
    ("data/train", {}, "is a folder; --out takes a file name, e.g. data/train/predictions.csv"),
    ("out.jpg", {}, "would write a CSV under the name of an image"),
    ("out.pt", {}, "would write a CSV under the name of a model file"),
])
def test_refused_outputs(data, monkeypatch, out, kwargs, says):
    monkeypatch.chdir(data)
    before = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    with pytest.raises((OSError, ValueError)) as err:
        claim_output(out, "predict", **kwargs)
    assert says in str(err.value)
    assert {p: p.read_bytes() for p in data.rglob("*") if p.is_file()} == before


def test_force_replaces_only_the_commands_own_unchanged_output(data, monkeypatch):
    monkeypatch.chdir(data)
    (data / "p.csv").write_text("a\n")
    mark_output(data / "p.csv", "predict")
    assert is_own_output(data / "p.csv", "predict") and not is_own_output(data / "p.csv", "check-data")
    assert claim_output("p.csv", "predict", force=True).name == "p.csv"
    with pytest.raises(FileExistsError, match="pass --force"):
        claim_output("p.csv", "predict")
    with pytest.raises(FileExistsError, match="not written by fercore check-data"):
        claim_output("p.csv", "check-data", force=True)
    (data / "p.csv").write_text("edited by hand\n")  # changed since: not its own output any more
    with pytest.raises(FileExistsError, match="not written by fercore predict"):
        claim_output("p.csv", "predict", force=True)


def test_force_clears_an_own_output_folder_and_nothing_else(data, monkeypatch):
    monkeypatch.chdir(data)
    (data / "ev" / "figures").mkdir(parents=True)
    (data / "ev" / "metrics.json").write_text("{}")
    with pytest.raises(FileExistsError, match="not written by fercore evaluate"):
        claim_output("ev", "evaluate", folder=True, force=True)
    assert (data / "ev" / "metrics.json").exists()
    mark_output(data / "ev", "evaluate")
    claim_output("ev", "evaluate", folder=True, force=True)
    assert (data / "ev").is_dir() and list((data / "ev").iterdir()) == []

