"""Grid folders and records: the inputs planned and checked up front, the record of each
finished grid (by content hash), the manifest's columns, perceptual near-duplicates across
grids, the summary table and contact sheets."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from fercore.core.files import sha256_file, write_image
from fercore.core.labels import CLASSES, UnknownLabelError, canonical_name
from fercore.data import is_image_file, load_rgb
from fercore.grids.cells import crop_padded
from fercore.grids.layout import GridInputError
from fercore.grids.quality import QualityThresholds

MANIFEST_COLUMNS = [
    "source", "split", "row", "col", "x0", "y0", "x1", "y1", "emotion", "gender", "kept", "reason",
    "path", "intensity", "layout", "layout_method", "layout_evidence", "n_faces", "face_frac", "blur", "brightness",
    "clipped", "contrast", "phash", "grid_sha256", "crop", "framing", "face_x0", "face_y0", "face_x1", "face_y1",
    "pad_frac", "valid",
]
#: grids.csv columns with a place of their own in the manifest: ``file`` (the grid, as ``source``), emotion,
#: gender, intensity, and ``layout`` (what the prompt asked for, kept as ``layout_asked`` beside the detected ``layout``).
GRIDS_CSV_OWN = ("file", "emotion", "gender", "intensity", "layout")
#: Every other grids.csv column (generator, template, prompt, seed, a user's own) is carried to each face of its
#: grid after these grid-level manifest columns.
GRID_COLUMNS = ["layout_asked"]
#: Names a grids.csv column may not take: the manifest's own, and those the sample and prediction tables add.
RESERVED_COLUMNS = frozenset(MANIFEST_COLUMNS) | frozenset(GRID_COLUMNS) | {"label", "folder", "domain", "dataset", "pred", "error"} \
    | {f"{prefix}_{name}" for prefix in ("p", "logit") for name in CLASSES}
#: The reason of a grid that could not be extracted (one manifest row, row and col -1), before its cause.
GRID_FAILED = "grid_failed"


def failed_grid_row(image: str, split: str, meta: dict[str, Any], err: Exception) -> dict[str, Any]:
    """The one manifest row of a grid that could not be extracted, with the reason."""
    try:
        digest = sha256_file(image)
    except OSError:
        digest = ""
    message = str(err) if isinstance(err, GridInputError) else f"{type(err).__name__}: {err}"
    return {**dict.fromkeys(MANIFEST_COLUMNS, ""), "source": str(image), "split": split, "row": -1, "col": -1,
            "x0": 0, "y0": 0, "x1": 0, "y1": 0, "emotion": meta.get("emotion", ""), "gender": meta.get("gender", ""),
            "intensity": meta.get("intensity", ""), "kept": False, "reason": f"{GRID_FAILED}: {message}", "grid_sha256": digest}


def plan_inputs(raw_dir: str | Path) -> list[tuple[str, str, dict[str, Any]]]:
    """(image path, split, metadata) for every grid under ``raw_dir/<split>/``, checked up front."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise GridInputError(f"{raw_dir} does not exist: expected {raw_dir}/<split>/*.png with a grids.csv")
    splits = sorted(p for p in raw_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not splits:
        raise GridInputError(f"{raw_dir} has no split folders (train/, test/ ...)")
    jobs = []
    for split_dir in splits:
        images = sorted(p for p in split_dir.iterdir() if p.is_file() and is_image_file(p))
        others = sorted(p.name for p in split_dir.iterdir() if p.is_file() and not is_image_file(p) and p.name != "grids.csv")
        if others:
            raise GridInputError(f"{split_dir}: not images: {', '.join(others[:5])}; move them out of the grid folder")
        table = _grids_table(split_dir)
        listed = set(table.index)
        missing = sorted(listed - {p.name for p in images})
        if missing:
            raise GridInputError(_missing_message(split_dir, missing))
        for image in images:
            if image.name not in listed:
                raise GridInputError(f"{image} has no row in {split_dir / 'grids.csv'}; add one (file, emotion, gender)")
            meta = table.loc[image.name].to_dict()
            try:
                meta["emotion"] = canonical_name(str(meta["emotion"]))
            except UnknownLabelError as err:
                raise GridInputError(f"{split_dir / 'grids.csv'}, {image.name}: {err}") from None
            jobs.append((str(image), split_dir.name, meta))
    if not jobs:
        raise GridInputError(f"{raw_dir}: no grid images found")
    return jobs


def _grids_table(split_dir: Path) -> pd.DataFrame:
    """A split's ``grids.csv`` indexed by file, checked for its columns."""
    csv = split_dir / "grids.csv"
    if not csv.is_file():
        raise GridInputError(f"{csv} is missing: each split folder needs grids.csv with columns file, emotion, gender")
    table = pd.read_csv(csv, dtype=str).fillna("")
    needed = {"file", "emotion"} - set(table.columns)
    if needed:
        header = csv.read_text(errors="replace").partition("\n")[0]
        other = next((sep for sep in (";", "\t", "|") if sep in header and set(header.split(sep)) >= {"file", "emotion"}), None)
        if other is not None:
            raise GridInputError(f"{csv} separates its columns with {other!r}, not commas (a spreadsheet export?): "
                                 "save it as comma-separated CSV (columns file, emotion, gender ...)")
        raise GridInputError(f"{csv} lacks columns {sorted(needed)}")
    _refuse_clashes(csv, list(table.columns))
    twice = table[table["file"].duplicated(keep=False)]
    if len(twice):
        name = twice["file"].iloc[0]
        rows = twice[twice["file"] == name]
        lines = ", ".join(f"line {i + 2}: {e or '(no emotion)'}" for i, e in zip(rows.index, rows["emotion"], strict=True))
        raise GridInputError(f"{csv} lists {name} {len(rows)} times ({lines}); a grid has one row: keep the right one")
    return table.set_index("file")


def _refuse_clashes(csv: Path, columns: list[str]) -> None:
    """Refuse a grids.csv column named (in any case: sample tables read names in lower case) like one
    fercore adds to the manifest or the sample tables, naming it, the file and the fix."""
    reserved = {name.lower() for name in RESERVED_COLUMNS}
    clash = [c for c in columns if str(c).strip().lower() in reserved and c not in GRIDS_CSV_OWN]
    if not clash:
        return
    name = str(clash[0]).strip()
    fix = (f"write it {name.lower()!r}, in lower case" if name.lower() in GRIDS_CSV_OWN
           else f"rename it in grids.csv (e.g. 'grid_{name}'): every other grids.csv column is carried to the faces under its own name")
    raise GridInputError(f"{csv}: column {clash[0]!r} has the name of a column fercore adds to the manifest or the sample tables"
                         f"{f' (also {clash[1:]})' if len(clash) > 1 else ''}; {fix}")


def _missing_message(split_dir: Path, missing: list[str]) -> str:
    """Why rows of grids.csv name no grid: files in a subfolder (not searched) or files that are not there."""
    nested = [m for m in missing if ("/" in m or "\\" in m) and (split_dir / m).is_file()]
    if nested:
        return (f"{split_dir / 'grids.csv'} lists {', '.join(nested[:3])}, in a subfolder: grids are read from "
                f"{split_dir} itself, not its subfolders; move the grids up into {split_dir} (and list them by file "
                "name) or make the subfolder a split folder of its own with its own grids.csv")
    return f"{split_dir / 'grids.csv'} lists files that do not exist: {', '.join(missing[:5])} (not in {split_dir})"


def grid_fields(meta: dict[str, Any], asked: str) -> dict[str, Any]:
    """The grid-level manifest fields of one grid: ``layout_asked`` (its grids.csv ``layout``, else ``asked``)
    and every grids.csv column without a place of its own (:data:`GRIDS_CSV_OWN`), under its own name."""
    return {"layout_asked": str(meta.get("layout") or asked),
            **{k: v for k, v in meta.items() if k not in GRIDS_CSV_OWN and k not in RESERVED_COLUMNS}}


def grid_columns(table: pd.DataFrame) -> list[str]:
    """The columns of a manifest or a sample table read from one that came from grids.csv (``layout_asked``,
    generator, template, prompt, seed, a user's own ...): every column whose name fercore does not reserve."""
    return [c for c in table.columns if c in GRID_COLUMNS or c not in RESERVED_COLUMNS]


def record_path(out_dir: Path, image: str, split: str, meta: dict[str, Any]) -> Path:
    """Where a finished grid is recorded: by content hash, name and its grids.csv row (identical
    files under two names are two grids; a changed file or relabelled row is a new grid)."""
    row = hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return out_dir / ".grids" / f"{split}__{Path(image).name}__{sha256_file(image)[:16]}__{row}.csv"


def drop_stale_records(out_dir: Path, image: str, split: str, current: Path) -> None:
    """Remove the faces and records of earlier extractions of this grid (another file version,
    label or option set), so that a redone grid leaves no stale face behind."""
    for old in (out_dir / ".grids").glob(f"{split}__{Path(image).name}__*.csv"):
        if old == current:
            continue
        for rel in pd.read_csv(old, usecols=["path"], dtype=str)["path"].dropna():
            (out_dir / rel).unlink(missing_ok=True)
        old.unlink()


def load_record(path: Path) -> pd.DataFrame:
    """A finished grid's manifest rows (records of older versions get the columns they lack)."""
    text = ["reason", "path", "gender", "intensity", "layout", "layout_method", "layout_evidence", "crop", "framing", "valid"]
    table = pd.read_csv(path, dtype={"phash": str, **dict.fromkeys(text, str)})
    table = table.reindex(columns=list(dict.fromkeys([*table.columns, *MANIFEST_COLUMNS])), fill_value="")  # older records
    table[text] = table[text].fillna("")
    return table.assign(kept=table["kept"].astype(bool))

def _thumbnail(path: Path) -> np.ndarray:
    """A face's 32x32 grey thumbnail, centred and of unit norm (for correlations)."""
    gray = cv2.resize(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    gray -= gray.mean()
    return gray / (np.linalg.norm(gray) + 1e-6)


def _restore_face(row: pd.Series, target: Path, face_size: int) -> None:
    """Crop a kept face from its source grid again (as :func:`fercore.grids.extract.extract_grid` did;
    a box inside the canvas is cropped as by :func:`fercore.grids.cells.crop_resized`, one past it padded)."""
    box = (int(row["x0"]), int(row["y0"]), int(row["x1"]), int(row["y1"]))
    write_image(target, crop_padded(np.asarray(load_rgb(row["source"])), box, face_size)[0])


def mark_duplicates(manifest: pd.DataFrame, out_dir: Path, t: QualityThresholds, face_size: int) -> pd.DataFrame:
    """Reject later near-duplicates of earlier kept faces (sorted order: deterministic), removing their files.

    Candidates share a perceptual hash within ``max_duplicate_distance`` bits; a candidate is a
    duplicate when the two faces' 32x32 grey thumbnails also correlate above ``min_duplicate_correlation``
    (centred portraits of different people can share a coarse hash, not their pixels).
    """
    kept: list[tuple[str, Path]] = []
    hashes = np.zeros(int(manifest["kept"].sum()), dtype=np.uint64)  # of the faces in ``kept``, in order
    thumbs: dict[Path, np.ndarray] = {}

    def thumb(path: Path) -> np.ndarray:
        if path not in thumbs:
            thumbs[path] = _thumbnail(path)
        return thumbs[path]

    for i in manifest.index[manifest["kept"]]:
        value, face = int(manifest.at[i, "phash"], 16), out_dir / manifest.at[i, "path"]
        if not face.is_file():  # removed as a duplicate by an earlier run: crop it again from the source
            _restore_face(manifest.loc[i], face, face_size)
        near = np.flatnonzero(np.bitwise_count(hashes[:len(kept)] ^ np.uint64(value)) <= t.max_duplicate_distance)
        twin = next((kept[k][0] for k in near if float((thumb(face) * thumb(kept[k][1])).sum()) >= t.min_duplicate_correlation),
                    None)
        if twin is None:
            hashes[len(kept)] = value
            kept.append((f"{Path(manifest.at[i, 'source']).name} r{manifest.at[i, 'row']}c{manifest.at[i, 'col']}", face))
            continue
        face.unlink(missing_ok=True)
        manifest.loc[i, ["kept", "reason", "path"]] = [False, f"duplicate of {twin}", ""]
    return manifest

def summary_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """Kept and rejected cells by reason, per emotion and gender."""
    reason = manifest["reason"].where(~manifest["kept"], "kept").str.replace(r"duplicate of .*", "duplicate", regex=True)
    reason = reason.str.replace(rf"{GRID_FAILED}: .*", GRID_FAILED, regex=True)
    return pd.crosstab([manifest["emotion"], manifest["gender"]], reason, margins=True, margins_name="total")


def contact_sheet(source: str, rows: pd.DataFrame, path: Path, width: int = 768) -> Path:
    """The grid, downscaled, with kept cells outlined green and rejected ones red with their reason;
    for a grid that could not be extracted, a red note with the reason."""
    failed = rows[rows["reason"].str.startswith(GRID_FAILED)]
    if len(failed):
        sheet = Image.new("RGB", (width, 64), (255, 255, 255))
        text = failed["reason"].iloc[0]
        ImageDraw.Draw(sheet).multiline_text((8, 8), "\n".join(text[i:i + 120] for i in range(0, min(len(text), 360), 120)),
                                             fill=(230, 40, 40))
        return write_image(path, sheet)
    image = load_rgb(source)
    scale = width / image.width
    sheet = image.resize((width, int(round(image.height * scale))), Image.BILINEAR)
    draw = ImageDraw.Draw(sheet)
    for row in rows.itertuples(index=False):
        box = [row.x0 * scale, row.y0 * scale, row.x1 * scale - 1, row.y1 * scale - 1]
        colour = (40, 200, 60) if row.kept else (230, 40, 40)
        draw.rectangle(box, outline=colour, width=3)
        if not row.kept:
            draw.rectangle([box[0] + 3, box[1] + 3, box[0] + 6 * len(row.reason[:18]) + 6, box[1] + 15], fill=(255, 255, 255))
            draw.text((box[0] + 5, box[1] + 4), row.reason[:18], fill=colour)
    return write_image(path, sheet)
