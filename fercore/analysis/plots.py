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
from matplotlib.lines import Line2D

from fercore.core.files import atomic_open
from fercore.core.labels import CLASSES
from fercore.faces import COLOURS, REGIONS, TITLES


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


def _confidence_frame(preds: pd.DataFrame) -> pd.DataFrame:
    """Top-1 confidence and outcome (``correct`` / ``incorrect``) of each prediction."""
    probs = preds[[f"p_{c}" for c in CLASSES]].to_numpy()
    return pd.DataFrame({"confidence": probs.max(axis=1),
                         "outcome": np.where(preds["label"] == preds["pred"], "correct", "incorrect")})


def confidence_histogram(preds: pd.DataFrame, path: str | Path | None = None, *, title: str = "",
                         formats: Sequence[str] = ("png",)) -> plt.Figure:
    """Top-1 confidence for correct and incorrect predictions (always blue / orange in that order)."""
    frame = _confidence_frame(preds)
    fig, ax = plt.subplots(figsize=(6, 4))
    sns.histplot(frame, x="confidence", hue="outcome", hue_order=["correct", "incorrect"], bins=20, binrange=(0, 1),
                 stat="density", common_norm=False, element="step", ax=ax)
    ax.set_title(title or "Confidence of correct and incorrect predictions")
    return _finish(fig, path, formats)


def _panel_grid(n: int, ncols: int) -> tuple[int, int]:
    """(rows, columns) for ``n`` panels (at least one) at most ``ncols`` a row."""
    n = max(n, 1)
    ncols = max(1, min(ncols, n))
    return int(np.ceil(n / ncols)), ncols


def gallery(images: Sequence[np.ndarray], titles: Sequence[str], path: str | Path | None = None, *, ncols: int = 4,
            formats: Sequence[str] = ("png",)) -> plt.Figure:
    """A grid of images (HxWx3 uint8 or float in [0, 1]), each with its label under it; few per
    row (default 4) so that an expression can be seen at page width."""
    nrows, ncols = _panel_grid(len(images), ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.95 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles, strict=False):
        ax.imshow(image, cmap="gray" if np.ndim(image) == 2 else None)
        ax.text(0.5, -0.03, title, transform=ax.transAxes, ha="center", va="top", fontsize=10)
    fig.tight_layout(h_pad=1.6)
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


def _region_outlines(ax: plt.Axes, labels: np.ndarray, extent: tuple[float, float, float, float] | None = None,
                     linewidth: float = 1.0) -> None:
    """Draw each region's outline (a contour of its mask) in the region's colour."""
    for i, name in enumerate(REGIONS):
        mask = (labels == i).astype(float)
        if name == "outside" or not mask.any() or mask.all():
            continue
        ax.contour(mask, levels=[0.5], colors=[COLOURS[name]], linewidths=linewidth, extent=extent, origin="upper")


def _region_legend(fig: plt.Figure, ncol: int = 8) -> None:
    handles = [Line2D([], [], color=COLOURS[n], linewidth=2, label=TITLES[n]) for n in REGIONS if n != "outside"]
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=9, frameon=False, bbox_to_anchor=(0.5, -0.01))


