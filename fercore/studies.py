"""The research questions' analyses, one function per step, called by the thesis notebooks.

RQ1 scores a model trained on real faces on real and synthetic test sets (accuracy with
bootstrap intervals, per-class recall, confidence and calibration, does a temperature fitted
on real faces transfer). RQ2 fine-tunes it on synthetic faces and tests on real ones (paired
McNemar against the starting model) plus the gender-split study. RQ3 compares Grad-CAM region
shares between domains. RQ4 compares penultimate embeddings (domain classifier AUC, MMD,
centroid distances). Each ``*_findings`` function turns a run's numbers into sentences, so
the notebooks' conclusions are computed, never typed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from torch import nn

from . import labels
from .data import dataset_classes, discover, load_samples, per_class_subset, within_classes
from .labels import CLASSES
from .metrics import (
    accuracy,
    arrays,
    calibration_bins,
    ece_mce,
    evaluate_predictions,
    fit_temperature,
    mcnemar,
    restricted_logits,
    softmax,
)
from .models import create_model, default_image_size, load_model, read_checkpoint, trained_classes
from .predict import predict
from .train import Stage, TrainConfig

log = logging.getLogger(__name__)

ALPHA = 0.05


# --------------------------------------------------------------------------- inputs


def load_classifier(weights: str | Path, arch: str, *, image_size: int | None = None, trust_pickle: bool = False) -> nn.Module:
    """A model from a fercore checkpoint (architecture from its metadata) or from a foreign weight
    file with a head for the 8 classes (HSEmotion: ``trust_pickle=True``) built as ``arch``.

    ``image_size`` overrides the size the model is fed (default: the checkpoint's, else the arch's).
    """
    ckpt = read_checkpoint(weights, trust_pickle=trust_pickle)
    if ckpt.metadata.get("arch"):
        model = load_model(weights, trust_pickle=trust_pickle)
    else:
        model = create_model(arch, weights=ckpt, head="load")
        model.fercore_metadata = {"arch": model.fercore_arch, "num_classes": len(CLASSES),
                                  "image_size": default_image_size(model.fercore_arch), "weights": str(weights)}
    if image_size and int(image_size) != int(model.fercore_metadata.get("image_size", image_size)):
        log.warning("%s was trained at %s px; feeding it %s px as asked", weights, model.fercore_metadata["image_size"], image_size)
    if image_size:
        model.fercore_metadata = {**model.fercore_metadata, "image_size": int(image_size)}
    return model.eval()


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


class TestSets(dict):
    """``{name: samples}`` test sets, plus per set the class set it is scored on (``classes``: every
    class of the data set over all its splits) and what the duplicate policy dropped (``duplicates``)."""

    __test__ = False  # not a pytest class

    def __init__(self, sets: Mapping[str, pd.DataFrame], classes: Mapping[str, list[str]],
                 duplicates: Mapping[str, dict[str, Any]] | None = None):
        super().__init__(sets)
        self.classes = dict(classes)
        self.duplicates = dict(duplicates or {})


def _drop_train_twins(test: pd.DataFrame, reference: pd.DataFrame | None, name: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    from .dedup import drop_test_duplicates

    kept, report = drop_test_duplicates(test, {f"{name} train": reference} if reference is not None else {},
                                        note="" if reference is not None else "no train split to compare with")
    log.info("%s: %s", name, report.line())
    return kept, report.to_json()


def test_sets(
    real_roots: Mapping[str, str | Path],
    synthetic_root: str | Path,
    *,
    real_split: str = "test",
    synthetic_split: str = "test",
    max_per_class: int | None = None,
    seed: int = 0,
    keep_duplicates: bool = False,
) -> TestSets:
    """``{name: samples}`` for each real dataset and ``synthetic``, each with a ``domain`` column
    (``real`` / ``synthetic``) and ``dataset`` (its name), and at most ``max_per_class`` images per
    emotion (seeded). Unless ``keep_duplicates``, test images with a pixel-identical twin in the
    same data set's ``train`` split, or duplicated with another label, are dropped first."""
    sets, classes, duplicates = {}, {}, {}
    for name, root in real_roots.items():
        test = discover(root, [real_split])
        if not keep_duplicates:
            reference = discover(root, ["train"]) if (Path(root) / "train").is_dir() and real_split != "train" else None
            test, duplicates[name] = _drop_train_twins(test, reference, name)
        sets[name] = per_class_subset(test, max_per_class, seed=seed).assign(domain="real", dataset=name)
        classes[name] = dataset_classes(root)
    synthetic = face_table(synthetic_root, synthetic_split)
    if not keep_duplicates:
        try:
            reference = face_table(synthetic_root, "train") if synthetic_split != "train" else None
        except (ValueError, FileNotFoundError):
            reference = None
        synthetic, duplicates["synthetic"] = _drop_train_twins(synthetic, reference, "synthetic")
    sets["synthetic"] = per_class_subset(synthetic, max_per_class, seed=seed).assign(domain="synthetic", dataset="synthetic")
    classes["synthetic"] = dataset_classes(synthetic_root)
    return TestSets(sets, classes, duplicates)


