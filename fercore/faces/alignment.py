"""Alignment to a canonical frame: a similarity transform (rotation, uniform scale, shift) that
puts the eyes level at fixed positions of a :class:`CanonicalFrame`, applied to the image
(:func:`align_image`) or to a map (Grad-CAM ...) computed on it (:func:`align_map`).

Coordinates follow :mod:`fercore.faces.detection`: pixels, x right, y down, pixel centres at whole numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from fercore.faces.detection import ImageLike, as_rgb


@dataclass(frozen=True)
class CanonicalFrame:
    """Where aligned faces go: a ``width`` x ``height`` image with the eye line at ``eye_y`` (share
    of the height), the eyes ``eye_distance`` (share of the width) apart, centred on ``eye_x``.

    The default (eyes about 40 % down, 0.36 of the width apart, face filling the frame) is the
    frame RQ3 averages its maps in; nose and mouth positions serve the least-squares fit on all
    five points and the canonical regions drawn on those maps (:mod:`fercore.faces.regions`).
    """

    width: int = 128
    height: int = 128
    eye_y: float = 0.40
    eye_distance: float = 0.36
    eye_x: float = 0.50
    nose_y: float = 0.60  # typical nose-tip height (share of the height), for the five-point fit
    mouth_y: float = 0.78  # typical mouth-corner height
    mouth_width: float = 0.30  # typical distance between the mouth corners (share of the width)

    def eyes(self) -> np.ndarray:
        """The canonical eye centres (2, 2) in the frame's pixels (left eye first)."""
        return self.template()[:2]

    def template(self) -> np.ndarray:
        """All five canonical landmarks (5, 2) in the frame's pixels."""
        half_eye, half_mouth = self.eye_distance / 2, self.mouth_width / 2
        fractions = np.array([[self.eye_x - half_eye, self.eye_y], [self.eye_x + half_eye, self.eye_y],
                              [self.eye_x, self.nose_y], [self.eye_x - half_mouth, self.mouth_y],
                              [self.eye_x + half_mouth, self.mouth_y]])
        return fractions * [self.width, self.height] - 0.5

    @classmethod
    def from_framing(cls, stats: Mapping[str, Any], width: int = 128, height: int | None = None) -> CanonicalFrame:
        """A frame with a set's median eye position and inter-ocular distance (a row of
        :func:`framing_table`), e.g. to crop synthetic faces like a real set's."""
        missing = [k for k in ("eye_x", "eye_y", "iod", "mouth_y") if not np.isfinite(float(stats.get(k, np.nan)))]
        if missing:
            raise ValueError(f"these framing statistics are missing (no landmarks found?): {missing}")
        base = cls()
        return cls(width=width, height=height or width, eye_y=float(stats["eye_y"]), eye_distance=float(stats["iod"]),
                   eye_x=float(stats["eye_x"]), mouth_y=float(stats["mouth_y"]),
                   nose_y=float(stats["eye_y"]) + (base.nose_y - base.eye_y) / (base.mouth_y - base.eye_y)
                   * (float(stats["mouth_y"]) - float(stats["eye_y"])))


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity (rotation, uniform scale, shift; no reflection) that maps ``src`` points
    onto ``dst`` in the least-squares sense (Umeyama 1991); exact for two distinct points."""
    src, dst = np.asarray(src, dtype=float).reshape(-1, 2), np.asarray(dst, dtype=float).reshape(-1, 2)
    if len(src) != len(dst) or len(src) < 2:
        raise ValueError(f"need two or more matching points, got {len(src)} and {len(dst)}")
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - mu_s, dst - mu_d
    var = (s ** 2).sum() / len(src)
    if var <= 1e-12:
        raise ValueError("the source points coincide; no transform is defined")
    u, sigma, vt = np.linalg.svd(d.T @ s / len(src))
    sign = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rotation = u @ sign @ vt
    scale = float(np.trace(np.diag(sigma) @ sign)) / var
    return np.hstack([scale * rotation, (mu_d - scale * rotation @ mu_s)[:, None]])


def alignment_matrix(landmarks: np.ndarray, frame: CanonicalFrame | None = None, *, points: str = "eyes") -> np.ndarray:
    """The 2x3 matrix from image pixels to ``frame`` pixels for a face's (5, 2) landmarks.

    ``points='eyes'`` puts the two eye centres exactly on the frame's (eyes level, fixed
    inter-ocular distance and position); ``'all'`` fits all five points to the frame's template
    in the least-squares sense (steadier when one eye is poorly placed, eyes then only near
    their positions).
    """
    frame = frame or CanonicalFrame()
    landmarks = np.asarray(landmarks, dtype=float).reshape(5, 2)
    if points == "eyes":
        return similarity_transform(landmarks[:2], frame.eyes())
    if points == "all":
        return similarity_transform(landmarks, frame.template())
    raise ValueError(f"points must be 'eyes' or 'all', not {points!r}")


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (..., 2) points."""
    points = np.asarray(points, dtype=float)
    return points @ np.asarray(matrix)[:, :2].T + np.asarray(matrix)[:, 2]


def align_image(image: ImageLike, matrix: np.ndarray, frame: CanonicalFrame | None = None, *,
                border: str = "replicate") -> np.ndarray:
    """The image warped into ``frame`` (``matrix`` from :func:`alignment_matrix`), RGB uint8;
    outside the source, ``border`` 'replicate' repeats its edge, 'constant' is black."""
    frame = frame or CanonicalFrame()
    rgb = as_rgb(image)
    mode = {"replicate": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT}[border]
    return cv2.warpAffine(rgb, np.asarray(matrix, dtype=np.float64), (frame.width, frame.height),
                          flags=cv2.INTER_LINEAR, borderMode=mode)


def align_map(values: np.ndarray, matrix: np.ndarray, image_size: tuple[int, int], frame: CanonicalFrame | None = None,
              *, fill: float = 0.0) -> np.ndarray:
    """A map computed on the original image (e.g. a Grad-CAM at the model's input size) warped
    into ``frame`` with the image's ``matrix``. ``image_size`` is the original (width, height);
    the map may have any resolution covering the same field. Outside it: ``fill``."""
    frame = frame or CanonicalFrame()
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2:
        raise ValueError(f"expected a 2-D map, got shape {values.shape}")
    width, height = image_size
    h, w = values.shape
    # map pixel u -> image pixel x = (u + 0.5) * W / w - 0.5 (same field, other resolution)
    to_image = np.array([[width / w, 0.0, 0.5 * width / w - 0.5], [0.0, height / h, 0.5 * height / h - 0.5], [0, 0, 1]])
    combined = np.vstack([np.asarray(matrix, dtype=float), [0, 0, 1]]) @ to_image
    return cv2.warpAffine(values, combined[:2], (frame.width, frame.height), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=float(fill))
