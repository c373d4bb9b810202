"""RQ3's statistics: region shares compared between real and synthetic faces at the level of the grid.

A synthetic grid is one prompt's faces, so the unit the design replicates is the grid, not the face.
Per emotion both sets hold and per region, each grid is reduced to its mean share, each real face is
its own cluster, and the real mean is compared with the mean of the grid means by Welch's t on those
cluster means (:func:`fercore.analysis.grid_level.grid_mean_difference`; grids - 1 df): the
test is about the mean difference the table reports. With one grid of an emotion the spread between
grids cannot be estimated and that emotion's rows are descriptive only. Holm runs over every tested
(emotion, region) pair of one (model, regime, real set, arm). Beside the raw shares, each region's
share per unit of its area (share / area share: 1 is what a uniform map gives) shows whether a
region draws attention beyond its size. Raw against matched is a paired contrast over the same grids.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from fercore.analysis import Comparison, finding, grid_level, holm, power
from fercore.faces import REGIONS
from fercore.faces import TITLES as REGION_TITLES
from fercore.studies.common import ALPHA
from fercore.studies.data import NULL_ARM

#: Fewest synthetic grids of an emotion for a test; with fewer the rows are descriptive.
MIN_GRIDS = 2
#: Fewest faces with a usable map on each side of an (emotion, region) comparison.
MIN_FACES = 3
GRID_LEVEL, ONE_GRID, TOO_FEW = "Welch t on grid means", grid_level.ONE_CLUSTER, "too few faces"
COLUMNS = ["emotion", "region", "n_real", "n_synthetic", "grids", "mean_real", "mean_synthetic", "difference", "low", "high",
           "se", "df", "mde", "density_real", "density_synthetic", "test", "p_value", "p_holm"]


def _density(part: pd.DataFrame, region: str) -> np.ndarray:
    """Share per unit of region area of each face (NaN where the table has no areas)."""
    column = f"area_{region}"
    if column not in part.columns:
        return np.full(len(part), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (part[region] / part[column].where(part[column] > 0)).to_numpy(float)


def _emotion_rows(a: pd.DataFrame, b: pd.DataFrame, emotion: str, min_faces: int) -> list[dict]:
    grids = int(b["group"].nunique()) if len(b) else 0
    base = {"emotion": emotion, "n_real": len(a), "n_synthetic": len(b), "grids": grids}
    if len(a) < min_faces or len(b) < min_faces:
        return [{**base, "region": r, "mean_real": a[r].mean() if len(a) else np.nan,
                 "mean_synthetic": b[r].mean() if len(b) else np.nan, "test": TOO_FEW} for r in REGIONS]
    regions = list(REGIONS)
    result = grid_level.grid_mean_difference(a[regions].to_numpy(float), b[regions].to_numpy(float), a["group"].to_numpy(), b["group"].to_numpy())
    density = grid_level.grid_mean_difference(np.column_stack([_density(a, r) for r in regions]),
                                   np.column_stack([_density(b, r) for r in regions]), a["group"].to_numpy(), b["group"].to_numpy())
    rows = []
    for j, region in enumerate(regions):
        r = result.iloc[j]
        rows.append({**base, "region": region, "mean_real": r["mean_a"], "mean_synthetic": r["mean_b"], "difference": r["difference"],
                     "low": r["low"], "high": r["high"], "se": r["se"], "df": r["df"], "mde": r["mde"],
                     "density_real": density["mean_a"].iloc[j], "density_synthetic": density["mean_b"].iloc[j],
                     "test": GRID_LEVEL if np.isfinite(r["p_value"]) else ONE_GRID, "p_value": r["p_value"]})
    return rows


def compare_emotions(table: pd.DataFrame, *, real: str, emotions: Sequence[str], synthetic: str = "synthetic",
                     min_faces: int = MIN_FACES) -> pd.DataFrame:
    """Real minus synthetic mean share of each region, per emotion in ``emotions``, over the used rows
    of a :func:`fercore.explain.cam_report` table (``domain``, ``emotion``, ``group``, ``excluded``, a
    column per region and, where present, ``area_<region>``). The synthetic mean is the mean of its
    grids' means. Columns :data:`COLUMNS`: the shares, the difference with its 95 % interval, SE, df
    and MDE (80 % power), the mean share per unit area per domain, the test, p and Holm's p (the
    family: every tested row)."""
    used = table[table["excluded"].fillna("") == ""]
    rows = []
    for emotion in emotions:
        a = used[(used["domain"] == real) & (used["emotion"] == emotion)]
        b = used[(used["domain"] == synthetic) & (used["emotion"] == emotion)]
        rows += _emotion_rows(a, b, emotion, min_faces)
    out = pd.DataFrame(rows).reindex(columns=COLUMNS)
    out["p_holm"] = holm(out["p_value"].to_numpy(float), ALPHA)
    return out


#: Columns of :func:`excess_tests`: the synthetic side where :data:`COLUMNS` has the real one, the null where it has the synthetic.
EXCESS_COLUMNS = ["emotion", "region", "n_synthetic", "n_null", "grids_synthetic", "grids_null", "mean_synthetic", "mean_null",
                  "difference", "low", "high", "se", "df", "mde", "density_synthetic", "density_null", "test", "p_value", "p_holm"]


def null_tests(table: pd.DataFrame, *, real: str, emotions: Sequence[str], null: str = NULL_ARM, min_faces: int = MIN_FACES) -> pd.DataFrame:
    """Real minus null mean share per (emotion, region): :func:`compare_emotions` with the null arm's faces (real faces
    composed into grids and extracted like the synthetic ones, clustered by their null grid) in the synthetic faces' place."""
    return compare_emotions(table, real=real, emotions=emotions, synthetic=null, min_faces=min_faces)


