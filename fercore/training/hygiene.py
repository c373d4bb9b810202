"""The data a run trains, selects and is tested on, and its hygiene (:mod:`fercore.data.duplicates`).

Every copy of an image that carries two labels is dropped from training; a selection split
carved from ``train`` keeps pixel-identical twins on one side; an explicit validation split and
the test split lose their images with a twin in ``train``. ``keep_duplicates: true`` turns this
off. Unreadable images are skipped with a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split

from fercore.core import labels
from fercore.core.labels import CLASSES, class_indices
from fercore.data import (
    dataset_classes,
    discover,
    drop_conflicting,
    drop_test_duplicates,
    grouped_split,
    manifest_hash,
    pixel_hashes,
    within_classes,
)
from fercore.training.config import TrainConfig

log = logging.getLogger(__name__)

Samples = tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]


@dataclass
class TrainData:
    """The sample tables of a run (in its classes, readable) with what hygiene did and their digest."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame | None
    class_names: list[str]
    hygiene: dict[str, Any]
    data_hash: str

    @property
    def classes(self) -> list[int]:
        """Canonical indices of the run's classes."""
        return class_indices(self.class_names)

    @property
    def selecting(self) -> bool:
        """Whether there is a selection split (else the final epoch is kept)."""
        return len(self.val) > 0


def _limit(samples: pd.DataFrame, n: int | None, seed: int) -> pd.DataFrame:
    if n is None or n >= len(samples):
        return samples
    subset, _ = train_test_split(samples, train_size=n, random_state=seed, stratify=samples["label"])
    return subset.sort_values("path").reset_index(drop=True)


def load_split_samples(config: TrainConfig) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None, dict[str, Any]]:
    """(train, val, test, hygiene report) sample tables for a folder dataset, as the config asks.

    Unless ``keep_duplicates``: conflicting-label copies leave the train split; a carved
    selection split is grouped by pixel content (twins stay on one side); an explicit
    validation split and the test split lose the images that have a twin in ``train``."""
    if not config.data_root:
        raise ValueError("config data_root is empty: set it in the YAML or pass --data-root")
    train = discover(config.data_root, [config.train_split])
    full_train = train
    hygiene: dict[str, Any] = {"policy": "kept (keep_duplicates: true)"} if config.keep_duplicates else {}
    workers = max(1, config.workers)
    if not config.keep_duplicates:
        train, dropped = drop_conflicting(train, workers=workers, progress=config.progress)
        hygiene["train_conflicting_dropped"] = len(dropped)
        log.info("%s/%s: dropped %d images duplicated with another label", config.data_root, config.train_split, len(dropped))
    reference = {f"{config.data_root}/{config.train_split}": full_train}
    if config.val_split:
        val = discover(config.data_root, [config.val_split])
        if not config.keep_duplicates:
            val, report = drop_test_duplicates(val, reference, workers=workers, progress=config.progress)
            hygiene["val"] = report.to_json()
            log.info("validation split: %s", report.line())
    else:
        group = "source" if "source" in train.columns else "content_group" if "content_group" in train.columns else "source"
        train, val = grouped_split(train, config.val_fraction, group=group, seed=config.seed)
        hygiene["selection_split"] = f"carved from {config.train_split} ({config.val_fraction:.0%}), grouped by {group}"
    test = discover(config.data_root, [config.test_split]) if config.test_split else None
    if test is not None and not config.keep_duplicates:
        test, report = drop_test_duplicates(test, reference, workers=workers, progress=config.progress)
        hygiene["test"] = report.to_json()
        log.info("test split: %s", report.line())
    train, val = train.drop(columns="content_group", errors="ignore"), val.drop(columns="content_group", errors="ignore")
    return _limit(train, config.max_train_samples, config.seed), _limit(val, config.max_val_samples, config.seed), test, hygiene


