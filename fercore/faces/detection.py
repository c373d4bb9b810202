"""Face geometry: detection with box, score and five landmarks; alignment to a canonical frame;
the framing statistics of a set of face images.

* :class:`MTCNNFaces` (facenet-pytorch's MTCNN, weights inside its wheel, nothing downloaded)
  finds faces with a box, a score and five landmarks (eye centres, nose tip, mouth corners), in
  batches. Small images are upscaled (and optionally padded) first: FER2013 faces are 48 px and
  fill the frame, below what MTCNN finds reliably. :class:`HaarFaces` (OpenCV's Haar cascade)
  is the box-only fallback and says so: its detections carry no landmarks.
* :func:`detect_faces` runs a detector over images or files, with results cached per image
  content hash in a folder (a run folder), so a rerun only detects new images.
* :func:`alignment_matrix`, :func:`align_image` and :func:`align_map`: a similarity transform
  (rotation, uniform scale, shift) that puts the eyes level at fixed positions of a
  :class:`CanonicalFrame`, applied to the image or to a map (Grad-CAM ...) computed on it.
* :func:`framing_stats` and :func:`framing_table`: per set, the median face box relative to the
  image, eye-line and mouth height, inter-ocular distance (fractions of the image) with their
  spread (IQR), and the landmark success rate. :meth:`CanonicalFrame.from_framing` turns a row
  into a frame, so faces of one set can be cropped like another set's.

Coordinates are pixels of the original image: x right, y down, pixel centres at whole numbers
(OpenCV's convention). Landmarks are in MTCNN's order, left / right as seen in the image:
``left_eye, right_eye, nose, mouth_left, mouth_right``. Fractions of an image use its edges
(0 = top / left edge, 1 = bottom / right edge).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Union

import cv2
import numpy as np
import pandas as pd
import torch
from PIL import Image

from fercore.core.files import sha256_file, write_json
from fercore.core.present import declare
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


def _as_rgb(image: ImageLike) -> np.ndarray:
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
        rgbs = [_as_rgb(image) for image in images]
        prepared = [self.preparation.apply(rgb) for rgb in rgbs]
        results: list[Detection | None] = [None] * len(prepared)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (rgb, *_rest) in enumerate(prepared):
            groups.setdefault(rgb.shape, []).append(i)
        for shape, members in groups.items():
            self._mtcnn.min_face_size = self._min_face_px(shape)
            for start in range(0, len(members), self.batch_size):
                chunk = members[start:start + self.batch_size]
                boxes, probs, points = self._mtcnn.detect(np.stack([prepared[i][0] for i in chunk]), landmarks=True)
                for i, b, p, pts in zip(chunk, boxes, probs, points, strict=True):
                    results[i] = self._detection(rgbs[i].shape, prepared[i][1:], b, p, pts)
        return [r for r in results if r is not None]

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
            rgb = _as_rgb(image)
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
    array = np.ascontiguousarray(_as_rgb(image) if isinstance(image, Image.Image) else np.asarray(image))
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
        found = detector.detect([_as_rgb(images[i]) for i in chunk])
        for i, detection in zip(chunk, found, strict=True):
            results[i] = detection
        if cache:
            cache.add({keys[i]: results[i] for i in chunk})  # type: ignore[misc]
        bar.update(len(chunk))
    bar.close()
    if cache:
        results = [r if r is not None else cache.get(k) for r, k in zip(results, keys, strict=True)]  # repeated content
    return results  # type: ignore[return-value]


# --------------------------------------------------------------------------- alignment


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
    rgb = _as_rgb(image)
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


# --------------------------------------------------------------------------- framing statistics

#: Per-face framing measures, as shares of the image (box edges, eye line, mouth line, eye distance).
FRAMING_MEASURES = ("box_x0", "box_y0", "box_x1", "box_y1", "box_w", "box_h", "eye_x", "eye_y", "mouth_y", "iod")


def framing_measures(detections: Sequence[Detection]) -> pd.DataFrame:
    """One row per image with a face: :data:`FRAMING_MEASURES` of its main face (NaN where the
    detector gave no landmarks)."""
    rows = []
    for d in detections:
        face = d.face
        if face is None:
            continue
        x0, y0, x1, y1 = face.box
        row = {"box_x0": x0 / d.width, "box_y0": y0 / d.height, "box_x1": x1 / d.width, "box_y1": y1 / d.height,
               "box_w": (x1 - x0) / d.width, "box_h": (y1 - y0) / d.height}
        marks = face.landmarks
        if marks is not None:
            row.update(eye_x=(marks[:2, 0].mean() + 0.5) / d.width, eye_y=(marks[:2, 1].mean() + 0.5) / d.height,
                       mouth_y=(marks[3:, 1].mean() + 0.5) / d.height, iod=face.inter_ocular / d.width)
        rows.append(row)
    return pd.DataFrame(rows, columns=list(FRAMING_MEASURES), dtype=float)


def framing_stats(detections: Sequence[Detection]) -> dict[str, Any]:
    """A set's framing: images, face and landmark success rates, and the median and IQR
    (``<measure>_iqr``) of each of :data:`FRAMING_MEASURES` over its faces."""
    measures = framing_measures(detections)
    n = len(detections)
    stats: dict[str, Any] = {
        "images": n,
        "detector": ", ".join(sorted({d.detector for d in detections})) or "",
        "face_rate": len(measures) / n if n else float("nan"),
        "landmark_rate": int(measures["iod"].notna().sum()) / n if n else float("nan"),
    }
    for name in FRAMING_MEASURES:
        column = measures[name].dropna()
        stats[name] = float(column.median()) if len(column) else float("nan")
        stats[f"{name}_iqr"] = float(column.quantile(0.75) - column.quantile(0.25)) if len(column) else float("nan")
    return stats


def _paths(images: pd.DataFrame | Sequence[ImageLike]) -> list[ImageLike]:
    if isinstance(images, pd.DataFrame):
        return list(images["path"])
    return list(images)


def framing_table(
    sets: Mapping[str, pd.DataFrame | Sequence[ImageLike]],
    detector: FaceDetector | None = None,
    *,
    cache_dir: str | Path | None = None,
    max_per_set: int | None = 200,
    seed: int = 0,
    drawn: Callable[[pd.DataFrame], Sequence[Detection]] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """:func:`framing_stats` per set (rows), one table per run.

    ``sets`` maps a name to image paths (or a sample table with a ``path`` column); at most
    ``max_per_set`` images of each are used (a seeded draw). ``drawn`` gives known face positions
    for the drawn images (the demo's: :func:`fercore.demo.drawn_detections` over its ``geometry/``
    folder): each set then gets a second row from them, beside the detector's.
    """
    detector = detector or make_face_detector("auto")
    rows = []
    for name, images in sets.items():
        table = images if isinstance(images, pd.DataFrame) else pd.DataFrame({"path": _paths(images)})
        if max_per_set is not None and len(table) > max_per_set:
            table = table.sample(n=max_per_set, random_state=seed).sort_index()
        found = detect_faces(_paths(table), detector, cache_dir=cache_dir, progress=progress)
        rows.append({"set": name, **framing_stats(found)})
        if drawn is not None:
            reference = drawn(table)
            if reference:
                rows.append({"set": f"{name} (drawn)", **framing_stats(reference)})
    table = pd.DataFrame(rows).set_index("set")
    titles = {"face_rate": "face found", "landmark_rate": "landmarks found", "box_w": "box width", "eye_y": "eye line",
              "mouth_y": "mouth line", "iod": "inter-ocular"}
    medians = [c for c in ("box_w", "eye_y", "mouth_y", "iod") if c in table.columns]
    return declare(table, percent=[c for c in ("face_rate", "landmark_rate") if c in table.columns],
                   spread={c: f"{c}_iqr" for c in medians}, titles={k: v for k, v in titles.items() if k in table.columns},
                   show=[c for c in ("images", "detector", "face_rate", "landmark_rate", *medians) if c in table.columns])
