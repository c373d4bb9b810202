"""RQ3 beside its null arm, and on the faces whose label a person confirmed.

The null arm is real faces no evaluated model trained or selected on, sent down the synthetic faces' path: composed
into grids in the synthetic set's layout, extracted and (in the matched arm) matched the same way
(:mod:`fercore.studies.grid_sets`). Whatever real-vs-null difference a region shows comes from that path alone. The
synthetic effect is the **excess over the null**: (real - null) - (real - synthetic) = synthetic - null mean share
per (emotion, region), tested directly between the two clustered arms (Welch's t on grid means, each side's grids
its clusters; :func:`fercore.studies.rq3_tests.excess_tests`), Holm over the (emotion, region) pairs of one study.

With a filled label sheet (:mod:`fercore.studies.labelcheck`) every study's tests are run again on the synthetic
faces whose prompt label the person confirmed (the maps of a face do not depend on the other faces, so the same
maps are re-tested, not recomputed) and shown beside those on all kept faces.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from fercore.book import Chapter
from fercore.core.labels import CLASSES
from fercore.core.present import declare
from fercore.faces import TITLES as REGION_TITLES
from fercore.studies.common import ALPHA
from fercore.studies.grid_sets import NullFaces, null_line
from fercore.studies.labelcheck import LabelCheck
from fercore.studies.rq3 import RegionStudy, _indexed
from fercore.studies.rq3_tests import compare_emotions, excess_tests, study_findings, where

#: How the excess reads in the findings.
EXCESS = "region share excess over the null arm (synthetic - null, Holm p)"


def _significant(tests: pd.DataFrame | None) -> float:
    return float((tests["p_holm"] < ALPHA).sum()) if tests is not None else np.nan


def _largest(tests: pd.DataFrame) -> pd.Series | None:
    tested = tests[tests["p_value"].notna()]
    return tested.loc[tested["difference"].abs().idxmax()] if len(tested) else None


def null_table(studies: Sequence[RegionStudy]) -> pd.DataFrame | None:
    """Per study with a null arm: the Holm-significant (emotion, region) pairs of real - synthetic, real - null and of
    the excess (synthetic - null), and the largest tested excess with its (unadjusted) 95 % interval and Holm p; the CSV
    keeps the null grids, the tests and the excess's median MDE. None when no study has a null arm."""
    rows = []
    for s in studies:
        if s.excess is None:
            continue
        largest = _largest(s.excess)
        tested = s.excess[s.excess["p_value"].notna()]
        rows.append({"model": s.model, "regime": s.regime, "real_set": s.real_set, "arm": s.arm, "grid_set": s.grids,
                     "null_grids": int(s.excess["grids_null"].max()) if len(s.excess) else 0, "tests": len(tested),
                     "sig_synthetic": _significant(s.tests), "sig_null": _significant(s.null_tests), "sig_excess": _significant(s.excess),
                     "where": f"{REGION_TITLES[largest['region']]}, {largest['emotion']}" if largest is not None else "",
                     **{k: largest[k] if largest is not None else np.nan for k in ("difference", "low", "high", "p_holm")},
                     "mde": float(tested["mde"].median()) if len(tested) else np.nan})
    if not rows:
        return None
    table = _indexed(rows, ["model", "regime", "real_set", "arm"])
    return declare(table, points=["difference", "mde"], ci={"difference": ("low", "high")}, p=["p_holm"],
                   show=["sig_synthetic", "sig_null", "sig_excess", "where", "difference", "p_holm"],
                   titles={"null_grids": "null grids (most per emotion)", "tests": "Holm tests",
                           "sig_synthetic": "Holm p < 0.05: real - synthetic", "sig_null": "real - null",
                           "sig_excess": "excess", "where": "largest excess", "difference": "synthetic - null",
                           "p_holm": "Holm p", "mde": "MDE of the excess (pp, median)"})


def findings(studies: Sequence[RegionStudy]) -> list[str]:
    """Per study with a null arm: the real-vs-null count and the excess's largest pair, worded by
    :func:`fercore.studies.rq3_tests.study_findings` (Holm-family simultaneous interval)."""
    out = []
    for s in studies:
        if s.excess is None:
            continue
        subject = f"{where(s.model, s.regime, s.real_set, s.arm)} ({s.grids}), null arm"
        grids = s.excess[["grids_synthetic", "grids_null"]].min(axis=1)  # the fewer grids set the df
        out += study_findings(subject, s.excess.assign(grids=grids), quantity=EXCESS)
    return out


def show_null(chapter: Chapter, studies: Sequence[RegionStudy], null: NullFaces | None) -> pd.DataFrame | None:
    """The null arm's line (what it holds, or why it is off) and, where studies have one, the null table
    (``null_arm``) and a sentence per study; no table when the arm is off."""
    chapter.note(null_line(null))
    table = null_table(studies)
    if table is None:
        return None
    return chapter.table(table, "null_arm",
                         "Per model, regime, real set and arm: the (emotion, region) pairs with Holm p < 0.05 between real and "
                         "synthetic faces, between real and null faces (real faces through the grid path), and in the excess of "
                         "the synthetic faces over the null (synthetic - null, both arms clustered by grid), with the largest "
                         "tested excess, its 95 % interval (unadjusted; the findings give the Holm-family one) and Holm p. The "
                         "CSV keeps the grids each row used, the null grids and the excess's median MDE.")


