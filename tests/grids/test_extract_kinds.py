"""Extraction of what generators return (issue 28), on composites of FER2013 faces with known
face boxes (each face's own MTCNN box, :func:`fercore.grids.compose.known_faces`): rows of 5-7
faces, faces at 55-70 % of their cell off-centre, 16:9 and 9:16 canvases, regular grids.

"Located": the manifest's detected face box has IoU >= 0.5 with the true face box. Face crops
(``--crop face``) are checked by detecting the faces again on the written crops. ``--crop cell``
is checked byte for byte against the crops of the code before face crops existed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fercore import cli
from fercore.grids import compose as C
from fercore.grids import extract as G
from fercore.grids.cells import framing

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def kinds_run(fer2013_root, tmp_path_factory):
    """One composite of each kind (98 faces), extracted once with --crop face --layout auto."""
    faces, boxes = C.known_faces(C.fer_faces(fer2013_root, 160))
    composites, k = {}, 0
    for i, kind in enumerate(C.KINDS):
        composites[f"{kind}.png"] = C.compose_kind(kind, faces[k:], seed=i, face_boxes=boxes[k:])
        k += len(composites[f"{kind}.png"].cells)
    assert k <= len(faces), "too few known faces for distinct faces in every cell"
    root = tmp_path_factory.mktemp("kinds")
    C.write_grids(root / "raw" / "train", composites)
    manifest = G.extract_grids(root / "raw", root / "out", G.ExtractOptions(layout="auto", crop="face"), progress=False,
                               contact_sheets=False)
    return composites, manifest, root / "out"


@pytest.mark.slow  # the module's composites: about 50 s of CPU (known faces, extraction, re-detection)
def test_every_kind_is_located(kinds_run):
    """>= 95 % of the faces located on each irregular kind, >= 97 % on the regular grid; rows of
    their own length found as such; canvases read with their own row and column counts."""
    composites, manifest, _ = kinds_run
    rates = {}
    for name, composite in composites.items():
        rows = manifest[manifest.source.str.endswith("/" + name)]
        found = rows[rows.face_x0.astype(str) != ""][["face_x0", "face_y0", "face_x1", "face_y1"]].astype(float)
        rates[name] = float(np.mean(C.located(composite, found.values.tolist())))
    assert rates["regular.png"] >= 0.97 and min(rates.values()) >= 0.95, rates
    layouts = manifest.drop_duplicates("source").set_index(manifest.drop_duplicates("source").source.str.split("/").str[-1]).layout
    assert layouts["uneven_rows.png"] == "rows 5,7,6,5,7"
    assert layouts["wide_16x9.png"].startswith("3x6") and layouts["tall_9x16.png"].startswith("6x3")
    assert manifest.kept.mean() >= 0.95 and set(manifest.crop) == {"face"} and set(manifest.framing) == {"fer2013"}


@pytest.mark.slow
def test_face_crops_are_framed_alike(kinds_run):
    """Faces detected again on the written crops: median box centre within 3 % of the crop size of
    the framing's centre, median box width within 5 % of the framing's."""
    from fercore.faces import framing_measures, make_face_detector

    _, manifest, out = kinds_run
    kept = manifest[manifest.kept].iloc[::2]  # every other face: enough for medians, half the time
    found = make_face_detector("mtcnn").detect([np.asarray(Image.open(out / p)) for p in kept.path])
    m = framing_measures(found)
    frame = framing("fer2013")
    assert len(m) >= 0.9 * len(kept)
    assert abs(((m.box_x0 + m.box_x1) / 2).median() - frame.box_cx) <= 0.03
    assert abs(((m.box_y0 + m.box_y1) / 2).median() - frame.box_cy) <= 0.03
    assert abs(m.box_w.median() - frame.box_w) <= 0.05 * frame.box_w


def test_crop_cell_reproduces_the_earlier_crops_byte_for_byte(tmp_path):
    """--crop cell writes the very files (and boxes) the extraction wrote before face crops existed
    (reference: tests/grids/cell_crops_reference.json, from that code on this composite)."""
    from gridkit import lfw_faces

    reference = json.loads((HERE / "cell_crops_reference.json").read_text())
    composite = C.compose_portraits(lfw_faces()[:9], 3, 3, size=384, gutter=4, fill=0.8, offset=6, level=120, texture=15,
                                    shuffle=False, seed=11)
    C.write_grids(tmp_path / "raw" / "train", {"g.png": composite})
    for detector in ("haar", "none", "mtcnn"):
        options = G.ExtractOptions(layout="3x3", expected="3x3", detector=detector, crop="cell")
        manifest = G.extract_grids(tmp_path / "raw", tmp_path / detector, options, progress=False, contact_sheets=False)
        written = {r.path: hashlib.sha256((tmp_path / detector / r.path).read_bytes()).hexdigest()[:16]
                   for r in manifest.itertuples() if r.kept}
        assert written == reference[detector], detector
        assert manifest[["x0", "y0", "x1", "y1"]].values.tolist() == reference[f"{detector}_boxes"]


@pytest.mark.slow
def test_one_bad_grid_never_stops_the_batch(fer2013_root, tmp_path, capsys):
    """An unreadable file and a picture without faces among good grids (one of them 9:16): every
    good grid extracted, the two others in the manifest with reasons, exit 0 (--strict: 1)."""
    faces, boxes = C.known_faces(C.fer_faces(fer2013_root, 40))
    good = {"square.png": C.compose_portraits(faces, 3, 3, size=384, fill=0.8, texture=20, face_boxes=boxes, shuffle=False),
            "tall.png": C.compose_portraits(faces[9:], 4, 2, width=288, height=512, fill=0.8, face_boxes=boxes[9:], shuffle=False)}
    rng = np.random.default_rng(0)
    scenery = np.clip(np.linspace(40, 220, 400)[None, :, None] + rng.normal(0, 20, (300, 400, 3)), 0, 255).astype(np.uint8)
    raw = tmp_path / "raw"
    C.write_grids(raw / "train", {**good, "scenery.png": scenery, "broken.png": scenery})
    (raw / "train" / "broken.png").write_bytes(b"\x89PNG garbage")
    args = ["extract", str(raw), str(tmp_path / "out"), "--layout", "auto", "--workers", "1", "-q"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "2 grids failed" in out and "from 2 of 4 grids" in out
    manifest = pd.read_csv(tmp_path / "out" / "manifest.csv", dtype={"reason": str})
    by_grid = manifest.groupby(manifest.source.str.split("/").str[-1])
    assert by_grid.kept.sum()["square.png"] >= 8 and by_grid.kept.sum()["tall.png"] >= 7
    reasons = by_grid.reason.first()
    assert reasons["broken.png"].startswith("grid_failed: ") and "not a readable image" in reasons["broken.png"]
    assert reasons["scenery.png"].startswith("grid_failed: ") and "no face found" in reasons["scenery.png"]
    assert (tmp_path / "out" / "contact_sheets" / "train" / "broken.png").is_file()
    assert cli.main([*args, "--strict"]) == 1  # the failures are recorded: the rerun reports them again


def test_folders_extracted_before_face_crops(tmp_path):
    """An output folder recorded before crop / framing / irregular existed: without a detector
    (every crop a cell crop) it is taken as unchanged; with one it held cell crops, so face crops are refused."""
    from dataclasses import asdict

    from fercore.grids.layout import GridInputError

    for detector in ("none", "mtcnn"):
        old = json.loads(json.dumps(asdict(G.ExtractOptions(layout="auto", detector=detector)), default=str))
        for key in ("crop", "framing", "irregular"):
            old.pop(key)
        for key in ("min_blur_face", "max_padding"):
            old["thresholds"].pop(key)
        record = tmp_path / detector / ".grids" / "options.json"
        record.parent.mkdir(parents=True)
        record.write_text(json.dumps(old))
        check = lambda det=detector: G._check_options(tmp_path / det, G.ExtractOptions(layout="auto", detector=det), False)  # noqa: E731
        if detector == "none":
            check()
        else:
            with pytest.raises(GridInputError, match="crop: 'cell' -> 'face'.*--force"):
                check()
