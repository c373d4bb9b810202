"""Experiments made of several training runs: grouped cross-validation and the gender-split study.

Both are resumable: a finished run (its ``metrics.json`` exists) is skipped, an interrupted
one (``last.pt`` without ``metrics.json``) is resumed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from fercore import inference
from fercore.analysis import accuracy, arrays, macro_f1, plots
from fercore.core import labels
from fercore.core.files import new_run_dir, write_csv, write_json
from fercore.core.records import refuse_changes
from fercore.data import (
    dataset_classes,
    discover,
    fixed_size_training_sets,
    gender_share,
    gender_training_sets,
    grouped_folds,
    load_samples,
    max_folds,
    selection_split,
    split_by_gender,
    within_classes,
)
from fercore.inference import prediction_table
from fercore.models import load_model
from fercore.training.config import TrainConfig
from fercore.training.loop import train

log = logging.getLogger(__name__)


def run_or_resume(config: TrainConfig, run_dir: Path, samples) -> Path:
    """Train into ``run_dir``: skip when finished (metrics.json), resume when interrupted (last.pt)."""
    if (run_dir / "metrics.json").is_file():
        log.info("%s is finished; skipping", run_dir)
    elif (run_dir / "last.pt").is_file():
        log.info("%s was interrupted; resuming", run_dir)
        train(resume=run_dir, samples=samples)
    else:
        if run_dir.exists():  # started but no epoch finished: nothing worth keeping
            for child in run_dir.iterdir():
                child.unlink()
        train(config, out=run_dir, samples=samples)
    return run_dir


def samples_digest(*tables: pd.DataFrame) -> str:
    """SHA-256 of the sample tables' paths, labels and, when present, source grid and gender."""
    digest = hashlib.sha256()
    for table in tables:
        columns = [c for c in ("path", "label", "source", "gender") if c in table.columns]
        digest.update(table[columns].astype(str).to_csv(index=False).encode())
    return digest.hexdigest()


def claim_out_dir(out_dir: Path, record: dict) -> None:
    """Use ``out_dir`` for an experiment described by ``record`` (config, data digest, k ...): a new
    or empty folder, or one holding an earlier run of the same experiment (then finished runs are
    reused). Another experiment's folder is refused with the differences."""
    record = json.loads(json.dumps(record, default=str))
    saved = out_dir / "experiment.json"
    if saved.is_file():
        refuse_changes(json.loads(saved.read_text()), record, lambda diffs: FileExistsError(
            f"{out_dir} holds a run of another experiment, which a resume would mix with this one "
            f"({'; '.join(d if len(d) < 120 else d[:117] + '...' for d in diffs)}); "
            "choose another --out (or delete that folder)"), expand=("config",))
        log.info("%s holds an earlier run of this experiment; finished parts are reused", out_dir)
        return
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty and records no experiment (no experiment.json); choose another --out")
    write_json(saved, record)


def _record(kind: str, config: TrainConfig, samples: Sequence[pd.DataFrame], **extra) -> dict:
    """What makes two runs of an experiment the same: its config (less progress and workers), data and settings."""
    settings = {k: v for k, v in config.to_dict().items() if k not in ("progress", "workers")}
    return {"kind": kind, **extra, "samples_sha256": samples_digest(*samples), "config": settings}


def score_predictions(preds: pd.DataFrame) -> dict[str, float]:
    """Loss (mean negative log restricted probability of the true class), accuracy and macro-F1
    (over the classes with support) of a predictions table (:func:`fercore.inference.predictions.predict`)."""
    y_true, y_pred, probs = arrays(preds)
    p_true = probs[np.arange(len(y_true)), y_true]
    return {"loss": float(-np.log(np.clip(p_true, 1e-12, None)).mean()) if len(y_true) else float("nan"),
            "accuracy": accuracy(y_true, y_pred) if len(y_true) else float("nan"),
            "macro_f1": macro_f1(y_true, y_pred) if len(y_true) else float("nan")}


def evaluate_checkpoint(checkpoint: Path, samples: pd.DataFrame, classes: list[str], *, workers: int = 2,
                        device: str = "auto", cache_dir: str | Path | None = None) -> dict[str, float]:
    """Loss, accuracy, macro-F1 of a saved model on a sample table (one :func:`fercore.inference.infer`
    pass), its logits restricted to ``labels.class_set(classes, within=<trained classes>)``: a part
    of the data that lacks a class is still scored on the whole data set's classes."""
    return evaluate_parts(checkpoint, {"all": samples}, classes, workers=workers, device=device, cache_dir=cache_dir)["all"]


