"""The one inference pass: logits and penultimate features of a classifier on a set of images.

Every caller that scores or embeds images (``predict``, ``evaluate``, embeddings, Grad-CAM's
right / wrong, cross-validation, the gender study and the thesis studies) goes through
:func:`infer`. One forward pass yields both the 8 logits and the pooled features; with a
``cache_dir`` the result is stored under a key that holds everything that changes the numbers:

* the weights (SHA-256 of the state dict's bytes, so a model changed in memory is a new key);
* the images (SHA-256 of their paths, sizes and modification times, in order);
* the image size, the preprocessing (``exact``: PIL resize in the loader, or ``fast``: the resize
  batched on the device; :class:`fercore.data.InputPipeline`) with ImageNet normalisation, a named
  ``transform`` applied to each image first (none by default) and the backend.

The backend is ``torch`` (PyTorch eager) or ``onnxruntime`` (:mod:`fercore.models.onnx`: the network
exported once per weights and size, checked against PyTorch on the first batch, then reused);
``auto`` takes ONNX Runtime on CPU (measured faster, see the README) and PyTorch on CUDA / MPS.

A cache is not an output: a different key is a different file, and a damaged file is redone.
The caller's model is never moved or changed: the pass runs on a copy on the chosen device.

Setting the environment variable ``FERCORE_INFERENCE_AUDIT`` to a file makes every
:func:`infer` call, and every forward pass of a network loaded with
:func:`fercore.models.load_classifier`, append a JSON line there (what ran, for which model and
images, and in which kind of pass): a suite run can show that each (model, set) ran once.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from fercore.core import labels
from fercore.core.audit import audit_event, audit_forward, pass_kind
from fercore.core.files import atomic_open, file_stamp, write_json
from fercore.core.labels import CLASSES
from fercore.core.progress import progress_bar as tqdm  # a bar in a terminal, log lines in a log file
from fercore.core.runtime import cache_dir as user_cache
from fercore.core.runtime import default_workers, pick_device
from fercore.data import EXACT_PREPROCESSING, InputPipeline, load_rgb
from fercore.models import Classifier, WeightsError, logits_and_features
from fercore.models import onnx as onnxrt

log = logging.getLogger(__name__)

PREPROCESSING = EXACT_PREPROCESSING
CACHE_VERSION = 1



class ImageTransform(Protocol):
    """A change applied to every image before preprocessing (e.g. a matched-format copy); its
    ``name`` goes into the cache key, so it must say everything that changes the pixels."""

    name: str

    def __call__(self, image: Image.Image) -> Image.Image: ...


@dataclass(frozen=True)
class InferenceKey:
    """Everything that changes an inference result."""

    weights: str
    images: str
    image_size: int
    preprocessing: str = PREPROCESSING
    transform: str = "none"
    backend: str = "torch"
    version: int = CACHE_VERSION

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:24]


@dataclass
class Inference:
    """Logits (N x 8, unrestricted) and features (N x D) of one model on N images, in order;
    rows of unreadable images hold NaN and their ``errors`` entry says why."""

    paths: list[str]
    logits: np.ndarray
    features: np.ndarray
    errors: list[str]
    key: InferenceKey | None  # None for a join of several passes
    trained_classes: tuple[str, ...]
    cached: bool = False

    @classmethod
    def join(cls, parts: Sequence[Inference]) -> Inference:
        """Several passes of one model (e.g. on a real and on the synthetic test set) as one table of rows."""
        if len({p.trained_classes for p in parts}) != 1:
            raise ValueError("only passes of one model can be joined")
        return cls([path for p in parts for path in p.paths], np.concatenate([p.logits for p in parts]),
                   np.concatenate([p.features for p in parts]), [e for p in parts for e in p.errors], None,
                   parts[0].trained_classes, all(p.cached for p in parts))

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def readable(self) -> np.ndarray:
        """True where the image could be read."""
        return np.array([not e for e in self.errors], dtype=bool)

    def scored_classes(self, classes: Sequence[str] | None = None) -> list[str]:
        """``labels.class_set(classes, within=<the model's trained classes>)``."""
        return labels.class_set(classes, within=list(self.trained_classes))

    def probabilities(self, classes: Sequence[str] | None = None) -> np.ndarray:
        """Soft-max over the scored classes (:func:`fercore.core.labels.restricted_probabilities`); 0 elsewhere."""
        logits = np.nan_to_num(self.logits, nan=0.0)
        return labels.restricted_probabilities(logits, self.scored_classes(classes))

    def rows(self, paths: Sequence[str]) -> np.ndarray:
        """Row indices of ``paths`` (each must be one of this result's images)."""
        position = {p: i for i, p in enumerate(self.paths)}
        missing = [p for p in paths if str(p) not in position]
        if missing:
            raise KeyError(f"{len(missing)} images were not part of this inference, e.g. {missing[0]}")
        return np.array([position[str(p)] for p in paths], dtype=int)

    def subset(self, paths: Sequence[str]) -> Inference:
        """The rows of ``paths``, in that order."""
        index = self.rows(paths)
        return Inference([self.paths[i] for i in index], self.logits[index], self.features[index],
                         [self.errors[i] for i in index], self.key, self.trained_classes, self.cached)


# --------------------------------------------------------------------------- keys


def weights_digest(net: nn.Module) -> str:
    """SHA-256 of a network's state dict (names, dtypes, shapes and bytes)."""
    digest = hashlib.sha256()
    for name, tensor in net.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def images_digest(paths: Sequence[str]) -> str:
    """SHA-256 of the image paths with their sizes and modification times, in order."""
    digest = hashlib.sha256()
    for path in paths:
        stamp = file_stamp(path)
        digest.update((f"{path}|{stamp[0]}|{stamp[1]}\n" if stamp else f"{path}|missing\n").encode())
    return digest.hexdigest()


# --------------------------------------------------------------------------- the pass


class _Images(Dataset):
    """(uint8 image as the pipeline's workers hand it over, index, error message); unreadable
    files give zeros and the message."""

    def __init__(self, paths: Sequence[str], pipeline: InputPipeline, transform: ImageTransform | None):
        self.paths, self.pipeline, self.transform = list(paths), pipeline, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, str]:
        try:
            image = load_rgb(self.paths[index])
            if self.transform is not None:
                image = self.transform(image)
            return self.pipeline.item(image), index, ""
        except Exception as err:  # PIL raises many types for bad files
            size = self.pipeline.image_size
            return torch.zeros(3, size, size, dtype=torch.uint8), index, f"{type(err).__name__}: {err}"


