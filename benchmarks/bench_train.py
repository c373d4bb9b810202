"""Training-step cost of SAM versus plain Adam for EfficientNet-B0, in one run.

    .venv/bin/python benchmarks/bench_train.py [--image-size 112] [--batch 16] [--steps 8] [--device auto]

SAM needs two forward/backward passes per update, so 2.0 is the floor of the ratio; the goal
is <= 2.2 (the perturbation and restore must stay cheap). Steps alternate between the two
optimizers after a warm-up so both see the same machine state. Last line:
``RESULT sam_over_adam=<x> train_img_per_s=<y>`` (y: SAM steps, the training default).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from fercore.models import create_model
from fercore.sam import SAM
from fercore.runtime import pick_device
from fercore.train import train_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="tf_efficientnet_b0")
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per optimizer")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
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
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        train_step(models[name], optimizers[name], loss_fn, x, y, amp_dtype=amp)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    for _ in range(2):  # warm-up
        step("adam"), step("sam")
    times: dict[str, list[float]] = {"adam": [], "sam": []}
    for _ in range(args.steps):
        for name in ("adam", "sam"):
            times[name].append(step(name))
    adam, sam = statistics.median(times["adam"]), statistics.median(times["sam"])
    print(f"device {device}, {args.arch} at {args.image_size} px, batch {args.batch}, {torch.get_num_threads()} threads")
    print(f"adam step  median {adam * 1000:8.1f} ms  ({args.batch / adam:6.1f} img/s)")
    print(f"sam  step  median {sam * 1000:8.1f} ms  ({args.batch / sam:6.1f} img/s)")
    if device.type == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB (both models and optimizers)")
    print(f"RESULT sam_over_adam={sam / adam:.3f} train_img_per_s={args.batch / sam:.1f}")


if __name__ == "__main__":
    main()
