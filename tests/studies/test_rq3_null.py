"""RQ3 beside its null arm (real faces through the grid path), every grid for models that never saw synthetic faces,
and the tests again on the faces whose label a person confirmed."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import pattern_image
from gridkit import Grey, chapter_loop_inputs
from scipy import stats

from fercore.book import Chapter
from fercore.core.present import present
from fercore.explain.cam import CamLayer, CamReport
from fercore.faces.regions import REGIONS
from fercore.inference import Inference, InferenceCache
from fercore.studies import Arms, Study, data, grid_sets, labelcheck, rq3, rq3_null, rq3_tests
from fercore.studies.regimes import CONTROL, FINETUNED, REAL

EMOTIONS = ("Happiness", "Sadness")


def three_arms(rng: np.random.Generator, *, grids: int = 6, faces: int = 24, synthetic_mouth: float = 0.0,
               null_mouth: float = 0.0, grid_sd: float = 0.03) -> pd.DataFrame:
    """A cam_report-like table: real faces (each its own group), synthetic and null faces in ``grids`` grids per
    emotion with a grid offset on the mouth share (``grid_sd``); the synthetic / null faces put ``synthetic_mouth`` /
    ``null_mouth`` more share on the mouth in Happiness."""
    mouth = REGIONS.index("mouth")
    rows = []
    for emotion in EMOTIONS:
        for domain, extra in (("real", 0.0), ("synthetic", synthetic_mouth), (grid_sets.NULL, null_mouth)):
            offsets = rng.normal(0, grid_sd, grids)
            for i in range(faces):
                share = rng.dirichlet(np.ones(len(REGIONS)) * 4)
                if domain != "real":
                    share[mouth] = max(share[mouth] + offsets[i % grids] + (extra if emotion == "Happiness" else 0.0), 1e-3)
                    share = share / share.sum()
                group = f"{domain}-{emotion}-{i if domain == 'real' else i % grids}"
                rows.append({"path": f"/s/{group}-{i}.png", "domain": domain, "emotion": emotion, "group": group, "excluded": "",
                             "correct": i % 2 == 0, **dict(zip(REGIONS, share, strict=True))})
    return pd.DataFrame(rows)


def region_study(table: pd.DataFrame, *, arm: str = "raw", regime: str = REAL, grids: str = grid_sets.ALL_GRIDS,
                 null: bool = True) -> rq3.RegionStudy:
    report = CamReport(table, CamLayer("layer4", "gradcam", 2, 32.0), CamLayer("layer1", "layercam", 16, 4.0), True, 6.0, 64, {}, [])
    tests = rq3.compare_emotions(table, real="real", emotions=list(EMOTIONS))
    extra = (rq3.null_tests(table, real="real", emotions=list(EMOTIONS)), rq3.excess_tests(table, emotions=list(EMOTIONS))) if null else (None, None)
    return rq3.RegionStudy("B0", regime, "fer", arm, report, tests, "real", grids, *extra)


def test_excess_is_synthetic_minus_null_on_grid_means_both_sides_clustered():
    """The excess is the mean of the synthetic grid means minus that of the null grid means, Welch's t on the grid
    means with Hsu's df (min(grids) - 1), the same as scipy's Welch statistic; the grids of each side are counted."""
    table = three_arms(np.random.default_rng(3), grids=4, synthetic_mouth=0.1)
    excess = rq3.excess_tests(table, emotions=list(EMOTIONS)).set_index(["emotion", "region"])
    row = excess.loc[("Happiness", "mouth")]
    part = table[table["emotion"] == "Happiness"]
    syn = part[part["domain"] == "synthetic"].groupby("group")["mouth"].mean()
    nul = part[part["domain"] == grid_sets.NULL].groupby("group")["mouth"].mean()
    welch = stats.ttest_ind(syn, nul, equal_var=False)
    assert row["difference"] == pytest.approx(syn.mean() - nul.mean()) and row["mean_null"] == pytest.approx(nul.mean())
    assert row["df"] == 3.0 and row["p_value"] == pytest.approx(2 * stats.t.sf(abs(welch.statistic), 3))
    assert (row["grids_synthetic"], row["grids_null"], row["n_synthetic"], row["n_null"]) == (4, 4, 24, 24)
    assert list(excess.reset_index().columns) == rq3_tests.EXCESS_COLUMNS


def test_a_null_identical_to_synthetic_gives_no_excess_and_a_planted_one_is_found():
    """Seeded: synthetic and null faces drawn alike (both shifted from real on the mouth by the grid path) give an
    excess whose interval holds 0 for every pair (no Holm p < 0.05) while real - synthetic and real - null both differ;
    a planted synthetic-only shift of 15 points on the mouth is detected as an excess of about +15 points."""
    same = three_arms(np.random.default_rng(0), synthetic_mouth=0.15, null_mouth=0.15)
    s = region_study(same)
    tested = s.excess[s.excess["p_value"].notna()]
    assert len(tested) == 2 * len(REGIONS) and (tested["p_holm"] >= 0.05).all()
    mouth = tested.set_index(["emotion", "region"]).loc[("Happiness", "mouth")]
    assert mouth["low"] < 0 < mouth["high"]
    covered = [rq3.excess_tests(three_arms(np.random.default_rng(seed), synthetic_mouth=0.15, null_mouth=0.15), emotions=["Happiness"])
               .set_index("region").loc["mouth", ["low", "high"]].prod() < 0 for seed in range(1, 11)]
    assert np.mean(covered) >= 0.8  # 95 % nominal, over 10 seeded data sets
    assert s.tests.set_index(["emotion", "region"]).loc[("Happiness", "mouth"), "p_holm"] < 0.05
    assert s.null_tests.set_index(["emotion", "region"]).loc[("Happiness", "mouth"), "p_holm"] < 0.05
    planted = region_study(three_arms(np.random.default_rng(0), synthetic_mouth=0.15))
    found = planted.excess.set_index(["emotion", "region"]).loc[("Happiness", "mouth")]
    assert found["p_holm"] < 0.05 and 0.10 < found["difference"] < 0.20 and found["low"] > 0
    assert (planted.null_tests["p_holm"] >= 0.05).all()  # the null arm alone does not differ from real
    lines = rq3_null.findings([planted])
    assert len(lines) == 1 and "null arm, mouth in Happiness: region share excess over the null arm (synthetic - null, Holm p) +" in lines[0]
    assert "Holm-family simultaneous 95 % interval" in lines[0] and "significant and positive" in lines[0]


def test_null_table_fits_the_page_and_an_arm_that_is_off_shows_its_reason(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    on = region_study(three_arms(rng, synthetic_mouth=0.15))
    table = rq3_null.null_table([on, region_study(three_arms(rng), arm="matched")])
    shown = present(table)
    assert len(shown.columns) <= 10 and table.loc[("B0", REAL, "fer", "raw"), "where"] == "mouth, Happiness"
    assert table.loc[("B0", REAL, "fer", "raw"), "sig_excess"] >= 1 and table["synthetic grids"].tolist() == [grid_sets.ALL_GRIDS] * 2
    chapter = Chapter(tmp_path, "rq3", show=False)
    notes: list[str] = []
    monkeypatch.setattr(chapter, "note", notes.append)
    arm = SimpleNamespace(faces=pd.DataFrame({"path": ["a.png", "b.png"], "source": ["n0", "n1"]}), reason="", grids=2)
    assert rq3_null.show_null(chapter, [on], arm) is not None and (tmp_path / "rq3" / "tables" / "null_arm.csv").is_file()
    assert notes[-1].startswith("The null arm holds 2 real faces") and "2 grids" in notes[-1]
    off = SimpleNamespace(faces=None, reason="no real faces outside what the models saw: set aside a split", grids=0)
    chapter = Chapter(tmp_path / "off", "rq3", show=False)
    monkeypatch.setattr(chapter, "note", notes.append)
    assert rq3_null.show_null(chapter, [region_study(three_arms(rng), null=False)], off) is None
    assert "The null arm is off in this run: no real faces outside what the models saw: set aside a split." in notes[-1]
    assert not (tmp_path / "off" / "rq3" / "tables").exists() and rq3_null.findings([region_study(three_arms(rng), null=False)]) == []
    sentence = rq3_null.glue_values([on, region_study(three_arms(rng), arm="matched")])["rq3_null_sentence"]
    assert "0 of 2 model, regime, real-set and arm combinations differ between real and null faces" in sentence
    assert "and 1 of 2 show an excess of the synthetic over the null faces" in sentence
    assert "did not run" in rq3_null.glue_values([region_study(three_arms(rng), null=False)])["rq3_null_sentence"]


def test_tables_name_the_grids_each_row_used():
    table = three_arms(np.random.default_rng(2))
    real = region_study(table, regime=REAL, grids=grid_sets.ALL_GRIDS)
    tuned = region_study(table, regime=FINETUNED, grids=grid_sets.TEST_GRIDS)
    summary = rq3.summary_table([real, tuned])
    assert summary["grids"].tolist() == ["test + train: Happiness 6, Sadness 6", "test: Happiness 6, Sadness 6"]
    landmarks = rq3.landmark_table([real, tuned])
    assert set(landmarks.index.get_level_values("synthetic grids")) == {grid_sets.ALL_GRIDS, grid_sets.TEST_GRIDS}
    values = rq3.glue_values([real, tuned])
    assert values["rq3_landmark_rate_fer_raw_null_arm"] == 1.0 and values["rq3_landmark_rate_fer_raw_synthetic_all_grids"] == 1.0
    exclusions = present(rq3.exclusion_table([real, tuned]))
    assert "used, null arm" in exclusions.columns and len(exclusions.columns) <= 10
    without = present(rq3.exclusion_table([region_study(table, null=False)]))  # no study ran the null arm: no null columns
    assert list(without.columns)[-4:] == ["used, real", "zero maps, real", "used, synthetic", "zero maps, synthetic"]
    assert not any("null" in c for c in without.columns)


def test_synthetic_grids_give_every_grid_to_models_that_never_saw_synthetic_faces(tmp_path):
    """The pooled set RQ1 scores (train and test) for the models trained on real and the real-faces control, the test
    split as RQ2 scores it for the others, one cached pass each; with only the test split scored, the test grids for all."""
    root = tmp_path / "synthetic"
    for split, n in (("test", 4), ("train", 3)):
        for i in range(n):
            path = root / split / "happiness" / f"{split}{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            pattern_image(24, 24, seed=10 * n + i).save(path)
    study = Study(Chapter(tmp_path / "run", "rq3", show=False), {}, {}, str(root), InferenceCache(tmp_path / "inference"))
    pooled = data.test_sets({}, root, synthetic_split=["train", "test"])
    grids = grid_sets.study_grids(study, pooled)
    assert grids.used(REAL) == grids.used(CONTROL) == grid_sets.ALL_GRIDS and grids.used(FINETUNED) == grid_sets.TEST_GRIDS
    assert len(grids.faces(REAL)) == 7 and set(grids.faces(FINETUNED)["split"]) == {"test"} and len(grids.faces(FINETUNED)) == 4
    assert grids.faces(FINETUNED).equals(data.test_sets({}, root)["synthetic"])  # the very sample table RQ2 scores: its cached pass
    assert "synthetic test" in study.chapter.provenance["samples"]
    only_test = grid_sets.study_grids(study, data.test_sets({}, root))
    assert only_test.every is None and only_test.used(REAL) == grid_sets.TEST_GRIDS
    calls = []

    def run(model, samples):
        calls.append(sorted(samples["split"]))
        n = len(samples)
        return Inference(list(samples["path"]), np.zeros((n, 8)), np.zeros((n, 2)), [""] * n, None, ("a",), False)

    assert len(grids.inference(run, None, REAL).paths) == 7 and len(grids.inference(run, None, FINETUNED).paths) == 4
    assert calls == [["test"] * 4 + ["train"] * 3, ["test"] * 4]  # one pass each, the same tables as RQ1's and RQ2's


def test_confirmed_faces_side_by_side(tmp_path):
    """A sheet that holds the synthetic faces of grids 0-3 only (as a sheet of the test split beside every grid scored),
    on which the person confirmed grids 0-2: the tests are re-run on the sheet's faces (all kept) and on the confirmed
    ones (real and null faces unchanged), side by side."""
    table = three_arms(np.random.default_rng(4), synthetic_mouth=0.2)
    s = region_study(table)
    synthetic = table[table["domain"] == "synthetic"]
    synthetic = synthetic[synthetic["group"].str[-1].astype(int) < 4]
    joined = pd.DataFrame({"path": synthetic["path"], "source": synthetic["group"], "prompt_emotion": synthetic["emotion"],
                           "confirmed": synthetic["group"].str[-1].astype(int) < 3, "usable": True})
    check = labelcheck.LabelCheck(joined, str(tmp_path / "label_sheet.csv"))
    every, confirmed = rq3_null.confirmed_study(s, check)
    assert (every.faces, confirmed.faces) == (32, 24) and set(every.tests["grids"].dropna()) == {4}
    assert set(confirmed.tests["grids"].dropna()) == {3} and set(confirmed.excess["grids_null"].dropna()) == {6}
    side = rq3_null.confirmed_table([s], check)
    row = side.loc[("B0", REAL, "fer", "raw")]
    assert (row["n_all"], row["n_confirmed"]) == (32, 24) and row["sig_all"] >= 1 and len(present(side).columns) <= 10
    chapter = Chapter(tmp_path, "rq3", show=False)
    assert rq3_null.show_confirmed(chapter, [s], check) is not None and (tmp_path / "rq3" / "tables" / "confirmed_faces.csv").is_file()
    assert rq3_null.show_confirmed(chapter, [s], labelcheck.LabelCheck()) is None


def test_explain_regimes_explains_null_faces_beside_the_grids_each_regime_uses(tmp_path, tiny_model):
    """The chapter's loop on small images through a tiny network: every study explains the real, synthetic and null
    faces (``per_class`` of each per emotion; the real-trained model's synthetic faces from every grid), matched arm
    included, and says which grids it used."""
    inputs = chapter_loop_inputs(tmp_path, "rq3", EMOTIONS, per=3, size=48)
    real, test, train, sets, study = inputs.real, inputs.test, inputs.train, inputs.sets, inputs.study
    null = SimpleNamespace(faces=inputs.null, reason="", grids=4)

    results, _ = rq3.explain_regimes(study, sets, Arms({"fer": Grey()}, {}), {("m", REAL): tiny_model, ("m", FINETUNED): tiny_model},
                                     per_class=2, grids=grid_sets.SyntheticGrids(test, pd.concat([test, train], ignore_index=True)), null=null,
                                     progress=False)
    assert [(s.regime, s.arm, s.grids) for s in results] == [(REAL, "raw", grid_sets.ALL_GRIDS), (REAL, "matched", grid_sets.ALL_GRIDS),
                                                             (FINETUNED, "raw", grid_sets.TEST_GRIDS), (FINETUNED, "matched", grid_sets.TEST_GRIDS)]
    for s in results:
        counts = s.report.table.groupby("domain").size().to_dict()
        assert counts == {"real": 4, "synthetic": 4, grid_sets.NULL: 4} and s.null_tests is not None and s.excess is not None
    explained = set(results[0].report.table.loc[results[0].report.table["domain"] == "synthetic", "path"])
    assert explained <= set(test["path"]) | set(train["path"]) and not explained <= set(test["path"])  # every grid, train's too
    assert set(results[2].report.table.loc[results[2].report.table["domain"] == "synthetic", "path"]) <= set(test["path"])
    assert (tmp_path / "run" / "rq3" / "cam" / "fer" / "matched" / "m" / "trained_on_real" / "region_excess.csv").is_file()


def test_null_faces_are_matched_from_their_own_format_where_the_arms_measured_it():
    synthetic, own = SimpleNamespace(name="synthetic to fer"), SimpleNamespace(name="null to fer")
    arms = Arms({"fer": synthetic}, {})
    assert grid_sets.null_transform(arms, "fer", "raw") is None and grid_sets.null_transform(arms, "fer", "matched") is synthetic
    measured = SimpleNamespace(null_transforms={"fer": own}, transform=arms.transform)  # Arms with the null set measured
    assert grid_sets.null_transform(measured, "fer", "matched") is own and grid_sets.null_transform(measured, "fer", "raw") is None
    built = SimpleNamespace(faces=pd.DataFrame({"path": ["a"], "source": ["n"]}), reason="", grids=1, line=lambda: "Null arm: 1 face.")
    assert grid_sets.null_line(built) == "Null arm: 1 face."  # the arm's own line, as every chapter of the run prints it
