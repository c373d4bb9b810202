"""Quality findings per prompt factor, from an extraction manifest: what extraction kept and why it
rejected the rest, by generator and by template; grids whose detected layout is not the one the prompt
asked for (``layout_asked``), per generator. Tidy tables (one row per level and outcome), ready to pivot."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from fercore.grids.records import GRID_FAILED

#: The level of a grid whose grids.csv did not record the factor.
NOT_RECORDED = "(not recorded)"


def outcome(manifest: pd.DataFrame) -> pd.Series:
    """Each manifest row's outcome: ``kept``, or its rejection reason with the particulars cut
    (``duplicate of g1.png r0c2`` -> ``duplicate``, ``grid_failed: ...`` -> ``grid_failed``)."""
    reason = manifest["reason"].fillna("").astype(str)
    reason = reason.str.replace(r"^duplicate of .*", "duplicate", regex=True)
    reason = reason.str.replace(rf"^{GRID_FAILED}: .*", GRID_FAILED, regex=True)
    return reason.where(~manifest["kept"].astype(str).str.lower().isin(["true", "1"]), "kept").rename("outcome")


def _levels(manifest: pd.DataFrame, factor: str) -> pd.Series:
    if factor not in manifest.columns:
        return pd.Series(NOT_RECORDED, index=manifest.index, name=factor)
    return manifest[factor].fillna("").astype(str).replace("", NOT_RECORDED).rename(factor)


def extraction_outcomes(manifest: pd.DataFrame, by: Sequence[str] = ("generator", "template")) -> pd.DataFrame:
    """Cells kept and rejected (per reason) for each level of each factor in ``by``: columns factor,
    level, outcome, cells, share (of the level's cells), grids (of the level with at least one such
    cell), level_grids. A grid that could not be extracted is one cell with outcome ``grid_failed``;
    a factor grids.csv did not record has the one level ``(not recorded)``."""
    rows = []
    outcomes = outcome(manifest)
    for factor in by:
        level = _levels(manifest, factor)
        table = pd.DataFrame({"level": level, "outcome": outcomes, "source": manifest["source"]})
        per = table.groupby(["level", "outcome"], sort=True).agg(cells=("source", "size"), grids=("source", "nunique")).reset_index()
        totals = table.groupby("level").agg(level_cells=("source", "size"), level_grids=("source", "nunique"))
        per = per.join(totals, on="level")
        per["share"] = per["cells"] / per["level_cells"]
        rows.append(per.assign(factor=factor))
    columns = ["factor", "level", "outcome", "cells", "share", "grids", "level_grids"]
    if not rows:
        return pd.DataFrame(columns=columns)
    return pd.concat(rows, ignore_index=True)[columns]


def detected_layout(layout: pd.Series) -> pd.Series:
    """The detected layout's name without its note (``6x6 (expected 5x5)`` -> ``6x6``; ``rows 5,7,6`` stays)."""
    return layout.fillna("").astype(str).str.split(" (", n=1, regex=False).str[0].str.strip()


def layout_mismatches(manifest: pd.DataFrame) -> pd.DataFrame:
    """One row per grid: source, split, generator, template, layout_asked, layout (detected), layout_method,
    agrees (False where the detected layout is not the one asked for; NA for a grid not extracted)."""
    if "layout_asked" not in manifest.columns:
        raise ValueError("the manifest has no layout_asked column (written before fercore recorded it): "
                         "run fercore extract again on the same output folder to add it")
    grids = manifest.drop_duplicates("source").reset_index(drop=True)
    detected = detected_layout(grids["layout"])
    failed = grids["reason"].fillna("").astype(str).str.startswith(GRID_FAILED)
    asked = grids["layout_asked"].fillna("").astype(str).str.strip()
    agrees = pd.Series(detected == asked, dtype="boolean").mask(failed | (asked == ""))
    return pd.DataFrame({"source": grids["source"], "split": grids["split"], "generator": _levels(grids, "generator"),
                         "template": _levels(grids, "template"), "layout_asked": asked, "layout": detected,
                         "layout_method": grids["layout_method"], "agrees": agrees})


def layout_disagreements(manifest: pd.DataFrame, by: str = "generator") -> pd.DataFrame:
    """Per level of ``by``: grids, grids checked (extracted, with a layout asked), grids whose detected
    layout disagrees with ``layout_asked``, their share of those checked, and what was found instead
    (``6x6 -> 5x5: 2; 6x6 -> 3x3: 1``)."""
    grids = layout_mismatches(manifest)
    level = _levels(manifest.drop_duplicates("source").reset_index(drop=True), by)  # the same grids, in the same order
    rows = []
    for name, part in grids.groupby(level, sort=True):
        checked = part[part["agrees"].notna()]
        off = checked[~checked["agrees"].astype(bool)]
        found = (off["layout_asked"] + " -> " + off["layout"]).value_counts()
        rows.append({by: name, "grids": len(part), "checked": len(checked), "disagree": len(off),
                     "share": len(off) / len(checked) if len(checked) else float("nan"),
                     "found instead": "; ".join(f"{k}: {v}" for k, v in found.items())})
    return pd.DataFrame(rows, columns=[by, "grids", "checked", "disagree", "share", "found instead"])
