"""The embedded demo dataset: procedural faces in two visibly different domains.

Nothing is downloaded. ``make_demo_data(out)`` writes, deterministically for a seed:

* ``real/{train,test}/<emotion>/*.jpg``: "real-style" faces: muted or grey, noisy, blurred,
  unevenly lit, JPEG-compressed, natural expression intensity (like FER2013 / AffectNet);
* ``synthetic/raw_grids/{train,test}/*.png`` + ``grids.csv``: "synthetic" 1024x1024 images
  holding a 6x6 grid of vivid, clean, exaggerated faces of one emotion and one gender each,
  as a text-to-image generator would make them;
* ``geometry/real.csv`` and ``geometry/synthetic.csv``: where the generator drew each face's
  eyes, nose tip, mouth corners, brows and head outline (:class:`FaceParts`), the ground truth
  for face-landmark tests and the demo's reference framing (:func:`drawn_detections`).

Faces are drawn from parts (head, hair, eyes, brows, nose, mouth) whose geometry follows
the emotion (e.g. Anger lowers the inner brows, Surprise opens eyes and mouth) scaled by a
random intensity, so low-intensity faces are close to Neutral: a small model learns the
classes clearly above chance but not perfectly. Demo numbers are not research results.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFilter

from fercore.core.files import write_csv, write_image, write_json
from fercore.core.labels import CLASSES
from fercore.core.progress import progress_bar as tqdm  # a bar in a terminal, log lines in a log file
from fercore.faces import Detection, Face
from fercore.grids import edges
from fercore.synthetic import build_prompt

log = logging.getLogger(__name__)

#: half the mouth width in units of the head's half-width: 0.32 makes a neutral mouth 0.8 of the
#: inter-ocular distance (eyes at +-0.4), a human proportion, so MTCNN's corners land near the drawn ones
MOUTH_HALF_WIDTH = 0.32
#: brow height above the eye centres in units of the head's half-height ry (neutral), per unit of
#: raise / lowering, and of tilt at the inner and outer end; and the floor: no brow point comes closer
#: to the eye line than BROW_CLEARANCE inter-ocular distances (0.22: a lowered human brow)
BROW_REST, BROW_RAISE, BROW_LOWER, BROW_TILT_INNER, BROW_TILT_OUTER = 0.22, 0.10, 0.06, 0.07, 0.03
BROW_CLEARANCE = 0.22
#: how far a full smile (or smirk) lifts the mouth corners, in units of ry: at most about 0.3
#: inter-ocular distances, so the corners stay below the nose tip as on a human face
MOUTH_LIFT = 0.12
DEMO_VERSION = 6  # 6: brows above the eyes and mouth corners below the nose (human limits; they crossed before); 5: human-proportioned mouths (0.8 IOD, was 1.2); 4: two train grids per (emotion, gender), for grouped CV; 3: geometry/ (the drawn positions)
GRID_SIZE = 1024
GENDERS = ("female", "male")

#: Expression geometry at full intensity; Neutral is the zero point of every parameter.
#: eye: openness factor; brow_raise / brow_tilt (inner end up > 0); mouth_lift (corners up > 0);
#: mouth_open; mouth_width factor; smirk (one corner up); teeth shown; nose wrinkle.
EXPRESSIONS: dict[str, dict[str, float]] = {
    "Neutral": dict(eye=1.0, brow_raise=0.0, brow_tilt=0.0, mouth_lift=0.0, mouth_open=0.0, mouth_width=1.0, smirk=0.0, teeth=0.0, wrinkle=0.0),
    "Happiness": dict(eye=0.65, brow_raise=0.15, brow_tilt=0.0, mouth_lift=1.0, mouth_open=0.35, mouth_width=1.25, smirk=0.0, teeth=1.0, wrinkle=0.0),
    "Sadness": dict(eye=0.75, brow_raise=0.1, brow_tilt=1.0, mouth_lift=-0.8, mouth_open=0.0, mouth_width=0.9, smirk=0.0, teeth=0.0, wrinkle=0.0),
    "Anger": dict(eye=0.65, brow_raise=-0.7, brow_tilt=-1.2, mouth_lift=-0.2, mouth_open=0.2, mouth_width=0.95, smirk=0.0, teeth=1.0, wrinkle=0.3),
    "Surprise": dict(eye=1.6, brow_raise=1.1, brow_tilt=0.15, mouth_lift=0.0, mouth_open=1.1, mouth_width=0.55, smirk=0.0, teeth=0.0, wrinkle=0.0),
    "Fear": dict(eye=1.45, brow_raise=0.7, brow_tilt=0.9, mouth_lift=-0.35, mouth_open=0.5, mouth_width=1.2, smirk=0.0, teeth=1.0, wrinkle=0.0),
    "Disgust": dict(eye=0.7, brow_raise=-0.45, brow_tilt=-0.4, mouth_lift=-0.45, mouth_open=0.18, mouth_width=0.95, smirk=0.35, teeth=0.0, wrinkle=1.0),
    "Contempt": dict(eye=0.9, brow_raise=0.1, brow_tilt=0.0, mouth_lift=0.0, mouth_open=0.0, mouth_width=1.0, smirk=1.0, teeth=0.0, wrinkle=0.0),
}

SKIN_TONES = [(255, 224, 196), (241, 194, 167), (224, 172, 136), (198, 134, 96), (161, 102, 64), (120, 75, 45), (92, 58, 38)]
HAIR_COLOURS = [(25, 20, 18), (60, 40, 28), (105, 70, 40), (200, 160, 95), (150, 70, 35), (150, 150, 150)]
CLOTHES = [(40, 60, 120), (150, 30, 40), (30, 110, 70), (200, 200, 200), (60, 60, 60), (180, 120, 40)]
BACKDROPS = [(214, 226, 240), (240, 220, 214), (222, 240, 214), (236, 232, 210), (225, 214, 240), (205, 232, 232)]



@dataclass(frozen=True)
class DemoSpec:
    """Sizes of the demo dataset (defaults: ~1 minute to write on one core)."""

    seed: int = 0
    real_train_per_class: int = 100
    real_test_per_class: int = 25
    real_size: int = 96
    synthetic_train_grids_per_cell: int = 2  # grids per (emotion, gender) in train: 4 per emotion, so grouped CV folds keep each
    synthetic_test_genders: tuple[str, ...] = GENDERS
    grid_rows: int = 6
    grid_cols: int = 6


# --------------------------------------------------------------------------- face drawing

#: Points sampled on the head's outline (an ellipse before the roll).
OUTLINE_POINTS = 32
#: The five landmarks a face detector reports, in MTCNN's order (left / right as seen in the image).
LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass(frozen=True)
class FaceParts:
    """Where :func:`draw_face_with_parts` drew a face's parts, as (k, 2) arrays of x, y pixel
    coordinates in the returned image (x right, y down, pixel centres at whole numbers, as in
    OpenCV and MTCNN).

    Keys: ``left_eye``, ``right_eye`` (pupil centres; left as seen in the image), ``nose`` (tip),
    ``mouth_left``, ``mouth_right`` (corners), ``left_brow``, ``right_brow`` (inner, middle and
    outer point of each brow), ``outline`` (the head's outline, :data:`OUTLINE_POINTS` points).
    """

    points: dict[str, np.ndarray]

    def landmarks(self) -> np.ndarray:
        """The five landmarks as a (5, 2) array in :data:`LANDMARKS` order."""
        return np.stack([self.points[name][0] for name in LANDMARKS])

    def box(self) -> tuple[float, float, float, float]:
        """The head outline's bounding box (x0, y0, x1, y1)."""
        outline = self.points["outline"]
        return (*outline.min(axis=0).tolist(), *outline.max(axis=0).tolist())

    def placed(self, scale_x: float, scale_y: float, left: float, top: float) -> FaceParts:
        """The parts after the image is resized by (scale_x, scale_y) and pasted at (left, top)."""
        def move(p: np.ndarray) -> np.ndarray:
            return np.stack([(p[:, 0] + 0.5) * scale_x - 0.5 + left, (p[:, 1] + 0.5) * scale_y - 0.5 + top], axis=1)

        return FaceParts({name: move(p) for name, p in self.points.items()})

    def row(self) -> dict[str, float]:
        """Flat columns for a table: the five landmarks, the brows and the outline's box."""
        out: dict[str, float] = {}
        for name in (*LANDMARKS, "left_brow", "right_brow"):
            for k, (x, y) in enumerate(self.points[name]):
                suffix = "" if len(self.points[name]) == 1 else f"_{('inner', 'mid', 'outer')[k]}"
                out[f"{name}{suffix}_x"], out[f"{name}{suffix}_y"] = float(x), float(y)
        out.update(zip(("face_x0", "face_y0", "face_x1", "face_y1"), self.box(), strict=True))
        return out


def _to_output(points: np.ndarray, cx: float, cy: float, roll: float, drawn_size: int, size: int) -> np.ndarray:
    """Drawing coordinates -> pixel coordinates of the returned image: Pillow's ``rotate(roll,
    center=(cx, cy))`` (counter-clockwise on screen), then the resize from ``drawn_size`` to ``size``.

    Pillow draws a shape given at x over pixels whose centres lie at x (continuous coordinate
    x + 0.5), and rotates and resizes in continuous coordinates (pixel edges at whole numbers).
    """
    phi = math.radians(roll)
    dx, dy = points[:, 0] + 0.5 - cx, points[:, 1] + 0.5 - cy
    x = cx + math.cos(phi) * dx + math.sin(phi) * dy
    y = cy - math.sin(phi) * dx + math.cos(phi) * dy
    return np.stack([x, y], axis=1) * (size / drawn_size) - 0.5


def _expression(emotion: str, intensity: float, rng: np.random.Generator) -> dict[str, float]:
    neutral, target = EXPRESSIONS["Neutral"], EXPRESSIONS[emotion]
    out = {}
    for key, zero in neutral.items():
        value = zero + intensity * (target[key] - zero)
        out[key] = value + rng.normal(0.0, 0.12 if key not in ("teeth",) else 0.0)
    out["eye"] = max(out["eye"], 0.3)
    out["mouth_open"] = max(out["mouth_open"], 0.0)
    out["mouth_width"] = max(out["mouth_width"], 0.45)
    return out


def _curve(x0: float, x1: float, y_at, n: int = 24) -> list[tuple[float, float]]:
    xs = np.linspace(-1.0, 1.0, n)
    return [(x0 + (x + 1) / 2 * (x1 - x0), y_at(x)) for x in xs]


def draw_face(rng: np.random.Generator, emotion: str, gender: str, size: int, **options: Any) -> Image.Image:
    """One procedural face, ``size`` x ``size`` RGB (options as :func:`draw_face_with_parts`, which
    draws the same image and also returns where its parts are)."""
    return draw_face_with_parts(rng, emotion, gender, size, **options)[0]


def draw_face_with_parts(
    rng: np.random.Generator,
    emotion: str,
    gender: str,
    size: int,
    *,
    intensity: float,
    vivid: bool,
    backdrop: tuple[int, int, int] | None = None,
    zoom: float = 1.0,
    jitter: float = 1.0,
) -> tuple[Image.Image, FaceParts]:
    """One procedural face, ``size`` x ``size`` RGB, drawn at 3x and downsampled (antialiasing), and
    the positions of its parts (:class:`FaceParts`, in the returned image's pixels).

    ``zoom`` > 1 fills the frame with the face (a face-detector crop); 1 is a head-and-shoulders
    portrait. ``jitter`` scales the random position / roll.
    """
    ss = 3
    W = size * ss
    bg = backdrop or tuple(int(v) for v in rng.integers(90, 200, 3))
    img = Image.new("RGB", (W, W), bg)
    d = ImageDraw.Draw(img)
    p = _expression(emotion, intensity, rng)
    skin = np.array(SKIN_TONES[rng.integers(len(SKIN_TONES))], dtype=float)
    if vivid:
        skin = np.clip(skin * 1.06 + 6, 0, 255)
    skin_c = tuple(int(v) for v in skin)
    shade = tuple(int(v * 0.8) for v in skin)
    hair = HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))]
    scale = rng.uniform(0.86, 1.02)
    cx = W / 2 + rng.normal(0, W * 0.02 * jitter)
    cy = W / 2 + W * 0.02 * zoom + rng.normal(0, W * 0.015 * jitter)
    rx, ry = W * 0.27 * scale * zoom * rng.uniform(0.92, 1.06), W * 0.35 * scale * zoom
    yaw = rng.normal(0, rx * 0.05)  # features shift sideways: a slight head turn
    lw = max(2, int(rx * 0.055))

    # shoulders and neck
    d.ellipse([cx - rx * 1.9, cy + ry * 1.05, cx + rx * 1.9, cy + ry * 2.6], fill=CLOTHES[rng.integers(len(CLOTHES))])
    d.rectangle([cx - rx * 0.38, cy + ry * 0.6, cx + rx * 0.38, cy + ry * 1.2], fill=shade)
    if gender == "female":  # long hair behind the head
        d.rounded_rectangle([cx - rx * 1.22, cy - ry * 1.1, cx + rx * 1.22, cy + ry * rng.uniform(0.9, 1.5)], radius=int(rx * 0.8), fill=hair)
    d.ellipse([cx - rx * 1.1, cy - ry * 0.1, cx - rx * 0.85, cy + ry * 0.25], fill=shade)  # ears
    d.ellipse([cx + rx * 0.85, cy - ry * 0.1, cx + rx * 1.1, cy + ry * 0.25], fill=shade)
    d.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=skin_c)
    if gender == "male" and rng.random() < 0.4:  # beard / stubble
        beard = tuple(int(0.55 * h + 0.45 * s) for h, s in zip(hair, skin_c, strict=True))
        d.chord([cx - rx, cy - ry * 0.35, cx + rx, cy + ry], 20, 160, fill=beard)
    # hair on top
    top = ry * (1.12 if gender == "male" else 1.18)
    d.chord([cx - rx * 1.05, cy - top, cx + rx * 1.05, cy + ry * (0.25 if gender == "female" else 0.1)], 180, 360, fill=hair)

    # where the parts go, in drawing coordinates (mapped to the returned image at the end)
    outline = np.linspace(0.0, 2 * math.pi, OUTLINE_POINTS, endpoint=False)
    drawn: dict[str, list[tuple[float, float]]] = {
        "outline": [(cx + rx * math.cos(t), cy + ry * math.sin(t)) for t in outline]}

    # eyes
    eye_y = cy - ry * 0.12
    ew, eh = rx * 0.25, ry * 0.09 * p["eye"]
    for side in (-1, 1):
        ex = cx + side * rx * 0.4 + yaw
        d.ellipse([ex - ew, eye_y - eh, ex + ew, eye_y + eh], fill=(245, 245, 240), outline=(40, 30, 30), width=lw)
        ir = min(eh * 0.95, ew * 0.5)
        d.ellipse([ex - ir, eye_y - ir, ex + ir, eye_y + ir], fill=(60, 45, 35) if not vivid else (40, 90, 150))
        pr = ir * 0.5
        d.ellipse([ex - pr, eye_y - pr, ex + pr, eye_y + pr], fill=(10, 10, 10))
        if vivid:  # catch-light
            d.ellipse([ex + pr * 0.2, eye_y - pr * 1.1, ex + pr * 0.9, eye_y - pr * 0.4], fill=(255, 255, 255))
        # brows: the inner end (towards the nose) moves with tilt; no point comes lower than
        # BROW_CLEARANCE inter-ocular distances above the eye centre, as on a human face
        lift = BROW_RAISE if p["brow_raise"] > 0 else BROW_LOWER
        base = eye_y - ry * (BROW_REST + lift * p["brow_raise"])
        raise_one = p["smirk"] * ry * 0.1 if side == 1 else 0.0  # contempt: one brow up
        floor = eye_y - BROW_CLEARANCE * 0.8 * rx  # the eyes are 0.8 rx apart
        inner = (ex - side * ew * 1.05, min(floor, base - p["brow_tilt"] * ry * BROW_TILT_INNER - raise_one))
        outer = (ex + side * ew * 1.15, min(floor, base + p["brow_tilt"] * ry * BROW_TILT_OUTER - raise_one))
        mid = ((inner[0] + outer[0]) / 2, min(floor, (inner[1] + outer[1]) / 2 - ry * 0.025))
        d.line([inner, mid, outer], fill=hair if hair != (150, 150, 150) else (70, 70, 70), width=int(lw * (2.6 if gender == "male" else 2.1)), joint="curve")
        drawn["left_eye" if side < 0 else "right_eye"] = [(ex, eye_y)]
        drawn["left_brow" if side < 0 else "right_brow"] = [inner, mid, outer]

    # nose
    nose_y = cy + ry * 0.22
    drawn["nose"] = [(cx + yaw, nose_y)]  # the tip: where the bridge line meets the nostril arc
    d.line([(cx + yaw, eye_y + ry * 0.05), (cx + yaw - rx * 0.05, nose_y)], fill=shade, width=lw)
    d.arc([cx + yaw - rx * 0.16, nose_y - ry * 0.06, cx + yaw + rx * 0.16, nose_y + ry * 0.05], 10, 170, fill=tuple(int(v * 0.6) for v in skin_c), width=lw)
    for k in range(int(round(max(0.0, p["wrinkle"]) * 3))):  # disgust: wrinkled nose bridge
        y = eye_y + ry * (0.05 + 0.05 * k)
        d.line([(cx + yaw - rx * 0.12, y), (cx + yaw + rx * 0.12, y + ry * 0.01)], fill=tuple(int(v * 0.65) for v in skin_c), width=max(1, lw - 1))

    # mouth: a centre curve whose corners lift (smile) or drop; lips open around it
    mouth_y = cy + ry * 0.5
    mw = rx * MOUTH_HALF_WIDTH * p["mouth_width"]
    lift_l = p["mouth_lift"] * ry * MOUTH_LIFT
    lift_r = lift_l + p["smirk"] * ry * MOUTH_LIFT
    upper_raise = max(0.0, p["wrinkle"]) * ry * 0.03

    def centre(x: float) -> float:
        lift = lift_l if x < 0 else lift_r
        return mouth_y - lift * x * x

    open_h = p["mouth_open"] * ry * 0.24
    lip = (170, 60, 70) if (vivid or gender == "female") else tuple(int(v * 0.7) for v in skin_c)
    x0, x1 = cx + yaw - mw, cx + yaw + mw
    drawn["mouth_left"], drawn["mouth_right"] = [(x0, centre(-1.0))], [(x1, centre(1.0))]  # the corners
    if open_h > ry * 0.02:
        upper = _curve(x0, x1, lambda x: centre(x) - (open_h * 0.45 + upper_raise) * (1 - x * x))
        lower = _curve(x0, x1, lambda x: centre(x) + open_h * 0.75 * (1 - x * x))
        d.polygon(upper + lower[::-1], fill=(60, 20, 25), outline=lip, width=lw)
        if p["teeth"] > 0.5:
            teeth = _curve(x0 + mw * 0.25, x1 - mw * 0.25, lambda x: centre(x) - (open_h * 0.4 + upper_raise) * (1 - x * x) + lw)
            d.line(teeth, fill=(250, 250, 245), width=max(2, int(open_h * 0.35)))
    else:
        d.line(_curve(x0, x1, lambda x: centre(x) - upper_raise * (1 - x * x)), fill=lip, width=int(lw * 2.0), joint="curve")
    if vivid:  # glossy highlights, blush: the over-finished look of generated portraits
        d.ellipse([cx - rx * 0.75, cy + ry * 0.12, cx - rx * 0.4, cy + ry * 0.32], fill=tuple(min(255, int(v * 1.02 + 12)) for v in (skin[0], skin[1] * 0.9, skin[2] * 0.9)))
        d.ellipse([cx + rx * 0.4, cy + ry * 0.12, cx + rx * 0.75, cy + ry * 0.32], fill=tuple(min(255, int(v * 1.02 + 12)) for v in (skin[0], skin[1] * 0.9, skin[2] * 0.9)))
    roll = rng.normal(0, 5.0 * jitter)
    img = img.rotate(roll, resample=Image.BICUBIC, center=(cx, cy), fillcolor=bg)
    parts = FaceParts({name: _to_output(np.array(points), cx, cy, roll, W, size) for name, points in drawn.items()})
    return img.resize((size, size), Image.LANCZOS), parts


