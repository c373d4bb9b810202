"""Plans that cross prompt factors on a budget: balanced margins, Neutral outside the intensity
contrast, the test split balanced the same way, and what each factor can detect."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from fercore.analysis import mde_contrast, plan
from fercore.cli import main
from fercore.synthetic import design
from fercore.synthetic import prompts as P

NEUTRAL = P.NEUTRAL_INTENSITY


def spreads(table: pd.DataFrame, factor: str) -> pd.Series:
    """Max - min grids over the factor's levels, per row of level_counts (all, split: s, each emotion)."""
    counts = design.level_counts(table, factor, exempt=NEUTRAL if factor == "intensity" else None)
    return counts.max(axis=1) - counts.min(axis=1)


def test_two_templates_by_two_intensities_over_30_credits():
    """The issue's acceptance plan."""
    table = P.generation_plan(30, template=("movie", "emotion-first"), intensity=("high", "extreme"), test_share=0.5)
    assert len(table) == 30 and table.file.is_unique and table.seed.is_unique
    assert set(table.groupby(["emotion", "gender"]).size()) == {1, 2} and table.groupby(["emotion", "gender"]).ngroups == 16
    # Neutral is outside the intensity contrast: no intensity word, and it takes the single-grid slots
    neutral = table[table.emotion == "Neutral"]
    assert set(neutral.intensity) == {"none"} and len(neutral) == 2
    assert all("show neutral emotional" in p and "high neutral" not in p and "extreme neutral" not in p for p in neutral.prompt)
    contrast = table[table.emotion != "Neutral"]
    assert contrast.intensity.value_counts().to_dict() == {"high": 14, "extreme": 14}  # 15 +- 1 each
    assert table.template.value_counts().to_dict() == {"movie": 15, "emotion-first": 15}
    for factor in ("template", "intensity"):
        assert spreads(table, factor).max() <= 1, factor  # overall, in each split, inside each emotion
        test = table[table.split == "test"].drop(columns="split")
        assert spreads(test, factor).max() <= 1, factor  # the test split inside each emotion too
    assert (table.split == "test").sum() == 15
    # the prompt carries the levels it was planned with
    assert all(p.startswith("A photo grid") for p in table[table.template == "movie"].prompt)
    assert all(re.match(r"((High|Extreme) \w+|Neutral) faces\. ", p) for p in table[table.template == "emotion-first"].prompt)
    assert all(f"show {i} " in p for i, p in zip(contrast.intensity, contrast.prompt, strict=True))
    # gender is not aliased with a factor, nor template with intensity word (their pairing alternates across emotions)
    assert pd.crosstab(contrast.gender, contrast.intensity).to_numpy().tolist() == [[7, 7], [7, 7]]
    crossed = pd.crosstab(contrast.template, contrast.intensity).to_numpy()
    assert crossed.min() >= 6 and crossed.max() <= 8
    tested = contrast[contrast.split == "test"]
    assert set(pd.crosstab(tested.template, tested.intensity).to_numpy().ravel()) <= {3, 4}


@pytest.mark.parametrize("budget", [8, 17, 23, 30, 41, 64])
@pytest.mark.parametrize("levels", [(("movie", "realistic"), ("high",), ("a", "b")),
                                    (("movie", "emotion-first", "no-movie"), ("subtle", "high", "extreme"), ("a",)),
                                    (("movie", "emotion-first"), ("high", "extreme"), ("a", "b"))])
@pytest.mark.parametrize("share", [0.3, 0.5])
def test_every_level_within_one_overall_inside_each_emotion_and_in_the_test_split(budget, levels, share):
    templates, intensities, generators = levels
    table = P.generation_plan(budget, template=templates, intensity=intensities, generator=generators, test_share=share)
    pairs = table.groupby(["emotion", "gender"]).size()
    assert pairs.max() - pairs.min() <= 1 and pairs.sum() == budget
    test = table[table.split == "test"].drop(columns="split")
    assert len(test) == round(budget * share)
    for factor, given in zip(("template", "intensity", "generator"), levels, strict=True):
        whole = spreads(table, factor)
        assert whole.drop(index="split: train").max() <= 1, (factor, whole.to_dict())
        assert spreads(test, factor).max() <= 1, factor
        contrast = table if factor != "intensity" else table[table.emotion != "Neutral"]
        assert set(contrast[factor]) == set(given) or len(contrast) < len(given)


def test_single_factor_plans_are_unchanged():
    """One level of each factor: the round robin of before (files, seeds, prompts), with the template recorded."""
    table = P.generation_plan(30)
    assert table.file.tolist()[:3] == ["anger_female_00.png", "anger_male_00.png", "contempt_female_00.png"]
    assert table.file.iloc[16] == "anger_female_01.png" and table.seed.tolist() == list(range(30))
    assert table[table.emotion == "Neutral"].intensity.eq("none").all() and table[table.emotion != "Neutral"].intensity.eq("high").all()
    assert "split" not in table.columns and set(table.template) == {"movie"}
    with pytest.raises(ValueError, match="template.*unknown"):
        P.generation_plan(30, template=("movie", "cinematic"))
    with pytest.raises(ValueError, match="distinct"):
        P.generation_plan(30, intensity=("high", "high"))


