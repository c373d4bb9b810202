"""Grid extraction on grids composed from real faces with known boxes, planted defects and bad inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from gridkit import astronaut_faces, compose, fer_faces, recovered
from PIL import Image, ImageFilter

from fercore import cli
from fercore.grids import detectors as D
from fercore.grids import extract as G
from fercore.grids import layout as L
from fercore.grids import quality as Q
from fercore.grids import records as R

LAYOUTS = {  # name: (rows, cols, gutter, jitter)
    "uniform": (6, 6, 6, 0.0),
    "jittered": (6, 6, 6, 0.15),
    "gutterless": (6, 6, 0, 0.0),
    "gutterless_jittered": (6, 6, 0, 0.12),
    "5x5": (5, 5, 5, 0.0),
    "3x3": (3, 3, 8, 0.0),
}


def write_raw(root, grids: dict[str, np.ndarray], emotion="happy", gender="female", split="train"):
    folder = root / split
    folder.mkdir(parents=True, exist_ok=True)
    for name, image in grids.items():
        Image.fromarray(image).save(folder / name)
    pd.DataFrame({"file": list(grids), "emotion": emotion, "gender": gender}).to_csv(folder / "grids.csv", index=False)
    return root


@pytest.fixture(scope="module")
def astronaut():
    pytest.importorskip("skimage", reason="scikit-image (test extra) provides the astronaut image")
    return astronaut_faces(40)


@pytest.mark.parametrize("source", ["astronaut", "fer2013"])
def test_auto_layout_recovers_faces(source, astronaut, fer2013_root, tmp_path):
    faces = astronaut if source == "astronaut" else fer_faces(fer2013_root, 40)
    grids, truth = {}, {}
    for i, (name, (rows, cols, gutter, jitter)) in enumerate(LAYOUTS.items()):
        image, boxes = compose(faces, rows, cols, gutter=gutter, jitter=jitter, seed=i)
        grids[f"{name}.png"], truth[f"{name}.png"] = image, boxes
    raw = write_raw(tmp_path / "raw", grids)
    manifest = G.extract_grids(raw, tmp_path / "out", G.ExtractOptions(layout="auto", detector="none"), progress=False)
    total, hits = 0, 0.0
    for name, boxes in truth.items():
        rows = manifest[manifest.source.str.endswith(name)]
        found = list(zip(rows.x0, rows.y0, rows.x1, rows.y1, strict=True))
        hits += recovered(boxes, found) * len(boxes)
        total += len(boxes)
    assert hits / total >= 0.97
    layouts = manifest.drop_duplicates("source").set_index(manifest.drop_duplicates("source").source.str.split("/").str[-1])
    assert layouts.loc["5x5.png", "layout"] == "5x5 (found 5x5, expected 6x6)"
    assert layouts.loc["3x3.png", "layout"].startswith("3x3") and layouts.loc["uniform.png", "layout"] == "6x6"


def test_uniform_split_has_exact_integer_edges():
    layout = L.uniform_layout(1024, 1024, 6, 6)
    widths = np.diff(layout.col_edges)
    assert layout.col_edges[0] == 0 and layout.col_edges[-1] == 1024 and widths.sum() == 1024
    assert set(widths) == {170, 171} and len(layout.boxes()) == 36


def test_planted_defects_are_rejected_with_reasons(astronaut, tmp_path):
    image, boxes = compose(astronaut, 3, 3, gutter=8, seed=3)
    x0, y0, x1, y1 = boxes[1]
    image[y0:y1, x0:x1] = np.asarray(Image.fromarray(image[y0:y1, x0:x1]).filter(ImageFilter.GaussianBlur(6)))
    x0, y0, x1, y1 = boxes[2]
    image[y0:y1, x0:x1] = (image[y0:y1, x0:x1] * 0.08).astype(np.uint8)
    x0, y0, x1, y1 = boxes[4]
    image[y0:y1, x0:x1] = 200
    a, b = boxes[0], boxes[8]
    image[b[1]:b[3], b[0]:b[2]] = np.asarray(Image.fromarray(image[a[1]:a[3], a[0]:a[2]]).resize((b[2] - b[0], b[3] - b[1])))
    raw = write_raw(tmp_path / "raw", {"planted.png": image})
    manifest = G.extract_grids(raw, tmp_path / "out", G.ExtractOptions(layout="3x3", expected="3x3", detector="none"),
                               progress=False)
    reasons = dict(zip(manifest.row * 3 + manifest.col, manifest.reason, strict=True))
    assert reasons[1] == "blurred" and reasons[2] == "too_dark" and reasons[4] == "empty"
    assert reasons[8].startswith("duplicate of planted.png r0c0")
    assert all(reasons[k] == "" for k in (0, 3, 5, 6, 7)), reasons
    kept = manifest[manifest.kept]
    for rel in kept.path:
        assert Image.open(tmp_path / "out" / rel).size == (128, 128)
    assert len(list((tmp_path / "out" / "train" / "happiness").glob("*.png"))) == 5
    assert (tmp_path / "out" / "contact_sheets" / "train" / "planted.png").is_file()
    again = G.extract_grids(raw, tmp_path / "out", G.ExtractOptions(layout="3x3", expected="3x3", detector="none"),
                            progress=False)  # a rerun skips the grid and keeps the same verdicts
    pd.testing.assert_frame_equal(manifest, again)
    assert len(list((tmp_path / "out" / "train" / "happiness").glob("*.png"))) == 5


def test_haar_validation_crops_around_the_face(astronaut, tmp_path):
    image, boxes = compose(astronaut, 3, 3, gutter=8, seed=4)
    image[boxes[4][1]:boxes[4][3], boxes[4][0]:boxes[4][2]] = np.asarray(
        Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).resize((boxes[4][2] - boxes[4][0], boxes[4][3] - boxes[4][1])))
    image[boxes[4][1] + 40:boxes[4][1] + 60, boxes[4][0] + 40:boxes[4][0] + 200] = 30  # a bar, no face
    raw = write_raw(tmp_path / "raw", {"astro.png": image})
    manifest = G.extract_grids(raw, tmp_path / "out", G.ExtractOptions(layout="3x3", expected="3x3", detector="haar", margin=0.1),
                               progress=False)
    by_cell = manifest.set_index(manifest.row * 3 + manifest.col)
    assert by_cell.loc[4, "reason"] == "no_face"
    faces = by_cell.drop(index=4)
    assert (faces.n_faces == 1).mean() >= 0.75
    detected = faces[faces.n_faces == 1]
    cell_area = np.array([(b[2] - b[0]) * (b[3] - b[1]) for b in boxes])[detected.index]
    crop_area = ((detected.x1 - detected.x0) * (detected.y1 - detected.y0)).to_numpy()
    assert (crop_area < cell_area).all()  # cropped around the face, not the whole cell


def test_rerun_after_interruption_gives_the_same_manifest(astronaut, tmp_path, monkeypatch):
    grids = {f"g{i}.png": compose(astronaut, 3, 3, gutter=6, seed=10 + i)[0] for i in range(3)}
    raw = write_raw(tmp_path / "raw", grids)
    options = G.ExtractOptions(layout="3x3", expected="3x3", detector="none")
    whole = G.extract_grids(raw, tmp_path / "whole", options, progress=False)
    real = G.extract_grid
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # interrupted during the second grid
        return real(*args, **kwargs)

    monkeypatch.setattr(G, "extract_grid", flaky)
    with pytest.raises(KeyboardInterrupt):
        G.extract_grids(raw, tmp_path / "part", options, progress=False)
    assert not (tmp_path / "part" / "manifest.csv").exists()
    assert len(list((tmp_path / "part" / ".grids").glob("*.csv"))) == 1
    monkeypatch.setattr(G, "extract_grid", real)
    resumed = G.extract_grids(raw, tmp_path / "part", options, progress=False)
    pd.testing.assert_frame_equal(whole, resumed)
    raw_bytes = {p.name: p.read_bytes() for p in (tmp_path / "raw" / "train").iterdir()}
    G.extract_grids(raw, tmp_path / "part", options, progress=False, force=True)
    assert raw_bytes == {p.name: p.read_bytes() for p in (tmp_path / "raw" / "train").iterdir()}


def test_demo_grids_extract_end_to_end(demo_root, tmp_path, capsys):
    out = tmp_path / "processed"
    assert cli.main(["extract", str(demo_root / "synthetic" / "raw_grids"), str(out), "--detector", "none", "--layout", "auto",
                     "-q"]) == 0
    manifest = pd.read_csv(out / "manifest.csv")
    assert len(manifest) == 64 * 36 and manifest.kept.mean() > 0.95  # 32 train + 32 test grids of 6x6
    assert set(manifest.layout) == {"6x6"} and set(manifest.gender) == {"female", "male"}
    assert set(R.MANIFEST_COLUMNS) <= set(manifest.columns)
    assert "kept" in capsys.readouterr().out
    from fercore.data import load_samples

    samples = load_samples(out / "manifest.csv")
    assert len(samples) == manifest.kept.sum() and samples.label.nunique() == 8


def test_bad_inputs_fail_clearly_and_write_nothing(tmp_path, astronaut):
    good = compose(astronaut, 6, 6, seed=1)[0]

    def attempt(setup) -> str:
        root = tmp_path / f"case{len(list(tmp_path.iterdir()))}"
        setup(root)
        out = root.parent / (root.name + "_out")
        with pytest.raises(L.GridInputError) as err:
            G.extract_grids(root, out, G.ExtractOptions(detector="none"), progress=False)
        assert not out.exists() or not any(out.rglob("*.png")), "half-written output"
        return str(err.value)

    def non_image(root):
        write_raw(root, {"a.png": good})
        (root / "train" / "notes.txt").write_text("hi")
    assert "notes.txt" in attempt(non_image)

    assert "no split folders" in attempt(lambda root: root.mkdir())

    def listed_missing(root):
        write_raw(root, {"a.png": good})
        pd.DataFrame({"file": ["a.png", "ghost.png"], "emotion": "happy", "gender": "male"}).to_csv(root / "train" / "grids.csv", index=False)
    assert "ghost.png" in attempt(listed_missing)

    def unlisted(root):
        write_raw(root, {"a.png": good})
        Image.fromarray(good).save(root / "train" / "b.png")
    assert "b.png has no row" in attempt(unlisted)


def test_mtcnn_detector_uses_the_faces_module(astronaut):
    """`--detector mtcnn` is fercore.faces' MTCNN (installed by `make venv`), one box per face."""
    from fercore.faces.detection import MTCNNFaces

    detector = D.make_detector("mtcnn")
    assert isinstance(detector.faces, MTCNNFaces)
    faces = detector.detect(astronaut[0])
    assert len(faces) == 1 and faces.dtype.kind == "i"
    x, y, w, h = faces[0]
    assert 0 <= x and 0 <= y and x + w <= astronaut[0].shape[1] + 2 and w > astronaut[0].shape[1] / 3


