"""The models a run compares and their training regimes.

A suite's ``models`` parameter names each model: ``{name: {weights, arch, image_size,
trust_pickle, backbone}}`` (``backbone``: the weights the synthetic-only regime starts from,
e.g. a VGGFace2 state dict without an emotion head; none = from scratch). Each model exists in
up to three regimes:

* **trained on real**: the given weights (HSEmotion's B0 / B2, trained on AffectNet);
* **fine-tuned on synthetic**: those weights fine-tuned on the synthetic training faces (RQ2);
* **trained on synthetic only**: the backbone (or nothing) trained on synthetic faces alone (RQ2);
* **fine-tuned on real (control)**: the given weights fine-tuned with the same recipe on as many real faces that no
  model saw (RQ2's control, :mod:`fercore.studies.rq2_replicates`).

RQ2 trains them into ``<run>/models/<model>/<regime>/`` (a replicated regime's first replicate; replicate r >= 1 in
``<regime>-rep<r>/``, :func:`replicate_dir`); RQ3 and RQ4 find the first there by model name.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd

from fercore.data import SeenSplit, parse_seen, selection_split
from fercore.models import Classifier, load_classifier, load_model
from fercore.studies.common import slug
from fercore.training import Stage, TrainConfig, run_or_resume

log = logging.getLogger(__name__)

REAL = "trained on real"
FINETUNED = "fine-tuned on synthetic"
SYNTHETIC_ONLY = "trained on synthetic only"
CONTROL = "fine-tuned on real (control)"
REGIMES: tuple[str, ...] = (REAL, FINETUNED, SYNTHETIC_ONLY)
TRAINED_IN_RUN: tuple[str, ...] = (FINETUNED, SYNTHETIC_ONLY, CONTROL)


@dataclass(frozen=True)
class ModelSpec:
    """One model of the ``models`` parameter."""

    name: str
    weights: str
    arch: str | None = None  # needed when the weights file does not name its architecture
    image_size: int | None = None  # default: the checkpoint's, else the architecture's
    trust_pickle: bool = False  # True only for a pickled checkpoint you trust (HSEmotion enet_*.pt)
    backbone: str | None = None  # start of the synthetic-only regime (None: from scratch)
    seen: tuple[str, ...] | None = None  # real splits a foreign file trained / selected on, e.g. ("affectnet:train",)

    def load(self) -> Classifier:
        """The model trained on real faces."""
        return load_classifier(self.weights, self.arch, image_size=self.image_size, trust_pickle=self.trust_pickle)

    def seen_by(self, model: Classifier) -> list[SeenSplit] | None:
        """What this model saw: the checkpoint's record and the parameter file's declaration together; None when
        neither says (a foreign file without ``seen``)."""
        recorded = model.facts.seen
        declared = parse_seen(self.seen, where=f"models.{self.name}.seen") if self.seen is not None else None
        if recorded is None and declared is None:
            return None
        return [*(recorded or []), *(declared or [])]


SPEC_KEYS = tuple(f.name for f in fields(ModelSpec) if f.name != "name")


def model_specs(
    models: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    weights: str | None = None,
    arch: str | None = None,
    image_size: int | None = None,
    trust_pickle: bool = False,
) -> dict[str, ModelSpec]:
    """The ``models`` parameter as :class:`ModelSpec` per name; without it, the single-model
    shorthand (``weights``, ``arch``, ``image_size``, ``trust_pickle``) as one model named after
    its architecture."""
    if models:
        specs = {}
        for name, entry in models.items():
            entry = dict(entry or {})
            unknown = sorted(set(entry) - set(SPEC_KEYS))
            if unknown:
                raise ValueError(f"models.{name}: unknown keys {unknown}; known: {', '.join(SPEC_KEYS)}")
            if not entry.get("weights"):
                raise ValueError(f"models.{name} needs weights: the file of the model trained on real faces")
            if isinstance(entry.get("seen"), str):
                entry["seen"] = [entry["seen"]]
            if entry.get("seen") is not None:
                entry["seen"] = tuple(str(x) for x in entry["seen"])
                parse_seen(entry["seen"], where=f"models.{name}.seen")
            specs[str(name)] = ModelSpec(str(name), **{k: entry[k] for k in SPEC_KEYS if entry.get(k) is not None})
        return specs
    if not weights:
        raise ValueError("give the models parameter ({name: {weights, arch, ...}}) or weights for a single model")
    name = arch or Path(weights).stem
    return {name: ModelSpec(name, weights, arch, image_size, trust_pickle)}


def weight_paths(specs: Mapping[str, ModelSpec]) -> dict[str, str]:
    """``{'<name>.weights': path, '<name>.backbone': path}`` for :func:`fercore.book.chapter.require_paths`."""
    paths = {f"models.{name}.weights": spec.weights for name, spec in specs.items()}
    paths.update({f"models.{name}.backbone": spec.backbone for name, spec in specs.items() if spec.backbone})
    return paths


def regime_dir(output_dir: str | Path, model: str, regime: str) -> Path:
    """Where RQ2 trains ``model`` in ``regime``: ``<run>/models/<model>/<regime>/``."""
    return Path(output_dir) / "models" / slug(model) / slug(regime)


def replicate_dir(output_dir: str | Path, model: str, regime: str, replicate: int) -> Path:
    """Replicate ``replicate`` of a replicated regime: the first is :func:`regime_dir` (the checkpoint RQ3 and RQ4
    load), replicate r >= 1 its sibling ``<regime>-rep<r>/``."""
    base = regime_dir(output_dir, model, regime)
    return base if replicate == 0 else base.with_name(f"{base.name}-rep{replicate}")


@dataclass(frozen=True)
class Recipe:
    """How a regime is trained: epochs in all, of which ``head_epochs`` train the head alone."""

    epochs: int
    head_epochs: int = 0
    lr: float = 1e-4
    head_lr: float | None = None
    optimizer: str = "sam"
    batch_size: int = 32
    val_fraction: float = 0.15

    def stages(self) -> list[Stage]:
        if not 0 <= self.head_epochs <= self.epochs:
            raise ValueError(f"head_epochs={self.head_epochs} must lie within 0..epochs={self.epochs}")
        if not self.head_epochs:
            return []
        stages = [Stage(self.head_epochs, "head", self.head_lr or self.lr), Stage(self.epochs - self.head_epochs, "all", self.lr)]
        return [s for s in stages if s.epochs]


def train_config(spec: ModelSpec, real: Classifier, regime: str, recipe: Recipe, *, seed: int = 0, workers: int = 2,
                 device: str = "auto", progress: bool = True, experiment: str | None = None) -> TrainConfig:
    """The training run of ``regime`` for ``spec`` (``real``: its model trained on real faces, which
    gives the architecture and input size).

    Fine-tuned on synthetic: from the given weights, the seed's recipe (SAM at lr 1e-4, the head
    alone first, then everything); the control (fine-tuned on real) the same from the same weights. Trained on
    synthetic only: from ``spec.backbone`` (its emotion head, if any, replaced by a fresh one) or from scratch."""
    if regime in (FINETUNED, CONTROL):
        weights, trust, head = spec.weights, spec.trust_pickle, "load"
    elif regime == SYNTHETIC_ONLY:
        weights, trust, head = spec.backbone, spec.trust_pickle, "fresh"
    else:
        raise ValueError(f"regime {regime!r} is not trained in a run; choose {' or '.join(TRAINED_IN_RUN)}")
    return TrainConfig(experiment=experiment or f"{slug(spec.name)}-{slug(regime)}", arch=real.arch,
                       weights=str(weights) if weights else None, trust_pickle=trust, head=head, image_size=real.image_size,
                       batch_size=recipe.batch_size, epochs=recipe.epochs, lr=recipe.lr, stages=recipe.stages(),
                       optimizer=recipe.optimizer, val_fraction=recipe.val_fraction, augment=True, seed=seed, workers=workers,
                       device=device, progress=progress, warmup_epochs=0.0 if weights else 1.0)  # from scratch: warm up


def train_regime(config: TrainConfig, train_faces: pd.DataFrame, out: str | Path) -> Path:
    """Train ``config`` on ``train_faces`` (its validation part split off by source grid when
    known; with too few grids none, and the final epoch is kept: :func:`fercore.data.selection_split`)
    into ``out``; a finished run is reused, an interrupted one resumed. Returns the checkpoint."""
    inner_train, inner_val, _ = selection_split(train_faces.reset_index(drop=True), config.val_fraction, seed=config.seed)
    run_dir = run_or_resume(config, Path(out), (inner_train, inner_val, None))
    return run_dir / "checkpoint.pt"


def load_regimes(spec: ModelSpec, output_dir: str | Path, regimes: tuple[str, ...] = REGIMES) -> tuple[dict[str, Classifier], list[str]]:
    """The model in each regime that exists: the given weights (trained on real) and the
    checkpoints RQ2 wrote into this run folder. Returns them and the regimes not found."""
    found: dict[str, Classifier] = {}
    missing = []
    for regime in regimes:
        if regime == REAL:
            found[regime] = spec.load()
            continue
        checkpoint = regime_dir(output_dir, spec.name, regime) / "checkpoint.pt"
        if checkpoint.is_file():
            found[regime] = load_model(checkpoint)
        else:
            missing.append(regime)
            log.warning("%s, %s: %s not found (RQ2 trains it into this run folder; run notebook 02 first)",
                        spec.name, regime, checkpoint)
    return found, missing


def selection(checkpoint: str | Path) -> str:
    """How the run that wrote ``checkpoint`` chose its weights (``metrics.json``'s ``selection``)."""
    import json

    metrics = json.loads((Path(checkpoint).parent / "metrics.json").read_text())
    return metrics.get("selection", "best validation epoch")


def training_log(checkpoint: str | Path) -> pd.DataFrame:
    """The ``log.csv`` (one row per epoch) of the run that wrote ``checkpoint``."""
    return pd.read_csv(Path(checkpoint).parent / "log.csv")


def with_paths(specs: Mapping[str, ModelSpec], paths: Mapping[str, str]) -> dict[str, ModelSpec]:
    """``specs`` with the weight paths :func:`weight_paths` named replaced by ``paths``' values
    (e.g. resolved against the project folder)."""
    from dataclasses import replace

    out = {}
    for name, spec in specs.items():
        out[name] = replace(spec, weights=paths.get(f"models.{name}.weights", spec.weights),
                            backbone=paths.get(f"models.{name}.backbone", spec.backbone))
    return out


def model_table(models: Mapping[str, Classifier]) -> pd.DataFrame:
    """Display table: architecture, input size, trained classes and weights file per model."""
    return pd.DataFrame([{"model": name, "architecture": m.arch, "input px": m.image_size,
                          "classes": len(m.trained_classes), "weights": "/".join(Path(m.facts.weights).parts[-2:]) if m.facts.weights else "-"}
                         for name, m in models.items()]).set_index("model")
