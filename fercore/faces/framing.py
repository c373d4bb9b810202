"""The framing of a set of face images: per set, the median face box relative to the image,
eye-line and mouth height, inter-ocular distance (fractions of the image) with their spread
(IQR), and the landmark success rate. :meth:`fercore.faces.CanonicalFrame.from_framing` turns a
row of :func:`framing_table` into a frame, so faces of one set can be cropped like another set's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from fercore.core.present import declare
from fercore.faces.detection import Detection, FaceDetector, ImageLike, detect_faces, make_face_detector

#: Per-face framing measures, as shares of the image (box edges, eye line, mouth line, eye distance).
FRAMING_MEASURES = ("box_x0", "box_y0", "box_x1", "box_y1", "box_w", "box_h", "eye_x", "eye_y", "mouth_y", "iod")


def framing_measures(detections: Sequence[Detection]) -> pd.DataFrame:
    """One row per image with a face: :data:`FRAMING_MEASURES` of its main face (NaN where the
    detector gave no landmarks)."""
    rows = []
    for d in detections:
        face = d.face
        if face is None:
            continue
        x0, y0, x1, y1 = face.box
        row = {"box_x0": x0 / d.width, "box_y0": y0 / d.height, "box_x1": x1 / d.width, "box_y1": y1 / d.height,
               "box_w": (x1 - x0) / d.width, "box_h": (y1 - y0) / d.height}
        marks = face.landmarks
        if marks is not None:
            row.update(eye_x=(marks[:2, 0].mean() + 0.5) / d.width, eye_y=(marks[:2, 1].mean() + 0.5) / d.height,
                       mouth_y=(marks[3:, 1].mean() + 0.5) / d.height, iod=face.inter_ocular / d.width)
        rows.append(row)
    return pd.DataFrame(rows, columns=list(FRAMING_MEASURES), dtype=float)


def framing_stats(detections: Sequence[Detection]) -> dict[str, Any]:
    """A set's framing: images, face and landmark success rates, and the median and IQR
    (``<measure>_iqr``) of each of :data:`FRAMING_MEASURES` over its faces."""
    measures = framing_measures(detections)
    n = len(detections)
    stats: dict[str, Any] = {
        "images": n,
        "detector": ", ".join(sorted({d.detector for d in detections})) or "",
        "face_rate": len(measures) / n if n else float("nan"),
        "landmark_rate": int(measures["iod"].notna().sum()) / n if n else float("nan"),
    }
    for name in FRAMING_MEASURES:
        column = measures[name].dropna()
        stats[name] = float(column.median()) if len(column) else float("nan")
        stats[f"{name}_iqr"] = float(column.quantile(0.75) - column.quantile(0.25)) if len(column) else float("nan")
    return stats


def _paths(images: pd.DataFrame | Sequence[ImageLike]) -> list[ImageLike]:
    if isinstance(images, pd.DataFrame):
        return list(images["path"])
    return list(images)


def framing_table(
    sets: Mapping[str, pd.DataFrame | Sequence[ImageLike]],
    detector: FaceDetector | None = None,
    *,
    cache_dir: str | Path | None = None,
    max_per_set: int | None = 200,
    seed: int = 0,
    drawn: Callable[[pd.DataFrame], Sequence[Detection]] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """:func:`framing_stats` per set (rows), one table per run.

    ``sets`` maps a name to image paths (or a sample table with a ``path`` column); at most
    ``max_per_set`` images of each are used (a seeded draw). ``drawn`` gives known face positions
    for the drawn images (the demo's: :func:`fercore.demo.drawn_detections` over its ``geometry/``
    folder): each set then gets a second row from them, beside the detector's.
    """
    detector = detector or make_face_detector("auto")
    rows = []
    for name, images in sets.items():
        table = images if isinstance(images, pd.DataFrame) else pd.DataFrame({"path": _paths(images)})
        if max_per_set is not None and len(table) > max_per_set:
            table = table.sample(n=max_per_set, random_state=seed).sort_index()
        found = detect_faces(_paths(table), detector, cache_dir=cache_dir, progress=progress)
        rows.append({"set": name, **framing_stats(found)})
        if drawn is not None:
            reference = drawn(table)
            if reference:
                rows.append({"set": f"{name} (drawn)", **framing_stats(reference)})
    table = pd.DataFrame(rows).set_index("set")
    titles = {"face_rate": "face found", "landmark_rate": "landmarks found", "box_w": "box width", "eye_y": "eye line",
              "mouth_y": "mouth line", "iod": "inter-ocular"}
    medians = [c for c in ("box_w", "eye_y", "mouth_y", "iod") if c in table.columns]
    return declare(table, percent=[c for c in ("face_rate", "landmark_rate") if c in table.columns],
                   spread={c: f"{c}_iqr" for c in medians}, titles={k: v for k, v in titles.items() if k in table.columns},
                   show=[c for c in ("images", "detector", "face_rate", "landmark_rate", *medians) if c in table.columns])
