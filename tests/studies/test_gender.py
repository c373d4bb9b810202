"""The gender study: the fixed-size arm, the full-set direction, and the thesis plan's scale, where
the inner validation split has too few grids and the runs train without selection."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from fercore import training as T
from fercore.analysis.plots import gender_splits
from fercore.data import (
    discover,
    fixed_size_training_sets,
    gender_share,
    gender_training_sets,
    grouped_split,
    selection_split,
)
from fercore.data.splits import selection_split_problem
from fercore.studies import gender
from fercore.training.experiments import run_gender_splits

PERCENTS = (0, 25, 50, 75, 100)


def face_rows(n_female: int = 103, n_male: int = 77) -> pd.DataFrame:
    rows = [{"path": f"{g}{i:03d}", "label": i % 8, "gender": g} for g, n in (("female", n_female), ("male", n_male)) for i in range(n)]
    return pd.DataFrame(rows)


def test_fixed_size_arm_keeps_size_and_the_growing_arms_gender_mix():
    samples = face_rows()
    growing = gender_training_sets(samples, PERCENTS, seed=1)
    fixed = fixed_size_training_sets(samples, PERCENTS, seed=1)
    for base, other, n_base, n_other in (("female", "male", 103, 77), ("male", "female", 77, 103)):
        sizes = {len(fixed[(base, p)]) for p in PERCENTS}
        assert sizes == {n_base}  # the smallest growing set (p = 0): all of the base gender
        assert set(fixed[(base, 0)].path) == set(growing[(base, 0)].path)
        for p in PERCENTS:
            added = round(p / 100 * n_other)
            wanted = n_base * added / (n_base + added)  # the growing set's share, at the fixed size
            got = int((fixed[(base, p)].gender == other).sum())
            assert abs(got - wanted) <= 0.5, (base, p, got, wanted)
            assert gender_share(fixed[(base, p)], other) == pytest.approx(gender_share(growing[(base, p)], other), abs=100 / n_base)
        for lo, hi in zip(PERCENTS, PERCENTS[1:]):  # nested: the other gender's faces grow, the base's shrink
            lower, higher = fixed[(base, lo)], fixed[(base, hi)]
            assert set(lower.query("gender == @other").path) <= set(higher.query("gender == @other").path)
            assert set(higher.query("gender == @base").path) <= set(lower.query("gender == @base").path)
            assert set(higher.query("gender == @other").path) <= set(growing[(base, hi)].path)
    # Stratified by emotion: at female 100 (44 men, 59 women of 103) every emotion within 1 face of its share.
    mix = fixed[("female", 100)]
    assert (mix.gender == "male").sum() == 44
    for g, n_all in (("male", 77), ("female", 103)):
        part = mix[mix.gender == g]
        counts = part.label.value_counts().reindex(range(8), fill_value=0)
        expected = samples[samples.gender == g].label.value_counts().sort_index() * len(part) / n_all
        assert (counts - expected).abs().max() <= 1.0, (g, counts.tolist(), expected.round(2).tolist())


def thesis_scale_table(demo_root) -> pd.DataFrame:
    """30 grids, each one (emotion, gender), 3 faces each: grid g is of gender g % 2 and emotion
    (g // 2) % 8. Grids 0-11 train (emotions 0-5, one grid per emotion and gender), 12-29 test."""
    faces = discover(demo_root / "real", ["train"]).sort_values("path")
    rows, used = [], {label: 0 for label in range(8)}
    for grid in range(30):
        label, gender_name = (grid // 2) % 8, ("female", "male")[grid % 2]
        for face in faces[faces.label == label].iloc[used[label]: used[label] + 3].itertuples():
            rows.append({"path": face.path, "label": label, "emotion": face.emotion, "gender": gender_name,
                         "source": f"grid{grid:02d}", "split": "train" if grid < 12 else "test"})
        used[label] += 3
    return pd.DataFrame(rows)


def test_selection_split_rule_in_numbers(demo_root):
    table = thesis_scale_table(demo_root)
    train = table[table.split == "train"].reset_index(drop=True)
    women = train[train.gender == "female"].reset_index(drop=True)  # 6 grids of 6 emotions
    with pytest.raises(ValueError, match="7 folds need at least 7 grids"):
        grouped_split(women, 0.15)  # what stopped RQ2 before (then sklearn's "n_splits=7 cannot be greater ...")
    assert selection_split_problem(women, 0.15) == "6 grids; a 1/7 validation split needs at least 7"
    kept, val, why = selection_split(women, 0.15)
    assert len(kept) == 18 and len(val) == 0 and why.startswith("6 grids")
    # 12 grids pass the count, but stratified folds need 7 faces of a class
    assert selection_split_problem(train, 0.15) == "6 faces at most per class; stratified 1/7 folds need 7"
    one_grid = train[~((train.gender == "male") & (train.label == 0))]  # Anger of women only
    assert selection_split_problem(pd.concat([one_grid] * 3), 0.15) == "one grid only of Anger"
    # Enough grids (4 per emotion, 32 grids): a grouped split, no grid on both sides.
    many = pd.DataFrame({"path": [f"f{i}" for i in range(96)], "label": [(i // 3) % 8 for i in range(96)],
                         "source": [f"g{i // 3}" for i in range(96)]})
    kept, val, why = selection_split(many, 0.15)
    assert why is None and len(kept) + len(val) == 96 and 0 < len(val) < 96
    assert set(kept.source).isdisjoint(val.source)
    # Single faces (no grid column): stratified, needs a face of every class on both sides.
    assert selection_split_problem(many.drop(columns="source").head(40), 0.1) == (
        "40 faces of 8 classes; a stratified 10% split needs one of each class on both sides")
    assert selection_split_problem(many.drop(columns="source"), 0.1) is None


def test_training_without_validation_keeps_the_final_epoch(demo_root, tmp_path):
    faces = discover(demo_root / "real", ["train"]).groupby("label").head(4).reset_index(drop=True)
    config = T.TrainConfig(experiment="t", arch="resnet10t", image_size=32, batch_size=16, epochs=2, lr=1e-3,
                           optimizer="adam", workers=0, progress=False)
    for name, val in (("none", None), ("empty", faces.iloc[:0])):
        result = T.train(config, out=tmp_path / name, samples=(faces, val, None))
        assert result.best_epoch == 2 and len(result.history) == 2
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())
        assert metrics["selection"].startswith("none") and metrics["val"] is None and metrics["best_epoch"] == 2
        assert not any(c.startswith("val_") for c in pd.read_csv(tmp_path / name / "log.csv").columns)
        kept = torch.load(tmp_path / name / "checkpoint.pt", weights_only=True)["state_dict"]
        final = torch.load(tmp_path / name / "last.pt", weights_only=True)["model"]
        assert all(torch.equal(kept[k], final[k]) for k in final)  # the final epoch's weights
    with_val = T.train(config, out=tmp_path / "selected", samples=(faces.iloc[8:], faces.iloc[:8], None))
    assert json.loads((tmp_path / "selected" / "metrics.json").read_text())["selection"] == "best validation accuracy"
    assert "accuracy" in with_val.best


def test_gender_study_at_thesis_scale_runs_without_selection(demo_root, tmp_path):
    table = thesis_scale_table(demo_root)
    train, test = (table[table.split == s].reset_index(drop=True) for s in ("train", "test"))
    config = T.TrainConfig(experiment="g", arch="resnet10t", image_size=32, batch_size=16, epochs=1, lr=1e-3,
                           optimizer="adam", val_fraction=0.15, workers=0, progress=False)
    results = run_gender_splits(config, train, test, [0, 100], out=tmp_path / "gender")
    assert len(results) == (2 * 2 + 2 * 2 + 1) * 3  # (growing + fixed) x base x percent + full, x 3 test parts
    sets = results.drop_duplicates(["arm", "base", "percent"]).set_index(["arm", "base"])
    assert sets.query("percent == 0").loc[("growing", "female"), "n_train"] == 18
    assert sets.loc[("growing", "female")].set_index("percent").loc[100.0, "n_train"] == 36
    fixed = sets.loc[("fixed", "female")].set_index("percent")
    assert fixed["n_train"].tolist() == [18, 18] and fixed["share"].tolist() == [0.0, 50.0]
    full = sets.loc[("full", "all")]
    assert full["n_train"] == 36 and full["share"] == 50.0
    assert (results.selection.str.startswith("none (too few grids")).all() and (results.n_val == 0).all()
    parts = results[results.arm == "full"].set_index("test_on")
    assert parts.loc["female", "n_test"] == 27 and parts.loc["male", "n_test"] == 27 and parts.loc["all", "n_test"] == 54
    # The full set and p = 100 are the same faces: one run; the fixed arm at p = 0 is the growing set;
    # with 18 faces of each gender, both bases' fixed p = 100 sets are the same 9 + 9 faces.
    assert sorted(results.run.unique()) == ["all", "female_fixed_100", "female_plus_0", "male_plus_0"]
    assert set(results.query("arm == 'fixed' and percent == 100").run) == {"female_fixed_100"}
    assert set(results.loc[results.percent == 100].query("arm == 'growing'").run) == {"all"}
    points = gender.run(config, train, test, [0, 100], tmp_path / "gender")  # resumed: nothing trains again
    text = " ".join(gender.findings(points))
    assert "At a constant 18 training faces (female base), raising the male share from 0% to 50%" in text
    assert "Trained on all 36 training faces:" in text
    assert "9 of 9 gender-study training sets had too few grids" in text  # 4 runs, none selected
    glued = gender.glue_values(points)
    assert glued["rq2_gender_fixed_size"] == "18" and glued["rq2_gender_growing_sizes"] == "18-36"
    assert glued["rq2_gender_full_all"] == f"{100 * parts.loc['all', 'accuracy']:.1f}%"
    assert glued["rq2_gender_selection"].startswith("9 of 9 training sets had too few grids")
    assert gender.glue_values([])["rq2_gender_full_female"] == "n/a"
    shown = gender.table(points)
    assert {"arm", "selection", "% other in training"} <= set(shown.columns)


def test_gender_study_with_enough_grids_selects(demo_root, tmp_path):
    faces = discover(demo_root / "real").groupby(["split", "label"]).head(8).reset_index(drop=True)
    faces = faces.assign(gender=np.where(np.arange(len(faces)) % 2, "male", "female"),
                         source=[f"{s}{i // 4}" for s, i in zip(faces.split, range(len(faces)), strict=True)])
    train, test = (faces[faces.split == s].reset_index(drop=True) for s in ("train", "test"))
    config = T.TrainConfig(experiment="g", arch="resnet10t", image_size=32, batch_size=16, epochs=1, lr=1e-3,
                           optimizer="adam", val_fraction=0.25, workers=0, progress=False)
    results = run_gender_splits(config, train, test, [0], out=tmp_path / "gender")
    assert (results.selection == "best epoch on grouped validation").all() and (results.n_val > 0).all()
    assert set(results.arm) == {"growing", "fixed", "full"} and results.run.nunique() == 3
    for run in results.run.unique():
        assert json.loads((tmp_path / "gender" / run / "metrics.json").read_text())["selection"] == "best validation accuracy"


def test_gender_figure_shows_both_arms_and_the_full_set():
    rows = []
    for arm, size in (("growing", None), ("fixed", 100)):
        for base in ("female", "male"):
            for share in (0.0, 25.0, 50.0):
                for test_on in ("female", "male", "all"):
                    rows.append({"arm": arm, "base": base, "percent": share, "share": share, "test_on": test_on,
                                 "n_train": size or int(100 + 2 * share), "accuracy": 0.5 + share / 200})
    rows += [{"arm": "full", "base": "all", "percent": np.nan, "share": 50.0, "test_on": t, "n_train": 200, "accuracy": 0.7}
             for t in ("female", "male", "all")]
    fig = gender_splits(pd.DataFrame(rows))
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == 2
    for ax in panels:
        labels = [line.get_label() for line in ax.lines]
        assert len(ax.lines) == 2 * 3 + 3  # two arms x three test parts, three full-set levels
        assert "fixed (100 faces), test male" in labels and "growing (100-200 faces), test all" in labels
        assert "all 200 training faces, test female" in labels
