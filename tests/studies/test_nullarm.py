"""The null arm (issue 30, item 2): real faces composed into grids of one emotion in the synthetic set's layout,
extracted like the synthetic faces, built once per run folder; refused without unseen faces; and RQ1's excess over
it. Fast: small constructed faces, extraction with the synthetic set's recorded options (no detector)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fercore.core.labels import CLASSES
from fercore.core.present import present
from fercore.data import NoUnseenFacesError, face_table
from fercore.grids.compose import emotion_grids
from fercore.studies import nullarm, rq1_null
from fercore.studies.data import TestSets, real_names
from fercore.studies.scoring import SetScore

EMOTIONS = ["Happiness", "Sadness", "Anger"]


def faces(folder: Path, per_emotion: int, emotions=EMOTIONS, split: str = "holdout") -> pd.DataFrame:
    """``per_emotion`` distinct 24 px faces of each emotion under ``folder/<split>/<emotion>/`` as a sample table."""
    rows = []
    for e, emotion in enumerate(emotions):
        (folder / split / emotion.lower()).mkdir(parents=True, exist_ok=True)
        for i in range(per_emotion):
            path = folder / split / emotion.lower() / f"{i:03d}.png"
            rng = np.random.default_rng(1000 * e + i)
            Image.fromarray(rng.integers(40, 220, (24, 24, 3), dtype=np.uint8)).save(path)
            rows.append({"path": str(path), "emotion": emotion, "split": split, "dataset": "real"})
    return pd.DataFrame(rows)


def synthetic_root(folder: Path, grids: dict[str, int], rows: int = 2, cols: int = 3, size: int = 240) -> tuple[Path, pd.DataFrame]:
    """A synthetic extraction folder: manifest.csv with cell boxes of ``rows`` x ``cols`` grids of ``size`` px and the
    options it was extracted with (cell crops, no detector, 32 px faces); and its scored test faces."""
    cells = []
    for emotion, n in grids.items():
        (folder / "test" / emotion.lower()).mkdir(parents=True)
        for g in range(n):
            source = f"/raw/test/{emotion}_{g}.png"  # the grid files are gone: the size comes from the cell boxes
            for r in range(rows):
                for c in range(cols):
                    path = f"test/{emotion.lower()}/{emotion}_{g}_r{r}c{c}.png"
                    Image.fromarray(np.full((8, 8, 3), 10 * g + r + c, np.uint8)).save(folder / path)
                    cells.append({"source": source, "split": "test", "row": r, "col": c, "x1": (c + 1) * size // cols,
                                  "y1": (r + 1) * size // rows, "layout": f"{rows}x{cols}", "emotion": emotion, "kept": True,
                                  "path": path})
    pd.DataFrame(cells).to_csv(folder / "manifest.csv", index=False)
    (folder / ".grids").mkdir()
    (folder / ".grids" / "options.json").write_text(json.dumps({"layout": f"{rows}x{cols}", "detector": "none", "face_size": 32,
                                                                 "crop": "cell", "framing": "", "thresholds": {}}))
    return folder, face_table(folder, "test")


def study(tmp_path: Path, unseen: pd.DataFrame | Exception, synthetic: Path, seed: int = 0) -> SimpleNamespace:
    def unseen_real_faces(models, exclude_splits=("test",)):
        if isinstance(unseen, Exception):
            raise unseen
        return unseen[~unseen["split"].isin(exclude_splits)]
    return SimpleNamespace(run_dir=tmp_path / "run", seed=seed, synthetic_root=str(synthetic), unseen_real_faces=unseen_real_faces)


def test_grids_hold_one_emotion_each_and_never_reuse_a_face(tmp_path):
    table = faces(tmp_path, 14)
    composites, placed = emotion_grids(table, {"Happiness": 2, "Sadness": 1, "Anger": 3}, rows=2, cols=3, size=120, seed=1)
    # Anger has 14 faces: two full grids of 6, not three
    assert sorted(composites) == ["grid_anger_000.png", "grid_anger_001.png", "grid_happiness_000.png", "grid_happiness_001.png",
                                  "grid_sadness_000.png"]
    assert placed.groupby("file")["emotion"].nunique().eq(1).all() and placed.groupby("file").size().eq(6).all()
    assert placed["face"].is_unique and len(placed) == 30
    emotion_of = dict(zip(table["path"], table["emotion"]))
    assert all(emotion_of[f] == e for f, e in zip(placed["face"], placed["emotion"]))
    grid = composites["grid_sadness_000.png"]
    assert grid.image.shape == (120, 120, 3) and (grid.rows, grid.cols) == (2, 3) and grid.kinds == ["face"] * 6


def test_short_emotions_keep_their_grids_with_blank_cells(tmp_path):
    table = faces(tmp_path, 14)
    composites, placed = emotion_grids(table, {"Anger": 3, "Happiness": 1}, rows=2, cols=3, size=120, seed=1, fill_short=True)
    assert placed.groupby("file").size().to_dict() == {"grid_anger_000.png": 5, "grid_anger_001.png": 5, "grid_anger_002.png": 4,
                                                        "grid_happiness_000.png": 6}
    assert placed["face"].is_unique
    for name, grid in composites.items():
        used = placed.loc[placed["file"] == name, "cell"].tolist()
        assert [i for i, kind in enumerate(grid.kinds) if kind == "face"] == used
        assert all(kind == "blank" for i, kind in enumerate(grid.kinds) if i not in used)


def test_the_design_is_read_from_the_synthetic_set(tmp_path):
    root, synthetic = synthetic_root(tmp_path / "syn", {"Happiness": 3, "Sadness": 2, "Anger": 1})
    design = nullarm.synthetic_design(root, synthetic)
    assert (design.rows, design.cols, design.width, design.height) == (2, 3, 240, 240)
    assert design.grids == {"Anger": 1, "Happiness": 3, "Sadness": 2}
    options = design.extract_options()
    assert (options.detector, options.face_size, options.crop) == ("none", 32, "cell")
    assert nullarm.synthetic_design(root, synthetic, n_grids=12).grids == {"Anger": 2, "Happiness": 6, "Sadness": 4}
    # a chapter scoring a few faces of each emotion asks for the same grids: those of the whole split
    assert nullarm.synthetic_design(root, synthetic.groupby("emotion").head(2)).grids == design.grids
    with pytest.raises(ValueError, match="null_grids"):
        nullarm.synthetic_design(root, synthetic, n_grids=0)


@pytest.fixture
def built(tmp_path):
    real = faces(tmp_path / "real", 20)
    root, synthetic = synthetic_root(tmp_path / "syn", {"Happiness": 2, "Sadness": 2, "Anger": 1})
    synthetic = synthetic.groupby("emotion").head(10).reset_index(drop=True)  # scored faces capped like max_per_class
    tested = faces(tmp_path / "real", 4, split="test")  # the real test set the chapter reports
    sets = TestSets({"real": tested.assign(domain="real"), "synthetic": synthetic}, {"real": EMOTIONS, "synthetic": list(CLASSES[:7])})
    s = study(tmp_path, pd.concat([real, tested], ignore_index=True), root)
    return s, sets, nullarm.null_set(s, sets, {}), real


def test_null_set_builds_grids_like_the_synthetic_sets_and_extracts_them(built):
    s, sets, arm, real = built
    (folder,) = (Path(s.run_dir) / "null").iterdir()  # <run_dir>/null/<key>/
    assert arm.built and arm.reason == "" and not arm.reused and arm.folder == str(folder)
    assert arm.grids_per_emotion == {"Anger": 1, "Happiness": 2, "Sadness": 2} and arm.grids == 5
    assert arm.faces_from == "real/holdout" and arm.sources == ("real",)
    assert len(list((folder / "raw" / "test").glob("*.png"))) == 5
    assert {"path", "emotion", "source", "domain", "dataset"} <= set(arm.faces.columns)
    assert (arm.faces["domain"] == "null arm").all() and (arm.faces["dataset"] == "null arm").all()
    # capped at the synthetic set's faces per emotion (10, 10, 6)
    assert arm.faces["emotion"].value_counts().to_dict() == {"Happiness": 10, "Sadness": 10, "Anger": 6}
    assert arm.faces.groupby("source")["emotion"].nunique().eq(1).all()
    assert all(str(p).startswith(str(folder)) and Path(p).is_file() for p in arm.faces["path"])
    assert all(Image.open(p).size == (32, 32) for p in arm.faces["path"][:5])  # the synthetic set's face_size
    used = pd.read_csv(folder / "faces_used.csv")
    assert used["face"].is_unique and set(used["face"]) <= set(real["path"])
    assert not list(folder.parent.glob(".null-partial-*"))
    assert "5 2x3 grids of 240x240 px" in arm.line() and "real/holdout" in arm.line()


def test_a_finished_build_is_reused_another_built_beside_it_and_an_inconsistent_one_refused(built, tmp_path):
    s, sets, arm, real = built
    record = Path(arm.folder) / "build.json"
    stamp = record.stat().st_mtime_ns
    again = nullarm.null_set(s, sets, {})  # another chapter of the run asking for the same null arm
    assert again.reused and again.folder == arm.folder and record.stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(again.faces, arm.faces)
    other = nullarm.null_set(study(tmp_path, s.unseen_real_faces(None, ()), s.synthetic_root, seed=1), sets, {})
    assert not other.reused and other.folder != arm.folder and len(list((Path(s.run_dir) / "null").iterdir())) == 2
    with pytest.raises(nullarm.NullArmError, match="built from other inputs"):  # a folder holding another build
        nullarm.build_null_faces(real, other.design, arm.folder, seed=5)
    next(Path(arm.folder, "faces", "test").rglob("*.png")).unlink()
    with pytest.raises(nullarm.NullArmError, match="face files of the manifest are missing"):
        nullarm.null_set(s, sets, {})
    record.unlink()
    with pytest.raises(nullarm.NullArmError, match="no finished null-arm build"):
        nullarm.null_set(s, sets, {})


def test_without_unseen_faces_the_arm_is_refused_with_the_message(tmp_path):
    root, synthetic = synthetic_root(tmp_path / "syn", {"Happiness": 1})
    sets = TestSets({"synthetic": synthetic}, {"synthetic": ["Happiness"]})
    message = "no real faces are left that no model trained or selected on: set a split aside"
    arm = nullarm.null_set(study(tmp_path, NoUnseenFacesError(message), root), sets, {})
    assert not arm.built and arm.reason == message and arm.line() == f"No null arm in this run: {message}"
    assert nullarm.with_null(sets, arm) is sets
    assert not (tmp_path / "run" / "null").exists()
    off = nullarm.null_set(study(tmp_path, faces(tmp_path / "real", 10), root), sets, {}, enabled=False)
    assert not off.built and "null_arm = False" in off.reason
    other = nullarm.null_set(study(tmp_path, faces(tmp_path / "other", 8, emotions=["Fear"]), root), sets, {})
    assert not other.built and "no unseen real faces of the synthetic set's emotions (Happiness)" in other.reason


def test_the_reported_real_test_split_is_never_drawn(tmp_path):
    real = faces(tmp_path / "real", 12, split="val")
    root, synthetic = synthetic_root(tmp_path / "syn", {"Happiness": 1})
    sets = TestSets({"real": real.assign(domain="real"), "synthetic": synthetic}, {"real": EMOTIONS, "synthetic": ["Happiness"]})
    arm = nullarm.null_set(study(tmp_path, real, root), sets, {})  # the only unseen split is the one reported as real test set
    assert not arm.built and "synthetic set's emotions" in arm.reason


def test_with_null_adds_the_set_on_the_shared_classes_and_real_names_skip_it(built):
    _, sets, arm, _ = built
    both = nullarm.with_null(sets, arm)
    assert list(both) == ["real", "synthetic", "null arm"] and both.classes["null arm"] == ["Anger", "Happiness", "Sadness"]
    assert real_names(both) == ["real"]
    assert real_names({"fer": 0, "synthetic": 0, "null arm": 0, "null arm matched to fer": 0, "synthetic matched to fer": 0}) == ["fer"]


def preds(recall: dict[int, float], grids: int, per_grid: int, prefix: str, seed: int) -> pd.DataFrame:
    """A predictions table: per class, ``grids`` grids of ``per_grid`` faces, each answered right with that class's recall."""
    rng = np.random.default_rng(seed)
    rows = []
    for c, p in recall.items():
        for g in range(grids):
            for i in range(per_grid):
                right = rng.random() < p
                guess = c if right else (c + 1 + rng.integers(2)) % 3
                row = {"path": f"{prefix}{c}_{g}_{i}.png", "label": CLASSES[c], "pred": CLASSES[guess]}
                row |= {f"logit_{k}": (2.0 if j == guess else 0.0) for j, k in enumerate(CLASSES)}
                rows.append(row | {"source": f"{prefix}grid{c}_{g}"})
    return pd.DataFrame(rows)


