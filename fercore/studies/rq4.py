"""RQ4: how real and synthetic faces differ inside each model (per regime): penultimate
embeddings from the run's inference pass, PCA / t-SNE maps, and three numbers on the classes both
sets hold, with class-balanced sampling and the grid as the unit (:mod:`fercore.analysis.domain_tests`):
a linear domain probe (out-of-fold ROC AUC) read against its null reference, an MMD two-sample test
(RBF kernel) whose p-value swaps whole grids with blocks of real faces within class, and per-emotion
distances between the domains' centroids with the small-sample bias removed, reported descriptively: their
grid-bootstrap interval covers the true value in only 48-91 % of simulated data sets at 2-8 grids per class
(docs/calibration_rq34.md), below the harness's 92 % bar, so no interval is shown for them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from fercore.analysis import Comparison, domain_power, domain_tests, finding, plots, power, sample_groups
from fercore.book import Chapter
from fercore.core import labels
from fercore.core.present import declare
from fercore.explain import embeddings
from fercore.models import Classifier
from fercore.studies.common import ALPHA, frame, slug
from fercore.studies.data import TestSets, domain_pair, real_names, shared_classes
from fercore.studies.grid_sets import NULL, TEST_GRIDS, NullFaces, SyntheticGrids, null_faces, null_transform
from fercore.studies.labelcheck import LabelCheck
from fercore.studies.session import MATCHED, RAW, Arms, Study

log = logging.getLogger(__name__)


#: How the probe's and the MMD's bands are named (not confidence intervals).
NULL_BAND = "observed minus the grid-swap null's central 95 %:"
#: Why the centroid distances are point estimates only (the harness's measurement, docs/calibration_rq34.md).
CENTROID_WHY = ("centroid distances are descriptive point estimates: their grid-bootstrap interval covered the true value in only "
                "48-91 % of simulated data sets at 2-8 grids per class (docs/calibration_rq34.md), below the 92 % the chapters require")


def pair_features(run, model, sets, real: str, synthetic_run=None) -> tuple[np.ndarray, pd.DataFrame]:
    """Features of the real test set ``real`` and the synthetic one (from the run's inference
    passes on the whole sets; the synthetic pass from ``synthetic_run`` when given, e.g. a
    matched arm) and the table of those faces, in the same order."""
    feats = np.concatenate([run(model, sets[real]).features, (synthetic_run or run)(model, sets["synthetic"]).features])
    return feats, domain_pair(sets, real)


@dataclass(frozen=True)
class CentroidDistance:
    """Distance between the real and the synthetic centroid of one emotion (standardised features), a
    descriptive point estimate (:data:`CENTROID_WHY`): ``d2`` the bias-corrected squared distance (NaN with one
    grid), ``euclidean`` = sqrt(max(d2, 0)) (the raw distance where ``d2`` is NaN), ``plain`` the raw distance."""

    emotion: str
    euclidean: float
    d2: float
    plain: float
    n_real: int
    n_synthetic: int
    grids: int


@dataclass(frozen=True)
class DomainGap:
    """Real-vs-synthetic separation of one model's embeddings in one regime (class-balanced sample)."""

    model: str
    regime: str
    real_set: str
    arm: str  # raw | matched (synthetic faces matched to the real set's format)
    n_real: int  # faces in the class-balanced sample, per domain
    n_synthetic: int
    groups_synthetic: int  # grids
    pairs: int  # (grid, block of real faces) pairs the p-values swap
    auc: float  # ridge domain probe, out-of-fold ROC AUC, folds of whole pairs (0.5: not separable)
    auc_null_median: float  # the probe's null reference: AUC with whole pairs swapped
    auc_null_q95: float
    auc_null_q025: float
    auc_null_q975: float
    auc_p: float
    folds: int
    mmd2: float
    mmd_null_q025: float
    mmd_null_q975: float
    mmd_p: float
    min_p: float  # the smallest p-value the design allows
    centroids: tuple[CentroidDistance, ...]
    distance_ratio: float  # mean same-emotion cross-domain distance / mean between-emotion distance (real)
    mmd_mde: float = np.nan  # the MMD test's MDE (face SDs along one direction; NaN: not defined, ``mde_note`` says why)
    mde_note: str = ""  # :meth:`fercore.analysis.domain_power.DomainMDE.text`
    grid_set: str = TEST_GRIDS  # the synthetic grids embedded (fercore.studies.grid_sets)