def evaluate_parts(checkpoint: Path, parts: dict[str, pd.DataFrame], classes: list[str], *, workers: int = 2,
                   device: str = "auto", cache_dir: str | Path | None = None) -> dict[str, dict[str, float]]:
    """:func:`evaluate_checkpoint` on several parts of one test set (e.g. per gender), from one
    inference pass over the images of all parts."""
    model = load_model(checkpoint)
    scored = labels.class_set(classes, within=model.trained_classes)
    kept = {name: within_classes(part, scored) for name, part in parts.items()}
    union = pd.concat(list(kept.values()), ignore_index=True).drop_duplicates("path").reset_index(drop=True)
    result = inference.infer(model, union, workers=workers, device=device, progress=False, cache_dir=cache_dir)
    return {name: score_predictions(prediction_table(result, part, scored)) for name, part in kept.items()}


def cv_samples(config: TrainConfig, samples_path: str | Path | None = None,
               k: int | None = None) -> tuple[pd.DataFrame | None, int]:
    """The samples and number of folds of a cross-validation: the table at ``samples_path`` (its
    ``train_split`` rows when it has a ``split`` column; None: the config's ``data_root``) and ``k``.
    ``k`` None is 5, or fewer when the data has fewer source grids (a ``k`` given is kept:
    :func:`fercore.data.grouped_folds` refuses one the data cannot fill)."""
    samples = load_samples(samples_path) if samples_path else None
    if samples is not None and "split" in samples.columns:
        samples = samples[samples["split"] == config.train_split].reset_index(drop=True)
    most = max_folds(samples if samples is not None else discover(config.data_root, [config.train_split]))
    folds = k or 5
    if k is None and most < folds:
        if most < 2:
            raise ValueError(f"cross-validation needs at least 2 source grids (or 2 images of a class); found {most}")
        log.warning("only %d folds are possible with this data (fewer source grids than 5); using k=%d", most, most)
        folds = most
    return samples, folds


def run_cv(
    config: TrainConfig, k: int = 5, *, samples: pd.DataFrame | None = None, out: str | Path | None = None
) -> pd.DataFrame:
    """k-fold cross-validation, grouped by source grid when ``samples`` has a ``source`` column.

    Each fold trains on k-1 parts (with an inner, also grouped, validation split for model
    selection) and is scored on its held-out part. Writes ``folds.csv`` and ``summary.json``.
    """
    if samples is None:
        samples = discover(config.data_root, [config.train_split])
        available = dataset_classes(config.data_root)
    else:
        available = dataset_classes(samples)
    config = replace(config, classes=labels.class_set(config.classes, available=available))
    folds = grouped_folds(samples, k, seed=config.seed)  # before any folder is made: too few grids fail here
    out_dir = Path(out) if out else new_run_dir(Path("results") / f"{config.experiment}-cv")
    claim_out_dir(out_dir, _record("cv", config, [samples], k=k))
    rows = []
    for fold, (train_index, held_index) in enumerate(folds):
        train_part, held_out = samples.iloc[train_index], samples.iloc[held_index].reset_index(drop=True)
        inner_train, inner_val, why_none = selection_split(train_part.reset_index(drop=True), config.val_fraction,
                                                           seed=config.seed)
        run_dir = run_or_resume(config, out_dir / f"fold{fold}", (inner_train, inner_val, held_out))
        test = evaluate_checkpoint(run_dir / "checkpoint.pt", held_out, config.classes, workers=config.workers,
                                   device=config.device, cache_dir=out_dir / "inference")
        rows.append({"fold": fold, "n_train": len(inner_train), "n_val": len(inner_val), "n_test": len(held_out),
                     "accuracy": test["accuracy"], "macro_f1": test["macro_f1"], "selection": selection_text(why_none)})
    table = pd.DataFrame(rows)
    write_csv(out_dir / "folds.csv", table)
    write_json(out_dir / "summary.json", {
        "k": k,
        "grouped_by": "source" if "source" in samples.columns else None,
        "classes": config.classes,
        **{f"{m}_mean": float(table[m].mean()) for m in ("accuracy", "macro_f1")},
        **{f"{m}_std": float(table[m].std(ddof=1)) if k > 1 else 0.0 for m in ("accuracy", "macro_f1")},
    })
    return table


def selection_text(why_none: str | None) -> str:
    """The ``selection`` column of the experiment tables: how a run chose its weights."""
    return "best epoch on grouped validation" if why_none is None else f"none (too few grids: {why_none})"


def gender_study_sets(train_samples: pd.DataFrame, percents: Sequence[float], *, seed: int = 0) -> list[dict]:
    """Every training set of the gender study, one dict each (arm, base, percent, share, training).

    ``full``: all training faces (base ``all``), first; ``growing``: all of the base gender + p %
    of the other (:func:`gender_training_sets`); ``fixed``: the same gender mix at the constant
    size of the base's smallest growing set (:func:`fixed_size_training_sets`). ``share`` is the
    % of the training faces of the other gender (of ``female`` for the full set)."""
    genders = ("female", "male")
    full = train_samples[train_samples["gender"].isin(genders)].sort_values("path").reset_index(drop=True)
    runs = [{"arm": "full", "base": "all", "percent": float("nan"), "share": gender_share(full, "female"),
             "training": full}]
    for arm, sets in (("growing", gender_training_sets(train_samples, percents, genders=genders, seed=seed)),
                      ("fixed", fixed_size_training_sets(train_samples, percents, genders=genders, seed=seed))):
        for (base, percent), training in sets.items():
            other = genders[1 - genders.index(base)]
            runs.append({"arm": arm, "base": base, "percent": float(percent), "share": gender_share(training, other),
                         "training": training})
    return runs


