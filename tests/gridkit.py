"""Grid images composed from real faces with known boxes (for the extraction tests and benchmark)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from fercore.grids import edges


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


def fer_faces(root: Path, n: int) -> list[np.ndarray]:
    """n different FER2013 faces (grey, replicated to RGB)."""
    paths = sorted((root / "val").rglob("*.jpg"))[:: max(1, 3589 // n)][:n]
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths]


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


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def recovered(true_boxes, found_boxes, threshold: float = 0.5) -> float:
    """Share of true boxes matched by some found box at IoU >= threshold."""
    return float(np.mean([max((iou(t, f) for f in found_boxes), default=0.0) >= threshold for t in true_boxes]))


# --------------------------------------------------------------------------- hard composites

Box = tuple[int, int, int, int]


@dataclass
class Composite:
    """A composed grid with what is known about every cell (row-major): its rectangle, the face
    square placed in it (None when the cell holds no single face) and how it was made:
    'face', or a deliberate degradation: 'blank', 'blurred', 'doubled' (two faces)."""

    image: np.ndarray
    rows: int
    cols: int
    cells: list[Box]
    faces: list[Box | None]
    kinds: list[str]

    @property
    def name(self) -> str:
        return f"{self.rows}x{self.cols}"


def backdrop(size: int, level: int, seed: int, texture: float = 0.0) -> np.ndarray:
    """A size x size RGB backdrop at grey ``level``; ``texture`` adds a smooth random field of that
    amplitude (grey levels), like a studio backdrop shared by abutting portraits."""
    canvas = np.full((size, size), float(level), dtype=np.float32)
    if texture:
        rng = np.random.default_rng(seed)
        coarse = rng.uniform(-1, 1, (6, 6)).astype(np.float32)
        canvas += texture * np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC))
    return np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def compose_portraits(
    faces: list[np.ndarray],
    rows: int,
    cols: int,
    *,
    size: int = 1024,
    gutter: int = 0,
    fill: float = 0.9,
    fill_jitter: float = 0.0,
    offset: int = 0,
    edge_jitter: float = 0.0,
    level: int = 128,
    texture: float = 0.0,
    lowres: int | None = None,
    blank: tuple[int, ...] = (),
    blurred: tuple[int, ...] = (),
    doubled: tuple[int, ...] = (),
    shuffle: bool = True,
    seed: int = 0,
) -> Composite:
    """Portraits on a shared backdrop: each cell gets a face square of side ``fill`` x the cell's
    shorter side (times 1 +- ``fill_jitter``), moved up to ``offset`` px from the cell centre.

    ``gutter`` px of backdrop separate cells (0: abutting); ``edge_jitter`` moves inner row /
    column edges by up to that share of a cell (unequal row heights and column widths);
    ``lowres`` shrinks each face to that many px before enlarging it (low-resolution sources).
    Cells listed in ``blank`` hold only backdrop, ``blurred`` a blurred face, ``doubled`` two
    half-size faces side by side. Faces are used in a seeded random order (``shuffle``) or as given.
    """
    rng = np.random.default_rng(seed)

    def cuts(parts: int) -> list[int]:
        e = np.array(edges(size, parts), dtype=float)
        e[1:-1] += rng.uniform(-edge_jitter, edge_jitter, parts - 1) * size / parts
        return [int(round(v)) for v in e]

    ys, xs = cuts(rows), cuts(cols)
    canvas = backdrop(size, level, seed, texture)
    cells, squares, kinds = [], [], []
    order = rng.permutation(len(faces)) if shuffle else np.arange(len(faces))
    k = 0

    def paste(face: np.ndarray, box: Box) -> None:
        x0, y0, x1, y1 = box
        if lowres:
            face = np.asarray(Image.fromarray(face).resize((lowres, lowres), Image.BILINEAR))
        canvas[y0:y1, x0:x1] = np.asarray(Image.fromarray(face).resize((x1 - x0, y1 - y0), Image.BICUBIC))

    for r in range(rows):
        for c in range(cols):
            i = r * cols + c
            cell = (xs[c] + gutter, ys[r] + gutter, xs[c + 1] - gutter, ys[r + 1] - gutter)
            cells.append(cell)
            x0, y0, x1, y1 = cell
            short = min(x1 - x0, y1 - y0)
            if i in blank:
                squares.append(None)
                kinds.append("blank")
                continue
            if i in doubled:
                half = short // 2 - 2
                cy = (y0 + y1) // 2
                for j, left in enumerate((x0 + 1, x1 - 1 - half)):
                    paste(faces[order[(k + j) % len(faces)]], (left, cy - half // 2, left + half, cy - half // 2 + half))
                k += 2
                squares.append(None)
                kinds.append("doubled")
                continue
            side = min(short, int(round(short * fill * (1 + rng.uniform(-fill_jitter, fill_jitter)))))
            cx = (x0 + x1) / 2 + rng.uniform(-offset, offset)
            cy = (y0 + y1) / 2 + rng.uniform(-offset, offset)
            left = int(round(min(max(cx - side / 2, x0), x1 - side)))
            top = int(round(min(max(cy - side / 2, y0), y1 - side)))
            square = (left, top, left + side, top + side)
            paste(faces[order[k % len(faces)]], square)
            k += 1
            if i in blurred:  # the whole portrait out of focus, the face's outline too
                canvas[y0:y1, x0:x1] = np.asarray(Image.fromarray(canvas[y0:y1, x0:x1]).filter(ImageFilter.GaussianBlur(6)))
            squares.append(square)
            kinds.append("blurred" if i in blurred else "face")
    return Composite(canvas, rows, cols, cells, squares, kinds)


def located(composite: Composite, boxes: list[Box], threshold: float = 0.5) -> list[bool]:
    """Per single-face cell of ``composite`` (blank and doubled cells skipped): whether some
    extracted box has IoU >= threshold with its face square."""
    return [max((iou(square, b) for b in boxes), default=0.0) >= threshold for square in composite.faces if square is not None]
