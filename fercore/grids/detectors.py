"""Face detectors for grids: one interface (a cell, many cells, a whole grid) over the
:mod:`fercore.faces` detectors (Haar, MTCNN), one instance per process and thread."""

from __future__ import annotations

import threading

import cv2
import numpy as np

from fercore import faces
from fercore.grids.layout import MAX_CELLS, GridInputError


Hint = tuple[float, float, float, float]


class FaceDetector:
    """Faces as (N, 4) int arrays of x, y, w, h boxes: in one cell, in many, on a whole grid."""

    name = "none"

    def detect(self, rgb: np.ndarray) -> np.ndarray:
        return self.detect_cells([rgb])[0]

    def detect_cells(self, cells: list[np.ndarray], hints: list[Hint | None] | None = None) -> list[np.ndarray]:
        """Faces in each cell; ``hints``: per cell, a face already found there (x0, y0, x1, y1 in the
        cell, e.g. on the whole grid) that a detector may confirm instead of searching, or None."""
        return [np.zeros((0, 4), dtype=int) for _ in cells]

    def detect_grid(self, rgb: np.ndarray) -> np.ndarray:
        return np.zeros((0, 4), dtype=int)


def _boxes(detection: faces.Detection) -> np.ndarray:
    """x, y, w, h boxes (float) of a detection."""
    return np.array([(x0, y0, x1 - x0, y1 - y0) for x0, y0, x1, y1 in (f.box for f in detection.faces)], dtype=float).reshape(-1, 4)


def _to_square(box: Hint, square: tuple[np.ndarray, float, tuple[int, int]]) -> Hint:
    """A box of a cell (x0, y0, x1, y1) in the cell's square (:func:`_square`)."""
    _, scale, (left, top) = square
    return box[0] * scale + left, box[1] * scale + top, box[2] * scale + left, box[3] * scale + top


REFINE_MIN_SCORE = 0.98  # a grid face adjusted on its cell is taken when O-net is this sure ...
REFINE_MIN_IOU = 0.7  # ... and the adjusted box overlaps the grid's this much; else the cell is searched


def _confirmed(detection: faces.Detection, given: Hint) -> bool:
    """Whether a refined detection holds one sure face whose box agrees with the box it started from."""
    if len(detection.faces) != 1 or detection.faces[0].score < REFINE_MIN_SCORE:
        return False
    box = np.array(detection.faces[0].box)
    start = np.array(given)
    inter = float(np.prod(np.clip(np.minimum(box[2:], start[2:]) - np.maximum(box[:2], start[:2]), 0, None)))
    union = float(np.prod(box[2:] - box[:2]) + np.prod(start[2:] - start[:2])) - inter
    return union > 0 and inter / union >= REFINE_MIN_IOU


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
    size, its centre mapped back. A cell given a hint (its one face found on the whole grid) is
    not searched when MTCNN's last stage, run on that face alone at the cell's scale, confirms it
    (:data:`REFINE_MIN_SCORE`, :data:`REFINE_MIN_IOU`): that is most of the cells' cost saved."""

    def __init__(self, cell: faces.FaceDetector, grid: faces.FaceDetector, angles: tuple[float, ...] = (20.0, -20.0)):
        self.faces, self.grid, self.angles = cell, grid, angles

    def detect_cells(self, cells: list[np.ndarray], hints: list[Hint | None] | None = None) -> list[np.ndarray]:
        squares = [_square(cell) for cell in cells]  # one size for all: one batch, the same cost for any grid
        found: list[np.ndarray | None] = [None] * len(cells)
        hinted = [i for i, hint in enumerate(hints or []) if hint is not None] if hasattr(self.faces, "refine") else []
        if hinted:  # a face found on the whole grid: its box adjusted on the cell (O-net alone), taken when confirmed
            given = [_to_square(hints[i], squares[i]) for i in hinted]  # type: ignore[index]
            refined = self.faces.refine([squares[i][0] for i in hinted], given)  # type: ignore[attr-defined]
            for i, box, detection in zip(hinted, given, refined, strict=True):
                if _confirmed(detection, box) and len(_in_cell(_boxes(detection), *squares[i][1:], cells[i].shape)) == 1:
                    found[i] = _boxes(detection)
        search = [i for i, boxes in enumerate(found) if boxes is None]
        if search:
            for i, detection in zip(search, self.faces.detect([squares[i][0] for i in search]), strict=True):
                found[i] = _boxes(detection)
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
