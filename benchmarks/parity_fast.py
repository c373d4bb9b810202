"""Parity of ``preprocess: fast`` with ``exact`` on a device: input tensors and top-1 agreement.

    python benchmarks/parity_fast.py --data-root ../shared/data/fer2013 [--device auto] [--image-size 56]
                                     [--per-class 300] [--epochs 2] [--tensor-images 512]

1. Input tensors: ``exact`` (PIL in the loader, on the CPU) against ``fast`` (resized on the device)
   for ``--tensor-images`` FER2013 ``val`` faces (48 px: upsampling to 224 and 260) and for detailed
   synthetic images of 400 and 300 px (downsampling to 224 and 260): the largest absolute
   difference in normalised units and the share of values that differ.
2. Top-1 agreement on all of FER2013 ``val``: a resnet10t trained briefly on ``train``
   (``--per-class`` faces per class, ``--epochs`` epochs of AdamW at ``--image-size``, ``exact``),
   then ``predict`` with each mode on the device; the model must not be degenerate (no class above
   60 % of its predictions). The test suite checks the same on CPU tensors (tests/test_inference.py).

Last line: ``RESULT up_max_diff=.. down_max_diff=.. differing=.. agreement=.. differ=.. max_share=.. accuracy=..``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fercore.core.runtime import pick_device
from fercore.data import Preprocess, discover, load_rgb, native_uint8, per_class_subset, resize_batch
from fercore.inference import predict
from fercore.models import load_model
from fercore.training import TrainConfig, train

FER_CLASSES = ["Anger", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise"]


def detailed_image(size: int, seed: int) -> Image.Image:
    """Gradients, stripes and noise: a hard case for resampling."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    arr = np.stack([xx * 255 / size, yy * 255 / size, (xx + yy) % 64 * 4], axis=-1) + rng.normal(0, 20, (size, size, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), mode="RGB")


def tensor_diffs(images: list[Image.Image], size: int, device: torch.device) -> tuple[float, float]:
    """(largest |fast - exact|, share of differing values) over ``images`` at ``size``, normalised units."""
    preprocess = Preprocess(size)
    worst, differing, total = 0.0, 0, 0
    for image in images:
        exact = preprocess(image).to(device)
        fast = preprocess.normalize(resize_batch(native_uint8(image)[None].to(device), size))[0]
        diff = (fast - exact).abs()
        worst = max(worst, float(diff.max()))
        differing += int((diff > 1e-6).sum())
        total += diff.numel()
    return worst, differing / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True, help="a FER2013 root with train/ and val/")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--image-size", type=int, default=56, help="the model's input size")
    parser.add_argument("--per-class", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--tensor-images", type=int, default=512)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    device = pick_device(args.device)
    val = discover(args.data_root, ["val"])
    faces = [load_rgb(p) for p in val["path"].head(args.tensor_images)]
    synthetic = {224: [detailed_image(400, s) for s in range(8)], 260: [detailed_image(300, s) for s in range(8)]}
    fields: dict[str, float] = {}
    up_worst = down_worst = 0.0
    shares = []
    for size in (224, 260):
        up, up_share = tensor_diffs(faces, size, device)
        down, down_share = tensor_diffs(synthetic[size], size, device)
        print(f"{size} px: 48 px faces up: max |diff| {up:.4f} ({up_share:.1%} of values differ); "
              f"{'400' if size == 224 else '300'} px images down: max |diff| {down:.4f} ({down_share:.1%} differ)")
        up_worst, down_worst = max(up_worst, up), max(down_worst, down)
        shares += [up_share, down_share]
    fields |= {"up_max_diff": up_worst, "down_max_diff": down_worst, "differing": max(shares)}

    start = time.perf_counter()
    samples = per_class_subset(discover(args.data_root, ["train"]), args.per_class, seed=0)
    config = TrainConfig(experiment="parity-fast", data_root=str(args.data_root), arch="resnet10t",
                         image_size=args.image_size, batch_size=64, epochs=args.epochs, lr=3e-3, optimizer="adamw",
                         weight_decay=0.05, warmup_epochs=0.5, keep_duplicates=True, device=str(device),
                         workers=args.workers if args.workers is not None else 0, progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        result = train(config, out=Path(tmp) / "run", samples=(samples, None, None))
        model = load_model(result.run_dir / "checkpoint.pt")
    print(f"trained resnet10t at {args.image_size} px on {len(samples)} faces in {time.perf_counter() - start:.1f} s")
    runs = {mode: predict(model, val, classes=FER_CLASSES, device=device, backend="torch", workers=args.workers,
                          progress=False, preprocess=mode) for mode in ("exact", "fast")}
    exact, fast = runs["exact"], runs["fast"]
    agreement = float((exact["pred"] == fast["pred"]).mean())
    fields |= {"agreement": agreement, "differ": int((exact["pred"] != fast["pred"]).sum()),
               "max_share": float(exact["pred"].value_counts(normalize=True).max()),
               "accuracy": float((exact["pred"] == exact["label"]).mean())}
    print(f"top-1 agreement on {len(val)} val faces: {agreement:.4%} ({fields['differ']} differ); accuracy "
          f"{fields['accuracy']:.3f}, largest class share {fields['max_share']:.3f} (degenerate above 0.6)")
    if fields["max_share"] > 0.6:
        print("WARNING: the model is degenerate (one class above 60 % of its predictions): its agreement says little; "
              "train longer (--epochs, --per-class)")
    print("RESULT " + " ".join(f"{k}={v}" if isinstance(v, int) else f"{k}={v:.4f}" for k, v in fields.items()))


if __name__ == "__main__":
    main()
