"""ONNX export of a fercore model, with a parity check against PyTorch when onnxruntime is installed."""

from __future__ import annotations

import logging
import os
import tempfile
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
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    close_as_plain_file(fd)  # the umask's permissions, not mkstemp's 0600
    try:
        batch = torch.export.Dim("batch", min=1, max=4096)
        program = torch.onnx.export(model, (example,), dynamo=True, input_names=["image"], output_names=["logits"],
                                    dynamic_shapes=({0: batch},), opset_version=opset, external_data=False)
        program.save(tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
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