def _photographic(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Make a drawn face look like a real-world capture: light, blur, desaturation, noise."""
    arr = np.asarray(img, dtype=np.float32)
    h, w = arr.shape[:2]
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w) - 0.5
    light = 1.0 + rng.uniform(0.15, 0.45) * (np.cos(angle) * xx + np.sin(angle) * yy)
    arr = arr * light[..., None] * rng.uniform(0.75, 1.15) + rng.uniform(-15, 15)
    grey = arr.mean(axis=2, keepdims=True)
    sat = 0.0 if rng.random() < 0.5 else rng.uniform(0.3, 0.7)
    arr = grey + sat * (arr - grey)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.9)))
    arr = np.asarray(img, dtype=np.float32) + rng.normal(0, rng.uniform(3, 8), (h, w, 1))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


# --------------------------------------------------------------------------- writing


def _write_real(out: Path, spec: DemoSpec, progress: bool) -> int:
    geometry = []
    jobs = [
        (split, emotion, i)
        for split, n in (("train", spec.real_train_per_class), ("test", spec.real_test_per_class))
        for emotion in CLASSES
        for i in range(n)
    ]
    for split, emotion, i in tqdm(jobs, desc="demo real faces", disable=not progress):
        rng = np.random.default_rng([spec.seed, 1, split == "test", CLASSES.index(emotion), i])
        gender = GENDERS[int(rng.integers(2))]
        face, parts = draw_face_with_parts(
            rng, emotion, gender, spec.real_size, intensity=rng.uniform(0.4, 1.0), vivid=False, zoom=1.3, jitter=0.6
        )
        face = _photographic(face, rng)  # light, blur and noise: the parts stay where they were drawn
        rel = f"{split}/{emotion.lower()}/{split}_{emotion.lower()}_{i:04d}.jpg"
        write_image(out / "real" / rel, face, quality=int(rng.integers(60, 90)))
        geometry.append({"path": rel, "split": split, "emotion": emotion, "width": spec.real_size,
                         "height": spec.real_size, **parts.row()})
    write_csv(out / "geometry" / "real.csv", pd.DataFrame(geometry))
    return len(jobs)


def make_grid(rng: np.random.Generator, emotion: str, gender: str, rows: int, cols: int) -> Image.Image:
    """A 1024x1024 generator-style grid of one emotion and gender, thin light gutters."""
    return make_grid_with_parts(rng, emotion, gender, rows, cols)[0]


def make_grid_with_parts(
    rng: np.random.Generator, emotion: str, gender: str, rows: int, cols: int
) -> tuple[Image.Image, dict[tuple[int, int], FaceParts]]:
    """:func:`make_grid`'s image and each cell's :class:`FaceParts` (keyed by (row, col)), in grid pixels."""
    canvas = Image.new("RGB", (GRID_SIZE, GRID_SIZE), (248, 248, 246))
    ys, xs = edges(GRID_SIZE, rows), edges(GRID_SIZE, cols)
    gutter = int(rng.integers(2, 6))
    cells = {}
    for r in range(rows):
        for c in range(cols):
            w, h = xs[c + 1] - xs[c] - 2 * gutter, ys[r + 1] - ys[r] - 2 * gutter
            backdrop = BACKDROPS[int(rng.integers(len(BACKDROPS)))]
            side = max(w, h)
            face, parts = draw_face_with_parts(rng, emotion, gender, side, intensity=rng.uniform(0.6, 1.1), vivid=True,
                                               backdrop=backdrop)
            canvas.paste(face.resize((w, h), Image.LANCZOS), (xs[c] + gutter, ys[r] + gutter))
            cells[r, c] = parts.placed(w / side, h / side, xs[c] + gutter, ys[r] + gutter)
    return canvas, cells


def _write_synthetic(out: Path, spec: DemoSpec, progress: bool) -> int:
    plan = []
    for split in ("train", "test"):
        genders = GENDERS if split == "train" else spec.synthetic_test_genders
        copies = spec.synthetic_train_grids_per_cell if split == "train" else 1
        for emotion in CLASSES:
            for gender in genders:
                for k in range(copies):
                    plan.append((split, emotion, gender, k))
    rows_by_split: dict[str, list[dict]] = {"train": [], "test": []}
    geometry = []
    for split, emotion, gender, k in tqdm(plan, desc="demo synthetic grids", disable=not progress):
        seed = [spec.seed, 2, split == "test", CLASSES.index(emotion), GENDERS.index(gender), k]
        rng = np.random.default_rng(seed)
        name = f"{split}_{emotion.lower()}_{gender}_{k:02d}.png"
        grid, cells = make_grid_with_parts(rng, emotion, gender, spec.grid_rows, spec.grid_cols)
        write_image(out / "synthetic" / "raw_grids" / split / name, grid)
        geometry += [{"file": name, "split": split, "row": r, "col": c, "width": GRID_SIZE, "height": GRID_SIZE, **parts.row()}
                     for (r, c), parts in cells.items()]
        intensity = "extreme" if emotion != "Neutral" else "none"
        rows_by_split[split].append(
            {
                "file": name,
                "emotion": emotion,
                "gender": gender,
                "intensity": intensity,
                "layout": f"{spec.grid_rows}x{spec.grid_cols}",
                "generator": "fercore-demo",
                "seed": "-".join(str(int(s)) for s in seed),
                "prompt": build_prompt(emotion, gender, intensity=intensity if intensity != "none" else "high",
                                       rows=spec.grid_rows, cols=spec.grid_cols),
            }
        )
    for split, rows in rows_by_split.items():
        write_csv(out / "synthetic" / "raw_grids" / split / "grids.csv", pd.DataFrame(rows))
    write_csv(out / "geometry" / "synthetic.csv", pd.DataFrame(geometry))
    return len(plan)


DRAWN = "drawn by the demo generator"


def _drawn_face(row: pd.Series, scale_x: float = 1.0, scale_y: float = 1.0, left: float = 0.0, top: float = 0.0) -> Face:
    """A :class:`fercore.faces.Face` from a geometry table row, optionally moved into a crop
    whose top-left is (left, top) in the row's pixels and which is resized by (scale_x, scale_y)."""
    def move(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.stack([(x + 0.5 - left) * scale_x - 0.5, (y + 0.5 - top) * scale_y - 0.5], axis=-1)

    marks = move(np.array([row[f"{n}_x"] for n in LANDMARKS], dtype=float), np.array([row[f"{n}_y"] for n in LANDMARKS], dtype=float))
    corners = move(np.array([row["face_x0"], row["face_x1"]], dtype=float), np.array([row["face_y0"], row["face_y1"]], dtype=float))
    return Face((float(corners[0, 0]), float(corners[0, 1]), float(corners[1, 0]), float(corners[1, 1])), 1.0, marks)


def drawn_detections(samples: pd.DataFrame, geometry_dir: str | Path) -> list[Detection]:
    """The faces the demo generator drew, as detections (detector :data:`DRAWN`), for the rows of
    ``samples`` that are demo images: real-style faces (matched by ``<split>/<emotion>/<file>``)
    and faces extracted from demo grids (matched by grid file, row and column of the extraction
    manifest's columns ``source, row, col, x0, y0, x1, y1``). Other rows are left out (logged)."""
    geometry_dir = Path(geometry_dir)
    real_csv, synthetic_csv = geometry_dir / "real.csv", geometry_dir / "synthetic.csv"
    if not real_csv.is_file() or not synthetic_csv.is_file():
        raise FileNotFoundError(f"{geometry_dir} lacks real.csv / synthetic.csv: write the demo data with this fercore "
                                "(`fercore demo --force-data`)")
    real = pd.read_csv(real_csv).set_index("path")
    cells = pd.read_csv(synthetic_csv).set_index(["file", "row", "col"])
    found = []
    for sample in samples.to_dict("records"):
        path = Path(str(sample["path"]))
        key = "/".join(path.parts[-3:])
        if key in real.index:
            row = real.loc[key]
            found.append(Detection((_drawn_face(row),), int(row["width"]), int(row["height"]), DRAWN))
            continue
        cell = (Path(str(sample.get("source", ""))).name, sample.get("row"), sample.get("col"))
        if "x0" in sample and cell in cells.index:
            with Image.open(path) as handle:
                width, height = handle.size
            x0, y0, x1, y1 = (float(sample[k]) for k in ("x0", "y0", "x1", "y1"))
            face = _drawn_face(cells.loc[cell], width / (x1 - x0), height / (y1 - y0), x0, y0)
            found.append(Detection((face,), width, height, DRAWN))
    if len(found) < len(samples):
        log.info("drawn landmarks: %d of %d images are demo images with recorded geometry", len(found), len(samples))
    return found


def make_demo_data(out: str | Path, spec: DemoSpec | None = None, *, force: bool = False, progress: bool = True) -> dict:
    """Write the demo dataset under ``out`` (skipped when an identical one is already there).

    Returns the stamp written to ``out/demo.json``: spec, version and counts.
    """
    out = Path(out)
    spec = spec or DemoSpec()
    stamp_path = out / "demo.json"
    wanted = {"version": DEMO_VERSION, "spec": asdict(spec)}
    if stamp_path.is_file() and not force:
        stamp = json.loads(stamp_path.read_text())
        if {k: stamp.get(k) for k in wanted} == json.loads(json.dumps(wanted)):
            log.info("demo data in %s is complete and current; reusing it", out)
            return stamp
        raise FileExistsError(
            f"{out} holds demo data made with other settings or an older fercore ({stamp_path}); rewrite it with "
            f"`fercore demo-data {out} --force` (or `fercore demo --force-data`), or choose another folder"
        )
    n_real = _write_real(out, spec, progress)
    n_grids = _write_synthetic(out, spec, progress)
    stamp = {**wanted, "real_images": n_real, "synthetic_grids": n_grids, "synthetic_faces": n_grids * spec.grid_rows * spec.grid_cols}
    write_json(stamp_path, stamp)
    return stamp
