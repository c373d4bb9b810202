"""Face detection + five landmarks per second (fercore.faces, MTCNN on the CPU) for 48 px and 128 px faces.

    .venv/bin/python benchmarks/bench_faces.py [--faces 400] [--threads 2] [--batch 64]

The faces are FER2013 validation faces (48 px, from ../shared/data/fer2013) and the same faces
resized to 128 px (the size grid extraction writes); without ../shared, the demo's real-style
faces stand in. Each size runs once untimed (warm-up), then timed, without a cache.
Last line: ``RESULT faces48_per_s=<x> faces128_per_s=<y> landmarks48=<share> landmarks128=<share>``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fercore.faces import MTCNNFaces, detect_faces

FER_VAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fer2013" / "val"


def load_faces(n: int) -> tuple[list[np.ndarray], str]:
    """n 48 px RGB faces: FER2013 val (spread over the sorted list) or the demo's real-style faces."""
    if FER_VAL.is_dir():
        paths = sorted(FER_VAL.rglob("*.jpg"))
        paths = paths[:: max(1, len(paths) // n)][:n]
        source = f"FER2013 val ({FER_VAL})"
    else:
        from fercore.demo import DemoSpec, make_demo_data

        tmp = Path(tempfile.mkdtemp())
        make_demo_data(tmp, DemoSpec(real_train_per_class=n // 8 + 1, real_test_per_class=1), progress=False)
        paths = sorted((tmp / "real" / "train").rglob("*.jpg"))[:n]
        source = "demo real-style faces (no ../shared)"
    return [np.asarray(Image.open(p).convert("RGB").resize((48, 48), Image.LANCZOS)) for p in paths], source


def timed(faces: list[np.ndarray], detector: MTCNNFaces, batch: int) -> tuple[float, float]:
    """(images per second, share with landmarks) after one untimed warm-up pass over a batch."""
    detect_faces(faces[:batch], detector, batch_size=batch, progress=False)
    start = time.perf_counter()
    found = detect_faces(faces, detector, batch_size=batch, progress=False)
    seconds = time.perf_counter() - start
    return len(faces) / seconds, float(np.mean([d.landmarks is not None for d in found]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=400)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    small, source = load_faces(args.faces)
    large = [np.asarray(Image.fromarray(f).resize((128, 128), Image.LANCZOS)) for f in small]
    detector = MTCNNFaces(batch_size=args.batch)
    rate48, found48 = timed(small, detector, args.batch)
    rate128, found128 = timed(large, detector, args.batch)
    load = os.getloadavg()
    print(f"{len(small)} faces from {source}; MTCNN ({detector.signature}), {args.threads} torch threads, batch {args.batch}, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"48 px: {rate48:.1f} img/s, landmarks on {found48:.1%}; 128 px: {rate128:.1f} img/s, landmarks on {found128:.1%}")
    print(f"RESULT faces48_per_s={rate48:.1f} faces128_per_s={rate128:.1f} landmarks48={found48:.3f} landmarks128={found128:.3f}")


if __name__ == "__main__":
    main()
