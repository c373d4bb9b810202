"""Prediction throughput per backend and preprocessing mode, as ratios to PyTorch's bare forward pass.

    .venv/bin/python benchmarks/bench_predict.py [--models b0:224 b2:260] [--images 192] [--batch 32]
                                                 [--rounds 8] [--predict-rounds 3] [--threads N] [--device auto]
                                                 [--preprocess exact fast] [--images-from DIR] [--workers N]

For each model (random weights: speed does not depend on them) at its size, on one batch of
ready tensors: PyTorch's bare forward (eager, channels_last, ``inference_mode``; bf16 autocast on
CUDA) and, on CPU, ONNX Runtime's bare run of the same network's export, alternating batch by
batch for ``--rounds`` rounds (best and median). Then ``fercore.inference.predictions.predict`` end to end
(decode, preprocess, model, table; no result cache) over N JPEG faces (48x48 grey, like FER2013)
with each backend and each ``--preprocess`` mode (``exact``: PIL resize in the loader; ``fast``:
native-size uint8 to the device, resized there), alternating, best of ``--predict-rounds``; and the
loader alone per mode (decode, batch, move, resize and normalise on the device: everything up to
the network's input, no model). ``--images-from DIR`` takes the first ``--images`` image files
under DIR (e.g. FER2013 ``train``) instead of writing noise faces. Exports go to a temporary
``FERCORE_CACHE``; the export itself and its parity check happen in a warm-up, outside the timing.

Measure on a quiet machine (on a busy one PyTorch slows more than ONNX Runtime and the ratio
flatters). The last line is one RESULT with a field per model, backend and mode: ``<model>_<mode>``
in img/s, ``<model>_<mode>_x`` as a ratio to ``<model>_torch_forward`` (best against best), and
the 1-minute load average before and after (``load_before``, ``load_after``). Modes:
``torch_forward``, ``ort_run`` (CPU), ``predict_torch`` / ``predict_ort`` (``exact``),
``predict_torch_fast`` / ``predict_ort_fast`` (``fast``), ``loader_exact`` / ``loader_fast``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from fercore.core.runtime import cpu_cores, default_workers, pick_device
from fercore.data import InputPipeline, is_image_file
from fercore.inference import image_batches, predict
from fercore.models import Classifier, create_model

ARCHS = {"b0": "tf_efficientnet_b0", "b2": "tf_efficientnet_b2"}


def timed(fn: Callable[[], object], sync: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def bare_rates(model: Classifier, batch: int, rounds: int, device: torch.device, threads: int, tmp: Path) -> dict[str, list[float]]:
    """img/s per round: PyTorch's forward and (on CPU) ONNX Runtime's run, alternating."""
    from fercore.inference import TorchRunner
    from fercore.models import onnx as onnxrt

    size = model.image_size
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    net = TorchRunner(model.net, device).net
    x_dev = x.to(device).contiguous(memory_format=torch.channels_last)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def forward() -> None:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            net(x_dev)

    modes: dict[str, Callable[[], object]] = {"torch_forward": forward}
    if device.type == "cpu" and onnxrt.available():
        runner = onnxrt.OrtRunner(model.net, size, "bench", tmp / f"bare-{size}", threads=threads)
        start = time.perf_counter()
        runner.prepare(x, TorchRunner(model.net, device))
        print(f"export and check ({size} px): {time.perf_counter() - start:.1f} s")
        modes["ort_run"] = lambda: runner(x)
    for fn in modes.values():  # warm-up
        fn()
    rates: dict[str, list[float]] = {name: [] for name in modes}
    for _ in range(rounds):
        for name, fn in modes.items():
            rates[name].append(batch / timed(fn, sync))
    return rates


def predict_rates(model: Classifier, samples: pd.DataFrame, batch: int, rounds: int, device: torch.device, threads: int,
                  workers: int, modes: list[str]) -> dict[str, list[float]]:
    """img/s per round of ``predict`` over ``samples`` with each backend and preprocessing mode, alternating."""
    from fercore.models import onnx as onnxrt

    backends = ["torch"] + (["onnxruntime"] if device.type == "cpu" and onnxrt.available() else [])
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    runs = {}
    for b in backends:
        for mode in modes:
            name = f"predict_{'ort' if b == 'onnxruntime' else b}" + ("_fast" if mode == "fast" else "")
            runs[name] = (b, mode)
    for b, mode in runs.values():  # warm-up; the export and its check happen here
        predict(model, samples.head(batch), batch_size=batch, workers=workers, device=device, progress=False, backend=b,
                threads=threads, preprocess=mode)
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, (b, mode) in runs.items():
            rates[name].append(len(samples) / timed(
                lambda b=b, mode=mode: predict(model, samples, batch_size=batch, workers=workers, device=device,
                                               progress=False, backend=b, threads=threads, preprocess=mode), sync))
    return rates


def loader_rates(paths: list[str], size: int, batch: int, rounds: int, device: torch.device, workers: int,
                 modes: list[str]) -> dict[str, list[float]]:
    """img/s per round of the inference loader alone (to normalised input on ``device``), per mode, alternating."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def drain(mode: str, some: list[str]) -> None:
        for _ in image_batches(some, InputPipeline(mode, size), batch_size=batch, workers=workers, device=device):
            pass

    for mode in modes:  # warm-up
        drain(mode, paths[:batch])
    rates: dict[str, list[float]] = {f"loader_{mode}": [] for mode in modes}
    for _ in range(rounds):
        for mode in modes:
            rates[f"loader_{mode}"].append(len(paths) / timed(lambda mode=mode: drain(mode, paths), sync))
    return rates