def score(name: str, table: pd.DataFrame) -> SetScore:
    return SetScore("m", "real", name, list(CLASSES[:3]), table, {})


def test_the_excess_is_the_difference_of_the_two_gaps_and_the_table_fits_the_page(built):
    _, _, arm, _ = built
    real = score("fer", preds({0: 0.8, 1: 0.7, 2: 0.6}, 1, 60, "r", 0).drop(columns="source"))  # each real face its own cluster
    synthetic = score("synthetic", preds({0: 0.5, 1: 0.4, 2: 0.3}, 6, 20, "s", 1))
    null = score("null arm", preds({0: 0.75, 1: 0.65, 2: 0.55}, 6, 18, "n", 2))
    row = rq1_null.null_excess(real, synthetic, null)
    assert row.excess == pytest.approx(row.gap_synthetic - row.gap_null)
    assert row.excess == pytest.approx(row.balanced_null - row.balanced_synthetic)
    assert (row.grids_synthetic, row.grids_null, row.min_grids, row.classes) == (18, 18, 6, 3)
    assert 0.15 < row.excess < 0.35 and row.low > 0 and row.p_value < 0.01
    scores = {("m", "fer"): real, ("m", "synthetic"): synthetic, ("m", "null arm"): null}
    rows = rq1_null.null_excesses(scores, ["fer"])
    assert [r.arm for r in rows] == ["raw"]
    shown = present(rq1_null.excess_table(rows))
    assert list(shown.columns) == ["model", "real set", "arm", "gap vs synthetic (pp)", "gap vs null (pp)", "excess (pp) [95% CI]", "p"]
    assert len(shown.columns) <= 10
    glued = rq1_null.glue_values(rows, arm)
    assert glued["rq1_m_fer_excess_raw"] == pytest.approx(100 * row.excess) and glued["rq1_null_grids"] == 5.0
    lines = rq1_null.findings(rows, arm)
    assert lines[0] == arm.line() and "excess over the null" in lines[1]


