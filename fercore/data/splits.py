"""Splits of a sample table for experiments: stratified and grouped (train, val) splits, k folds,
the model-selection split, and the gender training sets of the gender study."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, train_test_split

from fercore.core.labels import CLASSES

log = logging.getLogger(__name__)

def stratified_split(samples: pd.DataFrame, val_fraction: float = 0.15, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a sample table into (train, val) with the same class proportions, reproducibly."""
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


def grouped_folds(samples: pd.DataFrame, k: int = 5, *, group: str = "source", seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """k (train_index, held_out_index) folds, stratified by label; grouped by ``group`` when the
    column exists (faces from one grid image are never on both sides), else plain stratified."""

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