def gender_split_samples(config: TrainConfig, samples_path: str | Path,
                         test_samples_path: str | Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training, test) tables of the gender study: the table at ``samples_path`` and the one at
    ``test_samples_path``, or, without it, the rows of ``samples_path`` whose ``split`` is the
    config's ``train_split`` / ``test_split`` (default ``test``). An empty side is refused."""
    samples = load_samples(samples_path)
    if test_samples_path:
        train_samples, test_samples = samples, load_samples(test_samples_path)
    elif "split" in samples.columns:
        train_samples = samples[samples["split"] == config.train_split].reset_index(drop=True)
        test_samples = samples[samples["split"] == (config.test_split or "test")].reset_index(drop=True)
    else:
        raise ValueError("give --test-samples, or a --samples table with a 'split' column")
    for name, table, split in (("training", train_samples, config.train_split), ("test", test_samples, config.test_split or "test")):
        if table.empty:
            source = test_samples_path if name == "test" and test_samples_path else samples_path
            raise ValueError(f"{source} has no rows of split '{split}' to {'train' if name == 'training' else 'test'} on "
                             f"(splits found: {', '.join(map(str, samples.get('split', pd.Series(dtype=str)).unique()))}); "
                             "set train_split / test_split or give --test-samples")
    return train_samples, test_samples


def run_gender_splits(
    config: TrainConfig,
    train_samples: pd.DataFrame,
    test_samples: pd.DataFrame,
    percents: Sequence[float] = (0, 25, 50, 75, 100),
    *,
    out: str | Path | None = None,
) -> pd.DataFrame:
    """The gender-split study, two arms and both directions (:func:`gender_study_sets`): each
    training set is scored on each gender's test faces and on all of them.

    A set equal to one already trained (e.g. the fixed arm at the smallest share, the full set
    and ``p = 100``) reuses that run. A set with too few grids for a grouped validation split
    trains its fixed epochs without selection (the ``selection`` column says so). Writes
    ``results.csv`` (arm, base, percent, share, n_train, n_val, selection, run, test_on, n_test,
    accuracy, macro_f1) and ``figures/accuracy_vs_percent.png``.
    """
    config = replace(config, classes=labels.class_set(config.classes, available=dataset_classes(pd.concat([train_samples, test_samples]))))
    tests = split_by_gender(test_samples)
    out_dir = Path(out) if out else new_run_dir(Path("results") / f"{config.experiment}-gender")
    claim_out_dir(out_dir, _record("gender-splits", config, [train_samples, test_samples], percents=list(percents)))
    out_dir.mkdir(parents=True, exist_ok=True)
    done: dict[tuple[str, ...], dict] = {}  # training paths -> the run that trained on them
    rows = []
    for spec in gender_study_sets(train_samples, percents, seed=config.seed):
        training = spec.pop("training")
        key = tuple(training["path"])
        if key not in done:
            kind = {"full": "", "growing": "_plus", "fixed": "_fixed"}[spec["arm"]]
            name = "all" if spec["arm"] == "full" else f"{spec['base']}{kind}_{spec['percent']:g}"
            inner_train, inner_val, why_none = selection_split(training, config.val_fraction, seed=config.seed)
            run_dir = run_or_resume(config, out_dir / name, (inner_train, inner_val, None))
            scored = evaluate_parts(run_dir / "checkpoint.pt", tests, config.classes, workers=config.workers,
                                    device=config.device, cache_dir=out_dir / "inference")
            done[key] = {"run": name, "n_val": len(inner_val), "selection": selection_text(why_none), "scored": scored}
        run = done[key]
        for test_on, part in tests.items():
            metrics = run["scored"][test_on]
            rows.append({**spec, "n_train": len(training), "n_val": run["n_val"], "selection": run["selection"],
                         "run": run["run"], "test_on": test_on, "n_test": len(part), "accuracy": metrics["accuracy"],
                         "macro_f1": metrics["macro_f1"]})
    table = pd.DataFrame(rows)
    write_csv(out_dir / "results.csv", table)
    plots.gender_splits(table, out_dir / "figures" / "accuracy_vs_percent")
    return table


def summarise(values: Sequence[float]) -> str:
    """'mean ± sd' of a list of numbers."""
    arr = np.asarray(values, dtype=float)
    return f"{arr.mean():.3f} ± {arr.std(ddof=1) if len(arr) > 1 else 0.0:.3f}"

