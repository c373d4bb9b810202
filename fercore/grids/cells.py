"""Cells to faces: where the face is cropped and the crop resized to the exported face size.

``--crop cell``: in the cell, around a detected face (clamped to the cell) or past the gutters.
``--crop face``: around the detected face box with one named :class:`Framing` for the whole set,
not clamped to the cell; the part past the canvas padded (:func:`crop_padded`)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image


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


def crop_box(cell: tuple[int, int, int, int], face: np.ndarray | None, margin: float) -> tuple[int, int, int, int]:
    """A square box around ``face`` (x, y, w, h in the cell) with ``margin`` of its size on each side, kept inside the cell."""
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


def crop_resized(rgb: np.ndarray, box: tuple[int, int, int, int], size: int) -> Image.Image:
    """The ``(x0, y0, x1, y1)`` box of an RGB image as a ``size`` x ``size`` face (Lanczos)."""
    x0, y0, x1, y1 = box
    return Image.fromarray(rgb[y0:y1, x0:x1]).resize((size, size), Image.LANCZOS)


# --------------------------------------------------------------------------- face-centred crops


@dataclass(frozen=True)
class Framing:
    """Where a face goes in a face-centred crop (``--crop face``), one for the whole set: the
    detected face box's width as a share of the (square) crop side and its centre in the crop."""

    name: str
    box_w: float
    box_cx: float = 0.5
    box_cy: float = 0.5

    def text(self) -> str:
        return f"{self.name} (face box {self.box_w:.2f} of the crop width, centred at {self.box_cx:.2f}, {self.box_cy:.2f})"


#: Named framings. ``fer2013``: the median MTCNN box on 150 FER2013 train faces (box 0.81 of the
#: image wide, centre 0.48, 0.50, measured with :func:`fercore.faces.framing_stats`), so extracted
#: faces are framed like the real set; ``portrait``: a looser frame with hair and chin inside.
FRAMINGS = {"fer2013": Framing("fer2013", 0.81), "portrait": Framing("portrait", 0.6, 0.5, 0.55)}

#: Padding of face crops past the canvas edge: this constant colour (recorded in the manifest).
PAD_VALUE = 0


def framing(name: str) -> Framing:
    """The framing called ``name`` (:data:`FRAMINGS`)."""
    try:
        return FRAMINGS[name]
    except KeyError:
        raise ValueError(f"framing must be one of {', '.join(FRAMINGS)}, not {name!r}") from None


def face_crop_box(face: tuple[float, float, float, float], frame: Framing) -> tuple[int, int, int, int]:
    """The square crop box (x0, y0, x1, y1, source pixels, may reach past the canvas) that puts
    the ``face`` box (x0, y0, x1, y1) where ``frame`` says, whatever the cell around it."""
    x0, y0, x1, y1 = face
    side = max(1, int(round((x1 - x0) / frame.box_w)))
    left = int(round((x0 + x1) / 2 - frame.box_cx * side))
    top = int(round((y0 + y1) / 2 - frame.box_cy * side))
    return left, top, left + side, top + side


def crop_padded(rgb: np.ndarray, box: tuple[int, int, int, int], size: int) -> tuple[Image.Image, tuple[int, int, int, int], float]:
    """The box as a ``size`` x ``size`` face, the part past the canvas filled with :data:`PAD_VALUE`;
    with the valid (not padded) region of the face (x0, y0, x1, y1 in its pixels, padding rounded
    into it) and the padded share of the box's area."""
    x0, y0, x1, y1 = box
    height, width = rgb.shape[:2]
    side_x, side_y = x1 - x0, y1 - y0
    inner = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if inner == (x0, y0, x1, y1):
        return crop_resized(rgb, box, size), (0, 0, size, size), 0.0
    canvas = np.full((side_y, side_x, 3), PAD_VALUE, dtype=np.uint8)
    if inner[2] > inner[0] and inner[3] > inner[1]:
        canvas[inner[1] - y0:inner[3] - y0, inner[0] - x0:inner[2] - x0] = rgb[inner[1]:inner[3], inner[0]:inner[2]]
    valid = (int(np.ceil((inner[0] - x0) * size / side_x)), int(np.ceil((inner[1] - y0) * size / side_y)),
             int(np.floor((inner[2] - x0) * size / side_x)), int(np.floor((inner[3] - y0) * size / side_y)))
    area = max(0, inner[2] - inner[0]) * max(0, inner[3] - inner[1])
    return Image.fromarray(canvas).resize((size, size), Image.LANCZOS), valid, 1.0 - area / float(side_x * side_y)