def read_faces(folder: Path, n: int) -> pd.DataFrame:
    """The first ``n`` image files under ``folder`` (sorted), e.g. FER2013's ``train``."""
    paths = sorted(str(p) for p in folder.rglob("*") if p.is_file() and is_image_file(p))[:n]
    if not paths:
        raise SystemExit(f"no image files under {folder}")
    return pd.DataFrame({"path": paths})


def write_faces(folder: Path, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8), mode="L").save(path, quality=90)
        paths.append(str(path))
    return pd.DataFrame({"path": paths})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["b0:224", "b2:260"], metavar="ARCH:SIZE",
                        help="b0 / b2 or a timm name, with the input size (default b0:224 b2:260)")
    parser.add_argument("--images", type=int, default=192)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=8, help="alternating batches for the bare modes")
    parser.add_argument("--predict-rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: fercore's choice)")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads, both backends (default: the cores)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--preprocess", nargs="+", default=["exact", "fast"], choices=["exact", "fast"])
    parser.add_argument("--images-from", type=Path, default=None, help="read --images real faces from here (recursive)")
    args = parser.parse_args()
    threads = args.threads or cpu_cores()
    torch.set_num_threads(threads)
    workers = args.workers if args.workers is not None else default_workers()
    device = pick_device(args.device)
    load_before = os.getloadavg()[0]
    fields: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ["FERCORE_CACHE"] = str(tmp / "cache")  # the exports of this run only
        (tmp / "faces").mkdir()
        samples = read_faces(args.images_from, args.images) if args.images_from else write_faces(tmp / "faces", args.images)
        source = f"images from {args.images_from}" if args.images_from else "JPEG noise faces (48 px grey)"
        print(f"device {device}, {threads} threads, {workers} loader workers, batch {args.batch}, {len(samples)} {source}; "
              f"load average {load_before:.2f} at the start")
        for spec in args.models:
            arch, size = spec.split(":")
            tag = f"{arch}_{size}"
            torch.manual_seed(0)
            model = Classifier.wrap(create_model(ARCHS.get(arch, arch)).eval(), image_size=int(size))
            rates = bare_rates(model, args.batch, args.rounds, device, threads, tmp)
            rates |= predict_rates(model, samples, args.batch, args.predict_rounds, device, threads, workers, args.preprocess)
            rates |= loader_rates(samples["path"].tolist(), int(size), args.batch, args.predict_rounds, device, workers,
                                  args.preprocess)
            base = max(rates["torch_forward"])
            for mode, values in rates.items():
                fields[f"{tag}_{mode}"] = max(values)
                if mode != "torch_forward":
                    fields[f"{tag}_{mode}_x"] = max(values) / base
                print(f"{tag:>8} {mode:<18} best {max(values):7.1f} img/s  median {statistics.median(values):7.1f}  "
                      f"x{max(values) / base:5.2f} of the PyTorch forward")
    fields["load_before"], fields["load_after"] = load_before, os.getloadavg()[0]
    print("RESULT " + " ".join(f"{k}={v:.3f}" if k.endswith("_x") else f"{k}={v:.2f}" for k, v in fields.items()))


if __name__ == "__main__":
    main()
