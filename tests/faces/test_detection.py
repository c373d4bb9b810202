"""Face geometry: MTCNN landmarks against drawn and known positions, alignment to 1 px, the
cache, the Haar fallback and the framing statistics of a set.

MTCNN (facenet-pytorch) is part of the environment (`make venv` installs it): nothing here
skips for want of it. Only the FER2013 test skips, when ../shared is absent.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from gridkit import astronaut_faces
from PIL import Image

from fercore.core.labels import CLASSES
from fercore.demo import dataset as D
from fercore.demo import drawing as demo
from fercore.faces import alignment as A
from fercore.faces import detection as F
from fercore.faces import framing as Fr
from fercore.grids import edges

log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def mtcnn() -> F.MTCNNFaces:
    import facenet_pytorch  # noqa: F401  (installed by `make venv`; an ImportError here is a broken environment)

    return F.MTCNNFaces()


def iod_errors(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Distance of each of the five landmarks from the truth, in units of the true inter-ocular distance."""
    return np.linalg.norm(found - truth, axis=1) / np.linalg.norm(truth[1] - truth[0])


def demo_faces(root, grids: int = 4) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """(real-style test faces, their drawn landmarks, grid cells, their drawn landmarks) from the demo data."""
    real = pd.read_csv(root / "geometry" / "real.csv")
    real = real[real["split"] == "test"]
    faces = [np.asarray(Image.open(root / "real" / p).convert("RGB")) for p in real["path"]]
    truth = [D._drawn_face(row).landmarks for _, row in real.iterrows()]
    cells = pd.read_csv(root / "geometry" / "synthetic.csv")
    cells = cells[(cells["split"] == "test") & cells["file"].isin(sorted(set(cells["file"]))[:grids])]
    cuts, cut_truth = [], []
    for file, part in cells.groupby("file"):
        grid = np.asarray(Image.open(root / "synthetic" / "raw_grids" / "test" / file).convert("RGB"))
        e = edges(grid.shape[0], 6)
        for _, row in part.iterrows():
            r, c = int(row["row"]), int(row["col"])
            cuts.append(grid[e[r]:e[r + 1], e[c]:e[c + 1]])
            cut_truth.append(D._drawn_face(row, left=e[c], top=e[r]).landmarks)
    return faces, truth, cuts, cut_truth


def test_mtcnn_on_the_demo_cartoons_is_measured(demo_root, mtcnn, record_property):
    """The acceptance measure on the demo: success rate and landmark error (units of inter-ocular
    distance) of every face MTCNN finds, against the positions the generator drew.

    The demo draws human-proportioned mouths (0.8 inter-ocular distances wide when neutral, since
    DEMO_VERSION 5; they were 1.2-1.5 before and MTCNN's corners missed them). Measured (README):
    MTCNN finds about a third of the real-style cartoons and most grid cells; the median error of
    the eyes, nose and left mouth corner is under 10 % of the inter-ocular distance (the right
    corner, which a smirk lifts, 0.08-0.13), and all five lie within 10 % on 28-45 % of the found faces. The tail (expressive mouths: smirks, wide-open mouths; head turns)
    reaches 0.2-0.4, so "within 10 % for every face found" does not hold on the cartoons; the
    demo's framing reference uses the drawn positions, labelled "(drawn)" in the framing table.
    """
    faces, truth, cells, cell_truth = demo_faces(demo_root)
    report = {}
    for name, images, marks in (("real-style", faces, truth), ("grid cells", cells, cell_truth)):
        found = F.detect_faces(images, mtcnn, progress=False)
        errors = np.array([iod_errors(d.landmarks, t) for d, t in zip(found, marks, strict=True) if d.landmarks is not None])
        rate = len(errors) / len(images)
        median = np.median(errors, axis=0)
        report[name] = {"images": len(images), "success_rate": rate, "median_error": median.round(3).tolist(),
                        "all_five_within_10pct": float((errors.max(axis=1) <= 0.10).mean()),
                        "eyes_within_10pct": float((errors[:, :2].max(axis=1) <= 0.10).mean())}
        record_property(f"mtcnn_demo_{name}", report[name])
        log.info("MTCNN on demo %s: %s", name, report[name])
        assert median[:2].max() < 0.10, f"{name}: the eye centres should agree with the drawn ones ({report[name]})"
        # the right corner is the one a smirk lifts (Contempt, Disgust): MTCNN puts it lower, as on a human mouth
        assert median[2:4].max() < 0.10 and median[4] < 0.15, f"{name}: nose and mouth corners close ({report[name]})"
    assert 0.2 <= report["real-style"]["success_rate"] <= 0.6, report
    assert 0.45 <= report["grid cells"]["success_rate"] <= 0.8, report
    for name in report:  # most found faces, not every one: the tail is the expressive cartoons
        assert 0.2 <= report[name]["all_five_within_10pct"] < 1.0, report


