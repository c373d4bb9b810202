"""The null arm: real faces sent down the synthetic faces' path, so a real-vs-synthetic difference can be set against
what the path alone produces.

Real faces that no evaluated model trained or selected on (:meth:`Study.unseen_real_faces`) are composed into grids
of one emotion each, in the synthetic test set's layout and grid size (:func:`fercore.grids.compose.emotion_grids`),
as many grids per emotion as the synthetic test set has (or ``n_grids`` in all, shared out in the same
proportions), then extracted by the same path and options as the synthetic faces (:func:`fercore.grids.extract_grids`)
into ``<run_dir>/null/<key>/``, ``key`` a hash of what the build is made from (the unseen faces, the design, the
extraction options, the seed). The build is written atomically and recorded (``build.json``), so every chapter of a run
(RQ1, RQ3, RQ4) that asks for the same null arm reuses it, and one asking for another gets its own; a folder that does
not hold the finished build its name says is refused with what to do. :func:`with_null` adds the
faces as the test set ``null``; they are scored and matched like the synthetic ones (:mod:`.scoring`,
:class:`~fercore.studies.session.Arms`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from fercore.core import labels
from fercore.core.files import write_csv, write_json
from fercore.data import NoUnseenFacesError, face_table
from fercore.grids import ExtractOptions, QualityThresholds, emotion_grids, extract_grids, parse_layout, write_grids
from fercore.models import Classifier
from fercore.studies.data import NULL_ARM, TestSets, real_names
from fercore.studies.session import Study

log = logging.getLogger(__name__)

#: The test-set key of the null arm (its ``domain`` and ``dataset`` too), and its folder in the run folder.
NULL, FOLDER = NULL_ARM, "null"
#: The design used when the synthetic set does not record its own (no manifest with cell boxes).
DEFAULT_LAYOUT, DEFAULT_SIZE = (6, 6), (1024, 1024)


class NullArmError(RuntimeError):
    """A null-arm folder that does not hold the build this run asks for."""


@dataclass(frozen=True)
class NullDesign:
    """What the null grids copy from the synthetic test set: layout, grid size, grids per emotion, extraction options."""

    rows: int
    cols: int
    width: int
    height: int
    grids: dict[str, int]  # emotion -> grids
    options: dict[str, Any]  # ExtractOptions as recorded (the synthetic set's, else the defaults)
    read_from: str  # where the layout and options came from

    def extract_options(self) -> ExtractOptions:
        values = dict(self.options)
        thresholds = QualityThresholds(**values.pop("thresholds", {}))
        known = {k: v for k, v in values.items() if k in ExtractOptions.__dataclass_fields__}
        return ExtractOptions(**known, thresholds=thresholds)


@dataclass
class NullArm:
    """The null arm of a run: its faces (a sample table like the synthetic test set's, ``domain`` and ``dataset`` "null arm",
    ``source`` its grid) or None with the ``reason`` it is off or refused."""

    faces: pd.DataFrame | None
    reason: str = ""  # "" when built
    grids: int = 0
    faces_from: str = ""  # the real sets and splits the faces came from, e.g. "fer2013/val"
    folder: str = ""
    design: NullDesign | None = None
    grids_per_emotion: dict[str, int] = field(default_factory=dict)
    reused: bool = False
    sources: tuple[str, ...] = ()  # the real sets the faces came from

    @property
    def built(self) -> bool:
        return self.faces is not None

    def line(self) -> str:
        """One sentence for the chapter: what the null arm is, or why there is none."""
        if not self.built:
            return f"No null arm in this run: {self.reason}"
        d = self.design
        layout = f"{d.rows}x{d.cols} grids of {d.width}x{d.height} px" if d else "grids"
        asked = sum(d.grids.values()) if d else self.grids
        built = self.grids_per_emotion
        short = [f"{e} {built.get(e, 0)} of {n}" for e, n in (d.grids.items() if d else []) if built.get(e, 0) < n]
        shortfall = (f" Fewer grids than the {asked} asked for ({', '.join(short)}): the unseen real faces fill no more full grids; "
                     "set more faces aside or lower null_grids." if short else "")
        return (f"Null arm: {len(self.faces)} faces scored ({len(self.faces) / max(self.grids, 1):.1f} per grid, as many per emotion "
                f"as the synthetic faces) from {self.grids} {layout} composed of real faces no model trained or selected on "
                f"({self.faces_from}), one emotion per grid, as many grids per emotion as the synthetic faces scored, extracted like "
                f"the synthetic faces{' (reused from this run folder)' if self.reused else ''}.{shortfall}")

    def record(self) -> dict[str, Any]:
        """What ``chapter.json`` keeps."""
        return {"built": self.built, "reason": self.reason, "grids": self.grids, "faces": 0 if self.faces is None else len(self.faces),
                "faces_from": self.faces_from, "folder": self.folder, "grids_per_emotion": self.grids_per_emotion,
                "design": asdict(self.design) if self.design else None, "reused": self.reused}


def synthetic_design(synthetic_root: str | Path, synthetic: pd.DataFrame, n_grids: int | None = None) -> NullDesign:
    """The synthetic test set's layout (the manifest's most common ``layout``), grid size (median extent of its cell boxes),
    extraction options (``.grids/options.json``) and grids per emotion (distinct ``source`` of the kept faces of the
    split ``synthetic`` comes from, all of them, so every chapter asks for the same grids; a face without one counts as
    a grid of its own), or with ``n_grids`` that total in the same proportions."""
    root = Path(synthetic_root)
    rows, cols = DEFAULT_LAYOUT
    width, height = DEFAULT_SIZE
    read_from = "defaults (6x6, 1024 px: the synthetic set records no layout)"
    manifest = root / "manifest.csv"
    if manifest.is_file():
        cells = pd.read_csv(manifest, usecols=lambda c: c in {"source", "split", "layout", "x1", "y1", "row"}, low_memory=False)
        try:
            cells = cells[pd.to_numeric(cells["row"], errors="coerce") >= 0]  # not the rows of grids that failed
            rows, cols = parse_layout(str(cells["layout"].mode().iloc[0]))
            width, height = _grid_size(cells)
            read_from = f"{manifest}"
        except (KeyError, IndexError, ValueError) as err:
            log.warning("%s: no regular layout or cell boxes (%s); the null grids use 6x6 at 1024 px", manifest, err)
    recorded = root / ".grids" / "options.json"
    options = json.loads(recorded.read_text()) if recorded.is_file() else json.loads(json.dumps(asdict(ExtractOptions()), default=str))
    whole = _whole_split(root, synthetic)
    groups = whole["source"].fillna(whole["path"]) if "source" in whole.columns else whole["path"]
    per = whole.assign(_grid=groups.astype(str)).groupby("emotion")["_grid"].nunique()
    grids = {str(e): int(n) for e, n in per.items() if n > 0}
    if n_grids is not None:
        grids = _share_out(grids, int(n_grids))
    return NullDesign(rows, cols, width, height, grids, options, read_from)


def _whole_split(root: Path, synthetic: pd.DataFrame) -> pd.DataFrame:
    """Every kept face of the synthetic test split(s) (not only the faces a chapter scores), so every chapter of a run
    asks for the same null grids; the scored faces where the split cannot be read."""
    if not (root / "manifest.csv").is_file() or "split" not in synthetic.columns:
        return synthetic
    try:
        return pd.concat([face_table(root, str(split)) for split in synthetic["split"].dropna().unique()], ignore_index=True)
    except (ValueError, FileNotFoundError):
        return synthetic


def _grid_size(cells: pd.DataFrame, look: int = 20) -> tuple[int, int]:
    """The median (width, height) of the synthetic grids: read from (up to ``look``) grid files where they are still there,
    else the extent of their cell boxes."""
    sizes = []
    for source in cells["source"].dropna().astype(str).unique()[:look]:
        try:
            with Image.open(source) as image:
                sizes.append(image.size)
        except OSError:
            continue
    if not sizes:
        extent = cells.groupby("source")[["x1", "y1"]].max()
        return int(extent["x1"].median()), int(extent["y1"].median())
    return int(np.median([w for w, _ in sizes])), int(np.median([h for _, h in sizes]))


def _share_out(grids: Mapping[str, int], total: int) -> dict[str, int]:
    """``total`` grids shared out over the emotions in proportion to ``grids`` (largest remainders)."""
    if total < 1:
        raise ValueError(f"null_grids must be at least 1 (or None: as many as the synthetic test grids), got {total}")
    names = list(grids)
    weights = np.array([grids[n] for n in names], dtype=float)
    exact = total * weights / weights.sum()
    out = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - out), kind="stable")[: total - out.sum()]:
        out[i] += 1
    return {n: int(k) for n, k in zip(names, out, strict=True) if k > 0}


def _source(faces: pd.DataFrame) -> str:
    split = faces["split"].astype(str) if "split" in faces.columns else pd.Series("", index=faces.index)
    pairs = sorted({f"{d}/{s}" if s else str(d) for d, s in zip(faces["dataset"].astype(str), split, strict=True)})
    return ", ".join(pairs)


def build_key(design: NullDesign, faces: pd.DataFrame, seed: int) -> str:
    """A hash of what a null-arm build is made from: the design (not where it was read), the unseen faces' paths, the seed."""
    content = {"design": asdict(design) | {"read_from": ""}, "faces": sorted(faces["path"].astype(str)), "seed": seed}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def build_null_faces(unseen: pd.DataFrame, design: NullDesign, folder: str | Path, *, seed: int = 0, workers: int = 1,
                     progress: bool = False) -> tuple[pd.DataFrame, bool]:
    """Compose and extract the null grids into ``folder`` (``raw/test/`` grids and ``grids.csv``, ``faces/`` extracted
    faces and manifest, ``faces_used.csv``, ``build.json``), atomically; a finished build with the same inputs is
    reused. Returns (the kept faces' sample table, reused). Raises :class:`NullArmError` for a folder built otherwise."""
    folder = Path(folder)
    key = build_key(design, unseen, seed)
    if folder.exists():
        return _reuse(folder, key), True
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}-partial-", dir=folder.parent))
    try:
        composites, placed = emotion_grids(unseen, design.grids, rows=design.rows, cols=design.cols, width=design.width,
                                           height=design.height, seed=seed, prefix="null")
        if not composites:
            raise NoUnseenFacesError(f"no unseen real faces of the synthetic set's emotions ({', '.join(design.grids)}); "
                                     "set faces of those emotions aside")
        write_grids(work / "raw" / "test", composites, emotion=dict(zip(placed["file"], placed["emotion"], strict=True)),
                    gender="", layout=f"{design.rows}x{design.cols}")
        write_csv(work / "faces_used.csv", placed)
        manifest = extract_grids(work / "raw", work / "faces", design.extract_options(), workers=workers, progress=progress,
                                 contact_sheets=False)
        manifest["source"] = [str(folder / "raw" / "test" / Path(s).name) for s in manifest["source"]]
        write_csv(work / "faces" / "manifest.csv", manifest)
        kept = int(manifest["kept"].astype(str).str.lower().isin(["true", "1"]).sum())
        write_json(work / "build.json", {"key": key, "grids": len(composites), "kept": kept, "design": asdict(design)})
        os.replace(work, folder)  # atomic: a folder named like the build is always a finished one
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return _faces(folder), False


