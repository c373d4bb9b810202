"""The demo extracts its synthetic grids with face crops (DEMO_EXTRACT), and re-extracts a demo
folder that an older fercore extracted with cell crops instead of refusing it."""

from __future__ import annotations

import json

import pytest

from fercore.demo import pipeline
from fercore.demo.pipeline import DEMO_EXTRACT, DemoRunConfig


def test_the_demo_extracts_face_crops_with_the_portrait_framing():
    assert (DEMO_EXTRACT.crop, DEMO_EXTRACT.framing, DEMO_EXTRACT.detector, DEMO_EXTRACT.layout) == ("face", "portrait", "mtcnn", "auto")


@pytest.mark.parametrize(("recorded", "force"), [(None, False), ({"layout": "auto", "detector": "mtcnn", "crop": "face",
                                                                  "framing": "portrait"}, False),
                                                 ({"layout": "auto", "detector": "none", "crop": "cell", "framing": ""}, True)])
def test_an_older_cell_crop_extraction_is_redone(tmp_path, monkeypatch, recorded, force):
    calls = []
    monkeypatch.setattr(pipeline, "extract_grids", lambda raw, out, options, **kw: calls.append((raw, out, options, kw)))
    processed = tmp_path / "synthetic" / "processed"
    if recorded is not None:
        (processed / ".grids").mkdir(parents=True)
        (processed / ".grids" / "options.json").write_text(json.dumps(recorded))
    assert pipeline._extract_synthetic(DemoRunConfig(data_dir=tmp_path, progress=False)) == processed
    [(raw, out, options, kw)] = calls
    assert (raw, out, options, kw["force"]) == (tmp_path / "synthetic" / "raw_grids", processed, DEMO_EXTRACT, force)
