import json
import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fercore.core.labels import CLASSES
from fercore.data.samples import class_counts, discover
from fercore.demo import dataset as D
from fercore.demo import drawing as demo


def test_grid_boundaries_cover_every_pixel_once():
    from fercore.grids import edges as grid_edges

    edges = grid_edges(1024, 6)
    assert edges[0] == 0 and edges[-1] == 1024
    widths = np.diff(edges)
    assert widths.sum() == 1024 and set(widths) <= {170, 171}


def test_faces_are_deterministic_and_expressions_differ():
    def face(emotion, seed=3):
        return np.asarray(demo.draw_face(np.random.default_rng(seed), emotion, "female", 64, intensity=1.0, vivid=True))

    assert np.array_equal(face("Anger"), face("Anger"))
    assert not np.array_equal(face("Anger"), face("Surprise"))
    assert face("Happiness").shape == (64, 64, 3)


def test_demo_layout_and_counts(demo_root):
    spec = D.DemoSpec()
    real = discover(demo_root / "real")
    counts = class_counts(real)
    assert (counts.loc["train"] == spec.real_train_per_class).all()
    assert (counts.loc["test"] == spec.real_test_per_class).all()
    assert (counts.loc["holdout"] == spec.real_holdout_per_class).all()
    train, holdout = (sorted(real.loc[real["split"] == s, "path"])[:5] for s in ("train", "holdout"))
    assert not any(np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b))) for a, b in zip(train, holdout, strict=True))
    assert Image.open(real["path"].iloc[0]).size == (spec.real_size, spec.real_size)
    for split, expected in (("train", 32), ("test", 32)):
        folder = demo_root / "synthetic" / "raw_grids" / split
        table = pd.read_csv(folder / "grids.csv")
        assert len(table) == expected
        assert {"file", "emotion", "gender", "prompt", "intensity", "template", "generator", "seed"} <= set(table.columns)
        assert set(table["emotion"]) == set(CLASSES) and set(table["gender"]) == {"female", "male"}
        assert all((folder / f).is_file() for f in table["file"])
        assert "6x6" in table["prompt"].iloc[0] and "angry" in table["prompt"].iloc[0]
        with Image.open(folder / table["file"].iloc[0]) as grid:
            assert grid.size == (1024, 1024) and grid.mode == "RGB"


def test_domains_look_different(demo_root):
    """Real-style faces are muted and noisy, synthetic cells saturated and clean."""
    real = discover(demo_root / "real", ["train"])["path"][:40]
    sat_real = np.mean([np.asarray(Image.open(p).convert("HSV"))[..., 1].mean() for p in real])
    grid = np.asarray(Image.open(next((demo_root / "synthetic" / "raw_grids" / "train").glob("*.png"))).convert("HSV"))
    assert grid[..., 1].mean() > 1.5 * sat_real


def test_demo_data_is_reused_and_guarded(demo_root):
    stamp = demo_root / "demo.json"
    before = stamp.stat().st_mtime_ns
    grid = next((demo_root / "synthetic" / "raw_grids" / "train").glob("*.png"))
    grid_before = grid.stat().st_mtime_ns
    assert D.make_demo_data(demo_root, progress=False)["real_images"] == 8 * (100 + 25 + 72)
    assert stamp.stat().st_mtime_ns == before and grid.stat().st_mtime_ns == grid_before
    with pytest.raises(FileExistsError, match="other settings"):
        D.make_demo_data(demo_root, D.DemoSpec(seed=1), progress=False)  # other settings: refused
    assert not any(name.endswith(".tmp") for name in os.listdir(demo_root))


def test_drawn_parts_are_where_the_pupils_are():
    """draw_face_with_parts gives draw_face's pixels and the positions drawn: each recorded eye
    centre lies on the dark pupil drawn there (expressions whose brows do not cover the eyes)."""
    from fercore.faces.detection import LANDMARKS

    assert demo.LANDMARKS == LANDMARKS
    worst = 0.0
    for seed, emotion in enumerate(("Neutral", "Surprise", "Fear", "Happiness", "Contempt") * 4):
        image, parts = demo.draw_face_with_parts(np.random.default_rng(seed), emotion, ("female", "male")[seed % 2], 300,
                                                 intensity=1.0, vivid=False, zoom=1.3, jitter=2.0)
        again = demo.draw_face(np.random.default_rng(seed), emotion, ("female", "male")[seed % 2], 300,
                               intensity=1.0, vivid=False, zoom=1.3, jitter=2.0)
        assert np.array_equal(np.asarray(image), np.asarray(again))
        grey = np.asarray(image, dtype=float).mean(axis=2)
        yy, xx = np.mgrid[0:300, 0:300]
        for x, y in parts.landmarks()[:2]:
            weight = np.clip(30 - grey, 0, None) * (np.hypot(xx - x, yy - y) < 6)
            worst = max(worst, float(np.hypot((weight * xx).sum() / weight.sum() - x, (weight * yy).sum() / weight.sum() - y)))
        marks = parts.landmarks()
        assert marks[0, 0] < marks[2, 0] < marks[1, 0] and marks[3, 0] < marks[4, 0]  # left / right as seen
        assert marks[:2, 1].mean() < marks[2, 1] < marks[3:, 1].mean()  # eyes above nose above mouth
        x0, y0, x1, y1 = parts.box()
        assert x0 < marks[:, 0].min() and marks[:, 0].max() < x1 and y0 < marks[:, 1].min() and marks[:, 1].max() < y1
        assert parts.points["left_brow"].shape == (3, 2) and parts.points["outline"].shape == (demo.OUTLINE_POINTS, 2)
    assert worst < 0.5, f"a recorded eye centre is {worst:.2f} px from its pupil"


