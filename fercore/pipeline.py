"""The main job on the embedded demo: demo data -> train on real-style faces -> evaluate on
real-style and on synthetic faces extracted from the demo grids -> results folder.

``results/demo/latest`` then points at the run; the notebook suite (``configs/suite_demo.yaml``)
starts from its checkpoint. The demo model
is trained from scratch because a fresh machine has no pretrained weights: EfficientNet-B0
from scratch does not learn from ~850 small images in a CPU budget (measured: chance level
after 12 epochs), so the demo uses timm's small ``resnet10t`` unless ``arch`` says otherwise.
With real weights (``weights=``) any architecture fercore loads can be used.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import labels, plots
from .data import dataset_classes, discover
from .demo import DemoSpec, make_demo_data
from .fileio import mark_latest, new_run_dir, write_json
from .labels import CLASSES
from .metrics import arrays, confusion, evaluate_predictions
from .models import load_model, trained_classes
from .predict import predict
from .train import TrainConfig, train

log = logging.getLogger(__name__)


@dataclass
class DemoRunConfig:
    """Parameters of :func:`run_demo`."""

    data_dir: Path = Path("data/demo")
    results_dir: Path = Path("results/demo")
    arch: str = "resnet10t"
    weights: Path | None = None
    trust_pickle: bool = False
    image_size: int = 64
    epochs: int = 20
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.05
    val_fraction: float = 0.15
    seed: int = 0
    workers: int = 1
    progress: bool = True
    force_data: bool = False  # rewrite demo data made by other settings / an older version
    spec: DemoSpec = field(default_factory=DemoSpec)

    def train_config(self) -> TrainConfig:
        """The training run this demo makes (AdamW with warm-up and augmentation: from scratch)."""
        return TrainConfig(
            experiment="demo",
            data_root=str(self.data_dir / "real"),
            train_split="train",
            val_fraction=self.val_fraction,
            test_split="test",
            arch=self.arch,
            weights=str(self.weights) if self.weights else None,
            trust_pickle=self.trust_pickle,
            image_size=self.image_size,
            batch_size=self.batch_size,
            epochs=self.epochs,
            lr=self.lr,
            optimizer="adamw",
            weight_decay=self.weight_decay,
            warmup_epochs=1.0,
            augment=True,
            seed=self.seed,
            workers=self.workers,
            progress=self.progress,
        )


@dataclass
class DemoSummary:
    """What the demo run produced."""

    run_dir: Path
    data_dir: Path
    test_accuracy: float
    best_val_accuracy: float
    best_epoch: int
    per_class_accuracy: dict[str, float] = field(default_factory=dict)
    synthetic_accuracy: float = float("nan")
    seconds: float = 0.0

    def text(self) -> str:
        lines = [
            "",
            "fercore demo (procedural faces: these numbers are not research results)",
            f"  data:     {self.data_dir}",
            f"  results:  {self.run_dir}",
            f"  best val accuracy {self.best_val_accuracy:.3f} (epoch {self.best_epoch})",
            f"  test accuracy     {self.test_accuracy:.3f}  (chance {1 / len(CLASSES):.3f})",
            f"  synthetic test faces (extracted from the demo grids): accuracy {self.synthetic_accuracy:.3f}",
            "  per class: " + ", ".join(f"{k} {v:.2f}" for k, v in self.per_class_accuracy.items()),
            f"  took {self.seconds:.0f} s",
        ]
        return "\n".join(lines)


def run_demo(config: DemoRunConfig) -> DemoSummary:
    """Run the demo end to end; results go to a new folder under ``config.results_dir``."""
    start = time.perf_counter()
    make_demo_data(config.data_dir, config.spec, force=config.force_data, progress=config.progress)
    run_dir = new_run_dir(config.results_dir)
    result = train(config.train_config(), out=run_dir)

    model = load_model(run_dir / "checkpoint.pt")
    real_classes = dataset_classes(config.data_dir / "real")
    preds = predict(model, discover(config.data_dir / "real", ["test"]), classes=real_classes, workers=config.workers,
                    progress=config.progress)
    matrix, _ = confusion(*arrays(preds)[:2])
    per_class = {name: float(matrix[i, i] / matrix[i].sum()) for i, name in enumerate(CLASSES) if matrix[i].sum()}
    write_json(run_dir / "confusion_test.json", {"labels": list(CLASSES), "matrix": matrix.tolist(), "per_class_accuracy": per_class})
    plots.confusion_matrix(matrix, run_dir / "figures" / "confusion_test", title="Demo test set")
    synthetic = _synthetic_accuracy(model, config, run_dir)
    mark_latest(run_dir)  # configs/suite_demo.yaml reads results/demo/latest/checkpoint.pt
    return DemoSummary(
        run_dir=run_dir,
        data_dir=config.data_dir,
        test_accuracy=result.test["accuracy"],
        best_val_accuracy=result.best["accuracy"],
        best_epoch=result.best_epoch,
        per_class_accuracy=per_class,
        synthetic_accuracy=synthetic,
        seconds=time.perf_counter() - start,
    )


def _synthetic_accuracy(model: torch.nn.Module, config: DemoRunConfig, run_dir: Path) -> float:
    """Extract the demo's synthetic test grids (once) and score the real-trained model on them (RQ1 in small)."""
    from .grids import ExtractOptions, extract_grids
    from .studies import face_table

    processed = config.data_dir / "synthetic" / "processed"
    extract_grids(config.data_dir / "synthetic" / "raw_grids", processed, ExtractOptions(layout="auto", detector="none"),
                  workers=2, progress=config.progress)
    faces = face_table(processed, "test")
    classes = labels.class_set(dataset_classes(processed), within=trained_classes(model))
    preds = predict(model, faces, classes=classes, workers=config.workers, progress=config.progress)
    metrics = evaluate_predictions(preds, classes=classes, n_boot=200)
    write_json(run_dir / "synthetic_test_metrics.json", metrics)
    return float(metrics["accuracy"])
