"""Face regions from a face's five landmarks, per image, and the share of a map's mass in each.

A face's frame comes from its landmarks (:data:`fercore.faces.LANDMARKS`): the origin halfway
between the eye centres, ``u`` along the line from the left to the right eye, ``v`` at right
angles to it pointing down the face, both in inter-ocular distances (IOD). So the eyes sit at
``(-0.5, 0)`` and ``(0.5, 0)`` whatever the face's size, position and roll in the image.

Regions, as drawn by :func:`label_map` (a pixel belongs to the first that holds it):

* from the landmarks: **eyes** (a box around each eye centre), **nose** (the bridge between the
  eyes down to the nose tip, widening to the nostrils), **mouth** (around the two corners,
  from a line between the nose tip and the higher corner down past the lower lip);
* estimated by fixed face proportions (:class:`Proportions`; MTCNN gives no brow, forehead or
  jaw points): **brows** (a band above the eyes), **forehead** (above the brows), **cheeks**
  (beside the nose and mouth, eye boxes to mouth line), **jaw** (below the mouth line);
* **face_other**: the rest of an ellipse standing for the face outline (temples, brow ends);
  **outside**: everything outside it (hair, background, neck).

The proportions are those of an adult human face (brows 0.2-0.7 IOD above the eye centres,
nose tip about 0.6 below them, mouth corners about 1.0 below and 0.8 apart); the demo
generator draws its faces within the same limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Every region, in the order of :func:`label_map`'s labels.
REGIONS = ("eyes", "brows", "nose", "mouth", "forehead", "cheeks", "jaw", "face_other", "outside")
_INDEX = {name: i for i, name in enumerate(REGIONS)}
#: Region titles for figures and tables.
TITLES = {"eyes": "eyes", "brows": "brows", "nose": "nose", "mouth": "mouth", "forehead": "forehead", "cheeks": "cheeks",
          "jaw": "jaw", "face_other": "rest of face", "outside": "outside face"}
#: One colour per region (colour-blind safe where it matters: eyes, brows, nose, mouth).
COLOURS = {"eyes": "#0072B2", "brows": "#E69F00", "nose": "#009E73", "mouth": "#D55E00", "forehead": "#CC79A7",
           "cheeks": "#56B4E9", "jaw": "#F0E442", "face_other": "#999999", "outside": "#000000"}


@dataclass(frozen=True)
class Proportions:
    """Region sizes in inter-ocular distances (IOD), in the face frame (``u`` across, ``v`` down)."""

    eye_half_width: float = 0.30  # each eye box: centre +- this across (the bridge between is the nose's)
    eye_half_height: float = 0.18  # ... and +- this up and down
    brow_top: float = 0.75  # the brow band: from the eye boxes' top up to this far above the eye line
    brow_half_width: float = 1.0
    nostril_half_width: float = 0.35  # the nose widens from the bridge to this at the tip
    nose_mouth_split: float = 0.4  # the nose / mouth line: this far from the nose tip towards the higher mouth corner
    mouth_side: float = 0.12  # the mouth reaches this far beyond each corner
    mouth_below: float = 0.45  # ... and this far below the corners' mean height (lower lip, open mouth)
    face_half_width: float = 1.15  # the face ellipse: half-width ...
    face_half_height: float = 1.65  # ... half-height ...
    face_centre: float = 0.25  # ... centred this far below the eye line

    @property
    def smallest(self) -> float:
        """The smallest region's shorter side (an eye box), in IOD."""
        return 2 * min(self.eye_half_width, self.eye_half_height)


DEFAULT = Proportions()


class ImplausibleLandmarks(ValueError):
    """Landmarks that cannot be a face's (eyes on one point, mouth above the nose ...)."""


