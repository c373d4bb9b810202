"""Cells to faces: where in a cell the face is cropped (around a detected face, or past the
gutters) and the crop resized to the exported face size."""

from __future__ import annotations

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
