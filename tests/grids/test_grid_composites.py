"""Grid extraction on hard composites of real photographs with known face squares: abutting
portraits that fill their cells, jittered faces, unequal rows, grey and dark backdrops,
low-resolution faces enlarged, and cells left blank, blurred or holding two faces.

"Located": the manifest box of some cell has IoU >= 0.5 with the known face square.
"Kept": a kept cell's box matches a face that was not deliberately degraded.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from gridkit import Composite, astronaut_faces, compose_portraits, fer_faces, iou, lfw_faces, located
from PIL import Image

from fercore import cli
from fercore.grids import detectors as D
from fercore.grids import evidence as V
from fercore.grids import extract as G
from fercore.grids import layout as L
from fercore.grids import records as R


def write_grids(root, composites: dict[str, Composite]):
    folder = root / "train"
    folder.mkdir(parents=True, exist_ok=True)
    for name, composite in composites.items():
        Image.fromarray(composite.image).save(folder / name)
    pd.DataFrame({"file": list(composites), "emotion": "happy", "gender": "female"}).to_csv(folder / "grids.csv", index=False)
    return root


def lfw_composites() -> dict[str, Composite]:
    """96 different LFW faces (25 px photographs, enlarged about 6x) in three grids."""
    faces = lfw_faces()
    return {
        "abutting.png": compose_portraits(faces[:36], 6, 6, fill=0.95, fill_jitter=0.05, offset=4, texture=25, level=128,
                                          shuffle=False, seed=1),
        "jittered.png": compose_portraits(faces[36:71], 6, 6, fill=0.85, fill_jitter=0.1, offset=8, edge_jitter=0.1,
                                          texture=20, level=150, blank=(3,), blurred=(8,), doubled=(12,), shuffle=False, seed=2),
        "unequal_dark.png": compose_portraits(faces[71:96], 5, 5, gutter=3, fill=0.9, offset=6, edge_jitter=0.15, level=30,
                                              shuffle=False, seed=3),
    }


def fer_composites(root) -> dict[str, Composite]:
    """105 different FER2013 faces (48 px, tight and often tilted or covered) in four grids."""
    faces = fer_faces(root, 105)
    return {
        "abutting_tight.png": compose_portraits(faces[:36], 6, 6, fill=1.0, level=128, shuffle=False, seed=4),
        "jittered.png": compose_portraits(faces[36:71], 6, 6, fill=0.85, fill_jitter=0.1, offset=8, edge_jitter=0.1,
                                          texture=20, level=140, blank=(17,), blurred=(30,), doubled=(25,), shuffle=False, seed=5),
        "unequal_grey.png": compose_portraits(faces[71:96], 5, 5, gutter=4, fill=0.9, offset=6, edge_jitter=0.15, level=128,
                                              shuffle=False, seed=6),
        "dark.png": compose_portraits(faces[96:105], 3, 3, gutter=10, fill=0.85, offset=8, level=25, shuffle=False, seed=7),
    }


def measure(manifest: pd.DataFrame, composites: dict[str, Composite]) -> dict[str, float | dict]:
    """Located share, kept share of the undegraded faces, and the reason given for each degraded cell."""
    hits, keeps, degraded = [], [], {}
    for name, composite in composites.items():
        rows = manifest[manifest.source.str.endswith("/" + name)]
        boxes = list(zip(rows.x0, rows.y0, rows.x1, rows.y1, strict=True))
        hits += located(composite, boxes)
        for i, (cell, square, kind) in enumerate(zip(composite.cells, composite.faces, composite.kinds, strict=True)):
            best = rows.iloc[int(np.argmax([iou(cell, b) for b in boxes]))]  # the manifest row of this cell
            if kind == "face":
                keeps.append(bool(best.kept) and iou(square, (best.x0, best.y0, best.x1, best.y1)) >= 0.5)
            else:
                degraded[f"{name} {kind} {i}"] = best.reason if not best.kept else "kept"
    return {"located": float(np.mean(hits)), "kept": float(np.mean(keeps)), "degraded": degraded}


@pytest.fixture(scope="module")
def lfw_run(tmp_path_factory):
    composites = lfw_composites()
    root = tmp_path_factory.mktemp("lfw")
    write_grids(root / "raw", composites)
    return composites, root


@pytest.mark.parametrize("detector, min_kept", [("mtcnn", 0.90), ("haar", 0.85)])
def test_lfw_composites_are_located_and_kept(lfw_run, detector, min_kept):
    """The default detector (MTCNN) locates >= 97 % and keeps >= 90 % of the undegraded faces;
    Haar locates as well and keeps fewer. Every degraded cell is rejected, two faces as such."""
    composites, root = lfw_run
    manifest = G.extract_grids(root / "raw", root / f"out_{detector}", G.ExtractOptions(layout="auto", detector=detector),
                               progress=False, contact_sheets=False)
    result = measure(manifest, composites)
    assert result["located"] >= 0.97, result
    assert result["kept"] >= min_kept, result
    assert "kept" not in result["degraded"].values(), result["degraded"]
    assert result["degraded"]["jittered.png doubled 12"] == "multiple_faces"
    layouts = manifest.drop_duplicates("source").set_index(manifest.drop_duplicates("source").source.str.split("/").str[-1])
    assert layouts.loc["abutting.png", "layout"] == "6x6" and layouts.loc["jittered.png", "layout"] == "6x6"
    assert layouts.loc["unequal_dark.png", "layout"] == "5x5 (found 5x5, expected 6x6)"
    assert layouts.loc["abutting.png", "layout_method"].startswith("evidence: ")


def test_fer2013_composites_are_located_and_kept(fer2013_root, tmp_path):
    """Tight, tilted, partly covered FER2013 faces: MTCNN (the default) locates >= 97 % and keeps >= 90 %."""
    composites = fer_composites(fer2013_root)
    write_grids(tmp_path / "raw", composites)
    manifest = G.extract_grids(tmp_path / "raw", tmp_path / "out", G.ExtractOptions(layout="auto"), progress=False,
                               contact_sheets=False)
    result = measure(manifest, composites)
    assert result["located"] >= 0.97, result
    assert result["kept"] >= 0.90, result
    assert "kept" not in result["degraded"].values(), result["degraded"]
    assert set(manifest.drop_duplicates("source").layout.str[:3]) == {"6x6", "5x5", "3x3"}


def test_evidence_finds_the_abutting_grid_the_cascade_misreads(lfw_run, tmp_path):
    """On abutting portraits the structural chooser (layout_strategy='cascade') reads spurious
    gutters and loses most faces; the evidence chooser finds 6x6, says what it overrode and what lost."""
    composites, root = lfw_run
    abutting = {"abutting.png": composites["abutting.png"]}
    write_grids(tmp_path / "raw", abutting)
    results = {}
    for strategy in ("cascade", "evidence"):
        options = G.ExtractOptions(layout="auto", layout_strategy=strategy, detector="haar")
        manifest = G.extract_grids(tmp_path / "raw", tmp_path / strategy, options, progress=False, contact_sheets=False)
        results[strategy] = (manifest, measure(manifest, abutting))
    old, new = results["cascade"], results["evidence"]
    assert old[0].layout.iloc[0] != "6x6" and old[1]["located"] < 0.5
    assert new[0].layout.iloc[0] == "6x6" and new[1]["located"] >= 0.97
    method, evidence = new[0].layout_method.iloc[0], new[0].layout_evidence.iloc[0]
    assert method.startswith("evidence: ") and f"overrides {old[0].layout_method.iloc[0]} {old[0].layout.iloc[0].split()[0]}" in method
    assert evidence.startswith("6x6 by evidence from ") and "runner-up" in evidence and "margin" in evidence
    assert old[0].layout_evidence.iloc[0] == ""


class FixedFaces(D.FaceDetector):
    """A detector that 'finds' the given boxes on any grid."""

    name = "fixed"

    def __init__(self, boxes: np.ndarray):
        self.boxes = np.asarray(boxes, dtype=int).reshape(-1, 4)

    def detect_grid(self, rgb: np.ndarray) -> np.ndarray:
        return self.boxes


def face_boxes(rows: int, cols: int, size: int = 1024, fill: float = 0.6, drop: float = 0.0, seed: int = 0) -> np.ndarray:
    """Centred face boxes of a uniform rows x cols grid, a share ``drop`` of them missed."""
    rng = np.random.default_rng(seed)
    ys, xs = L.edges(size, rows), L.edges(size, cols)
    boxes = []
    for r in range(rows):
        for c in range(cols):
            w, h = (xs[c + 1] - xs[c]) * fill, (ys[r + 1] - ys[r]) * fill
            boxes.append(((xs[c] + xs[c + 1] - w) / 2 + rng.uniform(-6, 6), (ys[r] + ys[r + 1] - h) / 2 + rng.uniform(-6, 6), w, h))
    keep = rng.random(len(boxes)) >= drop
    return np.round(np.array(boxes)[keep]).astype(int)


@pytest.mark.parametrize("drop", [0.0, 0.4])
def test_expected_layout_supported_by_faces_beats_a_crowded_one(drop):
    """36 faces of a 6x6 grid (40 % of them missed, too): 6x6 wins; a 4x4 would hold several faces a cell."""
    blank = np.full((1024, 1024, 3), 128, np.uint8)
    choice = V.choose_layout(blank, (6, 6), FixedFaces(face_boxes(6, 6, drop=drop)))
    assert choice.layout.name == "6x6"
    four = V.score_layout(L.uniform_layout(1024, 1024, 4, 4), choice.faces, "uniform", (6, 6))
    assert four.crowded >= 8 and four.score < choice.candidates[0].score - 5
    runner_up = choice.runner_up
    assert runner_up is not None and runner_up.layout.name != "6x6" and runner_up.score < choice.candidates[0].score
    assert f"margin {choice.candidates[0].score - runner_up.score:.1f}" in choice.layout.evidence


def test_faces_override_the_expected_layout_and_fit_unequal_rows():
    """Faces of a 5x5 grid with unequal rows and columns (each face 80 % of its cell): 5x5 wins
    over the expected 6x6, with edges fitted to the faces (halfway between the faces either side:
    off by half the difference of the two cells' margins); uniform edges would be off by up to 55 px."""
    rows, cols = [0, 150, 390, 560, 800, 1024], [0, 230, 400, 620, 810, 1024]
    boxes = [(cols[c] + 0.1 * (cols[c + 1] - cols[c]), rows[r] + 0.1 * (rows[r + 1] - rows[r]),
              0.8 * (cols[c + 1] - cols[c]), 0.8 * (rows[r + 1] - rows[r])) for r in range(5) for c in range(5)]
    choice = V.choose_layout(np.full((1024, 1024, 3), 128, np.uint8), (6, 6), FixedFaces(np.round(boxes)))
    assert choice.layout.name == "5x5" and choice.layout.note == "found 5x5, expected 6x6"
    assert choice.layout.method == "evidence: fitted, overrides expected 6x6"
    assert np.abs(np.array(choice.layout.row_edges) - rows).max() <= 6
    assert np.abs(np.array(choice.layout.col_edges) - cols).max() <= 6


def test_too_few_faces_leave_the_structural_layout(tmp_path):
    """Fewer faces than a quarter of the expected cells: no evidence to weigh, the structure stands."""
    choice = V.choose_layout(np.full((1024, 1024, 3), 128, np.uint8), (6, 6), FixedFaces(face_boxes(6, 6)[:5]))
    assert choice.layout.name == "6x6" and choice.candidates == []
    assert "too few" in choice.layout.evidence and choice.layout.method.endswith("(structure only)")


def test_cell_detection_finds_faces_that_fill_and_tilt(lfw_run):
    """Faces filling their cell and tilted by 25 degrees: found with the padded square and the
    turned second look; without the turns fewer are found."""
    import cv2

    faces = lfw_faces()[:24]
    cells = []
    for i, face in enumerate(faces):
        big = cv2.resize(face, (170, 170), interpolation=cv2.INTER_CUBIC)
        angle = 25 if i % 2 else -25
        matrix = cv2.getRotationMatrix2D((85, 85), angle, 1.0)
        cells.append(cv2.warpAffine(big, matrix, (170, 170), borderMode=cv2.BORDER_REPLICATE))
    detector = D.make_detector("mtcnn")
    found = detector.detect_cells(cells)
    assert np.mean([len(f) == 1 for f in found]) >= 0.9
    for boxes in found:
        for x, y, w, h in boxes:
            assert 0 <= x and 0 <= y and x + w <= 170 and y + h <= 170 and w > 50
    straight = D.MTCNNDetector()
    straight.angles = ()
    assert np.mean([len(f) == 1 for f in straight.detect_cells(cells)]) < np.mean([len(f) == 1 for f in found])


def test_cli_extract_auto_finds_the_abutting_6x6_and_prints_the_evidence(lfw_run, tmp_path, capsys):
    composites, _ = lfw_run
    write_grids(tmp_path / "raw", {"abutting.png": composites["abutting.png"]})
    assert cli.main(["extract", str(tmp_path / "raw"), str(tmp_path / "out"), "--layout", "auto", "--workers", "1", "-q"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("layout: "))
    assert "abutting.png: 6x6 [evidence: " in line and "6x6 by evidence from " in line and "runner-up" in line
    assert pd.read_csv(tmp_path / "out" / "manifest.csv").layout.eq("6x6").all()


def test_records_of_the_previous_version_still_load(lfw_run, tmp_path):
    """A rerun over an output folder written before layout_evidence existed reads its records."""
    composites, _ = lfw_run
    write_grids(tmp_path / "raw", {"unequal_dark.png": composites["unequal_dark.png"]})
    options = G.ExtractOptions(layout="5x5", expected="5x5", detector="none")
    first = G.extract_grids(tmp_path / "raw", tmp_path / "out", options, progress=False, contact_sheets=False)
    (record,) = (tmp_path / "out" / ".grids").glob("*.csv")
    pd.read_csv(record).drop(columns="layout_evidence").to_csv(record, index=False)
    again = G.extract_grids(tmp_path / "raw", tmp_path / "out", options, progress=False, contact_sheets=False)
    assert list(again.columns) == R.MANIFEST_COLUMNS + R.GRID_COLUMNS and (again.layout_evidence == "").all()
    assert again.kept.tolist() == first.kept.tolist()


def test_astronaut_portraits_enlarged_from_low_resolution_are_located():
    """A real photograph shrunk to 40 px and enlarged (a generator's upscaled output), abutting:
    the evidence locates every face (the crops are one person: only the layout is checked here)."""
    composite = compose_portraits(astronaut_faces(9, seed=2), 3, 3, fill=0.95, lowres=40, texture=20, level=90, seed=8)
    choice = V.choose_layout(composite.image, (6, 6), D.make_detector("haar"))
    assert choice.layout.name == "3x3", choice.layout.evidence
    boxes = [(x0, y0, x1, y1) for _, _, x0, y0, x1, y1 in choice.layout.boxes()]
    assert all(located(composite, boxes))


def test_grid_faces_confirmed_on_their_cells_agree_with_the_cell_search(lfw_run):
    """A cell whose face the whole-grid pass found is confirmed by O-net alone instead of searched:
    the boxes agree with the full search (IoU >= 0.7 on >= 90 % of cells), no face the search finds
    is lost, and a hint on a faceless patch is not confirmed (the cell is searched, no face)."""
    composites, _ = lfw_run
    composite = composites["abutting.png"]
    rgb = composite.image
    layout = L.uniform_layout(rgb.shape[1], rgb.shape[0], 6, 6)
    cells = [rgb[y0:y1, x0:x1] for _, _, x0, y0, x1, y1 in layout.boxes()]
    detector = D.MTCNNDetector()
    hints = G.cell_hints(layout.boxes(), detector.detect_grid(rgb))
    assert hints is not None and sum(h is not None for h in hints) >= 30
    searched, hinted = detector.detect_cells(cells), detector.detect_cells(cells, hints)
    assert sum(len(b) == 1 for b in hinted) >= sum(len(b) == 1 for b in searched) >= 34
    overlaps = [iou((a[0], a[1], a[0] + a[2], a[1] + a[3]), (b[0], b[1], b[0] + b[2], b[1] + b[3]))
                for (a, *_), (b, *_) in ((h, s) for h, s in zip(hinted, searched, strict=True) if len(h) == len(s) == 1)]
    assert len(overlaps) >= 34 and np.mean(np.array(overlaps) >= 0.7) >= 0.9, overlaps
    squares = [D._square(cell) for cell in cells[:4]]
    given = [D._to_square(h, sq) for h, sq in zip(hints[:4], squares, strict=True)]
    sure = detector.faces.refine([sq for sq, _, _ in squares], given)
    assert all(len(d.faces) == 1 and d.faces[0].score >= D.REFINE_MIN_SCORE for d in sure)
    assert all(d.faces[0].landmarks.shape == (5, 2) for d in sure)
    blank = np.full((170, 170, 3), 128, dtype=np.uint8)
    assert [len(b) for b in detector.detect_cells([blank], [(10.0, 10.0, 60.0, 60.0)])] == [0]
