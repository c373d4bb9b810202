"""The blind label sheet: written shuffled with a separate key, filled programmatically (some labels changed), read
back with clear errors, Cohen's kappa checked against scikit-learn, confirmed faces counted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import cohen_kappa_score

from fercore import cli
from fercore.synthetic import LabelSheetError, confirmed_faces, label_agreement, read_label_sheet, write_blind_sheet

EMOTIONS = ["Anger", "Fear", "Happiness", "Surprise"]
GRIDS, PER_GRID = 3, 6  # 3 grids per emotion, 6 faces each: 72 faces


@pytest.fixture()
def manifest(tmp_path):
    rows = []
    for e, emotion in enumerate(EMOTIONS):
        for g in range(GRIDS):
            for k in range(PER_GRID):
                path = tmp_path / "processed" / "test" / emotion / f"{emotion}_{g}_{k}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (24, 24), (40 * e, 20 * g, 10 * k)).save(path)
                rows.append({"source": f"{emotion}_grid{g}.png", "split": "test", "emotion": emotion.lower(),
                             "gender": "female" if g % 2 else "male", "kept": True, "path": str(path.relative_to(tmp_path / "processed"))})
    table = pd.DataFrame(rows)
    table.to_csv(tmp_path / "processed" / "manifest.csv", index=False)
    return tmp_path / "processed" / "manifest.csv"


def fill(sheet, key, changed: dict[int, str], unusable=()):
    """The person's sheet: the prompt's emotion (as a folder-name synonym) except ``changed`` {face: emotion}."""
    keys = pd.read_csv(key)
    synonyms = {"Anger": "angry", "Fear": "fearful", "Happiness": "happy", "Surprise": "surprised"}
    table = pd.read_csv(sheet, dtype=str, keep_default_na=False)
    by_face = dict(zip(keys["face"], keys["prompt_emotion"], strict=True))
    table["emotion"] = [changed.get(int(f), synonyms[by_face[int(f)]]) for f in table["face"]]
    table["usable"] = ["no" if int(f) in unusable else "yes" for f in table["face"]]
    table.loc[table["usable"] == "no", "emotion"] = ""
    table.to_csv(sheet, index=False)
    return keys


def test_sheet_is_blind_and_agreement_matches_sklearn(manifest, tmp_path):
    written = write_blind_sheet(manifest, tmp_path / "sheet", per_page=30)
    assert written.faces == 72 and len(written.pages) == 3 and written.key == tmp_path / "sheet-key" / "label_key.csv"
    blank = pd.read_csv(written.sheet, dtype=str, keep_default_na=False)
    assert list(blank.columns) == ["face", "emotion", "gender", "usable", "comment"] and (blank["emotion"] == "").all()
    assert not any("grid" in f.name or "Anger" in f.name for f in (tmp_path / "sheet").rglob("*"))  # nothing names a prompt
    keys = pd.read_csv(written.key)
    assert keys["source"].iloc[:6].nunique() > 2  # shuffled across grids
    assert Image.open(written.pages[0]).size[0] > 8 * 128

    first_grid = keys.index[keys["source"] == "Fear_grid0.png"]
    changed = {int(keys["face"][i]): "Surprise" for i in first_grid[:4]}  # fear read as surprise on 4 faces of one grid
    changed.update({int(keys["face"][keys["prompt_emotion"] == "Happiness"].iloc[0]): "neutral"})
    unusable = {int(keys["face"][keys["prompt_emotion"] == "Anger"].iloc[0])}
    fill(written.sheet, written.key, changed, unusable)
    joined = read_label_sheet(written.sheet)
    assert joined["confirmed"].sum() == 72 - 5 - 1 and (~joined["usable"]).sum() == 1
    rows = {r.emotion: r for r in label_agreement(joined, n_boot=300)}
    usable = joined[joined["usable"]]
    assert rows["all"].kappa == pytest.approx(cohen_kappa_score(usable["prompt_emotion"], usable["person_emotion"]))
    fear = cohen_kappa_score(usable["prompt_emotion"] == "Fear", usable["person_emotion"] == "Fear")
    assert rows["Fear"].kappa == pytest.approx(fear) and rows["Fear"].confirmed == 14 and rows["Fear"].grids == 3
    assert rows["Anger"].usable == 17 and rows["Anger"].kappa == pytest.approx(1.0)
    assert rows["all"].kappa_low < rows["all"].kappa <= rows["all"].kappa_high <= 1.0
    assert 0.8 < rows["all"].kappa < 0.95
    faces = pd.read_csv(written.key).assign(path=lambda t: t["path"])
    assert len(confirmed_faces(faces, joined)) == 66


def test_filled_sheet_errors_name_the_line_and_the_fix(manifest, tmp_path):
    written = write_blind_sheet(manifest, tmp_path / "sheet")
    fill(written.sheet, written.key, {3: "bored"})
    table = pd.read_csv(written.sheet, dtype=str, keep_default_na=False)
    table = pd.concat([table.iloc[:-1], table.iloc[[0]]], ignore_index=True)  # the last face missing, the first twice
    table.loc[5, "usable"] = "maybe"
    table.to_csv(written.sheet, index=False)
    with pytest.raises(LabelSheetError) as err:
        read_label_sheet(written.sheet)
    message = str(err.value)
    assert str(written.sheet) in message and "unknown emotion 'bored'" in message and "line 4 (face 3)" in message
    assert "face 1 is listed twice (lines 2 and 73)" in message and "1 face(s) have no row: 72" in message
    assert "usable 'maybe': write yes or no" in message
    with pytest.raises(LabelSheetError, match="inside the sheet folder"):
        write_blind_sheet(manifest, tmp_path / "other", key=tmp_path / "other" / "key.csv")


def test_cli_writes_and_reads_a_sheet(manifest, tmp_path, capsys):
    assert cli.main(["label-sheet", str(manifest), "--out", str(tmp_path / "s"), "--split", "test"]) == 0
    assert "72 faces" in capsys.readouterr().out
    fill(tmp_path / "s" / "label_sheet.csv", tmp_path / "s-key" / "label_key.csv", {})
    assert cli.main(["label-agreement", str(tmp_path / "s" / "label_sheet.csv"), "--n-boot", "50"]) == 0
    out = capsys.readouterr().out
    assert "all" in out and "1.000" in out
    assert cli.main(["label-sheet", str(manifest), "--out", str(tmp_path / "s")]) == 2  # refuses to overwrite


def test_fast_kappa_equals_sklearn():
    from fercore.analysis import kappa_codes

    rng = np.random.default_rng(0)
    for k in (2, 5):
        a = rng.integers(0, k, 200)
        b = np.where(rng.random(200) < 0.6, a, rng.integers(0, k, 200))
        assert kappa_codes(a, b, k) == pytest.approx(cohen_kappa_score(a, b))
    assert np.isnan(kappa_codes(np.zeros(5, int), np.zeros(5, int), 2))
