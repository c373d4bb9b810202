"""The demo suite's designs of issue 30: RQ2's replicate-mean changes for fine-tuning on synthetic faces and for the
real-faces control, with the prior-adjusted change; the null arm (the demo's holdout faces through the grid path) beside
the synthetic faces in RQ1, RQ3 and RQ4 with the excess over it; every synthetic grid for the models trained on real."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

MODELS = ("resnet10t", "tiny-enet")


@pytest.mark.slow
def test_demo_rq2_reports_replicate_means_against_the_control(demo_suite):
    run_dir, _ = demo_suite
    effects = pd.read_csv(run_dir / "rq2" / "tables" / "replicate_effects.csv")
    arms = ("fine-tuned on synthetic", "fine-tuned on real (control)", "synthetic − control")
    assert set(zip(effects["model"], effects["arm"], strict=True)) == {(m, a) for m in MODELS for a in arms}
    assert (effects["runs"] == 3).all() and effects["replicated"].all()  # the demo's 3 replicates of each regime
    assert ((effects["change 95% low"] <= effects["bal. acc. change"]) & (effects["bal. acc. change"] <= effects["change 95% high"])).all()
    assert (effects["t quantile (95%)"] > 1.96).all() and effects["prior-adj. accuracy change"].notna().all()
    for model in MODELS:  # synthetic − control is the difference of the two replicate means
        rows = effects[effects["model"] == model].set_index("arm")["bal. acc. change"]
        assert rows[arms[2]] == pytest.approx(rows[arms[0]] - rows[arms[1]], abs=1e-9)
    for model in MODELS:
        assert (run_dir / "models" / model / "fine-tuned_on_real_control-rep2" / "checkpoint.pt").is_file()


@pytest.mark.slow
def test_demo_null_arm_stands_beside_the_synthetic_faces_in_rq1_rq3_rq4(demo_suite):
    run_dir, _ = demo_suite
    excess = pd.read_csv(run_dir / "rq1" / "tables" / "excess_over_null.csv")
    assert set(zip(excess["model"], excess["arm"], strict=True)) == {(m, a) for m in MODELS for a in ("raw", "matched")}
    gap = excess["gap vs synthetic"] - excess["gap vs null"]
    assert np.allclose(gap, excess["excess over null"]) and (excess["grids null"] == 16).all()  # null_grids: 16 in the demo file
    assert ((excess["95% low"] <= excess["excess over null"]) & (excess["excess over null"] <= excess["95% high"])).all()
    for chapter in ("rq3", "rq4"):
        table = pd.read_csv(run_dir / chapter / "tables" / "null_arm.csv")
        regimes = {(m, r) for m in MODELS for r in ("trained on real", "fine-tuned on synthetic", "trained on synthetic only")}
        assert set(zip(table["model"], table["regime"], strict=True)) == regimes, chapter
        grids = table.set_index("regime")["synthetic grids"]
        assert set(grids.loc["trained on real"]) == {"test + train grids"} and set(grids.loc["fine-tuned on synthetic"]) == {"test grids"}
    rq1 = json.loads((run_dir / "rq1" / "chapter.json").read_text())
    assert rq1["numbers"]["null_arm"]["grids"] == 16 and rq1["numbers"]["null_arm"]["faces_from"].endswith("/holdout")
