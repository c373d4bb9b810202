"""RQ1 by what the prompt asked for: valence groups and the factors of the prompt, on constructed
prediction tables with planted effects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fercore.analysis.metrics import group_accuracy
from fercore.core.labels import CLASSES
from fercore.studies import rq1_factors as F
from fercore.studies.scoring import SetScore


def table(y_true, logits, **extra) -> pd.DataFrame:
    """A predictions table as ``predict`` writes it, from class indices and logits."""
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    out = pd.DataFrame({"path": [f"f{i}.png" for i in range(len(y_true))], "label": [CLASSES[i] for i in y_true],
                        "pred": [CLASSES[i] for i in probs.argmax(1)]})
    for i, c in enumerate(CLASSES):
        out[f"p_{c}"] = probs[:, i]
    return out.assign(**extra)


def factor_preds(seed: int = 0, grids_per_level: int = 2, faces: int = 12, boost: float = 2.0) -> pd.DataFrame:
    """Every emotion in ``2 * grids_per_level`` grids of ``faces`` faces; non-Neutral grids alternate
    intensity high / extreme (Neutral: none), generators alternate independently, one template. At
    "extreme" the prompted emotion's logit is ``boost`` higher and Neutral's ``boost`` lower: accuracy,
    p(prompted) and 1 - p(Neutral) all rise."""
    rng = np.random.default_rng(seed)
    rows = []
    for e, emotion in enumerate(CLASSES):
        for k in range(2 * grids_per_level):
            extreme = emotion != "Neutral" and k % 2 == 1
            grid = rng.normal(0, 0.3)
            for _ in range(faces):
                logits = rng.normal(0, 0.6, len(CLASSES))
                logits[e] += 1.0 + grid + (boost if extreme else 0.0)
                if emotion != "Neutral":
                    logits[CLASSES.index("Neutral")] += 1.2 - (boost if extreme else 0.0)
                rows.append((e, logits, f"grid_{emotion}_{k}.png", "none" if emotion == "Neutral" else ("high", "extreme")[k % 2],
                             ("gen-a", "gen-b")[(k // 2) % 2]))
    y = np.array([r[0] for r in rows])
    return table(y, np.stack([r[1] for r in rows]), source=[r[2] for r in rows], intensity=[r[3] for r in rows],
                 generator=[r[4] for r in rows], template="portrait")


def test_valence_groups_count_a_prediction_in_the_right_group():
    """Happiness always answered Surprise (same group), Anger always Sadness, Fear always Happiness, others right."""
    swap = {"Happiness": "Surprise", "Anger": "Sadness", "Fear": "Happiness"}
    y = np.repeat(np.arange(len(CLASSES)), 10)
    logits = np.full((len(y), len(CLASSES)), -2.0)
    answer = [CLASSES.index(swap.get(CLASSES[i], CLASSES[i])) for i in y]
    logits[np.arange(len(y)), answer] = 2.0
    preds = table(y, logits)
    score = SetScore("m", "real", "fer", list(CLASSES), preds, {})
    rows = {r.group: r for r in F.valence_rows(score, n_boot=200)}
    assert set(rows) == {"positive", "negative", "neutral"}
    assert rows["positive"].accuracy == pytest.approx(0.5) and rows["positive"].valence_accuracy == 1.0
    # negative: Anger, Contempt, Disgust, Fear, Sadness; Anger and Fear wrong; Fear lands in positive
    assert rows["negative"].accuracy == pytest.approx(3 / 5) and rows["negative"].balanced_accuracy == pytest.approx(3 / 5)
    assert rows["negative"].valence_accuracy == pytest.approx(4 / 5) and rows["negative"].classes == 5
    assert rows["neutral"].accuracy == 1.0 and rows["neutral"].faces == 10
    true = y
    pred = np.array(answer)
    assert rows["negative"].valence_accuracy == pytest.approx(group_accuracy(true, pred)["negative"]["accuracy"])
    assert rows["negative"].accuracy_low <= rows["negative"].accuracy <= rows["negative"].accuracy_high
    assert all(0.0 <= r.accuracy_low <= r.accuracy_high <= 1.0 for r in rows.values())  # a share's interval stays in [0, 1]
    confusion = F.valence_confusion({("m", "fer"): score})
    assert confusion.loc[("m", "fer", "negative"), "as positive"] == pytest.approx(0.2)
    assert np.allclose(confusion[["as positive", "as negative", "as neutral"]].sum(axis=1), 1.0)
    # another grouping: Surprise counted negative, so Happiness -> Surprise is now a valence error
    other = {**F.EMOTION_GROUPS, "Surprise": "negative"}
    rows = {r.group: r for r in F.valence_rows(score, other, n_boot=200)}
    assert rows["positive"].valence_accuracy == 0.0 and rows["positive"].classes == 1
    with pytest.raises(ValueError, match="lacks \\['Contempt'\\]"):
        F.valence_rows(score, {c: "x" for c in CLASSES if c != "Contempt"})


def test_factors_that_vary_and_those_that_do_not():
    preds = factor_preds()
    varying, constant = F.describe_factors(preds)
    assert varying == {"intensity": ["high", "extreme"], "generator": ["gen-a", "gen-b"]}
    assert constant == {"template": "one level within each emotion (portrait)"}
    levels, emotions = F.factor_levels(preds, "intensity")
    assert "Neutral" not in emotions and len(emotions) == 7  # Neutral has one level (none): outside the contrast
    assert F.describe_factors(preds.drop(columns="template"))[1]["template"] == "not recorded"
    assert F.ordered_levels({"extreme", "mild", "zoom", "alpha"}) == ["mild", "extreme", "alpha", "zoom"]


def test_planted_intensity_effect_has_the_right_sign_and_excludes_zero():
    preds = factor_preds()
    faces = F.face_measures(preds)
    assert faces["strength"][faces["emotion"] == "Neutral"].isna().all()
    levels, emotions = F.factor_levels(preds, "intensity")
    effects = {e.measure: e for e in F.factor_effects("m", faces, "intensity", levels, emotions)}
    assert set(effects) == set(F.MEASURES.values())
    for e in effects.values():
        assert e.testable and e.min_grids == 2 and e.emotions == 7 and e.level == "extreme" and e.reference == "high"
        assert 0 < e.low < e.estimate < e.high and e.p_value < 0.05
    # the estimate is the emotion-balanced within-emotion difference, computed here by hand
    by_hand = faces[faces["emotion"] != "Neutral"].groupby(["emotion", "intensity"])["accuracy"].mean().unstack()
    assert effects["accuracy"].estimate == pytest.approx((by_hand["extreme"] - by_hand["high"]).mean())
    levels_rows = {r.level: r for r in F.level_scores("m", faces, "intensity", levels, emotions)}
    assert levels_rows["extreme"].accuracy > levels_rows["high"].accuracy and levels_rows["high"].grids == 14
    assert levels_rows["high"].accuracy == pytest.approx(by_hand["high"].mean())
    # no effect planted for the generator: its accuracy interval holds 0
    g_levels, g_emotions = F.factor_levels(preds, "generator")
    generator = {e.measure: e for e in F.factor_effects("m", faces, "generator", g_levels, g_emotions)}
    assert generator["accuracy"].low < 0 < generator["accuracy"].high and generator["accuracy"].emotions == 8


def test_one_grid_per_level_is_descriptive_only():
    preds = factor_preds(grids_per_level=1)
    faces = F.face_measures(preds)
    levels, emotions = F.factor_levels(preds, "intensity")
    effects = F.factor_effects("m", faces, "intensity", levels, emotions)
    assert effects and all(not e.testable and np.isnan(e.low) and np.isnan(e.p_value) and e.estimate > 0 for e in effects)
    table = F.effect_table(effects)
    assert (table["tests"] == "no: one grid at a level, descriptive only").all()


def test_factor_columns_come_from_the_sample_table():
    preds = factor_preds().drop(columns=["intensity", "generator"])
    samples = pd.DataFrame({"path": preds["path"][::-1], "emotion": preds["label"][::-1],
                            "intensity": factor_preds()["intensity"][::-1], "generator": "g"})
    joined = F.attach_factors(preds, samples)
    assert joined["intensity"].tolist() == factor_preds()["intensity"].tolist() and set(joined["generator"]) == {"g"}
    assert F.attach_factors(factor_preds(), samples)["generator"].tolist() == factor_preds()["generator"].tolist()  # kept


def test_chapter_shows_varying_factors_only(tmp_path):
    from fercore.book import Chapter

    preds = factor_preds(faces=6)
    (tmp_path / "faces").mkdir()
    paths = [str(tmp_path / "faces" / f"f{i}.png") for i in range(len(preds))]
    for i, path in enumerate(paths):  # small images for the contact sheets
        Image.new("RGB", (16, 16), (i % 255, 0, 0)).save(path)
    preds = preds.assign(path=paths)
    samples = preds[["path", "label", "intensity", "generator", "template"]].rename(columns={"label": "emotion"})
    samples = samples.assign(label=samples["emotion"].map(CLASSES.index))
    scores = {("m", "synthetic"): SetScore("m", "real", "synthetic", list(CLASSES), preds.drop(columns=["intensity"]), {})}
    chapter = Chapter(tmp_path / "out", "rq1", show=False)
    record = F.show_factors(chapter, scores, samples)
    tables = tmp_path / "out" / "rq1" / "tables"
    assert (tables / "by_intensity.csv").is_file() and (tables / "effect_generator.csv").is_file()
    assert not (tables / "by_template.csv").exists() and record["constant"] == {"template": "one level within each emotion (portrait)"}
    assert {"sheet_intensity_high.png", "sheet_intensity_extreme.png", "sheet_generator_gen-a.png"} <= \
        {p.split("/")[-1] for p in chapter.figures}
    effects = pd.read_csv(tables / "effect_intensity.csv")
    assert len(effects) == 3 and (effects["difference"] > 0).all() and (effects["95% low"] > 0).all()
    assert sum("intensity word 'extreme' against 'high'" in line for line in F.findings(record)) == 3


def test_rq4_maps_facet_synthetic_faces_by_generator_only_where_several():
    from fercore.studies.rq4 import by_generator

    faces = pd.DataFrame({"domain": ["real", "real", "synthetic", "synthetic"], "generator": [None, None, "flux-dev", "flux-schnell"]})
    assert by_generator(faces)["domain"].tolist() == ["real", "real", "synthetic · flux-dev", "synthetic · flux-schnell"]
    one = faces.assign(generator=[None, None, "flux-dev", "flux-dev"])
    assert by_generator(one)["domain"].tolist() == faces["domain"].tolist()
    assert by_generator(faces.drop(columns="generator"))["domain"].tolist() == faces["domain"].tolist()


def test_extraction_quality_per_factor_and_layouts_per_generator(tmp_path):
    """Two generators (one varying factor), one template: a table of outcomes per generator with the kept share
    and the rejection reasons counted, none for the template; the grid cut 5x5 though 6x6 was asked is counted."""
    from fercore.book import Chapter

    rows = []
    for grid, (generator, layout, reasons) in enumerate([("flux-dev", "6x6", ["", "", "", "blurry"]),
                                                         ("flux-dev", "6x6", ["", "", "", ""]),
                                                         ("flux-schnell", "5x5", ["", "no_face", "no_face", "duplicate of g0.png r0c1"])]):
        for cell, reason in enumerate(reasons):
            rows.append({"source": f"g{grid}.png", "split": "test", "kept": str(reason == ""), "reason": reason,
                         "layout": layout, "layout_method": "uniform", "layout_asked": "6x6", "generator": generator,
                         "template": "movie", "cell": cell})
    (tmp_path / "faces").mkdir()
    pd.DataFrame(rows).to_csv(tmp_path / "faces" / "manifest.csv", index=False)
    chapter = Chapter(tmp_path / "out", "rq1", show=False)
    record = F.show_quality(chapter, tmp_path / "faces")
    tables = tmp_path / "out" / "rq1" / "tables"
    outcomes = pd.read_csv(tables / "extraction_by_factor.csv").set_index("level")
    assert set(outcomes["factor"]) == {"generator"}  # the template does not vary: no rows
    assert outcomes.loc["flux-dev", "kept"] == pytest.approx(7 / 8) and outcomes.loc["flux-dev", "rejected cells"] == "blurry 1"
    assert outcomes.loc["flux-schnell", "rejected cells"] == "no_face 2, duplicate 1" and outcomes.loc["flux-schnell", "grids"] == 1
    layouts = pd.read_csv(tables / "layout_by_generator.csv").set_index("generator")
    assert layouts.loc["flux-schnell", "disagree"] == 1 and layouts.loc["flux-dev", "disagree"] == 0
    assert layouts.loc["flux-schnell", "found instead"] == "6x6 -> 5x5: 1" and len(record["layouts"]) == 2
    empty = Chapter(tmp_path / "out2", "rq1", show=False)
    assert F.show_quality(empty, tmp_path / "nothing") == {} and not (tmp_path / "out2" / "rq1" / "tables").exists()
