"""The :class:`Classifier` (a network and its facts), loading one from a weight file, and fercore's
own checkpoints (save / load)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from fercore import __version__
from fercore.core.audit import watch_forward_passes
from fercore.core.files import save_torch
from fercore.core.labels import CLASSES, NUM_CLASSES, canonical_name
from fercore.data import SeenSplit, parse_seen
from fercore.models.architectures import create_model, default_image_size, resolve_arch
from fercore.models.diagnose import metadata_int, nonfinite_message, resumable_state
from fercore.models.weights import LoadReport, WeightsError, load_weights, read_checkpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelFacts:
    """What fercore knows about a classifier besides its tensors."""

    arch: str  # the timm architecture name
    image_size: int  # the size it is fed
    trained_classes: tuple[str, ...]  # the classes it was trained to tell apart (canonical order)
    weights: str | None = None  # the file it was loaded from
    load_report: LoadReport | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)  # a fercore checkpoint's metadata ({} otherwise)

    @property
    def training_config(self) -> dict[str, Any]:
        """The training configuration a fercore checkpoint records ({} for other files)."""
        return dict(self.metadata.get("config") or {})

    @property
    def seen(self) -> list[SeenSplit] | None:
        """The real (and synthetic) data-set splits a fercore checkpoint trained and selected on, with those its
        starting weights had seen; None when not recorded (a foreign file, an older checkpoint, or starting weights
        that do not say): the parameter file declares them then (:mod:`fercore.data.seen`)."""
        if not isinstance(self.metadata.get("seen"), list) or not self.metadata.get("seen_complete", True):
            return None
        return parse_seen(self.metadata["seen"], where=f"{self.weights}: seen")

    def training_counts(self, classes: Sequence[str]) -> list[float] | None:
        """Training faces per class of ``classes`` as the head learnt them, from a fercore checkpoint's
        ``class_counts``: equal counts when it trained with inverse-frequency class weights (``class_weights``: the
        loss saw a balanced prior); None when not recorded (the prior is then estimated, :mod:`fercore.analysis.prior`)."""
        counts = self.metadata.get("class_counts")
        if not isinstance(counts, Mapping):
            return None
        if self.training_config.get("class_weights", False):
            present = [c for c in classes if counts.get(c, 0)]
            each = sum(float(counts[c]) for c in present) / max(1, len(present))
            return [each if c in present else 0.0 for c in classes]
        return [float(counts.get(c, 0)) for c in classes]


@dataclass
class Classifier:
    """A network and its :class:`ModelFacts`: what inference, training and the studies pass around."""

    net: nn.Module
    facts: ModelFacts

    @property
    def arch(self) -> str:
        return self.facts.arch

    @property
    def image_size(self) -> int:
        return self.facts.image_size

    @property
    def trained_classes(self) -> list[str]:
        return list(self.facts.trained_classes)

    @classmethod
    def wrap(cls, net: nn.Module, *, arch: str | None = None, image_size: int | None = None,
             trained_classes: Sequence[str] | None = None) -> Classifier:
        """Facts for a network built in memory (a timm model): its architecture, the size to feed
        it (default: the architecture's) and its classes (default: every class its head has)."""
        name = resolve_arch(arch or net.pretrained_cfg["architecture"])
        classes = tuple(trained_classes) if trained_classes else tuple(CLASSES[: int(net.num_classes)])
        return cls(net, ModelFacts(name, int(image_size or default_image_size(name)), classes))

    def with_image_size(self, image_size: int) -> Classifier:
        """The same network fed ``image_size`` px."""
        return Classifier(self.net, replace(self.facts, image_size=int(image_size)))


def _classes_from_metadata(metadata: Mapping[str, Any], num_classes: int) -> tuple[str, ...]:
    if metadata.get("trained_classes"):
        return tuple(canonical_name(c) for c in metadata["trained_classes"])
    return tuple(CLASSES[:num_classes])


def load_classifier(
    weights: str | Path, arch: str | None = None, *, image_size: int | None = None, trust_pickle: bool = False
) -> Classifier:
    """A classifier from a fercore checkpoint (architecture, size and classes from its metadata)
    or from a foreign weight file with a head for the 8 classes (HSEmotion: ``trust_pickle=True``),
    built as ``arch``. ``image_size`` overrides the size it is fed (default: the checkpoint's,
    else the architecture's; a different size is logged)."""
    ckpt = read_checkpoint(weights, trust_pickle=trust_pickle)
    if (broken := nonfinite_message(str(weights), ckpt.state_dict)) is not None:
        raise WeightsError(broken)
    if ckpt.metadata.get("arch"):
        name = resolve_arch(ckpt.metadata["arch"])
        num_classes = metadata_int(weights, ckpt.metadata, "num_classes", NUM_CLASSES)
        trained_size = metadata_int(weights, ckpt.metadata, "image_size", default_image_size(name))
    elif arch:
        name, num_classes, trained_size = resolve_arch(arch), NUM_CLASSES, default_image_size(arch)
    else:
        raise WeightsError(f"{weights} does not name its architecture (not a fercore checkpoint): give arch (b0, b2, a timm name)")
    net = create_model(name, num_classes)
    report = load_weights(net, ckpt, head="load")
    if image_size and int(image_size) != trained_size:
        log.warning("%s was trained at %s px; feeding it %s px as asked", weights, trained_size, image_size)
    facts = ModelFacts(name, int(image_size or trained_size), _classes_from_metadata(ckpt.metadata, num_classes),
                       str(weights), report, dict(ckpt.metadata))
    watch_forward_passes(net, str(weights))  # the audit (FERCORE_INFERENCE_AUDIT) counts this network's passes
    return Classifier(net.eval(), facts)


def checkpoint_payload(model: nn.Module, *, arch: str, image_size: int, **metadata: Any) -> dict[str, Any]:
    """What a fercore checkpoint holds: ``state_dict`` (on CPU) and plain metadata (``arch``,
    ``num_classes``, ``classes``, ``image_size``, versions, and whatever ``metadata`` adds);
    ``torch.load(weights_only=True)`` reads it and :func:`load_model` rebuilds the model."""
    return {
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "arch": resolve_arch(arch),
        "num_classes": int(model.num_classes),
        "classes": list(CLASSES[: model.num_classes]) if model.num_classes == len(CLASSES) else [],
        "image_size": int(image_size),
        "versions": {"fercore": __version__, "timm": str(timm.__version__), "torch": str(torch.__version__)},
        **metadata,
    }


def save_model(path: str | Path, model: nn.Module, *, arch: str, image_size: int, **metadata: Any) -> Path:
    """Save :func:`checkpoint_payload` atomically; an existing file is never replaced."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists; fercore never overwrites a saved model")
    return save_torch(path, checkpoint_payload(model, arch=arch, image_size=image_size, **metadata))


def load_model(path: str | Path, *, trust_pickle: bool = False) -> Classifier:
    """Rebuild a model saved by :func:`save_model` (architecture, head, size and classes from its metadata)."""
    ckpt = read_checkpoint(path, trust_pickle=trust_pickle)
    if (resumable := resumable_state(path, ckpt.metadata)) is not None:
        raise WeightsError(resumable)
    if not ckpt.metadata.get("arch"):
        raise WeightsError(
            f"{path} has no 'arch' metadata (not saved by fercore.save_model); load it with "
            "load_classifier(path, arch) or create_model(arch, weights=path) instead"
        )
    return load_classifier(path, trust_pickle=trust_pickle)
