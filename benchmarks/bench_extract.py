"""Grid extraction speed: 30 grids of 1024x1024 (1,080 faces) with Haar validation and quality checks.

    .venv/bin/python benchmarks/bench_extract.py [--workers 2] [--detector haar] [--layout 6x6]

The grids are the embedded demo's (written to a temporary folder), so it runs anywhere.
Last line: ``RESULT faces_per_s=<x> seconds=<y>``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from fercore.demo import DemoSpec, make_demo_data
from fercore.grids import ExtractOptions, extract_grids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--detector", default="haar")
    parser.add_argument("--layout", default="6x6")
    parser.add_argument("--grids", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        demo = Path(tmp) / "demo"
        make_demo_data(demo, DemoSpec(real_train_per_class=1, real_test_per_class=1), progress=False)
        raw = Path(tmp) / "raw"
        (raw / "train").mkdir(parents=True)
        table = pd.concat([pd.read_csv(demo / "synthetic" / "raw_grids" / split / "grids.csv").assign(split=split)
                           for split in ("train", "test")]).head(args.grids)
        for row in table.itertuples(index=False):
            (raw / "train" / row.file).symlink_to(demo / "synthetic" / "raw_grids" / row.split / row.file)
        table.drop(columns="split").to_csv(raw / "train" / "grids.csv", index=False)
        start = time.perf_counter()
        manifest = extract_grids(raw, Path(tmp) / "out", ExtractOptions(layout=args.layout, detector=args.detector),
                                 workers=args.workers, progress=False)
        seconds = time.perf_counter() - start
    faces = len(manifest)
    print(f"{args.grids} grids, {faces} cells, layout {args.layout}, detector {args.detector}, {args.workers} workers: "
          f"{seconds:.2f} s ({int(manifest.kept.sum())} kept; demo faces are cartoons the Haar cascade mostly misses)")
    print(f"RESULT faces_per_s={faces / seconds:.1f} seconds={seconds:.2f}")


if __name__ == "__main__":
    main()