def cam_canonical(rows: dict[str, dict[str, np.ndarray]], labels: np.ndarray, path: str | Path | None = None, *,
                  formats: Sequence[str] = ("png",)) -> plt.Figure:
    """Mean maps in the canonical frame: a row per entry of ``rows`` (label -> {emotion: map}),
    a column per emotion (canonical order), each panel scaled to its own peak, the canonical
    face regions (``labels``, a label map of the frame) outlined on top."""
    cols = [c for c in CLASSES if any(c in r for r in rows.values())]
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(1.75 * len(cols) + 0.6, 1.85 * len(rows) + 0.5), squeeze=False)
    for r, (row, maps) in enumerate(rows.items()):
        for c, col in enumerate(cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if col in maps:
                values = maps[col]
                ax.imshow(values / values.max() if values.max() > 0 else values, cmap="jet", vmin=0, vmax=1)
                _region_outlines(ax, labels, linewidth=0.7)
            else:
                ax.axis("off")
            if r == 0:
                ax.set_title(col, fontsize=9)
            if c == 0:
                ax.set_ylabel(row, fontsize=8)
    _region_legend(fig)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return _finish(fig, path, formats)


def region_gallery(images: Sequence[np.ndarray], label_maps: Sequence[np.ndarray | None], points: Sequence[np.ndarray | None],
                   titles: Sequence[str], path: str | Path | None = None, *, ncols: int = 4,
                   formats: Sequence[str] = ("png",)) -> plt.Figure:
    """Faces with their regions outlined and their five landmarks marked (white dots); a face
    without landmarks is shown with "no landmarks" in its label. Labels may hold a line break."""
    nrows, ncols = _panel_grid(len(images), ncols)
    height = 3.0 * nrows + 0.9
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.5 * ncols, height), squeeze=False)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.99, bottom=0.95 / height, wspace=0.06, hspace=0.28)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, labels, marks, title in zip(axes.flat, images, label_maps, points, titles, strict=False):
        h, w = np.shape(image)[:2]
        extent = (-0.5, w - 0.5, h - 0.5, -0.5)
        ax.imshow(image, cmap="gray" if np.ndim(image) == 2 else None, extent=extent)
        if labels is not None:
            _region_outlines(ax, labels, extent=extent, linewidth=1.3)
        if marks is not None:
            ax.scatter(marks[:, 0], marks[:, 1], s=12, c="white", edgecolors="black", linewidths=0.6, zorder=3)
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
        ax.text(0.5, -0.03, title if marks is not None else f"{title} (no landmarks)", transform=ax.transAxes,
                ha="center", va="top", fontsize=9)
    _region_legend(fig, ncol=4)
    return _finish(fig, path, formats)


def region_difference_panels(panels: dict[str, pd.DataFrame], marks: dict[str, pd.DataFrame], path: str | Path | None = None, *,
                             ncols: int = 2, formats: Sequence[str] = ("png",)) -> plt.Figure:
    """A heat map per panel (title -> regions x emotions of real - synthetic share, in shares):
    diverging colours centred on zero, the difference in points written in each cell with the
    mark of ``marks`` (e.g. ``*`` for a Holm-significant difference); blank where not tested."""
    nrows, ncols = _panel_grid(len(panels), ncols)
    limit = max([float(np.nanmax(np.abs(f.to_numpy(dtype=float)))) for f in panels.values() if np.isfinite(f.to_numpy(dtype=float)).any()]
                + [0.01])
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, 3.4 * nrows + 0.3), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (title, frame) in zip(axes.flat, panels.items(), strict=False):
        ax.axis("on")
        values = frame.to_numpy(dtype=float)
        text = np.array([[("" if not np.isfinite(v) else f"{100 * v:+.0f}{m}") for v, m in zip(row, mrow, strict=True)]
                         for row, mrow in zip(values, marks[title].to_numpy(), strict=True)])
        sns.heatmap(frame.astype(float), ax=ax, cmap="RdBu_r", center=0, vmin=-limit, vmax=limit, annot=text, fmt="",
                    annot_kws={"fontsize": 8.5}, cbar=False, linewidths=0.4, linecolor="white")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(labelsize=9, length=0)
        ax.set_xticklabels(ax.get_xticklabels(), rotation=35, ha="right")
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
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    axes[0][0].set_ylabel("test accuracy")
    fig.tight_layout()
    return _finish(fig, path, formats)


def grouped_bars(frame: pd.DataFrame, path: str | Path | None = None, *, ylabel: str = "", title: str = "",
                 formats: Sequence[str] = ("png",)) -> plt.Figure:
    """Bars per row of ``frame`` (x axis), one colour per column (e.g. emotion x test set)."""
    long = frame.rename_axis("item").reset_index().melt(id_vars="item", var_name="series", value_name="value")
    fig, ax = plt.subplots(figsize=(max(5.5, 0.9 * len(frame) + 2), 4))
    sns.barplot(long, x="item", y="value", hue="series", ax=ax)
    ax.set(xlabel="", ylabel=ylabel, title=title, ylim=(0, 1))
    plt.setp(ax.get_xticklabels(), rotation=25, ha="right", rotation_mode="anchor")
    ax.legend(fontsize=8, title=None)
    fig.tight_layout()
    return _finish(fig, path, formats)


