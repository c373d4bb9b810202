import json

import pandas as pd
import pytest
import torch

from fercore.demo.pipeline import DemoRunConfig, run_demo
from fercore.models import load_model


@pytest.mark.slow
def test_demo_run_trains_both_models_and_never_overwrites(demo_root, tmp_path):
    config = DemoRunConfig(data_dir=demo_root, results_dir=tmp_path / "results", epochs=12, progress=False)
    summary = run_demo(config)
    assert [(m.name, m.arch) for m in summary.models] == [("resnet10t", "resnet10t"), ("tiny-enet", "test_efficientnet")]
    # 8 classes: chance is 0.125; the procedural faces are learnable but not trivially
    assert all(m.test_accuracy >= 0.25 for m in summary.models), summary.text()
    assert (demo_root / "synthetic" / "processed" / "manifest.csv").is_file()
    for result in summary.models:
        run = result.run_dir
        assert run.parent == summary.run_dir and 0.0 <= result.synthetic_accuracy <= 1.0
        for name in ("config.yaml", "log.csv", "metrics.json", "checkpoint.pt", "last.pt", "confusion_test.json",
                     "figures/confusion_test.png", "synthetic_test_metrics.json"):
            assert (run / name).is_file(), name
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["test"]["accuracy"] == pytest.approx(result.test_accuracy)
        confusion = json.loads((run / "confusion_test.json").read_text())
        assert sum(map(sum, confusion["matrix"])) == 200
        assert len(pd.read_csv(run / "log.csv")) == 12
        model = load_model(run / "checkpoint.pt")
        assert model.image_size == 64 and model.arch == result.arch
        with torch.inference_mode():
            assert model.net(torch.randn(1, 3, 64, 64)).shape == (1, 8)
    first = json.loads((summary.models[0].run_dir / "metrics.json").read_text())
    second = run_demo(DemoRunConfig(data_dir=demo_root, results_dir=tmp_path / "results", models={"r": "resnet10t"}, epochs=1,
                                    progress=False))
    assert second.run_dir != summary.run_dir and json.loads((summary.models[0].run_dir / "metrics.json").read_text()) == first
    assert (tmp_path / "results" / "latest").resolve() == second.run_dir.resolve()  # what suite_demo.yaml reads
    assert "tiny-enet (test_efficientnet)" in summary.text()
