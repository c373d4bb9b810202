"""Face regions from landmarks: the demo generator's drawn features fall in their own regions, a map
on the mouth is the mouth's in any framing, the regions follow the face, exclusions are counted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fercore.demo import drawing as demo
from fercore.faces import regions as R

FEATURE_POINTS = {"eyes": ["left_eye", "right_eye"], "nose": ["nose"], "mouth": ["mouth_left", "mouth_right"],
                  "brows": [f"{side}_brow_{k}" for side in ("left", "right") for k in ("inner", "mid", "outer")]}


def drawn(row: pd.Series, names: list[str]) -> np.ndarray:
    return np.array([[row[f"{n}_x"], row[f"{n}_y"]] for n in names], dtype=float)


def test_every_demo_face_has_its_drawn_features_in_their_own_regions(demo_root):
    """The acceptance check: for every face the demo generator drew (real-style faces and grid
    cells), the regions built from its five drawn landmarks hold the drawn eyes, brows, nose tip
    and mouth corners, each in its own region: so no brow point lies in the eyes' region nor an
    eye in the brows', no mouth corner in the nose's nor the nose tip in the mouth's."""
    wrong = []
    faces = 0
    for name in ("real", "synthetic"):
        for _, row in pd.read_csv(demo_root / "geometry" / f"{name}.csv").iterrows():
            landmarks = drawn(row, list(demo.LANDMARKS))
            points = np.concatenate([drawn(row, names) for names in FEATURE_POINTS.values()])
            expected = [region for region, names in FEATURE_POINTS.items() for _ in names]
            got = R.label_points(landmarks, points)
            faces += 1
            wrong += [(name, row.get("path", row.get("file")), e, g) for e, g in zip(expected, got, strict=True) if e != g]
    assert faces == 8 * (100 + 25 + 72) + 64 * 36  # real-style train, test and holdout faces, 64 grids of 36 cells (version 8)
    assert wrong == [], f"{len(wrong)} drawn points outside their region, e.g. {wrong[:5]}"


def _framings(rng: np.random.Generator, emotion: str) -> dict[str, tuple[tuple[int, int], np.ndarray, np.ndarray]]:
    """One drawn face in two framings: ``margin`` (a head-and-shoulders portrait, 170 px, the face
    about two thirds of the width) and ``tight`` (the same face cropped round its features and
    resized to 96 px, as FER2013 frames faces). Each: (image size, five landmarks, mouth centre)."""
    _, parts = demo.draw_face_with_parts(rng, emotion, "female", 170, intensity=0.9, vivid=True)
    marks = parts.landmarks()
    mouth = parts.points["mouth_left"][0] / 2 + parts.points["mouth_right"][0] / 2
    centre = (marks[:2].mean(axis=0) + mouth) / 2
    iod = float(np.linalg.norm(marks[1] - marks[0]))
    side, out = 2.4 * iod, 96
    left, top = centre - side / 2
    scale = out / side
    tight = lambda p: (np.asarray(p) + 0.5 - [left, top]) * scale - 0.5  # noqa: E731
    return {"margin": ((170, 170), marks, mouth), "tight": ((out, out), tight(marks), tight(mouth))}


def _blob(size: tuple[int, int], centre: np.ndarray, sigma: float, cells: int) -> np.ndarray:
    """A Gaussian map of ``cells`` x ``cells`` covering an image of ``size``, peaked at ``centre`` (image pixels)."""
    width, height = size
    ys, xs = np.mgrid[0:cells, 0:cells]
    x, y = (xs + 0.5) * width / cells - 0.5, (ys + 0.5) * height / cells - 0.5
    return np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / (2 * sigma ** 2))


@pytest.mark.parametrize("emotion", ["Neutral", "Happiness", "Surprise", "Contempt"])
def test_a_map_on_the_mouth_is_the_mouths_in_a_tight_and_a_margin_framing(emotion):
    """A synthetic CAM centred on the drawn mouth (a Gaussian of 0.2 inter-ocular distances, on a
    coarser grid than the image) gives the mouth region the largest share in both framings of the
    same face, and nearly the same share: the regions move with the face, not with the crop."""
    rng = np.random.default_rng(["Neutral", "Happiness", "Surprise", "Contempt"].index(emotion))
    got = {}
    for framing, (size, marks, mouth) in _framings(rng, emotion).items():
        iod = float(np.linalg.norm(marks[1] - marks[0]))
        cam = _blob(size, mouth, 0.2 * iod, cells=28)
        shares = R.region_shares(cam[None], [marks], [size]).iloc[0]
        assert shares["excluded"] == ""
        values = shares[list(R.REGIONS)].astype(float)
        assert values.idxmax() == "mouth", (framing, values.round(3).to_dict())
        assert values.sum() == pytest.approx(1.0)
        got[framing] = values
    assert abs(got["tight"]["mouth"] - got["margin"]["mouth"]) < 0.05, got