class TorchRunner:
    """PyTorch eager on ``device`` (a channels_last copy of the network; bf16 autocast on CUDA)."""

    backend = "torch"

    def __init__(self, net: nn.Module, device: torch.device):
        self.net = copy.deepcopy(net).to(device).eval().to(memory_format=torch.channels_last)  # the caller's model stays as it is
        self.device = device

    def __call__(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            logits, feats = logits_and_features(self.net, x)
        return logits.float().cpu().numpy(), feats.float().cpu().numpy()


def export_dir(cache_dir: str | Path | None) -> Path:
    """Where ONNX exports are kept: ``<cache_dir>/onnx`` beside a run's inference results, else
    ``$FERCORE_CACHE/onnx`` (default ``~/.cache/fercore/onnx``)."""
    return (Path(cache_dir) if cache_dir is not None else user_cache()) / "onnx"


def _paths(samples: pd.DataFrame | Sequence[str | Path]) -> list[str]:
    if isinstance(samples, pd.DataFrame):
        return samples["path"].astype(str).tolist()
    return [str(p) for p in samples]


def _cache_file(cache_dir: Path, key: InferenceKey) -> Path:
    return cache_dir / f"{key.digest()}.npz"


def _load_cached(path: Path, key: InferenceKey, trained: tuple[str, ...]) -> Inference | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            stored_key = json.loads(str(data["key"]))
            if stored_key != asdict(key):
                return None
            return Inference(data["paths"].tolist(), data["logits"], data["features"], data["errors"].tolist(), key,
                             trained, cached=True)
    except (OSError, ValueError, KeyError) as err:
        log.warning("inference cache %s unreadable (%s); computing again", path, err)
        return None


def _store(path: Path, result: Inference) -> None:
    with atomic_open(path, "wb") as handle:
        np.savez(handle, paths=np.array(result.paths, dtype=str), logits=result.logits, features=result.features,
                 errors=np.array(result.errors, dtype=str), key=np.array(json.dumps(asdict(result.key))))
    write_json(path.with_suffix(".json"), {"key": asdict(result.key), "images": len(result.paths),
                                           "first_image": result.paths[0] if result.paths else None})


def infer(
    model: Classifier,
    samples: pd.DataFrame | Sequence[str | Path],
    *,
    transform: ImageTransform | None = None,
    batch_size: int = 64,
    workers: int | None = None,
    device: str | torch.device = "auto",
    progress: bool = True,
    cache_dir: str | Path | None = None,
    backend: str = "auto",
    threads: int | None = None,
    preprocess: str = "exact",
) -> Inference:
    """Logits and features of ``model`` on the images of ``samples`` (a table with ``path`` or a
    list of paths), in their order; from ``cache_dir`` when the same key was computed before.

    ``backend``: ``auto`` (ONNX Runtime on CPU when installed, PyTorch elsewhere), ``torch`` or
    ``onnxruntime``; ``threads``: intra-op threads (default: the cores this process may use);
    ``preprocess``: ``exact`` (PIL resize in the loader, HSEmotion's) or ``fast`` (resize and
    normalisation batched on the device; :class:`fercore.data.InputPipeline`)."""
    paths = _paths(samples)
    device = pick_device(device)
    pipeline = InputPipeline(preprocess, int(model.image_size))
    chosen = _choose_backend(model, backend, device)
    key = InferenceKey(weights_digest(model.net), images_digest(paths), int(model.image_size), preprocessing=pipeline.name,
                       transform=getattr(transform, "name", "none") if transform is not None else "none", backend=chosen)
    trained = tuple(model.trained_classes)
    label = model.facts.weights or model.arch
    cache_file = _cache_file(Path(cache_dir), key) if cache_dir is not None else None
    if cache_file is not None and cache_file.is_file():
        found = _load_cached(cache_file, key, trained)
        if found is not None:
            audit_event({"event": "infer", "model": label, "digest": key.digest(), "images": len(paths), "cached": True,
                    "transform": key.transform})
            return found
    audit_event({"event": "infer", "model": label, "digest": key.digest(), "images": len(paths), "cached": False,
            "transform": key.transform})
    with _torch_threads(threads if chosen == "torch" and device.type == "cpu" else None):
        result = _run(model, paths, key, trained, pipeline, transform=transform, batch_size=batch_size, workers=workers,
                      device=device, progress=progress, runner=_runner(model, key, device, threads, cache_dir, backend))
    if cache_dir is not None:
        _store(_cache_file(Path(cache_dir), result.key), result)
    return result


def _choose_backend(model: Classifier, backend: str, device: torch.device) -> str:
    chosen = onnxrt.resolve_backend(backend, device)
    if chosen == "onnxruntime" and not onnxrt.exportable(model.net):
        if backend == "onnxruntime":
            raise ValueError(f"{type(model.net).__name__} cannot be exported for onnxruntime (not a timm classifier); use backend torch")
        return "torch"
    return chosen


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """PyTorch's intra-op threads set to ``threads`` inside the block (unchanged when None)."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


Runner = Callable[[torch.Tensor], tuple[np.ndarray, np.ndarray]]


def _runner(model: Classifier, key: InferenceKey, device: torch.device, threads: int | None, cache_dir: str | Path | None,
            asked: str) -> Callable[[torch.Tensor], Runner]:
    """A function of the first batch that returns the runner for the pass: PyTorch, or the ONNX
    export checked against PyTorch on that batch. Under ``auto`` an export that fails the check is
    logged and the pass runs on PyTorch."""

    def start(first: torch.Tensor) -> Runner:
        if key.backend == "torch":
            return TorchRunner(model.net, device)
        runner = onnxrt.OrtRunner(model.net, model.image_size, key.weights, export_dir(cache_dir), threads=threads)
        try:
            with pass_kind("onnx-parity"):
                runner.prepare(first, lambda x: TorchRunner(model.net, device)(x))
        except onnxrt.OnnxParityError as err:
            if asked == "onnxruntime":
                raise
            log.warning("%s; this pass runs on PyTorch", err)
            return TorchRunner(model.net, device)
        except OSError as err:  # a read-only or full cache folder
            where = export_dir(cache_dir)
            why = (f"cannot write the ONNX export to {where} ({err.strerror or err}): set FERCORE_CACHE to a writable "
                   "folder" + (" (or cache_dir)" if cache_dir is not None else ""))
            if asked == "onnxruntime":
                raise PermissionError(f"{why}, or pass --backend torch") from None
            log.warning("%s; this pass runs on PyTorch", why)
            return TorchRunner(model.net, device)
        return runner

    return start


def image_batches(paths: Sequence[str], pipeline: InputPipeline, *, transform: ImageTransform | None = None,
                  batch_size: int = 64, workers: int | None = None, device: str | torch.device = "cpu",
                  progress: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor, list[str]]]:
    """The batches of an inference pass, ready for the network: (normalised input on ``device``,
    image indices, error messages). Decoding runs in ``workers`` loader processes (default
    :func:`fercore.core.runtime.default_workers`); uint8 images cross process and device boundaries
    (pinned and non-blocking on CUDA) and are normalised, and under ``fast`` resized, on the device."""
    device = pick_device(device)
    loader = DataLoader(_Images(paths, pipeline, transform), batch_size=batch_size, collate_fn=pipeline.collate,
                        num_workers=default_workers() if workers is None else workers, pin_memory=device.type == "cuda")
    for x, index, err in prepared_batches(tqdm(loader, desc="inference", unit="batch", disable=not progress), pipeline,
                                          device):
        yield x, index, list(err)


def prepared_batches(loader: Iterable[tuple[Any, ...]], pipeline: InputPipeline, device: torch.device, *,
                     channels_last: bool = False) -> Iterator[tuple[Any, ...]]:
    """Each loader batch with its images made ready for the network on ``device``
    (:meth:`~fercore.data.InputPipeline.prepare`), the rest of the batch (labels, indices ...) as it
    came: the data path of every pass, :func:`image_batches`'s and training's validation
    (which keeps its own persistent loader)."""
    for x, *rest in loader:
        yield (pipeline.prepare(x, device, channels_last=channels_last), *rest)


def _run(model: Classifier, paths: list[str], key: InferenceKey, trained: tuple[str, ...], pipeline: InputPipeline, *,
         transform: ImageTransform | None, batch_size: int, workers: int | None, device: torch.device, progress: bool,
         runner: Callable[[torch.Tensor], Runner]) -> Inference:
    label = getattr(model.net, "fercore_audit_label", None)
    run: Runner | None = None
    logits_all = np.full((len(paths), len(CLASSES)), np.nan, dtype=np.float32)
    feats_all: np.ndarray | None = None
    errors = [""] * len(paths)
    with pass_kind("inference"):
        for x, index, err in image_batches(paths, pipeline, transform=transform, batch_size=batch_size, workers=workers,
                                           device=device, progress=progress):
            run = run or runner(x)
            logits, feats = run(x)
            if label is not None and not isinstance(run, TorchRunner):
                audit_forward(label, len(x))  # PyTorch passes are logged by the network's own hook
            if feats_all is None:
                feats_all = np.full((len(paths), feats.shape[1]), np.nan, dtype=np.float32)
            rows = index.numpy()
            logits_all[rows, : logits.shape[1]] = logits
            feats_all[rows] = feats
            for i, message in zip(index.tolist(), err, strict=True):
                errors[i] = message
    if feats_all is None:
        feats_all = np.zeros((0, 0), dtype=np.float32)
    failed = np.array([bool(e) for e in errors], dtype=bool)
    logits_all[failed] = np.nan
    feats_all[failed] = np.nan
    if failed.any():
        log.warning("%d of %d images could not be read (see the 'error' column)", int(failed.sum()), len(paths))
    _refuse_nonfinite(model, paths, logits_all[:, : getattr(model.net, "num_classes", None)], failed)
    used = getattr(run, "backend", key.backend)  # PyTorch when an export failed its check under auto
    return Inference(paths, logits_all, feats_all, errors, replace(key, backend=used), trained)


def _refuse_nonfinite(model: Classifier, paths: list[str], logits: np.ndarray, failed: np.ndarray) -> None:
    """Stop when the network gives NaN or infinite logits for an image it could read: no score from a broken model."""
    bad = np.flatnonzero(~np.isfinite(logits).all(axis=1) & ~failed)
    if len(bad):
        raise WeightsError(
            f"{model.facts.weights or model.arch} gives NaN or infinite logits on {len(bad)} of {int((~failed).sum())} "
            f"readable images (first: {paths[bad[0]]}); its weights are broken (a training run that diverged?): "
            "use an earlier checkpoint or retrain with a lower lr")


@dataclass
class InferenceCache:
    """Where a run keeps its inference results, and the settings every pass of the run shares."""

    cache_dir: Path | None = None
    batch_size: int = 64
    workers: int | None = None
    device: str = "auto"
    progress: bool = True
    transform: ImageTransform | None = field(default=None)
    backend: str = "auto"
    threads: int | None = None
    preprocess: str = "exact"

    def __call__(self, model: Classifier, samples: pd.DataFrame | Sequence[str | Path]) -> Inference:
        return infer(model, samples, transform=self.transform, batch_size=self.batch_size, workers=self.workers,
                     device=self.device, progress=self.progress, cache_dir=self.cache_dir, backend=self.backend,
                     threads=self.threads, preprocess=self.preprocess)