def _centroids(normed: np.ndarray, table: pd.DataFrame, groups: np.ndarray, classes: list[str]) -> tuple[CentroidDistance, ...]:
    rows = []
    for c in classes:
        real = ((table["domain"] == "real") & (table["emotion"] == c)).to_numpy()
        syn = ((table["domain"] == "synthetic") & (table["emotion"] == c)).to_numpy()
        if real.sum() < 2 or syn.sum() < 1:
            continue
        r = domain_tests.centroid_distance(normed[real], normed[syn], groups[syn], n_boot=0)
        distance = r["distance"] if np.isfinite(r["d2"]) else r["plain"]
        rows.append(CentroidDistance(c, float(distance), r["d2"], r["plain"], int(real.sum()), int(syn.sum()), r["grids"]))
    return tuple(rows)


def domain_gap(feats: np.ndarray, table: pd.DataFrame, *, model: str, regime: str, real_set: str = "real", arm: str = "raw",
               classes: list[str] | None = None, permutations: int = 999, seed: int = 0, icc: float = power.DEFAULTS["icc"],
               grid_set: str = TEST_GRIDS) -> DomainGap:
    """On the classes both domains hold (``classes`` or those found): the class-balanced grid pairs
    (:func:`fercore.analysis.domain_tests.balanced_design`), the probe with its null reference and
    the MMD test, both swapping whole pairs (up to ``permutations`` labellings), and per-emotion
    bias-corrected centroid distances (``table['domain']``: real / synthetic), and the MMD test's MDE at this
    design (:func:`mmd_design_mde`, ``icc`` assumed)."""
    table = table.reset_index(drop=True)
    feats = np.asarray(feats, dtype=np.float64)
    normed = (feats - feats.mean(0)) / (feats.std(0) + 1e-8)
    found = set(table.loc[table["domain"] == "real", "emotion"]) & set(table.loc[table["domain"] == "synthetic", "emotion"])
    shared = [c for c in labels.class_set(classes) if c in found] if classes is not None else sorted(found)
    groups = sample_groups(table)
    keep = table["emotion"].isin(shared).to_numpy()
    index = np.flatnonzero(keep)
    design = domain_tests.balanced_design((table["domain"] == "synthetic").to_numpy()[keep], table["emotion"].to_numpy()[keep], groups[keep], seed=seed)
    design = type(design)(index[design.rows], design.synthetic, design.klass, design.pair, design.pairs)
    mmd = domain_tests.mmd_grid_test(normed, design, draws=permutations, seed=seed)
    probe = domain_tests.probe_grid_test(normed, design, draws=min(permutations, 199), seed=seed)
    centroids = _centroids(normed, table, groups, shared)
    is_real = (table["domain"] == "real").to_numpy()
    means = np.stack([normed[is_real & (table["emotion"] == c.emotion).to_numpy()].mean(0) for c in centroids]) if centroids else np.zeros((0, 1))
    between = np.linalg.norm(means[:, None] - means[None], axis=-1)[np.triu_indices(len(means), 1)].mean() if len(means) > 1 else np.nan
    synthetic_rows = design.rows[design.synthetic]
    return DomainGap(model, regime, real_set, arm, int((~design.synthetic).sum()), int(design.synthetic.sum()),
                     len(set(groups[synthetic_rows])), design.pairs, probe["auc"], probe["null_median"], probe["null_q95"],
                     probe["null_q025"], probe["null_q975"], probe["p_value"], probe["folds"], mmd["mmd2"], mmd["null_q025"],
                     mmd["null_q975"], mmd["p_value"], mmd["min_p"], centroids,
                     float(np.mean([c.euclidean for c in centroids]) / between) if centroids else np.nan, *mmd_design_mde(design, icc),
                     grid_set)


