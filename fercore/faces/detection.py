"""Faces in an image: detection with box, score and five landmarks, and its cache.

* :class:`MTCNNFaces` (facenet-pytorch's MTCNN, weights inside its wheel, nothing downloaded)
  finds faces with a box, a score and five landmarks (eye centres, nose tip, mouth corners), in
  batches. Small images are upscaled (and optionally padded) first: FER2013 faces are 48 px and
  fill the frame, below what MTCNN finds reliably. :class:`HaarFaces` (OpenCV's Haar cascade)
  is the box-only fallback and says so: its detections carry no landmarks.
* :func:`detect_faces` runs a detector over images or files, with results cached per image
  content hash in a folder (a run folder), so a rerun only detects new images.

Alignment to a canonical frame is :mod:`fercore.faces.alignment`; the framing statistics of a
set of faces, :mod:`fercore.faces.framing`.

Coordinates are pixels of the original image: x right, y down, pixel centres at whole numbers
(OpenCV's convention). Landmarks are in MTCNN's order, left / right as seen in the image:
``left_eye, right_eye, nose, mouth_left, mouth_right``. Fractions of an image use its edges
(0 = top / left edge, 1 = bottom / right edge).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Union

import cv2
import numpy as np
import torch
from PIL import Image

from fercore.core.files import sha256_file, write_json
from fercore.core.progress import progress_bar as tqdm  # a bar in a terminal, log lines in a log file
from fercore.data import load_rgb, to_rgb

log = logging.getLogger(__name__)

#: The five landmarks, in MTCNN's order (left / right as seen in the image).
LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
#: facenet-pytorch version the project installs (``--no-deps``: its metadata pins torch<2.3, numpy<2, Pillow<10.3).
FACENET_VERSION = "2.6.0"
INSTALL_HINT = (f"install it with `make venv`, or `pip install --no-deps facenet-pytorch=={FACENET_VERSION}` "
                "(--no-deps: its metadata pins old torch / numpy / Pillow, yet it runs on ours)")

ImageLike = Union[str, Path, np.ndarray, Image.Image]


class FaceDetectorUnavailable(RuntimeError):
    """The requested face detector cannot run here; the message says how to install it."""


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Face:
    """One face: box (x0, y0, x1, y1), detector score and, when the detector gives them, the
    five landmarks as a (5, 2) array of x, y in :data:`LANDMARKS` order."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None = None

    @property
    def area(self) -> float:
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])

    @property
    def inter_ocular(self) -> float:
        """Distance between the eye centres in pixels (NaN without landmarks)."""
        if self.landmarks is None:
            return float("nan")
        return float(np.linalg.norm(self.landmarks[1] - self.landmarks[0]))

    def to_dict(self) -> dict[str, Any]:
        return {"box": [float(v) for v in self.box], "score": float(self.score),
                "landmarks": None if self.landmarks is None else self.landmarks.astype(float).tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Face:
        marks = data.get("landmarks")
        return cls(tuple(float(v) for v in data["box"]), float(data["score"]),  # type: ignore[arg-type]
                   None if marks is None else np.asarray(marks, dtype=float).reshape(5, 2))


@dataclass(frozen=True)
class Detection:
    """The faces found in one image of ``width`` x ``height`` pixels by ``detector``."""

    faces: tuple[Face, ...]
    width: int
    height: int
    detector: str

    @property
    def face(self) -> Face | None:
        """The main face: the largest box (face crops and portraits hold one), None if none was found."""
        return max(self.faces, key=lambda f: f.area) if self.faces else None

    @property
    def landmarks(self) -> np.ndarray | None:
        """The main face's landmarks, None when there is no face or the detector gives none."""
        face = self.face
        return None if face is None else face.landmarks

    def to_dict(self) -> dict[str, Any]:
        return {"width": self.width, "height": self.height, "detector": self.detector,
                "faces": [f.to_dict() for f in self.faces]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Detection:
        return cls(tuple(Face.from_dict(f) for f in data["faces"]), int(data["width"]), int(data["height"]),
                   str(data["detector"]))


# --------------------------------------------------------------------------- detectors


class FaceDetector(Protocol):
    """What :func:`detect_faces` needs: a name, whether landmarks come out, a signature of the
    settings (the cache key) and a batched ``detect``."""

    name: str
    gives_landmarks: bool

    @property
    def signature(self) -> str: ...

    def detect(self, images: Sequence[np.ndarray]) -> list[Detection]: ...


@dataclass(frozen=True)
class Preparation:
    """How small images are enlarged before detection: the shorter side is upscaled to at least
    ``min_side`` pixels (0: never), then ``pad`` x the longer side is added on every side by
    repeating the border (context for faces that fill the frame)."""

    min_side: int = 160
    pad: float = 0.15

    def apply(self, rgb: np.ndarray) -> tuple[np.ndarray, float, float, int]:
        """(prepared image, x scale, y scale, pad in pixels)."""
        h, w = rgb.shape[:2]
        scale = self.min_side / min(h, w) if self.min_side and min(h, w) < self.min_side else 1.0
        if scale > 1.0:
            rgb = cv2.resize(rgb, (int(round(w * scale)), int(round(h * scale))), interpolation=cv2.INTER_CUBIC)
        sx, sy = rgb.shape[1] / w, rgb.shape[0] / h
        pad = int(round(self.pad * max(rgb.shape[:2])))
        if pad:
            rgb = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        return rgb, sx, sy, pad

    @staticmethod
    def undo(points: np.ndarray, sx: float, sy: float, pad: int) -> np.ndarray:
        """Points (..., 2) in the prepared image -> the original image."""
        points = np.asarray(points, dtype=float)
        return np.stack([(points[..., 0] - pad + 0.5) / sx - 0.5, (points[..., 1] - pad + 0.5) / sy - 0.5], axis=-1)


def as_rgb(image: ImageLike) -> np.ndarray:
    """An HxWx3 uint8 RGB array from a file, a PIL image or an RGB / grey array."""
    if isinstance(image, (str, Path)):
        return np.asarray(load_rgb(image))
    if isinstance(image, Image.Image):
        return np.asarray(to_rgb(image))
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image array, got {array.dtype}; scale it to 0-255 first")
    if array.ndim == 2:
        return np.repeat(array[..., None], 3, axis=2)
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return np.ascontiguousarray(array[..., :3])
    raise ValueError(f"expected an HxW or HxWx3 RGB image, got shape {array.shape}")


class ChannelsLast(torch.nn.Module):
    """Runs ``net`` on its input laid out channels-last in memory: the same numbers (to float
    rounding, measured < 1e-6) on CPU, MTCNN's R- and O-nets 2.6-2.8x faster and its P-net about
    1.6x (PyTorch's max-pooling is slow on the default layout)."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> Any:
        return self.net(x.contiguous(memory_format=torch.channels_last))


def _planar(batch: np.ndarray) -> torch.Tensor:
    """A uint8 N x H x W x 3 batch as the float N x H x W x 3 view of a channel-planar (N x 3 x H x W
    contiguous) tensor: facenet-pytorch turns it back to N x 3 x H x W, now contiguous, whose
    area resampling (its scale pyramid) is about 1.5x faster than on the interleaved layout, with
    the same numbers (measured: equal to the bit)."""
    return torch.from_numpy(batch).permute(0, 3, 1, 2).float().contiguous().permute(0, 2, 3, 1)


def _crop48(rgb: np.ndarray, box: np.ndarray) -> torch.Tensor:
    """The part of ``box`` (x0, y0, x1, y1) inside ``rgb``, area-resampled to 1 x 3 x 48 x 48 float (O-net's input)."""
    a, b = min(max(int(box[0]), 0), rgb.shape[1] - 1), min(max(int(box[1]), 0), rgb.shape[0] - 1)
    c, d = max(min(int(box[2]), rgb.shape[1]), a + 1), max(min(int(box[3]), rgb.shape[0]), b + 1)
    crop = torch.from_numpy(np.ascontiguousarray(rgb[b:d, a:c])).permute(2, 0, 1)[None].float()
    return torch.nn.functional.interpolate(crop, size=(48, 48), mode="area")


class MTCNNFaces:
    """facenet-pytorch's MTCNN: box, score and five landmarks per face, in batches (CPU by default).

    ``min_face`` is the smallest face searched, as a share of the prepared image's shorter side
    (at least 20 px, MTCNN's default; 0.3 suits face crops and portraits, and is fast); ``min_score``
    drops weaker detections. Images are grouped by prepared size and run ``batch_size`` at a time.
    Defaults measured on 4 x 200 FER2013 val faces: landmarks on 88-92 % (pad 0: about 83 %).
    """

    name = "mtcnn"
    gives_landmarks = True

    def __init__(self, *, preparation: Preparation | None = None, min_face: float = 0.3, min_score: float = 0.9,
                 batch_size: int = 32, device: str = "cpu"):
        try:
            from facenet_pytorch import MTCNN
        except ImportError:
            raise FaceDetectorUnavailable(f"the MTCNN face detector needs facenet-pytorch: {INSTALL_HINT}") from None
        self.preparation = preparation or Preparation()
        self.min_face, self.min_score, self.batch_size = float(min_face), float(min_score), int(batch_size)
        self._mtcnn = MTCNN(keep_all=True, device=device)
        for stage in ("pnet", "rnet", "onet"):
            setattr(self._mtcnn, stage, ChannelsLast(getattr(self._mtcnn, stage)))

    @property
    def signature(self) -> str:
        p = self.preparation
        return f"mtcnn-{FACENET_VERSION}-side{p.min_side}-pad{p.pad:g}-face{self.min_face:g}-score{self.min_score:g}"

    def _min_face_px(self, shape: tuple[int, ...]) -> int:
        return max(20, int(self.min_face * min(shape[:2])))

    def detect(self, images: Sequence[np.ndarray]) -> list[Detection]:
        """One :class:`Detection` per RGB uint8 image, in order."""
        rgbs = [as_rgb(image) for image in images]
        prepared = [self.preparation.apply(rgb) for rgb in rgbs]
        results: list[Detection | None] = [None] * len(prepared)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (rgb, *_rest) in enumerate(prepared):
            groups.setdefault(rgb.shape, []).append(i)
        for shape, members in groups.items():
            self._mtcnn.min_face_size = self._min_face_px(shape)
            for start in range(0, len(members), self.batch_size):
                chunk = members[start:start + self.batch_size]
                boxes, probs, points = self._mtcnn.detect(_planar(np.stack([prepared[i][0] for i in chunk])), landmarks=True)
                for i, b, p, pts in zip(chunk, boxes, probs, points, strict=True):
                    results[i] = self._detection(rgbs[i].shape, prepared[i][1:], b, p, pts)
        return [r for r in results if r is not None]

    def refine(self, images: Sequence[np.ndarray], boxes: Sequence[tuple[float, float, float, float]]) -> list[Detection]:
        """Each image's face near ``boxes[i]`` (x0, y0, x1, y1 in that image, e.g. found on a
        smaller copy): MTCNN's last stage (O-net) alone on the box squared, all in one batch, with
        its score, adjusted box and landmarks; no face where the score is below ``min_score``. A
        check of faces already located, without the scale pyramid and the first two stages."""
        rgbs = [as_rgb(image) for image in images]
        prepared = [self.preparation.apply(rgb) for rgb in rgbs]
        if not prepared:
            return []
        given = np.array([[b[0] * sx + pad, b[1] * sy + pad, b[2] * sx + pad, b[3] * sy + pad]
                          for (_, sx, sy, pad), b in zip(prepared, boxes, strict=True)], dtype=float)
        side, centre = (given[:, 2:] - given[:, :2]).max(axis=1, keepdims=True), (given[:, :2] + given[:, 2:]) / 2
        squares = np.concatenate([centre - side / 2, centre + side / 2], axis=1)
        crops = torch.cat([_crop48(p[0], sq) for p, sq in zip(prepared, squares, strict=True)])
        with torch.no_grad():
            reg, marks, prob = (t.numpy().astype(float) for t in self._mtcnn.onet((crops - 127.5) * 0.0078125))
        span = squares[:, 2:3] - squares[:, 0:1] + 1  # MTCNN's box regression and landmarks are in these units
        adjusted = squares + reg * span
        points = np.stack([marks[:, :5] * span + squares[:, :1] - 1, marks[:, 5:] * span + squares[:, 1:2] - 1], axis=2)
        return [self._detection(rgb.shape, p[1:], adjusted[i:i + 1], [prob[i, 1]], points[i:i + 1])
                for i, (rgb, p) in enumerate(zip(rgbs, prepared, strict=True))]

    def _detection(self, shape: tuple[int, ...], undo: tuple[float, float, int], boxes: Any, probs: Any,
                   points: Any) -> Detection:
        faces = []
        if boxes is not None:
            for box, prob, marks in zip(boxes, probs, points, strict=True):
                if prob is None or float(prob) < self.min_score:
                    continue
                corners = Preparation.undo(np.asarray(box, dtype=float).reshape(2, 2), *undo).ravel()
                faces.append(Face(tuple(float(v) for v in corners), float(prob),  # type: ignore[arg-type]
                                  Preparation.undo(np.asarray(marks, dtype=float).reshape(5, 2), *undo)))
        return Detection(tuple(faces), int(shape[1]), int(shape[0]), self.name)


class HaarFaces:
    """OpenCV's frontal-face Haar cascade: boxes only, no landmarks (the fallback when MTCNN is
    missing; alignment and eye / mouth statistics need landmarks). The score is the number of
    overlapping raw detections behind a box."""

    name = "haar"
    gives_landmarks = False

    def __init__(self, *, preparation: Preparation | None = None, min_face: float = 0.125, min_neighbors: int = 5,
                 scale_factor: float = 1.1, quiet: bool = False):
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        if not path.is_file():
            raise FaceDetectorUnavailable(f"the Haar cascade {path} is missing: install opencv-python-headless<5 (5.x dropped it)")
        self.cascade = cv2.CascadeClassifier(str(path))
        self.preparation = preparation or Preparation()
        self.min_face, self.min_neighbors, self.scale_factor = float(min_face), int(min_neighbors), float(scale_factor)
        if not quiet:
            log.info("face detector: OpenCV's Haar cascade gives face boxes only, no landmarks "
                     "(alignment and eye / mouth framing need MTCNN: %s)", INSTALL_HINT)

    @property
    def signature(self) -> str:
        p = self.preparation
        return f"haar-side{p.min_side}-pad{p.pad:g}-face{self.min_face:g}-n{self.min_neighbors}-s{self.scale_factor:g}"

    def detect(self, images: Sequence[np.ndarray]) -> list[Detection]:
        out = []
        for image in images:
            rgb = as_rgb(image)
            prepared, sx, sy, pad = self.preparation.apply(rgb)
            gray = cv2.cvtColor(prepared, cv2.COLOR_RGB2GRAY)
            side = max(20, int(self.min_face * min(gray.shape)))
            boxes, counts = self.cascade.detectMultiScale2(gray, scaleFactor=self.scale_factor,
                                                           minNeighbors=self.min_neighbors, minSize=(side, side))
            faces = []
            for (x, y, w, h), n in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(counts).ravel(), strict=True):
                corners = Preparation.undo(np.array([[x, y], [x + w, y + h]], dtype=float), sx, sy, pad).ravel()
                faces.append(Face(tuple(float(v) for v in corners), float(n)))  # type: ignore[arg-type]
            out.append(Detection(tuple(faces), rgb.shape[1], rgb.shape[0], self.name))
        return out


def mtcnn_available() -> bool:
    """Whether facenet-pytorch (MTCNN) can be imported."""
    try:
        import facenet_pytorch  # noqa: F401
    except ImportError:
        return False
    return True


def make_face_detector(name: str = "mtcnn", **options: Any) -> FaceDetector:
    """'mtcnn' (fails with an install hint when facenet-pytorch is missing), 'haar' (boxes only)
    or 'auto' (MTCNN, else Haar with a warning that landmarks are missing)."""
    if name == "auto":
        if mtcnn_available():
            return MTCNNFaces(**options)
        log.warning("facenet-pytorch is not installed: falling back to OpenCV's Haar cascade, which finds face "
                    "boxes only, no landmarks; %s", INSTALL_HINT)
        return HaarFaces(quiet=True, **options)
    if name == "mtcnn":
        return MTCNNFaces(**options)
    if name == "haar":
        return HaarFaces(**options)
    raise ValueError(f"face detector must be mtcnn, haar or auto, not {name!r}")


# --------------------------------------------------------------------------- cached detection


def content_hash(image: ImageLike) -> str:
    """SHA-256 of a file's bytes, or of an array's shape and pixels (PIL images as RGB arrays)."""
    if isinstance(image, (str, Path)):
        return sha256_file(image)
    array = np.ascontiguousarray(as_rgb(image) if isinstance(image, Image.Image) else np.asarray(image))
    digest = hashlib.sha256(f"{array.shape}|{array.dtype}|".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


class DetectionCache:
    """Detections by image content hash under ``folder/<detector signature>/``: each finished batch
    is one JSON file written atomically, so runs add files and never rewrite one."""

    def __init__(self, folder: str | Path, signature: str):
        self.dir = Path(folder) / signature
        self.entries: dict[str, Detection] = {}
        for shard in sorted(self.dir.glob("batch-*.json")):
            try:
                data = json.loads(shard.read_text())
            except (OSError, json.JSONDecodeError) as err:
                log.warning("ignoring unreadable face cache file %s (%s)", shard, err)
                continue
            self.entries.update({key: Detection.from_dict(value) for key, value in data.items()})

    def get(self, key: str) -> Detection | None:
        return self.entries.get(key)

    def add(self, found: Mapping[str, Detection]) -> None:
        if not found:
            return
        name = hashlib.sha256("".join(sorted(found)).encode()).hexdigest()[:16]
        write_json(self.dir / f"batch-{name}.json", {key: d.to_dict() for key, d in found.items()})
        self.entries.update(found)


def detect_faces(
    images: Sequence[ImageLike],
    detector: FaceDetector | None = None,
    *,
    cache_dir: str | Path | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> list[Detection]:
    """One :class:`Detection` per image (files, PIL images or RGB arrays), in order.

    ``detector`` defaults to MTCNN (:func:`make_face_detector`). With ``cache_dir`` (e.g. a run
    folder), results are kept per image content hash and detector settings; cached images are
    not read again.
    """
    detector = detector or make_face_detector("mtcnn")
    cache = DetectionCache(cache_dir, detector.signature) if cache_dir is not None else None
    keys = [content_hash(image) for image in images] if cache else [None] * len(images)
    results: list[Detection | None] = [cache.get(k) if cache and k else None for k in keys]
    todo = [i for i, r in enumerate(results) if r is None]
    if cache:  # identical content is detected once
        first: dict[str | None, int] = {}
        todo = [i for i in todo if first.setdefault(keys[i], i) == i]
    if cache and len(todo) < len(images):
        log.info("faces: %d of %d images found in the cache %s", len(images) - len(todo), len(images), cache.dir)
    bar = tqdm(total=len(todo), desc=f"faces ({detector.name})", unit="img", disable=not progress or not todo)
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        found = detector.detect([as_rgb(images[i]) for i in chunk])
        for i, detection in zip(chunk, found, strict=True):
            results[i] = detection
        if cache:
            cache.add({keys[i]: results[i] for i in chunk})  # type: ignore[misc]
        bar.update(len(chunk))
    bar.close()
    if cache:
        results = [r if r is not None else cache.get(k) for r, k in zip(results, keys, strict=True)]  # repeated content
    return results  # type: ignore[return-value]
