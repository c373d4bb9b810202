"""The demo's procedural faces: drawn from parts (head, hair, eyes, brows, nose, mouth) whose
geometry follows the emotion (e.g. Anger lowers the inner brows, Surprise opens eyes and mouth)
scaled by a random intensity, so low-intensity faces are close to Neutral; with where each part
was drawn (:class:`FaceParts`), and generator-style grids of them. The dataset written from them
is :mod:`fercore.demo.dataset`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from fercore.grids import edges

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
GRID_SIZE = 1024

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
    head = _place_head(rng, emotion, gender, W, intensity=intensity, vivid=vivid, zoom=zoom, jitter=jitter)
    _draw_head(d, head, rng)
    # where the parts go, in drawing coordinates (mapped to the returned image at the end)
    outline = np.linspace(0.0, 2 * math.pi, OUTLINE_POINTS, endpoint=False)
    drawn: dict[str, list[tuple[float, float]]] = {
        "outline": [(head.cx + head.rx * math.cos(t), head.cy + head.ry * math.sin(t)) for t in outline]}
    drawn.update(_draw_eyes(d, head))
    drawn.update(_draw_nose(d, head))
    drawn.update(_draw_mouth(d, head))
    if vivid:  # glossy highlights, blush: the over-finished look of generated portraits
        _draw_blush(d, head)
    roll = rng.normal(0, 5.0 * jitter)
    img = img.rotate(roll, resample=Image.BICUBIC, center=(head.cx, head.cy), fillcolor=bg)
    parts = FaceParts({name: _to_output(np.array(points), head.cx, head.cy, roll, W, size) for name, points in drawn.items()})
    return img.resize((size, size), Image.LANCZOS), parts


@dataclass(frozen=True)
class _Head:
    """A face being drawn: its expression parameters, centre, radii, sideways shift of the
    features (a slight turn), line width and colours, in drawing pixels."""

    gender: str
    vivid: bool
    p: dict[str, float]
    skin: np.ndarray
    hair: tuple[int, int, int]
    cx: float
    cy: float
    rx: float
    ry: float
    yaw: float
    lw: int

    @property
    def skin_c(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self.skin)

    @property
    def shade(self) -> tuple[int, ...]:
        return tuple(int(v * 0.8) for v in self.skin)

    @property
    def eye_y(self) -> float:
        return self.cy - self.ry * 0.12


def _place_head(rng: np.random.Generator, emotion: str, gender: str, W: int, *, intensity: float, vivid: bool,
                zoom: float, jitter: float) -> _Head:
    """Draw the face's expression, skin and hair colours, size and place on a ``W`` x ``W`` canvas."""
    p = _expression(emotion, intensity, rng)
    skin = np.array(SKIN_TONES[rng.integers(len(SKIN_TONES))], dtype=float)
    if vivid:
        skin = np.clip(skin * 1.06 + 6, 0, 255)
    hair = HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))]
    scale = rng.uniform(0.86, 1.02)
    cx = W / 2 + rng.normal(0, W * 0.02 * jitter)
    cy = W / 2 + W * 0.02 * zoom + rng.normal(0, W * 0.015 * jitter)
    rx, ry = W * 0.27 * scale * zoom * rng.uniform(0.92, 1.06), W * 0.35 * scale * zoom
    yaw = rng.normal(0, rx * 0.05)  # features shift sideways: a slight head turn
    return _Head(gender, vivid, p, skin, hair, cx, cy, rx, ry, yaw, max(2, int(rx * 0.055)))


def _draw_head(d: ImageDraw.ImageDraw, h: _Head, rng: np.random.Generator) -> None:
    """Shoulders, neck, hair behind the head, ears, the face, a beard (some men) and the hair on top."""
    cx, cy, rx, ry, hair, shade, skin_c = h.cx, h.cy, h.rx, h.ry, h.hair, h.shade, h.skin_c
    d.ellipse([cx - rx * 1.9, cy + ry * 1.05, cx + rx * 1.9, cy + ry * 2.6], fill=CLOTHES[rng.integers(len(CLOTHES))])
    d.rectangle([cx - rx * 0.38, cy + ry * 0.6, cx + rx * 0.38, cy + ry * 1.2], fill=shade)
    if h.gender == "female":  # long hair behind the head
        d.rounded_rectangle([cx - rx * 1.22, cy - ry * 1.1, cx + rx * 1.22, cy + ry * rng.uniform(0.9, 1.5)], radius=int(rx * 0.8), fill=hair)
    d.ellipse([cx - rx * 1.1, cy - ry * 0.1, cx - rx * 0.85, cy + ry * 0.25], fill=shade)  # ears
    d.ellipse([cx + rx * 0.85, cy - ry * 0.1, cx + rx * 1.1, cy + ry * 0.25], fill=shade)
    d.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=skin_c)
    if h.gender == "male" and rng.random() < 0.4:  # beard / stubble
        beard = tuple(int(0.55 * a + 0.45 * s) for a, s in zip(hair, skin_c, strict=True))
        d.chord([cx - rx, cy - ry * 0.35, cx + rx, cy + ry], 20, 160, fill=beard)
    top = ry * (1.12 if h.gender == "male" else 1.18)  # hair on top
    d.chord([cx - rx * 1.05, cy - top, cx + rx * 1.05, cy + ry * (0.25 if h.gender == "female" else 0.1)], 180, 360, fill=hair)