def mmd_design_mde(design: domain_tests.Design, icc: float = power.DEFAULTS["icc"]) -> tuple[float, str]:
    """(MDE, its sentence) of the grid-swap MMD test at ``design``'s pairs (faces per pair and class), by
    :func:`fercore.analysis.domain_power.mmd_mde` (cached per design: every model and arm of one real set shares it)."""
    pairs = np.arange(design.pairs)
    sizes = [int((design.synthetic & (design.pair == p)).sum()) for p in pairs]
    first = np.array([np.flatnonzero(design.pair == p)[0] for p in pairs])
    names = {c: i for i, c in enumerate(sorted(set(design.klass[first].tolist()), key=str))}
    result = domain_power.mmd_mde(sizes, [names[c] for c in design.klass[first]], icc=icc)
    return result.mde, result.text()


@dataclass(frozen=True)
class NullGap:
    """One model in one regime and arm, its real set against the null arm (real faces through the grid path) beside
    the synthetic faces, and the excess: synthetic against null directly, both sides whole grids
    (:func:`fercore.analysis.domain_tests.grid_pair_design`), by the same grid-swap probe and MMD tests."""

    model: str
    regime: str
    real_set: str
    arm: str
    grid_set: str  # the synthetic grids embedded
    auc_synthetic: float  # real vs synthetic probe AUC (the DomainGap's)
    auc_null: float  # real vs null probe AUC, the same design and test
    auc_null_p: float
    mmd_null_p: float
    auc_difference: float  # auc_synthetic - auc_null: descriptive (no interval)
    null_grids: int  # null grids in the real-vs-null design
    excess_pairs: int  # (synthetic grid, null grid) pairs
    excess_auc: float  # probe telling synthetic from null faces, out-of-fold AUC (folds of whole pairs)
    excess_auc_null_median: float
    excess_auc_null_q025: float
    excess_auc_null_q975: float
    excess_auc_p: float
    excess_mmd2: float
    excess_mmd_null_q025: float
    excess_mmd_null_q975: float
    excess_mmd_p: float
    excess_min_p: float  # the smallest p the excess design's swaps allow


def excess_test(feats: np.ndarray, table: pd.DataFrame, *, classes: list[str], permutations: int = 999, seed: int = 0) -> dict[str, float]:
    """Synthetic (``domain == "synthetic"``) against null faces (any other ``domain``) on ``classes``: pairs of whole grids
    (:func:`fercore.analysis.domain_tests.grid_pair_design`), the grid-swap MMD and probe; NaN where no class has grids on
    both sides. Keys: ``pairs, auc, auc_null_median, auc_null_q025, auc_null_q975, auc_p, mmd2, mmd_null_q025, mmd_null_q975,
    mmd_p, min_p``."""
    table = table.reset_index(drop=True)
    feats = np.asarray(feats, dtype=np.float64)
    normed = (feats - feats.mean(0)) / (feats.std(0) + 1e-8)
    keep = table["emotion"].isin(classes).to_numpy()
    index = np.flatnonzero(keep)
    try:
        design = domain_tests.grid_pair_design((table["domain"] == "synthetic").to_numpy()[keep], table["emotion"].to_numpy()[keep],
                                               sample_groups(table)[keep], seed=seed)
    except ValueError as error:
        log.warning("excess over the null arm not tested: %s", error)
        return dict.fromkeys(("pairs", "auc", "auc_null_median", "auc_null_q025", "auc_null_q975", "auc_p", "mmd2", "mmd_null_q025",
                              "mmd_null_q975", "mmd_p", "min_p"), np.nan) | {"pairs": 0}
    design = type(design)(index[design.rows], design.synthetic, design.klass, design.pair, design.pairs)
    mmd = domain_tests.mmd_grid_test(normed, design, draws=permutations, seed=seed)
    probe = domain_tests.probe_grid_test(normed, design, draws=min(permutations, 199), seed=seed)
    return {"pairs": design.pairs, "auc": probe["auc"], "auc_null_median": probe["null_median"], "auc_null_q025": probe["null_q025"],
            "auc_null_q975": probe["null_q975"], "auc_p": probe["p_value"], "mmd2": mmd["mmd2"], "mmd_null_q025": mmd["null_q025"],
            "mmd_null_q975": mmd["null_q975"], "mmd_p": mmd["p_value"], "min_p": mmd["min_p"]}


