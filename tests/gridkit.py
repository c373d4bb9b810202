"""Grid images for the extraction tests and benchmark: the library's composer
(:mod:`fercore.grids.compose`) and the face sources that need the test extra (scikit-image)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from fercore.grids import edges
from fercore.grids.compose import (  # noqa: F401
    Box,
    Composite,
    backdrop,
    compose_kind,
    compose_portraits,
    fer_faces,
    iou,
    located,
    write_grids,
)


def astronaut_faces(n: int, seed: int = 0) -> list[np.ndarray]:
    """Crops around the astronaut's face (skimage.data.astronaut), each shifted, scaled and tinted."""
    from skimage import data

    image = data.astronaut()
    rng = np.random.default_rng(seed)
    faces = []
    for _ in range(n):
        side = int(rng.integers(130, 170))
        cx, cy = 224 + int(rng.integers(-12, 13)), 113 + int(rng.integers(-10, 11))
        crop = image[max(0, cy - side // 2): cy + side // 2, max(0, cx - side // 2): cx + side // 2].astype(np.float32)
        crop = crop * rng.uniform(0.8, 1.15, 3) + rng.uniform(-15, 15)
        faces.append(np.clip(crop, 0, 255).astype(np.uint8))
    return faces


def lfw_faces() -> list[np.ndarray]:
    """The 100 face photographs (25x25 grey, tight crops of different people) of scikit-image's
    LFW subset (ships with scikit-image), as RGB."""
    from skimage import data

    faces = (data.lfw_subset()[:100] * 255).round().astype(np.uint8)  # the last 100 images are non-faces
    return [np.repeat(face[..., None], 3, axis=2) for face in faces]


def compose(faces: list[np.ndarray], rows: int, cols: int, *, size: int = 1024, gutter: int = 6,
            jitter: float = 0.0, seed: int = 0, background: int = 245) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """A size x size grid; returns the image and the face box (x0, y0, x1, y1) of each cell, row-major.

    ``jitter`` moves the inner row / column edges by up to that share of a cell (uneven grids);
    ``gutter`` 0 makes faces abut.
    """
    rng = np.random.default_rng(seed)

    def uneven(parts: int) -> list[int]:
        e = np.array(edges(size, parts), dtype=float)
        step = size / parts
        e[1:-1] += rng.uniform(-jitter, jitter, parts - 1) * step
        return [int(round(v)) for v in e]

    ys, xs = uneven(rows), uneven(cols)
    canvas = np.full((size, size, 3), background, dtype=np.uint8)
    boxes = []
    k = 0
    for r in range(rows):
        for c in range(cols):
            x0, y0, x1, y1 = xs[c] + gutter, ys[r] + gutter, xs[c + 1] - gutter, ys[r + 1] - gutter
            face = Image.fromarray(faces[k % len(faces)]).resize((x1 - x0, y1 - y0), Image.LANCZOS)
            canvas[y0:y1, x0:x1] = np.asarray(face)
            boxes.append((x0, y0, x1, y1))
            k += 1
    return canvas, boxes


def recovered(true_boxes, found_boxes, threshold: float = 0.5) -> float:
    """Share of true boxes matched by some found box at IoU >= threshold."""
    return float(np.mean([max((iou(t, f) for f in found_boxes), default=0.0) >= threshold for t in true_boxes]))


def pattern_faces(root, name: str, domain: str, emotions, grids: int | None, per: int, size: int):
    """A sample table of pattern images for the chapters' loops (RQ3, RQ4): ``per * (grids or 2)`` faces per emotion in
    ``root/name/``, clustered into ``grids`` source grids per emotion (None: no ``source``, a real set's faces)."""
    import pandas as pd
    from conftest import pattern_image

    from fercore.core.labels import CLASSES

    rows = []
    for e, emotion in enumerate(emotions):
        for i in range(per * (grids or 2)):
            path = root / name / f"{emotion}{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            pattern_image(size, size, seed=1000 * ["real", "test", "train", "null"].index(name) + len(rows) + 100 * e).save(path)
            rows.append({"path": str(path), "label": CLASSES.index(emotion), "emotion": emotion, "domain": domain,
                         "dataset": "fer" if domain == "real" else domain, **({"source": f"{name}-{emotion}-{i % grids}"} if grids else {})})
    return pd.DataFrame(rows)


class Grey:
    """A matched-arm transform for tests: every image in grey."""

    name = "grey"

    def __call__(self, image):
        return image.convert("L").convert("RGB")


def chapter_loop_inputs(root, chapter: str, emotions, *, per: int, size: int):
    """What RQ3's and RQ4's loops take, on pattern images: a real set ``fer``, synthetic test and train faces of two
    grids per emotion, null faces of two grids, the test sets and a :class:`~fercore.studies.Study` in ``root/run``."""
    from types import SimpleNamespace

    from fercore.book import Chapter
    from fercore.inference import InferenceCache
    from fercore.studies import Study
    from fercore.studies.data import TestSets

    real, test, train = (pattern_faces(root, n, d, emotions, g, per, size) for n, d, g in
                         (("real", "real", None), ("test", "synthetic", 2), ("train", "synthetic", 2)))
    null = pattern_faces(root, "null", "null arm", emotions, 2, per, size)
    sets = TestSets({"fer": real, "synthetic": test}, {"fer": list(emotions), "synthetic": list(emotions)})
    study = Study(Chapter(root / "run", chapter, show=False), {}, {"fer": str(root)}, str(root),
                  InferenceCache(root / "inference", workers=0, progress=False))
    return SimpleNamespace(real=real, test=test, train=train, null=null, sets=sets, study=study)