def test_landmarks_follow_the_face_when_it_is_made_small(mtcnn):
    """Real faces at their own size and shrunk to FER2013's 48 px (then upscaled and padded by
    the module): the five landmarks agree within 10 % of the inter-ocular distance on nearly
    every face found in both; the upscaling and padding are undone exactly."""
    big = astronaut_faces(30, seed=3)
    small = [np.asarray(Image.fromarray(f).resize((48, 48), Image.LANCZOS)) for f in big]
    ref, low = F.detect_faces(big, mtcnn, progress=False), F.detect_faces(small, mtcnn, progress=False)
    errors = []
    for image, a, b in zip(big, ref, low, strict=True):
        if a.landmarks is None or b.landmarks is None:
            continue
        scale = np.array([48 / image.shape[1], 48 / image.shape[0]])
        errors.append(iod_errors(b.landmarks, (a.landmarks + 0.5) * scale - 0.5).max())
    errors = np.array(errors)
    assert len(errors) >= 27, f"found in both on only {len(errors)} of 30"
    assert np.median(errors) < 0.05 and (errors <= 0.10).mean() >= 0.9 and errors.max() < 0.2, errors.round(3)


def test_fer2013_val_landmarks_on_most_faces(fer2013_root, mtcnn, tmp_path):
    paths = sorted((fer2013_root / "val").rglob("*.jpg"))
    paths = paths[:: len(paths) // 200][:200]
    found = F.detect_faces(paths, mtcnn, cache_dir=tmp_path, progress=False)
    rate = np.mean([d.landmarks is not None for d in found])
    log.info("MTCNN on 200 FER2013 val faces: landmarks on %.1f %%", 100 * rate)
    assert rate >= 0.85, f"landmarks on {rate:.1%} of 200 FER2013 val faces"
    eyes = np.array([d.landmarks[:2] for d in found if d.landmarks is not None])
    assert (eyes[:, 0, 0] < eyes[:, 1, 0]).all(), "left eye (as seen) first"
    assert np.median(eyes[:, :, 1]) == pytest.approx(19.5, abs=4), "FER2013 eyes sit about 40 % down a 48 px face"


def test_batches_give_the_same_as_one_at_a_time(mtcnn):
    images = [*astronaut_faces(3, seed=1), *(np.asarray(Image.fromarray(f).resize((48, 48))) for f in astronaut_faces(2, seed=2))]
    together = mtcnn.detect(images)
    for image, batched in zip(images, together, strict=True):
        (alone,) = mtcnn.detect([image])
        assert (batched.width, batched.height) == (image.shape[1], image.shape[0])
        assert len(alone.faces) == len(batched.faces) >= 1
        np.testing.assert_allclose(alone.landmarks, batched.landmarks, atol=1e-2)
        np.testing.assert_allclose(alone.face.box, batched.face.box, atol=1e-2)


def test_cache_by_content_hash(tmp_path, mtcnn):
    faces = astronaut_faces(3, seed=4)
    paths = []
    for i, face in enumerate([*faces, faces[0]]):  # the last file repeats the first one's pixels
        paths.append(tmp_path / "in" / f"{i}.png")
        paths[-1].parent.mkdir(exist_ok=True)
        Image.fromarray(face).save(paths[-1])

    class Counting:
        name, gives_landmarks, signature = mtcnn.name, True, mtcnn.signature
        calls = 0

        def detect(self, images):
            Counting.calls += len(images)
            return mtcnn.detect(images)

    first = F.detect_faces(paths, Counting(), cache_dir=tmp_path / "run", progress=False)
    assert Counting.calls == 3, "identical content is detected once"
    again = F.detect_faces([*paths, faces[1]], Counting(), cache_dir=tmp_path / "run", progress=False)
    assert Counting.calls == 3 + 1, "cached files are not detected again; an array is a new key"
    for a, b in zip(first, again, strict=False):
        assert a.to_dict() == b.to_dict()
    assert again[3].to_dict() == again[0].to_dict()
    shards = list((tmp_path / "run" / mtcnn.signature).iterdir())
    assert shards and all(p.name.startswith("batch-") and p.suffix == ".json" for p in shards), "atomic writes leave no temporaries"


def test_haar_is_a_box_only_fallback_and_says_so(monkeypatch, caplog):
    faces = astronaut_faces(4, seed=5)
    monkeypatch.setattr(F, "mtcnn_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="fercore.faces.detection"):
        detector = F.make_face_detector("auto")
    assert isinstance(detector, F.HaarFaces) and not detector.gives_landmarks
    assert "boxes only" in caplog.text and "no landmarks" in caplog.text
    found = F.detect_faces(faces, detector, progress=False)
    assert all(d.detector == "haar" and d.face is not None and d.landmarks is None for d in found)
    stats = Fr.framing_stats(found)
    assert stats["detector"] == "haar" and stats["face_rate"] == 1.0 and stats["landmark_rate"] == 0.0
    assert np.isnan(stats["eye_y"]) and 0.3 < stats["box_w"] < 1.0


def test_mtcnn_missing_is_an_error_that_says_how_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_facenet(name, *args, **kwargs):
        if name.startswith("facenet_pytorch"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_facenet)
    with pytest.raises(F.FaceDetectorUnavailable, match="--no-deps facenet-pytorch==2.6.0"):
        F.make_face_detector("mtcnn")


# --------------------------------------------------------------------------- alignment


#: Expressions whose brows stay clear of the pupils (Anger's, Disgust's and Sadness's brows are
#: drawn over or next to the eyes and would pull a pupil centroid away).
CLEAR_EYES = ("Neutral", "Surprise", "Fear", "Happiness", "Contempt")


def pupil_centre(image: np.ndarray, near: np.ndarray, radius: float) -> np.ndarray:
    """Centroid of the dark (pupil, RGB 10) pixels within ``radius`` of ``near``; the eye outline (RGB ~33) is left out."""
    grey = np.asarray(image, dtype=float).mean(axis=2) if image.ndim == 3 else np.asarray(image, dtype=float)
    yy, xx = np.mgrid[0:grey.shape[0], 0:grey.shape[1]]
    weight = np.clip(30.0 - grey, 0, None) * (np.hypot(xx - near[0], yy - near[1]) < radius)
    return np.array([(weight * xx).sum(), (weight * yy).sum()]) / weight.sum()


def drawn_faces(n: int, size: int = 256, emotions: tuple[str, ...] = CLEAR_EYES):
    """Real-style demo faces (before the photographic degradation) with strong roll, and their parts."""
    for seed in range(n):
        rng = np.random.default_rng(seed)
        yield demo.draw_face_with_parts(rng, emotions[seed % len(emotions)], ("female", "male")[seed % 2], size,
                                        intensity=1.0, vivid=False, zoom=1.3, jitter=1.5)


def test_alignment_puts_the_drawn_eyes_on_the_canonical_positions():
    frame = A.CanonicalFrame(128, 128)
    target = frame.eyes()
    assert target[0, 1] == target[1, 1] and target[1, 0] - target[0, 0] == pytest.approx(0.36 * 128)
    worst_points = worst_pixels = 0.0
    for image, parts in drawn_faces(16):
        matrix = A.alignment_matrix(parts.landmarks(), frame)
        worst_points = max(worst_points, np.abs(A.transform_points(matrix, parts.landmarks()[:2]) - target).max())
        aligned = A.align_image(image, matrix, frame)
        assert aligned.shape == (128, 128, 3)
        for eye in (0, 1):  # the pupils drawn in the image land on the canonical eye positions
            worst_pixels = max(worst_pixels, np.linalg.norm(pupil_centre(aligned, target[eye], 5.0) - target[eye]))
    assert worst_points < 1e-6
    assert worst_pixels < 1.0, f"aligned pupils up to {worst_pixels:.2f} px from the canonical eye positions"


def test_alignment_of_a_map_computed_on_the_original_image():
    """A map at another resolution than the image (like a Grad-CAM) with peaks at the eyes:
    aligned with the image's matrix, its peaks land on the canonical eye positions."""
    frame = A.CanonicalFrame(112, 112, eye_y=0.42, eye_distance=0.4)
    for image, parts in drawn_faces(6, 96, CLASSES):
        width, height = image.size
        eyes = parts.landmarks()[:2]
        h = w = 64
        yy, xx = np.mgrid[0:h, 0:w]
        heat = np.zeros((h, w))
        for x, y in (eyes + 0.5) * [w / width, h / height] - 0.5:
            heat += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.5 ** 2))
        aligned = A.align_map(heat, A.alignment_matrix(parts.landmarks(), frame), (width, height), frame)
        assert aligned.shape == (112, 112)
        gy, gx = np.mgrid[0:112, 0:112]
        for target in frame.eyes():
            weight = aligned * (np.hypot(gx - target[0], gy - target[1]) < 8)
            centre = np.array([(weight * gx).sum(), (weight * gy).sum()]) / weight.sum()
            assert np.linalg.norm(centre - target) < 1.0