def null_gap(feats: np.ndarray, faces: pd.DataFrame, gap: DomainGap, *, classes: list[str], permutations: int = 999,
             seed: int = 0) -> NullGap:
    """``gap`` (real vs synthetic, from ``feats`` / ``faces`` with ``domain`` real, synthetic and :data:`NULL`) beside real vs
    null (:func:`domain_gap` with the null faces in the synthetic faces' place) and the excess (:func:`excess_test`)."""
    faces = faces.reset_index(drop=True)
    domain = faces["domain"].to_numpy()
    side = domain != "synthetic"
    vs_null = domain_gap(feats[side], faces[side].assign(domain=np.where(domain[side] == NULL, "synthetic", domain[side])), model=gap.model,
                         regime=gap.regime, real_set=gap.real_set, arm=gap.arm, classes=classes, permutations=permutations, seed=seed)
    both = domain != "real"
    excess = excess_test(feats[both], faces[both], classes=classes, permutations=permutations, seed=seed)
    return NullGap(gap.model, gap.regime, gap.real_set, gap.arm, gap.grid_set, gap.auc, vs_null.auc, vs_null.auc_p, vs_null.mmd_p,
                   gap.auc - vs_null.auc, vs_null.groups_synthetic, int(excess["pairs"]),
                   *(excess[k] for k in ("auc", "auc_null_median", "auc_null_q025", "auc_null_q975", "auc_p", "mmd2", "mmd_null_q025",
                                         "mmd_null_q975", "mmd_p", "min_p")))


def confirmed_gap(feats: np.ndarray, faces: pd.DataFrame, check: LabelCheck, gap: DomainGap, *, classes: list[str],
                  permutations: int = 999, seed: int = 0) -> tuple[DomainGap, DomainGap] | None:
    """``gap`` on the synthetic faces the label sheet holds (``gap`` itself where it holds them all) and on those whose label
    the person confirmed, real faces unchanged (with every grid scored and a sheet of the test split, both sides then
    come from the same grids); None (logged) when no class keeps faces on both sides."""
    faces = faces.reset_index(drop=True)
    synthetic = faces[faces["domain"] == "synthetic"]
    on_sheet = check.on_sheet(synthetic)
    out = []
    for kept in (set(on_sheet["path"].astype(str)), set(check.confirmed(on_sheet)["path"].astype(str))):
        if not out and len(kept) == len(synthetic):
            out.append(gap)
            continue
        rows = ((faces["domain"] == "real") | faces["path"].astype(str).isin(kept)).to_numpy()
        try:
            out.append(domain_gap(feats[rows], faces[rows], model=gap.model, regime=gap.regime, real_set=gap.real_set, arm=gap.arm,
                                  classes=classes, permutations=permutations, seed=seed, grid_set=gap.grid_set))
        except ValueError as error:
            log.warning("%s, %s, %s, %s: no domain gap on the sheet's faces: %s", gap.model, gap.regime, gap.real_set, gap.arm, error)
            return None
    return out[0], out[1]


class Embedded(NamedTuple):
    """What :func:`embed_regimes` computes: real vs synthetic, beside the null arm, and on confirmed faces."""

    gaps: list[DomainGap]
    null: list[NullGap]
    confirmed: list[tuple[DomainGap, DomainGap]]  # (the faces the label sheet holds, the confirmed ones) per gap


