"""Calibration of RQ3's and RQ4's tests under a true null: false-positive rate and 95 % interval
coverage (with Monte-Carlo SEs) at 1, 2, 4 and 8 grids per class, ICC 0.05 and 0.2, real sets of
100, 300 and 3,000 faces per class (:mod:`fercore.analysis.calibration_rq34` states the models).

    python benchmarks/bench_calibration_rq34.py [--region-reps 4000] [--embedding-reps 400] [--old-reps 40]

Prints a Markdown table and, last, ``RESULT key=value ...`` (the worst acceptance cell: 2-8 grids, ICC 0.2, 100 real faces).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from fercore.analysis import calibration_rq34 as H


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region-reps", type=int, default=4000)
    parser.add_argument("--embedding-reps", type=int, default=400)
    parser.add_argument("--old-reps", type=int, default=40)
    parser.add_argument("--reals", type=int, nargs="+", default=[100, 300, 3000])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    cells = []
    for icc in (0.05, 0.2):
        for real in args.reals:
            for grids in (1, 2, 4, 8):
                cells += [H.region_cell(p, grids, icc, real, args.region_reps, seed=args.seed) for p in H.REGION_PROCEDURES]
                for p in H.EMBEDDING_PROCEDURES:
                    if "old" in p and real != 100:
                        continue  # the face-level MMD on every face: shown at 100 real faces per class only
                    cells.append(H.embedding_cell(p, grids, icc, real, args.old_reps if "old" in p else args.embedding_reps, seed=args.seed))
    frame = H.table(cells).sort_values(["procedure", "icc", "real", "grids"])
    print(frame.to_markdown(index=False, floatfmt=("", "g", ".2f", "g", "g", ".1f", ".1f", ".1f", ".1f")))
    accept = frame[(frame["icc"] == 0.2) & (frame["real"] == 100) & frame["grids"].isin([2, 4, 8])
                   & ~frame["procedure"].str.contains("old|centroid")]
    worst_cov = accept["coverage"].dropna()
    print(f"RESULT seconds={time.perf_counter() - start:.0f} cells={len(frame)} worst_fpr_pct={accept['fpr'].max():.1f} "
          f"worst_coverage_pct={worst_cov.min() if len(worst_cov) else np.nan:.1f} "
          f"old_mmd_fpr_pct_2grids={frame[(frame['procedure'].str.contains('old: MMD')) & (frame['grids'] == 2) & (frame['icc'] == 0.2)]['fpr'].max():.1f}")


if __name__ == "__main__":
    main()