def test_regions_move_with_the_face():
    """Rotating, scaling and shifting a face and points on it leaves every point's region as it was."""
    rng = np.random.default_rng(3)
    marks = np.array([[40.0, 50.0], [72.0, 50.0], [56.0, 69.0], [43.0, 84.0], [69.0, 84.0]])
    points = rng.uniform(0, 128, size=(400, 2))
    before = R.label_points(marks, points)
    angle, scale, shift = np.radians(25), 1.7, np.array([13.0, -8.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    after = R.label_points(marks @ rotation.T + shift, points @ rotation.T + shift)
    assert before == after
    assert {"eyes", "brows", "nose", "mouth", "forehead", "cheeks", "jaw", "outside"} <= set(before)


def test_label_map_is_label_points_at_the_pixel_centres():
    """The map the shares and the drawn outlines come from labels each pixel as its centre is
    labelled, at the image's own size and at a map size that covers the same field."""
    marks = np.array([[40.0, 50.0], [72.0, 50.0], [57.0, 70.0], [44.0, 85.0], [70.0, 83.0]])
    full = R.label_map(marks, (112, 128))
    ys, xs = np.mgrid[0:128, 0:112]
    names = R.label_points(marks, np.stack([xs.ravel(), ys.ravel()], axis=1))
    assert [R.REGIONS[i] for i in full.ravel()] == names
    coarse = R.label_map(marks, (112, 128), (16, 14))  # cells of 8 px: centres at 3.5, 11.5, ...
    centres = np.stack([xs[3::8, 3::8].ravel() + 0.5, ys[3::8, 3::8].ravel() + 0.5], axis=1)
    assert [R.REGIONS[i] for i in coarse.ravel()] == R.label_points(marks, centres)


def test_shares_left_out_are_counted_with_their_reason():
    marks = np.array([[40.0, 50.0], [72.0, 50.0], [56.0, 69.0], [43.0, 84.0], [69.0, 84.0]])
    upside = marks.copy()
    upside[3:, 1] = 60.0  # mouth corners above the nose tip: no face
    maps = np.random.default_rng(0).uniform(size=(4, 32, 32))
    maps[2] = 0.0
    table = R.region_shares(maps, [marks, None, marks, upside], [(128, 128)] * 4)
    assert table["excluded"].tolist() == ["", "no landmarks", "zero map", "implausible landmarks"]
    assert table.loc[0, list(R.REGIONS)].sum() == pytest.approx(1.0)
    assert table.loc[1:, list(R.REGIONS)].isna().all().all()
    with pytest.raises(R.ImplausibleLandmarks, match="nose must lie between"):
        R.FaceFrame.from_landmarks(upside)


def test_smallest_region_in_input_pixels():
    marks = np.array([[40.0, 50.0], [72.0, 50.0], [56.0, 69.0], [43.0, 84.0], [69.0, 84.0]])  # IOD 32 px on 128
    assert R.smallest_region_px(marks, (128, 128), 224) == pytest.approx(0.36 * 32 * 224 / 128)


def test_region_areas_are_what_a_uniform_map_would_give():
    marks = np.array([[40.0, 50.0], [72.0, 50.0], [56.0, 69.0], [43.0, 84.0], [69.0, 84.0]])
    table = R.region_shares(np.ones((2, 32, 32)), [marks, None], [(128, 128)] * 2)
    areas = table.loc[0, [f"area_{r}" for r in R.REGIONS]].to_numpy(float)
    assert areas.sum() == pytest.approx(1.0) and areas == pytest.approx(table.loc[0, list(R.REGIONS)].to_numpy(float))
    assert table.loc[0, "area_eyes"] < table.loc[0, "area_outside"] and table.loc[1, "area_eyes"] != table.loc[1, "area_eyes"]
