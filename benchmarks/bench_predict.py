"""Prediction throughput (decode + preprocess + model) against the model's pure forward pass.

    .venv/bin/python benchmarks/bench_predict.py [--images 192] [--batch 32] [--device auto]

Writes N JPEG faces (48x48 greyscale, like FER2013) to a temporary folder, then times
``fercore.predict.predict`` (one ``fercore.inference.infer`` pass, no cache) on them and the bare forward pass on ready tensors at the same
batch size and thread count. On CUDA it uses bf16 autocast and channels_last (as predict
does). Last line: ``RESULT predict_img_per_s=<x> forward_img_per_s=<y> ratio=<x/y>``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from fercore.models import Classifier, create_model
from fercore.predict import predict
from fercore.runtime import default_workers, pick_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="tf_efficientnet_b0")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--images", type=int, default=192)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: fercore's choice)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    workers = args.workers if args.workers is not None else default_workers()
    device = pick_device(args.device)
    model = Classifier.wrap(create_model(args.arch).eval(), image_size=args.image_size)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(args.images):
            path = Path(tmp) / f"{i:05d}.jpg"
            Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8), mode="L").save(path, quality=90)
            paths.append(str(path))
        samples = pd.DataFrame({"path": paths})
        predict(model, samples.head(args.batch), batch_size=args.batch, workers=workers, device=device, progress=False)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        predict(model, samples, batch_size=args.batch, workers=workers, device=device, progress=False)
        predict_rate = args.images / (time.perf_counter() - start)

    x = torch.randn(args.batch, 3, args.image_size, args.image_size, device=device).contiguous(memory_format=torch.channels_last)
    net = model.net.to(device).to(memory_format=torch.channels_last)
    batches = max(1, args.images // args.batch)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        net(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(batches):
            net(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        forward_rate = batches * args.batch / (time.perf_counter() - start)
    print(f"device {device}, {args.arch} at {args.image_size} px, batch {args.batch}, {torch.get_num_threads()} threads, "
          f"{workers} loader workers, {args.images} JPEG images")
    print(f"predict (decode + preprocess + model): {predict_rate:8.1f} img/s")
    print(f"forward only:                          {forward_rate:8.1f} img/s")
    print(f"RESULT predict_img_per_s={predict_rate:.1f} forward_img_per_s={forward_rate:.1f} ratio={predict_rate / forward_rate:.3f}")


if __name__ == "__main__":
    main()
