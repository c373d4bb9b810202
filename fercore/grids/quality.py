"""Quality checks of an extracted face: blur, exposure, contrast, the reason to reject a cell,
and the perceptual hash behind near-duplicate detection."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class QualityThresholds:
    """Rejection thresholds (gray levels scaled to 0-1; blur measured on the exported face)."""

    min_blur: float = 12.0  # variance of the Laplacian (0-255 scale) of the exported face; measured:
    # sharp faces 19-3000 (FER2013 faces upscaled 48 -> 128 px are the softest), Gaussian blur r=5: < 8
    min_blur_face: float = 8.0  # the same on face crops (--crop face), which hold no cell border or backdrop edge:
    # measured there, a Gaussian-blurred (r=6) face 4.3, LFW faces enlarged 6x from 25 px 7-12 (10-20 on cell crops)
    min_brightness: float = 0.12
    max_brightness: float = 0.92
    max_clipped: float = 0.5  # share of pixels at 0-2 or 253-255
    max_empty_variation: float = 0.05  # grey std / mean below this: an empty (flat) cell
    min_contrast: float = 0.04  # grey standard deviation of a face that is not too dark
    min_face_frac: float = 0.08  # detected face area / cell area
    max_padding: float = 0.4  # crop='face': share of the crop past the canvas edge (padded)
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
