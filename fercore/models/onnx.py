"""ONNX: export of a fercore model (with a parity check against PyTorch when onnxruntime is
installed), and ONNX Runtime as an inference backend on CPU: an export per (weights, image size,
outputs), kept on disk, checked against PyTorch on real images before its first use, and reused.

:func:`fercore.inference.infer` uses it when the backend is ``onnxruntime`` (the CPU default,
see :data:`CPU_DEFAULT`). The exported graph has one input ``image`` (N x 3 x S x S, preprocessed
as :class:`fercore.data.images.Preprocess`) and two outputs, ``logits`` (N x C) and ``features``
(N x D, what the classifier layer receives), so one run gives both, as the PyTorch pass does.

An export is found by the SHA-256 of its key (weights digest, image size, outputs, opset, export
format, torch and onnxruntime versions). Its sidecar JSON holds the key, the SHA-256 of the
``.onnx`` bytes and the parity measured on its first batch; an export whose sidecar is missing,
names another key, a different file hash or a failed parity is never used: it is exported again.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fercore.core.files import close_as_plain_file, sha256_file, write_json
from fercore.core.runtime import cpu_cores
from fercore.models.architectures import logits_and_features
from fercore.models.classifier import load_model

log = logging.getLogger(__name__)


def export_onnx(checkpoint: str | Path, out: str | Path, *, opset: int = 18, check: bool = True, overwrite: bool = False) -> dict[str, Any]:
    """Export ``checkpoint`` (saved by fercore) to ONNX with a dynamic batch axis.

    Input ``image``: N x 3 x S x S, preprocessed as :class:`fercore.data.images.Preprocess`;
    output ``logits``: N x 8. With onnxruntime installed (``pip install 'fercore[onnx]'``) the
    outputs are compared with PyTorch on random inputs; the result reports the largest difference.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; choose another name or pass --force")
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install 'fercore[onnx]'") from None
    classifier = load_model(checkpoint)
    model, size = classifier.net.eval(), classifier.image_size
    example = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    export_module(model, example, out, ("logits",), opset=opset)
    report: dict[str, Any] = {"path": str(out), "image_size": size, "opset": opset, "parity": None}
    if check:
        try:
            import onnxruntime as ort
        except ImportError:
            log.warning("onnxruntime is not installed: exported without a parity check")
            return report
        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        probe = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(1))
        with torch.inference_mode():
            expected = model(probe).numpy()
        got = session.run(["logits"], {"image": probe.numpy()})[0]
        diff = float(np.abs(expected - got).max())
        report["parity"] = {"max_abs_diff": diff, "argmax_equal": bool((expected.argmax(1) == got.argmax(1)).all())}
        if diff > 1e-3:
            raise RuntimeError(f"ONNX outputs differ from PyTorch by {diff:.2e} (> 1e-3); the export is not trustworthy")
    return report


