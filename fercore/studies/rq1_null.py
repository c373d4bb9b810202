"""RQ1 against the null arm: the part of each real-vs-synthetic gap that the grid path alone does not produce.

For a model, a real set and an arm (raw, or matched to the real set's format), the gap against the synthetic faces
(balanced accuracy real - synthetic) is set beside the gap against the null arm (real - null: real faces composed
into grids and extracted like the synthetic ones, :mod:`fercore.studies.nullarm`). Their difference, the **excess
over the null**, is what synthetic-ness adds. Both gaps use the same real faces, so the excess is balanced accuracy
on the null faces minus that on the synthetic faces: an unpaired CR2 contrast with the grids of both arms as
clusters (:func:`fercore.analysis.clustered.balanced_contrast`), on the classes all three sets share. Its level and
coverage under a true null are checked in the calibration harness (``null-excess-cr2``, ``docs/calibration.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from fercore.analysis import Comparison, balanced_contrast, finding, restricted_logits, sample_groups
from fercore.book import Chapter
from fercore.core import labels
from fercore.core.present import declare
from fercore.studies.common import frame, slug
from fercore.studies.nullarm import NULL, NullArm
from fercore.studies.scoring import Scores, SetScore, by_model, matched_name
from fercore.studies.session import MATCHED, RAW


@dataclass(frozen=True)
class NullExcess:
    """One model, real set and arm: the gap against the synthetic faces, the gap against the null arm, and the excess
    (gap vs synthetic - gap vs null = balanced accuracy null - synthetic) with its CR2 interval and p."""

    model: str
    real_set: str
    arm: str  # raw | matched
    classes: int
    grids_synthetic: int
    grids_null: int
    min_grids: int  # fewest grids in one class of either arm: below 2 no test holds
    balanced_real: float
    balanced_synthetic: float
    balanced_null: float
    gap_synthetic: float  # real - synthetic
    gap_null: float  # real - null
    excess: float  # gap_synthetic - gap_null
    low: float
    high: float
    se: float
    df: float
    p_value: float


def _answers(score: SetScore, classes: list[str], prefix: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true index into ``classes``, right/wrong restricted to ``classes``, group) of a set's readable faces in ``classes``."""
    preds = score.preds[score.preds["label"].isin(classes) & score.preds["pred"].notna()].reset_index(drop=True)
    logits, y_true = restricted_logits(preds, classes)
    return y_true, logits.argmax(axis=1) == y_true, sample_groups(preds, prefix=prefix)


def null_excess(real: SetScore, synthetic: SetScore, null: SetScore, *, arm: str = RAW) -> NullExcess:
    """:class:`NullExcess` on the classes the three sets share (each face's prediction restricted to them; a class
    without faces in one set is left out of all three)."""
    classes = labels.class_set(labels.class_set(real.classes, within=synthetic.classes), within=null.classes)
    sets = [_answers(s, classes, p) for s, p in ((real, "real:"), (synthetic, "synthetic:"), (null, "null:"))]
    present = sorted(set.intersection(*(set(np.unique(y).tolist()) for y, _, _ in sets)))
    if not present:
        raise ValueError(f"{real.test_set}, the synthetic faces and the null arm share no class with faces: nothing to compare")
    kept = []
    for y, right, g in sets:
        mask = np.isin(y, present)
        kept.append((np.searchsorted(present, y[mask]), right[mask], g[mask]))
    k = len(present)
    a, s, n = kept
    bal = [balanced_contrast(x, None, k).estimate for x in kept]
    c = balanced_contrast(n, s, k)  # null - synthetic = (real - synthetic) - (real - null)
    grids = [len(np.unique(x[2])) for x in (s, n)]
    per_class = min(len(np.unique(x[2][x[0] == j])) for x in (s, n) for j in range(k))
    return NullExcess(real.model, real.test_set, arm, k, grids[0], grids[1], per_class, bal[0], bal[1], bal[2],
                      bal[0] - bal[1], bal[0] - bal[2], c.estimate, c.low, c.high, c.se, c.df, c.p_value)


def null_excesses(scores: Scores, real_sets: Sequence[str]) -> list[NullExcess]:
    """:func:`null_excess` for every model and real set, raw and (where both arms were matched) matched; none without
    a scored null arm."""
    out = []
    for per_set in by_model(scores).values():
        if NULL not in per_set:
            continue
        for real in real_sets:
            out.append(null_excess(per_set[real], per_set["synthetic"], per_set[NULL], arm=RAW))
            if matched_name(real) in per_set and matched_name(real, NULL) in per_set:
                out.append(null_excess(per_set[real], per_set[matched_name(real)], per_set[matched_name(real, NULL)], arm=MATCHED))
    return out


