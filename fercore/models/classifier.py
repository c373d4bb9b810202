"""EfficientNet B0 / B2 FER models: build, load local weight files safely, freeze, features.

Weight files seen in practice:

* plain state dicts (``torch.save(model.state_dict())``), including VGGFace2 backbones
  saved with ``classifier = Identity`` (no head keys: a fresh head is attached);
* training checkpoints: a dict holding a state dict under ``state_dict`` / ``model`` ...;
* HSEmotion checkpoints (``enet_b0_8_best_afew.pt`` ...): whole modules pickled with
  ``torch.save(model)`` under timm 0.4.5 / 0.9. torch >= 2.6 refuses them by default
  (``weights_only``), and unpickling them under timm 1.x yields modules that crash
  (``'SqueezeExcite' object has no attribute 'gate'``, missing ``conv_s2d``, moved
  ``conv2d_same``). fercore never runs those classes: with ``trust_pickle=True`` it
  unpickles every non-torch class into an inert placeholder, reads the parameters and
  buffers out of the module tree, and loads them into a freshly built timm 1.x model.
"""

from __future__ import annotations

import logging
import pickle
import types
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any, Literal

import timm
import torch
from torch import nn

from fercore import __version__
from fercore.core.files import save_torch, sha256_file
from fercore.core.labels import CLASSES, NUM_CLASSES, canonical_name
from fercore.data import Preprocess

log = logging.getLogger(__name__)

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

#: Keys that wrappers put in front of a model's own keys (DataParallel, torch.compile, Lightning).
WRAPPER_PREFIXES: tuple[str, ...] = ("module.", "_orig_mod.", "model.")

#: Keys under which training checkpoints keep their state dict.
STATE_DICT_KEYS: tuple[str, ...] = ("state_dict", "model_state_dict", "model", "net", "weights")

#: Architectures compared when guessing what a weight file holds (tf_ and plain variants
#: have identical tensors; only padding / BN eps differ, which weights cannot reveal).
GUESS_CANDIDATES: tuple[str, ...] = tuple(f"efficientnet_b{i}" for i in range(5))

HeadMode = Literal["auto", "load", "fresh"]


class WeightsError(RuntimeError):
    """A weight file that cannot be loaded as asked; the message names the file and the fix."""


class UntrustedCheckpointError(WeightsError):
    """The file is a pickled module and loading it needs an explicit trust decision."""


# --------------------------------------------------------------------------- architectures


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


# --------------------------------------------------------------------------- a model and its facts


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
    if ckpt.metadata.get("arch"):
        name = resolve_arch(ckpt.metadata["arch"])
        num_classes = int(ckpt.metadata.get("num_classes", NUM_CLASSES))
        trained_size = int(ckpt.metadata.get("image_size") or default_image_size(name))
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
    from fercore.core.audit import (
        watch_forward_passes,  # the audit (FERCORE_INFERENCE_AUDIT) counts this network's passes
    )

    watch_forward_passes(net, str(weights))
    return Classifier(net.eval(), facts)


# --------------------------------------------------------------------------- reading files


@dataclass
class Checkpoint:
    """What a weight file holds, reduced to a state dict plus what was learnt on the way."""

    path: Path | None
    format: str  # "state_dict" | "training_checkpoint" | "pickled_module" | "safetensors"
    state_dict: dict[str, torch.Tensor]
    module_classes: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)


class _Placeholder:
    """Inert stand-in for a pickled class fercore will not import or run."""

    _fercore_class = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_fercore_args"] = (args, kwargs)

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots)
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update(state)

    def __call__(self, *args: Any, **kwargs: Any) -> _Placeholder:
        return _Placeholder(*args, **kwargs)


#: Modules whose globals the trusted unpickler resolves for real (tensors, containers).
#: (``__builtin__`` / ``copy_reg``: protocol-2 pickles, as torch.save writes, use Python 2 names.)
_REAL_MODULE_PREFIXES = ("torch", "collections", "builtins", "__builtin__", "copyreg", "copy_reg", "_codecs", "numpy")


class _PlaceholderUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] in _REAL_MODULE_PREFIXES:
            try:
                return super().find_class(module, name)
            except (ImportError, AttributeError):
                pass
        return type(name, (_Placeholder,), {"_fercore_class": f"{module}.{name}", "__module__": __name__})