def _draw_eyes(d: ImageDraw.ImageDraw, h: _Head) -> dict[str, list[tuple[float, float]]]:
    """Both eyes (white, iris, pupil, a catch-light when vivid) and brows; their drawn points."""
    cx, rx, ry, p, lw, eye_y = h.cx, h.rx, h.ry, h.p, h.lw, h.eye_y
    ew, eh = rx * 0.25, ry * 0.09 * p["eye"]
    drawn: dict[str, list[tuple[float, float]]] = {}
    for side in (-1, 1):
        ex = cx + side * rx * 0.4 + h.yaw
        d.ellipse([ex - ew, eye_y - eh, ex + ew, eye_y + eh], fill=(245, 245, 240), outline=(40, 30, 30), width=lw)
        ir = min(eh * 0.95, ew * 0.5)
        d.ellipse([ex - ir, eye_y - ir, ex + ir, eye_y + ir], fill=(60, 45, 35) if not h.vivid else (40, 90, 150))
        pr = ir * 0.5
        d.ellipse([ex - pr, eye_y - pr, ex + pr, eye_y + pr], fill=(10, 10, 10))
        if h.vivid:  # catch-light
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
        d.line([inner, mid, outer], fill=h.hair if h.hair != (150, 150, 150) else (70, 70, 70),
               width=int(lw * (2.6 if h.gender == "male" else 2.1)), joint="curve")
        drawn["left_eye" if side < 0 else "right_eye"] = [(ex, eye_y)]
        drawn["left_brow" if side < 0 else "right_brow"] = [inner, mid, outer]
    return drawn


def _draw_nose(d: ImageDraw.ImageDraw, h: _Head) -> dict[str, list[tuple[float, float]]]:
    """The nose bridge, nostril arc and (disgust) a wrinkled bridge; its tip."""
    cx, cy, rx, ry, yaw, lw, skin_c = h.cx, h.cy, h.rx, h.ry, h.yaw, h.lw, h.skin_c
    nose_y = cy + ry * 0.22
    d.line([(cx + yaw, h.eye_y + ry * 0.05), (cx + yaw - rx * 0.05, nose_y)], fill=h.shade, width=lw)
    d.arc([cx + yaw - rx * 0.16, nose_y - ry * 0.06, cx + yaw + rx * 0.16, nose_y + ry * 0.05], 10, 170, fill=tuple(int(v * 0.6) for v in skin_c), width=lw)
    for k in range(int(round(max(0.0, h.p["wrinkle"]) * 3))):  # disgust: wrinkled nose bridge
        y = h.eye_y + ry * (0.05 + 0.05 * k)
        d.line([(cx + yaw - rx * 0.12, y), (cx + yaw + rx * 0.12, y + ry * 0.01)], fill=tuple(int(v * 0.65) for v in skin_c), width=max(1, lw - 1))
    return {"nose": [(cx + yaw, nose_y)]}  # the tip: where the bridge line meets the nostril arc


