"""Grid extraction speed: 30 grids of 1024x1024 (1,080 cells), layout, face validation and quality checks, per detector.

    .venv/bin/python benchmarks/bench_extract.py [--source lfw|demo] [--layout 6x6|auto] [--crop face|cell]
        [--detectors mtcnn haar none] [--repeat N]

``--source lfw`` (default): portraits of real people (scikit-image's LFW subset, 25 px faces
enlarged; abutting, jittered and gutter grids from :func:`fercore.grids.compose.compose_portraits`); ``demo``: the embedded
demo's procedural grids. Both are built in a temporary folder, nothing is downloaded. Each
detector runs the same grids in a fresh output folder (``--repeat`` times; the fastest run counts,
since other work on a shared machine only ever adds time). One line per detector, then
``RESULT <detector>_s=<seconds> <detector>_cpu_s=<CPU seconds, all threads> ... cells=<n> load=<1-minute
load average at the start>``.
The issue's budget: 10 s for the default detector (MTCNN) on 2 cores, with ``--crop face --layout auto``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from PIL import Image

from fercore.grids import ExtractOptions, extract_grids

SPECS = [  # compose_portraits settings, cycled over the grids
    {"fill": 0.95, "fill_jitter": 0.05, "offset": 4, "texture": 25, "level": 128},  # abutting portraits
    {"fill": 0.85, "fill_jitter": 0.1, "offset": 8, "edge_jitter": 0.1, "texture": 20, "level": 150},  # jittered
    {"gutter": 6, "fill": 0.85, "offset": 8, "level": 40},  # gutters, dark backdrop
]


def lfw_grids(folder: Path, n: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from gridkit import lfw_faces  # scikit-image's LFW subset (the test extra)

    from fercore.grids.compose import compose_portraits

    faces = lfw_faces()
    names = []
    for i in range(n):
        composite = compose_portraits(faces, 6, 6, seed=i, **SPECS[i % len(SPECS)])
        names.append(f"lfw_{i:02d}.png")
        Image.fromarray(composite.image).save(folder / names[-1])
    pd.DataFrame({"file": names, "emotion": "happy", "gender": "female"}).to_csv(folder / "grids.csv", index=False)


def demo_grids(folder: Path, n: int, tmp: Path) -> None:
    from fercore.demo import DemoSpec, make_demo_data

    demo = tmp / "demo"
    make_demo_data(demo, DemoSpec(real_train_per_class=1, real_test_per_class=1), progress=False)
    table = pd.concat([pd.read_csv(demo / "synthetic" / "raw_grids" / split / "grids.csv").assign(split=split)
                       for split in ("train", "test")]).head(n)
    for row in table.itertuples(index=False):
        (folder / row.file).symlink_to(demo / "synthetic" / "raw_grids" / row.split / row.file)
    table.drop(columns="split").to_csv(folder / "grids.csv", index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=["lfw", "demo"], default="lfw")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--detectors", nargs="+", default=["mtcnn", "haar", "none"])
    parser.add_argument("--layout", default="6x6")
    parser.add_argument("--crop", choices=["face", "cell"], default="face")
    parser.add_argument("--grids", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=1, help="runs per detector; the fastest counts")
    args = parser.parse_args()
    results = {}
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw"
        (raw / "train").mkdir(parents=True)
        if args.source == "lfw":
            lfw_grids(raw / "train", args.grids)
        else:
            demo_grids(raw / "train", args.grids, Path(tmp))
        for detector in args.detectors:
            runs, cpu = [], []
            for run in range(args.repeat):
                start, start_cpu = time.perf_counter(), time.process_time()
                options = ExtractOptions(layout=args.layout, detector=detector, crop=args.crop)
                manifest = extract_grids(raw, Path(tmp) / f"out_{detector}_{run}", options, workers=args.workers, progress=False,
                                         contact_sheets=False)
                runs.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
            seconds = results[detector] = min(runs)
            results[f"{detector}_cpu"] = min(cpu)  # CPU seconds of all threads: what a busy machine inflates least
            print(f"{args.source}: {args.grids} grids, {len(manifest)} cells, layout {args.layout}, crop {args.crop}, detector {detector}, "
                  f"{args.workers} workers: {seconds:.2f} s ({len(manifest) / seconds:.0f} cells/s"
                  + (f"; fastest of {', '.join(f'{r:.2f}' for r in runs)}" if len(runs) > 1 else "")
                  + f"; {min(cpu):.1f} CPU s; {int(manifest.kept.sum())} kept, reasons {manifest.reason[~manifest.kept].str.split().str[0].value_counts().to_dict()})")
    print("RESULT " + " ".join(f"{d}_s={s:.2f}" for d, s in results.items()) + f" cells={len(manifest)} load={load:.2f}")


if __name__ == "__main__":
    main()
