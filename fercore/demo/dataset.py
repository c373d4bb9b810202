"""The embedded demo dataset: procedural faces in two visibly different domains.

Nothing is downloaded. ``make_demo_data(out)`` writes, deterministically for a seed:

* ``real/{train,test,holdout}/<emotion>/*.jpg``: "real-style" faces: muted or grey, noisy, blurred,
  unevenly lit, JPEG-compressed, natural expression intensity (like FER2013 / AffectNet); the demo models train and
  select on ``train`` only, so ``holdout`` holds real faces no model saw: the source of RQ2's real-faces control and of
  the null arm (real faces sent down the grid path) in RQ1, RQ3 and RQ4;
* ``synthetic/raw_grids/{train,test}/*.png`` + ``grids.csv``: "synthetic" 1024x1024 images
  holding a 6x6 grid of vivid, clean, exaggerated faces of one emotion and one gender each,
  as a text-to-image generator would make them; each grid has an intensity word, a prompt template
  and a "generator" (drawing style) with known effects (:func:`grid_factors`), recorded in ``grids.csv``;
* ``geometry/real.csv`` and ``geometry/synthetic.csv``: where the generator drew each face's
  eyes, nose tip, mouth corners, brows and head outline (:class:`FaceParts`), the ground truth
  for face-landmark tests and the demo's reference framing (:func:`drawn_detections`).

Faces are drawn from parts (:mod:`fercore.demo.drawing`) whose geometry follows the emotion,
scaled by a random intensity: a small model learns the classes clearly above chance but not
perfectly. Demo numbers are not research results.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageFilter

from fercore.core.files import write_csv, write_image, write_json
from fercore.core.labels import CLASSES
from fercore.core.progress import progress_bar as tqdm  # a bar in a terminal, log lines in a log file
from fercore.demo.drawing import GRID_SIZE, LANDMARKS, draw_face_with_parts, make_grid_with_parts
from fercore.faces import Detection, Face
from fercore.synthetic import build_prompt

log = logging.getLogger(__name__)

DEMO_VERSION = 8  # 8: real/holdout/, faces no demo model trains on (the control and the null arm); 7: the grids vary intensity word, template and generator (drawing style), two test grids per (emotion, gender); 6: brows above the eyes and mouth corners below the nose (human limits; they crossed before); 5: human-proportioned mouths (0.8 IOD, was 1.2); 4: two train grids per (emotion, gender), for grouped CV; 3: geometry/ (the drawn positions)
GENDERS = ("female", "male")
#: The random stream of each real split's faces (train and test keep the streams of earlier versions: same faces).
REAL_SPLIT_STREAMS = {"train": 0, "test": 1, "holdout": 2}


@dataclass(frozen=True)
class DemoSpec:
    """Sizes of the demo dataset (defaults: ~1 minute to write on one core)."""

    seed: int = 0
    real_train_per_class: int = 100
    real_test_per_class: int = 25
    real_holdout_per_class: int = 72  # never trained on: two null grids of 36 faces per emotion, or the control's faces
    real_size: int = 96
    synthetic_train_grids_per_cell: int = 2  # grids per (emotion, gender) in train: 4 per emotion, so grouped CV folds keep each
    synthetic_test_genders: tuple[str, ...] = GENDERS
    synthetic_test_grids_per_cell: int = 2  # grids per (emotion, gender) in test: 4 per emotion, both levels of each factor
    grid_rows: int = 6
    grid_cols: int = 6


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
        for split, n in (("train", spec.real_train_per_class), ("test", spec.real_test_per_class),
                         ("holdout", spec.real_holdout_per_class))
        for emotion in CLASSES
        for i in range(n)
    ]
    for split, emotion, i in tqdm(jobs, desc="demo real faces", disable=not progress):
        rng = np.random.default_rng([spec.seed, 1, REAL_SPLIT_STREAMS[split], CLASSES.index(emotion), i])
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


#: The factors the demo's grids vary (issue 31), with the planted effect of each, as drawn:
#: intensity word -> range of the drawn expression intensity ("extreme" draws far stronger expressions than "high");
INTENSITY_RANGES = {"high": (0.1, 0.4), "extreme": (0.9, 1.25)}
#: prompt template -> factor on the intensity ("movie" raises the emotion shown, as the thesis notes found);
TEMPLATES = {"portrait": 1.0, "movie": 1.15}
#: generator name -> drawing style of :data:`fercore.demo.drawing.STYLES` ("soft" draws at 0.85 and a muted palette).
GENERATORS = {"demo-vivid": "vivid", "demo-soft": "soft"}


def grid_factors(emotion: str, gender: str, copy: int) -> dict[str, str]:
    """The intensity word, template and generator of one demo grid, assigned so that within every
    emotion (two grids per gender) each intensity and each generator level has half the grids,
    orthogonal to each other and to gender; the template alternates with gender and emotion (within
    one emotion it goes with gender, which the demo draws no expression effect for). Neutral's
    intensity is ``none`` (it has no expression to intensify): outside the intensity contrast."""
    i, g = CLASSES.index(emotion), GENDERS.index(gender)
    return {"intensity": "none" if emotion == "Neutral" else list(INTENSITY_RANGES)[copy % 2],
            "template": list(TEMPLATES)[(i + g) % 2], "generator": list(GENERATORS)[(g + copy) % 2]}


def _grid_row(spec: DemoSpec, name: str, emotion: str, gender: str, factors: dict[str, str], seed: list[int]) -> dict:
    """The grids.csv row of one demo grid: what its prompt asked for and how it was drawn."""
    intensity = factors["intensity"]
    prompt = build_prompt(emotion, gender, intensity=intensity if intensity != "none" else "high", rows=spec.grid_rows,
                          cols=spec.grid_cols)
    if factors["template"] == "movie":
        prompt = f"A still from a movie. {prompt}"
    return {"file": name, "emotion": emotion, "gender": gender, "intensity": intensity, "template": factors["template"],
            "layout": f"{spec.grid_rows}x{spec.grid_cols}", "generator": factors["generator"],
            "seed": "-".join(str(int(s)) for s in seed), "prompt": prompt}


def _write_synthetic(out: Path, spec: DemoSpec, progress: bool) -> int:
    plan = []
    for split in ("train", "test"):
        genders = GENDERS if split == "train" else spec.synthetic_test_genders
        copies = spec.synthetic_train_grids_per_cell if split == "train" else spec.synthetic_test_grids_per_cell
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
        factors = grid_factors(emotion, gender, k)
        low, high = INTENSITY_RANGES.get(factors["intensity"], INTENSITY_RANGES["extreme"])  # Neutral: any (it draws no expression)
        scale = TEMPLATES[factors["template"]]
        grid, cells = make_grid_with_parts(rng, emotion, gender, spec.grid_rows, spec.grid_cols, intensity=(scale * low, scale * high),
                                           style=GENERATORS[factors["generator"]])
        write_image(out / "synthetic" / "raw_grids" / split / name, grid)
        geometry += [{"file": name, "split": split, "row": r, "col": c, "width": GRID_SIZE, "height": GRID_SIZE, **parts.row()}
                     for (r, c), parts in cells.items()]
        rows_by_split[split].append(_grid_row(spec, name, emotion, gender, factors, seed))
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