def excess_tests(table: pd.DataFrame, *, emotions: Sequence[str], synthetic: str = "synthetic", null: str = NULL_ARM,
                 min_faces: int = MIN_FACES) -> pd.DataFrame:
    """The excess of the synthetic faces over the null arm per (emotion, region): (real - null) - (real - synthetic)
    = synthetic - null mean share, both sides means of grid means, Welch's t on the grid means (each side clustered by
    its grids; Hsu's df, min(grids) - 1), Holm over the tested rows. Columns :data:`EXCESS_COLUMNS` (``difference``:
    synthetic - null; ``grids_synthetic`` / ``grids_null``: the grids of each side)."""
    out = compare_emotions(table, real=synthetic, emotions=emotions, synthetic=null, min_faces=min_faces)
    used = table[(table["excluded"].fillna("") == "") & (table["domain"] == synthetic)]
    grids = used.groupby("emotion")["group"].nunique()
    out = out.rename(columns={"n_real": "n_synthetic", "n_synthetic": "n_null", "grids": "grids_null", "mean_real": "mean_synthetic",
                              "mean_synthetic": "mean_null", "density_real": "density_synthetic", "density_synthetic": "density_null"})
    out["grids_synthetic"] = out["emotion"].map(grids).fillna(0).astype(int)
    return out.reindex(columns=EXCESS_COLUMNS)


def arm_contrast(raw: pd.DataFrame, matched: pd.DataFrame, *, real: str, emotions: Sequence[str], synthetic: str = "synthetic") -> pd.DataFrame:
    """Per (emotion, region): the raw difference minus the matched one. Both arms explain the same
    real faces with the same model (the real side cancels) and the same grids' faces, so the contrast is
    the mean over grids of (matched - raw) grid mean share over the faces used in both arms, a paired t over
    the grids (Holm over the rows).
    Columns ``emotion, region, grids, difference, low, high, p_value, p_holm``."""
    rows = []
    for emotion in emotions:
        parts = []
        for table in (raw, matched):
            used = table[(table["excluded"].fillna("") == "") & (table["domain"] == synthetic) & (table["emotion"] == emotion)]
            parts.append(used.drop_duplicates("path").set_index("path"))
        both = parts[0].index.intersection(parts[1].index)
        groups = parts[0].loc[both, "group"].to_numpy()
        for region in REGIONS:
            change = grid_level.paired_change(parts[1].loc[both, region].to_numpy(float), parts[0].loc[both, region].to_numpy(float), groups)
            rows.append({"emotion": emotion, "region": region, "grids": change["clusters"], **{k: change[k] for k in
                         ("difference", "low", "high", "p_value")}})
    out = pd.DataFrame(rows, columns=["emotion", "region", "grids", "difference", "low", "high", "p_value"])
    out["p_holm"] = holm(out["p_value"].to_numpy(float), ALPHA)
    return out


