"""Figures: each function draws one figure, saves it (PNG, plus SVG/PDF when asked) and returns it.

``path`` is given without suffix (``figures/confusion``); ``formats`` picks the files written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .fileio import atomic_open
from .labels import CLASSES


def save(fig: plt.Figure, path: str | Path, formats: Sequence[str] = ("png",), dpi: int = 120) -> list[Path]:
    """Write ``fig`` as ``path.<format>`` for each format, atomically; returns the files."""
    base = Path(path)
    written = []
    for fmt in formats:
        target = base.with_suffix(f".{fmt}")
        with atomic_open(target, "wb") as handle:
            fig.savefig(handle, format=fmt, dpi=dpi, bbox_inches="tight")
        written.append(target)
    return written


def _finish(fig: plt.Figure, path: str | Path | None, formats: Sequence[str]) -> plt.Figure:
    if path is not None:
        save(fig, path, formats)
    plt.close(fig)
    return fig


def confusion_matrix(counts: np.ndarray, path: str | Path | None = None, *, title: str = "", formats: Sequence[str] = ("png",)) -> plt.Figure:
    """Row-normalised colours, raw counts as numbers; classes without samples keep a blank row."""
    counts = np.asarray(counts)
    rows = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    sns.heatmap(normalised, annot=counts, fmt="d", cmap="Blues", vmin=0, vmax=1, xticklabels=CLASSES, yticklabels=CLASSES, ax=ax)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title} (colour: row share, numbers: counts)".strip())
    fig.tight_layout()
    return _finish(fig, path, formats)


def roc_curves(curves: dict[str, dict[str, Any]], path: str | Path | None = None, *, formats: Sequence[str] = ("png",)) -> plt.Figure:
    """One-vs-rest ROC curve per class with its AUC."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, c in curves.items():
        ax.plot(c["fpr"], c["tpr"], label=f"{name} (AUC {c['auc']:.2f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, one vs rest")
    ax.legend(fontsize=8)
    return _finish(fig, path, formats)


