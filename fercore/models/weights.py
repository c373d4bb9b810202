"""Foreign weight files: read them safely, report what they hold, load them into a timm model, convert them.

Weight files seen in practice: plain state dicts (``torch.save(model.state_dict())``), including VGGFace2
backbones saved with ``classifier = Identity`` (no head keys: a fresh head is attached); training
checkpoints (a dict holding a state dict under ``state_dict`` / ``model`` ...); HSEmotion checkpoints
(``enet_b0_8_best_afew.pt`` ...): whole modules pickled with ``torch.save(model)`` under timm 0.4.5 / 0.9.
torch >= 2.6 refuses those by default (``weights_only``), and unpickling them under timm 1.x yields modules
that crash (``'SqueezeExcite' object has no attribute 'gate'``, missing ``conv_s2d``, moved ``conv2d_same``).
fercore never runs those classes: with ``trust_pickle=True`` it unpickles every non-torch class into an
inert placeholder, reads the parameters and buffers out of the module tree, and loads them into a freshly
built timm 1.x model.
"""

from __future__ import annotations

import logging
import pickle
import types
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import timm
import torch
from safetensors.torch import load_file
from torch import nn

from fercore.core.files import save_torch, sha256_file
from fercore.models.diagnose import head_classes, not_a_weight_file

log = logging.getLogger(__name__)

#: Keys that wrappers put in front of a model's own keys (DataParallel, torch.compile, Lightning).
WRAPPER_PREFIXES: tuple[str, ...] = ("module.", "_orig_mod.", "model.")
#: Keys under which training checkpoints keep their state dict.
STATE_DICT_KEYS: tuple[str, ...] = ("state_dict", "model_state_dict", "model", "net", "weights")

#: Architectures compared when guessing what a weight file holds (tf_ and plain variants have identical tensors).
GUESS_CANDIDATES: tuple[str, ...] = tuple(f"efficientnet_b{i}" for i in range(5))

HeadMode = Literal["auto", "load", "fresh"]


class WeightsError(RuntimeError):
    """A weight file that cannot be loaded as asked; the message names the file and the fix."""


class UntrustedCheckpointError(WeightsError):
    """The file is a pickled module and loading it needs an explicit trust decision."""


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
    if (problem := not_a_weight_file(path)) is not None:
        raise WeightsError(problem)
    if not path.is_file():
        raise WeightsError(
            f"weight file {path} does not exist: put local weights under weights/ (see README) "
            "and pass their path; nothing is downloaded"
        )
    if path.suffix == ".safetensors":
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


@dataclass
class _Fit:
    """How a state dict's keys and shapes compare with a model's (``head_prefix``: the head's keys)."""

    head_prefix: str
    missing: list[str]
    unexpected: list[str]
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]]

    @classmethod
    def compare(cls, state: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor], head_prefix: str) -> _Fit:
        return cls(
            head_prefix,
            [k for k in target if k not in state and not k.endswith("num_batches_tracked")],
            [k for k in state if k not in target],
            [(k, tuple(state[k].shape), tuple(target[k].shape)) for k in state if k in target and state[k].shape != target[k].shape],
        )

    def is_head(self, key: str) -> bool:
        return key.startswith(self.head_prefix)

    def head_problems(self) -> list[str]:
        mismatched = [f"{k} file{a} model{b}" for k, a, b in self.mismatched if self.is_head(k)]
        return [k for k in self.missing if self.is_head(k)] + [k for k in self.unexpected if self.is_head(k)] + mismatched


def _check_body(fit: _Fit, state: Mapping[str, torch.Tensor], ckpt: Checkpoint, model: nn.Module, source: str) -> None:
    """Raise unless every backbone tensor of the file fits the model."""
    body_missing = [k for k in fit.missing if not fit.is_head(k)]
    body_unexpected = [k for k in fit.unexpected if not fit.is_head(k)]
    body_mismatched = [m for m in fit.mismatched if not fit.is_head(m[0])]
    if not (body_missing or body_unexpected or body_mismatched):
        return
    arch = (getattr(model, "pretrained_cfg", None) or {}).get("architecture", type(model).__name__)
    guess = guess_arch(state, ckpt.module_classes)
    fix = (f"The file says it is a fercore checkpoint of {ckpt.metadata['arch']}, so it was changed after fercore saved "
           "it (or saved by another timm version): use the checkpoint.pt the training run wrote, or retrain"
           if ckpt.metadata.get("arch") else f"The file looks like {guess.describe()}. Pass the matching arch (b0 -> "
           f"tf_efficientnet_b0, b2 -> tf_efficientnet_b2), or check `fercore weights inspect {source}`.")
    raise WeightsError(
        f"{source} does not fit {arch}: {len(body_missing)} missing, {len(body_unexpected)} "
        f"unexpected, {len(body_mismatched)} shape-mismatched backbone tensors.\n"
        + (f"  missing: {_list(body_missing)}\n" if body_missing else "")
        + (f"  unexpected: {_list(body_unexpected)}\n" if body_unexpected else "")
        + (f"  mismatched: {_list([f'{k} file{a} model{b}' for k, a, b in body_mismatched], 4)}\n" if body_mismatched else "")
        + fix)