#: A pickle "module" for torch.load(pickle_module=...) that never imports foreign classes.
_placeholder_pickle = types.SimpleNamespace(
    __name__="fercore_placeholder_pickle", Unpickler=_PlaceholderUnpickler, load=pickle.load
)


def _is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def _module_tree_state(obj: Any) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Parameters and persistent buffers of a (real or placeholder) module tree."""
    state: dict[str, torch.Tensor] = OrderedDict()
    classes: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        attrs = vars(node)
        classes.append(
            getattr(type(node), "_fercore_class", f"{type(node).__module__}.{type(node).__name__}")
        )
        skip = attrs.get("_non_persistent_buffers_set", set())
        for key, tensor in {**attrs.get("_parameters", {}), **attrs.get("_buffers", {})}.items():
            if tensor is not None and key not in skip:
                state[prefix + key] = tensor.detach()
        for key, child in attrs.get("_modules", {}).items():
            if child is not None:
                walk(child, f"{prefix}{key}.")

    walk(obj, "")
    return state, classes


def _looks_like_module(obj: Any) -> bool:
    return isinstance(obj, nn.Module) or (
        isinstance(obj, _Placeholder) and "_modules" in vars(obj)
    )


def remap_keys(state_dict: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Undo wrapper prefixes and HSEmotion's ``Sequential`` head; returns (state, old->new).

    * ``module.`` / ``_orig_mod.`` / ``model.`` (DataParallel, torch.compile, Lightning) when
      every key carries it;
    * ``classifier.0.weight`` -> ``classifier.weight``: HSEmotion's notebooks replaced the head
      with ``nn.Sequential(nn.Linear(...))``.

    EfficientNet's parameter names themselves did not change between timm 0.4.5 and 1.x;
    what changed are module attributes (``gate_fn`` -> ``gate``, ``conv_s2d``), which only
    break unpickled modules, never state dicts.
    """
    keys = list(state_dict)
    renamed: dict[str, str] = {}
    changed = True
    while changed and keys:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in keys):
                keys = [k[len(prefix) :] for k in keys]
                changed = True
    new_keys = list(keys)
    has_seq_head = "classifier.0.weight" in keys and not any(k.startswith("classifier.1.") for k in keys)
    if has_seq_head:
        new_keys = [("classifier." + k[len("classifier.0.") :]) if k.startswith("classifier.0.") else k for k in keys]
    out: dict[str, torch.Tensor] = OrderedDict()
    for old, new in zip(state_dict, new_keys, strict=True):
        out[new] = state_dict[old]
        if old != new:
            renamed[old] = new
    return out, renamed


