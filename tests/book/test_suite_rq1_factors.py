"""The demo suite's RQ1 sections on what the prompt asked for (issue 31): valence groups, and the
intensity word, template and generator the demo grids vary, with their planted directions."""

from __future__ import annotations

import json

import pandas as pd
import pytest

#: The demo's factor levels, reference first (fercore.demo.dataset: INTENSITY_RANGES, TEMPLATES, GENERATORS).
DEMO_LEVELS = {"intensity": ["high", "extreme"], "template": ["movie", "portrait"], "generator": ["demo-soft", "demo-vivid"]}


@pytest.mark.slow
def test_demo_rq1_reports_valence_groups_and_every_prompt_factor(demo_suite):
    run_dir, _ = demo_suite
    tables = run_dir / "rq1" / "tables"
    record = json.loads((run_dir / "rq1" / "chapter.json").read_text())
    figures = {p.split("/")[-1] for p in record["figures"]}
    valence = pd.read_csv(tables / "valence_groups.csv")
    assert set(valence["group"]) == {"positive", "negative", "neutral"} and set(valence["model"]) == {"resnet10t", "tiny-enet"}
    assert valence["valence right"].between(0, 1).all() and (valence["valence right"] >= valence["accuracy"] - 1e-9).all()
    confusion = pd.read_csv(tables / "valence_confusion.csv")
    assert ((confusion[["as positive", "as negative", "as neutral"]].sum(axis=1) - 1).abs() < 1e-9).all()
    assert "recall_real_vs_synthetic.png" in figures
    factors = record["numbers"]["factors"]
    assert factors["varying"] == DEMO_LEVELS and factors["constant"] == {}  # every grids.csv column reaches the faces
    for factor, levels in DEMO_LEVELS.items():
        assert (tables / f"by_{factor}.csv").is_file() and (tables / f"effect_{factor}.csv").is_file()
        assert {f"sheet_{factor}_{level}.png" for level in levels} <= figures
        effects = pd.read_csv(tables / f"effect_{factor}.csv")
        assert len(effects) == 2 * 3 and effects["difference"].notna().all()  # two models x three measures


@pytest.mark.slow
def test_demo_rq1_intensity_effect_has_its_planted_sign(demo_suite):
    """'extreme' draws expressions about four times as strong as 'high' (fercore.demo.dataset.INTENSITY_RANGES):
    the probability a model gives the prompted emotion rises, for every demo model."""
    run_dir, _ = demo_suite
    effects = pd.read_csv(run_dir / "rq1" / "tables" / "effect_intensity.csv")
    prompted = effects[effects["measure"] == "p(prompted emotion)"]
    assert len(prompted) == 2 and (prompted["contrast"] == "extreme - high").all()
    assert (prompted["difference"] > 0).all(), prompted
