"""Faces out of generated grid images: one grid's faces and manifest rows, and every grid of a folder.

``extract_grids(raw_dir, out_dir)`` reads ``raw_dir/<split>/*.png|jpg`` (+ ``grids.csv`` with
file, emotion, gender ...), finds each image's layout (uniform n x m, or ``auto``: the candidate
layout - expected split, gutters, seams between abutting portraits, face clusters, uniform and
face-fitted splits near them - that best explains the faces found on the whole grid,
:mod:`fercore.grids.evidence`), checks every cell (exactly one face, blur, exposure, contrast, face
size, near-duplicates; :mod:`fercore.grids.quality`) and writes 128x128 faces to
``out_dir/<split>/<emotion>/<stem>_r<row>c<col>.png`` and one manifest row per cell to
``out_dir/manifest.csv``: the cell's own columns, then ``layout_asked`` (grids.csv's ``layout``, what the
prompt asked for, beside the detected ``layout``) and every other grids.csv column of its grid (generator,
template, prompt, seed, a user's own). Raw images are only read. Each finished grid is recorded under
``out_dir/.grids/`` (by content hash, :mod:`fercore.grids.records`), so a rerun skips it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import torch
from PIL import Image

from fercore.core.files import sha256_file, write_csv, write_image, write_json
from fercore.core.progress import progress_bar as tqdm  # a bar in a terminal, log lines in a log file
from fercore.core.records import refuse_changes
from fercore.data import load_rgb
from fercore.grids.cells import crop_box, crop_padded, crop_resized, face_crop_box, framing, trim_gutters
from fercore.grids.detectors import make_detector
from fercore.grids.evidence import cascade_layout, choose_layout
from fercore.grids.irregular import refine_layout
from fercore.grids.layout import GridInputError, Layout, parse_layout, uniform_layout
from fercore.grids.quality import QualityThresholds, quality, rejection
from fercore.grids.records import (
    GRID_COLUMNS,
    GRID_FAILED,
    MANIFEST_COLUMNS,
    contact_sheet,
    drop_stale_records,
    failed_grid_row,
    grid_fields,
    load_record,
    mark_duplicates,
    plan_inputs,
    record_path,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtractOptions:
    """How to extract (the CLI's options)."""

    layout: str = "6x6"  # ROWSxCOLS, or 'auto'
    layout_strategy: str = "evidence"  # auto layout: 'evidence' (candidates weighed by faces) or 'cascade' (structure first)
    expected: str = "6x6"  # what the prompt asked for, compared with an auto layout
    irregular: bool = True  # auto layout: rows of their own length, or detection only, when the faces say so
    detector: str = "mtcnn"  # per cell: mtcnn (kept most faces on real-photo composites), haar, none
    face_size: int = 128
    margin: float = 0.25  # crop='cell': margin around a detected face, as a share of its size
    crop: str = "face"  # 'face': around the detected face with `framing`, not clamped to the cell; 'cell': in the cell
    framing: str = "fer2013"  # crop='face': one named framing for the whole set (fercore.grids.cells.FRAMINGS)
    thresholds: QualityThresholds = field(default_factory=QualityThresholds)


def grid_layout(rgb: np.ndarray, expected: tuple[int, int], options: ExtractOptions) -> Layout:
    """The layout of one grid under ``options``: a uniform split, or ``auto`` by
    ``options.layout_strategy`` (evidence: faces found by the extraction detector, Haar when it is 'none')."""
    return _layout_and_faces(rgb, expected, options)[0]


def _layout_and_faces(rgb: np.ndarray, expected: tuple[int, int], options: ExtractOptions) -> tuple[Layout, np.ndarray | None]:
    """:func:`grid_layout` and the faces the extraction detector found on the whole grid for it (None if none searched)."""
    if options.layout != "auto":
        return uniform_layout(rgb.shape[1], rgb.shape[0], *parse_layout(options.layout)), None
    detector = make_detector(options.detector)
    if options.layout_strategy == "cascade":
        return cascade_layout(rgb, expected, detector if detector.name != "none" else None), None
    if options.layout_strategy != "evidence":
        raise ValueError(f"layout_strategy must be evidence or cascade, not {options.layout_strategy!r}")
    choice = choose_layout(rgb, expected, detector if detector.name != "none" else make_detector("haar"))
    faces = choice.faces if detector.name != "none" else None
    if not options.irregular:
        return choice.layout, faces
    return refine_layout(choice.layout, choice.faces, rgb.shape[1], rgb.shape[0]), faces


def cell_hints(boxes: list[tuple[int, ...]], faces: np.ndarray | None) -> list[tuple[float, float, float, float] | None] | None:
    """Per cell, the one face found on the whole grid whose centre lies in it, as x0, y0, x1, y1 in
    the cell; None where there is none or more than one (and None without grid faces)."""
    if faces is None or not len(faces):
        return None
    centres = faces[:, :2] + faces[:, 2:] / 2
    hints: list[tuple[float, float, float, float] | None] = []
    for _, _, x0, y0, x1, y1 in boxes:
        inside = np.flatnonzero((centres[:, 0] >= x0) & (centres[:, 0] < x1) & (centres[:, 1] >= y0) & (centres[:, 1] < y1))
        if len(inside) != 1:
            hints.append(None)
            continue
        x, y, w, h = (float(v) for v in faces[inside[0]])
        hints.append((x - x0, y - y0, x - x0 + w, y - y0 + h))
    return hints


def extract_grid(image_path: str, split: str, meta: dict[str, Any], out_dir: str, options: ExtractOptions) -> list[dict[str, Any]]:
    """Manifest rows for one grid image; writes its kept faces (atomically). Never modifies the source.
    Raises :class:`GridInputError` for an image that cannot be read or holds no face (not a grid of faces)."""
    path = Path(image_path)
    try:
        rgb = np.asarray(load_rgb(path))
    except Exception as err:
        raise GridInputError(f"{path}: not a readable image ({type(err).__name__}: {err}); remove or replace it") from None
    expected = parse_layout(str(meta.get("layout") or options.expected))  # grids.csv may record what was asked
    layout, grid_faces = _layout_and_faces(rgb, expected, options)
    if layout.evidence:
        log.info("%s: %s", path.name, layout.evidence)
    detector = make_detector(options.detector)
    boxes = layout.boxes()
    found = (detector.detect_cells([rgb[y0:y1, x0:x1] for _, _, x0, y0, x1, y1 in boxes], cell_hints(boxes, grid_faces))
             if detector.name != "none" else None)
    if found is not None and not any(len(f) for f in found):
        raise GridInputError(f"{path}: no face found in any of its {len(boxes)} cells (layout {layout.name}); not a grid of faces?")
    emotion = meta["emotion"]
    common = {"source": str(path), "split": split, "emotion": emotion, "gender": meta.get("gender", ""),
              "intensity": meta.get("intensity", ""), "layout": layout.name + (f" ({layout.note})" if layout.note else ""),
              "layout_method": layout.method, "layout_evidence": layout.evidence, "grid_sha256": sha256_file(path)}
    rows: list[dict[str, Any]] = []
    kept: list[tuple[Path, Image.Image]] = []
    for k, cell in enumerate(boxes):
        row, crop = _cell_face(rgb, cell, None if found is None else found[k], options)
        rel = f"{split}/{emotion.lower()}/{path.stem}_r{cell[0]}c{cell[1]}.png"
        if not row["reason"]:
            kept.append((Path(out_dir) / rel, crop))
        rows.append({**common, **row, "path": rel if not row["reason"] else ""})
    _write_faces(kept)
    return rows


def _cell_face(rgb: np.ndarray, cell: tuple[int, ...], faces: np.ndarray | None, options: ExtractOptions
               ) -> tuple[dict[str, Any], Image.Image]:
    """One cell's manifest fields and face crop: around its one detected face with the set's framing
    (``crop='face'``), else in the cell as before (``crop='cell'``, or no single face found)."""
    r, c, x0, y0, x1, y1 = cell
    n_faces = None if faces is None else len(faces)
    face = faces[0] if n_faces == 1 else None
    face_frac = None if face is None else float(face[2] * face[3]) / float((x1 - x0) * (y1 - y0))
    face_box = None if face is None else (x0 + int(face[0]), y0 + int(face[1]), x0 + int(face[0] + face[2]), y0 + int(face[1] + face[3]))
    valid, pad = None, 0.0
    if options.crop == "face" and face_box is not None:
        box = face_crop_box(face_box, framing(options.framing))
        crop, valid, pad = crop_padded(rgb, box, options.face_size)
    else:
        box = crop_box((x0, y0, x1, y1), face, options.margin) if face is not None else trim_gutters(rgb, (x0, y0, x1, y1))
        crop = crop_resized(rgb, box, options.face_size)
    face_rgb = np.asarray(crop)
    usable = valid is not None and valid[2] - valid[0] >= 8 and valid[3] - valid[1] >= 8
    scores = quality(np.ascontiguousarray(face_rgb[valid[1]:valid[3], valid[0]:valid[2]]) if usable else face_rgb)  # padding excluded
    limits = options.thresholds if valid is None else replace(options.thresholds, min_blur=options.thresholds.min_blur_face)
    reason = rejection(scores, n_faces, face_frac, limits)
    if not reason and (pad > options.thresholds.max_padding or (valid is not None and not usable)):
        reason = "mostly_padding"
    return {
        "row": r, "col": c, "x0": box[0], "y0": box[1], "x1": box[2], "y1": box[3], "kept": not reason, "reason": reason,
        "crop": "face" if valid is not None else "cell", "framing": options.framing if valid is not None else "",
        **dict(zip(("face_x0", "face_y0", "face_x1", "face_y1"), face_box or ("",) * 4, strict=True)),
        "pad_frac": round(pad, 4), "valid": " ".join(str(v) for v in valid) if valid is not None and pad > 0 else "",
        "n_faces": n_faces if n_faces is not None else "", "face_frac": face_frac if face_frac is not None else "",
        **{k: v for k, v in scores.items() if k != "phash"}, "phash": f"{scores['phash']:016x}",
    }, crop


def _write_faces(faces_out: list[tuple[Path, Image.Image]]) -> None:
    """Write a grid's faces (atomically, each synced to disk) a few at a time: each write waits for
    its sync, which the disk groups (measured: 0.6 ms a face with 4 at a time, 4 ms one by one)."""
    def write(item: tuple[Path, Image.Image]) -> None:
        write_image(item[0], item[1], compress_level=1)  # lossless all the same; 2x faster than the default 6

    if faces_out:
        with ThreadPoolExecutor(max_workers=min(4, len(faces_out))) as pool:
            for _ in pool.map(write, faces_out):
                pass


# --------------------------------------------------------------------------- every grid of a folder

def _recorded_options(options: ExtractOptions) -> dict[str, Any]:
    """The options as recorded and compared: crop and framing do not matter without a detector (every crop is a cell crop)."""
    now = json.loads(json.dumps(asdict(options), default=str))
    if options.detector == "none":
        now.update(crop="cell", framing="")
    return now


def _check_options(out_dir: Path, options: ExtractOptions, force: bool) -> None:
    """Refuse to mix faces extracted with other options into ``out_dir`` (``--force`` redoes all). A record
    written before an option existed holds its old behaviour: cell crops, else the current value."""
    record = out_dir / ".grids" / "options.json"
    now = _recorded_options(options)
    if record.is_file() and not force:
        before = json.loads(record.read_text())
        before = {**now, "crop": "cell", **before, "thresholds": {**now["thresholds"], **before.get("thresholds", {})}}
        refuse_changes(before, now, lambda changed: GridInputError(
            f"{out_dir} was extracted with other options ({'; '.join(changed)}); "
            "pass --force to redo every grid with the new ones, or choose another output folder"), keys=now)
    write_json(record, now)


def _run_grid(job: tuple[str, str, dict[str, Any], str, ExtractOptions]) -> str:
    """Extract one grid and record it (replacing the records of its earlier versions)."""
    image, split, meta, out_dir, options = job
    try:
        rows = extract_grid(image, split, meta, out_dir, options)
    except Exception as err:  # one bad grid never stops the batch: recorded with its reason
        log.warning("%s: not extracted: %s", image, err)
        rows = [failed_grid_row(image, split, meta, err)]
    record = record_path(Path(out_dir), image, split, meta)
    drop_stale_records(Path(out_dir), image, split, record)
    write_csv(record, pd.DataFrame(rows, columns=MANIFEST_COLUMNS))
    return image


@contextmanager
def _one_thread_each() -> Iterator[None]:
    """While grids are extracted in several threads: one thread for torch and OpenCV inside each,
    so they do not oversubscribe the cores (measured: 2 torch threads beside a busy core made
    MTCNN 15x slower); the caller's settings are put back after."""
    before = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])