def embed_regimes(session: Study, sets: TestSets, arms: Arms, networks: Mapping[tuple[str, str], Classifier], *, tsne: bool = True,
                  permutations: int = 999, seed: int = 0, grids: SyntheticGrids | None = None, null: NullFaces | None = None,
                  labels: LabelCheck | None = None) -> Embedded:
    """The chapter's loop: for every real set, every ``(model, regime)`` network and both arms, the
    embeddings of that set and the synthetic faces (``grids``: every grid for a model trained on real, the test grids for
    the others; default the test grids), their PCA (and t-SNE) maps, shown in the chapter
    one figure per real set and method with a note naming them, and the domain gap (:func:`domain_gap`); with ``null``,
    the null arm's faces (matched from their own format where the arms measured it) beside them (:func:`null_gap`); with a filled label sheet
    (``labels``), the gap on the confirmed synthetic faces (:func:`confirmed_gap`)."""
    grids = grids or SyntheticGrids(sets["synthetic"])
    nulls = null_faces(null)
    done = Embedded([], [], [])
    shown = []
    for real_set in real_names(sets):
        maps: dict[str, dict[str, np.ndarray]] = {"pca": {}, "tsne": {}}
        tables: dict[str, pd.DataFrame] = {}
        axes: dict[str, tuple[str, ...]] = {}
        classes = shared_classes(sets, (real_set, "synthetic"))
        for (name, regime), model in networks.items():
            for arm in (RAW, MATCHED):
                run = session.inference_with(arms.transform(real_set, arm))
                feats = np.concatenate([session.inference(model, sets[real_set]).features, grids.inference(run, model, regime).features])
                faces = pd.concat([sets[real_set], grids.faces(regime)], ignore_index=True)
                null_run = session.inference_with(null_transform(arms, real_set, arm))
                every = (feats, faces) if nulls is None else (np.concatenate([feats, null_run(model, nulls).features]),
                                                               pd.concat([faces, nulls], ignore_index=True))  # the maps show null faces too
                label = f"{name}, {regime}, {arm}"
                tables[label] = by_generator(every[1])
                axes[label] = tuple(f"PC{i + 1} ({100 * v:.1f}% of variance)" for i, v in enumerate(embeddings.pca_variance(every[0])))
                for method in ("pca", "tsne") if tsne else ("pca",):
                    maps[method][label] = embeddings.project(every[0], method, seed=seed)
                gap = domain_gap(feats, faces, model=name, regime=regime, real_set=real_set, arm=arm, classes=classes,
                                 permutations=permutations, seed=seed, grid_set=grids.used(regime))
                done.gaps.append(gap)
                if nulls is not None:
                    done.null.append(null_gap(*every, gap, classes=classes, permutations=permutations, seed=seed))
                narrowed = confirmed_gap(feats, faces, labels, gap, classes=classes, permutations=permutations,
                                         seed=seed) if labels is not None and labels.checked else None
                done.confirmed.extend([narrowed] if narrowed is not None else [])
        shown += _show_maps(session.chapter, real_set, maps, tables, axes)
    session.chapter.note("The embedding maps: " + ", ".join(f"{{numref}}`{label}`" for label in shown) + ".")
    return done


def by_generator(faces: pd.DataFrame) -> pd.DataFrame:
    """``faces`` with the synthetic rows' ``domain`` naming their generator (``synthetic · <generator>``)
    where more than one generator is present: the maps' colours facet the synthetic faces by generator."""
    if "generator" not in faces.columns:
        return faces
    synthetic = (faces["domain"] != "real") & faces["generator"].notna() & (faces["generator"].astype(str) != "")
    if faces.loc[synthetic, "generator"].nunique() < 2:
        return faces
    domain = faces["domain"].astype(str).where(~synthetic, faces["domain"].astype(str) + " · " + faces["generator"].astype(str))
    return faces.assign(domain=domain)


