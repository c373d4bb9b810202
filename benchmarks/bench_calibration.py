"""Calibration table: false-positive rate and 95 % interval coverage of every clustered procedure the
chapters use, under a true null, at 1, 2, 4 and 8 synthetic grids per class (36 faces per grid), ICC 0.05
and 0.2 (latent logit scale), real sets of 100, 300 and 3,000 faces per class; plus the procedures they
replaced (the Wald test from a non-stratified cluster-bootstrap SE, the plain percentile bootstrap).

    .venv/bin/python benchmarks/bench_calibration.py [--reps 2000] [--seed 0] [--quick]

Prints a Markdown table (the one in docs/calibration.md), then
``RESULT cells=<n> meets=<n> worst_fpr=<%> worst_coverage=<%> seconds=<s>`` over the acceptance cells
(2, 4 and 8 grids per class, ICC 0.2, 100 real faces per class) of the chapters' procedures.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from fercore.analysis.harness import Design, calibrate, table_text

CHAPTERS = ["gap-cr2", "paired-cr2", "balanced-cr2", "factor-cr2", "null-excess-cr2", "replicate-mean-r3", "replicate-mean-r5",
            "bootstrap-widened"]
REPLACED = ["gap-wald-bootstrap", "bootstrap-percentile"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000, help="repetitions per cell of the CR2 procedures (bootstraps: half)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="fewer cells and repetitions (a smoke run)")
    args = parser.parse_args()
    start = time.perf_counter()
    grids = (2, 8) if args.quick else (1, 2, 4, 8)
    reals = (100,) if args.quick else (100, 300, 3000)
    tables = []
    for procedure in CHAPTERS:
        sizes = reals if procedure == "gap-cr2" else (100,)  # only the gap involves the real set
        designs = [Design(g, icc, n) for g in grids for icc in (0.05, 0.2) for n in sizes]
        reps = args.reps if procedure != "bootstrap-widened" else args.reps // 2
        tables.append(calibrate([procedure], designs, reps, seed=args.seed))
    replaced = [Design(g, 0.2, 100) for g in grids if g > 1]
    tables.append(calibrate(["gap-wald-bootstrap"], replaced, max(200, args.reps // 4), seed=args.seed))
    tables.append(calibrate(["bootstrap-percentile"], replaced, args.reps // 2, seed=args.seed))
    tables.append(calibrate(["single-checkpoint"], replaced, args.reps // 2, seed=args.seed))
    table = pd.concat(tables, ignore_index=True)
    print(table_text(table))
    accept = table[table["procedure"].isin(CHAPTERS) & table["grids"].isin([2, 4, 8]) & (table["icc"] == 0.2) & (table["n_real"] == 100)]
    print(f"RESULT cells={len(accept)} meets={int(accept['meets'].sum())} worst_fpr={100 * accept['fpr'].max():.1f} "
          f"worst_coverage={100 * accept['coverage'].min():.1f} seconds={time.perf_counter() - start:.0f}")


if __name__ == "__main__":
    main()
