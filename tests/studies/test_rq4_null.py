"""RQ4 beside its null arm: real vs null, the excess synthetic vs null through the grid-swap tests with whole grids on
both sides, every grid for models trained on real, and the gap on the faces whose label a person confirmed."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from gridkit import Grey, chapter_loop_inputs
from PIL import Image

from fercore.analysis import domain_tests
from fercore.book import Chapter
from fercore.core.labels import CLASSES
from fercore.core.present import present
from fercore.data import face_table
from fercore.inference import InferenceCache
from fercore.studies import Arms, Study, grid_sets, labelcheck, nullarm, rq4, rq4_null
from fercore.studies.data import TestSets
from fercore.studies.regimes import FINETUNED, REAL

EMOTIONS = ("Anger", "Happiness")


def faces_and_features(rng: np.random.Generator, *, synthetic_shift: float = 2.0, null_shift: float = 2.0, grids: int = 4,
                       per_grid: int = 15, dims: int = 12) -> tuple[np.ndarray, pd.DataFrame]:
    """Real faces (each its own cluster), synthetic and null faces in ``grids`` grids per emotion with grid offsets;
    the synthetic / null faces sit ``synthetic_shift`` / ``null_shift`` SDs from the real ones on the first axis."""
    rows = [{"domain": "real", "emotion": e, "path": f"/r/{e}{i}.png"} for e in EMOTIONS for i in range(80)]
    for domain in ("synthetic", grid_sets.NULL):
        rows += [{"domain": domain, "emotion": e, "path": f"/{domain}/{e}{g}_{i}.png", "source": f"{domain}-{e}-{g}"}
                 for e in EMOTIONS for g in range(grids) for i in range(per_grid)]
    table = pd.DataFrame(rows)
    offsets = {s: rng.normal(0, 0.4, dims) for s in table["source"].dropna().unique()}
    feats = rng.normal(0, 1, (len(table), dims)) + np.stack([offsets.get(s, np.zeros(dims)) if isinstance(s, str) else np.zeros(dims)
                                                              for s in table["source"]])
    feats[:, 0] += np.where(table["domain"] == "synthetic", synthetic_shift, np.where(table["domain"] == grid_sets.NULL, null_shift, 0.0))
    return feats, table


def gap_and_null(feats: np.ndarray, table: pd.DataFrame, **kw) -> tuple[rq4.DomainGap, rq4.NullGap]:
    keep = (table["domain"] != grid_sets.NULL).to_numpy()
    gap = rq4.domain_gap(feats[keep], table[keep], model="m", regime=REAL, real_set="fer", permutations=200,
                         grid_set=grid_sets.ALL_GRIDS, **kw)
    return gap, rq4.null_gap(feats, table, gap, classes=list(EMOTIONS), permutations=200)


def test_grid_pair_design_pairs_whole_grids_of_one_class():
    rng = np.random.default_rng(0)
    synthetic = np.array([True] * 30 + [False] * 26)
    classes = np.array(["A"] * 20 + ["B"] * 10 + ["A"] * 16 + ["B"] * 10)
    groups = np.array([f"s{i // 10}" for i in range(30)] + [f"n{i // 8}" for i in range(16)] + [f"m{i // 5}" for i in range(10)])
    design = domain_tests.grid_pair_design(synthetic, classes, groups, seed=int(rng.integers(100)))
    assert design.pairs == 3  # A: 2 synthetic x 2 null grids, B: 1 synthetic x 2 null grids (one null grid without partner)
    for p in range(design.pairs):
        members = design.rows[design.pair == p]
        side = design.synthetic[design.pair == p]
        assert side.sum() == (~side).sum() and len({groups[r] for r in members[side]}) == 1 and len({groups[r] for r in members[~side]}) == 1
        assert len(set(classes[members])) == 1 and synthetic[members].tolist() == side.tolist()
    assert sorted(int((design.pair == p).sum()) // 2 for p in range(3)) == [5, 8, 8]
    with pytest.raises(ValueError, match="grids on both sides"):
        domain_tests.grid_pair_design(synthetic[:30], classes[:30], groups[:30])


def test_a_null_like_the_synthetic_faces_shows_no_excess_and_a_planted_one_is_found():
    """Seeded: synthetic and null faces shifted alike from real (the grid path) give real-vs-synthetic and real-vs-null
    gaps of about the same AUC and an excess inside the swap null's central 95 %, not significant; a synthetic-only
    shift is found by the excess probe and MMD (p < 0.05; the design's smallest p is 1/128)."""
    gap, same = gap_and_null(*faces_and_features(np.random.default_rng(0)))
    assert gap.auc > 0.8 and same.auc_null > 0.8 and same.auc_difference == pytest.approx(gap.auc - same.auc_null)
    assert same.excess_pairs == 8 and same.excess_min_p == pytest.approx(1 / 128) and same.null_grids == 8
    assert same.excess_auc - same.excess_auc_null_q975 < 0 < same.excess_auc - same.excess_auc_null_q025
    assert same.excess_auc_p > 0.05 and same.excess_mmd_p > 0.05
    _, planted = gap_and_null(*faces_and_features(np.random.default_rng(0), synthetic_shift=4.0))
    assert planted.excess_auc > 0.75 and planted.excess_auc_p < 0.05 and planted.excess_mmd_p < 0.05
    assert planted.auc_difference > 0 and planted.auc_null < planted.auc_synthetic
    text = " ".join(rq4_null.findings([same, planted]))
    assert "m, trained on real, fer (test + train grids), synthetic against null faces as they come" in text
    assert "AUC(real, synthetic) - AUC(real, null)" in text and "descriptive only" in text
    assert "domain probe AUC (synthetic vs null) above its grid-swap null median" in text and "8 pairs of a synthetic and a null grid" in text


def test_null_table_fits_the_page_and_an_arm_that_is_off_shows_its_reason(tmp_path, monkeypatch):
    gap, null = gap_and_null(*faces_and_features(np.random.default_rng(1)))
    shown = present(rq4_null.null_table([null]))
    assert len(shown.columns) <= 10 and "AUC synth.-null" in shown.columns and "excess MMD p" in shown.columns
    table = rq4_null.null_table([null])
    assert table["synthetic grids"].tolist() == [grid_sets.ALL_GRIDS] and table["null grids"].tolist() == [8]
    gaps = present(rq4.gap_table([gap]))
    assert len(gaps.columns) == 10 and gaps["grids used"].tolist() == [grid_sets.ALL_GRIDS]
    chapter = Chapter(tmp_path, "rq4", show=False)
    notes: list[str] = []
    monkeypatch.setattr(chapter, "note", notes.append)
    assert rq4_null.show_null(chapter, [null], SimpleNamespace(faces=pd.DataFrame({"path": ["a"], "source": ["n"]}), reason="", grids=1)) is not None
    assert (tmp_path / "rq4" / "tables" / "null_arm.csv").is_file() and notes[-1].startswith("The null arm holds 1 real faces")
    off = SimpleNamespace(faces=None, reason="null_arm = False", grids=0)
    chapter = Chapter(tmp_path / "off", "rq4", show=False)
    monkeypatch.setattr(chapter, "note", notes.append)
    assert rq4_null.show_null(chapter, [], off) is None and "The null arm is off in this run: null_arm = False." in notes[-1]
    assert not (tmp_path / "off" / "rq4" / "tables").exists() and grid_sets.null_faces(off) is None
    sentence = rq4_null.glue_values([null])["rq4_null_sentence"]
    assert "in 0 of 1 model, regime, real-set and arm combinations" in sentence and f"between {null.auc_difference:+.3f} and" in sentence
    assert "did not run" in rq4_null.glue_values([])["rq4_null_sentence"]
    named = grid_sets.null_faces(SimpleNamespace(faces=pd.DataFrame({"path": ["a"], "emotion": ["Fear"], "source": ["n0"]}), reason="", grids=1))
    assert named[["label", "domain", "dataset"]].iloc[0].tolist() == [3, "null arm", "null arm"]  # a class index beside the name, as sample tables hold


def test_confirmed_faces_side_by_side(tmp_path):
    """The person confirmed the synthetic faces of grids 0 and 1: the gap is computed again on those (real faces
    unchanged) and shown beside all kept faces; without a sheet nothing is shown."""
    feats, table = faces_and_features(np.random.default_rng(2), synthetic_shift=3.0)
    keep = (table["domain"] != grid_sets.NULL).to_numpy()
    feats, table = feats[keep], table[keep].reset_index(drop=True)
    gap = rq4.domain_gap(feats, table, model="m", regime=REAL, real_set="fer", permutations=200)
    synthetic = table[table["domain"] == "synthetic"]
    joined = pd.DataFrame({"path": synthetic["path"], "source": synthetic["source"], "prompt_emotion": synthetic["emotion"],
                           "confirmed": synthetic["source"].str[-1].astype(int) < 2, "usable": True})
    check = labelcheck.LabelCheck(joined, str(tmp_path / "label_sheet.csv"))
    every, narrowed = rq4.confirmed_gap(feats, table, check, gap, classes=list(EMOTIONS), permutations=200)
    assert every is gap  # the sheet holds every synthetic face: all kept is the gap itself
    assert narrowed.groups_synthetic == 4 and narrowed.n_synthetic == 60 and gap.n_synthetic == 120 and narrowed.auc > 0.9
    side = rq4_null.confirmed_table([(every, narrowed)])
    row = side.loc[("m", REAL, "fer", "raw")]
    assert (row["n synthetic (all kept)"], row["n (confirmed)"]) == (120, 60) and len(present(side).columns) == 10
    chapter = Chapter(tmp_path, "rq4", show=False)
    assert rq4_null.show_confirmed(chapter, [(every, narrowed)], check) is not None
    assert (tmp_path / "rq4" / "tables" / "confirmed_faces.csv").is_file()
    assert rq4_null.show_confirmed(chapter, [(every, narrowed)], labelcheck.LabelCheck()) is None
    part = labelcheck.LabelCheck(joined[joined["source"].str[-1] != "3"], "x.csv")  # a sheet without grid 3 of each emotion
    every, narrowed = rq4.confirmed_gap(feats, table, part, gap, classes=list(EMOTIONS), permutations=200)
    assert every is not gap and every.groups_synthetic == 6 and narrowed.groups_synthetic == 4
    nobody = labelcheck.LabelCheck(joined.assign(confirmed=False), "x.csv")
    assert rq4.confirmed_gap(feats, table, nobody, gap, classes=list(EMOTIONS), permutations=200) is None


def test_the_excess_test_keeps_its_level_when_synthetic_and_null_grids_are_alike():
    """30 seeded data sets, synthetic and null grids drawn alike (grid offsets on both sides): the excess MMD and
    probe reject at 5 % in at most 4 of 30 (about 1.5 expected) - swapping whole grid pairs is exact here."""
    rejected = []
    for seed in range(30):
        feats, table = faces_and_features(np.random.default_rng(100 + seed), grids=3, per_grid=8, dims=6)
        both = (table["domain"] != "real").to_numpy()
        result = rq4.excess_test(feats[both], table[both], classes=list(EMOTIONS), permutations=100, seed=seed)
        rejected.append((result["mmd_p"] < 0.05, result["auc_p"] < 0.05))
    assert result["pairs"] == 6 and result["min_p"] == pytest.approx(1 / 32)
    assert sum(r[0] for r in rejected) <= 4 and sum(r[1] for r in rejected) <= 4


def test_embed_regimes_gives_every_grid_to_the_real_trained_model_and_runs_the_null_arm(tmp_path, tiny_model):
    """The chapter's loop on small images through a tiny network: the model trained on real is embedded on the test and
    the training split's grids, the fine-tuned one on the test grids; every (regime, arm) has its null row and, with a
    sheet, its confirmed-faces gap; the null faces go through the same cached passes (matched like the synthetic ones)."""
    inputs = chapter_loop_inputs(tmp_path, "rq4", EMOTIONS, per=6, size=40)
    real, test, train, sets, study = inputs.real, inputs.test, inputs.train, inputs.sets, inputs.study
    null = SimpleNamespace(faces=inputs.null.drop(columns="domain"), reason="", grids=4)

    joined = pd.DataFrame({"path": pd.concat([test, train])["path"], "source": pd.concat([test, train])["source"],
                           "prompt_emotion": pd.concat([test, train])["emotion"], "usable": True})
    check = labelcheck.LabelCheck(joined.assign(confirmed=np.arange(len(joined)) % 4 != 0), "sheet.csv")
    done = rq4.embed_regimes(study, sets, Arms({"fer": Grey()}, {}), {("m", REAL): tiny_model, ("m", FINETUNED): tiny_model},
                             tsne=False, permutations=50, grids=grid_sets.SyntheticGrids(test, pd.concat([test, train], ignore_index=True)), null=null,
                             labels=check)
    assert [(g.regime, g.arm, g.grid_set) for g in done.gaps] == [(REAL, "raw", grid_sets.ALL_GRIDS), (REAL, "matched", grid_sets.ALL_GRIDS),
                                                                   (FINETUNED, "raw", grid_sets.TEST_GRIDS), (FINETUNED, "matched", grid_sets.TEST_GRIDS)]
    assert [g.groups_synthetic for g in done.gaps] == [8, 8, 4, 4]  # every grid doubles the real-trained model's grids
    assert len(done.null) == 4 and {n.excess_pairs for n in done.null} == {4} and {n.null_grids for n in done.null} == {4}
    assert len(done.confirmed) == 4 and all(every is g and c.n_synthetic <= g.n_synthetic
                                            for (every, c), g in zip(done.confirmed, done.gaps, strict=True))
    assert done.confirmed[2][1].n_synthetic < done.gaps[2].n_synthetic  # the test grids alone: a quarter of their faces unconfirmed
    assert (tmp_path / "run" / "rq4" / "figures" / "pca_fer.png").is_file()  # real, synthetic and null points on the map


def test_the_runs_null_arm_goes_through_rq4_matched_from_its_own_format(tmp_path, tiny_model):
    """A null arm built by :func:`fercore.studies.nullarm.null_set` (real faces no model saw, composed into grids in the
    synthetic layout and extracted) through the RQ4 loop: a null row per regime and arm, the null faces matched by the
    transform measured from their own format (``Arms.null_transforms``), not the synthetic faces'."""
    emotions = ["Anger", "Happiness"]
    rows = []
    for split, n in (("holdout", 30), ("test", 12)):
        for e, emotion in enumerate(emotions):
            for i in range(n):
                path = tmp_path / "real" / split / emotion.lower() / f"{i:03d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.random.default_rng(1000 * e + i + 50 * (split == "test")).integers(40, 220, (24, 24, 3), dtype=np.uint8)).save(path)
                rows.append({"path": str(path), "emotion": emotion, "label": CLASSES.index(emotion), "split": split, "dataset": "real"})
    real = pd.DataFrame(rows)
    root, cells = tmp_path / "syn", []
    for emotion in emotions:
        (root / "test" / emotion.lower()).mkdir(parents=True)
        for g in range(3):
            for r in range(2):
                for c in range(3):
                    path = f"test/{emotion.lower()}/{emotion}_{g}_r{r}c{c}.png"
                    Image.fromarray(np.random.default_rng(7 * g + r + 3 * c).integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(root / path)
                    cells.append({"source": f"/raw/test/{emotion}_{g}.png", "split": "test", "row": r, "col": c, "x1": (c + 1) * 80,
                                  "y1": (r + 1) * 120, "layout": "2x3", "emotion": emotion, "kept": True, "path": path})
    pd.DataFrame(cells).to_csv(root / "manifest.csv", index=False)
    (root / ".grids").mkdir()
    (root / ".grids" / "options.json").write_text(json.dumps({"layout": "2x3", "detector": "none", "face_size": 32, "crop": "cell",
                                                               "framing": "", "thresholds": {}}))
    synthetic = face_table(root, "test").assign(domain="synthetic", dataset="synthetic")
    tested = real[real["split"] == "test"].assign(domain="real", dataset="fer").reset_index(drop=True)
    sets = TestSets({"fer": tested, "synthetic": synthetic}, {"fer": emotions, "synthetic": emotions})
    unseen = real[real["split"] == "holdout"].reset_index(drop=True)
    builder = SimpleNamespace(run_dir=tmp_path / "run", seed=0, synthetic_root=str(root),
                              unseen_real_faces=lambda models, exclude_splits=("test",): unseen)
    arm = nullarm.null_set(builder, sets, {})
    assert arm.built and arm.grids == 6, arm.reason
    calls = {"synthetic": 0, "null arm": 0}

    class Named:
        def __init__(self, name):
            self.name = name

        def __call__(self, image):
            calls[self.name] += 1
            return image

    study = Study(Chapter(tmp_path / "run", "rq4", show=False), {}, {"fer": str(tmp_path / "real")}, str(root),
                  InferenceCache(tmp_path / "inference", workers=0, progress=False))
    done = rq4.embed_regimes(study, nullarm.with_null(sets, arm), Arms({"fer": Named("synthetic")}, {}, {"fer": Named("null arm")}),
                             {("m", REAL): tiny_model, ("m", FINETUNED): tiny_model}, tsne=False, permutations=20, null=arm)
    assert [(n.regime, n.arm) for n in done.null] == [(REAL, "raw"), (REAL, "matched"), (FINETUNED, "raw"), (FINETUNED, "matched")]
    assert {n.excess_pairs for n in done.null} == {6} and {n.null_grids for n in done.null} == {6}
    assert calls["null arm"] >= len(arm.faces) and calls["synthetic"] >= len(synthetic)  # each side through its own transform
    assert "Null arm:" in grid_sets.null_line(arm) and rq4_null.show_null(study.chapter, done.null, arm) is not None