def _reuse(folder: Path, key: str) -> pd.DataFrame:
    record = folder / "build.json"
    fix = f"delete {folder} to build it again (or choose another output_dir)"
    if not record.is_file():
        raise NullArmError(f"{folder} exists but holds no finished null-arm build (no build.json): {fix}")
    built = json.loads(record.read_text())
    if built.get("key") != key:
        raise NullArmError(f"{folder} was built from other inputs (other unseen faces, synthetic design, extraction options or "
                           f"seed) than this chapter asks for: {fix}")
    faces = _faces(folder)
    if len(faces) != built.get("kept"):
        raise NullArmError(f"{folder} holds {len(faces)} kept faces but its build recorded {built.get('kept')}: {fix}")
    log.info("null arm reused from %s (%d grids, %d kept faces)", folder, built.get("grids"), len(faces))
    return faces


def _faces(folder: Path) -> pd.DataFrame:
    faces = face_table(folder / "faces", "test")
    missing = [p for p in faces["path"].astype(str) if not Path(p).is_file()]
    if missing:
        raise NullArmError(f"{folder}: {len(missing)} face files of the manifest are missing (first: {missing[0]}); "
                           f"delete {folder} to build it again")
    return faces


def null_set(study: Study, sets: TestSets, models: Mapping[str, Classifier], *, n_grids: int | None = None, enabled: bool = True,
             workers: int | None = None) -> NullArm:
    """The run's null arm (built once into ``<run_dir>/null/<key>/``, reused by every chapter asking for the same), or a
    :class:`NullArm` without faces saying why: turned off, or no real faces outside what ``models`` saw (the
    :class:`~fercore.data.NoUnseenFacesError` message). The real test splits ``sets`` reports are never drawn. The kept
    faces of each emotion are capped at the synthetic set's count of that emotion (seeded), so both arms have the same
    design. ``workers``: extraction threads (default: the run's DataLoader workers)."""
    if not enabled:
        return NullArm(None, "turned off (null_arm = False)")
    reported = [sets[name] for name in real_names(sets)]
    splits = sorted({"test", *(str(s) for table in reported if "split" in table.columns for s in table["split"].unique())})
    try:
        unseen = study.unseen_real_faces(models, exclude_splits=tuple(splits))  # never the real test faces the chapter reports
    except NoUnseenFacesError as err:
        return NullArm(None, str(err))
    synthetic = sets["synthetic"]
    tested = {str(p) for table in reported for p in table["path"]}
    unseen = unseen[unseen["emotion"].isin(set(synthetic["emotion"])) & ~unseen["path"].astype(str).isin(tested)].reset_index(drop=True)
    design = synthetic_design(study.synthetic_root, synthetic, n_grids)
    folder = Path(study.run_dir) / FOLDER
    try:
        workers = workers or max(1, int(getattr(getattr(study, "inference", None), "workers", None) or 1))
        folder = folder / build_key(design, unseen, study.seed)[:12]
        faces, reused = build_null_faces(unseen, design, folder, seed=study.seed, workers=workers)
    except NoUnseenFacesError as err:
        return NullArm(None, str(err))
    caps = synthetic["emotion"].value_counts()
    shuffled = faces.sample(frac=1.0, random_state=study.seed)
    faces = shuffled[shuffled.groupby("emotion").cumcount() < shuffled["emotion"].map(caps).fillna(0)]
    faces = faces.sort_values("path").reset_index(drop=True).assign(domain=NULL, dataset=NULL)
    per = faces.groupby("emotion")["source"].nunique().astype(int).to_dict()
    return NullArm(faces, "", int(faces["source"].nunique()), _source(unseen), str(folder), design, per, reused,
                   tuple(sorted(set(unseen["dataset"].astype(str)))))


def with_null(sets: TestSets, arm: NullArm) -> TestSets:
    """``sets`` plus the test set ``null`` when ``arm`` is built (else ``sets`` unchanged), scored on the synthetic
    set's classes within those of the real sets its faces came from (every real set's when not among ``sets``)."""
    if not arm.built:
        return sets
    names = [n for n in arm.sources if n in sets.classes] or real_names(sets)
    source_classes = sorted({c for n in names for c in sets.classes[n]})
    classes = labels.class_set(sets.classes["synthetic"], within=source_classes)
    return TestSets({**sets, NULL: arm.faces}, {**sets.classes, NULL: classes}, sets.duplicates)


def add_null_arm(study: Study, sets: TestSets, models: Mapping[str, Classifier], *, n_grids: int | None = None,
                 enabled: bool = True) -> tuple[TestSets, NullArm]:
    """:func:`null_set` and :func:`with_null` in one call, the null faces' sample table recorded with the chapter's others."""
    arm = null_set(study, sets, models, n_grids=n_grids, enabled=enabled)
    if arm.built:
        study.record_samples({NULL: arm.faces})
    return with_null(sets, arm), arm