def test_similarity_fit_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -4.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ (scale * rotation).T + shift
    matrix = A.similarity_transform(src, dst)
    np.testing.assert_allclose(matrix, np.hstack([scale * rotation, shift[:, None]]), atol=1e-9)
    mirrored = A.similarity_transform(src, dst * [-1, 1])  # a reflection is not a similarity
    assert np.linalg.det(mirrored[:, :2]) > 0
    _, parts = next(drawn_faces(1))
    fitted = A.alignment_matrix(parts.landmarks(), points="all")
    assert np.linalg.det(fitted[:, :2]) > 0 and abs(fitted[0, 1] + fitted[1, 0]) < 1e-9
    with pytest.raises(ValueError, match="coincide"):
        A.similarity_transform(np.zeros((2, 2)), np.ones((2, 2)))


# --------------------------------------------------------------------------- framing


def test_framing_of_the_demo_sets(demo_root, tmp_path):
    """The table has one row per set from the detector and, for demo sets, one from the drawn
    positions; a frame built from a set's row puts that set's median eyes where the set has them."""
    from fercore.data import discover

    real = discover(demo_root / "real", ["test"])
    sets = {"demo-real": real, "files": list(real["path"][:10])}
    table = Fr.framing_table(sets, F.MTCNNFaces(), cache_dir=tmp_path, max_per_set=40, drawn=lambda table: D.drawn_detections(table, demo_root / "geometry"),
                            progress=False)
    assert list(table.index) == ["demo-real", "demo-real (drawn)", "files", "files (drawn)"]
    assert table.loc["demo-real", "images"] == 40 and table.loc["files", "images"] == 10
    drawn = table.loc["demo-real (drawn)"]
    assert drawn["detector"] == D.DRAWN and drawn["landmark_rate"] == 1.0
    geometry = pd.read_csv(demo_root / "geometry" / "real.csv")
    geometry = geometry[geometry["split"] == "test"]
    eye_y = ((geometry["left_eye_y"] + geometry["right_eye_y"]) / 2 + 0.5) / 96
    assert drawn["eye_y"] == pytest.approx(float(eye_y.median()), abs=0.03)
    assert 0.3 < drawn["eye_y"] < drawn["mouth_y"] < 0.9 and 0.15 < drawn["iod"] < 0.4 and drawn["eye_y_iqr"] > 0
    assert table.loc["demo-real", "detector"] == "mtcnn" and 0 < table.loc["demo-real", "landmark_rate"] < 1
    frame = A.CanonicalFrame.from_framing(drawn, 96)
    np.testing.assert_allclose((frame.eyes()[:, 1] + 0.5) / 96, drawn["eye_y"])
    np.testing.assert_allclose((frame.eyes()[1, 0] - frame.eyes()[0, 0]) / 96, drawn["iod"])


