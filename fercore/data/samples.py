"""Folder datasets ``root/<split>/<emotion>/*``: discovery, torch Dataset and DataLoader factory,
and the input pipeline that turns decoded images into model input (``preprocess: exact | fast``).

Labels are canonical indices (:mod:`fercore.core.labels`); folder names are matched through the
aliases, and an unknown folder name is an error listing the accepted names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, default_collate

from fercore.core.labels import CLASSES, UnknownLabelError, accepted_names, canonical_gender, canonical_name, to_index
from fercore.core.runtime import default_workers, seed_worker
from fercore.data.images import (
    EXACT_PREPROCESSING,
    FAST_PREPROCESSING,
    BatchAugment,
    Preprocess,
    augment_transform,
    check_preprocess,
    is_image_file,
    load_rgb,
    native_uint8,
    resize_batch,
)

log = logging.getLogger(__name__)

SAMPLE_COLUMNS = ["path", "split", "folder", "label", "emotion"]


class DatasetLayoutError(ValueError):
    """A dataset folder that does not have the ``root/<split>/<emotion>/*`` layout."""


def list_splits(root: str | Path) -> list[str]:
    """Split folder names under ``root`` (sorted), e.g. ``['test', 'train']``."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(
            f"dataset folder {root} does not exist: expected {root}/<split>/<emotion>/<images>, "
            "e.g. data/real/fer2013/train/happy/0001.png"
        )
    splits = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not splits:
        raise DatasetLayoutError(f"{root} has no split folders: expected {root}/<split>/<emotion>/<images>")
    return splits


def discover(root: str | Path, splits: Sequence[str] | None = None) -> pd.DataFrame:
    """Table of every image under ``root/<split>/<emotion>/``: path, split, folder, label, emotion.

    Rows are sorted by split, then path, so the order is the same on every machine.
    Non-image files are skipped (logged); an emotion folder no alias matches is an error.
    """
    root = Path(root)
    available = list_splits(root)
    wanted = list(splits) if splits is not None else available
    missing = [s for s in wanted if s not in available]
    if missing:
        raise DatasetLayoutError(f"{root} has no split folder(s) {missing}; found {available}")
    rows: list[tuple[str, str, str, int, str]] = []
    skipped = 0
    for split in wanted:
        class_dirs = sorted(p for p in (root / split).iterdir() if p.is_dir() and not p.name.startswith("."))
        if not class_dirs:
            raise DatasetLayoutError(f"{root / split} has no emotion folders (expected e.g. happy/, sad/)")
        for class_dir in class_dirs:
            try:
                emotion = canonical_name(class_dir.name)
            except UnknownLabelError:
                raise DatasetLayoutError(
                    f"{class_dir}: folder name {class_dir.name!r} is not an emotion fercore knows. "
                    f"Rename it to one of: {', '.join(accepted_names())}"
                ) from None
            for path in sorted(class_dir.rglob("*")):
                if not path.is_file():
                    continue
                if not is_image_file(path):
                    skipped += 1
                    continue
                rows.append((str(path), split, class_dir.name, to_index(emotion), emotion))
    if skipped:
        log.info("%s: skipped %d non-image files", root, skipped)
    table = pd.DataFrame(rows, columns=SAMPLE_COLUMNS)
    if table.empty:
        raise DatasetLayoutError(f"{root}: no images found in splits {wanted}")
    return table


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
    names = set()
    for split in list_splits(source):
        for folder in (source / split).iterdir():
            if folder.is_dir() and not folder.name.startswith("."):
                try:
                    names.add(canonical_name(folder.name))
                except UnknownLabelError:
                    raise DatasetLayoutError(
                        f"{folder}: folder name {folder.name!r} is not an emotion fercore knows. "
                        f"Rename it to one of: {', '.join(accepted_names())}"
                    ) from None
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


def stratified_split(samples: pd.DataFrame, val_fraction: float = 0.15, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a sample table into (train, val) with the same class proportions, reproducibly."""
    from sklearn.model_selection import train_test_split

    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    counts = samples["label"].value_counts()
    n_val = int(np.ceil(val_fraction * len(samples)))
    if len(samples) and (counts.min() < 2 or n_val < len(counts) or len(samples) - n_val < len(counts)):
        smallest = CLASSES[int(counts.idxmin())]
        raise ValueError(f"cannot split {len(samples)} images of {len(counts)} classes into train and a {val_fraction:.0%} "
                         f"validation part with every class on both sides ({smallest} has {int(counts.min())} image(s)): "
                         "add images, raise val_fraction, or give a separate validation split (val_split)")
    train, val = train_test_split(samples, test_size=val_fraction, random_state=seed, stratify=samples["label"])
    return train.sort_values("path").reset_index(drop=True), val.sort_values("path").reset_index(drop=True)


class FaceDataset(Dataset):
    """Images and canonical labels from a sample table (as made by :func:`discover`)."""

    def __init__(self, samples: pd.DataFrame, transform: Callable | None = None):
        if not {"path", "label"} <= set(samples.columns):
            raise ValueError("samples need at least the columns 'path' and 'label'")
        self.samples = samples.reset_index(drop=True)
        self.paths: list[str] = self.samples["path"].astype(str).tolist()
        self.labels: np.ndarray = self.samples["label"].to_numpy(dtype=np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path = self.paths[index]
        try:
            image = load_rgb(path)
        except Exception as err:
            raise OSError(f"cannot read image {path}: {err}. Run `fercore check-data` on the dataset") from err
        x = self.transform(image) if self.transform is not None else image
        return x, int(self.labels[index])

    @classmethod
    def from_folder(
        cls, root: str | Path, split: str, image_size: int, transform: Callable | None = None
    ) -> FaceDataset:
        """Dataset of one split with HSEmotion preprocessing at ``image_size``."""
        return cls(discover(root, [split]), transform or Preprocess(image_size))


@dataclass
class SizeBuckets:
    """A batch of uint8 CHW images of possibly different sizes: one stacked tensor per size, with
    the positions its images hold in the batch (``fast`` preprocessing moves these, not resized floats)."""

    groups: list[tuple[torch.Tensor, torch.Tensor]]  # (positions, k x C x H x W uint8)
    count: int

    @classmethod
    def from_images(cls, images: Sequence[torch.Tensor]) -> SizeBuckets:
        """Bucket CHW tensors by shape, first-seen order; one bucket keeps the batch order."""
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, image in enumerate(images):
            by_shape.setdefault(tuple(image.shape), []).append(i)
        groups = [(torch.tensor(rows, dtype=torch.long), torch.stack([images[i] for i in rows])) for rows in by_shape.values()]
        return cls(groups, len(images))

    def __len__(self) -> int:
        return self.count

    def pin_memory(self) -> SizeBuckets:
        """Page-locked copies (called by the DataLoader's pinning thread on CUDA)."""
        return SizeBuckets([(rows, images.pin_memory()) for rows, images in self.groups], self.count)

    def to(self, device: str | torch.device, non_blocking: bool = False) -> SizeBuckets:
        return SizeBuckets([(rows, images.to(device, non_blocking=non_blocking)) for rows, images in self.groups], self.count)

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """``fn`` applied to each bucket (all outputs of one shape), reassembled in batch order."""
        if len(self.groups) == 1:
            return fn(self.groups[0][1])
        parts = [(rows, fn(images)) for rows, images in self.groups]
        out = parts[0][1].new_empty((self.count, *parts[0][1].shape[1:]))
        for rows, values in parts:
            out[rows.to(out.device)] = values
        return out


def collate_native(batch: Sequence[tuple[Any, ...]]) -> tuple[Any, ...]:
    """DataLoader ``collate_fn`` for (native-size image, ...) items: the images as
    :class:`SizeBuckets`, the other fields collated as usual."""
    rest = default_collate([item[1:] for item in batch]) if len(batch[0]) > 1 else []
    return (SizeBuckets.from_images([item[0] for item in batch]), *rest)


@dataclass
class InputPipeline:
    """How decoded images become a model's input batch, in one of two modes.

    ``exact``: loader workers resize with PIL (HSEmotion's preprocessing) to uint8 (or, with
    ``augment``, run :func:`fercore.data.images.augment_transform` to normalised floats).
    ``fast``: workers decode only; :class:`SizeBuckets` of native-size uint8 images go to the
    device (pinned, non-blocking on CUDA), where :func:`fercore.data.images.resize_batch` (or
    :class:`fercore.data.images.BatchAugment`) and the normalisation run batched.
    Build the DataLoader with ``collate_fn=pipeline.collate`` and items from :meth:`item`;
    :meth:`prepare` turns each batch into the normalised N x 3 x S x S input on the device."""

    mode: str = "exact"
    image_size: int = 224
    augment: bool = False

    def __post_init__(self) -> None:
        check_preprocess(self.mode)
        self._worker: Callable[[Image.Image], torch.Tensor] = (
            native_uint8 if self.mode == "fast" else augment_transform(self.image_size) if self.augment
            else Preprocess(self.image_size).resized_uint8)

    @property
    def name(self) -> str:
        """The preprocessing recipe, for cache keys."""
        return FAST_PREPROCESSING if self.mode == "fast" else EXACT_PREPROCESSING

    def item(self, image: Image.Image) -> torch.Tensor:
        """Worker side: what one decoded image becomes before batching."""
        return self._worker(image)

    def collate(self, batch: Sequence[tuple[Any, ...]]) -> Any:
        return collate_native(batch) if self.mode == "fast" else default_collate(batch)

    def prepare(self, x: torch.Tensor | SizeBuckets, device: str | torch.device, *, generator: torch.Generator | None = None,
                channels_last: bool = False) -> torch.Tensor:
        """A loader batch -> normalised float N x 3 x S x S on ``device``. uint8 batches are
        normalised there, float batches (``exact`` with augmentation) only moved; ``fast`` batches
        are resized (augmented when ``augment``, drawing from ``generator``) there first."""
        device = torch.device(device)
        normalize = Preprocess(self.image_size).normalize
        if isinstance(x, SizeBuckets):
            x = x.to(device, non_blocking=True)
            if self.augment:
                augment = BatchAugment(self.image_size)
                draw = generator if generator is not None else torch.default_generator
                x = normalize(x.map(lambda images: augment(images, draw)))
            else:
                x = normalize(x.map(lambda images: resize_batch(images, self.image_size)))
        else:
            x = x.to(device, non_blocking=True)
            x = normalize(x) if x.dtype == torch.uint8 else x
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def make_loader(
    dataset: Dataset,
    batch_size: int = 32,
    *,
    shuffle: bool = False,
    seed: int = 0,
    workers: int | None = None,
    device: str | torch.device = "cpu",
    drop_last: bool = False,
) -> DataLoader:
    """DataLoader with seeded, reproducible order, worker seeding and pinned memory on CUDA.

    ``workers=None`` picks :func:`default_workers`; 0 loads in the main process.
    """
    if workers is None:
        workers = default_workers()
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        pin_memory=torch.device(device).type == "cuda",
        worker_init_fn=seed_worker,
        generator=generator,
        persistent_workers=workers > 0,
        drop_last=drop_last,
    )


# --------------------------------------------------------------------------- splits for experiments


def manifest_hash(samples: pd.DataFrame, root: str | Path | None = None) -> str:
    """SHA-256 over (path, label) rows in sorted order: identifies the data a model saw."""
    import hashlib

    root_str = str(Path(root)) + "/" if root is not None else None
    rows = sorted(
        (str(Path(p).relative_to(root_str)) if root_str and str(p).startswith(root_str) else str(p), int(label))
        for p, label in zip(samples["path"], samples["label"], strict=True)
    )
    digest = hashlib.sha256()
    for path, label in rows:
        digest.update(f"{path}\t{label}\n".encode())
    return digest.hexdigest()


def load_samples(path: str | Path) -> pd.DataFrame:
    """Sample table from a CSV (e.g. the grid-extraction manifest): needs ``path`` and
    ``emotion`` (or ``label``); optional ``split``, ``gender``, ``source``, ``kept``.

    Relative paths are taken relative to the CSV's folder; rows with ``kept`` false are dropped.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sample table {path} does not exist")
    try:
        table = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not a readable CSV sample table ({' '.join(str(err).split())})") from None
    if "path" not in table.columns:
        raise ValueError(f"{path} has no 'path' column (columns: {', '.join(table.columns)})")
    if "kept" in table.columns:
        table = table[table["kept"].astype(str).str.lower().isin(["true", "1", "yes"])]
    if "emotion" in table.columns:
        try:
            table = table.assign(emotion=[canonical_name(e) for e in table["emotion"]])
        except UnknownLabelError as err:
            raise ValueError(f"{path}: {err}") from None
        table = table.assign(label=[to_index(e) for e in table["emotion"]])
    elif "label" in table.columns:
        table = table.assign(emotion=[CLASSES[int(i)] for i in table["label"]])
    else:
        raise ValueError(f"{path} needs an 'emotion' or 'label' column")
    table = table.assign(path=[str(p if Path(p).is_absolute() else path.parent / p) for p in table["path"]])
    if "gender" in table.columns:
        try:
            table = table.assign(gender=[canonical_gender(g) for g in table["gender"].fillna("")])
        except UnknownLabelError as err:
            raise ValueError(f"{path}: {err}") from None
    return table.reset_index(drop=True)


def grouped_folds(samples: pd.DataFrame, k: int = 5, *, group: str = "source", seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """k (train_index, held_out_index) folds, stratified by label; grouped by ``group`` when the
    column exists (faces from one grid image are never on both sides), else plain stratified."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    most = max_folds(samples, group=group)
    if k > most:
        grids = f"{samples[group].nunique()} source grids ('{group}') and " if group in samples.columns else ""
        raise ValueError(f"{k} folds need at least {k} {'grids and ' if grids else ''}{k} images in some class; these "
                         f"{len(samples)} samples have {grids}at most {samples['label'].value_counts().max()} images per "
                         f"class: use k <= {most} or more data")
    labels = samples["label"].to_numpy()
    if group in samples.columns:
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        folds = splitter.split(np.zeros(len(samples)), labels, samples[group].to_numpy())
    else:
        folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(samples)), labels)
    return [(np.sort(train), np.sort(held)) for train, held in folds]


def max_folds(samples: pd.DataFrame, *, group: str = "source") -> int:
    """The most folds :func:`grouped_folds` can make: the number of groups (source grids) when
    the column exists, and never more than the size of the largest class (sklearn's stratified limit)."""
    largest_class = int(samples["label"].value_counts().max()) if len(samples) else 0
    return min(int(samples[group].nunique()), largest_class) if group in samples.columns else largest_class


def grouped_split(samples: pd.DataFrame, val_fraction: float, *, group: str = "source", seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, val) split that never puts two rows of one ``group`` on both sides.

    No such column, or every row its own group: a plain stratified split. ``content_group``
    (pixel-identical copies, :mod:`fercore.data.duplicates`): a stratified split of the groups, each
    group following its first row. Otherwise (source grids): grouped, stratified folds, one
    of about ``val_fraction`` held out."""
    if group not in samples.columns or samples[group].is_unique:
        return stratified_split(samples, val_fraction, seed)
    if group == "content_group":
        firsts = samples.drop_duplicates(group)
        _, val_firsts = stratified_split(firsts, val_fraction, seed)
        held = samples[group].isin(set(val_firsts[group]))
        return samples[~held].reset_index(drop=True), samples[held].reset_index(drop=True)
    train_index, val_index = grouped_folds(samples, selection_fold_count(val_fraction), group=group, seed=seed)[0]
    return samples.iloc[train_index].reset_index(drop=True), samples.iloc[val_index].reset_index(drop=True)


def selection_fold_count(val_fraction: float) -> int:
    """Folds of the grouped validation split: one of ``round(1 / val_fraction)`` (at least 2) is held out."""
    return max(2, round(1 / val_fraction))


def selection_split_problem(samples: pd.DataFrame, val_fraction: float, *, group: str = "source") -> str | None:
    """Why no validation split can be carved from ``samples`` for model selection, or None when one can.

    The unit of the split is a ``group`` (a source grid) when the column exists, else a face. A
    split needs at least :func:`selection_fold_count` (k) units in all and at least 2 of every class
    (holding out a class's only grid would leave the class out of training); a grouped split also
    needs a class with k faces (sklearn's stratified folds), a split of single faces (or of
    ``content_group`` groups) a unit of every class on each side (a stratified split)."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    grouped = group in samples.columns and not samples[group].is_unique
    folds = grouped and group != "content_group"  # grouped_split: stratified folds, else a stratified split of units
    units = samples[group] if grouped else pd.Series(np.arange(len(samples)), index=samples.index)
    unit = "grid" if grouped and group == "source" else ("group" if grouped else "face")
    k = selection_fold_count(val_fraction)
    if units.nunique() < k:
        return f"{units.nunique()} {unit}s; a 1/{k} validation split needs at least {k}"
    per_class = units.groupby(samples["label"]).nunique()
    thin = [CLASSES[int(c)] for c, n in per_class.items() if n < 2]
    if thin:
        return f"one {unit} only of {', '.join(thin)}"
    if folds and samples["label"].value_counts().max() < k:  # sklearn's stratified folds need this
        return f"{samples['label'].value_counts().max()} faces at most per class; stratified 1/{k} folds need {k}"
    n_val = int(np.ceil(val_fraction * units.nunique()))
    if not folds and min(n_val, units.nunique() - n_val) < len(per_class):
        return (f"{units.nunique()} {unit}s of {len(per_class)} classes; a stratified {val_fraction:.0%} split needs one "
                "of each class on both sides")
    return None


def selection_split(samples: pd.DataFrame, val_fraction: float, *, group: str = "source",
                    seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, str | None]:
    """(train, val, why_none) for an inner validation split that fercore makes on its own (model
    selection inside CV folds, gender-study runs, training regimes).

    With enough data this is :func:`grouped_split` and ``why_none`` is None. With too few grids
    (:func:`selection_split_problem`) the split adapts instead of failing: every row trains, the
    validation part is empty (the run keeps its final epoch: no selection) and ``why_none`` says why."""
    problem = selection_split_problem(samples, val_fraction, group=group)
    if problem is None:
        train, val = grouped_split(samples, val_fraction, group=group, seed=seed)
        if len(val) and len(train):
            return train, val, None
        problem = "the grouped split left one side empty"
    log.info("no validation split for model selection (%s): training on all %d faces, keeping the final epoch",
                 problem, len(samples))
    return samples.reset_index(drop=True), samples.iloc[:0].reset_index(drop=True), problem


def _stratified_order(samples: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Rows shuffled so that every prefix holds the classes in about their overall proportions."""
    rng = np.random.default_rng(seed)
    shuffled = samples.iloc[rng.permutation(len(samples))]
    rank = shuffled.groupby("label").cumcount()
    size = shuffled.groupby("label")["label"].transform("size")
    key = (rank + rng.uniform(0, 1, len(shuffled))) / size
    return shuffled.assign(_key=key.to_numpy()).sort_values("_key", kind="stable").drop(columns="_key")


def _by_gender(samples: pd.DataFrame, genders: tuple[str, str]) -> dict[str, pd.DataFrame]:
    if "gender" not in samples.columns:
        raise ValueError("gender splits need a 'gender' column (e.g. from the grid-extraction manifest)")
    by_gender = {g: samples[samples["gender"] == g] for g in genders}
    for g, part in by_gender.items():
        if part.empty:
            raise ValueError(f"no samples with gender {g!r}; found {sorted(samples['gender'].unique())}")
    return by_gender


def _added(p: float, n_other: int) -> int:
    """Faces of the other gender added at p %: ``round(p / 100 * n_other)``."""
    if not 0 <= p <= 100:
        raise ValueError(f"percent must be within 0-100, got {p}")
    return int(round(p / 100 * n_other))


def gender_training_sets(
    samples: pd.DataFrame,
    percents: Sequence[float] = (0, 25, 50, 75, 100),
    *,
    genders: tuple[str, str] = ("female", "male"),
    seed: int = 0,
) -> dict[tuple[str, float], pd.DataFrame]:
    """Training sets of the study plan (the growing arm): all of one gender plus p% of the other, for each p.

    Keys are (base gender, p). The added p% is exactly ``round(p / 100 * n_other)`` faces,
    stratified by emotion and nested (the 25% set is inside the 50% set).
    """
    by_gender = _by_gender(samples, genders)
    sets = {}
    for base, other in (genders, genders[::-1]):
        ordered = _stratified_order(by_gender[other], seed)
        for p in percents:
            extra = ordered.iloc[: _added(p, len(ordered))]
            sets[(base, p)] = pd.concat([by_gender[base], extra]).sort_values("path").reset_index(drop=True)
    return sets


def fixed_size_training_sets(
    samples: pd.DataFrame,
    percents: Sequence[float] = (0, 25, 50, 75, 100),
    *,
    genders: tuple[str, str] = ("female", "male"),
    seed: int = 0,
) -> dict[tuple[str, float], pd.DataFrame]:
    """The fixed-size arm: for each (base gender, p), the gender mix of the growing set
    (:func:`gender_training_sets`) at a constant size, that of the smallest growing set of the base.

    The growing set (base, p) holds ``n_base`` + ``m = round(p / 100 * n_other)`` faces, a share
    ``m / (n_base + m)`` of the other gender; its fixed-size twin holds ``size`` faces, of which
    ``round(size * share)`` of the other gender. Both parts are prefixes of the same seeded,
    emotion-stratified orders as the growing arm: the other gender's faces are nested (growing
    with p, inside the growing set's), the base gender's nested the other way (shrinking with p).
    """
    by_gender = _by_gender(samples, genders)
    sets = {}
    for base, other in (genders, genders[::-1]):
        base_order = _stratified_order(by_gender[base], seed)
        other_order = _stratified_order(by_gender[other], seed)
        n_base = len(base_order)
        size = n_base + min(_added(p, len(other_order)) for p in percents)
        for p in percents:
            added = _added(p, len(other_order))
            n_other = int(round(size * added / (n_base + added)))
            parts = [base_order.iloc[: size - n_other], other_order.iloc[:n_other]]
            sets[(base, p)] = pd.concat(parts).sort_values("path").reset_index(drop=True)
    return sets


def gender_share(training: pd.DataFrame, gender: str) -> float:
    """Percentage of ``training``'s faces of ``gender``."""
    return 100.0 * float((training["gender"] == gender).mean()) if len(training) else float("nan")


def split_by_gender(samples: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Test subsets: one table per gender plus ``all``."""
    if "gender" not in samples.columns:
        raise ValueError("samples have no 'gender' column")
    parts = {str(g): part.reset_index(drop=True) for g, part in samples.groupby("gender")}
    parts["all"] = samples.reset_index(drop=True)
    return parts


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
