"""The main job on the embedded demo: demo data -> train each demo model on real-style faces ->
evaluate on real-style and on synthetic faces extracted from the demo grids -> results folder.

``results/demo/latest`` then points at the run, one folder per model; the notebook suite
(``configs/suite_demo.yaml``) compares the models from their checkpoints. The demo models are
trained from scratch because a fresh machine has no pretrained weights: EfficientNet-B0 from
scratch does not learn from ~850 small images in a CPU budget (measured: chance level after 12
epochs), so the demo uses two small networks of different architectures, timm's ``resnet10t``
and ``test_efficientnet`` (a 0.1 M-parameter EfficientNet), standing in for B0 and B2. With
real weights (``weights=``) any architecture fercore loads can be used.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from fercore.analysis import arrays, confusion, evaluate_predictions, plots, sample_groups
from fercore.core import labels
from fercore.core.files import mark_latest, new_run_dir, write_json
from fercore.core.labels import CLASSES
from fercore.data import dataset_classes, discover, face_table
from fercore.demo.dataset import DemoSpec, make_demo_data
from fercore.grids import ExtractOptions, extract_grids
from fercore.inference import predict
from fercore.models import Classifier, load_model
from fercore.synthetic import write_blind_sheet
from fercore.training import TrainConfig, train

log = logging.getLogger(__name__)


#: How the demo's synthetic grids are extracted: face crops framed like the demo's real-style faces
#: (``portrait``: box 0.66 of the image, as drawn; docs/grids.md gives the measured framing). On the
#: default demo 89 % of the cells are kept (cells where MTCNN finds no cartoon face are not).
DEMO_EXTRACT = ExtractOptions(layout="auto", detector="mtcnn", crop="face", framing="portrait")

#: The demo's models: name -> timm architecture (two architectures, so the demo shows a comparison).
DEMO_MODELS: dict[str, str] = {"resnet10t": "resnet10t", "tiny-enet": "test_efficientnet"}


@dataclass
class DemoRunConfig:
    """Parameters of :func:`run_demo`."""

    data_dir: Path = Path("data/demo")
    results_dir: Path = Path("results/demo")
    models: dict[str, str] = field(default_factory=lambda: dict(DEMO_MODELS))
    weights: Path | None = None  # start weights (with a single model only)
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

    def __post_init__(self) -> None:
        if self.weights is not None and len(self.models) != 1:
            raise ValueError("start weights go with a single model: pass models={name: arch} with one entry")

    def train_config(self, arch: str) -> TrainConfig:
        """The training run of one demo model (AdamW with warm-up and augmentation: from scratch)."""
        return TrainConfig(
            experiment="demo",
            data_root=str(self.data_dir / "real"),
            train_split="train",
            val_fraction=self.val_fraction,
            test_split="test",
            arch=arch,
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
class DemoModelResult:
    """One demo model: where it was trained and how it scores."""

    name: str
    arch: str
    run_dir: Path
    test_accuracy: float
    best_val_accuracy: float
    best_epoch: int
    per_class_accuracy: dict[str, float] = field(default_factory=dict)
    synthetic_accuracy: float = float("nan")


@dataclass
class DemoSummary:
    """What the demo run produced."""

    run_dir: Path
    data_dir: Path
    models: list[DemoModelResult]
    seconds: float = 0.0
    label_sheet: Path | None = None

    def text(self) -> str:
        lines = ["", "fercore demo (procedural faces: these numbers are not research results)",
                 f"  data:     {self.data_dir}", f"  results:  {self.run_dir}"]
        for m in self.models:
            lines += [f"  {m.name} ({m.arch}): best val accuracy {m.best_val_accuracy:.3f} (epoch {m.best_epoch}), "
                      f"test accuracy {m.test_accuracy:.3f} (chance {1 / len(CLASSES):.3f}), "
                      f"synthetic test faces {m.synthetic_accuracy:.3f}",
                      "    per class: " + ", ".join(f"{k} {v:.2f}" for k, v in m.per_class_accuracy.items())]
        if self.label_sheet is not None:
            lines.append(f"  label sheet (blind, test faces): {self.label_sheet / 'label_sheet.csv'} (docs/label-sheet.md)")
        lines.append(f"  took {self.seconds:.0f} s")
        return "\n".join(lines)


def run_demo(config: DemoRunConfig) -> DemoSummary:
    """Run the demo end to end; results go to a new folder under ``config.results_dir``, one
    sub-folder per model."""
    start = time.perf_counter()
    make_demo_data(config.data_dir, config.spec, force=config.force_data, progress=config.progress)
    processed = _extract_synthetic(config)
    sheet = _label_sheet(config, processed)
    run_dir = new_run_dir(config.results_dir)
    results = [_train_and_score(config, name, arch, run_dir / name, processed) for name, arch in config.models.items()]
    mark_latest(run_dir)  # configs/suite_demo.yaml reads results/demo/latest/<model>/checkpoint.pt
    return DemoSummary(run_dir=run_dir, data_dir=config.data_dir, models=results, seconds=time.perf_counter() - start,
                       label_sheet=sheet)


def _train_and_score(config: DemoRunConfig, name: str, arch: str, model_dir: Path, processed: Path) -> DemoModelResult:
    result = train(config.train_config(arch), out=model_dir)
    model = load_model(model_dir / "checkpoint.pt")
    real_classes = dataset_classes(config.data_dir / "real")
    preds = predict(model, discover(config.data_dir / "real", ["test"]), classes=real_classes, workers=config.workers,
                    progress=config.progress)
    matrix, _ = confusion(*arrays(preds)[:2])
    per_class = {c: float(matrix[i, i] / matrix[i].sum()) for i, c in enumerate(CLASSES) if matrix[i].sum()}
    write_json(model_dir / "confusion_test.json", {"labels": list(CLASSES), "matrix": matrix.tolist(), "per_class_accuracy": per_class})
    plots.confusion_matrix(matrix, model_dir / "figures" / "confusion_test", title=f"Demo test set, {name}")
    synthetic = _synthetic_accuracy(model, config, processed, model_dir)
    return DemoModelResult(name, arch, model_dir, result.test["accuracy"], result.best["accuracy"], result.best_epoch,
                           per_class, synthetic)


def _extract_synthetic(config: DemoRunConfig) -> Path:
    """Extract the demo's synthetic grids once (a rerun skips grids already extracted)."""
    processed = config.data_dir / "synthetic" / "processed"
    record = processed / ".grids" / "options.json"
    wanted = {k: getattr(DEMO_EXTRACT, k) for k in ("layout", "detector", "crop", "framing")}
    stale = record.is_file() and {k: json.loads(record.read_text()).get(k) for k in wanted} != wanted
    if stale:  # a demo folder extracted by an older fercore (cell crops): redo it with the demo's options
        log.info("%s was extracted with other options; extracting the demo grids again (%s)", processed, wanted)
    extract_grids(config.data_dir / "synthetic" / "raw_grids", processed, DEMO_EXTRACT, workers=2, force=stale,
                  progress=config.progress)
    return processed


def _label_sheet(config: DemoRunConfig, processed: Path) -> Path:
    """The blind label sheet of the demo's synthetic test faces (``synthetic/label_sheet``, its key beside it), written
    once: a sheet already there may hold a person's answers and is left as it is."""
    out = config.data_dir / "synthetic" / "label_sheet"
    if (out / "label_sheet.csv").is_file():
        log.info("%s exists; kept as it is (it may be filled in)", out / "label_sheet.csv")
        return out
    write_blind_sheet(processed / "manifest.csv", out, split="test")
    return out


def _synthetic_accuracy(model: Classifier, config: DemoRunConfig, processed: Path, model_dir: Path) -> float:
    """Score a real-trained model on the synthetic test faces (RQ1 in small); the intervals in
    ``synthetic_test_metrics.json`` resample whole source grids within each class."""
    faces = face_table(processed, "test")
    classes = labels.class_set(dataset_classes(processed), within=model.trained_classes)
    preds = predict(model, faces, classes=classes, workers=config.workers, progress=config.progress)
    metrics = evaluate_predictions(preds, classes=classes, groups=sample_groups(preds), n_boot=200)  # whole grids within each class
    write_json(model_dir / "synthetic_test_metrics.json", metrics)
    return float(metrics["accuracy"])
