"""RQ2 as a procedure: stratified grid draws, the control on unseen real faces (or its refusal), the replicate-mean
effects and their table, on constructed data with timm's 0.1 M-parameter test EfficientNet at 32 px."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import pattern_image

from fercore.core.present import KEY
from fercore.data import discover
from fercore.models import create_model, save_model
from fercore.studies import open_study
from fercore.studies import rq2_replicates as reps
from fercore.studies.data import TestSets
from fercore.studies.regimes import CONTROL, FINETUNED, Recipe, regime_dir, replicate_dir

EMOTIONS = ("angry", "happy", "sad")


def grid_faces(grids_per_stratum: int = 4, faces: int = 3) -> pd.DataFrame:
    rows = []
    for e, emotion in enumerate(EMOTIONS):
        for gender in ("female", "male"):
            for g in range(grids_per_stratum):
                rows += [{"path": f"{emotion}-{gender}-{g}-{i}.png", "label": e, "emotion": emotion.capitalize(), "gender": gender,
                          "source": f"{emotion}-{gender}-{g}.png"} for i in range(faces)]
    return pd.DataFrame(rows)


def test_a_draw_keeps_every_stratum_is_seeded_and_takes_whole_grids():
    faces = grid_faces()
    draws = [reps.draw_grids(faces, 0.5, seed) for seed in (0, 0, 1, 2, 3)]
    pd.testing.assert_frame_equal(draws[0], draws[1])
    assert len({tuple(sorted(d["source"].unique())) for d in draws[1:]}) > 1  # seeds differ
    for draw in draws:
        per_stratum = draw.groupby(["emotion", "gender"])["source"].nunique()
        assert len(per_stratum) == 6 and (per_stratum == 2).all()  # half of 4 grids in each of the 6 strata
        assert (draw.groupby("source").size() == 3).all()  # whole grids
    thin = reps.draw_grids(grid_faces(1), 0.2, 0)
    assert thin.groupby(["emotion", "gender"])["source"].nunique().tolist() == [1] * 6  # at least one grid per stratum
    pd.testing.assert_frame_equal(reps.draw_grids(faces, 1.0, 5), faces)
    with pytest.raises(ValueError, match="replicate_share"):
        reps.draw_grids(faces, 0.0, 0)


def test_the_control_takes_as_many_unseen_real_faces_per_emotion():
    unseen = pd.DataFrame({"path": [f"r{i}.png" for i in range(20)], "emotion": ["Angry"] * 10 + ["Happy"] * 8 + ["Sad"] * 2})
    like = grid_faces(1)  # 6 faces per emotion
    real, notes = reps.control_faces(unseen, like, 0)
    assert real["emotion"].value_counts().to_dict() == {"Angry": 6, "Happy": 6, "Sad": 2}
    assert notes == ["Sad: 2 unseen real faces for 6 synthetic ones"]
    assert list(reps.control_faces(unseen, like, 1)[0]["path"]) != list(real["path"])


def effect(arm, runs=3, change=0.02, low=-0.01, high=0.05):
    return reps.ReplicateEffect("B0", "fer", arm, runs, 100, change, low, high, 0.2, 4.0, 2.78, 0.01, 0.01, runs > 1)


def test_the_effect_table_fits_the_page_and_the_findings_say_which_helped_more():
    rows = [effect(FINETUNED), effect(CONTROL, change=-0.05, low=-0.08, high=-0.02), effect(reps.DIFFERENCE, change=0.07, low=0.03, high=0.11)]
    table = reps.effect_table(rows)
    shown = table.attrs[KEY]["show"]
    assert len(table.index.names) + len(shown) <= 10 and "bal. acc. change" in shown
    (line,) = reps.effect_findings(rows)
    assert "synthetic faces help more than real ones" in line and "+7.0 points" in line
    assert "4 degrees" not in reps.width_line(rows) and "2 degrees of freedom" in reps.width_line(rows)
    assert "ran once" in reps.width_line([effect(FINETUNED, runs=1)])
    from fercore.analysis import equivalence

    wide = effect(reps.DIFFERENCE, change=0.01, low=-0.05, high=0.07)  # holds 0, reaches past ±5 points: no verdict
    (line,) = reps.effect_findings(rows[:2] + [wide])
    assert "not distinguishable at this design" in line and "no difference" not in line
    narrow = effect(reps.DIFFERENCE, change=0.0, low=-0.01, high=0.01)  # inside ±5 points: equivalent by the TOST
    (line,) = reps.effect_findings(rows[:2] + [narrow])
    p_eq = equivalence(0.0, 0.02 / (2 * 2.78), 4.0, 0.05)
    assert p_eq < 0.05 and f"help equally within ±5 points (TOST p = {p_eq:.3g})" in line
    (line,) = reps.effect_findings(rows[:2] + [narrow], margin=0.5)  # a margin the interval does not fit in
    assert "not distinguishable" in line


def _write(root, split, per_class, start):
    for e, emotion in enumerate(EMOTIONS):
        (root / split / emotion).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pattern_image(32, 32, seed=start + 100 * e + i).save(root / split / emotion / f"{i}.png")


@pytest.fixture
def constructed(tmp_path):
    real = tmp_path / "real"
    for split, n, start in (("train", 4, 0), ("test", 4, 1000), ("holdout", 6, 2000)):
        _write(real, split, n, start)
    synthetic = tmp_path / "synthetic"
    _write(synthetic, "train", 8, 3000)
    _write(synthetic, "test", 2, 4000)
    torch.manual_seed(0)
    save_model(tmp_path / "m.pt", create_model("test_efficientnet"), arch="test_efficientnet", image_size=32)
    faces = discover(synthetic, ["train"])
    faces["gender"] = np.where(faces.groupby("emotion").cumcount() < 4, "female", "male")  # a grid holds one gender
    faces["source"] = [f"{e}-{i // 2}" for e, i in zip(faces["emotion"], faces.groupby("emotion").cumcount())]
    return tmp_path, faces


def _study(tmp_path, seen):
    study, _ = open_study("rq2", output_dir=str(tmp_path / "run"), real_roots={"r": str(tmp_path / "real")},
                          synthetic_root=str(tmp_path / "synthetic"), models={"m": {"weights": str(tmp_path / "m.pt"), **seen}},
                          device="cpu", workers=0, progress=False, batch_size=16)
    return study, study.models()


@pytest.mark.slow  # about 40 s on 2 busy cores: six short training runs
def test_replicates_and_the_control_train_score_and_resume(constructed):
    tmp_path, faces = constructed
    study, models = _study(tmp_path, {"seen": ["r:train"]})
    recipe = Recipe(1, 0, 1e-3, None, "adam", batch_size=8)
    trained = reps.train_replicates(study, ["m"], models, faces, recipe, replicates=2, share=0.5, seed=0, workers=0, device="cpu",
                                    progress=False)
    assert trained.skipped == "" and trained.faces == [12, 12]  # 2 of 4 grids (2 faces each) per emotion x gender stratum
    assert trained.runs[("m", FINETUNED)] == [regime_dir(study.run_dir, "m", FINETUNED) / "checkpoint.pt",
                                             replicate_dir(study.run_dir, "m", FINETUNED, 1) / "checkpoint.pt"]
    assert all(p.is_file() for paths in trained.runs.values() for p in paths) and len(trained.runs[("m", CONTROL)]) == 2
    test = discover(tmp_path / "real", ["test"]).assign(domain="real", dataset="r")
    rows = reps.score_replicates(study, TestSets({"r": test}, {"r": ["Angry", "Happy", "Sad"]}), models, trained)
    assert [r.arm for r in rows] == [FINETUNED, CONTROL, reps.DIFFERENCE] and all(r.runs == 2 and r.n == 12 for r in rows)
    assert all(r.low <= r.change <= r.high for r in rows if np.isfinite(r.low))
    again = reps.train_replicates(study, ["m"], models, faces, recipe, replicates=2, share=0.5, seed=0, workers=0, device="cpu",
                                  progress=False)
    assert again.runs == trained.runs  # finished runs are reused


def test_without_unseen_real_faces_the_control_is_skipped_saying_what_to_provide(constructed):
    tmp_path, faces = constructed
    recipe = Recipe(1, 0, 1e-3, None, "adam", batch_size=8)
    study, models = _study(tmp_path, {})  # a file that does not say what it saw
    trained = reps.train_replicates(study, [], models, faces, recipe)  # no model trained: the refusal alone
    assert trained.runs == {} and "do(es) not record which real faces it saw" in trained.skipped
    assert "declare it in the parameter file" in trained.skipped
    study, models = _study(tmp_path, {"seen": ["r:train", "r:holdout"]})  # every split but the test split seen
    trained = reps.train_replicates(study, [], models, faces, recipe)
    assert "Set a split aside before training" in trained.skipped and "r/holdout (m)" in trained.skipped
    assert reps.train_replicates(study, [], models, faces, recipe, control=False).skipped == "the control parameter is off"


def test_replicated_cv_and_gender_study_pool_means_and_the_spread_between_runs():
    from fercore.studies import gender, rq2

    def cv(acc):
        return rq2.CrossValidation("B0", 2, "source", (rq2.FoldScore(0, 10, 2, 5, acc, acc),), acc, 0.1, acc, 0.1)

    pooled = rq2.pooled_cv([cv(0.5), cv(0.7), cv(0.6)])
    assert pooled.accuracy_mean == pytest.approx(0.6) and pooled.replicate_sd == pytest.approx(0.1) and pooled.replicates == 3
    assert len(pooled.folds) == 3 and "ran 3 times" in rq2.cv_notes([pooled])[-1]
    assert "ran once" in rq2.cv_notes([cv(0.5)])[-1]

    def point(acc, arm="full", percent=float("nan")):
        return gender.GenderPoint("all", percent, 20, "female", 6, acc, acc, arm)

    runs = [[point(0.5), point(0.2, "growing", 0.0)], [point(0.7), point(0.4, "growing", 0.0)]]
    full, growing = gender.pooled(runs)
    assert (full.accuracy, growing.accuracy) == pytest.approx((0.6, 0.3)) and full.replicates == 2
    assert full.accuracy_sd == pytest.approx(np.std([0.5, 0.7], ddof=1))
    shown = gender.table(gender.pooled(runs)).attrs[KEY]["show"]
    assert "accuracy sd between replicates" in shown and len(shown) <= 10


def test_rq2_shows_the_trained_regimes_on_confirmed_faces_only_with_a_sheet(tmp_path):
    from test_labelcheck import joined_table

    from fercore.book import Chapter
    from fercore.core.labels import CLASSES
    from fercore.studies import labelcheck, rq2
    from fercore.studies.regimes import SYNTHETIC_ONLY
    from fercore.studies.scoring import SetScore

    joined = joined_table()
    y = [CLASSES.index(e) for e in joined["prompt_emotion"]]
    preds = pd.DataFrame({"path": joined["path"], "label": [CLASSES[i] for i in y], "pred": [CLASSES[i] for i in y],
                          **{f"p_{c}": 0.0 for c in CLASSES}, "error": ""})
    after = {("m", "synthetic"): SetScore("m", FINETUNED, "synthetic", list(CLASSES), preds, {})}
    only = {("m", "synthetic"): SetScore("m", SYNTHETIC_ONLY, "synthetic", list(CLASSES), preds, {})}
    chapter = Chapter(tmp_path / "run", "rq2", show=False)
    rq2.show_confirmed(chapter, labelcheck.LabelCheck(), after, only)  # unchecked: nothing (the opening line says so)
    assert not (tmp_path / "run" / "rq2" / "tables" / "confirmed_faces.csv").exists()
    rq2.show_confirmed(chapter, labelcheck.LabelCheck(joined, "sheet.csv"), after, only)
    table = pd.read_csv(tmp_path / "run" / "rq2" / "tables" / "confirmed_faces.csv")
    assert table["model"].tolist() == [f"m · {FINETUNED}", f"m · {SYNTHETIC_ONLY}"]
    assert (table["n (all kept)"] == 24).all() and (table["n (confirmed)"] == 20).all()
