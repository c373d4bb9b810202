"""The matched-format arm: the crop moves a set's framing onto another's, the size, greyscale
share and JPEG quality are the target's; and the null-domain check (real faces pushed through
the grid path are told from real faces by format and framing only, which matching removes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from gridkit import compose
from PIL import Image

from fercore.analysis.uncertainty import grouped_domain_auc, sample_groups
from fercore.data import discover, load_samples
from fercore.faces import matching
from fercore.grids.extract import ExtractOptions, extract_grids
from fercore.inference.engine import infer
from fercore.models import Classifier, create_model


def fmt(**kw) -> matching.SetFormat:
    base = dict(images=10, grey_fraction=0.0, size=128, eye_x=0.5, eye_y=0.4, iod=0.3, eye_mouth=0.3, landmark_rate=1.0,
                framed_by="test")
    return matching.SetFormat(**{**base, **kw})


def test_the_crop_puts_the_source_eyes_where_the_target_has_them():
    """A dot at the source set's median eye centre lands on the target's eye centre (within a
    pixel of the 48 px output); the face scale follows the inter-ocular distance."""
    source = fmt(eye_x=0.5, eye_y=0.42, iod=0.30, eye_mouth=0.30)
    target = fmt(eye_x=0.5, eye_y=0.35, iod=0.40, eye_mouth=0.40, size=48, grey_fraction=1.0)
    arm = matching.match_transform(source, target, "tight")
    assert arm.side == pytest.approx(0.75) and arm.size == 48 and arm.grey_fraction == 1.0
    image = np.full((128, 128, 3), 200, np.uint8)
    for x in (0.5 - 0.15, 0.5 + 0.15):  # the two eyes, one inter-ocular distance apart
        cx, cy = int(x * 128), int(0.42 * 128)
        image[cy - 2:cy + 3, cx - 2:cx + 3] = 0
    out = np.asarray(arm(Image.fromarray(image)), dtype=np.float32)
    assert out.shape == (48, 48, 3) and np.allclose(out[..., 0], out[..., 1])  # grey
    dark = np.argwhere(out[..., 0] < 120)
    left, right = dark[dark[:, 1] < 24], dark[dark[:, 1] >= 24]
    for spot, x in ((left, 0.5 - 0.2), (right, 0.5 + 0.2)):  # target: eyes 0.40 apart around 0.5, at 0.35 height
        assert abs(spot[:, 1].mean() + 0.5 - x * 48) <= 1.0 and abs(spot[:, 0].mean() + 0.5 - 0.35 * 48) <= 1.0, spot.mean(0)


def test_unknown_framing_keeps_the_crop_and_matches_the_rest():
    arm = matching.match_transform(fmt(), fmt(eye_x=float("nan"), eye_y=float("nan"), iod=float("nan"), eye_mouth=float("nan"),
                                       size=48, grey_fraction=1.0, jpeg_quality=90), "no landmarks")
    assert (arm.left, arm.top, arm.side, arm.size, arm.grey_fraction, arm.jpeg_quality) == (0.0, 0.0, 1.0, 48, 1.0, 90)


def test_a_crop_past_the_border_extends_the_edge_pixels():
    arm = matching.MatchedFormat("loose", left=-0.25, top=-0.25, side=1.5, size=64, grey_fraction=0.0)
    image = Image.fromarray(np.full((100, 100, 3), (10, 200, 30), np.uint8))
    out = np.asarray(arm(image))
    assert out.shape == (64, 64, 3) and (np.abs(out.astype(int) - (10, 200, 30)) <= 1).all()


def test_the_grey_share_is_the_targets_and_stable_per_image():
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)) for _ in range(400)]
    arm = matching.MatchedFormat("half", 0.0, 0.0, 1.0, 16, grey_fraction=0.5)
    greyed = [matching.is_grey(arm(im)) for im in images]
    assert 0.43 <= np.mean(greyed) <= 0.57
    assert greyed == [matching.is_grey(arm(im)) for im in images]  # the same images every time
    assert not any(matching.is_grey(im) for im in images[:20])


def test_jpeg_quality_is_read_from_the_quantisation_table(tmp_path):
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (48, 48), dtype=np.uint8))
    for quality in (50, 75, 95):
        image.save(tmp_path / f"q{quality}.jpg", quality=quality)
        assert matching.jpeg_quality(tmp_path / f"q{quality}.jpg") == quality
    image.save(tmp_path / "p.png")
    assert matching.jpeg_quality(tmp_path / "p.png") is None
    arm = matching.MatchedFormat("jpeg", 0.0, 0.0, 1.0, 48, 1.0, jpeg_quality=50)
    assert "jpeg=50" in arm.name and not np.array_equal(np.asarray(arm(image))[..., 0], np.asarray(image))


def test_fer2013_format_is_measured(fer2013_root, tmp_path):
    samples = discover(fer2013_root, ["val"]).sample(60, random_state=0)
    found = matching.measure_format(samples, cache_dir=tmp_path)
    assert found.grey_fraction == 1.0 and found.size == 48 and found.jpeg_quality == 95
    assert found.landmark_rate >= 0.8 and 0.3 < found.eye_y < 0.45 and 0.3 < found.iod < 0.45


@pytest.fixture(scope="module")
def null_domain(fer2013_root, tmp_path_factory):
    """Six grid images, each of 36 FER2013 val faces of one emotion (composed like a generator's
    grid), extracted by the normal path with cell crops (the grid path's framing left in, so the
    matched arm has the most to remove); and 36 other faces of each emotion taken directly."""
    work = tmp_path_factory.mktemp("null")
    val = discover(fer2013_root, ["val"])
    raw = work / "raw" / "test"
    raw.mkdir(parents=True)
    rows, direct = [], []
    for g, emotion in enumerate(["Happiness", "Sadness", "Anger", "Neutral", "Surprise", "Fear"]):
        part = val[val["emotion"] == emotion].sample(72, random_state=g)
        faces = [np.asarray(Image.open(p).convert("RGB")) for p in part["path"][:36]]
        grid, _ = compose(faces, 6, 6, seed=g)
        Image.fromarray(grid).save(raw / f"grid{g}.png")
        rows.append({"file": f"grid{g}.png", "emotion": emotion, "gender": "female", "layout": "6x6"})
        direct.append(part.iloc[36:])
    pd.DataFrame(rows).to_csv(raw / "grids.csv", index=False)
    extract_grids(work / "raw", work / "faces", ExtractOptions(crop="cell"), workers=1, progress=False, contact_sheets=False)
    return pd.concat(direct, ignore_index=True), load_samples(work / "faces" / "manifest.csv"), work


def test_matching_removes_what_the_grid_path_adds(null_domain):
    """Both sides are photographs of real people, so a real-vs-'synthetic' difference here is the
    grid path's (resampling, framing, resolution, compression). A linear probe on a network's
    features tells the two apart almost perfectly as they come (raw); on the matched arm it
    barely can. Measured with cell crops: raw AUC 0.9995, matched 0.60 (random-init resnet10t at
    112 px). The default face crops already take FER2013's framing: raw 0.80, matched 0.77, the
    rest being resampling that no format match undoes (docs/grids.md)."""
    real, extracted, work = null_domain
    assert len(extracted) >= 190  # most of the 216 cells give a kept face
    torch.manual_seed(1)
    model = Classifier.wrap(create_model("resnet10t"), arch="resnet10t", image_size=112)
    domains = np.array(["real"] * len(real) + ["synthetic"] * len(extracted))
    groups = np.r_[sample_groups(real, prefix="r:"), sample_groups(extracted, prefix="s:")]
    real_feats = infer(model, real, workers=0, progress=False).features
    raw = grouped_domain_auc(np.r_[real_feats, infer(model, extracted, workers=0, progress=False).features], domains, groups)
    arms, formats = matching.matched_arms({"fer2013": real, "synthetic": extracted}, out=work / "formats")
    arm = arms["fer2013"]
    assert arm.size == 48 and arm.grey_fraction == 1.0 and arm.jpeg_quality == 95
    matched_feats = infer(model, extracted, transform=arm, workers=0, progress=False).features
    matched = grouped_domain_auc(np.r_[real_feats, matched_feats], domains, groups)
    assert raw.auc >= 0.95 and raw.auc - matched.auc >= 0.25, (raw, matched)
    assert matched.auc <= 0.65, matched
    assert (work / "formats" / "formats.json").is_file()
