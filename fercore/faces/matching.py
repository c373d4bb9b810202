"""The matched-format arm: synthetic faces brought to a real set's format and framing, so that a
real-vs-synthetic difference that survives matching is not one of colour, resolution or crop.

* :func:`measure_format` : a set's format: share of greyscale images, median native size, and
  its face framing (median eye centre, inter-ocular distance and eye-to-mouth distance as
  fractions of the image, from :mod:`fercore.faces` landmarks);
* :func:`match_transform` : the :class:`MatchedFormat` that takes faces framed like set A to set
  B's format: one crop for the whole set (a similarity from A's median framing to B's, so each
  face keeps its own offset and the set keeps its spread), then B's native size (area-averaging
  downsample), then greyscale for B's share of images (chosen per image from its pixels, so
  the choice is stable), then B's JPEG compression when B's files are JPEG (quality estimated
  from their quantisation tables). The model's usual preprocessing then resizes it as it does B's faces.

A :class:`MatchedFormat` is an :class:`fercore.inference.ImageTransform`: its ``name`` states
every parameter, so inference results are cached per arm.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from fercore.core.files import write_json
from fercore.data import load_rgb
from fercore.faces.detection import detect_faces, make_face_detector
from fercore.faces.framing import framing_measures

log = logging.getLogger(__name__)

#: The IJG standard luminance quantisation table (quality 50), row by row, as libjpeg scales it.
_IJG_LUMA = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
                      14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
                      49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.float64)

#: A pixel counts as grey when its channels differ by at most this (JPEG chroma noise).
GREY_TOLERANCE = 3.0


@dataclass(frozen=True)
class SetFormat:
    """How a set's images look: colour, size and face framing (fractions of the image)."""

    images: int
    grey_fraction: float
    size: int  # median of min(width, height), pixels
    eye_x: float  # median eye-centre position
    eye_y: float
    iod: float  # median inter-ocular distance / width
    eye_mouth: float  # median eye-line to mouth-line distance / height
    landmark_rate: float  # share of the measured images with five landmarks
    framed_by: str  # the detector whose landmarks gave the framing
    jpeg_quality: int | None = None  # median estimated JPEG quality when most files are JPEG, else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_grey(image: Image.Image) -> bool:
    """True when the RGB image's channels agree everywhere (within :data:`GREY_TOLERANCE` on average)."""
    if image.mode in ("L", "LA", "I", "F"):
        return True
    rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    return float(np.abs(rgb[..., 0] - rgb[..., 1]).mean() + np.abs(rgb[..., 1] - rgb[..., 2]).mean()) <= GREY_TOLERANCE


