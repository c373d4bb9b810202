"""Chapters and the person's label check: one line when unchecked; with a filled sheet, the agreement table and the
synthetic scores on all kept faces beside the confirmed ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fercore.book import Chapter
from fercore.book.chapter import MissingPathError
from fercore.core.labels import CLASSES
from fercore.studies import labelcheck
from fercore.studies.scoring import SetScore


def joined_table(n_per=12):
    """Two emotions, two grids each; the person reads 3 Fear faces of grid f0 as Surprise and marks one unusable."""
    rows = []
    for emotion in ("Fear", "Happiness"):
        for g in range(2):
            for k in range(n_per // 2):
                rows.append({"face": len(rows) + 1, "path": f"/s/test/{emotion}/{emotion}{g}_{k}.png", "source": f"{emotion}{g}",
                             "split": "test", "prompt_emotion": emotion, "prompt_gender": "", "person_emotion": emotion,
                             "person_gender": "", "usable": True})
    table = pd.DataFrame(rows)
    table.loc[:2, "person_emotion"] = "Surprise"
    table.loc[3, ["usable", "person_emotion"]] = [False, ""]
    table["confirmed"] = table["usable"] & (table["person_emotion"] == table["prompt_emotion"])
    return table


def test_confirmed_scores_beside_all_kept(tmp_path):
    joined = joined_table()
    check = labelcheck.LabelCheck(joined, str(tmp_path / "label_sheet.csv"))
    y = [CLASSES.index(e) for e in joined["prompt_emotion"]]
    pred = np.array(y)
    pred[:3] = CLASSES.index("Surprise")  # the model agrees with the person on the three faces
    preds = pd.DataFrame({"path": joined["path"], "label": [CLASSES[i] for i in y], "pred": [CLASSES[i] for i in pred],
                          **{f"p_{c}": 0.0 for c in CLASSES}, "error": ""})
    scores = {("m", "synthetic"): SetScore("m", "trained on real", "synthetic", list(CLASSES), preds, {}),
              ("m", "real"): SetScore("m", "trained on real", "real", list(CLASSES), preds, {})}
    (row,) = labelcheck.confirmed_scores(scores, check)  # real sets are left out
    assert (row.n_all, row.n_confirmed) == (24, 20)
    off_sheet = preds.assign(path=[f"{p}.train.png" for p in preds["path"]], pred=preds["label"])  # train grids, not on the sheet
    pooled = {("m", "synthetic"): SetScore("m", "trained on real", "synthetic", list(CLASSES), pd.concat([preds, off_sheet]), {})}
    assert labelcheck.confirmed_scores(pooled, check) == [row]  # "all kept" means the faces the person saw
    assert row.accuracy_all == pytest.approx(21 / 24) and row.accuracy_confirmed == pytest.approx(1.0)
    assert row.balanced_all == pytest.approx((9 / 12 + 1) / 2)
    chapter = Chapter(tmp_path / "run", "rq1", show=False)
    sentences = labelcheck.show_label_check(chapter, check, scores)
    agreement = pd.read_csv(tmp_path / "run" / "rq1" / "tables" / "label_agreement.csv").set_index("prompt emotion")
    assert agreement.loc["all", "confirmed"] == 20 and agreement.loc["Fear", "usable"] == 11
    assert "confirmed the prompt's emotion on 20 of 24" in sentences[0] and "20 whose label a person confirmed" in sentences[1]
    assert (tmp_path / "run" / "rq1" / "tables" / "confirmed_faces.csv").is_file()
    assert "20 of 24 faces confirmed, 1 judged unusable" in check.line()


def test_unchecked_labels_are_one_line(tmp_path):
    chapter = Chapter(tmp_path, "rq2", show=False)
    check = labelcheck.label_check(chapter, tmp_path, None)
    assert not check.checked and check.line().startswith("The synthetic labels are unchecked")
    assert labelcheck.show_label_check(chapter, check, {}) == [labelcheck.UNCHECKED]
    assert not (tmp_path / "rq2" / "tables").exists()
    with pytest.raises(MissingPathError, match="label_sheet = 'nowhere.csv'"):
        labelcheck.label_check(chapter, tmp_path, "nowhere.csv")
    with pytest.raises(ValueError, match="no filled label sheet"):
        check.confirmed(pd.DataFrame({"path": []}))


def test_label_check_reads_the_sheet_of_this_runs_faces(tmp_path):
    from PIL import Image

    from fercore.synthetic import write_blind_sheet

    root = tmp_path / "processed"
    rows = []
    for i, emotion in enumerate(["Fear"] * 4 + ["Happiness"] * 4):
        path = root / "test" / emotion / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), (30 * i, 0, 0)).save(path)
        rows.append({"path": f"test/{emotion}/{i}.png", "emotion": emotion, "source": f"{emotion}{i // 2}", "split": "test", "kept": True})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    written = write_blind_sheet(root / "manifest.csv", tmp_path / "sheet")
    keys = pd.read_csv(written.key)
    sheet = pd.read_csv(written.sheet, dtype=str, keep_default_na=False)
    sheet["emotion"] = ["surprised" if k == 1 else e.lower() for k, e in zip(keys["face"], keys["prompt_emotion"], strict=True)]
    sheet.to_csv(written.sheet, index=False)
    chapter = Chapter(tmp_path / "run", "rq3", show=False)
    check = labelcheck.label_check(chapter, root, str(written.sheet))
    assert check.checked and int(check.joined["confirmed"].sum()) == 7
    assert chapter.provenance["label_sheet"]["confirmed"] == 7 and "7 of 8 faces confirmed" in check.line()
    with pytest.raises(ValueError, match="none of its faces lies under synthetic_root"):
        labelcheck.label_check(chapter, tmp_path / "elsewhere", str(written.sheet))