def _choose_head(fit: _Fit, state: dict[str, torch.Tensor], target: Mapping[str, torch.Tensor], head: HeadMode,
                 source: str) -> tuple[dict[str, torch.Tensor], str]:
    """The tensors to load and the head's status (``loaded`` / ``fresh: ...``), or an error naming the fix."""
    head_prefix = fit.head_prefix
    head_in_file = any(fit.is_head(k) for k in state)
    head_problems = fit.head_problems()
    if head == "fresh" or not head_in_file:
        if head == "load":
            raise WeightsError(
                f"{source} has no classifier head ({head_prefix}*): it is a backbone-only file "
                "(e.g. VGGFace2). Load it with head='auto' or 'fresh' and fine-tune the new head."
            )
        state = {k: v for k, v in state.items() if not fit.is_head(k)}
        return state, "fresh: replaced as asked" if head_in_file else "fresh: file has no head"
    if head_problems:
        file_classes = state.get(head_prefix + "weight")
        n_file = int(file_classes.shape[0]) if file_classes is not None else "?"
        n_model = int(target[head_prefix + "weight"].shape[0]) if head_prefix + "weight" in target else "?"
        raise WeightsError(
            f"{source} has a {n_file}-class head but the model was built with {n_model} classes "
            f"({_list(head_problems, 4)}). To evaluate an 8-class model on 7 classes keep "
            "num_classes=8 and drop Contempt with fercore.core.labels.restrict_logits; to fine-tune a "
            "new head pass head='fresh' (training config: head: fresh, or train --set head=fresh)."
        )
    return state, "loaded"


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
    fit = _Fit.compare(state, target, _head_prefix(model))
    _check_body(fit, state, ckpt, model, source)
    state, status = _choose_head(fit, state, target, head, source)
    result = model.load_state_dict(state, strict=False)
    leftover = [k for k in result.missing_keys
                if not (fit.is_head(k) and status.startswith("fresh")) and not k.endswith("num_batches_tracked")]
    if leftover or result.unexpected_keys:  # defensive: the checks above should have caught these
        raise WeightsError(f"{source}: unexpected load result {result}")
    report = LoadReport(source=source, format=ckpt.format, loaded=len(state), head=status, renamed=len(ckpt.renamed),
                        missing=fit.missing, unexpected=fit.unexpected, mismatched=fit.mismatched)
    log.info(report.summary())
    return report


# --------------------------------------------------------------------------- inspect / convert


@dataclass
class WeightsInfo:
    """What `fercore weights inspect` prints."""

    path: str; format: str; sha256: str; size_bytes: int; tensors: int; parameters: int  # noqa: E702
    arch_guess: str; num_features: int | None; head_classes: int | None  # noqa: E702
    dtypes: list[str]; renamed_keys: int; metadata_keys: list[str]  # noqa: E702

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
    named = ckpt.metadata.get("arch")  # a fercore checkpoint says what it is
    return WeightsInfo(
        path=str(path), format=ckpt.format, sha256=sha256_file(path), size_bytes=Path(path).stat().st_size,
        tensors=len(ckpt.state_dict), parameters=sum(t.numel() for t in ckpt.state_dict.values()),
        arch_guess=f"{named} (from the checkpoint's metadata)" if named else guess.describe(),
        num_features=guess.num_features, head_classes=head_classes(ckpt.state_dict),
        dtypes=sorted({str(t.dtype).replace("torch.", "") for t in ckpt.state_dict.values()}),
        renamed_keys=len(ckpt.renamed), metadata_keys=sorted(ckpt.metadata),
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