def test_drawn_positions_follow_extracted_faces(demo_root, tmp_path):
    """Drawn landmarks mapped into faces cut out of the demo grids by extraction still sit on the pupils."""
    from fercore.grids.extract import ExtractOptions, extract_grids

    raw = tmp_path / "raw" / "test"
    raw.mkdir(parents=True)
    source = demo_root / "synthetic" / "raw_grids" / "test"
    table = pd.read_csv(source / "grids.csv")
    table = table[table["emotion"] == "Surprise"].head(1)  # wide-open eyes, brows well above them
    (raw / table["file"].iloc[0]).symlink_to(source / table["file"].iloc[0])
    table.to_csv(raw / "grids.csv", index=False)
    manifest = extract_grids(tmp_path / "raw", tmp_path / "out", ExtractOptions(layout="auto", detector="none"),
                             progress=False, contact_sheets=False)
    kept = manifest[manifest["kept"]].assign(path=lambda m: [str(tmp_path / "out" / p) for p in m["path"]])
    found = D.drawn_detections(kept, demo_root / "geometry")
    assert len(found) == len(kept) > 20
    for detection, path in list(zip(found, kept["path"], strict=True))[:8]:
        image = np.asarray(Image.open(path).convert("RGB"))
        for eye in detection.landmarks[:2]:
            assert np.linalg.norm(pupil_centre(image, eye, 3.0) - eye) < 1.0