def _show_maps(chapter: Chapter, real_set: str, maps: dict[str, dict[str, np.ndarray]], tables: dict[str, pd.DataFrame],
               axes: dict[str, tuple[str, ...]]) -> list[str]:
    shown = []
    for method, panels in maps.items():
        if panels:
            shown.append(chapter.figure(
                plots.embedding_panels(panels, tables, axis_labels=axes if method == "pca" else None, ncols=2,
                                       title=f"{method.upper()}: {real_set} and synthetic faces"),
                f"{method}_{slug(real_set)}",
                f"{'PCA' if method == 'pca' else 't-SNE'} map of the penultimate-layer embeddings of {real_set} and the synthetic "
                "faces (every grid for a model trained on real faces, the test grids for the others), one panel per model, "
                "regime and arm; colour is the domain (the synthetic faces by generator where there are several; null: the "
                "null arm's real faces through the grid path, where it ran), the marker the emotion."))
    return shown


TITLES = {"model": "model", "regime": "regime", "real_set": "real set", "arm": "synthetic faces", "n_real": "n real",
          "n_synthetic": "n synthetic", "groups_synthetic": "grids", "pairs": "grid pairs", "auc": "domain AUC",
          "auc_null_median": "AUC null median", "auc_null_q95": "AUC null 95%", "auc_p": "probe p", "mmd2": "MMD²", "mmd_p": "MMD p",
          "min_p": "smallest p", "distance_ratio": "centroid distance / between-emotion", "mmd_mde": "MMD MDE (face SDs)",
          "grid_set": "synthetic grids"}


def gap_table(gaps: list[DomainGap]) -> pd.DataFrame:
    """Per (model, regime, real set, arm): the synthetic grids embedded (every split for a model trained on real, the test
    split for the others), the probe AUC beside its null reference, the MMD test and the centroid
    ratio shown; the CSV keeps every column (faces, grid pairs, MMD², the design of :func:`design_table`)."""
    table = frame(gaps, TITLES, index=["model", "regime", "real_set", "arm"])
    return declare(table, p=["probe p", "MMD p", "smallest p"], decimals={"MMD MDE (face SDs)": 2},
                   show=["synthetic grids", "domain AUC", "AUC null 95%", "probe p", "MMD p", "centroid distance / between-emotion"],
                   titles={"synthetic grids": "grids used", "domain AUC": "AUC", "centroid distance / between-emotion": "centroid ratio"})


def design_table(gaps: list[DomainGap]) -> pd.DataFrame:
    """Per (model, regime, real set, arm): the design of the domain tests: faces, grids, grid pairs, the smallest
    p the grid swaps can give and the MMD test's MDE (face SDs; blank where not defined)."""
    table = frame(gaps, TITLES, index=["model", "regime", "real_set", "arm"])
    table = table[["n real", "n synthetic", "grids", "grid pairs", "smallest p", "MMD MDE (face SDs)"]]
    return declare(table, p=["smallest p"], decimals={"MMD MDE (face SDs)": 2},
                   titles={"smallest p": "min. p", "MMD MDE (face SDs)": "MDE (face SDs)"})


def centroid_table(gaps: list[DomainGap]) -> pd.DataFrame:
    """Bias-corrected Euclidean distance per emotion (rows) and (model, regime, real set, arm) (columns)."""
    columns = {(g.model, g.regime, g.real_set, g.arm): {c.emotion: c.euclidean for c in g.centroids} for g in gaps}
    table = pd.DataFrame(columns)
    table.columns = pd.MultiIndex.from_tuples(list(columns), names=["model", "regime", "real set", "arm"])
    return table.rename_axis("emotion")


def _subject(g: DomainGap) -> str:
    grids = f" ({g.grid_set})" if g.grid_set != TEST_GRIDS else ""
    return f"{g.model}, {g.regime}, {g.real_set} against synthetic faces{grids} {'as they come' if g.arm == RAW else 'matched to its format'}"