def confusion_panels(matrices: dict[str, np.ndarray], path: str | Path | None = None, *, title: str = "", ncols: int | None = None,
                     formats: Sequence[str] = ("png",)) -> plt.Figure:
    """Confusion matrices side by side (e.g. one model on each test set): row-normalised colours,
    counts as numbers; rows and columns without any count are left out of every panel."""
    used = np.zeros(len(CLASSES), dtype=bool)
    for counts in matrices.values():
        counts = np.asarray(counts)
        used |= (counts.sum(axis=0) > 0) | (counts.sum(axis=1) > 0)
    names = [c for c, u in zip(CLASSES, used, strict=True) if u]
    short = [n[:4] for n in names]
    ncols = min(ncols or len(matrices), len(matrices))
    nrows = int(np.ceil(len(matrices) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 4.4 * nrows), squeeze=False)
    for ax in axes.flat[len(matrices):]:
        ax.axis("off")
    for ax, (name, counts) in zip(axes.flat, matrices.items(), strict=False):
        counts = np.asarray(counts)[np.ix_(used, used)]
        rows = counts.sum(axis=1, keepdims=True)
        normalised = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
        sns.heatmap(normalised, annot=counts, fmt="d", cmap="Blues", vmin=0, vmax=1, cbar=False, xticklabels=short,
                    yticklabels=short, annot_kws={"fontsize": 7}, ax=ax)
        ax.set(xlabel="predicted", ylabel="true", title=name)
    fig.suptitle(f"{title} (colour: row share, numbers: counts)".strip())
    fig.tight_layout()
    return _finish(fig, path, formats)


#: One marker per emotion (filled shapes that stay distinct at small size), in canonical order.
EMOTION_MARKERS = dict(zip(CLASSES, ["o", "s", "^", "D", "P", "X", "v", "*"], strict=True))


def embedding_panels(panels: dict[str, np.ndarray], tables: dict[str, pd.DataFrame], path: str | Path | None = None, *,
                     hue: str = "domain", style: str | None = "emotion", axis_labels: dict[str, tuple[str, str]] | None = None,
                     title: str = "", ncols: int = 3, formats: Sequence[str] = ("png",)) -> plt.Figure:
    """2-D embeddings side by side (e.g. one panel per model and regime): colour for ``hue``
    (the domain), a distinct marker per ``style`` value (the emotion), one shared legend below;
    ``axis_labels`` per panel (e.g. PCA components with their explained variance)."""
    n = len(panels)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 4.3 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    hues = list(dict.fromkeys(v for t in tables.values() for v in t[hue]))
    palette = dict(zip(hues, sns.color_palette("colorblind", n_colors=len(hues)), strict=True))
    for ax, (name, coords) in zip(axes.flat, panels.items(), strict=False):
        ax.axis("on")
        frame = tables[name].reset_index(drop=True).assign(x=coords[:, 0], y=coords[:, 1])
        styled = style if style and style in frame.columns else None
        markers = {k: EMOTION_MARKERS.get(k, "o") for k in frame[styled].unique()} if styled else True
        sns.scatterplot(frame, x="x", y="y", hue=hue, palette=palette, style=styled, markers=markers, s=34, alpha=0.75,
                        linewidth=0.2, ax=ax, legend=False)
        xlabel, ylabel = (axis_labels or {}).get(name, ("", ""))
        ax.set(title=name, xlabel=xlabel, ylabel=ylabel, xticks=[], yticks=[])
        ax.title.set_fontsize(10)
    height = fig.get_size_inches()[1]
    colour_keys = [Line2D([], [], linestyle="", marker="o", markersize=8, color=palette[h], label=str(h)) for h in hues]
    fig.legend(handles=colour_keys, loc="lower center", bbox_to_anchor=(0.5, (1.2 if style else 0.0) / height), ncol=len(hues), fontsize=11,
               frameon=False, title=f"colour: {hue}", title_fontsize=11)
    emotions = [e for e in EMOTION_MARKERS if style and any(e in set(t.get(style, [])) for t in tables.values())]
    if emotions:
        marker_keys = [Line2D([], [], linestyle="", marker=EMOTION_MARKERS[e], markersize=9, color="dimgrey", label=e) for e in emotions]
        fig.legend(handles=marker_keys, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(emotions), 4), fontsize=11,
                   frameon=False, title=f"marker: {style}", title_fontsize=11)
    fig.tight_layout(rect=(0, (2.05 if emotions else 0.8) / height, 1, 1 - 0.6 / height))
    fig.suptitle(title, y=1 - 0.1 / height, va="top")
    return _finish(fig, path, formats)


