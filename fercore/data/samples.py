"""Folder datasets ``root/<split>/<emotion>/*`` and sample tables: discovery, CSV manifests,
class sets and the hash that identifies the data a model saw.

Labels are canonical indices (:mod:`fercore.core.labels`); folder names are matched through the
aliases, and an unknown folder name is an error listing the accepted names.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from fercore.core.labels import CLASSES, UnknownLabelError, canonical_gender, canonical_name, to_index
from fercore.data.discovery import DatasetLayoutError, class_folders, list_splits, walk_data_root

log = logging.getLogger(__name__)

SAMPLE_COLUMNS = ["path", "split", "folder", "label", "emotion"]


def discover(root: str | Path, splits: Sequence[str] | None = None, *, inventory: bool = False) -> Any:
    """Table of every image under ``root/<split>/<emotion>/``: path, split, folder, label, emotion.

    Rows are sorted by split, then path, so the order is the same on every machine. What the walk
    leaves out (:func:`fercore.data.discovery.walk_data_root`: hidden files, folders inside class
    folders, files that are not images ...) is logged in one line, as a warning; an emotion folder
    no alias matches is an error. ``inventory=True``: (table, the walk's :class:`Inventory`).
    """
    found = walk_data_root(root, list(splits) if splits is not None else None)
    found.log()
    table = pd.DataFrame(found.used, columns=SAMPLE_COLUMNS)
    if table.empty:
        raise DatasetLayoutError(f"{root}: no images found in splits {list(splits) if splits is not None else list_splits(root)}"
                                 + (f" ({found.summary()})" if found.left_out else ""))
    return (table, found) if inventory else table


def class_counts(samples: pd.DataFrame) -> pd.DataFrame:
    """Images per split (rows) and canonical class (columns, all 8, zeros kept)."""
    counts = pd.crosstab(samples["split"], samples["emotion"])
    return counts.reindex(columns=list(CLASSES), fill_value=0)


def present_classes(samples: pd.DataFrame) -> list[str]:
    """Canonical names of the classes that occur in ``samples`` (canonical order)."""
    have = set(samples["emotion"])
    return [c for c in CLASSES if c in have]


def dataset_classes(source: str | Path | pd.DataFrame) -> list[str]:
    """Classes a data set can hold: the union of the emotion folders over *all* splits of a dataset
    root, or the emotions of a whole sample table / manifest (CSV path or DataFrame), canonical order.

    This is the ``available`` input of :func:`fercore.core.labels.class_set`: a test split or a fold
    that lacks a class by chance is still scored on the data set's classes.
    """
    if isinstance(source, pd.DataFrame):
        return present_classes(source)
    source = Path(source)
    if source.is_file():
        return present_classes(load_samples(source))
    if (source / "manifest.csv").is_file():
        return present_classes(load_samples(source / "manifest.csv"))
    names = {emotion for split in list_splits(source) for _, emotion in class_folders(source / split)[0]}
    if not names:
        raise DatasetLayoutError(f"{source} has no emotion folders under its splits")
    return [c for c in CLASSES if c in names]


def within_classes(samples: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Rows whose emotion is in ``classes``; the rest (a declared class set may leave classes out)
    cannot be scored and are left out, with a log line."""
    wanted = {canonical_name(c) for c in classes}
    keep = samples["emotion"].isin(wanted) if "emotion" in samples.columns else samples["label"].map(lambda i: CLASSES[int(i)]).isin(wanted)
    if not keep.all():
        log.info("leaving out %d images of classes outside %s", int((~keep).sum()), sorted(wanted))
    return samples[keep].reset_index(drop=True)


def per_class_subset(samples: pd.DataFrame, max_per_class: int | None, seed: int = 0) -> pd.DataFrame:
    """At most ``max_per_class`` rows of each emotion, drawn reproducibly (None: all rows)."""
    if max_per_class is None:
        return samples.reset_index(drop=True)
    if int(max_per_class) < 1:
        raise ValueError(f"max_per_class must be at least 1 (or None for all), got {max_per_class}")
    shuffled = samples.sample(frac=1.0, random_state=seed)
    picked = shuffled[shuffled.groupby("label").cumcount() < int(max_per_class)]
    return picked.sort_values("path").reset_index(drop=True)


def manifest_hash(samples: pd.DataFrame, root: str | Path | None = None) -> str:
    """SHA-256 over (path, label) rows in sorted order: identifies the data a model saw."""
    root_str = str(Path(root)) + "/" if root is not None else None
    rows = sorted(
        (str(Path(p).relative_to(root_str)) if root_str and str(p).startswith(root_str) else str(p), int(label))
        for p, label in zip(samples["path"], samples["label"], strict=True)
    )
    digest = hashlib.sha256()
    for path, label in rows:
        digest.update(f"{path}\t{label}\n".encode())
    return digest.hexdigest()


def _read_table(path: Path) -> pd.DataFrame:
    """The CSV as strings-or-numbers, as annotation tools and spreadsheets write it: a byte-order
    mark, CRLF, a semicolon as separator (a spreadsheet in a comma-decimal locale), column names in
    any case; rows left blank are dropped (with a log line)."""
    try:
        head = path.read_text(encoding="utf-8-sig").splitlines()[:1]
        sep = ";" if head and ";" in head[0] and "," not in head[0] else ","
        table = pd.read_csv(path, sep=sep, encoding="utf-8-sig", skip_blank_lines=True)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not a readable CSV sample table ({' '.join(str(err).split())}); "
                         "save it as CSV UTF-8") from None
    names = {str(c).strip().lower(): c for c in table.columns}
    if len(names) == len(table.columns):
        table = table.rename(columns={c: str(c).strip().lower() for c in table.columns})
    blank = table.isna().all(axis=1)
    if blank.any():
        log.info("%s: %d empty rows skipped", path, int(blank.sum()))
    return table[~blank]