def extract_grids(
    raw_dir: str | Path,
    out_dir: str | Path,
    options: ExtractOptions | None = None,
    *,
    workers: int = 1,
    force: bool = False,
    progress: bool = True,
    contact_sheets: bool = True,
) -> pd.DataFrame:
    """Extract every grid; returns the manifest (also written to ``out_dir/manifest.csv``)."""
    options = options or ExtractOptions()
    out_dir = Path(out_dir)
    if out_dir.resolve() == Path(raw_dir).resolve() or Path(raw_dir).resolve() in out_dir.resolve().parents:
        raise GridInputError(f"write the faces outside the raw folder {raw_dir} (raw data is never modified)")
    jobs = plan_inputs(raw_dir)
    _check_options(out_dir, options, force)
    if options.layout != "auto":
        asked = sorted({str(meta.get("layout")) for _, _, meta in jobs if meta.get("layout") and meta.get("layout") != options.layout})
        if asked:
            log.warning("--layout %s disagrees with grids.csv, whose layout column says %s; the cells may be misaligned "
                        "(use --layout auto or the layout grids.csv gives)", options.layout, ", ".join(asked))
    records = {image: record_path(out_dir, image, split, meta) for image, split, meta in jobs}
    todo = [(image, split, meta, str(out_dir), options) for image, split, meta in jobs
            if force or not records[image].is_file()]
    if len(todo) < len(jobs):
        log.info("%d of %d grids already extracted; skipping them (--force redoes)", len(jobs) - len(todo), len(jobs))
    bar = tqdm(total=len(todo), desc="extract", unit="grid", disable=not progress)
    if workers > 1 and len(todo) > 1:
        # MTCNN runs torch: threads of this process (torch and OpenCV release the GIL while they compute), since
        # a forked copy of a process whose thread pools already ran (a notebook, a test session) can hang and a
        # spawned one imports torch afresh (seconds). Haar / none: forked processes.
        if options.detector == "mtcnn":
            with _one_thread_each():
                pool = ThreadPoolExecutor(max_workers=workers)
                try:
                    for _ in pool.map(_run_grid, todo):
                        bar.update()
                finally:  # on an error or Ctrl-C: let the running grids finish, start no other
                    pool.shutdown(cancel_futures=True)
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for _ in pool.map(_run_grid, todo):
                    bar.update()
    else:
        for job in todo:
            _run_grid(job)
            bar.update()
    bar.close()
    asked = options.expected if options.layout == "auto" else options.layout
    parts = [load_record(records[image]).assign(**grid_fields(meta, asked)) for image, _, meta in jobs]
    columns = list(dict.fromkeys([*MANIFEST_COLUMNS, *GRID_COLUMNS, *(c for part in parts for c in part.columns)]))
    extra = [c for c in columns if c not in MANIFEST_COLUMNS]
    manifest = pd.concat(parts, ignore_index=True).reindex(columns=columns)
    manifest[extra] = manifest[extra].fillna("")  # a column only some splits' grids.csv have
    manifest = mark_duplicates(manifest, out_dir, options.thresholds, options.face_size)
    _warn_faceless_layout(manifest, options)
    failed = failed_grids(manifest)
    if len(failed):
        log.warning("%d of %d grids could not be extracted (recorded in the manifest with the reason; --force retries them): %s",
                    len(failed), manifest["source"].nunique(), "; ".join(failed["reason"].str[len(GRID_FAILED) + 2:].head(3)))
    write_csv(out_dir / "manifest.csv", manifest)
    if contact_sheets:
        for source, part in manifest.groupby("source", sort=False):
            contact_sheet(source, part, out_dir / "contact_sheets" / part["split"].iloc[0] / f"{Path(source).stem}.png")
    return manifest


def failed_grids(manifest: pd.DataFrame) -> pd.DataFrame:
    """The manifest rows of the grids that could not be extracted (one each, with the reason)."""
    return manifest[manifest["reason"].astype(str).str.startswith(GRID_FAILED)]


def _warn_faceless_layout(manifest: pd.DataFrame, options: ExtractOptions) -> None:
    """A fixed layout under which most cells of a grid hold no face or several: likely the wrong layout."""
    if options.layout == "auto" or options.detector == "none" or manifest.empty:
        return
    cells = manifest[pd.to_numeric(manifest["row"]) >= 0]
    counts = pd.to_numeric(cells["n_faces"], errors="coerce")
    off = (counts != 1).groupby(cells["source"]).mean()
    bad = sorted(Path(s).name for s in off[off > 0.5].index)
    if bad:
        log.warning("--layout %s: in %d grid(s) most cells hold no face or several (%s); the layout is probably wrong: "
                    "try --layout auto", options.layout, len(bad), ", ".join(bad[:5]))
