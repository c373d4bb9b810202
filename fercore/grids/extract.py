"""Faces out of generated grid images: layout, validation, quality checks, export and manifest.

``extract_grids(raw_dir, out_dir)`` reads ``raw_dir/<split>/*.png|jpg`` (+ ``grids.csv`` with
file, emotion, gender ...), finds each image's layout (uniform n x m, or ``auto``: the candidate
layout - expected split, gutters, seams between abutting portraits, face clusters, uniform and
face-fitted splits near them - that best explains the faces found on the whole grid), checks
every cell (exactly one face, blur, exposure, contrast, face size, near-duplicates) and
writes 128x128 faces to ``out_dir/<split>/<emotion>/<stem>_r<row>c<col>.png`` and one
manifest row per cell to ``out_dir/manifest.csv``. Raw images are only read. Each finished
grid is recorded under ``out_dir/.grids/`` (by content hash), so a rerun skips it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from fercore import faces
from fercore.core.files import sha256_file, write_csv, write_image, write_json
from fercore.core.labels import UnknownLabelError, canonical_name
from fercore.core.progress import progress_bar as tqdm  # a bar in a terminal, log lines in a log file
from fercore.data import is_image_file, load_rgb

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = [
    "source", "split", "row", "col", "x0", "y0", "x1", "y1", "emotion", "gender", "kept", "reason",
    "path", "intensity", "layout", "layout_method", "layout_evidence", "n_faces", "face_frac", "blur", "brightness",
    "clipped", "contrast", "phash", "grid_sha256",
]


class GridInputError(ValueError):
    """A raw grid folder or image that cannot be extracted; the message names the file and the fix."""


# --------------------------------------------------------------------------- geometry


def parse_layout(text: str) -> tuple[int, int]:
    """'6x6' -> (6, 6) as (rows, cols)."""
    try:
        rows, cols = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"layout {text!r} is not ROWSxCOLS (e.g. 6x6) or 'auto'") from None
    if rows < 1 or cols < 1:
        raise ValueError(f"layout {text!r} needs at least one row and column")
    return rows, cols


def edges(length: int, parts: int) -> list[int]:
    """Exact integer cell edges: ``parts`` cells cover ``0..length``, no pixel lost or doubled."""
    return [round(i * length / parts) for i in range(parts + 1)]


@dataclass
class Layout:
    """Cell edges in source pixels and how they were found."""

    row_edges: list[int]
    col_edges: list[int]
    method: str = "uniform"
    note: str = ""
    evidence: str = ""  # how the layout was chosen: the winning candidate, the runner-up and the margin

    @property
    def rows(self) -> int:
        return len(self.row_edges) - 1

    @property
    def cols(self) -> int:
        return len(self.col_edges) - 1

    @property
    def name(self) -> str:
        return f"{self.rows}x{self.cols}"

    def boxes(self) -> list[tuple[int, int, int, int, int, int]]:
        """(row, col, x0, y0, x1, y1) per cell, row-major."""
        return [
            (r, c, self.col_edges[c], self.row_edges[r], self.col_edges[c + 1], self.row_edges[r + 1])
            for r in range(self.rows)
            for c in range(self.cols)
        ]


def uniform_layout(width: int, height: int, rows: int, cols: int) -> Layout:
    return Layout(edges(height, rows), edges(width, cols), "uniform")


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of consecutive True runs."""
    padded = np.concatenate([[False], mask, [False]])
    change = np.flatnonzero(np.diff(padded.astype(int)))
    return list(zip(change[::2], change[1::2], strict=True))


