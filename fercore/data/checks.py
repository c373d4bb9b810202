"""`fercore check-data`: what is wrong with a folder dataset, before any model sees it.

Reports counts per split and class, unreadable and truncated files, near-uniform (blank)
images, and exact duplicates by decoded-pixel hash within and across splits, flagging
duplicate groups whose copies carry different labels. Nothing is modified.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from fercore.core.files import write_json
from fercore.core.progress import progress_bar as tqdm  # a bar in a terminal, log lines in a log file
from fercore.data.discovery import Inventory
from fercore.data.images import load_rgb
from fercore.data.samples import class_counts, discover

log = logging.getLogger(__name__)

#: Greyscale standard deviation (0-255 scale) below which an image counts as near-uniform.
NEAR_UNIFORM_STD = 2.0


@dataclass
class FileCheck:
    """Outcome of decoding one file."""

    path: str
    status: str  # "ok" | "truncated" | "unreadable"
    error: str = ""
    mode: str = ""
    width: int = 0
    height: int = 0
    std: float = float("nan")
    pixel_hash: str = ""


def check_file(path: str) -> FileCheck:
    """Decode one image fully as every loader does (:func:`fercore.data.images.load_rgb`: EXIF
    rotation honoured, so size and pixel hash are the upright image's) and measure it; never raises
    for a bad file. ``mode`` is the file's own."""
    try:
        with Image.open(path) as handle:
            mode, (width, height) = handle.mode, handle.size
    except Exception as err:  # no valid header: not an image, or a corrupt one
        return FileCheck(path, "unreadable", f"{type(err).__name__}: {err}")
    try:
        rgb = load_rgb(path)
    except Exception as err:  # header fine, pixel data cut short or damaged
        message = f"{type(err).__name__}: {err}"
        lowered = message.lower()
        status = "truncated" if ("truncat" in lowered or "broken data stream" in lowered) else "unreadable"
        return FileCheck(path, status, message, mode, width, height)
    width, height = rgb.size
    pixels = np.asarray(rgb)
    gray = np.asarray(rgb.convert("L"), dtype=np.float32)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{pixels.shape}".encode())
    digest.update(pixels.tobytes())
    return FileCheck(path, "ok", "", mode, width, height, float(gray.std()), digest.hexdigest())


@dataclass
class DataCheckReport:
    """Everything `check-data` found; ``to_json()`` is what it writes."""

    root: str
    counts: dict[str, dict[str, int]]
    total: int
    modes: dict[str, int]
    sizes: dict[str, int]
    unreadable: list[dict[str, str]] = field(default_factory=list)
    truncated: list[dict[str, str]] = field(default_factory=list)
    near_uniform: list[dict[str, Any]] = field(default_factory=list)
    duplicate_groups: list[dict[str, Any]] = field(default_factory=list)
    near_uniform_std: float = NEAR_UNIFORM_STD
    left_out: list[dict[str, str]] = field(default_factory=list)  # what the walk did not use, with reasons

    @property
    def cross_split_groups(self) -> list[dict[str, Any]]:
        return [g for g in self.duplicate_groups if g["cross_split"]]

    @property
    def conflicting_groups(self) -> list[dict[str, Any]]:
        return [g for g in self.duplicate_groups if g["conflicting_labels"]]

    def summary(self) -> dict[str, int]:
        return {
            "images": self.total,
            "left_out": len(self.left_out),
            "unreadable": len(self.unreadable),
            "truncated": len(self.truncated),
            "near_uniform": len(self.near_uniform),
            "duplicate_groups": len(self.duplicate_groups),
            "duplicate_files": sum(len(g["files"]) for g in self.duplicate_groups),
            "cross_split_groups": len(self.cross_split_groups),
            "conflicting_label_groups": len(self.conflicting_groups),
        }

    @property
    def has_errors(self) -> bool:
        return bool(self.unreadable or self.truncated)

    def to_json(self) -> dict[str, Any]:
        return {"summary": self.summary(), **asdict(self)}

    def table(self) -> str:
        """Counts per split and class, then the problems found, as plain text."""
        counts = pd.DataFrame(self.counts).T.fillna(0).astype(int)
        counts["total"] = counts.sum(axis=1)
        lines = [f"dataset {self.root}", counts.to_string(), ""]
        lines += [f"{k.replace('_', ' '):<26}{v}" for k, v in self.summary().items()]
        found = Inventory(self.root, left_out=[(e["path"], e["reason"], e["detail"]) for e in self.left_out])
        lines += found.lines(every=True)
        for name, items in (("unreadable", self.unreadable), ("truncated", self.truncated)):
            for item in items[:10]:
                lines.append(f"  {name}: {item['path']} ({item['error']})")
        for item in self.near_uniform[:5]:
            lines.append(f"  near-uniform: {item['path']} (std {item['std']:.2f})")
        for group in self.conflicting_groups[:5]:
            files = ", ".join(f"{f['split']}/{f['folder']}/{Path(f['path']).name}" for f in group["files"])
            lines.append(f"  conflicting duplicate: {files}")
        return "\n".join(lines)


def check_data(root: str | Path, *, workers: int = 0, progress: bool = True) -> DataCheckReport:
    """Decode every image under ``root/<split>/<emotion>/`` and report problems."""
    samples, found = discover(root, inventory=True)
    paths = samples["path"].tolist()
    iterator: Any
    if workers and workers > 1:
        pool = ProcessPoolExecutor(max_workers=workers)
        iterator = pool.map(check_file, paths, chunksize=256)
    else:
        pool = None
        iterator = map(check_file, paths)
    try:
        checks = list(tqdm(iterator, total=len(paths), desc="check-data", unit="img", disable=not progress))
    finally:
        if pool is not None:
            pool.shutdown()
    table = samples.assign(
        status=[c.status for c in checks],
        std=[c.std for c in checks],
        pixel_hash=[c.pixel_hash for c in checks],
    )
    counts = class_counts(samples)
    ok = [c for c in checks if c.status == "ok"]
    report = DataCheckReport(
        root=str(root),
        counts={split: {k: int(v) for k, v in row.items()} for split, row in counts.iterrows()},
        total=len(samples),
        modes=dict(Counter(c.mode for c in ok).most_common()),
        sizes=dict(Counter(f"{c.width}x{c.height}" for c in ok).most_common(10)),
        unreadable=[{"path": c.path, "error": c.error} for c in checks if c.status == "unreadable"],
        truncated=[{"path": c.path, "error": c.error} for c in checks if c.status == "truncated"],
        left_out=[{"path": path, "reason": reason, "detail": detail} for path, reason, detail in found.left_out],
        near_uniform=[
            {"path": c.path, "std": round(c.std, 3)} for c in ok if c.std < NEAR_UNIFORM_STD
        ],
    )
    report.duplicate_groups = _duplicate_groups(table[table["status"] == "ok"])
    return report


def _duplicate_groups(table: pd.DataFrame) -> list[dict[str, Any]]:
    groups: dict[str, list[dict[str, str]]] = defaultdict(list)
    dup = table[table.duplicated("pixel_hash", keep=False)]
    for row in dup.itertuples(index=False):
        groups[row.pixel_hash].append(
            {"path": row.path, "split": row.split, "folder": row.folder, "emotion": row.emotion}
        )
    out = []
    for digest, files in sorted(groups.items(), key=lambda kv: kv[1][0]["path"]):
        splits = sorted({f["split"] for f in files})
        labels = sorted({f["emotion"] for f in files})
        out.append(
            {
                "hash": digest,
                "files": files,
                "splits": splits,
                "labels": labels,
                "cross_split": len(splits) > 1,
                "conflicting_labels": len(labels) > 1,
            }
        )
    return out


def write_report(report: DataCheckReport, path: str | Path) -> Path:
    """Write the report as JSON, atomically."""
    return write_json(path, report.to_json())