def given_samples(config: TrainConfig, samples: Samples) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None,
                                                                  dict[str, Any]]:
    """(train, val, test, hygiene report) from tables the caller gives (cross-validation, gender
    splits): unless ``keep_duplicates``, one pass over train and val drops every copy of a face
    relabelled across them. A val table that is None becomes an empty one (no selection)."""
    train_samples, val_samples, test_samples = samples
    if val_samples is None:
        val_samples = train_samples.iloc[:0]
    hygiene: dict[str, Any] = {"policy": "samples given by the caller"}
    if not config.keep_duplicates:
        both = pd.concat([train_samples.assign(_part="train"), val_samples.assign(_part="val")], ignore_index=True)
        kept, dropped = drop_conflicting(both, workers=max(1, config.workers))
        kept = kept.drop(columns="content_group")
        train_samples, val_samples = (kept[kept["_part"] == part].drop(columns="_part").reset_index(drop=True)
                                      for part in ("train", "val"))
        hygiene["conflicting_dropped"] = len(dropped)
    return train_samples, val_samples, test_samples, hygiene


def drop_unreadable(samples: pd.DataFrame | None, name: str, workers: int = 1) -> pd.DataFrame | None:
    """``samples`` without the images that cannot be decoded, with a warning that counts and lists them."""
    if samples is None or samples.empty:
        return samples
    bad = pixel_hashes(samples["path"].tolist(), workers=workers) == ""
    if bad.any():
        listed = samples["path"][bad].astype(str).tolist()
        log.warning("%s: skipped %d unreadable or truncated image(s): %s%s", name, len(listed), ", ".join(listed[:10]),
                    " ..." if len(listed) > 10 else "")
    return samples[~bad].reset_index(drop=True)


def warn_meaningless(train_samples: pd.DataFrame, val_samples: pd.DataFrame, class_names: list[str]) -> None:
    """Warnings for data whose scores cannot mean much: one class, or a split missing classes."""
    present = {name: sorted({CLASSES[int(i)] for i in part["label"]}) for name, part in
               (("training data", train_samples), ("selection split", val_samples))}
    if len(present["training data"]) < 2:
        log.warning("the training data has only one class (%s): accuracy and F1 of this run cannot mean anything; "
                    "give a dataset with several emotion folders", ", ".join(present["training data"]) or "none")
    for name, found in present.items():
        missing = [c for c in class_names if c not in found]
        if missing and len(present["training data"]) >= 2 and found:  # an empty selection split: no selection, said elsewhere
            log.warning("the %s has no images of %s: its scores leave those classes out", name, ", ".join(missing))


def training_data(config: TrainConfig, samples: Samples | None = None) -> TrainData:
    """The run's data: the caller's ``samples`` (train, val, test) or the config's folder dataset,
    hygiene applied, kept to the run's class set (:func:`fercore.core.labels.class_set`), unreadable
    images skipped; warns about data whose scores cannot mean much."""
    if samples is not None:
        available = dataset_classes(pd.concat([t for t in samples if t is not None]))
        train_samples, val_samples, test_samples, hygiene = given_samples(config, samples)
    else:
        train_samples, val_samples, test_samples, hygiene = load_split_samples(config)
        available = dataset_classes(config.data_root)
    class_names = labels.class_set(config.classes, available=available)
    train_samples, val_samples, test_samples = (None if t is None else within_classes(t, class_names)
                                                for t in (train_samples, val_samples, test_samples))
    train_samples, val_samples, test_samples = (drop_unreadable(t, name, max(1, config.workers)) for t, name in
                                                ((train_samples, "training data"), (val_samples, "selection split"),
                                                 (test_samples, "test split")))
    if train_samples.empty:
        raise ValueError(f"no readable training images are left in the classes {', '.join(class_names)}; "
                         "check the data with `fercore check-data`")
    warn_meaningless(train_samples, val_samples, class_names)
    data_hash = manifest_hash(pd.concat([train_samples, val_samples]), config.data_root or None)
    return TrainData(train_samples, val_samples, test_samples, class_names, hygiene, data_hash)