def _gutter_edges(gray: np.ndarray, axis: int, max_std: float = 0.035) -> list[int] | None:
    """Interior cell edges from gutters: full-length lines of near-constant colour."""
    length = gray.shape[1 - axis]
    line_std = gray.std(axis=axis)
    bands = [(a, b) for a, b in _runs(line_std < max_std) if a > 0 and b < length]  # interior bands only
    centres: list[int] = []
    for a, b in bands:  # bands closer than a plausible cell are one gutter
        centre = int(round((a + b) / 2))
        if centres and centre - centres[-1] < length // 12:
            continue
        centres.append(centre)
    centres = [c for c in centres if min(c, length - c) >= length // 12]
    return centres or None


def _seam_edges(gray: np.ndarray, axis: int, min_ratio: float = 3.0, max_cells: int = 10) -> list[int] | None:
    """Interior edges from seams: lines where the picture jumps along the whole length
    (abutting portraits), found as strong, spaced peaks of the mean absolute difference."""
    length = gray.shape[1 - axis]
    jump = np.abs(np.diff(gray, axis=1 - axis)).mean(axis=axis)  # jump[i]: between line i and i+1
    baseline = np.median(jump) + 1e-6
    score = jump / baseline
    min_gap = length // (max_cells + 2)
    peaks = []
    for i in np.argsort(-score):
        if score[i] < min_ratio:
            break
        if min(i + 1, length - i - 1) < min_gap or any(abs(i - p) < min_gap for p in peaks):
            continue
        peaks.append(int(i))
    return sorted(p + 1 for p in peaks) or None


def _cluster_1d(values: np.ndarray, min_gap: float) -> list[np.ndarray]:
    order = np.sort(values)
    splits = np.flatnonzero(np.diff(order) > min_gap) + 1
    return np.split(order, splits)


def _face_edges(centres: np.ndarray, sizes: np.ndarray, length: int) -> list[int] | None:
    """Interior edges halfway between clusters of face centres along one axis."""
    if len(centres) < 2:
        return None
    clusters = _cluster_1d(centres, 0.5 * float(np.median(sizes)))
    if len(clusters) < 2:
        return None
    means = [float(c.mean()) for c in clusters]
    return [int(round((a + b) / 2)) for a, b in zip(means, means[1:], strict=False) if 0 < (a + b) / 2 < length]


def cascade_layout(
    rgb: np.ndarray, expected: tuple[int, int] | None = None, detector: FaceDetector | None = None
) -> Layout:
    """The structural layout (``layout_strategy='cascade'``, the chooser before evidence): per axis,
    gutters first, then seams, then clustered face detections, else the expected uniform split."""
    gray = _gray(rgb)
    height, width = gray.shape
    found: dict[str, tuple[list[int], str]] = {}
    boxes = None
    for axis_name, axis, length in (("rows", 1, height), ("cols", 0, width)):
        inner = _gutter_edges(gray, axis)
        method = "gutters"
        if inner is None:
            inner, method = _seam_edges(gray, axis), "seams"
        if inner is None and detector is not None:
            if boxes is None:
                boxes = detector.detect_grid(rgb)
            if len(boxes):
                centre = (boxes[:, 1] + boxes[:, 3] / 2) if axis_name == "rows" else (boxes[:, 0] + boxes[:, 2] / 2)
                inner, method = _face_edges(centre, boxes[:, 3] if axis_name == "rows" else boxes[:, 2], length), "faces"
        if inner is None:
            count = (expected[0] if axis_name == "rows" else expected[1]) if expected else 1
            found[axis_name] = (edges(length, count), "expected")
        else:
            found[axis_name] = ([0, *inner, length], method)
    methods = {found["rows"][1], found["cols"][1]}
    layout = Layout(found["rows"][0], found["cols"][0], "+".join(sorted(methods)))
    if expected and (layout.rows, layout.cols) != tuple(expected):
        layout.note = f"found {layout.name}, expected {expected[0]}x{expected[1]}"
    return layout


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0


# --------------------------------------------------------------------------- layout by evidence

MAX_CELLS = 12  # the most rows or columns a candidate layout may have
EMPTY_COST = 0.02  # score lost per empty cell: a tie-breaker only (detectors miss faces; over-split cells lose on centring)
EXPECTED_BONUS = 0.5  # score added to the expected layout (breaks near-ties in its favour)
MIN_EVIDENCE = 0.25  # fewer faces than this share of the expected cells (or than 3): the structural layout stands


@dataclass(frozen=True)
class Candidate:
    """A candidate layout scored against the faces detected on the whole grid. Each face counts
    up to 1 in the cell that holds its centre: the share of its box inside the cell, times
    (1 - horizontal offset) x (1 - vertical offset) of its centre from the cell's (as shares of
    half the cell). Each face beyond the first in a cell costs 1, each empty cell
    ``EMPTY_COST``; the expected layout gets ``EXPECTED_BONUS``."""

    layout: Layout
    source: str
    score: float
    single: int  # cells holding exactly one face
    crowded: int  # cells holding two or more
    empty: int

    def describe(self) -> str:
        return f"{self.layout.name} {self.source} ({self.score:.1f}: {self.single} single, {self.crowded} crowded, {self.empty} empty)"


@dataclass
class LayoutChoice:
    """The chosen layout, every candidate best first, the faces that decided, and what the
    structural chooser alone would have said."""

    layout: Layout
    candidates: list[Candidate]
    faces: np.ndarray
    structural: Layout

    @property
    def runner_up(self) -> Candidate | None:
        """The best candidate of another shape than the chosen one."""
        return next((c for c in self.candidates[1:] if c.layout.name != self.layout.name), None)


def _fit_edges(lo: np.ndarray, hi: np.ndarray, length: int, parts: int, rounds: int = 5) -> list[int]:
    """``parts`` cells along an axis fitted to face boxes (``lo``..``hi`` per face): start uniform,
    put faces in cells by their centre, move each inner edge halfway between the faces of the
    cell before (median far side) and after (median near side); repeat. Edges between cells
    without faces keep their place."""
    cuts = np.array(edges(length, parts), dtype=float)
    centre = (lo + hi) / 2
    min_step = length / (3 * parts)
    for _ in range(rounds):
        cell = np.searchsorted(cuts[1:-1], centre, side="right")
        moved = cuts.copy()
        for i in range(1, parts):
            before, after = hi[cell == i - 1], lo[cell == i]
            if len(before) and len(after):
                moved[i] = (float(np.median(before)) + float(np.median(after))) / 2
        if np.any(np.diff(moved) < min_step):  # the faces disagree with this many cells
            break
        if np.allclose(moved, cuts, atol=0.5):
            break
        cuts = moved
    return [int(round(v)) for v in cuts]


def _axis_candidates(gray: np.ndarray, axis: int, expected: int, lo: np.ndarray, hi: np.ndarray) -> list[tuple[list[int], str]]:
    """Candidate edges along one axis (``axis`` 1: rows, 0: columns), each with its source."""
    length = gray.shape[1 - axis]
    found: list[tuple[list[int], str]] = [(edges(length, expected), "expected")]
    for source, inner in (("gutters", _gutter_edges(gray, axis)), ("seams", _seam_edges(gray, axis)),
                          ("faces", _face_edges((lo + hi) / 2, hi - lo, length) if len(lo) else None)):
        if inner:
            found.append(([0, *inner, length], source))
    counts = sorted({n for cuts, _ in found for n in (len(cuts) - 2, len(cuts) - 1, len(cuts)) if 1 <= n <= MAX_CELLS})
    for n in counts:
        found.append((edges(length, n), "uniform"))
        if len(lo):
            found.append((_fit_edges(lo, hi, length, n), "fitted"))
    unique: list[tuple[list[int], str]] = []
    for cuts, source in found:  # the first source of (nearly) the same edges names them
        if not any(len(cuts) == len(u) and max(abs(a - b) for a, b in zip(cuts, u, strict=True)) <= 2 for u, _ in unique):
            unique.append((cuts, source))
    return unique


def score_layout(layout: Layout, found: np.ndarray, source: str = "", expected: tuple[int, int] | None = None) -> Candidate:
    """How well ``layout`` explains ``found`` ((N, 4) x, y, w, h face boxes on the whole grid); see :class:`Candidate`."""
    rows, cols = np.asarray(layout.row_edges, dtype=float), np.asarray(layout.col_edges, dtype=float)
    x0, y0 = found[:, 0].astype(float), found[:, 1].astype(float)
    x1, y1 = x0 + found[:, 2], y0 + found[:, 3]
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    r = np.clip(np.searchsorted(rows[1:-1], cy, side="right"), 0, layout.rows - 1)
    c = np.clip(np.searchsorted(cols[1:-1], cx, side="right"), 0, layout.cols - 1)
    ix = np.clip(np.minimum(x1, cols[c + 1]) - np.maximum(x0, cols[c]), 0, None)
    iy = np.clip(np.minimum(y1, rows[r + 1]) - np.maximum(y0, rows[r]), 0, None)
    inside = ix * iy / np.maximum((x1 - x0) * (y1 - y0), 1.0)
    half_w, half_h = (cols[c + 1] - cols[c]) / 2, (rows[r + 1] - rows[r]) / 2
    off_x = np.minimum(np.abs(cx - cols[c] - half_w) / half_w, 1.0)
    off_y = np.minimum(np.abs(cy - rows[r] - half_h) / half_h, 1.0)
    counts = np.bincount(r * layout.cols + c, minlength=layout.rows * layout.cols)
    empty = int((counts == 0).sum())
    score = float((inside * (1 - off_x) * (1 - off_y)).sum()) - float(np.clip(counts - 1, 0, None).sum()) - EMPTY_COST * empty
    if expected and (layout.rows, layout.cols) == tuple(expected):
        score += EXPECTED_BONUS
    return Candidate(layout, source, score, int((counts == 1).sum()), int((counts > 1).sum()), empty)


def choose_layout(rgb: np.ndarray, expected: tuple[int, int], detector: FaceDetector) -> LayoutChoice:
    """The layout that best explains the faces ``detector`` finds on the whole grid, among the
    expected split, gutters, seams, face clusters and the uniform and face-fitted splits near
    them (:func:`score_layout`). When fewer faces are found than ``MIN_EVIDENCE`` of the expected
    cells, the structural :func:`cascade_layout` stands."""
    found = detector.detect_grid(rgb)
    structural = cascade_layout(rgb, expected, None)
    if len(found) < max(3.0, MIN_EVIDENCE * expected[0] * expected[1]):
        structural.method = f"{structural.method} (structure only)"
        structural.evidence = f"{structural.name} by structure: {len(found)} faces found on the grid, too few to weigh layouts"
        return LayoutChoice(structural, [], found, structural)
    gray = _gray(rgb)
    row_cuts = _axis_candidates(gray, 1, expected[0], found[:, 1].astype(float), (found[:, 1] + found[:, 3]).astype(float))
    col_cuts = _axis_candidates(gray, 0, expected[1], found[:, 0].astype(float), (found[:, 0] + found[:, 2]).astype(float))
    scored = [score_layout(Layout(rows, cols), found, row_source if row_source == col_source else f"{row_source}/{col_source}",
                           expected)
              for rows, row_source in row_cuts for cols, col_source in col_cuts]
    if not any((c.layout.row_edges, c.layout.col_edges) == (structural.row_edges, structural.col_edges) for c in scored):
        scored.append(score_layout(Layout(structural.row_edges, structural.col_edges), found, structural.method, expected))
    scored.sort(key=lambda c: -c.score)  # stable: earlier candidates (the expected split first) win ties
    best = scored[0]
    layout = Layout(best.layout.row_edges, best.layout.col_edges, f"evidence: {best.source}")
    if structural.name != layout.name:
        layout.method += f", overrides {structural.method} {structural.name}"
    if (layout.rows, layout.cols) != tuple(expected):
        layout.note = f"found {layout.name}, expected {expected[0]}x{expected[1]}"
    lost: dict[str, str] = {}
    for c in scored[1:]:  # the best candidate of each other shape
        if c.layout.name != layout.name and c.layout.name not in lost:
            lost[c.layout.name] = f"{c.describe()}, margin {best.score - c.score:.1f}"
    losers = list(lost.values())
    layout.evidence = (f"{layout.name} by evidence from {len(found)} faces: {best.describe()}"
                       + (f"; runner-up {losers[0]}" if losers else "")
                       + (f"; also lost: {'; '.join(losers[1:4])}" if len(losers) > 1 else ""))
    return LayoutChoice(layout, scored, found, structural)


def find_layout(
    rgb: np.ndarray, expected: tuple[int, int] | None = None, detector: FaceDetector | None = None,
    strategy: str = "evidence",
) -> Layout:
    """The grid's real layout: ``'evidence'`` (:func:`choose_layout`; Haar when no detector is
    given) or ``'cascade'`` (:func:`cascade_layout`, structure first)."""
    if strategy == "cascade":
        return cascade_layout(rgb, expected, detector)
    if strategy != "evidence":
        raise ValueError(f"layout strategy must be evidence or cascade, not {strategy!r}")
    if detector is None or detector.name == "none":
        detector = make_detector("haar")
    return choose_layout(rgb, expected or (6, 6), detector).layout


# --------------------------------------------------------------------------- detection


class FaceDetector:
    """Faces as (N, 4) int arrays of x, y, w, h boxes: in one cell, in many, on a whole grid."""

    name = "none"

    def detect(self, rgb: np.ndarray) -> np.ndarray:
        return self.detect_cells([rgb])[0]

    def detect_cells(self, cells: list[np.ndarray]) -> list[np.ndarray]:
        return [np.zeros((0, 4), dtype=int) for _ in cells]

    def detect_grid(self, rgb: np.ndarray) -> np.ndarray:
        return np.zeros((0, 4), dtype=int)


def _boxes(detection: faces.Detection) -> np.ndarray:
    """x, y, w, h boxes (float) of a detection."""
    return np.array([(x0, y0, x1 - x0, y1 - y0) for x0, y0, x1, y1 in (f.box for f in detection.faces)], dtype=float).reshape(-1, 4)


def _in_cell(boxes: np.ndarray, scale: float, offset: tuple[int, int], shape: tuple[int, ...]) -> np.ndarray:
    """Boxes found on a cell's square (:func:`_square`) as int boxes of the cell, largest first:
    cut to the cell; those mostly outside it (a neighbour's face leaking in) or centred inside a
    larger box (the same face found twice) dropped."""
    height, width = shape[:2]
    out: list[tuple[int, int, int, int]] = []
    for x, y, w, h in sorted(boxes.tolist(), key=lambda b: -b[2] * b[3]):
        x0, y0 = (x - offset[0]) / scale, (y - offset[1]) / scale
        x1, y1 = x0 + w / scale, y0 + h / scale
        cx0, cy0, cx1, cy1 = max(x0, 0.0), max(y0, 0.0), min(x1, width), min(y1, height)
        if cx1 <= cx0 or cy1 <= cy0 or (cx1 - cx0) * (cy1 - cy0) < 0.5 * max((x1 - x0) * (y1 - y0), 1.0):
            continue
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        if any(a <= cx <= a + bw and b <= cy <= b + bh for a, b, bw, bh in out):
            continue
        out.append((int(round(cx0)), int(round(cy0)), int(round(cx1 - cx0)), int(round(cy1 - cy0))))
    return np.array(out, dtype=int).reshape(-1, 4)


CELL_SIDE = 160  # cells are searched as CELL_SIDE x CELL_SIDE squares (longer side scaled, shorter side padded)


def _square(cell: np.ndarray) -> tuple[np.ndarray, float, tuple[int, int]]:
    """The cell scaled so its longer side is ``CELL_SIDE`` and padded (edges repeated) to a
    square; with the scale and the (x, y) offset of the cell in the square."""
    height, width = cell.shape[:2]
    scale = CELL_SIDE / max(height, width)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    small = cv2.resize(cell, (w, h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    left, top = (CELL_SIDE - w) // 2, (CELL_SIDE - h) // 2
    square = cv2.copyMakeBorder(small, top, CELL_SIDE - h - top, left, CELL_SIDE - w - left, cv2.BORDER_REPLICATE)
    return square, scale, (left, top)


GRID_PREPARATION = faces.Preparation(min_side=0, pad=0.02)
GRID_SIDE = 480  # a whole grid is searched at most this large (faces of a 12x12 grid stay >= 30 px)
GRID_MIN_FACE = 1 / (MAX_CELLS + 2)  # the smallest face searched on a whole grid, as a share of its side


def _turn(rgb: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """The image turned by ``angle`` degrees (counter-clockwise) about its centre, edges repeated,
    and the 2x3 matrix that maps points of the turned image back to the original."""
    h, w = rgb.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(rgb, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE), cv2.invertAffineTransform(matrix)


class _FacesAdapter(FaceDetector):
    """A pair of :mod:`fercore.faces` detectors: ``cell`` for each cell (padded and upscaled when
    small by its preparation: faces that touch the edge or fill the cell) and ``grid`` once on
    the whole grid, downscaled, for the layout evidence. A cell where no face is found is
    searched again turned by each of ``angles`` (tilted heads); a face found there keeps its
    size, its centre mapped back."""

    def __init__(self, cell: faces.FaceDetector, grid: faces.FaceDetector, angles: tuple[float, ...] = (20.0, -20.0)):
        self.faces, self.grid, self.angles = cell, grid, angles

    def detect_cells(self, cells: list[np.ndarray]) -> list[np.ndarray]:
        squares = [_square(cell) for cell in cells]  # one size for all: one batch, the same cost for any grid
        found = [_boxes(d) for d in self.faces.detect([sq for sq, _, _ in squares])]
        for angle in self.angles:
            missed = [i for i, boxes in enumerate(found) if len(boxes) == 0]
            if not missed:
                break
            turned = [_turn(squares[i][0], angle) for i in missed]
            for i, (_, back), detection in zip(missed, turned, self.faces.detect([t for t, _ in turned]), strict=True):
                boxes = _boxes(detection)
                if len(boxes) == 1:
                    x, y, w, h = boxes[0]
                    cx, cy = back @ np.array([x + w / 2, y + h / 2, 1.0])
                    found[i] = np.array([[cx - w / 2, cy - h / 2, w, h]])
        return [_in_cell(boxes, scale, offset, cell.shape) for boxes, (_, scale, offset), cell in zip(found, squares, cells, strict=True)]

    def detect_grid(self, rgb: np.ndarray) -> np.ndarray:
        height, width = rgb.shape[:2]
        scale = min(1.0, GRID_SIDE / max(height, width))
        small = rgb if scale == 1.0 else cv2.resize(rgb, (int(round(width * scale)), int(round(height * scale))),
                                                    interpolation=cv2.INTER_AREA)
        (found,) = self.grid.detect([small])
        return np.round(_boxes(found) / scale).astype(int).reshape(-1, 4)


class HaarDetector(_FacesAdapter):
    """OpenCV's frontal-face Haar cascade (ships with opencv-python-headless < 5; offline)."""

    name = "haar"

    def __init__(self, min_neighbors: int = 3, pad: float = 0.15):
        try:
            super().__init__(
                faces.HaarFaces(preparation=faces.Preparation(min_side=0, pad=pad), min_face=0.2,
                                min_neighbors=min_neighbors, quiet=True),
                faces.HaarFaces(preparation=GRID_PREPARATION, min_face=GRID_MIN_FACE, min_neighbors=min_neighbors, quiet=True))
        except faces.FaceDetectorUnavailable as err:
            raise GridInputError(str(err)) from None


class MTCNNDetector(_FacesAdapter):
    """MTCNN (:class:`fercore.faces.MTCNNFaces`; facenet-pytorch, weights inside that package)."""

    name = "mtcnn"

    def __init__(self, threshold: float = 0.8, pad: float = 0.3):
        try:
            super().__init__(faces.MTCNNFaces(preparation=faces.Preparation(min_side=0, pad=pad), min_face=0.2,
                                              min_score=threshold, batch_size=MAX_CELLS * MAX_CELLS),  # a grid: one batch
                             faces.MTCNNFaces(preparation=GRID_PREPARATION, min_face=GRID_MIN_FACE, min_score=threshold))
        except faces.FaceDetectorUnavailable as err:
            raise GridInputError(f"--detector mtcnn: {err}") from None


_DETECTORS = threading.local()


def make_detector(name: str) -> FaceDetector:
    """'haar' | 'mtcnn' | 'none': one instance per process and thread (MTCNN sets its smallest
    face per call, OpenCV's cascade keeps buffers: threads must not share one)."""
    made: dict[str, FaceDetector] = _DETECTORS.__dict__.setdefault("made", {})
    if name not in made:
        made[name] = _new_detector(name)
    return made[name]


def _new_detector(name: str) -> FaceDetector:
    if name == "haar":
        return HaarDetector()
    if name == "mtcnn":
        return MTCNNDetector()
    if name == "none":
        return FaceDetector()
    raise ValueError(f"detector must be haar, mtcnn or none, not {name!r}")


# --------------------------------------------------------------------------- quality


@dataclass(frozen=True)
class QualityThresholds:
    """Rejection thresholds (gray levels scaled to 0-1; blur measured on the exported face)."""

    min_blur: float = 12.0  # variance of the Laplacian (0-255 scale) of the exported face; measured:
    # sharp faces 19-3000 (FER2013 faces upscaled 48 -> 128 px are the softest), Gaussian blur r=5: < 8
    min_brightness: float = 0.12
    max_brightness: float = 0.92
    max_clipped: float = 0.5  # share of pixels at 0-2 or 253-255
    max_empty_variation: float = 0.05  # grey std / mean below this: an empty (flat) cell
    min_contrast: float = 0.04  # grey standard deviation of a face that is not too dark
    min_face_frac: float = 0.08  # detected face area / cell area
    max_duplicate_distance: int = 8  # perceptual-hash Hamming distance of duplicate candidates
    min_duplicate_correlation: float = 0.98  # thumbnail correlation that confirms a duplicate


def phash(gray: np.ndarray) -> int:
    """64-bit perceptual hash: signs of the 8x8 low-frequency DCT of a 32x32 grey image."""
    small = cv2.resize(gray.astype(np.float32), (32, 32), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small)[:8, :8].flatten()
    bits = low > np.median(low[1:])
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def hamming(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


def quality(face_rgb: np.ndarray) -> dict[str, float]:
    """Blur (Laplacian variance of the central 80 %), brightness, clipped share, contrast, perceptual hash."""
    gray = cv2.cvtColor(face_rgb, cv2.COLOR_RGB2GRAY)
    scaled = gray.astype(np.float32) / 255.0
    h, w = gray.shape
    inner = gray[h // 10: h - h // 10, w // 10: w - w // 10]  # the face, not the crop's border
    return {
        "blur": float(cv2.Laplacian(inner, cv2.CV_64F).var()),
        "brightness": float(scaled.mean()),
        "clipped": float(((gray <= 2) | (gray >= 253)).mean()),
        "contrast": float(scaled.std()),
        "phash": phash(gray),
    }


def rejection(scores: dict[str, float], n_faces: int | None, face_frac: float | None, t: QualityThresholds) -> str:
    """The first reason to reject a cell, or '' to keep it."""
    if scores["contrast"] < t.max_empty_variation * max(scores["brightness"], 1e-3):
        return "empty"
    if n_faces is not None and n_faces == 0:
        return "no_face"
    if n_faces is not None and n_faces > 1:
        return "multiple_faces"
    if scores["brightness"] < t.min_brightness:
        return "too_dark"
    if scores["brightness"] > t.max_brightness:
        return "too_bright"
    if scores["clipped"] > t.max_clipped:
        return "clipped"
    if scores["contrast"] < t.min_contrast:
        return "low_contrast"
    if face_frac is not None and face_frac < t.min_face_frac:
        return "face_too_small"
    if scores["blur"] < t.min_blur:
        return "blurred"
    return ""


# --------------------------------------------------------------------------- one grid


@dataclass(frozen=True)
class ExtractOptions:
    """How to extract (the CLI's options)."""

    layout: str = "6x6"  # ROWSxCOLS, or 'auto'
    layout_strategy: str = "evidence"  # auto layout: 'evidence' (candidates weighed by faces) or 'cascade' (structure first)
    expected: str = "6x6"  # what the prompt asked for, compared with an auto layout
    detector: str = "mtcnn"  # per cell: mtcnn (kept most faces on real-photo composites), haar, none
    face_size: int = 128
    margin: float = 0.25  # crop margin around a detected face, as a share of its size
    thresholds: QualityThresholds = field(default_factory=QualityThresholds)


def trim_gutters(rgb: np.ndarray, box: tuple[int, int, int, int], max_std: float = 9.0, max_share: float = 0.2) -> tuple[int, int, int, int]:
    """Shrink a cell box past flat border lines (gutter remains), at most ``max_share`` per side."""
    x0, y0, x1, y1 = box
    gray = cv2.cvtColor(rgb[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY).astype(np.float32)
    h, w = gray.shape
    top, bottom, left, right = 0, h, 0, w
    while top < h * max_share and gray[top].std() < max_std:
        top += 1
    while h - bottom < h * max_share and gray[bottom - 1].std() < max_std:
        bottom -= 1
    while left < w * max_share and gray[:, left].std() < max_std:
        left += 1
    while w - right < w * max_share and gray[:, right - 1].std() < max_std:
        right -= 1
    return x0 + left, y0 + top, x0 + right, y0 + bottom


def _crop_box(cell: tuple[int, int, int, int], face: np.ndarray | None, margin: float) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = cell
    if face is None:
        return cell
    fx, fy, fw, fh = (int(v) for v in face)
    side = int(round(max(fw, fh) * (1 + 2 * margin)))
    cx, cy = x0 + fx + fw / 2, y0 + fy + fh / 2
    side = min(side, x1 - x0, y1 - y0)
    left = int(round(min(max(cx - side / 2, x0), x1 - side)))
    top = int(round(min(max(cy - side / 2, y0), y1 - side)))
    return left, top, left + side, top + side


def grid_layout(rgb: np.ndarray, expected: tuple[int, int], options: ExtractOptions) -> Layout:
    """The layout of one grid under ``options``: a uniform split, or ``auto`` by
    ``options.layout_strategy`` (evidence: faces found by the extraction detector, Haar when it is 'none')."""
    if options.layout != "auto":
        return uniform_layout(rgb.shape[1], rgb.shape[0], *parse_layout(options.layout))
    detector = make_detector(options.detector)
    if options.layout_strategy == "cascade":
        return cascade_layout(rgb, expected, detector if detector.name != "none" else None)
    if options.layout_strategy != "evidence":
        raise ValueError(f"layout_strategy must be evidence or cascade, not {options.layout_strategy!r}")
    choice = choose_layout(rgb, expected, detector if detector.name != "none" else make_detector("haar"))
    return choice.layout


def extract_grid(image_path: str, split: str, meta: dict[str, Any], out_dir: str, options: ExtractOptions) -> list[dict[str, Any]]:
    """Manifest rows for one grid image; writes its kept faces (atomically). Never modifies the source."""
    path = Path(image_path)
    try:
        rgb = np.asarray(load_rgb(path))
    except Exception as err:
        raise GridInputError(f"{path}: cannot read the image ({type(err).__name__}: {err}); remove or replace it") from None
    expected = parse_layout(str(meta.get("layout") or options.expected))  # grids.csv may record what was asked
    layout = grid_layout(rgb, expected, options)
    if layout.evidence:
        log.info("%s: %s", path.name, layout.evidence)
    detector = make_detector(options.detector)
    boxes = layout.boxes()
    found = detector.detect_cells([rgb[y0:y1, x0:x1] for _, _, x0, y0, x1, y1 in boxes]) if detector.name != "none" else None
    grid_hash = sha256_file(path)
    emotion, gender = meta["emotion"], meta.get("gender", "")
    rows: list[dict[str, Any]] = []
    kept: list[tuple[Path, Image.Image]] = []
    for k, (r, c, x0, y0, x1, y1) in enumerate(boxes):
        n_faces = face_frac = None
        face = None
        if found is not None:
            n_faces = len(found[k])
            if n_faces == 1:
                face = found[k][0]
                face_frac = float(face[2] * face[3]) / float((x1 - x0) * (y1 - y0))
        box = _crop_box((x0, y0, x1, y1), face, options.margin) if face is not None else trim_gutters(rgb, (x0, y0, x1, y1))
        crop = Image.fromarray(rgb[box[1]:box[3], box[0]:box[2]]).resize((options.face_size,) * 2, Image.LANCZOS)
        face_rgb = np.asarray(crop)
        scores = quality(face_rgb)
        reason = rejection(scores, n_faces, face_frac, options.thresholds)
        rel = f"{split}/{emotion.lower()}/{path.stem}_r{r}c{c}.png"
        if not reason:
            kept.append((Path(out_dir) / rel, crop))
        rows.append({
            "source": str(path), "split": split, "row": r, "col": c,
            "x0": box[0], "y0": box[1], "x1": box[2], "y1": box[3],
            "emotion": emotion, "gender": gender, "kept": not reason, "reason": reason,
            "path": rel if not reason else "", "intensity": meta.get("intensity", ""),
            "layout": layout.name + (f" ({layout.note})" if layout.note else ""), "layout_method": layout.method,
            "layout_evidence": layout.evidence,
            "n_faces": n_faces if n_faces is not None else "", "face_frac": face_frac if face_frac is not None else "",
            **{k: v for k, v in scores.items() if k != "phash"}, "phash": f"{scores['phash']:016x}", "grid_sha256": grid_hash,
        })
    _write_faces(kept)
    return rows


def _write_faces(faces_out: list[tuple[Path, Image.Image]]) -> None:
    """Write a grid's faces (atomically, each synced to disk) a few at a time: each write waits for
    its sync, which the disk groups (measured: 0.6 ms a face with 4 at a time, 4 ms one by one)."""
    def write(item: tuple[Path, Image.Image]) -> None:
        write_image(item[0], item[1], compress_level=1)  # lossless all the same; 2x faster than the default 6

    if faces_out:
        with ThreadPoolExecutor(max_workers=min(4, len(faces_out))) as pool:
            for _ in pool.map(write, faces_out):
                pass


# --------------------------------------------------------------------------- folders


def plan_inputs(raw_dir: str | Path) -> list[tuple[str, str, dict[str, Any]]]:
    """(image path, split, metadata) for every grid under ``raw_dir/<split>/``, checked up front."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise GridInputError(f"{raw_dir} does not exist: expected {raw_dir}/<split>/*.png with a grids.csv")
    splits = sorted(p for p in raw_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not splits:
        raise GridInputError(f"{raw_dir} has no split folders (train/, test/ ...)")
    jobs = []
    for split_dir in splits:
        images = sorted(p for p in split_dir.iterdir() if p.is_file() and is_image_file(p))
        others = sorted(p.name for p in split_dir.iterdir() if p.is_file() and not is_image_file(p) and p.name != "grids.csv")
        if others:
            raise GridInputError(f"{split_dir}: not images: {', '.join(others[:5])}; move them out of the grid folder")
        table = _grids_table(split_dir)
        listed = set(table.index)
        missing = sorted(listed - {p.name for p in images})
        if missing:
            raise GridInputError(f"{split_dir / 'grids.csv'} lists files that do not exist: {', '.join(missing[:5])}")
        for image in images:
            if image.name not in listed:
                raise GridInputError(f"{image} has no row in {split_dir / 'grids.csv'}; add one (file, emotion, gender)")
            _check_header(image, str(table.loc[image.name].get("layout", "") or "6x6"))
            meta = table.loc[image.name].to_dict()
            try:
                meta["emotion"] = canonical_name(str(meta["emotion"]))
            except UnknownLabelError as err:
                raise GridInputError(f"{split_dir / 'grids.csv'}, {image.name}: {err}") from None
            jobs.append((str(image), split_dir.name, meta))
    if not jobs:
        raise GridInputError(f"{raw_dir}: no grid images found")
    return jobs


def _check_header(path: Path, layout: str) -> None:
    """Fail before any work on files that are not images, far from square or too small."""
    try:
        with Image.open(path) as handle:
            width, height = handle.size
    except Exception as err:
        raise GridInputError(f"{path}: not a readable image ({type(err).__name__}: {err}); remove or replace it") from None
    if max(width, height) > 1.5 * min(width, height):
        raise GridInputError(f"{path}: {width}x{height} is far from square; grid images are square (e.g. 1024x1024)")
    rows, cols = parse_layout(layout) if "x" in layout else (6, 6)
    if min(width, height) < 16 * max(rows, cols):
        raise GridInputError(f"{path}: {width}x{height} is too small for a {rows}x{cols} grid of faces (>= {16 * max(rows, cols)} px)")


def _grids_table(split_dir: Path) -> pd.DataFrame:
    csv = split_dir / "grids.csv"
    if not csv.is_file():
        raise GridInputError(f"{csv} is missing: each split folder needs grids.csv with columns file, emotion, gender")
    table = pd.read_csv(csv, dtype=str).fillna("")
    needed = {"file", "emotion"} - set(table.columns)
    if needed:
        raise GridInputError(f"{csv} lacks columns {sorted(needed)}")
    return table.set_index("file")


def _record_path(out_dir: Path, image: str, split: str, meta: dict[str, Any]) -> Path:
    """Where a finished grid is recorded: by content hash, name and its grids.csv row (identical
    files under two names are two grids; a changed file or relabelled row is a new grid)."""
    row = hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return out_dir / ".grids" / f"{split}__{Path(image).name}__{sha256_file(image)[:16]}__{row}.csv"


def _drop_stale_records(out_dir: Path, image: str, split: str, current: Path) -> None:
    """Remove the faces and records of earlier extractions of this grid (another file version,
    label or option set), so that a redone grid leaves no stale face behind."""
    for old in (out_dir / ".grids").glob(f"{split}__{Path(image).name}__*.csv"):
        if old == current:
            continue
        for rel in pd.read_csv(old, usecols=["path"], dtype=str)["path"].dropna():
            (out_dir / rel).unlink(missing_ok=True)
        old.unlink()


def _check_options(out_dir: Path, options: ExtractOptions, force: bool) -> None:
    """Refuse to mix faces extracted with other options into ``out_dir`` (``--force`` redoes all)."""
    record = out_dir / ".grids" / "options.json"
    now = json.loads(json.dumps(asdict(options), default=str))
    if record.is_file() and not force:
        before = json.loads(record.read_text())
        changed = [f"{k}: {before.get(k)!r} -> {v!r}" for k, v in now.items() if before.get(k) != v]
        if changed:
            raise GridInputError(f"{out_dir} was extracted with other options ({'; '.join(changed)}); "
                                 "pass --force to redo every grid with the new ones, or choose another output folder")
    write_json(record, now)


def _load_record(path: Path) -> pd.DataFrame:
    text = ["reason", "path", "gender", "intensity", "layout_method", "layout_evidence"]
    table = pd.read_csv(path, dtype={"phash": str, **dict.fromkeys(text, str)})
    table = table.reindex(columns=list(dict.fromkeys([*table.columns, *MANIFEST_COLUMNS])), fill_value="")  # older records
    table[text] = table[text].fillna("")
    return table.assign(kept=table["kept"].astype(bool))


def _run_grid(job: tuple[str, str, dict[str, Any], str, ExtractOptions]) -> str:
    image, split, meta, out_dir, options = job
    rows = extract_grid(image, split, meta, out_dir, options)
    record = _record_path(Path(out_dir), image, split, meta)
    _drop_stale_records(Path(out_dir), image, split, record)
    write_csv(record, pd.DataFrame(rows, columns=MANIFEST_COLUMNS))
    return image


@contextmanager
def _one_thread_each() -> Iterator[None]:
    """While grids are extracted in several threads: one thread for torch and OpenCV inside each,
    so they do not oversubscribe the cores (measured: 2 torch threads beside a busy core made
    MTCNN 15x slower); the caller's settings are put back after."""
    import torch

    before = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])


def _thumbnail(path: Path) -> np.ndarray:
    gray = cv2.resize(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    gray -= gray.mean()
    return gray / (np.linalg.norm(gray) + 1e-6)


def _restore_face(row: pd.Series, target: Path, face_size: int) -> None:
    crop = load_rgb(row["source"]).crop((int(row["x0"]), int(row["y0"]), int(row["x1"]), int(row["y1"])))
    write_image(target, crop.resize((face_size, face_size), Image.LANCZOS))


def _mark_duplicates(manifest: pd.DataFrame, out_dir: Path, t: QualityThresholds, face_size: int) -> pd.DataFrame:
    """Reject later near-duplicates of earlier kept faces (sorted order: deterministic), removing their files.

    Candidates share a perceptual hash within ``max_duplicate_distance`` bits; a candidate is a
    duplicate when the two faces' 32x32 grey thumbnails also correlate above ``min_duplicate_correlation``
    (centred portraits of different people can share a coarse hash, not their pixels).
    """
    kept: list[tuple[str, Path]] = []
    hashes = np.zeros(int(manifest["kept"].sum()), dtype=np.uint64)  # of the faces in ``kept``, in order
    thumbs: dict[Path, np.ndarray] = {}

    def thumb(path: Path) -> np.ndarray:
        if path not in thumbs:
            thumbs[path] = _thumbnail(path)
        return thumbs[path]

    for i in manifest.index[manifest["kept"]]:
        value, face = int(manifest.at[i, "phash"], 16), out_dir / manifest.at[i, "path"]
        if not face.is_file():  # removed as a duplicate by an earlier run: crop it again from the source
            _restore_face(manifest.loc[i], face, face_size)
        near = np.flatnonzero(np.bitwise_count(hashes[:len(kept)] ^ np.uint64(value)) <= t.max_duplicate_distance)
        twin = next((kept[k][0] for k in near if float((thumb(face) * thumb(kept[k][1])).sum()) >= t.min_duplicate_correlation),
                    None)
        if twin is None:
            hashes[len(kept)] = value
            kept.append((f"{Path(manifest.at[i, 'source']).name} r{manifest.at[i, 'row']}c{manifest.at[i, 'col']}", face))
            continue
        face.unlink(missing_ok=True)
        manifest.loc[i, ["kept", "reason", "path"]] = [False, f"duplicate of {twin}", ""]
    return manifest


def extract_grids(
    raw_dir: str | Path,
    out_dir: str | Path,
    options: ExtractOptions | None = None,
    *,
    workers: int = 1,
    force: bool = False,
    progress: bool = True,
    contact_sheets: bool = True,
) -> pd.DataFrame:
    """Extract every grid; returns the manifest (also written to ``out_dir/manifest.csv``)."""
    options = options or ExtractOptions()
    out_dir = Path(out_dir)
    if out_dir.resolve() == Path(raw_dir).resolve() or Path(raw_dir).resolve() in out_dir.resolve().parents:
        raise GridInputError(f"write the faces outside the raw folder {raw_dir} (raw data is never modified)")
    jobs = plan_inputs(raw_dir)
    _check_options(out_dir, options, force)
    if options.layout != "auto":
        asked = sorted({str(meta.get("layout")) for _, _, meta in jobs if meta.get("layout") and meta.get("layout") != options.layout})
        if asked:
            log.warning("--layout %s disagrees with grids.csv, whose layout column says %s; the cells may be misaligned "
                        "(use --layout auto or the layout grids.csv gives)", options.layout, ", ".join(asked))
    records = {image: _record_path(out_dir, image, split, meta) for image, split, meta in jobs}
    todo = [(image, split, meta, str(out_dir), options) for image, split, meta in jobs
            if force or not records[image].is_file()]
    if len(todo) < len(jobs):
        log.info("%d of %d grids already extracted; skipping them (--force redoes)", len(jobs) - len(todo), len(jobs))
    bar = tqdm(total=len(todo), desc="extract", unit="grid", disable=not progress)
    if workers > 1 and len(todo) > 1:
        # MTCNN runs torch: threads of this process (torch and OpenCV release the GIL while they compute), since
        # a forked copy of a process whose thread pools already ran (a notebook, a test session) can hang and a
        # spawned one imports torch afresh (seconds). Haar / none: forked processes.
        if options.detector == "mtcnn":
            with _one_thread_each():
                pool = ThreadPoolExecutor(max_workers=workers)
                try:
                    for _ in pool.map(_run_grid, todo):
                        bar.update()
                finally:  # on an error or Ctrl-C: let the running grids finish, start no other
                    pool.shutdown(cancel_futures=True)
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for _ in pool.map(_run_grid, todo):
                    bar.update()
    else:
        for job in todo:
            _run_grid(job)
            bar.update()
    bar.close()
    manifest = pd.concat([_load_record(records[image]) for image, _, _ in jobs], ignore_index=True)[MANIFEST_COLUMNS]
    manifest = _mark_duplicates(manifest, out_dir, options.thresholds, options.face_size)
    _warn_faceless_layout(manifest, options)
    write_csv(out_dir / "manifest.csv", manifest)
    if contact_sheets:
        for source, part in manifest.groupby("source", sort=False):
            contact_sheet(source, part, out_dir / "contact_sheets" / part["split"].iloc[0] / f"{Path(source).stem}.png")
    return manifest


def _warn_faceless_layout(manifest: pd.DataFrame, options: ExtractOptions) -> None:
    """A fixed layout under which most cells of a grid hold no face or several: likely the wrong layout."""
    if options.layout == "auto" or options.detector == "none" or manifest.empty:
        return
    counts = pd.to_numeric(manifest["n_faces"], errors="coerce")
    off = (counts != 1).groupby(manifest["source"]).mean()
    bad = sorted(Path(s).name for s in off[off > 0.5].index)
    if bad:
        log.warning("--layout %s: in %d grid(s) most cells hold no face or several (%s); the layout is probably wrong: "
                    "try --layout auto", options.layout, len(bad), ", ".join(bad[:5]))


def summary_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """Kept and rejected cells by reason, per emotion and gender."""
    reason = manifest["reason"].where(~manifest["kept"], "kept").str.replace(r"duplicate of .*", "duplicate", regex=True)
    return pd.crosstab([manifest["emotion"], manifest["gender"]], reason, margins=True, margins_name="total")


def contact_sheet(source: str, rows: pd.DataFrame, path: Path, width: int = 768) -> Path:
    """The grid, downscaled, with kept cells outlined green and rejected ones red with their reason."""
    image = load_rgb(source)
    scale = width / image.width
    sheet = image.resize((width, int(round(image.height * scale))), Image.BILINEAR)
    draw = ImageDraw.Draw(sheet)
    for row in rows.itertuples(index=False):
        box = [row.x0 * scale, row.y0 * scale, row.x1 * scale - 1, row.y1 * scale - 1]
        colour = (40, 200, 60) if row.kept else (230, 40, 40)
        draw.rectangle(box, outline=colour, width=3)
        if not row.kept:
            draw.rectangle([box[0] + 3, box[1] + 3, box[0] + 6 * len(row.reason[:18]) + 6, box[1] + 15], fill=(255, 255, 255))
            draw.text((box[0] + 5, box[1] + 4), row.reason[:18], fill=colour)
    return write_image(path, sheet)