def heat_table(frame: pd.DataFrame, path: str | Path | None = None, *, percent: bool = True, cmap: str = "Blues",
               formats: Sequence[str] = ("png",)) -> plt.Figure:
    """A table of numbers as an annotated heat map: rows as in ``frame``, columns joined with `` · ``
    when they have several levels; values as percentages with one decimal (``percent``) or three
    significant digits. Empty cells stay blank."""
    values = frame.astype(float)
    columns = [" · ".join(str(p) for p in c if str(p)) if isinstance(c, tuple) else str(c) for c in values.columns]
    shown = values.to_numpy() * (100 if percent else 1)
    annot = np.array([["" if np.isnan(v) else (f"{v:.1f}" if percent else f"{v:.3g}") for v in row] for row in shown])
    width = min(1.1 + 0.85 * len(columns), 11.5)
    fig, ax = plt.subplots(figsize=(width, 0.9 + 0.38 * len(values)))
    sns.heatmap(shown, annot=annot, fmt="", cmap=cmap, cbar=False, linewidths=0.5, linecolor="white",
                xticklabels=columns, yticklabels=[str(i) for i in values.index], annot_kws={"fontsize": 8}, ax=ax)
    ax.set(xlabel="", ylabel=values.index.name or "")
    ax.xaxis.tick_top()
    plt.setp(ax.get_xticklabels(), rotation=30 if max(map(len, columns), default=0) > 10 else 0, ha="left", fontsize=8)
    plt.setp(ax.get_yticklabels(), rotation=0, fontsize=8)
    fig.tight_layout()
    return _finish(fig, path, formats)


def reliability_panels(per_model: dict[str, dict[str, pd.DataFrame]], path: str | Path | None = None, *,
                       formats: Sequence[str] = ("png",)) -> plt.Figure:
    """Reliability curves, one panel per model, one line per test set (marker size ~ bin count)."""
    n = len(per_model)
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 4.4), squeeze=False, sharey=True)
    for ax, (model, curves) in zip(axes[0], per_model.items(), strict=True):
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
        for name, bins in curves.items():
            filled = bins.dropna()
            line, = ax.plot(filled["confidence"], filled["accuracy"], marker="o", markersize=3, label=name)
            ax.scatter(filled["confidence"], filled["accuracy"], s=10 + 200 * filled["count"] / max(filled["count"].sum(), 1),
                       alpha=0.3, color=line.get_color())
        ax.set(xlabel="mean confidence (top-1 probability)", title=model, xlim=(0, 1), ylim=(0, 1))
        ax.legend(loc="upper left", fontsize=7)
    axes[0][0].set_ylabel("accuracy")
    fig.tight_layout()
    return _finish(fig, path, formats)


def confidence_panels(per_model: dict[str, pd.DataFrame], path: str | Path | None = None, *,
                      formats: Sequence[str] = ("png",)) -> plt.Figure:
    """Top-1 confidence of right and wrong predictions (always blue / orange), one panel per model."""
    n = len(per_model)
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 3.6), squeeze=False, sharey=True)
    for ax, (model, preds) in zip(axes[0], per_model.items(), strict=True):
        sns.histplot(_confidence_frame(preds), x="confidence", hue="outcome", hue_order=["correct", "incorrect"], bins=20, binrange=(0, 1),
                     stat="density", common_norm=False, element="step", ax=ax)
        ax.set(title=model, xlabel="top-1 confidence")
    fig.tight_layout()
    return _finish(fig, path, formats)


def training_panels(logs: dict[str, pd.DataFrame], path: str | Path | None = None, *, formats: Sequence[str] = ("png",)) -> plt.Figure:
    """Loss and accuracy per epoch of several training runs (``{run: log.csv table}``): one colour
    per run, solid for the training faces, dashed for the validation part."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    colours = dict(zip(logs, sns.color_palette(n_colors=len(logs)), strict=True))
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for run, log in logs.items():
            for part, style in (("train", "-"), ("val", "--")):
                column = f"{part}_{metric}"
                if column in log.columns:
                    ax.plot(log["epoch"], log[column], linestyle=style, marker="o", markersize=3, color=colours[run],
                            label=f"{run} ({'training' if part == 'train' else 'validation'})")
        ax.set(xlabel="epoch", ylabel=metric)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, (0.25 + 0.2 * np.ceil(len(labels) / 2)) / fig.get_size_inches()[1], 1, 1))
    return _finish(fig, path, formats)