def jpeg_quality(path: str | Path) -> int | None:
    """The libjpeg quality a JPEG file was most likely saved with (from its luminance
    quantisation table against the IJG standard one), or None for other formats."""
    with Image.open(path) as image:
        tables = getattr(image, "quantization", None) if image.format == "JPEG" else None
    if not tables:
        return None
    luma = np.asarray(tables[0], dtype=np.float64)
    scale = 100.0 * luma.sum() / _IJG_LUMA.sum()
    quality = (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale
    return int(np.clip(round(quality), 1, 100))


def measure_format(samples: pd.DataFrame, *, detector=None, cache_dir: str | Path | None = None, limit: int = 200,
                   seed: int = 0) -> SetFormat:
    """The format of (at most ``limit``, seeded) images of ``samples``; framing from ``detector``'s
    landmarks (default MTCNN), detections cached under ``cache_dir``."""
    picked = samples if len(samples) <= limit else samples.sample(limit, random_state=seed)
    paths = picked["path"].astype(str).tolist()
    if not paths:
        raise ValueError("no images to measure the format of")
    images = [load_rgb(p) for p in paths]
    grey = np.mean([is_grey(im) for im in images])
    qualities = [q for q in (jpeg_quality(p) for p in paths) if q is not None]
    quality = int(np.median(qualities)) if len(qualities) > len(paths) / 2 else None
    size = int(np.median([min(im.size) for im in images]))
    detector = detector or make_face_detector("mtcnn")
    found = detect_faces([np.asarray(im) for im in images], detector, cache_dir=cache_dir, progress=False)
    measures = framing_measures(found).dropna(subset=["iod"])
    if measures.empty:  # the framing stays unknown (NaN) and a matched arm keeps the crop as it is
        log.warning("no face landmarks on %d images (first: %s): their framing is unknown and is not matched", len(paths), paths[0])
        measures = pd.DataFrame({c: [np.nan] for c in ("eye_x", "eye_y", "iod", "mouth_y")})
    return SetFormat(len(paths), float(grey), size, float(measures["eye_x"].median()), float(measures["eye_y"].median()),
                     float(measures["iod"].median()), float((measures["mouth_y"] - measures["eye_y"]).median()),
                     int(measures["iod"].notna().sum()) / len(paths), detector.signature, quality)


@dataclass(frozen=True)
class MatchedFormat:
    """Crop (fractions of the source image: left, top, side), resize to ``size``, greyscale for
    ``grey_fraction`` of the images. Picklable, so DataLoader workers can apply it."""

    target: str  # the set whose format is matched
    left: float
    top: float
    side: float
    size: int
    grey_fraction: float
    jpeg_quality: int | None = None  # re-encoded as JPEG at this quality (the target's files are JPEG)

    @property
    def name(self) -> str:
        return (f"matched-to[{self.target}]:crop={self.left:.4f},{self.top:.4f},{self.side:.4f};"
                f"size={self.size};grey={self.grey_fraction:.3f};jpeg={self.jpeg_quality}")

    def crop_box(self, width: int, height: int) -> tuple[float, float, float, float]:
        return (self.left * width, self.top * height, (self.left + self.side) * width, (self.top + self.side) * height)

    def greyed(self, image: Image.Image) -> bool:
        """Whether this image is made grey: all, none, or a stable pseudo-random share by content."""
        if self.grey_fraction >= 1.0 or self.grey_fraction <= 0.0:
            return self.grey_fraction >= 1.0
        digest = hashlib.blake2b(image.tobytes(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64 < self.grey_fraction

    def __call__(self, image: Image.Image) -> Image.Image:
        image = image.convert("RGB")
        grey = self.greyed(image)
        w, h = image.size
        x0, y0, x1, y1 = self.crop_box(w, h)
        pad = int(np.ceil(max(0.0, -x0, -y0, x1 - w, y1 - h)))
        if pad:  # the crop reaches past the image: extend its border pixels
            image = Image.fromarray(np.pad(np.asarray(image), ((pad, pad), (pad, pad), (0, 0)), mode="edge"))
            x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
        out = image.resize((self.size, self.size), Image.Resampling.LANCZOS,
                           box=(x0, y0, x1, y1))
        out = out.convert("L") if grey else out
        if self.jpeg_quality is not None:
            buffer = io.BytesIO()
            out.save(buffer, format="JPEG", quality=self.jpeg_quality)
            out = Image.open(io.BytesIO(buffer.getvalue()))
        return out.convert("RGB")


def match_transform(source: SetFormat, target: SetFormat, target_name: str) -> MatchedFormat:
    """The crop that moves ``source``'s median face framing onto ``target``'s (scale from the
    inter-ocular and eye-to-mouth distances, their geometric mean; position from the eye
    centre), ``target``'s native size and share of greyscale images."""
    framing = np.array([source.eye_x, source.eye_y, source.iod, source.eye_mouth, target.eye_x, target.eye_y, target.iod, target.eye_mouth])
    if not np.isfinite(framing).all():  # a set without landmarks: colour, size and compression only
        log.warning("framing of %s or of the source faces unknown (no landmarks): the matched arm does not crop", target_name)
        return MatchedFormat(target_name, 0.0, 0.0, 1.0, int(target.size), float(target.grey_fraction), target.jpeg_quality)
    scale = float(np.sqrt((target.iod / source.iod) * (target.eye_mouth / source.eye_mouth)))
    side = 1.0 / scale  # the crop's side, as a fraction of the source image
    left = source.eye_x - target.eye_x * side
    top = source.eye_y - target.eye_y * side
    return MatchedFormat(target_name, left, top, side, int(target.size), float(target.grey_fraction), target.jpeg_quality)


def format_table(formats: Mapping[str, SetFormat]) -> pd.DataFrame:
    """One row per set: its format."""
    rows = {name: f.to_dict() for name, f in formats.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("set")


def matched_arms(sets: Mapping[str, pd.DataFrame], *, synthetic: str = "synthetic", out: str | Path | None = None,
                 detector=None, limit: int = 200, seed: int = 0) -> tuple[dict[str, MatchedFormat], dict[str, SetFormat]]:
    """For every real set R of ``sets``: the transform that brings the ``synthetic`` faces to R's
    format; and every set's measured format. With ``out``, ``formats.json`` is written there and
    detections are cached in ``out/faces``."""
    cache = Path(out) / "faces" if out is not None else None
    formats = {name: measure_format(samples, detector=detector, cache_dir=cache, limit=limit, seed=seed)
               for name, samples in sets.items()}
    arms = {name: match_transform(formats[synthetic], formats[name], name) for name in sets if name != synthetic}
    for name, arm in arms.items():
        log.info("synthetic faces matched to %s: %s", name, arm.name)
    if out is not None:
        write_json(Path(out) / "formats.json", {"formats": {k: v.to_dict() for k, v in formats.items()},
                                                "arms": {k: {**asdict(v), "name": v.name} for k, v in arms.items()}})
    return arms, formats
