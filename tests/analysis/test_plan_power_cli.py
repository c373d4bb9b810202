"""``fercore plan-power``: the MDE at a number of credits, the grids for a target gap, a pilot run."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from fercore.analysis.power import DEFAULTS, mde_gap
from fercore.cli import main
from fercore.cli.parser import PLAN_DEFAULTS


def test_the_parser_states_the_library_defaults():
    assert PLAN_DEFAULTS == {k: DEFAULTS[k] for k in PLAN_DEFAULTS}


def test_plan_power_prints_mde_and_grids_needed(capsys):
    assert main(["plan-power", "--grids", "30"]) == 0
    out = capsys.readouterr().out
    mde = float(re.search(r"MDE balanced-accuracy gap .*: ([\d.]+) points", out).group(1))
    assert abs(mde - 100 * mde_gap(30 * 0.5 / 8, 30, 3000 / 7, 0.2, classes=7, strict=False)) < 0.06
    assert "region-share difference" in out and "warning" in out
    assert main(["plan-power", "--grids", "64", "--target-gap", "10"]) == 0
    assert re.search(r"grids needed: \d+ test grids per emotion, \d+ credits", capsys.readouterr().out)


def test_plan_power_measures_a_pilot(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rows = [{"path": f"{g}_{i}.png", "label": "Happiness" if g < 4 else "Sadness", "source": f"grid{g}.png",
             "pred": "Happiness" if (rng.random() < (0.9 if g % 2 else 0.3)) == (g < 4) else "Sadness"}
            for g in range(8) for i in range(25)]
    (tmp_path / "m").mkdir()
    pd.DataFrame(rows).to_csv(tmp_path / "m" / "predictions_synthetic.csv", index=False)
    assert main(["plan-power", "--pilot", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "25.0 kept faces per grid" in out and "pooled over 2 emotions" in out
    assert main(["plan-power", "--pilot", str(tmp_path / "m" / "none")]) == 2
    assert "no predictions_synthetic" in capsys.readouterr().err


def test_plan_power_writes_the_method_figure(tmp_path, capsys):
    target = tmp_path / "mde_curve.png"
    assert main(["plan-power", "--figure", str(target)]) == 0
    assert target.stat().st_size > 10_000 and "figure written" in capsys.readouterr().out
