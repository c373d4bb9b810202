"""ONNX export of a fercore model, with a parity check against PyTorch when onnxruntime is installed."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .fileio import close_as_plain_file
from .models import load_model

log = logging.getLogger(__name__)


def export_onnx(checkpoint: str | Path, out: str | Path, *, opset: int = 18, check: bool = True, overwrite: bool = False) -> dict[str, Any]:
    """Export ``checkpoint`` (saved by fercore) to ONNX with a dynamic batch axis.

    Input ``image``: N x 3 x S x S, preprocessed as :class:`fercore.images.Preprocess`;
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
