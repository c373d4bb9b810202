"""Cross-validation and gender splits end to end on a small table of demo faces."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from fercore import cli
from fercore.data import discover, load_samples
from fercore.training import TrainConfig
from fercore.training.experiments import run_cv


@pytest.fixture
def face_table(demo_root, tmp_path):
    """A manifest-like CSV: 8 faces per class and split, gender alternating, 4 faces per source grid."""
    rows = []
    for split in ("train", "test"):
        faces = discover(demo_root / "real", [split]).groupby("label").head(8).reset_index(drop=True)
        for i, face in faces.iterrows():
            rows.append({"path": face.path, "split": split, "emotion": face.folder, "gender": ("female", "male")[i % 2],
                         "source": f"{split}_grid{i // 4}", "kept": True})
    rows.append({**rows[0], "path": "missing.png", "kept": False})  # rejected cells are dropped
    path = tmp_path / "manifest.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def tiny_config(**overrides):
    base = dict(experiment="exp", arch="resnet10t", image_size=32, batch_size=16, epochs=1, lr=1e-3,
                optimizer="adam", val_fraction=0.25, workers=0, progress=False)
    return TrainConfig(**{**base, **overrides})


def test_load_samples_reads_manifest(face_table):
    samples = load_samples(face_table)
    assert len(samples) == 128 and set(samples.gender) == {"female", "male"}
    assert samples.label.nunique() == 8 and "missing.png" not in set(samples.path)


def test_cv_folds_are_grouped_and_resumable(face_table, tmp_path):
    samples = load_samples(face_table).query("split == 'train'").reset_index(drop=True)
    table = run_cv(tiny_config(), k=2, samples=samples, out=tmp_path / "cv")
    assert list(table.fold) == [0, 1] and table.n_test.sum() == len(samples)
    for fold in (0, 1):
        ckpt_dir = tmp_path / "cv" / f"fold{fold}"
        assert (ckpt_dir / "metrics.json").is_file()
    summary = json.loads((tmp_path / "cv" / "summary.json").read_text())
    assert summary["grouped_by"] == "source" and 0 <= summary["accuracy_mean"] <= 1
    before = (tmp_path / "cv" / "fold0" / "checkpoint.pt").stat().st_mtime_ns
    again = run_cv(tiny_config(), k=2, samples=samples, out=tmp_path / "cv")  # finished folds are skipped
    assert (tmp_path / "cv" / "fold0" / "checkpoint.pt").stat().st_mtime_ns == before
    assert again.accuracy.tolist() == table.accuracy.tolist()


def test_gender_splits_cli(face_table, tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("experiment: g\narch: resnet10t\nimage_size: 32\nbatch_size: 16\nepochs: 1\noptimizer: adam\n"
                      "val_fraction: 0.25\nworkers: 0\nprogress: false\n")
    out = tmp_path / "gender"
    assert cli.main(["gender-splits", "--config", str(config), "--samples", str(face_table),
                     "--percents", "0", "100", "--out", str(out)]) == 0
    table = pd.read_csv(out / "results.csv")
    assert len(table) == (2 * 2 * 2 + 1) * 3  # (growing, fixed) x base x percent + the full set, x (female, male, all)
    counts = table.drop_duplicates(["arm", "base", "percent"]).set_index(["arm", "base", "percent"])["n_train"]
    assert counts[("growing", "female", 0)] == 32 and counts[("growing", "female", 100)] == 64
    assert counts[("fixed", "female", 0)] == 32 and counts[("fixed", "female", 100)] == 32
    selection = table.drop_duplicates(["arm", "base", "percent"]).set_index(["arm", "base", "percent"])["selection"]
    assert selection[("growing", "female", 0)] == "best epoch on grouped validation"  # 16 grids, 2 per emotion: enough
    # half of each gender's faces: some emotions keep one grid, so that run trains without selection
    assert selection[("fixed", "female", 100)] == "none (too few grids: one grid only of Anger, Disgust, Fear)"
    assert (out / "figures" / "accuracy_vs_percent.png").stat().st_size > 10_000
    assert "female" in capsys.readouterr().out


def test_train_cli_and_resume(demo_root, tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(f"experiment: t\ndata_root: {demo_root / 'real'}\nmax_train_samples: 64\nmax_val_samples: 32\n"
                      "arch: resnet10t\nimage_size: 32\nbatch_size: 16\nepochs: 1\noptimizer: sam\nworkers: 0\nprogress: false\n")
    assert cli.main(["train", "--config", str(config), "--out", str(tmp_path / "run"), "--set", "lr=3e-4"]) == 0
    assert "selection split (10% of train) accuracy" in capsys.readouterr().out
    assert "lr: 0.0003" in (tmp_path / "run" / "config.yaml").read_text()
    assert cli.main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "not empty" in capsys.readouterr().err
    assert cli.main(["train", "--resume", str(tmp_path / "run")]) == 0  # nothing left to do: finishes at once