def read_checkpoint(path: str | Path, *, trust_pickle: bool = False) -> Checkpoint:
    """Read a weight file into a :class:`Checkpoint` (state dict with keys remapped).

    Loading uses ``torch.load(weights_only=True)``; a pickled module is refused with an
    explanation unless ``trust_pickle`` is set.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(
            f"weight file {path} does not exist: put local weights under weights/ (see README) "
            "and pass their path; nothing is downloaded"
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state, renamed = remap_keys(load_file(str(path)))
        return Checkpoint(path, "safetensors", state, renamed=renamed)
    if not _looks_like_torch_file(path):
        raise WeightsError(f"{path} is not a PyTorch weight file (neither a torch.save zip archive nor a pickle); "
                           "check that it is the file you meant (a truncated download?) and fetch it again")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if not trust_pickle:
            raise UntrustedCheckpointError(
                f"{path} is not a plain state dict: it pickles Python objects (HSEmotion's "
                "enet_*.pt files are whole models saved with torch.save(model)). torch refuses "
                "such files by default because unpickling can run arbitrary code. If you trust "
                "where the file came from, load it with trust_pickle=True (predict / evaluate / weights: --trust; "
                "training config: trust_pickle: true, or train --set trust_pickle=true), or "
                f"convert it once: `fercore weights convert {path} {path.with_suffix('')}_state.pt --trust` "
                f"and use the converted file from then on. (torch said: {str(err).splitlines()[0]})"
            ) from None
        obj = _load_trusted(path)
    except Exception as err:  # not a torch file at all, truncated zip ...
        raise WeightsError(
            f"{path} could not be read as a PyTorch weight file ({type(err).__name__}: {err}); "
            "expected a file written by torch.save (state dict or HSEmotion checkpoint) or .safetensors"
        ) from None
    return _checkpoint_from_object(path, obj)


def _looks_like_torch_file(path: Path) -> bool:
    """torch.save writes a zip archive (torch >= 1.6) or a pickle starting with its protocol byte 0x80."""
    import zipfile

    with open(path, "rb") as handle:
        head = handle.read(2)
    return zipfile.is_zipfile(path) or (len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5)


def _load_trusted(path: Path) -> Any:
    log.warning("loading %s with pickle (trusted by the caller); foreign classes are not imported", path)
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_placeholder_pickle)
    except Exception as err:
        raise WeightsError(f"{path}: trusted unpickling failed ({type(err).__name__}: {err})") from None


def _checkpoint_from_object(path: Path | None, obj: Any) -> Checkpoint:
    if _is_tensor_dict(obj):
        state, renamed = remap_keys(obj)
        return Checkpoint(path, "state_dict", state, renamed=renamed)
    if _looks_like_module(obj):
        raw, classes = _module_tree_state(obj)
        state, renamed = remap_keys(raw)
        return Checkpoint(path, "pickled_module", state, module_classes=classes, renamed=renamed)
    if isinstance(obj, Mapping):
        for key in STATE_DICT_KEYS:
            inner = obj.get(key)
            if _is_tensor_dict(inner) or _looks_like_module(inner):
                ckpt = _checkpoint_from_object(path, inner)
                meta = {k: v for k, v in obj.items() if k != key and not isinstance(v, (torch.Tensor, Mapping))}
                meta.update({k: v for k, v in obj.items() if k != key and isinstance(v, Mapping) and not _is_tensor_dict(v)})
                ckpt.format = "training_checkpoint" if ckpt.format == "state_dict" else ckpt.format
                ckpt.metadata = meta
                return ckpt
    raise WeightsError(
        f"{path} holds a {type(obj).__name__} with no model weights fercore recognises: expected a "
        f"state dict, a dict with one under {'/'.join(STATE_DICT_KEYS)}, or a pickled model"
    )


# --------------------------------------------------------------------------- architecture guess


@cache
def _body_signature(arch: str) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        model = timm.create_model(arch, pretrained=False, num_classes=0)
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


@dataclass
class ArchGuess:
    """Which EfficientNet a state dict fits (tf_ and plain variants cannot be told apart by weights)."""

    arch: str | None  # e.g. "efficientnet_b0"
    tf_padding: bool | None  # True when the file shows TF 'same' padding (Conv2dSame), None if unknown
    num_features: int | None
    num_classes: int | None  # head size in the file, None when there is no head

    def describe(self) -> str:
        if self.arch is None:
            return f"no known EfficientNet (features {self.num_features})"
        prefix = {True: "tf_", False: "", None: "tf_ or plain "}[self.tf_padding]
        return f"{prefix}{self.arch}"


def guess_arch(state_dict: Mapping[str, torch.Tensor], module_classes: list[str] | None = None) -> ArchGuess:
    """Match a state dict's body tensors against EfficientNet B0-B4."""
    body = {
        k: tuple(v.shape)
        for k, v in state_dict.items()
        if not k.startswith("classifier.") and not k.endswith("num_batches_tracked")
    }
    head = state_dict.get("classifier.weight")
    num_classes = int(head.shape[0]) if head is not None and head.ndim == 2 else None
    conv_head = state_dict.get("conv_head.weight")
    num_features = int(conv_head.shape[0]) if conv_head is not None else None
    tf_padding = None
    if module_classes:
        tf_padding = any(c.endswith("Conv2dSame") for c in module_classes)
    for arch in GUESS_CANDIDATES:
        if _body_signature(arch) == body:
            return ArchGuess(arch, tf_padding, num_features, num_classes)
    return ArchGuess(None, tf_padding, num_features, num_classes)


# --------------------------------------------------------------------------- loading


