import json

import pandas as pd
import pytest
import torch

from fercore.models import load_model
from fercore.pipeline import DemoRunConfig, run_demo


@pytest.mark.slow
def test_demo_run_learns_and_never_overwrites(demo_root, tmp_path):
    config = DemoRunConfig(data_dir=demo_root, results_dir=tmp_path / "results", epochs=12, progress=False)
    summary = run_demo(config)
    # 8 classes: chance is 0.125; the procedural faces are learnable but not trivially
    assert summary.test_accuracy >= 0.25, summary.text()
    assert 0.0 <= summary.synthetic_accuracy <= 1.0 and (demo_root / "synthetic" / "processed" / "manifest.csv").is_file()
    run = summary.run_dir
    for name in ("config.yaml", "log.csv", "metrics.json", "checkpoint.pt", "last.pt", "confusion_test.json",
                 "figures/confusion_test.png", "synthetic_test_metrics.json"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] == pytest.approx(summary.test_accuracy)
    confusion = json.loads((run / "confusion_test.json").read_text())
    assert sum(map(sum, confusion["matrix"])) == 200
    assert len(pd.read_csv(run / "log.csv")) == 12
    model = load_model(run / "checkpoint.pt")
    assert model.fercore_metadata["image_size"] == 64
    with torch.inference_mode():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 8)
    second = run_demo(DemoRunConfig(data_dir=demo_root, results_dir=tmp_path / "results", epochs=1, progress=False))
    assert second.run_dir != run and json.loads((run / "metrics.json").read_text()) == metrics
    assert (tmp_path / "results" / "latest").resolve() == second.run_dir.resolve()  # what suite_demo.yaml reads