def gap_findings(g: DomainGap) -> list[str]:
    """The probe against its null, the MMD test and the furthest emotion's corrected centroid distance,
    each worded by :func:`fercore.analysis.wording.finding`. The probe's and the MMD's bands are the
    observed value minus the null's central 95 % (:data:`NULL_BAND`, not a confidence interval): they exclude 0 where
    the statistic lies outside what swapping whole grids gives."""
    design = f"{g.groups_synthetic} grids in {g.pairs} class-balanced pairs; smallest attainable p {g.min_p:.2g}"
    out = [finding(Comparison(_subject(g), "domain probe AUC above its grid-swap null median", g.auc - g.auc_null_median,
                              g.auc - g.auc_null_q975, g.auc - g.auc_null_q025, p_value=g.auc_p, units="AUC", digits=3,
                              note=f"AUC {g.auc:.3f}, null 95th percentile {g.auc_null_q95:.3f}; {design}", interval=NULL_BAND), ALPHA),
           finding(Comparison(_subject(g), "MMD² above its grid-swap null (the midpoint of its central 95 %)", g.mmd2 - (g.mmd_null_q025 + g.mmd_null_q975) / 2,
                              g.mmd2 - g.mmd_null_q975, g.mmd2 - g.mmd_null_q025, p_value=g.mmd_p, units="(kernel units)", digits=4,
                              interval=NULL_BAND,
                              note=f"MMD² {g.mmd2:.4f}; {g.mde_note}" if g.mde_note else f"MMD² {g.mmd2:.4f}"), ALPHA)]
    tested = [c for c in g.centroids if np.isfinite(c.d2)]
    if tested:
        c = max(tested, key=lambda c: c.d2)
        out.append(finding(Comparison(f"{_subject(g)}, {c.emotion}", "squared centroid distance, bias-corrected", c.d2, np.nan, np.nan,
                                      units="squared SD units", digits=2, note=f"{c.grids} grids; {CENTROID_WHY}"), ALPHA))
    single = [c.emotion for c in g.centroids if not np.isfinite(c.d2)]
    if single:
        out.append(f"{_subject(g)}: {', '.join(single)} with one grid: the centroid distance is the raw one, biased upwards by "
                   "sampling noise and without an interval.")
    return out


def findings(gaps: list[DomainGap]) -> list[str]:
    """Computed statements of fact per (model, regime, real set, arm) (:func:`gap_findings`), raw arm first;
    how large an AUC or a distance is, the chapter's prose says."""
    out = []
    for g in sorted(gaps, key=lambda g: g.arm != RAW):
        out += gap_findings(g)
    return out


def glue_values(gaps: list[DomainGap]) -> dict[str, float | str]:
    """``rq4_<model>_<regime>_<set>_auc_<arm>``, ``_auc_p_<arm>`` and ``_ratio_<arm>``; ``rq4_lowest_auc`` /
    ``rq4_highest_auc`` (raw arm) with their (model, regime, set); ``rq4_matched_highest_auc``; the design's
    ``rq4_min_p`` and ``rq4_pairs``. The null arm's sentence is :func:`fercore.studies.rq4_null.glue_values`'s."""
    values: dict[str, float | str] = {}
    for g in gaps:
        key = f"rq4_{slug(g.model)}_{slug(g.regime)}_{slug(g.real_set)}"
        values[f"{key}_auc_{g.arm}"] = g.auc
        values[f"{key}_auc_p_{g.arm}"] = g.auc_p
        values[f"{key}_ratio_{g.arm}"] = g.distance_ratio
    raw = [g for g in gaps if g.arm == "raw"]
    matched = [g for g in gaps if g.arm == "matched"] or raw
    low, high = min(raw, key=lambda g: g.auc), max(raw, key=lambda g: g.auc)
    mhigh, mlow = max(matched, key=lambda g: g.auc), min(matched, key=lambda g: g.auc)
    values.update({"rq4_lowest_auc": low.auc, "rq4_lowest_auc_model": f"{low.model}, {low.regime}, {low.real_set}",
                   "rq4_highest_auc": high.auc, "rq4_highest_auc_model": f"{high.model}, {high.regime}, {high.real_set}",
                   "rq4_matched_lowest_auc": mlow.auc, "rq4_matched_highest_auc": mhigh.auc,
                   "rq4_matched_highest_auc_model": f"{mhigh.model}, {mhigh.regime}, {mhigh.real_set}",
                   "rq4_min_p": max(g.min_p for g in gaps), "rq4_pairs": float(min(g.pairs for g in gaps))})
    return values