@dataclass
class LoadReport:
    """Outcome of loading a weight file into a model."""

    source: str
    format: str
    loaded: int
    head: str  # "loaded" | "fresh: file has no head" | "fresh: replaced as asked"
    renamed: int = 0
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.source}: {self.format}, {self.loaded} tensors loaded, head {self.head}"
            + (f", {self.renamed} keys renamed" if self.renamed else "")
        )


def _head_prefix(model: nn.Module) -> str:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return str(cfg.get("classifier", "classifier")) + "."


def _list(items: list[Any], limit: int = 8) -> str:
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f" ... (+{len(items) - limit} more)" if len(items) > limit else "")


def load_weights(
    model: nn.Module,
    weights: str | Path | Checkpoint | Mapping[str, torch.Tensor],
    *,
    trust_pickle: bool = False,
    head: HeadMode = "auto",
) -> LoadReport:
    """Load weights into ``model``; any difference other than the expected head swap is an error."""
    if isinstance(weights, Checkpoint):
        ckpt = weights
    elif isinstance(weights, Mapping):
        ckpt = _checkpoint_from_object(None, dict(weights))
    else:
        ckpt = read_checkpoint(weights, trust_pickle=trust_pickle)
    source = str(ckpt.path) if ckpt.path else "<state dict>"
    state = dict(ckpt.state_dict)
    target = model.state_dict()
    head_prefix = _head_prefix(model)

    def is_head(key: str) -> bool:
        return key.startswith(head_prefix)

    missing = [k for k in target if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in target]
    mismatched = [
        (k, tuple(state[k].shape), tuple(target[k].shape))
        for k in state
        if k in target and state[k].shape != target[k].shape
    ]
    body_missing = [k for k in missing if not is_head(k)]
    body_unexpected = [k for k in unexpected if not is_head(k)]
    body_mismatched = [m for m in mismatched if not is_head(m[0])]
    arch = (getattr(model, "pretrained_cfg", None) or {}).get("architecture", type(model).__name__)
    if body_missing or body_unexpected or body_mismatched:
        guess = guess_arch(state, ckpt.module_classes)
        raise WeightsError(
            f"{source} does not fit {arch}: {len(body_missing)} missing, {len(body_unexpected)} "
            f"unexpected, {len(body_mismatched)} shape-mismatched backbone tensors.\n"
            + (f"  missing: {_list(body_missing)}\n" if body_missing else "")
            + (f"  unexpected: {_list(body_unexpected)}\n" if body_unexpected else "")
            + (
                f"  mismatched: {_list([f'{k} file{a} model{b}' for k, a, b in body_mismatched], 4)}\n"
                if body_mismatched
                else ""
            )
            + f"The file looks like {guess.describe()}. Pass the matching arch (b0 -> "
            "tf_efficientnet_b0, b2 -> tf_efficientnet_b2), or check `fercore weights inspect "
            f"{source}`."
        )
    head_in_file = any(is_head(k) for k in state)
    head_problems = [k for k in missing if is_head(k)] + [k for k in unexpected if is_head(k)] + [
        f"{k} file{a} model{b}" for k, a, b in mismatched if is_head(k)
    ]
    if head == "fresh" or not head_in_file:
        if head == "load":
            raise WeightsError(
                f"{source} has no classifier head ({head_prefix}*): it is a backbone-only file "
                "(e.g. VGGFace2). Load it with head='auto' or 'fresh' and fine-tune the new head."
            )
        state = {k: v for k, v in state.items() if not is_head(k)}
        status = "fresh: replaced as asked" if head_in_file else "fresh: file has no head"
    elif head_problems:
        file_classes = state.get(head_prefix + "weight")
        n_file = int(file_classes.shape[0]) if file_classes is not None else "?"
        n_model = int(target[head_prefix + "weight"].shape[0]) if head_prefix + "weight" in target else "?"
        raise WeightsError(
            f"{source} has a {n_file}-class head but the model was built with {n_model} classes "
            f"({_list(head_problems, 4)}). To evaluate an 8-class model on 7 classes keep "
            "num_classes=8 and drop Contempt with fercore.core.labels.restrict_logits; to fine-tune a "
            "new head pass head='fresh' (training config: head: fresh, or train --set head=fresh)."
        )
    else:
        status = "loaded"
    result = model.load_state_dict(state, strict=False)
    leftover = [k for k in result.missing_keys if not (is_head(k) and status.startswith("fresh"))]
    leftover = [k for k in leftover if not k.endswith("num_batches_tracked")]
    if leftover or result.unexpected_keys:  # defensive: the checks above should have caught these
        raise WeightsError(f"{source}: unexpected load result {result}")
    report = LoadReport(
        source=source,
        format=ckpt.format,
        loaded=len(state),
        head=status,
        renamed=len(ckpt.renamed),
        missing=missing,
        unexpected=unexpected,
        mismatched=mismatched,
    )
    log.info(report.summary())
    return report