def where(model: str, regime: str, real_set: str, arm: str) -> str:
    return f"{model}, {regime}, {real_set} against synthetic faces {'as they come' if arm == 'raw' else 'matched to its format'}"


def study_findings(subject: str, tests: pd.DataFrame, *, quantity: str = "region share (real - synthetic, Holm p)") -> list[str]:
    """The count of Holm-significant pairs, the largest tested difference (``quantity``) worded by :func:`finding`, and
    which emotions have one grid only (descriptive)."""
    tested = tests[tests["p_value"].notna()]
    single = sorted(set(tests.loc[tests["test"] == ONE_GRID, "emotion"]))
    out = []
    if single:
        out.append(f"{subject}: {', '.join(single)} {'has' if len(single) == 1 else 'have'} one synthetic grid, so the spread "
                   "between grids cannot be estimated and no per-emotion test is possible; their shares are shown descriptively.")
    if tested.empty:
        if not single:
            out.append(f"{subject}: too few faces with usable maps for a per-emotion comparison.")
        return out
    largest = tested.loc[tested["difference"].abs().idxmax()]
    m = len(tested)  # the Holm family: the interval and the MDE at the Bonferroni level alpha / m, as Holm's first step
    half = float(stats.t.ppf(1 - ALPHA / (2 * m), largest["df"])) * largest["se"]
    comparison = Comparison(f"{subject}, {REGION_TITLES[largest['region']]} in {largest['emotion']}",
                            quantity, 100 * largest["difference"],
                            100 * (largest["difference"] - half), 100 * (largest["difference"] + half), p_value=float(largest["p_holm"]),
                            mde=100 * float(grid_level.mde(largest["se"], largest["df"], alpha=ALPHA / m)),
                            interval=f"Holm-family simultaneous 95 % interval, Bonferroni level alpha / {m}", mde_level=f"alpha / {m}",
                            note=f"{int((tested['p_holm'] < ALPHA).sum())} of {m} (emotion, region) differences have "
                                 f"Holm p < {ALPHA}; test: {GRID_LEVEL}, {int(largest['grids'])} grids")
    out.append(finding(comparison, ALPHA))
    return out


def contrast_finding(subject: str, contrast: pd.DataFrame, raw_tests: pd.DataFrame) -> str | None:
    """The raw-minus-matched contrast of the pair with the largest tested raw difference, worded by :func:`finding`."""
    tested = raw_tests[raw_tests["p_value"].notna()]
    if tested.empty:
        return None
    largest = tested.loc[tested["difference"].abs().idxmax()]
    row = contrast[(contrast["emotion"] == largest["emotion"]) & (contrast["region"] == largest["region"])]
    if row.empty or not np.isfinite(row["low"].iloc[0]):
        return None
    r = row.iloc[0]
    return finding(Comparison(f"{subject}, {REGION_TITLES[r['region']]} in {r['emotion']}",
                              "change of the difference from matching (raw - matched, paired over grids, Holm p)", 100 * r["difference"],
                              100 * r["low"], 100 * r["high"], p_value=float(r["p_holm"]),
                              interval="unadjusted 95 % interval"), ALPHA)


def share_icc(table: pd.DataFrame, synthetic: str = "synthetic") -> power.ICCEstimate:
    """Intra-class correlation of the synthetic faces' region shares within grids, pooled over every
    (emotion, region) with two grids or more (:func:`fercore.analysis.power.icc_anova`; the parameter
    default, labelled assumed, where no emotion has two grids)."""
    used = table[(table["excluded"].fillna("") == "") & (table["domain"] == synthetic)]
    long = used.melt(id_vars=["emotion", "group"], value_vars=list(REGIONS), var_name="region", value_name="share").dropna()
    return power.icc_anova(long["share"].to_numpy(float), (long["emotion"] + "|" + long["region"]).to_numpy(),
                           (long["group"].astype(str) + "|" + long["region"]).to_numpy())
