"""Grid composites with known face boxes: what generators return, built from real faces.

:func:`compose_portraits` pastes face images (FER2013 faces, :func:`fer_faces`, or any RGB
squares) into the cells of a canvas of any shape: a regular rows x cols grid, rows of their
own lengths (``row_lengths``: 5, 7, 6 ...), faces filling part of their cell and moved off its
centre (``fill``, ``shift``), unequal rows and columns, abutting or with gutters, blank,
blurred or doubled cells. It returns a :class:`Composite` holding, per cell, the square where
the face was pasted: the true face box that extraction must locate (:func:`located`).
:data:`KINDS` names the composites the extraction tests and ``benchmarks/bench_extract.py`` use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageFilter

from fercore.faces import make_face_detector
from fercore.grids.layout import edges

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
    row_lengths: tuple[int, ...] = ()
    truth: list[Box | None] | None = None  # the true face box per cell (default: the pasted square)

    @property
    def true_faces(self) -> list[Box | None]:
        return self.truth if self.truth is not None else self.faces

    @property
    def name(self) -> str:
        if self.row_lengths and len(set(self.row_lengths)) > 1:
            return "rows " + ",".join(str(n) for n in self.row_lengths)
        return f"{self.rows}x{self.cols}"


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union else 0.0


def located(composite: Composite, boxes: Sequence[Sequence[float]], threshold: float = 0.5) -> list[bool]:
    """Per single-face cell of ``composite`` (blank and doubled cells skipped): whether some box
    of ``boxes`` (e.g. the manifest's detected face boxes) has IoU >= ``threshold`` with its true face box."""
    return [max((iou(true, b) for b in boxes), default=0.0) >= threshold for true in composite.true_faces if true is not None]


def known_faces(faces: Sequence[np.ndarray], detector: Any = None) -> tuple[list[np.ndarray], list[tuple[float, ...]]]:
    """The faces on which ``detector`` (a :mod:`fercore.faces` detector; default MTCNN) finds exactly
    one plausible face on its own (its box mostly inside the image), each with that face's box as shares of the image (x0, y0, x1, y1): the
    true face boxes of a composite (``compose_portraits(face_boxes=...)``), in the detector's own convention."""
    detector = detector or make_face_detector("mtcnn")
    kept, boxes = [], []
    for face, found in zip(faces, detector.detect(list(faces)), strict=True):
        if len(found.faces) != 1:
            continue
        x0, y0, x1, y1 = found.faces[0].box
        share = (x0 / found.width, y0 / found.height, x1 / found.width, y1 / found.height)
        if share[0] >= -0.1 and share[1] >= -0.15 and share[2] <= 1.1 and share[3] <= 1.15 and 0.5 <= share[2] - share[0] <= 1.0:
            kept.append(face)  # a plausible box: not one grown into the padding around a small face
            boxes.append(share)
    return kept, boxes


def fer_faces(root: str | Path, n: int, split: str = "val") -> list[np.ndarray]:
    """``n`` different FER2013 faces of ``root/<split>`` (grey, replicated to RGB), spread over the split."""
    paths = sorted((Path(root) / split).rglob("*.jpg"))
    if not paths:
        raise FileNotFoundError(f"no FER2013 faces under {Path(root) / split}")
    paths = paths[:: max(1, len(paths) // n)][:n]
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths]


def backdrop(width: int, level: int, seed: int, texture: float = 0.0, height: int | None = None) -> np.ndarray:
    """A width x height RGB backdrop at grey ``level``; ``texture`` adds a smooth random field of
    that amplitude (grey levels), like a studio backdrop shared by abutting portraits."""
    height = height or width
    canvas = np.full((height, width), float(level), dtype=np.float32)
    if texture:
        rng = np.random.default_rng(seed)
        coarse = rng.uniform(-1, 1, (6, 6)).astype(np.float32)
        canvas += texture * np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC))
    return np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def _cuts(length: int, parts: int, jitter: float, rng: np.random.Generator) -> list[int]:
    e = np.array(edges(length, parts), dtype=float)
    e[1:-1] += rng.uniform(-jitter, jitter, parts - 1) * length / parts
    return [int(round(v)) for v in e]


