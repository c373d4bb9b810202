"""The test sets a run scores: every real data set and the synthetic faces, each with the class
set it is scored on and what the duplicate policy dropped; the synthetic training faces."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fercore.core import labels
from fercore.core.labels import CLASSES
from fercore.data import dataset_classes, discover, drop_test_duplicates, face_table, load_rgb, per_class_subset
from fercore.demo import drawn_detections
from fercore.faces import Detection

log = logging.getLogger(__name__)


class TestSets(dict):
    """``{name: samples}`` test sets, plus per set the class set it is scored on (``classes``: every
    class of the data set over all its splits) and what the duplicate policy dropped (``duplicates``)."""

    __test__ = False  # not a pytest class

    def __init__(self, sets: Mapping[str, pd.DataFrame], classes: Mapping[str, list[str]],
                 duplicates: Mapping[str, dict[str, Any]] | None = None):
        super().__init__(sets)
        self.classes = dict(classes)
        self.duplicates = dict(duplicates or {})


def _drop_train_twins(test: pd.DataFrame, reference: pd.DataFrame | None, name: str, note: str = "no train split to compare with"
                      ) -> tuple[pd.DataFrame, dict[str, Any]]:
    kept, report = drop_test_duplicates(test, {f"{name} train": reference} if reference is not None else {},
                                        note="" if reference is not None else note)
    log.info("%s: %s", name, report.line())
    return kept, report.to_json()


def test_sets(
    real_roots: Mapping[str, str | Path],
    synthetic_root: str | Path,
    *,
    real_split: str = "test",
    synthetic_split: str | Sequence[str] = "test",
    max_per_class: int | None = None,
    seed: int = 0,
    keep_duplicates: bool = False,
) -> TestSets:
    """``{name: samples}`` for each real dataset and ``synthetic``, each with a ``domain`` column
    (``real`` / ``synthetic``) and ``dataset`` (its name), and at most ``max_per_class`` images per
    emotion (seeded). ``synthetic_split`` may name several splits (``["train", "test"]``: every grid, for models that
    never trained on synthetic faces); their faces are pooled, each keeping its ``split``. Unless ``keep_duplicates``,
    test images with a pixel-identical twin in the same data set's ``train`` split (not when ``train`` is scored itself),
    or duplicated with another label, are dropped first."""
    sets, classes, duplicates = {}, {}, {}
    for name, root in real_roots.items():
        test = discover(root, [real_split])
        if not keep_duplicates:
            reference = discover(root, ["train"]) if (Path(root) / "train").is_dir() and real_split != "train" else None
            test, duplicates[name] = _drop_train_twins(test, reference, name)
        sets[name] = per_class_subset(test, max_per_class, seed=seed).assign(domain="real", dataset=name)
        classes[name] = dataset_classes(root)
    splits = synthetic_splits(synthetic_split)
    synthetic = pd.concat([face_table(synthetic_root, split).assign(split=split) for split in splits], ignore_index=True)
    if not keep_duplicates:
        try:
            reference = face_table(synthetic_root, "train") if "train" not in splits else None
        except (ValueError, FileNotFoundError):
            reference = None
        note = "train is scored itself" if "train" in splits else "no train split to compare with"
        synthetic, duplicates["synthetic"] = _drop_train_twins(synthetic, reference, "synthetic", note)
    sets["synthetic"] = per_class_subset(synthetic, max_per_class, seed=seed).assign(domain="synthetic", dataset="synthetic")
    classes["synthetic"] = dataset_classes(synthetic_root)
    return TestSets(sets, classes, duplicates)


def synthetic_splits(split: str | Sequence[str]) -> list[str]:
    """The synthetic splits to score, as a list without repeats (a string is one split); refuses an empty one."""
    splits = [split] if isinstance(split, str) else list(dict.fromkeys(str(s) for s in split))
    if not splits or not all(splits):
        raise ValueError(f"no synthetic split to score ({split!r}): name one, e.g. 'test', or ['train', 'test'] for every grid")
    return splits


def split_line(samples: pd.DataFrame, name: str = "synthetic") -> str:
    """Which splits (and how many source grids) a scored set's faces come from, for a chapter line or a table note."""
    if "split" not in samples.columns:
        return f"{name}: {len(samples)} faces"
    parts = []
    for split, part in samples.groupby("split", sort=True):
        grids = f", {part['source'].nunique()} grids" if "source" in part.columns else ""
        parts.append(f"{split} ({len(part)} faces{grids})")
    return f"{name}: " + " + ".join(parts)


