"""Architectures: timm names and aliases, the size each is fed, building a model (never downloading),
freezing stages, and the one forward pass that gives logits and penultimate features."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import timm
import torch
from torch import nn

from fercore.core.labels import NUM_CLASSES
from fercore.data import Preprocess
from fercore.models.weights import Checkpoint, HeadMode, load_weights

#: Short and legacy names -> current timm architecture names. The ``_ns`` names are the
#: seed's (timm 0.4 era); in timm 1.x they are pretrained tags of ``tf_efficientnet_b*``.
ARCH_ALIASES: dict[str, str] = {
    "b0": "tf_efficientnet_b0",
    "b2": "tf_efficientnet_b2",
    "enet_b0": "tf_efficientnet_b0",
    "enet_b2": "tf_efficientnet_b2",
    "tf_efficientnet_b0_ns": "tf_efficientnet_b0",
    "tf_efficientnet_b2_ns": "tf_efficientnet_b2",
    "efficientnet_b0_ns": "tf_efficientnet_b0",
    "efficientnet_b2_ns": "tf_efficientnet_b2",
}

#: Input sizes HSEmotion trained with (B0 at 224, B2 at 260).
HSEMOTION_IMAGE_SIZE: dict[str, int] = {"b0": 224, "b2": 260}


def resolve_arch(arch: str) -> str:
    """Current timm name for ``arch`` (accepts ``b0``, ``tf_efficientnet_b0_ns``, tags ...)."""
    key = arch.strip().lower()
    key = ARCH_ALIASES.get(key, key)
    key = key.split(".", 1)[0]  # drop a pretrained tag: nothing is downloaded anyway
    key = ARCH_ALIASES.get(key, key)
    if not timm.is_model(key):
        raise ValueError(
            f"unknown architecture {arch!r}: use b0 / b2, tf_efficientnet_b0 / tf_efficientnet_b2 "
            "(the seed's tf_efficientnet_b0_ns / _b2_ns are accepted) or another timm model name"
        )
    return key


def arch_family(arch: str) -> str | None:
    """'b0', 'b2' ... for EfficientNet architectures, else None."""
    name = resolve_arch(arch)
    for suffix in ("b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7"):
        if name.endswith("efficientnet_" + suffix):
            return suffix
    return None


def default_image_size(arch: str) -> int:
    """Input size the weights were trained at: HSEmotion's 224 (B0) / 260 (B2), else timm's."""
    family = arch_family(arch)
    if family in HSEMOTION_IMAGE_SIZE:
        return HSEMOTION_IMAGE_SIZE[family]
    cfg = timm.models.get_pretrained_cfg(resolve_arch(arch))
    return int(cfg.input_size[-1]) if cfg is not None else 224


def create_model(
    arch: str = "tf_efficientnet_b0",
    num_classes: int = NUM_CLASSES,
    weights: str | Path | Checkpoint | None = None,
    *,
    trust_pickle: bool = False,
    head: HeadMode = "auto",
    **timm_kwargs: Any,
) -> nn.Module:
    """Build a timm model (never downloads) and optionally load a local weight file.

    ``head``: ``auto`` loads the file's head when it fits and attaches a fresh one when the
    file has none (VGGFace2 backbones); ``fresh`` always starts a new head (fine-tuning to
    another class set); ``load`` requires the file's head. :func:`load_weights` does the same
    and returns its :class:`LoadReport`.
    """
    model = timm.create_model(resolve_arch(arch), pretrained=False, num_classes=num_classes, **timm_kwargs)
    if weights is not None:
        load_weights(model, weights, trust_pickle=trust_pickle, head=head)
    return model


def set_trainable(model: nn.Module, stage: Literal["head", "all", "none"] | int) -> int:
    """Freeze the model except: the head (``"head"``), everything (``"all"``), nothing
    trainable (``"none"``), or the last ``N`` stages of ``model.blocks`` plus ``conv_head``,
    ``bn2`` and the head (int ``N``). Returns the number of trainable parameters.

    Frozen BatchNorm layers keep their running statistics when :func:`train_mode` is used.
    """
    if stage == "all":
        trainable: list[nn.Module] = [model]
    elif stage == "none":
        trainable = []
    elif stage == "head":
        trainable = [model.get_classifier()]
    elif isinstance(stage, int) and stage >= 0:
        blocks = list(model.blocks)
        if stage > len(blocks):
            raise ValueError(f"the model has {len(blocks)} stages; cannot unfreeze the last {stage}")
        trainable = [model.get_classifier(), model.conv_head, model.bn2, *blocks[len(blocks) - stage :]]
    else:
        raise ValueError(f"stage must be 'head', 'all', 'none' or a number of stages, not {stage!r}")
    for param in model.parameters():
        param.requires_grad_(False)
    for module in trainable:
        for param in module.parameters():
            param.requires_grad_(True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def train_mode(model: nn.Module) -> nn.Module:
    """``model.train()``, but BatchNorm layers whose parameters are frozen stay in eval mode."""
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            params = list(module.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                module.eval()
    return model


def logits_and_features(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass of a timm classifier: (logits, pooled penultimate features, i.e. what the
    classifier layer receives: 1280-d for B0, 1408-d for B2). The network is called as a whole,
    so its forward hooks run."""
    captured: list[torch.Tensor] = []
    handle = net.get_classifier().register_forward_hook(lambda module, inputs, output: captured.append(inputs[0]))
    try:
        logits = net(x)
    finally:
        handle.remove()
    return logits, captured[0].flatten(1)


def features(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Penultimate (pooled, pre-classifier) embeddings: the second half of :func:`logits_and_features`."""
    return logits_and_features(model, images)[1]


def preprocess_for(arch: str, image_size: int | None = None) -> Preprocess:
    """Preprocessing for an architecture at its trained size (224 B0, 260 B2) unless given."""
    return Preprocess(image_size or default_image_size(arch))
