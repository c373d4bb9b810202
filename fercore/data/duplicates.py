"""Duplicate hygiene as a data policy, not only a report.

FER2013 holds pixel-identical copies of one face in ``train`` and in ``val`` (PublicTest),
some with another label (`fercore check-data` lists them). A test image whose twin was
trained on measures memory, not recognition; an image that carries two labels has no
right answer. So, by default:

* evaluation drops test images that have a pixel-identical twin in the training data, and
  test images that are duplicated anywhere (test or training data) with another label;
  the counts go into ``metrics.json`` (:func:`drop_test_duplicates`);
* training drops every copy of an image that carries conflicting labels
  (:func:`drop_conflicting`), and a selection split carved from ``train`` keeps twins on one
  side (:func:`content_groups`).

"Pixel-identical" means the same decoded RGB pixels (`fercore.data.checks.check_file`), so a
PNG and a JPEG re-save of one face are twins only if the pixels survived. Hashes are cached
by (path, size, modification time) under ``$FERCORE_CACHE`` (default ``~/.cache/fercore``);
the cache is not an output and is rewritten when files change.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fercore.core.files import file_stamp, write_csv
from fercore.core.progress import progress_bar as tqdm  # a bar in a terminal, log lines in a log file
from fercore.core.runtime import cache_dir
from fercore.data.checks import check_file

log = logging.getLogger(__name__)

CACHE_FILE = "pixel_hashes.csv"


def _hash_one(path: str) -> str:
    check = check_file(path)
    return check.pixel_hash if check.status == "ok" else ""


def pixel_hashes(paths: Sequence[str], *, workers: int = 2, progress: bool = False, cache: bool = True) -> np.ndarray:
    """Hash of the decoded pixels of each file ("" for an unreadable one), cached by path, size and mtime."""
    paths = [str(p) for p in paths]
    stats = [file_stamp(p) or (-1, -1) for p in paths]
    known: dict[str, tuple[int, int, str]] = {}
    cache_path = cache_dir() / CACHE_FILE
    if cache and cache_path.is_file():
        try:
            table = pd.read_csv(cache_path, dtype={"path": str, "hash": str}, keep_default_na=False)
            known = {r.path: (int(r.size), int(r.mtime_ns), r.hash) for r in table.itertuples(index=False)}
        except (ValueError, KeyError, OSError) as err:  # a damaged cache is only a cache
            log.warning("ignoring the hash cache %s (%s)", cache_path, err)
    out = np.empty(len(paths), dtype=object)
    todo = []
    for i, (p, (size, mtime)) in enumerate(zip(paths, stats, strict=True)):
        hit = known.get(p)
        if hit is not None and hit[0] == size and hit[1] == mtime and size >= 0:
            out[i] = hit[2]
        else:
            todo.append(i)
    if todo:
        jobs = [paths[i] for i in todo]
        bar = dict(total=len(jobs), desc="pixel hashes", unit="img", disable=not progress)
        if workers > 1 and len(jobs) > 256:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                hashes = list(tqdm(pool.map(_hash_one, jobs, chunksize=256), **bar))
        else:
            hashes = [_hash_one(p) for p in tqdm(jobs, **bar)]
        for i, h in zip(todo, hashes, strict=True):
            out[i] = h
            if stats[i][0] >= 0:
                known[paths[i]] = (stats[i][0], stats[i][1], h)
        if cache:
            try:
                write_csv(cache_path, pd.DataFrame([(p, s, m, h) for p, (s, m, h) in known.items()],
                                                   columns=["path", "size", "mtime_ns", "hash"]))
            except OSError as err:
                log.warning("could not write the hash cache %s (%s); hashes are recomputed next time", cache_path, err)
    return out


def content_groups(hashes: Sequence[str]) -> np.ndarray:
    """Group id per row: rows with the same pixel hash share one; unreadable rows ("") stay alone."""
    ids: dict[str, int] = {}
    out = np.empty(len(hashes), dtype=np.int64)
    for i, h in enumerate(hashes):
        out[i] = ids.setdefault(h, len(ids)) if h else -(i + 1)
    return out


@dataclass
class DuplicateReport:
    """What the duplicate policy removed from a test set (written into metrics.json)."""

    compared_with: list[str]
    checked_images: int
    dropped_train_twins: int = 0
    dropped_conflicting_labels: int = 0
    dropped: list[dict[str, str]] = field(default_factory=list)
    note: str = ""

    @property
    def dropped_total(self) -> int:
        return self.dropped_train_twins + self.dropped_conflicting_labels

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "dropped_total": self.dropped_total}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DuplicateReport:
        """The report back from :meth:`to_json` (e.g. ``metrics.json["duplicates"]``)."""
        return cls(**{k: v for k, v in data.items() if k != "dropped_total"})

    def line(self) -> str:
        """One line for a terminal or a log."""
        against = ", ".join(self.compared_with) if self.compared_with else "no training data"
        text = (f"duplicates: dropped {self.dropped_total} of {self.checked_images} test images "
                f"({self.dropped_train_twins} with a pixel-identical twin in {against}, "
                f"{self.dropped_conflicting_labels} duplicated with another label)")
        return text + (f"; {self.note}" if self.note else "")


def drop_test_duplicates(
    test: pd.DataFrame,
    training: Mapping[str, pd.DataFrame],
    *,
    note: str = "",
    workers: int = 2,
    progress: bool = False,
) -> tuple[pd.DataFrame, DuplicateReport]:
    """``test`` without images that have a pixel-identical twin in any ``training`` table (name ->
    samples) or that are duplicated with another label anywhere; and what was dropped."""
    test = test.reset_index(drop=True)
    frames = [test.assign(_role="test")] + [t.assign(_role="train") for t in training.values() if len(t)]
    pool = pd.concat(frames, ignore_index=True)
    pool = pool.drop_duplicates("path") if len(frames) > 1 else pool  # a file listed in both counts once, as test
    pool["_hash"] = pixel_hashes(pool["path"].tolist(), workers=workers, progress=progress)
    readable = pool[pool["_hash"] != ""]
    labels_per_hash = readable.groupby("_hash")["label"].nunique()
    train_hashes = set(readable.loc[readable["_role"] == "train", "_hash"])
    conflicting = set(labels_per_hash.index[labels_per_hash > 1])
    test_hash = pool.loc[pool["_role"] == "test"].set_index("path")["_hash"]
    hashes = test["path"].map(test_hash).fillna("")
    is_conflicting = hashes.isin(conflicting) & (hashes != "")
    is_twin = hashes.isin(train_hashes) & (hashes != "") & ~is_conflicting
    dropped = [{"path": p, "reason": "conflicting labels" if c else "twin in training data"}
               for p, c, t in zip(test["path"], is_conflicting, is_twin, strict=True) if c or t]
    report = DuplicateReport(compared_with=list(training), checked_images=len(test), dropped_train_twins=int(is_twin.sum()),
                             dropped_conflicting_labels=int(is_conflicting.sum()), dropped=dropped, note=note)
    return test[~(is_twin | is_conflicting)].reset_index(drop=True), report


def drop_conflicting(samples: pd.DataFrame, *, workers: int = 2, progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(``samples`` without every copy of an image that carries more than one label, the dropped rows);
    adds a ``content_group`` column (see :func:`content_groups`) to the kept rows."""
    samples = samples.reset_index(drop=True)
    hashes = pixel_hashes(samples["path"].tolist(), workers=workers, progress=progress)
    groups = content_groups(hashes)
    labels_per_group = pd.Series(samples["label"].to_numpy()).groupby(groups).transform("nunique").to_numpy()
    bad = labels_per_group > 1
    kept = samples[~bad].assign(content_group=groups[~bad]).reset_index(drop=True)
    return kept, samples[bad].reset_index(drop=True)
