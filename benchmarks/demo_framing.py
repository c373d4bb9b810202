"""RQ1's framing table on the demo data with the demo's synthetic faces extracted two ways:
face crops (the demo's choice) and cell crops (``--crop cell --detector none``, the demo before).

    .venv/bin/python benchmarks/demo_framing.py [--data DIR] [--per-set N] [--detector mtcnn] [--framing portrait]

Writes the demo data (default sizes) under ``--data`` unless it is there, extracts its synthetic
grids into ``<data>/synthetic/processed_<mode>``, and prints, per mode, the test sets' framing
(:func:`fercore.faces.framing_table`, MTCNN rows and the generator's drawn rows) and the distance of
the synthetic framing to the real-style faces' (Euclidean, over the medians of box width, eye x / y,
mouth line and eye distance, as shares of the image). Ends with a ``RESULT`` line.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import pandas as pd

from fercore.data import discover
from fercore.demo import drawn_detections, make_demo_data
from fercore.faces import framing_table
from fercore.grids import ExtractOptions, extract_grids

MEASURES = ("box_w", "eye_x", "eye_y", "mouth_y", "iod")


def distance(table: pd.DataFrame, synthetic: str, real: str) -> float:
    """Euclidean distance between two rows' medians of :data:`MEASURES`."""
    return math.sqrt(sum((table.loc[synthetic, m] - table.loc[real, m]) ** 2 for m in MEASURES))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="demo data folder (default: a temporary one)")
    parser.add_argument("--per-set", type=int, default=200)
    parser.add_argument("--detector", default="mtcnn")
    parser.add_argument("--framing", default="portrait")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp) / "demo"
        make_demo_data(data, progress=False)
        modes = {"face": ExtractOptions(layout="auto", detector=args.detector, crop="face", framing=args.framing),
                 "cell": ExtractOptions(layout="auto", detector="none", crop="cell")}
        result = {}
        for mode, options in modes.items():
            processed = data / "synthetic" / f"processed_{mode}"
            manifest = extract_grids(data / "synthetic" / "raw_grids", processed, options, workers=2, progress=False,
                                     contact_sheets=False)
            test = manifest[manifest.kept & (manifest.split == "test")].assign(path=lambda m: str(processed) + "/" + m.path)
            sets = {"real": discover(data / "real", ["test"]), "synthetic": test}
            table = framing_table(sets, cache_dir=Path(tmp) / f"faces_{mode}", max_per_set=args.per_set,
                                  drawn=lambda s: drawn_detections(s, data / "geometry"), progress=False)
            pd.set_option("display.width", 200)
            print(f"--- {mode} crops ({options}): kept {int(manifest.kept.sum())} of {len(manifest)} cells")
            print(table[["images", "face_rate", "landmark_rate", *MEASURES]].round(3).to_string())
            result[f"{mode}_drawn"] = distance(table, "synthetic (drawn)", "real (drawn)")
            result[f"{mode}_mtcnn"] = distance(table, "synthetic", "real")
            result[f"{mode}_kept"] = int(manifest.kept.sum())
        print("RESULT " + " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