def _check_paths(table: pd.DataFrame, path: Path) -> list[str]:
    """The rows' file paths (relative ones under the CSV's folder; Windows separators read as
    folders when the file is there that way); an empty path or a file listed twice is an error."""
    rows = table.index + 2  # the CSV's line numbers: a header line, then one per row
    empty = [int(r) for r, p in zip(rows, table["path"], strict=True) if pd.isna(p) or not str(p).strip()]
    if empty:
        raise ValueError(f"{path}: rows {empty[:10]} have no path; fill them in or delete them")
    resolved = []
    for given in table["path"].astype(str):
        full = Path(given) if Path(given).is_absolute() else path.parent / given
        if "\\" in given and not full.exists():
            windows = Path(given.replace("\\", "/"))
            full = windows if windows.is_absolute() else path.parent / windows
        resolved.append(str(full))
    seen: dict[str, int] = {}
    for row, file in zip(rows, resolved, strict=True):
        if file in seen:
            raise ValueError(f"{path}: {file} is listed twice (lines {seen[file]} and {int(row)}); keep one row per image")
        seen[file] = int(row)
    return resolved


def load_samples(path: str | Path) -> pd.DataFrame:
    """Sample table from a CSV (e.g. the grid-extraction manifest): needs ``path`` and
    ``emotion`` (or ``label``); optional ``split``, ``gender``, ``source``, ``kept``.

    Relative paths are taken relative to the CSV's folder; rows with ``kept`` false are dropped;
    a row without a path, a file listed twice or a label outside the classes is an error.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sample table {path} does not exist")
    table = _read_table(path)
    if "path" not in table.columns:
        raise ValueError(f"{path} has no 'path' column (columns: {', '.join(map(str, table.columns))})")
    if "kept" in table.columns:
        table = table[table["kept"].astype(str).str.lower().isin(["true", "1", "yes"])]
    if "emotion" in table.columns:
        try:
            table = table.assign(emotion=[canonical_name(e) for e in table["emotion"]])
        except UnknownLabelError as err:
            raise ValueError(f"{path}: {err}") from None
        table = table.assign(label=[to_index(e) for e in table["emotion"]])
    elif "label" in table.columns:
        bad = [str(i) for i in table["label"] if not (str(i).replace(".0", "", 1).isdigit() and int(float(i)) < len(CLASSES))]
        if bad:
            raise ValueError(f"{path}: labels {bad[:5]} are not class indices 0-{len(CLASSES) - 1} "
                             f"({', '.join(CLASSES)}); or give an 'emotion' column with names")
        table = table.assign(emotion=[CLASSES[int(float(i))] for i in table["label"]])
    else:
        raise ValueError(f"{path} needs an 'emotion' or 'label' column")
    table = table.assign(path=_check_paths(table, path))
    if "gender" in table.columns:
        try:
            table = table.assign(gender=[canonical_gender(g) for g in table["gender"].astype(object).fillna("")])
        except UnknownLabelError as err:
            raise ValueError(f"{path}: {err}") from None
    return table.reset_index(drop=True)


def face_table(root: str | Path, split: str) -> pd.DataFrame:
    """Faces of one split: from ``root/manifest.csv`` (grid extraction; kept faces only, with gender
    and source grid) when present, else from ``root/<split>/<emotion>/`` folders."""
    root = Path(root)
    manifest = root / "manifest.csv"
    if manifest.is_file():
        table = load_samples(manifest)
        if "split" in table.columns:
            found = sorted(table["split"].astype(str).unique())
            table = table[table["split"].astype(str) == split]
            if table.empty:
                raise ValueError(f"{manifest} has no kept faces in split {split!r} (splits: {found})")
        return table.reset_index(drop=True)
    return discover(root, [split])