def export_module(module: torch.nn.Module, example: torch.Tensor, out: str | Path, output_names: Sequence[str], *,
                  opset: int = 18) -> Path:
    """Export ``module`` (input ``image``, batch axis dynamic) to ``out`` atomically (written beside
    it, then renamed: a crash leaves no partial file)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    close_as_plain_file(fd)  # the umask's permissions, not mkstemp's 0600
    try:
        batch = torch.export.Dim("batch", min=1, max=4096)
        with _quiet_exporter():
            program = torch.onnx.export(module, (example,), dynamo=True, input_names=["image"], output_names=list(output_names),
                                        dynamic_shapes=({0: batch},), opset_version=opset, external_data=False, verbose=False)
        program.save(tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter's optimiser logs every pass at INFO; keep them at WARNING during an export."""
    loggers = [logging.getLogger(name) for name in ("onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


# --------------------------------------------------------------------------- the runtime backend

BACKENDS = ("torch", "onnxruntime")
# Chosen by measurement on the project's 2-core CPU machine (benchmarks/bench_predict.py, README "CPU inference").
CPU_DEFAULT = "onnxruntime"
EXPORT_FORMAT = 1
OUTPUTS = ("logits", "features")
PARITY_TOLERANCE = 1e-3  # max |onnx - torch| over logits and features, relative to max(1, largest |torch value|)


class OnnxParityError(RuntimeError):
    """An export whose outputs differ from PyTorch's on real images."""


def available() -> bool:
    """True when onnxruntime and the exporter's packages are installed (``pip install 'fercore[onnx]'``)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(backend: str, device: torch.device) -> str:
    """``auto`` -> :data:`CPU_DEFAULT` on CPU when onnxruntime is installed, else ``torch``;
    CUDA and MPS stay on PyTorch. ``onnxruntime`` on another device is an error."""
    if backend not in ("auto", *BACKENDS):
        raise ValueError(f"unknown inference backend {backend!r}; choose auto, torch or onnxruntime")
    if backend == "auto":
        if device.type != "cpu" or CPU_DEFAULT == "torch":
            return "torch"
        if not available():
            log.info("onnxruntime is not installed (pip install 'fercore[onnx]'): CPU inference runs on PyTorch")
            return "torch"
        return CPU_DEFAULT
    if backend == "onnxruntime":
        if device.type != "cpu":
            raise ValueError(f"the onnxruntime backend runs on CPU only (device {device}); use backend torch there")
        if not available():
            raise ImportError("the onnxruntime backend needs onnx, onnxscript and onnxruntime: pip install 'fercore[onnx]'")
    return backend


def exportable(net: nn.Module) -> bool:
    """timm networks split into features, pooled features and classifier; others run on PyTorch."""
    return all(hasattr(net, name) for name in ("forward_features", "forward_head", "get_classifier"))


@dataclass(frozen=True)
class ExportKey:
    """Everything an exported graph depends on."""

    weights: str
    image_size: int
    outputs: tuple[str, ...] = OUTPUTS
    opset: int = 18
    format: int = EXPORT_FORMAT
    versions: str = field(default_factory=lambda: _versions())  # an upgrade of either exports and checks again

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:24]


def _versions() -> str:
    import onnxruntime

    return f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}"


class LogitsAndFeatures(nn.Module):
    """A timm classifier as (logits, pooled penultimate features): the graph that is exported."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return logits_and_features(self.net, x)


def without_hooks(net: nn.Module) -> nn.Module:
    """An eval-mode copy of ``net`` with no forward hooks (the audit's hooks must not be traced)."""
    clean = copy.deepcopy(net).cpu().eval()
    for module in clean.modules():
        module._forward_hooks.clear()
        module._forward_pre_hooks.clear()
    return clean


@dataclass
class Parity:
    """PyTorch against ONNX Runtime on one batch."""

    images: int
    max_abs_logit: float
    max_abs_feature: float
    top1_agreement: float
    ok: bool


def compare(reference: tuple[np.ndarray, np.ndarray], got: tuple[np.ndarray, np.ndarray]) -> Parity:
    """Largest differences of logits and features and top-1 agreement; ``ok`` when both differences
    are within :data:`PARITY_TOLERANCE` of the reference's scale."""
    (ref_logits, ref_feats), (logits, feats) = reference, got
    d_logit = float(np.abs(ref_logits - logits).max()) if ref_logits.size else 0.0
    d_feat = float(np.abs(ref_feats - feats).max()) if ref_feats.size else 0.0
    scale = max(1.0, float(np.abs(ref_logits).max(initial=0.0)), float(np.abs(ref_feats).max(initial=0.0)))
    agreement = float((ref_logits.argmax(1) == logits.argmax(1)).mean()) if len(ref_logits) else 1.0
    return Parity(len(ref_logits), d_logit, d_feat, agreement, max(d_logit, d_feat) <= PARITY_TOLERANCE * scale)


class OrtRunner:
    """Runs a classifier's ONNX export with ONNX Runtime; :meth:`prepare` makes (or finds) the
    export and checks it against PyTorch before the first batch."""

    backend = "onnxruntime"

    def __init__(self, net: nn.Module, image_size: int, weights: str, export_dir: Path, *, threads: int | None = None):
        self.net, self.image_size, self.export_dir = net, int(image_size), Path(export_dir)
        self.key = ExportKey(weights, self.image_size)
        self.threads = int(threads or cpu_cores())
        self.session: Any = None
        self.parity: Parity | None = None

    @property
    def path(self) -> Path:
        return self.export_dir / f"{self.key.digest()}.onnx"

    def prepare(self, x: torch.Tensor, reference: Callable[[torch.Tensor], tuple[np.ndarray, np.ndarray]]) -> Parity:
        """Use the stored export of this key when its record holds; else export and check parity on
        the batch ``x`` against ``reference(x)`` (PyTorch). Raises :class:`OnnxParityError` when the
        outputs differ."""
        record = self._record()
        if record is None:
            self._export()
            self.session = self._open()
            self.parity = compare(reference(x), self._run(x))
            write_json(self.path.with_suffix(".json"), {"key": asdict(self.key), "sha256": sha256_file(self.path),
                                                        "parity": asdict(self.parity)})
            log.info("exported %s for onnxruntime: max |dlogit| %.2e, max |dfeature| %.2e on %d images",
                     self.path.name, self.parity.max_abs_logit, self.parity.max_abs_feature, self.parity.images)
        else:
            self.session = self._open()
            self.parity = Parity(**record["parity"])
        if not self.parity.ok:
            raise OnnxParityError(f"the ONNX export {self.path} differs from PyTorch (max |dlogit| {self.parity.max_abs_logit:.2e}, "
                                  f"max |dfeature| {self.parity.max_abs_feature:.2e}); use the torch backend")
        return self.parity

    def __call__(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        if self.session is None:
            raise RuntimeError("OrtRunner.prepare must run first")
        return self._run(x)

    def _run(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        logits, feats = self.session.run(list(OUTPUTS), {"image": x.detach().cpu().contiguous().numpy()})
        return logits, feats

    def _record(self) -> dict[str, Any] | None:
        """The sidecar of a usable export of this key, or None (missing, other key, changed file, failed)."""
        sidecar = self.path.with_suffix(".json")
        try:
            record = json.loads(sidecar.read_text())
            if record["key"] != json.loads(json.dumps(asdict(self.key))) or not record["parity"]["ok"]:
                return None
            if sha256_file(self.path) != record["sha256"]:
                log.warning("%s changed since it was checked; exporting again", self.path)
                return None
            return record
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _export(self) -> None:
        example = torch.randn(2, 3, self.image_size, self.image_size, generator=torch.Generator().manual_seed(0))
        export_module(LogitsAndFeatures(without_hooks(self.net)).eval(), example, self.path, OUTPUTS, opset=self.key.opset)

    def _open(self) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