@dataclass(frozen=True)
class FaceFrame:
    """A face's frame from its five landmarks (image pixels, :data:`fercore.faces.LANDMARKS` order)."""

    origin: np.ndarray  # between the eye centres
    across: np.ndarray  # unit vector, left eye -> right eye
    down: np.ndarray  # unit vector at right angles, down the face
    iod: float  # inter-ocular distance in pixels
    nose: np.ndarray  # (u, v) of the nose tip
    mouth: np.ndarray  # (2, 2): (u, v) of the left and right mouth corners

    @classmethod
    def from_landmarks(cls, landmarks: np.ndarray) -> FaceFrame:
        """Raises :class:`ImplausibleLandmarks` when the eyes coincide or the nose tip is not
        below the eye line and above both mouth corners."""
        points = np.asarray(landmarks, dtype=float).reshape(5, 2)
        if not np.isfinite(points).all():
            raise ImplausibleLandmarks("landmarks are not finite")
        left, right = points[0], points[1]
        iod = float(np.linalg.norm(right - left))
        if iod < 1e-3:
            raise ImplausibleLandmarks("the eye centres coincide")
        across = (right - left) / iod
        down = np.array([-across[1], across[0]])
        origin = (left + right) / 2
        uv = np.stack([(points - origin) @ across, (points - origin) @ down], axis=1) / iod
        frame = cls(origin, across, down, iod, uv[2], uv[3:5])
        if not (0.1 < frame.nose[1] < frame.mouth[:, 1].min() - 0.05):
            raise ImplausibleLandmarks(f"nose tip at {frame.nose[1]:.2f} IOD below the eye line, mouth corners at "
                                       f"{frame.mouth[0, 1]:.2f} and {frame.mouth[1, 1]:.2f}: the nose must lie between")
        return frame

    def to_face(self, points: np.ndarray) -> np.ndarray:
        """Image points (..., 2) -> face coordinates (u, v) in IOD."""
        shifted = np.asarray(points, dtype=float) - self.origin
        return np.stack([shifted @ self.across, shifted @ self.down], axis=-1) / self.iod


def label_uv(frame: FaceFrame, uv: np.ndarray, proportions: Proportions = DEFAULT) -> np.ndarray:
    """The region index (into :data:`REGIONS`) of each face-frame point (..., 2)."""
    p = proportions
    u, v = np.asarray(uv, dtype=float)[..., 0], np.asarray(uv, dtype=float)[..., 1]
    labels = np.full(u.shape, _INDEX["outside"], dtype=np.int8)
    inside = (u / p.face_half_width) ** 2 + ((v - p.face_centre) / p.face_half_height) ** 2 <= 1.0
    mouth_line = frame.mouth[:, 1].mean()
    labels[inside] = _INDEX["face_other"]
    labels[inside & (v < -p.brow_top)] = _INDEX["forehead"]
    labels[inside & (v > p.eye_half_height) & (v <= mouth_line)] = _INDEX["cheeks"]
    labels[inside & (v > mouth_line)] = _INDEX["jaw"]
    # the features, later ones taking precedence: mouth, nose, brows, eyes
    nose_u, nose_v = frame.nose
    split = nose_v + p.nose_mouth_split * (frame.mouth[:, 1].min() - nose_v)
    mouth = ((v > split) & (v <= mouth_line + p.mouth_below)
             & (u >= frame.mouth[:, 0].min() - p.mouth_side) & (u <= frame.mouth[:, 0].max() + p.mouth_side))
    bridge = 0.5 - p.eye_half_width
    along = np.clip((v + p.eye_half_height) / (nose_v + p.eye_half_height), 0.0, 1.0)
    widen = np.clip((v - p.eye_half_height) / max(nose_v - p.eye_half_height, 1e-6), 0.0, 1.0)
    nose = (v >= -p.eye_half_height) & (v <= split) & (np.abs(u - nose_u * along) <= bridge + (p.nostril_half_width - bridge) * widen)
    brows = (v >= -p.brow_top) & (v < -p.eye_half_height) & (np.abs(u) <= p.brow_half_width)
    eyes = (np.abs(v) <= p.eye_half_height) & (np.abs(np.abs(u) - 0.5) <= p.eye_half_width)
    for name, mask in (("mouth", mouth), ("nose", nose), ("brows", brows), ("eyes", eyes)):
        labels[mask] = _INDEX[name]
    return labels