def test_the_null_faces_are_matched_from_their_own_format_and_scored_beside_the_synthetic_ones(built, tiny_model):
    from fercore.faces import MatchedFormat
    from fercore.inference import InferenceCache
    from fercore.studies.scoring import matched_name, score_matched
    from fercore.studies.session import MATCHED, RAW, Arms

    _, sets, arm, real = built
    to_synthetic, to_null = MatchedFormat("real", 0.0, 0.0, 1.0, 16, 1.0), MatchedFormat("real", 0.1, 0.1, 0.8, 24, 0.0)
    arms = Arms({"real": to_synthetic}, {}, {"real": to_null})
    assert arms.transform("real", MATCHED) is to_synthetic and arms.transform("real", MATCHED, source="null arm") is to_null
    assert arms.transform("real", RAW, source="null arm") is None
    with pytest.raises(KeyError, match="null arm"):
        Arms({"real": to_synthetic}, {}).transform("real", MATCHED, source="null arm")
    both = nullarm.with_null(TestSets({"real": real, "synthetic": arm.faces.assign(domain="synthetic")},
                                      {"real": EMOTIONS, "synthetic": EMOTIONS}), arm)
    scores = score_matched({"tiny": tiny_model}, both, arms, InferenceCache(None, workers=0, progress=False), regime="real", n_boot=20)
    assert sorted(scores) == [("tiny", "null arm matched to real"), ("tiny", "synthetic matched to real")]
    assert matched_name("real", "null arm") == "null arm matched to real"
    assert len(scores[("tiny", "null arm matched to real")].preds) == len(arm.faces)