def _draw_mouth(d: ImageDraw.ImageDraw, h: _Head) -> dict[str, list[tuple[float, float]]]:
    """A centre curve whose corners lift (smile) or drop, lips open around it (teeth when wide
    open); the two corners."""
    p, ry, lw = h.p, h.ry, h.lw
    mouth_y = h.cy + ry * 0.5
    mw = h.rx * MOUTH_HALF_WIDTH * p["mouth_width"]
    lift_l = p["mouth_lift"] * ry * MOUTH_LIFT
    lift_r = lift_l + p["smirk"] * ry * MOUTH_LIFT
    upper_raise = max(0.0, p["wrinkle"]) * ry * 0.03

    def centre(x: float) -> float:
        lift = lift_l if x < 0 else lift_r
        return mouth_y - lift * x * x

    open_h = p["mouth_open"] * ry * 0.24
    lip = (170, 60, 70) if (h.vivid or h.gender == "female") else tuple(int(v * 0.7) for v in h.skin_c)
    x0, x1 = h.cx + h.yaw - mw, h.cx + h.yaw + mw
    if open_h > ry * 0.02:
        upper = _curve(x0, x1, lambda x: centre(x) - (open_h * 0.45 + upper_raise) * (1 - x * x))
        lower = _curve(x0, x1, lambda x: centre(x) + open_h * 0.75 * (1 - x * x))
        d.polygon(upper + lower[::-1], fill=(60, 20, 25), outline=lip, width=lw)
        if p["teeth"] > 0.5:
            teeth = _curve(x0 + mw * 0.25, x1 - mw * 0.25, lambda x: centre(x) - (open_h * 0.4 + upper_raise) * (1 - x * x) + lw)
            d.line(teeth, fill=(250, 250, 245), width=max(2, int(open_h * 0.35)))
    else:
        d.line(_curve(x0, x1, lambda x: centre(x) - upper_raise * (1 - x * x)), fill=lip, width=int(lw * 2.0), joint="curve")
    return {"mouth_left": [(x0, centre(-1.0))], "mouth_right": [(x1, centre(1.0))]}  # the corners


def _draw_blush(d: ImageDraw.ImageDraw, h: _Head) -> None:
    """Glossy cheek highlights (vivid faces)."""
    cx, cy, rx, ry, skin = h.cx, h.cy, h.rx, h.ry, h.skin
    blush = tuple(min(255, int(v * 1.02 + 12)) for v in (skin[0], skin[1] * 0.9, skin[2] * 0.9))
    d.ellipse([cx - rx * 0.75, cy + ry * 0.12, cx - rx * 0.4, cy + ry * 0.32], fill=blush)
    d.ellipse([cx + rx * 0.4, cy + ry * 0.12, cx + rx * 0.75, cy + ry * 0.32], fill=blush)


#: The demo's two "generators": drawing styles, each with a backdrop palette and a factor on the drawn
#: expression intensity (``soft`` draws expressions at 0.85 of ``vivid``'s: a planted generator effect).
STYLES: dict[str, dict[str, Any]] = {
    "vivid": {"backdrops": BACKDROPS, "intensity": 1.0},
    "soft": {"backdrops": [(196, 196, 204), (206, 200, 192), (190, 200, 196), (210, 206, 212)], "intensity": 0.85},
}
#: Default intensity range of a grid's faces (uniform; scaled by the style and the caller).
GRID_INTENSITY = (0.6, 1.1)


def make_grid(rng: np.random.Generator, emotion: str, gender: str, rows: int, cols: int) -> Image.Image:
    """A 1024x1024 generator-style grid of one emotion and gender, thin light gutters."""
    return make_grid_with_parts(rng, emotion, gender, rows, cols)[0]


def make_grid_with_parts(
    rng: np.random.Generator, emotion: str, gender: str, rows: int, cols: int, *,
    intensity: tuple[float, float] = GRID_INTENSITY, style: str = "vivid",
) -> tuple[Image.Image, dict[tuple[int, int], FaceParts]]:
    """:func:`make_grid`'s image and each cell's :class:`FaceParts` (keyed by (row, col)), in grid pixels.
    Each face's intensity is drawn uniformly from ``intensity`` and scaled by the ``style``'s factor
    (:data:`STYLES`), whose palette gives the cells' backdrops."""
    if style not in STYLES:
        raise ValueError(f"style must be one of {sorted(STYLES)}, not {style!r}")
    backdrops, scale = STYLES[style]["backdrops"], STYLES[style]["intensity"]
    canvas = Image.new("RGB", (GRID_SIZE, GRID_SIZE), (248, 248, 246))
    ys, xs = edges(GRID_SIZE, rows), edges(GRID_SIZE, cols)
    gutter = int(rng.integers(2, 6))
    cells = {}
    for r in range(rows):
        for c in range(cols):
            w, h = xs[c + 1] - xs[c] - 2 * gutter, ys[r + 1] - ys[r] - 2 * gutter
            backdrop = backdrops[int(rng.integers(len(backdrops)))]
            side = max(w, h)
            face, parts = draw_face_with_parts(rng, emotion, gender, side, intensity=scale * rng.uniform(*intensity), vivid=True,
                                               backdrop=backdrop)
            canvas.paste(face.resize((w, h), Image.LANCZOS), (xs[c] + gutter, ys[r] + gutter))
            cells[r, c] = parts.placed(w / side, h / side, xs[c] + gutter, ys[r] + gutter)
    return canvas, cells