def duplicate_table(sets: TestSets) -> pd.DataFrame:
    """Rows: test sets; images checked, dropped as twins of training images, dropped for
    conflicting labels, and what they were compared with."""
    rows = [{"test set": name, "checked": d["checked_images"], "dropped: twin in train": d["dropped_train_twins"],
             "dropped: other label": d["dropped_conflicting_labels"], "compared with": ", ".join(d["compared_with"]) or d["note"]}
            for name, d in sets.duplicates.items()]
    columns = ["test set", "checked", "dropped: twin in train", "dropped: other label", "compared with"]
    return pd.DataFrame(rows, columns=columns).set_index("test set")


def shared_classes(sets: TestSets, names: tuple[str, str] | None = None) -> list[str]:
    """Classes both of two test sets hold (default: the first real set and the synthetic one)."""
    a, b = names or (next(n for n in sets if n != "synthetic"), "synthetic")
    return labels.class_set(sets.classes[a], within=sets.classes[b])


def class_table(sets: Mapping[str, pd.DataFrame], column: str = "emotion") -> pd.DataFrame:
    """Image counts per emotion (rows) and test set (columns)."""
    counts = pd.DataFrame({name: samples[column].value_counts() for name, samples in sets.items()}).fillna(0).astype(int)
    order = [c for c in CLASSES if c in counts.index] + [c for c in counts.index if c not in CLASSES]
    return counts.loc[order].rename_axis(column)


def examples(sets: Mapping[str, pd.DataFrame], per_set: int = 8, seed: int = 0) -> tuple[list[np.ndarray], list[str]]:
    """A few images of each test set (one per emotion, then repeats) with 'set: emotion' titles."""
    from .images import load_rgb

    images, titles = [], []
    for name, samples in sets.items():
        picked = per_class_subset(samples, 1, seed=seed).head(per_set)
        for path, emotion in zip(picked["path"], picked["emotion"], strict=True):
            images.append(np.asarray(load_rgb(path)))
            titles.append(f"{name}: {emotion}")
    return images, titles


def slug(name: str) -> str:
    """A file-name-safe form of a label: 'fine-tuned on synthetic' -> 'fine-tuned_on_synthetic'."""
    import re

    return re.sub(r"[^A-Za-z0-9.-]+", "_", name).strip("_").lower()


def on_device(model: nn.Module, device: str = "auto") -> nn.Module:
    """``model`` moved to ``device`` (auto: CUDA when available)."""
    from .train import pick_device

    return model.to(pick_device(device))


def paired_domains(sets: Mapping[str, pd.DataFrame], real: str | None = None) -> pd.DataFrame:
    """One real test set (``real`` or the first) and the synthetic one in a table with ``domain``."""
    real = real or next(name for name in sets if name != "synthetic")
    return pd.concat([sets[real], sets["synthetic"]], ignore_index=True)


# --------------------------------------------------------------------------- RQ1


@dataclass
class DomainResult:
    """Predictions and metrics of one model on one test set."""

    name: str
    preds: pd.DataFrame
    metrics: dict[str, Any]
    classes: list[str]