def label_points(landmarks: np.ndarray, points: np.ndarray, proportions: Proportions = DEFAULT) -> list[str]:
    """The region name of each image point (k, 2), for a face's landmarks."""
    frame = FaceFrame.from_landmarks(landmarks)
    return [REGIONS[i] for i in label_uv(frame, frame.to_face(np.asarray(points, dtype=float).reshape(-1, 2)), proportions)]


def label_map(landmarks: np.ndarray, image_size: tuple[int, int], shape: tuple[int, int] | None = None,
              proportions: Proportions = DEFAULT) -> np.ndarray:
    """Region index (into :data:`REGIONS`) of every cell of an ``shape`` = (h, w) grid laid over an
    image of ``image_size`` = (width, height) whose face has ``landmarks`` (image pixels), e.g. a
    Grad-CAM map at the model's input size over the image it was computed on. Default: the image's own pixels."""
    width, height = image_size
    h, w = shape or (height, width)
    frame = FaceFrame.from_landmarks(landmarks)
    ys, xs = np.mgrid[0:h, 0:w].astype(float)
    points = np.stack([(xs + 0.5) * width / w - 0.5, (ys + 0.5) * height / h - 0.5], axis=-1)
    return label_uv(frame, frame.to_face(points), proportions)


def shares(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Share of a non-negative map's mass in each region (len(:data:`REGIONS`)); NaN for an all-zero map."""
    values = np.asarray(values, dtype=np.float64)
    total = values.sum()
    if not total > 0:
        return np.full(len(REGIONS), np.nan)
    return np.bincount(labels.ravel(), weights=values.ravel(), minlength=len(REGIONS)) / total


def region_shares(maps: np.ndarray, landmarks: Sequence[np.ndarray | None], image_sizes: Sequence[tuple[int, int]],
                  proportions: Proportions = DEFAULT) -> pd.DataFrame:
    """One row per map (N, h, w): the share of its mass in each region of its face (columns
    :data:`REGIONS`), with ``landmarks`` (5, 2) in the pixels of an image of ``image_sizes``
    (width, height) that the map covers, and each region's share of the map's area (``area_<region>``:
    what a uniform map would give it). Rows without landmarks, with implausible ones or with
    an all-zero map get NaN shares; column ``excluded`` says why (empty when used)."""
    rows, areas, reasons = [], [], []
    for values, marks, size in zip(maps, landmarks, image_sizes, strict=True):
        if marks is None:
            rows.append(np.full(len(REGIONS), np.nan))
            areas.append(np.full(len(REGIONS), np.nan))
            reasons.append("no landmarks")
            continue
        try:
            labels = label_map(marks, size, values.shape, proportions)
        except ImplausibleLandmarks:
            rows.append(np.full(len(REGIONS), np.nan))
            areas.append(np.full(len(REGIONS), np.nan))
            reasons.append("implausible landmarks")
            continue
        share = shares(values, labels)
        rows.append(share)
        areas.append(shares(np.ones(labels.shape), labels))
        reasons.append("" if np.isfinite(share).all() else "zero map")
    table = pd.DataFrame(np.array(rows).reshape(-1, len(REGIONS)), columns=list(REGIONS))
    area = pd.DataFrame(np.array(areas).reshape(-1, len(REGIONS)), columns=[f"area_{r}" for r in REGIONS])
    table = pd.concat([table, area], axis=1)
    table["excluded"] = reasons
    return table


def smallest_region_px(landmarks: np.ndarray, image_size: tuple[int, int], input_size: int,
                       proportions: Proportions = DEFAULT) -> float:
    """The smallest region's shorter side (an eye box) in pixels of the model's ``input_size``
    square input made from an image of ``image_size`` (width, height)."""
    frame = FaceFrame.from_landmarks(landmarks)
    return proportions.smallest * frame.iod * input_size / max(image_size)