def pr_curves(curves: dict[str, dict[str, Any]], path: str | Path | None = None, *, formats: Sequence[str] = ("png",)) -> plt.Figure:
    """Precision-recall curve per class with its average precision."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, c in curves.items():
        ax.plot(c["recall"], c["precision"], label=f"{name} (AP {c['ap']:.2f})")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall, one vs rest", xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(fontsize=8)
    return _finish(fig, path, formats)


def reliability(bins: pd.DataFrame, path: str | Path | None = None, *, title: str = "Reliability", formats: Sequence[str] = ("png",)) -> plt.Figure:
    """Accuracy against confidence per bin (bars) with the diagonal; bar shade = sample count."""
    fig, ax = plt.subplots(figsize=(5, 5))
    filled = bins.dropna()
    width = float(bins["high"].iloc[0] - bins["low"].iloc[0])
    ax.bar(filled["low"], filled["accuracy"], width=width, align="edge", edgecolor="black",
           color=plt.cm.Blues(0.3 + 0.7 * filled["count"] / max(filled["count"].max(), 1)), label="accuracy")
    ax.plot([0, 1], [0, 1], color="red", linestyle="--", label="perfect calibration")
    ax.set(xlabel="confidence (top-1 probability)", ylabel="accuracy", title=title, xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left")
    return _finish(fig, path, formats)


def confidence_histogram(preds: pd.DataFrame, path: str | Path | None = None, *, title: str = "",
                         formats: Sequence[str] = ("png",)) -> plt.Figure:
    """Top-1 confidence for correct and incorrect predictions (always blue / orange in that order)."""
    probs = preds[[f"p_{c}" for c in CLASSES]].to_numpy()
    frame = pd.DataFrame({"confidence": probs.max(axis=1),
                          "outcome": np.where(preds["label"] == preds["pred"], "correct", "incorrect")})
    fig, ax = plt.subplots(figsize=(6, 4))
    sns.histplot(frame, x="confidence", hue="outcome", hue_order=["correct", "incorrect"], bins=20, binrange=(0, 1),
                 stat="density", common_norm=False, element="step", ax=ax)
    ax.set_title(title or "Confidence of correct and incorrect predictions")
    return _finish(fig, path, formats)


def gallery(images: Sequence[np.ndarray], titles: Sequence[str], path: str | Path | None = None, *, ncols: int = 6,
            formats: Sequence[str] = ("png",)) -> plt.Figure:
    """A grid of images (HxWx3 uint8 or float in [0, 1]) with titles."""
    n = max(len(images), 1)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2 * ncols, 2.2 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles, strict=False):
        ax.imshow(image)
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return _finish(fig, path, formats)


def embedding_scatter(coords: np.ndarray, table: pd.DataFrame, path: str | Path | None = None, *, hue: str = "domain",
                      style: str | None = "emotion", title: str = "", formats: Sequence[str] = ("png",)) -> plt.Figure:
    """2-D embedding (PCA / t-SNE) coloured by ``hue`` and marked by ``style``."""
    frame = table.reset_index(drop=True).assign(x=coords[:, 0], y=coords[:, 1])
    fig, ax = plt.subplots(figsize=(7, 6))
    sns.scatterplot(frame, x="x", y="y", hue=hue, style=style if style in frame.columns else None, s=18, alpha=0.8, ax=ax)
    ax.set(title=title, xlabel="", ylabel="")
    ax.legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
    fig.tight_layout()
    return _finish(fig, path, formats)


def reliability_per_class(y_true: np.ndarray, probs: np.ndarray, path: str | Path | None = None, *, n_bins: int = 10,
                          formats: Sequence[str] = ("png",)) -> plt.Figure:
    """One-vs-rest reliability per emotion: observed frequency of the class against its predicted probability."""
    present = [i for i in range(len(CLASSES)) if (y_true == i).any()]
    ncols = 4
    nrows = int(np.ceil(len(present) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.2 * nrows), squeeze=False, sharex=True, sharey=True)
    edges = np.linspace(0, 1, n_bins + 1)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, present, strict=False):
        ax.axis("on")
        p, hit = probs[:, i], (y_true == i)
        which = np.clip(np.digitize(p, edges[1:-1], right=True), 0, n_bins - 1)
        centres = [p[which == b].mean() for b in range(n_bins) if (which == b).any()]
        freq = [hit[which == b].mean() for b in range(n_bins) if (which == b).any()]
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
        ax.plot(centres, freq, marker="o")
        ax.set_title(CLASSES[i], fontsize=9)
    fig.supxlabel("predicted probability")
    fig.supylabel("observed frequency")
    fig.tight_layout()
    return _finish(fig, path, formats)


def cam_grid(maps: dict[tuple, np.ndarray], path: str | Path | None = None, *, formats: Sequence[str] = ("png",)) -> plt.Figure:
    """Mean attribution maps: rows = first key part (e.g. domain), columns = second (e.g. emotion)."""
    rows = sorted({k[0] for k in maps})
    cols = sorted({k[1] for k in maps}, key=lambda c: CLASSES.index(c) if c in CLASSES else 99)
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(1.9 * len(cols), 2.1 * len(rows)), squeeze=False)
    for r, row in enumerate(rows):
        for c, col in enumerate(cols):
            ax = axes[r][c]
            ax.axis("off")
            if (row, col) in maps:
                ax.imshow(maps[(row, col)], cmap="jet", vmin=0, vmax=1)
            if r == 0:
                ax.set_title(str(col), fontsize=9)
            if c == 0:
                ax.text(-0.1, 0.5, str(row), transform=ax.transAxes, rotation=90, va="center", ha="right", fontsize=9)
    fig.tight_layout()
    return _finish(fig, path, formats)


def gender_splits(table: pd.DataFrame, path: str | Path | None = None, *, formats: Sequence[str] = ("png",)) -> plt.Figure:
    """The gender study in one figure: a panel per base gender, accuracy against the share of the
    other gender among the training faces, one colour per test part, solid for the growing arm
    (size grows with the share), dashed for the fixed-size arm; the full training set (``arm`` =
    ``full``, if run) is a dotted level per test part. Without an ``arm`` column: the growing arm."""
    table = table.assign(arm=table["arm"] if "arm" in table.columns else "growing")
    if "share" not in table.columns:
        table = table.assign(share=table["percent"])
    full = table[table["arm"] == "full"]
    arms = table[table["arm"] != "full"]
    bases = sorted(arms["base"].unique())
    parts = list(dict.fromkeys(arms["test_on"]))
    colours = dict(zip(parts, sns.color_palette(n_colors=len(parts)), strict=True))
    styles = {"growing": ("-", "o"), "fixed": ("--", "s")}
    fig, axes = plt.subplots(1, len(bases), figsize=(5.5 * len(bases), 4.2), sharey=True, squeeze=False)
    for ax, base in zip(axes[0], bases, strict=True):
        mine = arms[arms["base"] == base]
        for (arm, test_on), line in mine.groupby(["arm", "test_on"], sort=False):
            line = line.sort_values("share")
            style, marker = styles.get(arm, ("-", "o"))
            sizes = sorted(set(line["n_train"]))
            size = f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"
            ax.plot(line["share"], line["accuracy"], linestyle=style, marker=marker, color=colours[test_on],
                    label=f"{arm} ({size} faces), test {test_on}")
        for _, row in full.iterrows():
            ax.axhline(row["accuracy"], linestyle=":", color=colours.get(row["test_on"], "grey"), linewidth=1,
                       label=f"all {row['n_train']} training faces, test {row['test_on']}")
        other = "male" if base == "female" else "female"
        ax.set(title=f"base: all {base} faces (+ {other})", xlabel=f"% {other} among the training faces")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("test accuracy")
    fig.tight_layout()
    return _finish(fig, path, formats)


def reliability_overlay(curves: dict[str, pd.DataFrame], path: str | Path | None = None, *, title: str = "Reliability by test set",
                        formats: Sequence[str] = ("png",)) -> plt.Figure:
    """Accuracy against mean confidence per bin, one line per test set (marker size ~ bin count)."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
    for name, bins in curves.items():
        filled = bins.dropna()
        ax.plot(filled["confidence"], filled["accuracy"], marker="o", label=name)
        ax.scatter(filled["confidence"], filled["accuracy"], s=10 + 200 * filled["count"] / max(filled["count"].sum(), 1), alpha=0.3)
    ax.set(xlabel="mean confidence (top-1 probability)", ylabel="accuracy", title=title, xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return _finish(fig, path, formats)


def grouped_bars(frame: pd.DataFrame, path: str | Path | None = None, *, ylabel: str = "", title: str = "",
                 formats: Sequence[str] = ("png",)) -> plt.Figure:
    """Bars per row of ``frame`` (x axis), one colour per column (e.g. emotion x test set)."""
    long = frame.rename_axis("item").reset_index().melt(id_vars="item", var_name="series", value_name="value")
    fig, ax = plt.subplots(figsize=(max(5.5, 0.9 * len(frame) + 2), 4))
    sns.barplot(long, x="item", y="value", hue="series", ax=ax)
    ax.set(xlabel="", ylabel=ylabel, title=title, ylim=(0, 1))
    ax.tick_params(axis="x", rotation=30)
    ax.legend(fontsize=8, title=None)
    fig.tight_layout()
    return _finish(fig, path, formats)


def training_curves(log: pd.DataFrame, path: str | Path | None = None, *, title: str = "", formats: Sequence[str] = ("png",)) -> plt.Figure:
    """Loss and accuracy per epoch (train and validation) from a run's ``log.csv``."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for part in ("train", "val"):
            column = f"{part}_{metric}"
            if column in log.columns:
                ax.plot(log["epoch"], log[column], marker="o", label=part)
        ax.set(xlabel="epoch", ylabel=metric)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return _finish(fig, path, formats)


def confusion_panels(matrices: dict[str, np.ndarray], path: str | Path | None = None, *, title: str = "",
                     formats: Sequence[str] = ("png",)) -> plt.Figure:
    """Confusion matrices side by side (e.g. one model on each test set): row-normalised colours,
    counts as numbers; rows and columns without any count are left out of every panel."""
    used = np.zeros(len(CLASSES), dtype=bool)
    for counts in matrices.values():
        counts = np.asarray(counts)
        used |= (counts.sum(axis=0) > 0) | (counts.sum(axis=1) > 0)
    names = [c for c, u in zip(CLASSES, used, strict=True) if u]
    short = [n[:4] for n in names]
    fig, axes = plt.subplots(1, len(matrices), figsize=(4.6 * len(matrices), 4.4), squeeze=False)
    for ax, (name, counts) in zip(axes[0], matrices.items(), strict=True):
        counts = np.asarray(counts)[np.ix_(used, used)]
        rows = counts.sum(axis=1, keepdims=True)
        normalised = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
        sns.heatmap(normalised, annot=counts, fmt="d", cmap="Blues", vmin=0, vmax=1, cbar=False, xticklabels=short,
                    yticklabels=short, annot_kws={"fontsize": 7}, ax=ax)
        ax.set(xlabel="predicted", ylabel="true", title=name)
    fig.suptitle(f"{title} (colour: row share, numbers: counts)".strip())
    fig.tight_layout()
    return _finish(fig, path, formats)


def embedding_panels(panels: dict[str, np.ndarray], tables: dict[str, pd.DataFrame], path: str | Path | None = None, *,
                     hue: str = "domain", title: str = "", ncols: int = 3, formats: Sequence[str] = ("png",)) -> plt.Figure:
    """2-D embeddings side by side (e.g. one panel per model and regime), coloured by ``hue``."""
    n = len(panels)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, 4.0 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (name, coords) in zip(axes.flat, panels.items(), strict=False):
        ax.axis("on")
        frame = tables[name].reset_index(drop=True).assign(x=coords[:, 0], y=coords[:, 1])
        sns.scatterplot(frame, x="x", y="y", hue=hue, s=12, alpha=0.7, ax=ax, legend=ax is axes.flat[0])
        ax.set(title=name, xlabel="", ylabel="", xticks=[], yticks=[])
    fig.suptitle(title)
    fig.tight_layout()
    return _finish(fig, path, formats)
