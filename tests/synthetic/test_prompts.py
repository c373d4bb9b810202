import pandas as pd
import pytest
from PIL import Image

from fercore.synthetic import prompts as P


def test_prompt_follows_the_best_template():
    text = P.build_prompt("happy", "female", intensity="extreme")
    assert text.startswith("A photo grid of a 6x6 dimension headshot movie portraits")
    assert "distinct female individuals" in text and "show extreme happy emotional expressions" in text
    assert "clearly separated from the others." in text
    assert "show neutral emotional" in P.build_prompt("Neutral", "male", intensity="extreme")  # no intensity word
    assert "5x5 dimension" in P.build_prompt("sad", "male", rows=5, cols=5)
    assert "Plain white background." in P.build_prompt("fear", "male", background="white")
    with pytest.raises(ValueError, match="intensity"):
        P.build_prompt("sad", "male", intensity="mild")
    with pytest.raises(ValueError, match="gender"):
        P.build_prompt("sad", "robot")


def test_known_effects_are_recorded():
    changes = " ".join(e["change"] for e in P.KNOWN_EFFECTS)
    assert "realistic" in changes and "no smiling" in changes and "movie" in changes


def test_generation_plan_spreads_the_budget(tmp_path):
    plan = P.generation_plan(30)
    assert len(plan) == 30 and list(plan.columns) == ["file", "emotion", "gender", "intensity", "prompt", "generator", "seed", "layout",
                                                      "template"]
    assert set(plan.template) == {"movie"} and plan.prompt.iloc[0] == P.build_prompt("Anger", "female")
    counts = plan.groupby(["emotion", "gender"]).size()
    assert len(counts) == 16 and set(counts) == {1, 2}  # 30 over 16 pairs: floor or ceil
    assert plan.file.is_unique and plan.seed.is_unique
    path = P.write_plan(plan, tmp_path / "grids.csv")
    assert pd.read_csv(path).equals(pd.read_csv(path))
    with pytest.raises(FileExistsError):
        P.write_plan(plan, path)


def test_files_backend_imports_and_matches(tmp_path):
    plan = P.generation_plan(4, emotions=("Anger", "Happiness"), genders=("female", "male"))
    source = tmp_path / "downloads"
    source.mkdir()
    for name in ("anger_female_00.jpg", "happiness_male_00.png", "stray.png"):
        Image.new("RGB", (64, 64), (200, 10, 10)).save(source / name)
    imported = P.FilesBackend(source).import_into(plan, tmp_path / "raw" / "train")
    assert sorted(imported.file) == ["anger_female_00.jpg", "happiness_male_00.png"]
    assert (tmp_path / "raw" / "train" / "anger_female_00.jpg").is_file() and (source / "stray.png").is_file()


def test_diffusers_backend_never_downloads(tmp_path):
    pytest.importorskip("diffusers", reason="diffusers is an optional extra and not installed")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        P.DiffusersBackend(tmp_path / "no-model").generate(P.generation_plan(1), tmp_path / "out")


def test_named_templates_put_the_seeds_findings_to_a_test():
    assert P.TEMPLATES["movie"] == P.TEMPLATE and set(P.TEMPLATE_NOTES) == set(P.TEMPLATES)
    assert P.build_prompt("angry", "male", intensity="extreme", template="emotion-first").startswith("Extreme angry faces. A photo grid")
    assert P.build_prompt("Neutral", "male", template="emotion-first").startswith("Neutral faces. A photo grid")
    plain = P.build_prompt("sad", "female", template="no-movie")
    assert "movie" not in plain and "headshot portraits" in plain and "show high sad emotional" in plain
    assert "realistic headshot movie portraits" in P.build_prompt("sad", "female", template="realistic")
    for name in P.TEMPLATES:  # every template names the emotion, gender and layout
        text = P.build_prompt("fear", "female", intensity="subtle", template=name, rows=5, cols=5)
        assert "5x5" in text and "female" in text and "subtle fearful" in text
    with pytest.raises(ValueError, match="template must be one of"):
        P.build_prompt("sad", "male", template="cinematic")
