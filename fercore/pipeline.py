"""The main job on the embedded demo: demo data -> train -> evaluate -> results folder.

Later stages (grid extraction, the notebook suite, the book) hook in here. The demo model
is trained from scratch because a fresh machine has no pretrained weights: EfficientNet-B0
from scratch does not learn from ~850 small images in a CPU budget (measured: chance level
after 12 epochs), so the demo uses timm's small ``resnet10t`` unless ``arch`` says otherwise.
With real weights (``weights=``) any architecture fercore loads can be used.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from .data import FaceDataset, discover, make_loader, seed_everything, stratified_split
from .demo import DemoSpec, make_demo_data
from .fileio import atomic_open, new_run_dir, write_json
from .images import Preprocess, augment_transform
from .labels import CLASSES
from .models import create_model, save_model
from .train import FitConfig, evaluate, fit, pick_device

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
    spec: DemoSpec = field(default_factory=DemoSpec)
    progress: bool = True


@dataclass
class DemoSummary:
    """What the demo run produced."""

    run_dir: Path
    data_dir: Path
    test_accuracy: float
    best_val_accuracy: float
    best_epoch: int
    per_class_accuracy: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def text(self) -> str:
        lines = [
            "",
            "fercore demo (procedural faces: these numbers are not research results)",
            f"  data:     {self.data_dir}",
            f"  results:  {self.run_dir}",
            f"  best val accuracy {self.best_val_accuracy:.3f} (epoch {self.best_epoch})",
            f"  test accuracy     {self.test_accuracy:.3f}  (chance {1 / len(CLASSES):.3f})",
            "  per class: " + ", ".join(f"{k} {v:.2f}" for k, v in self.per_class_accuracy.items()),
            f"  took {self.seconds:.0f} s",
        ]
        return "\n".join(lines)


def _confusion(model: torch.nn.Module, loader, device: torch.device) -> np.ndarray:
    matrix = np.zeros((len(CLASSES), len(CLASSES)), dtype=np.int64)
    model.eval()
    with torch.inference_mode():
        for x, y in loader:
            pred = model(x.to(device).contiguous(memory_format=torch.channels_last)).argmax(1).cpu().numpy()
            np.add.at(matrix, (y.numpy(), pred), 1)
    return matrix


def run_demo(config: DemoRunConfig) -> DemoSummary:
    """Run the demo end to end; results go to a new folder under ``config.results_dir``."""
    start = time.perf_counter()
    seed_everything(config.seed)
    make_demo_data(config.data_dir, config.spec, progress=config.progress)
    real = config.data_dir / "real"
    train_val = discover(real, ["train"])
    train, val = stratified_split(train_val, config.val_fraction, config.seed)
    test = discover(real, ["test"])
    device = pick_device("auto")
    preprocess = Preprocess(config.image_size)
    train_loader = make_loader(
        FaceDataset(train, augment_transform(config.image_size)),
        config.batch_size, shuffle=True, seed=config.seed, workers=config.workers, device=device,
    )
    val_loader = make_loader(FaceDataset(val, preprocess), 64, workers=config.workers, device=device)
    test_loader = make_loader(FaceDataset(test, preprocess), 64, workers=config.workers, device=device)

    model = create_model(config.arch, len(CLASSES), config.weights, trust_pickle=config.trust_pickle, head="auto")
    result = fit(
        model,
        train_loader,
        val_loader,
        FitConfig(
            epochs=config.epochs, lr=config.lr, weight_decay=config.weight_decay,
            warmup_epochs=1.0, progress=config.progress,
        ),
    )
    test_metrics = evaluate(model, test_loader, device)
    confusion = _confusion(model, test_loader, device)
    per_class = {
        name: float(confusion[i, i] / confusion[i].sum()) for i, name in enumerate(CLASSES) if confusion[i].sum()
    }

    run_dir = new_run_dir(config.results_dir)
    with atomic_open(run_dir / "config.yaml", "w") as handle:
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()}
        settings["spec"] = {k: list(v) if isinstance(v, tuple) else v for k, v in settings["spec"].items()}
        yaml.safe_dump(settings, handle, sort_keys=False)
    with atomic_open(run_dir / "log.csv", "w", newline="") as handle:
        pd.DataFrame([asdict(e) for e in result.history]).to_csv(handle, index=False)
    write_json(
        run_dir / "metrics.json",
        {
            "accuracy": test_metrics["accuracy"],
            "loss": test_metrics["loss"],
            "per_class_accuracy": per_class,
            "confusion_matrix": {"labels": list(CLASSES), "matrix": confusion.tolist()},
            "best_epoch": result.best_epoch,
            "best_val_accuracy": result.best_val_accuracy,
            "split_sizes": {"train": len(train), "val": len(val), "test": len(test)},
            "note": "procedural demo data: not a research result",
        },
    )
    save_model(run_dir / "checkpoint.pt", model, image_size=config.image_size, best_epoch=result.best_epoch)
    _plot_confusion(confusion, run_dir / "figures" / "confusion_test.png")
    return DemoSummary(
        run_dir=run_dir,
        data_dir=config.data_dir,
        test_accuracy=test_metrics["accuracy"],
        best_val_accuracy=result.best_val_accuracy,
        best_epoch=result.best_epoch,
        per_class_accuracy=per_class,
        seconds=time.perf_counter() - start,
    )


def _plot_confusion(matrix: np.ndarray, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    rows = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=float), where=rows > 0)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    sns.heatmap(normalised, annot=matrix, fmt="d", cmap="Blues", vmin=0, vmax=1, xticklabels=CLASSES, yticklabels=CLASSES, ax=ax)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Demo test set (colour: row-normalised, numbers: counts)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=120)
    plt.close(fig)
    return path