TITLES = {"model": "model", "real_set": "real set", "arm": "arm", "classes": "classes", "grids_synthetic": "grids synthetic",
          "grids_null": "grids null", "min_grids": "grids per class (min)", "balanced_real": "bal. acc. real",
          "balanced_synthetic": "bal. acc. synthetic", "balanced_null": "bal. acc. null", "gap_synthetic": "gap vs synthetic",
          "gap_null": "gap vs null", "excess": "excess over null", "low": "95% low", "high": "95% high", "se": "se", "df": "df",
          "p_value": "p"}
#: The columns the page shows (the CSV keeps all): with the three index columns, seven of the ~708 px page.
SHOWN = ["gap vs synthetic", "gap vs null", "excess over null", "p"]


def excess_table(rows: list[NullExcess]) -> pd.DataFrame:
    """Display table: per model, real set and arm, the two gaps and the excess with its interval and p."""
    table = frame(rows, TITLES, index=["model", "real_set", "arm"])
    return declare(table, percent=["bal. acc. real", "bal. acc. synthetic", "bal. acc. null"],
                   points=["gap vs synthetic", "gap vs null", "excess over null"], p=["p"],
                   ci={"excess over null": ("95% low", "95% high")}, decimals={"df": 1, "se": 3}, show=SHOWN,
                   titles={"excess over null": "excess"})


def comparison(row: NullExcess) -> Comparison:
    """The excess as a :class:`~fercore.analysis.wording.Comparison` (points)."""
    arm = "as they come" if row.arm == RAW else f"both matched to {row.real_set}'s format"
    note = "" if row.min_grids >= 2 else "a class has one grid in an arm, so no test or interval holds (descriptive only)"
    return Comparison(f"{row.model}, {row.real_set}: gap {100 * row.gap_synthetic:+.1f} points against synthetic faces and "
                      f"{100 * row.gap_null:+.1f} against the null arm ({arm})",
                      f"excess over the null (gap vs synthetic - gap vs null, {row.classes} shared classes, CR2 over "
                      f"{row.grids_synthetic} + {row.grids_null} grids)",
                      100 * row.excess, 100 * row.low, 100 * row.high, p_value=row.p_value if np.isfinite(row.p_value) else None,
                      note=note)


def show_null_excess(chapter: Chapter, scores: Scores, real_sets: Sequence[str], arm: NullArm) -> list[NullExcess]:
    """The null arm's line and, when it was built, the table of gaps against synthetic faces and the null arm with the excess."""
    chapter.note(arm.line())
    rows = null_excesses(scores, real_sets) if arm.built else []
    if rows:
        chapter.table(excess_table(rows), "excess_over_null",
                      "Each real set's balanced-accuracy gap against the synthetic faces beside its gap against the null arm "
                      "(real faces no model saw, composed into grids and extracted like the synthetic ones), raw and matched "
                      "to the real set's format, and the excess over the null (their difference: what synthetic faces add "
                      "beyond the grid path) with its CR2 95% interval and p, grids as clusters in both arms. The CSV adds "
                      "each set's balanced accuracy, the grids and the degrees of freedom.")
    return rows


def findings(rows: Sequence[NullExcess], arm: NullArm) -> list[str]:
    """The null arm's line, then every excess worded by :func:`fercore.analysis.wording.finding`."""
    return [arm.line(), *(finding(comparison(row)) for row in rows)]


def glue_values(rows: Sequence[NullExcess], arm: NullArm) -> dict[str, float | str]:
    """``rq1_null_status`` (the arm's line), ``rq1_null_grids``, ``rq1_null_from``; per model, real set and arm
    ``rq1_<model>_<set>_gap_null_<arm>`` and ``rq1_<model>_<set>_excess_<arm>`` (points) with ``_excess_<arm>_low`` / ``_high``."""
    values: dict[str, float | str] = {"rq1_null_status": arm.line(), "rq1_null_grids": float(arm.grids), "rq1_null_from": arm.faces_from}
    for row in rows:
        key = f"rq1_{slug(row.model)}_{slug(row.real_set)}"
        values.update({f"{key}_gap_null_{row.arm}": 100 * row.gap_null, f"{key}_excess_{row.arm}": 100 * row.excess,
                       f"{key}_excess_{row.arm}_low": 100 * row.low, f"{key}_excess_{row.arm}_high": 100 * row.high})
    return values


def record(rows: Sequence[NullExcess], arm: NullArm) -> dict:
    """What ``chapter.json`` keeps: the arm and every excess."""
    return {"null_arm": arm.record(), "excess_over_null": [asdict(r) for r in rows]}