def test_the_chapter_shows_the_line_and_the_table_only_with_a_built_arm(built, tmp_path):
    from fercore.book import Chapter

    _, _, arm, _ = built
    real = score("fer", preds({0: 0.8, 1: 0.7, 2: 0.6}, 1, 60, "r", 0).drop(columns="source"))
    scores = {("m", "fer"): real, ("m", "synthetic"): score("synthetic", preds({0: 0.5, 1: 0.4, 2: 0.3}, 3, 20, "s", 1)),
              ("m", "null arm"): score("null arm", preds({0: 0.5, 1: 0.4, 2: 0.3}, 3, 20, "n", 2))}
    chapter = Chapter(tmp_path / "book", "rq1", show=False)
    rows = rq1_null.show_null_excess(chapter, scores, ["fer"], arm)
    table = pd.read_csv(tmp_path / "book" / "rq1" / "tables" / "excess_over_null.csv")
    assert len(rows) == 1 and table["excess over null"].iloc[0] == pytest.approx(rows[0].excess)
    off = nullarm.NullArm(None, "turned off (null_arm = False)")
    assert rq1_null.show_null_excess(Chapter(tmp_path / "off", "rq1", show=False), scores, ["fer"], off) == []
    assert not (tmp_path / "off" / "rq1" / "tables" / "excess_over_null.csv").exists()
    assert rq1_null.findings([], off) == ["No null arm in this run: turned off (null_arm = False)"]
    assert rq1_null.record([], off)["null_arm"]["built"] is False


def test_too_few_unseen_faces_give_fewer_full_grids_and_the_line_says_so(tmp_path):
    root, synthetic = synthetic_root(tmp_path / "syn", {"Happiness": 2, "Sadness": 1})
    sets = TestSets({"synthetic": synthetic}, {"synthetic": ["Happiness", "Sadness"]})
    arm = nullarm.null_set(study(tmp_path, faces(tmp_path / "real", 8, emotions=["Happiness", "Sadness"]), root), sets, {})
    assert arm.grids_per_emotion == {"Happiness": 1, "Sadness": 1}  # 8 faces fill one 2x3 grid, not two
    assert arm.faces.groupby("source").size().max() <= 6
    assert "Fewer grids than the 3 asked for (Happiness 1 of 2)" in arm.line() and "lower null_grids" in arm.line()
