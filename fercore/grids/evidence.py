"""Layout by evidence: the structural cues of a grid (gutters, seams, clusters of faces), the
structural cascade, and the candidate layouts scored against the faces found on the whole grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fercore.grids.detectors import FaceDetector, make_detector
from fercore.grids.layout import MAX_CELLS, Layout, edges

# --------------------------------------------------------------------------- structural cues


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