def evaluate_sets(
    model: nn.Module, sets: TestSets, *, classes: Mapping[str, list[str]] | None = None, batch_size: int = 64,
    workers: int | None = None, device: str = "auto", progress: bool = True, n_boot: int = 1000, seed: int = 0,
    out: str | Path | None = None,
) -> dict[str, DomainResult]:
    """Predict each test set on its data set's classes (``classes`` or ``sets.classes``; FER2013: 7),
    intersected with the model's trained classes, and compute every metric; with ``out``, write
    ``predictions_<set>.csv`` and ``metrics_<set>.json`` there."""
    from .fileio import write_json
    from .predict import write_predictions

    classes = classes if classes is not None else sets.classes
    results = {}
    for name, samples in sets.items():
        scored = labels.class_set(classes[name], within=trained_classes(model))
        samples = within_classes(samples, scored)
        preds = predict(model, samples, classes=scored, batch_size=batch_size, workers=workers,
                        device=device, progress=progress)
        results[name] = DomainResult(name, preds, evaluate_predictions(preds, classes=scored, n_boot=n_boot, seed=seed), scored)
        if out is not None:
            write_predictions(preds, Path(out) / f"predictions_{name}.csv")
            write_json(Path(out) / f"metrics_{name}.json", results[name].metrics)
    return results


def summary_table(results: Mapping[str, DomainResult]) -> pd.DataFrame:
    """Rows: test sets; accuracy with its 95% bootstrap interval, macro-F1, calibration, confidence."""
    rows = []
    for name, r in results.items():
        m = r.metrics
        ci = m["bootstrap_95ci"]["accuracy"]
        rows.append({"test set": name, "n": m["n"], "classes": len([c for c in CLASSES if m[c]["support"]]),
                     "accuracy": m["accuracy"], "acc 95% low": ci["low"], "acc 95% high": ci["high"],
                     "macro F1": m["macro avg"]["f1-score"], "balanced acc": m["balanced_accuracy"],
                     "ECE": m["calibration"]["ece"],
                     "conf. correct": m["confidence"]["correct"]["mean"], "conf. wrong": m["confidence"]["incorrect"]["mean"]})
    return pd.DataFrame(rows).set_index("test set")


def per_class_recall(results: Mapping[str, DomainResult]) -> pd.DataFrame:
    """Recall per emotion (rows) and test set (columns); NaN where a set lacks the class."""
    return pd.DataFrame({name: {c: (r.metrics[c]["recall"] if r.metrics[c]["support"] else np.nan) for c in CLASSES}
                         for name, r in results.items()}).rename_axis("emotion")


def accuracy_gap(preds_a: pd.DataFrame, preds_b: pd.DataFrame, *, n_boot: int = 2000, seed: int = 0) -> dict[str, float]:
    """Accuracy of A minus accuracy of B on two independent test sets: bootstrap 95% interval of
    the difference and the p-value of Fisher's exact test on the 2x2 (right/wrong) table."""
    a = np.equal(*arrays(preds_a)[:2])
    b = np.equal(*arrays(preds_b)[:2])
    rng = np.random.default_rng(seed)
    diffs = rng.choice(a, (n_boot, len(a))).mean(axis=1) - rng.choice(b, (n_boot, len(b))).mean(axis=1)
    table = [[int(a.sum()), int((~a).sum())], [int(b.sum()), int((~b).sum())]]
    return {"difference": float(a.mean() - b.mean()), "low": float(np.quantile(diffs, 0.025)),
            "high": float(np.quantile(diffs, 0.975)), "p_value": float(stats.fisher_exact(table).pvalue)}


def accuracy_gap_table(gaps: Mapping[str, dict[str, float]]) -> pd.DataFrame:
    """Rows: real test sets; accuracy minus synthetic accuracy, its 95% interval and Fisher's p."""
    return pd.DataFrame([{"real test set": name, "accuracy real - synthetic": g["difference"], "95% low": g["low"],
                          "95% high": g["high"], "Fisher p": g["p_value"]} for name, g in gaps.items()]).set_index("real test set")