@pytest.mark.slow
def test_the_demo_suite_writes_one_framing_table(demo_suite):
    """RQ1 of a suite run holds the framing table: MTCNN's rows, labelled, and the drawn reference rows."""
    run_dir, _ = demo_suite
    table = pd.read_csv(run_dir / "rq1" / "tables" / "framing.csv").set_index("set")
    # the null arm's faces are the holdout's, cut again from composed grids: MTCNN's row only (no drawn positions)
    assert list(table.index) == ["demo-real", "demo-real (drawn)", "synthetic", "synthetic (drawn)", "null arm"]
    assert set(table.loc[["demo-real", "synthetic", "null arm"], "detector"]) == {"mtcnn"}
    assert set(table.loc[["demo-real (drawn)", "synthetic (drawn)"], "detector"]) == {D.DRAWN}
    assert (table.loc[["demo-real (drawn)", "synthetic (drawn)"], "landmark_rate"] == 1.0).all()
    assert table.loc["demo-real", "landmark_rate"] < 0.8 < table.loc["synthetic (drawn)", "landmark_rate"]
    drawn = table.loc[["demo-real (drawn)", "synthetic (drawn)"]]
    assert (drawn["eye_y"] < drawn["mouth_y"]).all() and (drawn["iod"] > 0.1).all()
    assert list((run_dir / "rq1" / "faces").glob("mtcnn-*/batch-*.json")), "detections are cached in the run folder"