# --------------------------------------------------------------------------- inspect / convert


@dataclass
class WeightsInfo:
    """What `fercore weights inspect` prints."""

    path: str
    format: str
    sha256: str
    size_bytes: int
    tensors: int
    parameters: int
    arch_guess: str
    num_features: int | None
    head_classes: int | None
    dtypes: list[str]
    renamed_keys: int
    metadata_keys: list[str]

    def lines(self) -> list[str]:
        head = f"{self.head_classes} classes" if self.head_classes else "none (backbone only)"
        return [
            f"file          {self.path}",
            f"format        {self.format}",
            f"arch guess    {self.arch_guess}",
            f"tensors       {self.tensors} ({self.parameters:,} values, {', '.join(self.dtypes)})",
            f"features      {self.num_features}",
            f"head          {head}",
            f"renamed keys  {self.renamed_keys}",
            f"metadata      {', '.join(self.metadata_keys) or '-'}",
            f"size          {self.size_bytes:,} bytes",
            f"sha256        {self.sha256}",
        ]


def inspect_weights(path: str | Path, *, trust_pickle: bool = False) -> WeightsInfo:
    """Describe a weight file without building a model for it."""
    ckpt = read_checkpoint(path, trust_pickle=trust_pickle)
    guess = guess_arch(ckpt.state_dict, ckpt.module_classes)
    return WeightsInfo(
        path=str(path),
        format=ckpt.format,
        sha256=sha256_file(path),
        size_bytes=Path(path).stat().st_size,
        tensors=len(ckpt.state_dict),
        parameters=sum(t.numel() for t in ckpt.state_dict.values()),
        arch_guess=guess.describe(),
        num_features=guess.num_features,
        head_classes=guess.num_classes,
        dtypes=sorted({str(t.dtype).replace("torch.", "") for t in ckpt.state_dict.values()}),
        renamed_keys=len(ckpt.renamed),
        metadata_keys=sorted(ckpt.metadata),
    )


def convert_weights(src: str | Path, dst: str | Path, *, trust_pickle: bool = False, overwrite: bool = False) -> Path:
    """Write ``src`` as a plain state dict (loadable with ``weights_only=True``), atomically."""
    dst = Path(dst)
    if dst.exists() and not overwrite:
        raise FileExistsError(f"{dst} exists; choose another name or pass --force to replace it")
    ckpt = read_checkpoint(src, trust_pickle=trust_pickle)
    state = {k: v.detach().clone().contiguous() for k, v in ckpt.state_dict.items()}
    save_torch(dst, state)
    torch.load(dst, map_location="cpu", weights_only=True)  # the promise: a safe file
    return dst


# --------------------------------------------------------------------------- freezing / features


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


def features(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Penultimate (pooled, pre-classifier) embeddings: 1280-d for B0, 1408-d for B2."""
    return model.forward_head(model.forward_features(images), pre_logits=True)


# --------------------------------------------------------------------------- fercore checkpoints


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
    if not ckpt.metadata.get("arch"):
        raise WeightsError(
            f"{path} has no 'arch' metadata (not saved by fercore.save_model); load it with "
            "load_classifier(path, arch) or create_model(arch, weights=path) instead"
        )
    return load_classifier(path, trust_pickle=trust_pickle)


def preprocess_for(arch: str, image_size: int | None = None) -> Preprocess:
    """Preprocessing for an architecture at its trained size (224 B0, 260 B2) unless given."""
    return Preprocess(image_size or default_image_size(arch))