def test_demo_data_records_the_drawn_geometry(demo_root):
    spec = D.DemoSpec()
    real = pd.read_csv(demo_root / "geometry" / "real.csv")
    assert len(real) == 8 * (spec.real_train_per_class + spec.real_test_per_class + spec.real_holdout_per_class)
    assert all((demo_root / "real" / p).is_file() for p in real["path"])
    cells = pd.read_csv(demo_root / "geometry" / "synthetic.csv")
    assert len(cells) == 64 * spec.grid_rows * spec.grid_cols and set(cells["split"]) == {"train", "test"}
    assert {"left_eye_x", "mouth_right_y", "left_brow_inner_x", "face_x0"} <= set(real.columns)
    eye_y = (cells["left_eye_y"] + cells["right_eye_y"]) / 2
    row_top = np.array(demo.edges(demo.GRID_SIZE, spec.grid_rows))[cells["row"]]
    assert ((eye_y - row_top) / (demo.GRID_SIZE / spec.grid_rows)).between(0.25, 0.6).all()  # eyes inside their own cell
    assert json.loads((demo_root / "demo.json").read_text())["version"] == D.DEMO_VERSION == 8


def test_demo_grid_factors_are_balanced_within_each_emotion():
    """Per emotion (two grids per gender): each intensity word and each generator on half the grids,
    crossed with each other and balanced over gender; Neutral's intensity is none; every level has
    at least four test grids."""
    plan = pd.DataFrame([{"emotion": e, "gender": g, **D.grid_factors(e, g, k)} for e in CLASSES for g in D.GENDERS for k in range(2)])
    for emotion, part in plan.groupby("emotion"):
        assert part["generator"].value_counts().to_dict() == {"demo-vivid": 2, "demo-soft": 2}
        assert part["template"].nunique() == 2
        if emotion == "Neutral":
            assert set(part["intensity"]) == {"none"}
            continue
        assert pd.crosstab(part["intensity"], part["generator"]).eq(1).all().all()  # crossed, one grid per pair
        assert pd.crosstab(part["intensity"], part["gender"]).eq(1).all().all()
    for factor in ("intensity", "template", "generator"):
        counts = plan.loc[plan[factor] != "none", factor].value_counts()
        assert len(counts) == 2 and counts.min() >= 4, (factor, counts.to_dict())


def _brow_height(cells: dict) -> float:
    """Mean height of the brows' middle above the eyes, in units of the head outline's height."""
    heights = []
    for parts in cells.values():
        x0, y0, x1, y1 = parts.box()
        eyes = parts.landmarks()[:2, 1].mean()
        brows = (parts.points["left_brow"][1, 1] + parts.points["right_brow"][1, 1]) / 2
        heights.append((eyes - brows) / (y1 - y0))
    return float(np.mean(heights))


def test_demo_factors_draw_their_planted_effects():
    """Surprise raises the brows with intensity: 'extreme' grids draw them higher than 'high' ones,
    'movie' higher than 'portrait' and 'demo-soft' lower than 'demo-vivid'; the soft style's backdrops
    come from its own palette."""
    def grid(intensity: str, template: str = "portrait", generator: str = "demo-vivid", seed: int = 1):
        low, high = D.INTENSITY_RANGES[intensity]
        scale = D.TEMPLATES[template]
        return demo.make_grid_with_parts(np.random.default_rng(seed), "Surprise", "female", 3, 3,
                                         intensity=(scale * low, scale * high), style=D.GENERATORS[generator])

    strong, weak = _brow_height(grid("extreme")[1]), _brow_height(grid("high")[1])
    assert strong > weak + 0.01
    assert _brow_height(grid("high", template="movie")[1]) > weak
    image, soft = grid("high", generator="demo-soft")
    assert _brow_height(soft) < weak
    corner = tuple(int(v) for v in np.asarray(image)[demo.edges(demo.GRID_SIZE, 3)[1] - 20, 20])
    assert corner in [tuple(c) for c in demo.STYLES["soft"]["backdrops"]]
    with pytest.raises(ValueError, match="style must be one of"):
        demo.make_grid_with_parts(np.random.default_rng(0), "Anger", "male", 2, 2, style="oil")