def test_mtcnn_in_two_threads_gives_the_manifest_of_one(astronaut, tmp_path):
    """With workers=2, MTCNN grids run in threads of this process, each with its own detector: the
    manifest is that of one worker, and the caller's torch / OpenCV thread settings are put back."""
    from concurrent.futures import ThreadPoolExecutor

    import cv2
    import torch

    raw = write_raw(tmp_path / "raw", {f"g{i}.png": compose(astronaut, 3, 3, size=480, gutter=6, seed=20 + i)[0]
                                            for i in range(2)})
    options = G.ExtractOptions(layout="3x3", expected="3x3")
    before = torch.get_num_threads(), cv2.getNumThreads()
    one = G.extract_grids(raw, tmp_path / "one", options, progress=False, contact_sheets=False)
    two = G.extract_grids(raw, tmp_path / "two", options, workers=2, progress=False, contact_sheets=False)
    assert (torch.get_num_threads(), cv2.getNumThreads()) == before
    pd.testing.assert_frame_equal(one, two)
    assert (pd.to_numeric(one.n_faces) == 1).sum() >= 14  # faces found (the crops of one photograph are duplicates)
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(D.make_detector, "mtcnn").result() is not D.make_detector("mtcnn")


def test_phash_is_stable_and_discriminative(astronaut):
    import cv2

    gray = cv2.cvtColor(astronaut[0], cv2.COLOR_RGB2GRAY)
    assert Q.hamming(Q.phash(gray), Q.phash(cv2.resize(gray, (100, 100)))) <= 4
    assert Q.hamming(Q.phash(gray), Q.phash(255 - gray)) > 20