def test_the_test_split_is_apportioned_by_emotion_then_gender():
    grids = pd.DataFrame({"emotion": ["A"] * 2 + ["B"] * 2 + ["C"] * 2 + ["D"] * 2, "gender": ["f", "m"] * 4})
    split = design.assign_splits(grids, 0.5)
    assert split.eq("test").groupby(grids.emotion).sum().tolist() == [1, 1, 1, 1]
    assert grids.gender[split == "test"].tolist() == ["f", "m", "f", "m"]  # ties alternate the gender
    with pytest.raises(ValueError, match="between 0 and 1"):
        design.assign_splits(grids, 1.0)


def test_written_plans_record_every_factor_per_split(tmp_path):
    table = P.generation_plan(30, template=("movie", "emotion-first"), intensity=("high", "extreme"), generator=("flux-dev", "flux-schnell"),
                              test_share=0.5, seed=100)
    written = P.write_plans(table, tmp_path / "raw")
    assert [p.relative_to(tmp_path).as_posix() for p in written] == ["raw/test/grids.csv", "raw/train/grids.csv"]
    test = pd.read_csv(tmp_path / "raw" / "test" / "grids.csv")
    assert {"template", "generator", "intensity", "seed", "prompt", "layout"} <= set(test.columns) and "split" not in test.columns
    assert len(test) == 15 and test.seed.min() >= 100 and set(test.generator) == {"flux-dev", "flux-schnell"}
    with pytest.raises(FileExistsError, match="record of what was asked"):
        P.write_plans(table, tmp_path / "raw")
    with pytest.raises(ValueError, match="no split column"):
        P.write_plans(P.generation_plan(4), tmp_path / "other")


def test_detectable_effects_come_from_the_power_planner():
    table = P.generation_plan(30, template=("movie", "emotion-first"), intensity=("high", "extreme"), test_share=0.5)
    effects = P.plan_effects(table).set_index("comparison")
    gap = effects.loc["real - synthetic balanced-accuracy gap", "MDE test (points)"]
    assert gap == round(100 * plan(credits=30, test_share=0.5).mde_gap, 1)  # what `fercore plan-power --grids 30` prints
    pooled = effects.loc["template: movie vs emotion-first, pooled over emotions"]
    assert pooled["test grids per level"] == "8, 7" and pooled["MDE test (points)"] == round(100 * mde_contrast(8, 7, 30, 0.2), 1)
    assert 20 < pooled["MDE all grids (points)"] < pooled["MDE test (points)"] < 60
    intensity = effects.loc["intensity: high vs extreme, pooled over emotions"]
    assert intensity["test grids per level"] == "7, 7"  # Neutral is outside the intensity contrast
    assert effects.loc["intensity: high vs extreme, within one emotion", "estimable"].startswith("no")
    assert not any(c.startswith("generator") for c in effects.index)  # one generator: no comparison
    three = P.plan_effects(P.generation_plan(30, intensity=("subtle", "high", "extreme"), test_share=0.5)).set_index("comparison")
    (row,) = [r for r in three.index if r.startswith("intensity") and r.endswith("pooled over emotions")]
    assert three.loc[row, "levels"].count(",") == 2 and three.loc[row, "test grids per level"] in ("4, 5", "5, 4", "4, 4", "5, 5")
    with pytest.raises(ValueError, match="0 test grids of 30"):
        P.plan_effects(P.generation_plan(30, template=("movie", "realistic"), test_share=0.01))


def test_plan_prompts_cli_prints_each_factors_detectable_effect(tmp_path, capsys):
    assert main(["plan-prompts", "--credits", "30", "--templates", "movie", "emotion-first", "--intensities", "high", "extreme",
                 "--out", str(tmp_path / "raw")]) == 0
    out = capsys.readouterr().out
    assert "1-2 per emotion x gender pair, 15 for testing" in out and "outside the intensity contrast" in out
    for factor in ("template: movie vs emotion-first", "intensity: high vs extreme"):
        line = next(line for line in out.splitlines() if f"{factor}, pooled over emotions" in line)
        assert re.search(r"yes\s+\d+\.\d\s+\d+\.\d", line), line
    assert (tmp_path / "raw" / "test" / "grids.csv").is_file() and (tmp_path / "raw" / "train" / "grids.csv").is_file()
    assert main(["plan-prompts", "--templates", "cinematic"]) == 2
    assert "cinematic" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["plan-prompts", "--help"])
    assert exit_.value.code == 0 and "usage: fercore plan-prompts" in capsys.readouterr().out