def temperature_transfer(results: Mapping[str, DomainResult], fit_on: str, *, seed: int = 0) -> pd.DataFrame:
    """Does calibration learnt on real faces carry over? A temperature is fitted on a random half
    of ``fit_on``; ECE before and after it is reported on the other half and on every other set."""
    logits, y_true = restricted_logits(results[fit_on].preds, results[fit_on].classes)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y_true))
    fit_idx, held_idx = order[: len(order) // 2], order[len(order) // 2:]
    temperature = fit_temperature(logits[fit_idx], y_true[fit_idx])
    rows = []
    for name, r in results.items():
        z, y = restricted_logits(r.preds, r.classes)
        if name == fit_on:
            z, y, name = z[held_idx], y[held_idx], f"{name} (held-out half)"
        before, after = softmax(z), softmax(z, temperature)
        rows.append({"test set": name, "temperature": temperature, "ECE before": ece_mce(y, before)["ece"],
                     "ECE after": ece_mce(y, after)["ece"], "mean conf. before": before.max(1).mean(),
                     "mean conf. after": after.max(1).mean(), "accuracy": float((before.argmax(1) == y).mean())})
    return pd.DataFrame(rows).set_index("test set")


def reliability_curves(results: Mapping[str, DomainResult], n_bins: int = 10) -> dict[str, pd.DataFrame]:
    """Calibration bins per test set (for :func:`fercore.plots.reliability_overlay`)."""
    return {name: calibration_bins(*true_probs(r.preds), n_bins=n_bins) for name, r in results.items()}


def true_probs(preds: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(true class indices, N x 8 probabilities) of the readable rows of a predictions table."""
    y_true, _, probs = arrays(preds)
    return y_true, probs


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _p(p: float) -> str:
    return f"p = {p:.3g}" if p >= 1e-4 else "p < 0.0001"


def rq1_findings(summary: pd.DataFrame, gaps: Mapping[str, dict[str, float]], recall: pd.DataFrame,
                 calibration: pd.DataFrame, by_gender: Mapping[str, dict[str, float]] | None = None) -> list[str]:
    """Sentences from RQ1's tables: the accuracy gap, per-class extremes, calibration transfer."""
    out = []
    syn = summary.loc["synthetic"]
    for name, gap in gaps.items():
        real = summary.loc[name]
        verdict = ("significantly higher on real faces" if gap["difference"] > 0 else "significantly higher on synthetic faces") \
            if gap["p_value"] < ALPHA else "not significantly different between the domains"
        out.append(f"On {name} the model reaches {_pct(real['accuracy'])} accuracy (95% CI {_pct(real['acc 95% low'])}–"
                   f"{_pct(real['acc 95% high'])}), on synthetic faces {_pct(syn['accuracy'])} ({_pct(syn['acc 95% low'])}–"
                   f"{_pct(syn['acc 95% high'])}); accuracy is {verdict} (difference {100 * gap['difference']:+.1f} points, "
                   f"95% CI {100 * gap['low']:+.1f} to {100 * gap['high']:+.1f}; Fisher {_p(gap['p_value'])}).")
    syn_recall = recall["synthetic"].dropna().sort_values()
    out.append(f"On synthetic faces {syn_recall.index[-1]} is recognised best (recall {_pct(syn_recall.iloc[-1])}) and "
               f"{syn_recall.index[0]} worst ({_pct(syn_recall.iloc[0])}).")
    first_real = next(iter(gaps))
    shared = recall[[first_real, "synthetic"]].dropna()
    change = (shared["synthetic"] - shared[first_real]).sort_values()
    out.append(f"From {first_real} to synthetic faces, recall changes most for {change.index[0]} ({100 * change.iloc[0]:+.1f} points) "
               f"and best holds up for {change.index[-1]} ({100 * change.iloc[-1]:+.1f} points).")
    side = "over-confident" if syn["conf. correct"] * syn["accuracy"] + syn["conf. wrong"] * (1 - syn["accuracy"]) > syn["accuracy"] else "under-confident"
    out.append(f"Calibration: ECE is {summary.loc[first_real, 'ECE']:.3f} on {first_real} and {syn['ECE']:.3f} on synthetic faces, "
               f"where the model is {side}.")
    t = calibration["temperature"].iloc[0]
    row = calibration.loc["synthetic"]
    effect = "lowers" if row["ECE after"] < row["ECE before"] else "raises"
    out.append(f"A temperature fitted on half of {first_real} (T = {t:.2f}) {effect} the synthetic ECE from "
               f"{row['ECE before']:.3f} to {row['ECE after']:.3f}.")
    if by_gender:
        parts = ", ".join(f"{g} {_pct(v['accuracy'])} (n = {v['support']})" for g, v in sorted(by_gender.items()))
        out.append(f"Synthetic accuracy by the generator's gender label: {parts}.")
    return out


# --------------------------------------------------------------------------- RQ2


def model_comparison(before: Mapping[str, DomainResult], after: Mapping[str, DomainResult],
                     names: tuple[str, str] = ("pretrained", "fine-tuned")) -> pd.DataFrame:
    """Per test set: accuracy and macro-F1 of two models on the same images, and McNemar's test."""
    rows = []
    for test_set in before:
        a, b = before[test_set].preds, after[test_set].preds
        if list(a["path"]) != list(b["path"]):
            raise ValueError(f"{test_set}: the two models were scored on different images")
        ok = a["pred"].notna() & b["pred"].notna()
        y_true, pred_a, _ = arrays(a[ok])
        pred_b = arrays(b[ok])[1]
        test = mcnemar(y_true, pred_a, pred_b)
        rows.append({"test set": test_set, "n": int(ok.sum()),
                     f"accuracy {names[0]}": accuracy(y_true, pred_a), f"accuracy {names[1]}": accuracy(y_true, pred_b),
                     f"macro F1 {names[0]}": before[test_set].metrics["macro avg"]["f1-score"],
                     f"macro F1 {names[1]}": after[test_set].metrics["macro avg"]["f1-score"],
                     f"only {names[0]} right": test["b"], f"only {names[1]} right": test["c"],
                     "McNemar p": test["p_value"]})
    return pd.DataFrame(rows).set_index("test set")


def finetune_config(
    weights: str | Path, arch: str, *, image_size: int, epochs: int, head_epochs: int = 0, lr: float = 1e-4,
    head_lr: float | None = None, batch_size: int = 32, optimizer: str = "sam", val_fraction: float = 0.15,
    trust_pickle: bool = False, seed: int = 0, workers: int = 2, device: str = "auto", progress: bool = True,
    experiment: str = "rq2-finetune",
) -> TrainConfig:
    """The seed's fine-tuning recipe: SAM at lr 1e-4, the head alone for ``head_epochs`` (frozen
    body, at ``head_lr``), then everything for the remaining epochs."""
    if not 0 <= head_epochs <= epochs:
        raise ValueError(f"head_epochs={head_epochs} must lie within 0..epochs={epochs}")
    stages = [Stage(head_epochs, "head", head_lr or lr), Stage(epochs - head_epochs, "all", lr)] if head_epochs else []
    stages = [s for s in stages if s.epochs]
    return TrainConfig(experiment=experiment, arch=arch, weights=str(weights), trust_pickle=trust_pickle, head="load",
                       image_size=image_size, batch_size=batch_size, epochs=epochs, lr=lr, stages=stages, optimizer=optimizer,
                       val_fraction=val_fraction, augment=True, seed=seed, workers=workers, device=device, progress=progress)


def finetune(config: TrainConfig, train_samples: pd.DataFrame, out: str | Path) -> Path:
    """Fine-tune on ``train_samples`` (validation part split off by source grid when known) into
    ``out``; a finished run is reused, an interrupted one resumed. Returns the checkpoint."""
    from .data import grouped_split
    from .experiments import run_or_resume

    inner_train, inner_val = grouped_split(train_samples.reset_index(drop=True), config.val_fraction, seed=config.seed)
    run_dir = run_or_resume(config, Path(out), (inner_train, inner_val, None))
    return run_dir / "checkpoint.pt"


def training_log(checkpoint: str | Path) -> pd.DataFrame:
    """The ``log.csv`` (one row per epoch) of the run that wrote ``checkpoint``."""
    return pd.read_csv(Path(checkpoint).parent / "log.csv")


def accuracy_columns(comparison: pd.DataFrame) -> pd.DataFrame:
    """The ``accuracy <model>`` columns of :func:`model_comparison`, renamed to the model names."""
    columns = [c for c in comparison.columns if c.startswith("accuracy ")]
    return comparison[columns].rename(columns=lambda c: c.removeprefix("accuracy "))


def rq2_findings(comparison: pd.DataFrame, n_train: int, gender: pd.DataFrame | None = None,
                 names: tuple[str, str] = ("pretrained", "fine-tuned")) -> list[str]:
    """Sentences from RQ2: real-face accuracy before and after synthetic fine-tuning, gender splits."""
    out = []
    for test_set, row in comparison.iterrows():
        a, b = row[f"accuracy {names[0]}"], row[f"accuracy {names[1]}"]
        change = "a significant" if row["McNemar p"] < ALPHA else "no significant"
        direction = "gain" if b > a else "loss"
        out.append(f"Fine-tuning on {n_train} synthetic faces moves accuracy on {test_set} from {_pct(a)} to {_pct(b)}: "
                   f"{change} {direction if row['McNemar p'] < ALPHA else 'change'} (McNemar {_p(row['McNemar p'])}; "
                   f"{int(row[f'only {names[1]} right'])} images only the fine-tuned model gets right, "
                   f"{int(row[f'only {names[0]} right'])} only the pretrained one).")
    if gender is not None and len(gender):
        for base, part in gender.groupby("base"):
            other = next(g for g in part["test_on"].unique() if g not in (base, "all"))
            lo, hi = part["percent"].min(), part["percent"].max()
            at = part[part["test_on"] == other].set_index("percent")["accuracy"]
            own = part[part["test_on"] == base].set_index("percent")["accuracy"]
            out.append(f"Trained on {base} faces only, accuracy is {_pct(own[lo])} on {base} and {_pct(at[lo])} on {other} test faces; "
                       f"adding {hi:.0f}% of the {other} training faces moves the {other} accuracy to {_pct(at[hi])}.")
    return out


# --------------------------------------------------------------------------- RQ3


def gradcam_study(model: nn.Module, samples: pd.DataFrame, out: str | Path, *, classes: Mapping[str, list[str]] | list[str],
                  per_class: int = 4, batch_size: int = 16, progress: bool = True) -> dict[str, Any]:
    """Grad-CAM for the true class of each image (``explain.cam_report``) and what the chapter shows:
    the region comparison table, accuracy per domain on the explained images, the figure files."""
    from .explain import cam_report

    out = Path(out)
    report = cam_report(model, samples, out, classes=classes, per_class=per_class, batch_size=batch_size, progress=progress)
    regions = pd.read_csv(out / "cam_regions.csv")
    comparison = pd.read_csv(out / "region_comparison.csv").set_index("region") if (out / "region_comparison.csv").is_file() else None
    figures = [out / "figures" / "cam_mean.png", *sorted((out / "figures").glob("cam_*_correct.png")),
               *sorted((out / "figures").glob("cam_*_incorrect.png"))]
    return {"report": report, "comparison": comparison, "figures": figures,
            "accuracy": regions.groupby("domain")["correct"].mean().to_dict()}


def rq3_findings(comparisons: Mapping[str, pd.DataFrame], accuracy_by_model: Mapping[str, Mapping[str, float]]) -> list[str]:
    """Sentences from the Grad-CAM region comparison of each model (``region_comparison.csv``)."""
    out = []
    for model_name, table in comparisons.items():
        table = table.set_index("region") if "region" in table.columns else table
        significant = table.index[table["p_value_holm"] < ALPHA].tolist()
        largest = table["difference"].abs().idxmax()
        cols = [c for c in table.columns if c.startswith("mean_")]
        names = [c.removeprefix("mean_") for c in cols]
        row = table.loc[largest]
        where = (f"the attention share differs significantly (Holm-corrected Mann-Whitney, α = {ALPHA}) for "
                 + ", ".join(significant)) if significant else "no region's attention share differs significantly (Holm-corrected)"
        out.append(f"{model_name}: {where}; the largest difference is in the {largest} region "
                   f"({names[0]} {_pct(row[cols[0]])} vs {names[1]} {_pct(row[cols[1]])} of the Grad-CAM mass).")
        acc = accuracy_by_model.get(model_name)
        if acc:
            out.append(f"{model_name}: maps are for the true class; accuracy on the explained images is "
                       + ", ".join(f"{k} {_pct(v)}" for k, v in acc.items()) + ".")
    return out


# --------------------------------------------------------------------------- RQ4


@dataclass
class GapResult:
    """Real-vs-synthetic separation of one model's embeddings."""

    auc: dict[str, float]
    mmd: dict[str, Any]
    centroids: pd.DataFrame
    within_class_ratio: float  # mean cross-domain same-emotion distance / mean between-emotion distance (real)


def domain_gap(feats: np.ndarray, table: pd.DataFrame, *, classes: list[str] | None = None, permutations: int = 500,
               seed: int = 0) -> GapResult:
    """Domain classifier AUC, MMD test and per-emotion centroid distances between the two domains;
    the centroids are compared for ``classes`` (the classes both sets hold, :func:`shared_classes`)."""
    from .embeddings import centroid_distances, domain_auc, mmd_test

    table = table.reset_index(drop=True)
    domains = table["domain"].to_numpy()
    feats = np.asarray(feats, dtype=np.float64)
    normed = (feats - feats.mean(0)) / (feats.std(0) + 1e-8)
    auc = domain_auc(feats, domains, folds=min(5, int(pd.Series(domains).value_counts().min())), seed=seed)
    kinds = sorted(set(domains.tolist()))
    mmd = mmd_test(normed[domains == kinds[0]], normed[domains == kinds[1]], permutations=permutations, seed=seed)
    centroids = centroid_distances(normed, table)
    if classes is not None:
        centroids = centroids[centroids["emotion"].isin(labels.class_set(classes))].reset_index(drop=True)
    real = table["domain"] == kinds[0]
    means = np.stack([normed[(real & (table["emotion"] == c)).to_numpy()].mean(0) for c in centroids["emotion"]])
    between = np.linalg.norm(means[:, None] - means[None], axis=-1)[np.triu_indices(len(means), 1)].mean() if len(means) > 1 else np.nan
    return GapResult(auc, mmd, centroids, float(centroids["euclidean"].mean() / between))


def gap_table(results: Mapping[str, GapResult]) -> pd.DataFrame:
    """Rows: models; domain AUC, MMD² with p-value, mean centroid distance and its ratio."""
    return pd.DataFrame([{"model": name, "domain AUC": g.auc["auc_mean"], "AUC sd": g.auc["auc_std"], "MMD²": g.mmd["mmd2"],
                          "MMD p": g.mmd["p_value"], "mean same-emotion centroid distance": g.centroids["euclidean"].mean(),
                          "distance / between-emotion distance": g.within_class_ratio}
                         for name, g in results.items()]).set_index("model")


def rq4_findings(table: pd.DataFrame, centroids: Mapping[str, pd.DataFrame]) -> list[str]:
    """Sentences from RQ4: how separable the domains are and which emotions are furthest apart."""
    out = []
    for model_name, row in table.iterrows():
        separable = ("almost perfectly" if row["domain AUC"] > 0.95 else "clearly" if row["domain AUC"] > 0.75
                     else "weakly" if row["domain AUC"] > 0.6 else "hardly")
        test = "significant" if row["MMD p"] < ALPHA else "not significant"
        out.append(f"{model_name}: a linear probe tells real from synthetic embeddings {separable} (AUC {row['domain AUC']:.3f} ± "
                   f"{row['AUC sd']:.3f}); the MMD between the domains is {test} (MMD² = {row['MMD²']:.4f}, {_p(row['MMD p'])}).")
        c = centroids[model_name].sort_values("euclidean")
        ratio = row["distance / between-emotion distance"]
        out.append(f"{model_name}: the real and the synthetic centroid of the same emotion lie on average {ratio:.2f} times as far "
                   f"apart as the centroids of two different emotions on real faces; furthest apart: {c['emotion'].iloc[-1]}, "
                   f"closest: {c['emotion'].iloc[0]}.")
    if len(table) == 2:
        (a, ra), (b, rb) = table.iterrows()
        if abs(rb["domain AUC"] - ra["domain AUC"]) <= max(ra["AUC sd"], rb["AUC sd"]):
            verb = "leaves the domain separability unchanged within the folds' spread"
        else:
            verb = "narrows the domain gap" if rb["domain AUC"] < ra["domain AUC"] else "widens the domain gap"
        out.append(f"Going from {a} to {b} {verb} (AUC {ra['domain AUC']:.3f} → {rb['domain AUC']:.3f}; "
                   f"MMD² {ra['MMD²']:.4f} → {rb['MMD²']:.4f}).")
    return out


def gender_breakdown(preds: pd.DataFrame) -> dict[str, dict[str, float]] | None:
    """Accuracy per ``gender`` value when the predictions carry one (synthetic faces), else None."""
    from .metrics import by_attribute

    if "gender" not in preds.columns or preds["gender"].isna().all():
        return None
    return by_attribute(preds[preds["gender"].notna() & preds["pred"].notna()], "gender")


def subset_for_cam(samples: pd.DataFrame, per_class: int, seed: int = 0) -> pd.DataFrame:
    """At most ``per_class`` images per (domain, emotion), seeded, for the Grad-CAM study."""
    parts = [per_class_subset(part, per_class, seed=seed) for _, part in samples.groupby("domain")]
    return pd.concat(parts, ignore_index=True)