def _face_square(cell: Box, fill: float, fill_jitter: float, offset: float, shift: float, rng: np.random.Generator) -> Box:
    """Where a face goes in ``cell``: a square of ``fill`` x the shorter side (+- ``fill_jitter``),
    its centre moved up to ``offset`` px and ``shift`` x the free margin, kept inside the cell."""
    x0, y0, x1, y1 = cell
    short = min(x1 - x0, y1 - y0)
    side = min(short, int(round(short * fill * (1 + rng.uniform(-fill_jitter, fill_jitter)))))
    free_x, free_y = (x1 - x0 - side) / 2, (y1 - y0 - side) / 2
    cx = (x0 + x1) / 2 + rng.uniform(-offset, offset)
    cy = (y0 + y1) / 2 + rng.uniform(-offset, offset)
    if shift:
        cx += rng.uniform(-shift, shift) * free_x
        cy += rng.uniform(-shift, shift) * free_y
    left = int(round(min(max(cx - side / 2, x0), x1 - side)))
    top = int(round(min(max(cy - side / 2, y0), y1 - side)))
    return left, top, left + side, top + side


def compose_portraits(
    faces: list[np.ndarray],
    rows: int,
    cols: int,
    *,
    size: int = 1024,
    width: int | None = None,
    height: int | None = None,
    row_lengths: Sequence[int] | None = None,
    gutter: int = 0,
    fill: float = 0.9,
    fill_jitter: float = 0.0,
    offset: int = 0,
    shift: float = 0.0,
    edge_jitter: float = 0.0,
    level: int = 128,
    texture: float = 0.0,
    lowres: int | None = None,
    blank: tuple[int, ...] = (),
    blurred: tuple[int, ...] = (),
    doubled: tuple[int, ...] = (),
    face_boxes: Sequence[Sequence[float]] | None = None,
    shuffle: bool = True,
    seed: int = 0,
) -> Composite:
    """Portraits on a shared backdrop of ``width`` x ``height`` (default ``size`` square): each
    cell gets a face square of side ``fill`` x the cell's shorter side (times 1 +- ``fill_jitter``),
    moved up to ``offset`` px and up to ``shift`` x its free margin from the cell centre.

    ``row_lengths`` gives each row its own number of cells (``rows`` and ``cols`` then follow
    from it); ``gutter`` px of backdrop separate cells (0: abutting); ``edge_jitter`` moves inner
    row / column edges by up to that share of a cell; ``lowres`` shrinks each face to that many
    px before enlarging it. Cells (row-major indices) in ``blank`` hold only backdrop,
    ``blurred`` a blurred face, ``doubled`` two half-size faces side by side. ``face_boxes``
    (per face, its box as shares of the face image, e.g. from :func:`known_faces`) gives the true
    face boxes (:attr:`Composite.truth`); without it the pasted squares are the truth.
    """
    rng = np.random.default_rng(seed)
    width, height = width or size, height or size
    lengths = tuple(row_lengths) if row_lengths else (cols,) * rows
    ys = _cuts(height, len(lengths), edge_jitter, rng)
    row_xs = [_cuts(width, n, edge_jitter, rng) for n in lengths] if row_lengths else [_cuts(width, cols, edge_jitter, rng)] * rows
    canvas = backdrop(width, level, seed, texture, height)
    cells: list[Box] = []
    squares: list[Box | None] = []
    truth: list[Box | None] = []
    kinds: list[str] = []
    order = rng.permutation(len(faces)) if shuffle else np.arange(len(faces))
    k = 0

    for r, (n, xs) in enumerate(zip(lengths, row_xs, strict=True)):
        for c in range(n):
            i = len(cells)
            cell = (xs[c] + gutter, ys[r] + gutter, xs[c + 1] - gutter, ys[r + 1] - gutter)
            cells.append(cell)
            x0, y0, x1, y1 = cell
            if i in blank:
                squares.append(None)
                truth.append(None)
                kinds.append("blank")
            elif i in doubled:
                half = min(x1 - x0, y1 - y0) // 2 - 2
                cy = (y0 + y1) // 2
                for j, left in enumerate((x0 + 1, x1 - 1 - half)):
                    box = (left, cy - half // 2, left + half, cy - half // 2 + half)
                    _paste(canvas, faces[order[(k + j) % len(faces)]], box, lowres)
                k += 2
                squares.append(None)
                truth.append(None)
                kinds.append("doubled")
            else:
                square = _face_square(cell, fill, fill_jitter, offset, shift, rng)
                _paste(canvas, faces[order[k % len(faces)]], square, lowres)
                truth.append(_true_box(square, None if face_boxes is None else face_boxes[order[k % len(faces)]]))
                k += 1
                if i in blurred:  # the whole portrait out of focus, the face's outline too
                    canvas[y0:y1, x0:x1] = np.asarray(Image.fromarray(canvas[y0:y1, x0:x1]).filter(ImageFilter.GaussianBlur(6)))
                squares.append(square)
                kinds.append("blurred" if i in blurred else "face")
    return Composite(canvas, len(lengths), max(lengths), cells, squares, kinds, lengths, truth)


def _paste(canvas: np.ndarray, face: np.ndarray, box: Box, lowres: int | None) -> None:
    """``face`` resized into ``box`` of ``canvas`` (through ``lowres`` px first, when given)."""
    x0, y0, x1, y1 = box
    if lowres:
        face = np.asarray(Image.fromarray(face).resize((lowres, lowres), Image.BILINEAR))
    canvas[y0:y1, x0:x1] = np.asarray(Image.fromarray(face).resize((x1 - x0, y1 - y0), Image.BICUBIC))


def _true_box(square: Box, share: Sequence[float] | None) -> Box:
    """The face box of a pasted square: ``share`` (x0, y0, x1, y1 as shares of the face image) mapped into it."""
    if share is None:
        return square
    x0, y0, x1, y1 = square
    w, h = x1 - x0, y1 - y0
    return (int(round(x0 + share[0] * w)), int(round(y0 + share[1] * h)), int(round(x0 + share[2] * w)), int(round(y0 + share[3] * h)))


#: The composite kinds of issue 28 (what generators return), as :func:`compose_portraits` settings.
KINDS: dict[str, dict[str, Any]] = {
    "regular": {"rows": 4, "cols": 4, "size": 768, "fill": 0.9, "offset": 4, "texture": 20, "level": 128},
    "uneven_rows": {"rows": 0, "cols": 0, "size": 1024, "row_lengths": (5, 7, 6, 5, 7), "gutter": 2, "fill": 0.85,
                    "texture": 20, "level": 140},
    "small_off_centre": {"rows": 4, "cols": 4, "size": 768, "fill": 0.625, "fill_jitter": 0.12, "shift": 0.9,
                         "texture": 25, "level": 110},
    "wide_16x9": {"rows": 3, "cols": 6, "width": 1344, "height": 768, "fill": 0.8, "offset": 6, "texture": 20, "level": 150},
    "tall_9x16": {"rows": 6, "cols": 3, "width": 768, "height": 1344, "fill": 0.8, "offset": 6, "texture": 20, "level": 150},
}


def compose_kind(kind: str, faces: list[np.ndarray], seed: int = 0, face_boxes: Sequence[Sequence[float]] | None = None
                 ) -> Composite:
    """A composite of one of :data:`KINDS` from ``faces`` (used in the given order; ``face_boxes``: their true boxes)."""
    return compose_portraits(faces, **KINDS[kind], face_boxes=face_boxes, shuffle=False, seed=seed)


def write_grids(folder: str | Path, composites: Mapping[str, Composite | np.ndarray], emotion: str | Mapping[str, str] = "happy",
                gender: str = "female", layout: str | None = None) -> Path:
    """Save composites (or plain images) as ``folder/<name>`` with the ``grids.csv`` extraction needs (``emotion``:
    one for all, or ``{name: emotion}``; ``layout``: the ``ROWSxCOLS`` asked, recorded when given)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, composite in composites.items():
        Image.fromarray(composite.image if isinstance(composite, Composite) else composite).save(folder / name)
    emotions = [emotion[name] for name in composites] if isinstance(emotion, Mapping) else emotion
    table = pd.DataFrame({"file": list(composites), "emotion": emotions, "gender": gender})
    if layout is not None:
        table["layout"] = layout
    table.to_csv(folder / "grids.csv", index=False)
    return folder


def emotion_grids(samples: pd.DataFrame, per_emotion: Mapping[str, int], *, rows: int = 6, cols: int = 6, size: int = 1024,
                  width: int | None = None, height: int | None = None, seed: int = 0, prefix: str = "grid",
                  fill_short: bool = False, **compose: Any) -> tuple[dict[str, Composite], pd.DataFrame]:
    """Grids of one emotion each, as a generator returns them, from real faces: for every emotion of ``per_emotion``,
    that many ``rows`` x ``cols`` grids of ``width`` x ``height`` (default ``size`` square) px, each filled with
    faces of that emotion of ``samples`` (``path``, ``emotion``) drawn without replacement (seeded), so no face
    appears twice. An emotion with too few faces gets as many full grids as its faces fill, or with ``fill_short``
    all its grids (at most one per face), its faces shared out evenly and the other cells left blank (backdrop
    only, as a generator's rejected cell: extraction finds no face there; the null arm does not use it, since a grid
    of few faces misleads an ``auto`` layout: 43 % of such faces kept on the demo data, measured). ``compose`` passes
    :func:`compose_portraits` settings (default: faces filling 90 % of their cell on a lightly textured backdrop).
    Returns ``{file name: composite}`` and a table with one row per face placed: ``file``, ``emotion``, ``cell``
    (row-major), ``face`` (its path)."""
    missing = {"path", "emotion"} - set(samples.columns)
    if missing:
        raise ValueError(f"the face table lacks columns {sorted(missing)}")
    settings = {"fill": 0.9, "offset": 4, "texture": 20.0, "level": 128, **compose}
    per_grid = rows * cols
    rng = np.random.default_rng(seed)
    composites: dict[str, Composite] = {}
    placed: list[dict[str, Any]] = []
    for emotion, wanted in per_emotion.items():
        pool = samples.loc[samples["emotion"] == emotion, "path"].astype(str).to_numpy()
        pool = pool[rng.permutation(len(pool))]
        short = fill_short and len(pool) < int(wanted) * per_grid
        n = min(int(wanted), len(pool)) if short else min(int(wanted), len(pool) // per_grid)
        sizes = [len(pool) // n + (g < len(pool) % n) for g in range(n)] if short else [per_grid] * n
        for g, start in enumerate(np.r_[0, np.cumsum(sizes)[:-1]].astype(int) if n else []):
            paths = pool[start:start + sizes[g]]
            name = f"{prefix}_{emotion.lower()}_{g:03d}.png"
            faces = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
            blank = tuple(sorted(rng.choice(per_grid, per_grid - len(paths), replace=False).tolist()))
            composites[name] = compose_portraits(faces, rows, cols, size=size, width=width, height=height, shuffle=False,
                                                 blank=blank, seed=int(rng.integers(2**31)), **settings)
            cells = [i for i in range(per_grid) if i not in blank]
            placed += [{"file": name, "emotion": emotion, "cell": i, "face": p} for i, p in zip(cells, paths, strict=True)]
    return composites, pd.DataFrame(placed, columns=["file", "emotion", "cell", "face"])