class Narrowed(NamedTuple):
    """A study's tests on some of its synthetic faces (real and null faces unchanged)."""

    tests: pd.DataFrame  # real - synthetic
    excess: pd.DataFrame | None  # synthetic - null (None without a null arm)
    faces: int  # synthetic faces in the region statistics


def _narrowed(s: RegionStudy, keep: set[str]) -> Narrowed:
    table = s.report.table
    narrowed = table[(table["domain"] != "synthetic") | table["path"].astype(str).isin(keep)]
    tests = compare_emotions(narrowed, real=s.real_domain, emotions=[c for c in CLASSES if c in set(s.tests["emotion"])])
    excess = excess_tests(narrowed, emotions=[c for c in CLASSES if c in set(s.excess["emotion"])]) if s.excess is not None else None
    return Narrowed(tests, excess, int(((narrowed["domain"] == "synthetic") & (narrowed["excluded"].fillna("") == "")).sum()))


def confirmed_study(s: RegionStudy, check: LabelCheck) -> tuple[Narrowed, Narrowed]:
    """``s``'s tests again on the synthetic faces on the label sheet (the faces a person saw: with every grid scored and a
    sheet of the test split, both sides then come from the same grids) and on those whose label the person confirmed."""
    synthetic = s.report.table[s.report.table["domain"] == "synthetic"]
    on_sheet = check.on_sheet(synthetic)
    return (_narrowed(s, set(on_sheet["path"].astype(str))), _narrowed(s, set(check.confirmed(on_sheet)["path"].astype(str))))


def confirmed_table(studies: Sequence[RegionStudy], check: LabelCheck) -> pd.DataFrame:
    """Per study, side by side on the synthetic faces the sheet holds (all kept) and on the confirmed ones: the synthetic
    faces in the region statistics, the Holm-significant real - synthetic pairs and the largest tested difference (and,
    with a null arm, the Holm-significant pairs of the excess in the CSV)."""
    rows = []
    for s in studies:
        every, confirmed = confirmed_study(s, check)
        big, small = _largest(every.tests), _largest(confirmed.tests)
        rows.append({"model": s.model, "regime": s.regime, "real_set": s.real_set, "arm": s.arm, "grid_set": s.grids,
                     "n_all": every.faces, "n_confirmed": confirmed.faces, "sig_all": _significant(every.tests),
                     "sig_confirmed": _significant(confirmed.tests), "largest_all": big["difference"] if big is not None else np.nan,
                     "largest_confirmed": small["difference"] if small is not None else np.nan,
                     "excess_all": _significant(every.excess), "excess_confirmed": _significant(confirmed.excess)})
    table = _indexed(rows, ["model", "regime", "real_set", "arm"])
    return declare(table, points=["largest_all", "largest_confirmed"],
                   show=["n_all", "n_confirmed", "sig_all", "sig_confirmed", "largest_all", "largest_confirmed"],
                   titles={"n_all": "faces (all kept)", "n_confirmed": "faces (confirmed)",
                           "sig_all": "Holm p < 0.05 (all)", "sig_confirmed": "Holm p < 0.05 (confirmed)",
                           "largest_all": "largest real - synthetic (all)", "largest_confirmed": "largest (confirmed)",
                           "excess_all": "excess Holm p < 0.05 (all)", "excess_confirmed": "excess Holm p < 0.05 (confirmed)"})


def show_confirmed(chapter: Chapter, studies: Sequence[RegionStudy], check: LabelCheck) -> pd.DataFrame | None:
    """With a filled label sheet, the ``confirmed_faces`` table (:func:`confirmed_table`); without one nothing (the chapter's
    opening line already says the synthetic labels are unchecked)."""
    if not check.checked or not studies:
        return None
    return chapter.table(confirmed_table(studies, check), "confirmed_faces",
                         "Per model, regime, real set and arm, on all kept synthetic faces the label sheet holds and on those "
                         "whose prompt label a person confirmed (blind sheet), the same maps re-tested: synthetic faces in the region "
                         "statistics, (emotion, region) pairs with Holm p < 0.05 (real - synthetic) and the largest tested "
                         "difference; the CSV adds the grids each row used and the excess over the null arm.")


def show(chapter: Chapter, studies: Sequence[RegionStudy], null: NullFaces | None, check: LabelCheck) -> None:
    """The chapter's null-arm section (:func:`show_null`) and, with a filled label sheet, the confirmed faces (:func:`show_confirmed`)."""
    show_null(chapter, studies, null)
    show_confirmed(chapter, studies, check)


def glue_values(studies: Sequence[RegionStudy]) -> dict[str, str]:
    """``rq3_null_sentence``: in how many studies some (emotion, region) pair differs between real and null faces, and in how
    many the synthetic faces show an excess over the null (Holm p < alpha); or that the null arm did not run."""
    mine = [s for s in studies if s.excess is not None]
    if not mine:
        return {"rq3_null_sentence": "The null arm did not run here, so no region difference can be told apart from what the grid path "
                                     "alone does."}
    path = sum(int((s.null_tests["p_holm"] < ALPHA).any()) for s in mine)
    excess = sum(int((s.excess["p_holm"] < ALPHA).any()) for s in mine)
    return {"rq3_null_sentence": f"Beside the null arm, {path} of {len(mine)} model, regime, real-set and arm combinations differ between "
                                 f"real and null faces in some (emotion, region) pair, which the grid path alone explains, and {excess} of "
                                 f"{len(mine)} show an excess of the synthetic over the null faces (Holm p < {ALPHA})."}
