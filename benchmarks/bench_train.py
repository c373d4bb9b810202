"""Training throughput: SAM against Adam on resident tensors, then the loader and whole training
epochs per preprocessing mode, as ratios to the bare SAM step, in one run.

    .venv/bin/python benchmarks/bench_train.py [--arch tf_efficientnet_b0] [--image-size 112] [--batch 16]
                                               [--steps 8] [--threads 2] [--device auto] [--preprocess exact fast]
                                               [--data-root ROOT] [--train-images 96] [--epochs 2] [--workers N]

1. The bare steps: SAM needs two forward/backward passes per update, so 2.0 is the floor of
   ``sam_over_adam``; the goal is <= 2.2 (the perturbation and restore must stay cheap). Steps
   alternate between the two optimizers after a warm-up, on one batch of random tensors already
   on the device (channels_last; bf16 autocast on CUDA). ``train_img_per_s``: the SAM step's rate.
2. The loader alone, per ``--preprocess`` mode, with training augmentation: decode, batch, move,
   (``fast``: resize and augment on the device), normalise; everything up to the network, no model.
3. ``fercore.training.loop.train`` itself per mode (SAM, augmentation, the config's defaults otherwise:
   bf16 on CUDA, channels_last), ``--epochs`` epochs over ``--train-images`` faces of ``--data-root``
   (a ``ROOT/train/<emotion>/`` folder, e.g. FER2013; default: noise faces, 48 px grey JPEG, written
   to a temporary folder); the rate is the last epoch's ``train_img_per_s`` (log.csv: the training
   part of the epoch, validation excluded).

Last line: ``RESULT sam_over_adam=<x> train_img_per_s=<bare SAM> loader_<mode>=<img/s> loader_<mode>_x=<ratio>
train_<mode>=<img/s> train_<mode>_x=<ratio> ...``, ratios to the bare SAM step.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader

from fercore.core.runtime import pick_device
from fercore.data import FaceDataset, InputPipeline, discover
from fercore.models import create_model
from fercore.training import SAM, TrainConfig, train, train_step

EMOTIONS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


def bare_steps(args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    """Median seconds of an Adam and a SAM step on resident tensors, alternating."""
    amp = torch.bfloat16 if device.type == "cuda" else None
    torch.manual_seed(0)
    models = {name: create_model(args.arch).to(device).to(memory_format=torch.channels_last).train() for name in ("adam", "sam")}
    models["sam"].load_state_dict(models["adam"].state_dict())
    optimizers = {
        "adam": torch.optim.Adam(models["adam"].parameters(), lr=1e-4),
        "sam": SAM(models["sam"].parameters(), torch.optim.Adam, rho=0.05, lr=1e-4),
    }
    x = torch.randn(args.batch, 3, args.image_size, args.image_size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 8, (args.batch,), device=device)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)

    def step(name: str) -> float:
        sync(device)
        start = time.perf_counter()
        train_step(models[name], optimizers[name], loss_fn, x, y, amp_dtype=amp)
        sync(device)
        return time.perf_counter() - start

    for _ in range(2):  # warm-up
        step("adam"), step("sam")
    times: dict[str, list[float]] = {"adam": [], "sam": []}
    for _ in range(args.steps):
        for name in ("adam", "sam"):
            times[name].append(step(name))
    if device.type == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB (both models and optimizers)")
    del models, optimizers
    return {name: statistics.median(values) for name, values in times.items()}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def write_faces(root: Path, n: int) -> Path:
    """``root/train/<emotion>/*.jpg``: n noise faces, 48 px grey JPEG (FER2013's format), classes in turn."""
    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / "train" / EMOTIONS[i % len(EMOTIONS)]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8), mode="L").save(folder / f"{i:05d}.jpg", quality=90)
    return root


def loader_rate(samples: pd.DataFrame, mode: str, args: argparse.Namespace, device: torch.device, workers: int) -> float:
    """img/s of one pass of the training loader (augmentation on) to normalised input on ``device``."""
    pipe = InputPipeline(mode, args.image_size, augment=True)
    loader = DataLoader(FaceDataset(samples, pipe.item), batch_size=args.batch, shuffle=True, num_workers=workers,
                        pin_memory=device.type == "cuda", collate_fn=pipe.collate, drop_last=True)
    draws = torch.Generator().manual_seed(0)
    for i, (x, _) in enumerate(loader):  # warm-up: a few batches
        pipe.prepare(x, device, generator=draws, channels_last=True)
        if i == 2:
            break
    sync(device)
    start, count = time.perf_counter(), 0
    for x, _ in loader:
        pipe.prepare(x, device, generator=draws, channels_last=True)
        count += len(x)
    sync(device)
    return count / (time.perf_counter() - start)


def training_rate(root: Path, mode: str, args: argparse.Namespace, device: torch.device, workers: int, out: Path) -> float:
    """The last epoch's training rate (img/s) of ``fercore.training.loop.train`` with ``preprocess: mode``."""
    config = TrainConfig(experiment=f"bench-{mode}", data_root=str(root), arch=args.arch, image_size=args.image_size,
                         batch_size=args.batch, epochs=args.epochs, lr=1e-4, optimizer="sam", augment=True, preprocess=mode,
                         max_train_samples=args.train_images, max_val_samples=args.batch, keep_duplicates=True,
                         device=str(device), workers=workers, progress=False)
    result = train(config, out=out / mode)
    rates = [row["train_img_per_s"] for row in result.history]
    print(f"train ({mode}): epochs at {', '.join(f'{r:.1f}' for r in rates)} img/s "
          f"({result.history[-1]['train_seconds']:.1f} s training in the last epoch)")
    return float(rates[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="tf_efficientnet_b0")
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=8, help="timed bare steps per optimizer")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--preprocess", nargs="+", default=["exact", "fast"], choices=["exact", "fast"])
    parser.add_argument("--data-root", type=Path, default=None, help="ROOT/train/<emotion>/ faces (default: noise faces)")
    parser.add_argument("--train-images", type=int, default=96, help="training faces per epoch (a stratified subset)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=None,
                        help="loader workers (default: 0 on <= 2 cores, else the training config's 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    workers = args.workers if args.workers is not None else (0 if (os.cpu_count() or 1) <= 2 else TrainConfig().workers)
    load_before = os.getloadavg()[0]
    print(f"device {device}, {args.arch} at {args.image_size} px, batch {args.batch}, {torch.get_num_threads()} threads, "
          f"{workers} loader workers; load average {load_before:.2f} at the start")
    medians = bare_steps(args, device)
    adam, sam = medians["adam"], medians["sam"]
    bare = args.batch / sam
    print(f"adam step  median {adam * 1000:8.1f} ms  ({args.batch / adam:7.1f} img/s)")
    print(f"sam  step  median {sam * 1000:8.1f} ms  ({bare:7.1f} img/s): the bare rate the ratios below compare with")
    fields: dict[str, float] = {"sam_over_adam": sam / adam, "train_img_per_s": bare}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ.setdefault("FERCORE_CACHE", str(tmp / "cache"))
        root = args.data_root or write_faces(tmp / "faces", args.train_images + args.batch * 2)
        samples = discover(root, ["train"])
        samples = samples.sample(n=min(len(samples), args.train_images), random_state=0).reset_index(drop=True)
        for mode in args.preprocess:
            rate = loader_rate(samples, mode, args, device, workers)
            fields[f"loader_{mode}"], fields[f"loader_{mode}_x"] = rate, rate / bare
            print(f"loader ({mode}, augmentation on): {rate:8.1f} img/s  x{rate / bare:.2f} of the bare SAM step")
        for mode in args.preprocess:
            rate = training_rate(root, mode, args, device, workers, tmp / "runs")
            fields[f"train_{mode}"], fields[f"train_{mode}_x"] = rate, rate / bare
            print(f"train  ({mode}): {rate:8.1f} img/s  x{rate / bare:.2f} of the bare SAM step")
    fields["load_before"], fields["load_after"] = load_before, os.getloadavg()[0]
    print("RESULT " + " ".join(f"{k}={v:.3f}" if k.endswith("_x") or k == "sam_over_adam" else f"{k}={v:.1f}"
                               for k, v in fields.items()))


if __name__ == "__main__":
    main()