def duplicate_table(sets: TestSets) -> pd.DataFrame:
    """Rows: test sets; images checked, dropped as twins of training images, dropped for
    conflicting labels, and what they were compared with."""
    rows = [{"test set": name, "checked": d["checked_images"], "dropped: twin in train": d["dropped_train_twins"],
             "dropped: other label": d["dropped_conflicting_labels"], "compared with": ", ".join(d["compared_with"]) or d["note"]}
            for name, d in sets.duplicates.items()]
    columns = ["test set", "checked", "dropped: twin in train", "dropped: other label", "compared with"]
    return pd.DataFrame(rows, columns=columns).set_index("test set")


def shared_classes(sets: TestSets, names: tuple[str, str]) -> list[str]:
    """Classes both of two test sets hold (e.g. a real set and ``synthetic``)."""
    a, b = names
    return labels.class_set(sets.classes[a], within=sets.classes[b])


def class_table(sets: Mapping[str, pd.DataFrame], column: str = "emotion") -> pd.DataFrame:
    """Image counts per emotion (rows) and test set (columns)."""
    counts = pd.DataFrame({name: samples[column].value_counts() for name, samples in sets.items()}).fillna(0).astype(int)
    order = [c for c in CLASSES if c in counts.index] + [c for c in counts.index if c not in CLASSES]
    return counts.loc[order].rename_axis(column)


def examples(sets: Mapping[str, pd.DataFrame], per_set: int = 8, seed: int = 0) -> tuple[list[np.ndarray], list[str]]:
    """A few images of each test set (one per emotion, then repeats) with 'set: emotion' titles."""
    images, titles = [], []
    for name, samples in sets.items():
        picked = per_class_subset(samples, 1, seed=seed).head(per_set)
        for path, emotion in zip(picked["path"], picked["emotion"], strict=True):
            images.append(np.asarray(load_rgb(path)))
            titles.append(f"{name}: {emotion}")
    return images, titles


#: The null arm's test-set name, ``domain`` and ``dataset`` (two words: pandas reads a bare "null" in a CSV as missing).
NULL_ARM = "null arm"


def real_names(sets: Mapping[str, pd.DataFrame]) -> list[str]:
    """Every real test set's name, in the parameter file's order (every analysis runs for each): not the synthetic
    faces, nor the null arm (real faces sent down the synthetic path, :mod:`fercore.studies.nullarm`)."""
    return [name for name in sets if name not in ("synthetic", NULL_ARM) and not name.startswith(("synthetic ", f"{NULL_ARM} "))]


def training_faces(synthetic_root: str | Path, split: str = "train", max_per_class: int | None = None, seed: int = 0) -> pd.DataFrame:
    """The synthetic training faces (at most ``max_per_class`` per emotion, seeded)."""
    return per_class_subset(face_table(synthetic_root, split), max_per_class, seed=seed).reset_index(drop=True)


def domain_pair(sets: Mapping[str, pd.DataFrame], real: str) -> pd.DataFrame:
    """The real test set ``real`` and the synthetic one in a table with ``domain``."""
    return pd.concat([sets[real], sets["synthetic"]], ignore_index=True)


def subset_for_cam(samples: pd.DataFrame, per_class: int, seed: int = 0) -> pd.DataFrame:
    """At most ``per_class`` images per (domain, emotion), seeded, for the Grad-CAM study."""
    parts = [per_class_subset(part, per_class, seed=seed) for _, part in samples.groupby("domain")]
    return pd.concat(parts, ignore_index=True)


def drawn_positions(geometry_dir: str | Path | None) -> Callable[[pd.DataFrame], list[Detection]] | None:
    """The demo generator's drawn face positions for :func:`fercore.faces.framing_table` (``drawn=``):
    ``geometry_dir`` is the demo's ``geometry/`` folder; None (real data) gives None."""
    if geometry_dir is None:
        return None
    return functools.partial(drawn_detections, geometry_dir=geometry_dir)
