"""grids.csv columns reach every face of their grid: in the manifest, the sample tables and the
predictions the chapters score; a column that would clash with fercore's own is refused."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import pattern_image
from PIL import Image

from fercore import grids as G
from fercore import studies
from fercore.data import load_samples
from fercore.grids import records as R
from fercore.inference import InferenceCache

GRIDS = {  # split -> rows of its grids.csv; test has a column train lacks, and a user's own column
    "train": [{"file": "g0.png", "emotion": "happy", "gender": "female", "intensity": "high", "layout": "2x2", "generator": "flux-dev",
               "template": "movie", "prompt": "a grid, high happy", "seed": "11", "lighting": "studio"},
              {"file": "g1.png", "emotion": "sad", "gender": "male", "intensity": "extreme", "layout": "3x3", "generator": "flux-schnell",
               "template": "emotion-first", "prompt": "Extreme sad faces. a grid", "seed": "12", "lighting": "window"}],
    "test": [{"file": "g2.png", "emotion": "happy", "gender": "male", "intensity": "high", "layout": "2x2", "generator": "flux-dev",
              "template": "movie", "prompt": "a grid, high happy", "seed": "13", "lighting": "studio", "batch": "b7"},
             {"file": "g3.png", "emotion": "sad", "gender": "female", "intensity": "extreme", "layout": "2x2", "generator": "flux-schnell",
              "template": "emotion-first", "prompt": "Extreme sad faces. a grid", "seed": "14", "lighting": "window", "batch": "b8"}],
}
CARRIED = ["generator", "template", "prompt", "seed", "lighting"]


def write_raw(raw, tables=GRIDS):
    for split, rows in tables.items():
        (raw / split).mkdir(parents=True)
        for k, row in enumerate(rows):
            grid = Image.new("RGB", (128, 128))
            for c in range(4):
                grid.paste(pattern_image(64, 64, seed=900 + 10 * k + c + 100 * (split == "test")), (64 * (c % 2), 64 * (c // 2)))
            grid.save(raw / split / row["file"])
        pd.DataFrame(rows).to_csv(raw / split / "grids.csv", index=False)
    return raw


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    root = tmp_path_factory.mktemp("columns")
    manifest = G.extract_grids(write_raw(root / "raw"), root / "out", G.ExtractOptions(layout="2x2", detector="none"),
                               progress=False, contact_sheets=False)
    return root / "out", manifest


def test_every_grids_csv_column_reaches_each_face_of_its_grid(extracted):
    out, manifest = extracted
    written = pd.read_csv(out / "manifest.csv", dtype=str).fillna("")
    assert list(written.columns) == R.MANIFEST_COLUMNS + ["layout_asked", *CARRIED, "batch"]
    assert written.columns.tolist() == manifest.columns.tolist()
    for split, rows in GRIDS.items():
        for row in rows:
            faces = written[written.source.str.endswith(f"{split}/{row['file']}")]
            assert len(faces) == 4  # 2x2 cells
            for column in CARRIED + ["batch"] * (split == "test"):
                assert set(faces[column]) == {row[column]}, (row["file"], column)
            assert set(faces.layout_asked) == {row["layout"]} and set(faces.layout) == {"2x2"}  # asked beside detected
            assert set(faces.intensity) == {row["intensity"]}
    assert set(written[written.split == "train"].batch) == {""}  # a column only the test grids.csv has


def test_sample_tables_and_scored_predictions_keep_the_grid_columns(extracted, tiny_model):
    out, manifest = extracted
    samples = load_samples(out / "manifest.csv")
    assert len(samples) == int(manifest.kept.sum()) > 0
    assert set(G.grid_columns(samples)) == {"layout_asked", *CARRIED, "batch"}
    sets = studies.data.test_sets({}, out)  # the synthetic test set the chapters score
    synthetic = sets["synthetic"]
    assert set(synthetic.seed.astype(str)) == {"13", "14"} and set(synthetic.lighting) == {"studio", "window"}
    scores = studies.scoring.score_models({"m": tiny_model}, sets, InferenceCache(workers=0, progress=False), regime="r", n_boot=20)
    preds = scores[("m", "synthetic")].preds
    assert {"layout_asked", *CARRIED, "batch", "source", "intensity"} <= set(preds.columns)
    for row in GRIDS["test"]:
        faces = preds[preds.source.astype(str).str.endswith(row["file"])]
        assert len(faces) and set(faces.generator) == {row["generator"]} and set(faces.template) == {row["template"]}
        assert set(faces.batch) == {row["batch"]} and set(faces.prompt) == {row["prompt"]}


def test_every_grid_is_scored_when_both_splits_are_asked_for(extracted):
    """Models that never trained on synthetic faces are scored on train and test grids alike (issue 30, item 5): the
    pooled set keeps each face's split, checks no train twins (train is scored itself) and says which grids it used."""
    out, manifest = extracted
    kept = manifest[manifest.kept].groupby("split").size()  # the quality checks drop a few pattern cells
    test_only = studies.data.test_sets({}, out)["synthetic"]
    sets = studies.data.test_sets({}, out, synthetic_split=["train", "test", "train"])
    pooled = sets["synthetic"]
    assert sorted(pooled.split.unique()) == ["test", "train"] and len(pooled) == kept.sum() > len(test_only) == kept["test"]
    assert pooled.source.nunique() == 4 and set(pooled[pooled.split == "test"].path) == set(test_only.path)
    assert sets.duplicates["synthetic"]["note"] == "train is scored itself"
    line = studies.data.split_line(pooled)
    assert line == f"synthetic: test ({kept['test']} faces, 2 grids) + train ({kept['train']} faces, 2 grids)", line
    with pytest.raises(ValueError, match="no synthetic split to score"):
        studies.data.test_sets({}, out, synthetic_split=[])


def test_a_rerun_over_records_of_before_gets_the_grid_columns(extracted, tmp_path):
    """Records are per cell; the grid columns come from grids.csv at every run, so older records get them too."""
    out, manifest = extracted
    again = G.extract_grids(out.parent / "raw", out, G.ExtractOptions(layout="2x2", detector="none"), progress=False, contact_sheets=False)
    pd.testing.assert_frame_equal(manifest, again)
    record = next((out / ".grids").glob("*.csv"))
    assert "generator" not in pd.read_csv(record).columns  # the per-grid record itself is unchanged


@pytest.mark.parametrize("column", ["path", "kept", "layout_asked", "split", "label", "p_Anger", "Path", "Layout"])
def test_a_user_column_named_like_a_manifest_column_is_refused(tmp_path, column):
    rows = [{**GRIDS["train"][0], column: "x"}]
    raw = write_raw(tmp_path / "raw", {"train": rows})
    with pytest.raises(G.GridInputError) as err:
        G.extract_grids(raw, tmp_path / "out", G.ExtractOptions(layout="2x2", detector="none"), progress=False)
    message = str(err.value)
    fix = f"write it {column.lower()!r}, in lower case" if column == "Layout" else f"'grid_{column}'"
    assert f"column {column!r}" in message and str(raw / "train" / "grids.csv") in message and fix in message
    assert not (tmp_path / "out").exists()
