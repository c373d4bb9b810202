"""RQ4: how real and synthetic faces differ inside each model (per regime): penultimate
embeddings from the run's inference pass, PCA / t-SNE maps, a cross-validated domain probe
(logistic regression, ROC AUC), an MMD two-sample test (RBF kernel, permutation p-value) and
per-emotion distances between the domains' centroids."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fercore.analysis import grouped_domain_auc, plots, sample_groups
from fercore.book import Chapter
from fercore.core import labels
from fercore.core.present import declare
from fercore.explain import centroid_distances, embeddings, mmd_test
from fercore.models import Classifier
from fercore.studies.common import ALPHA, frame, p_text, slug
from fercore.studies.data import TestSets, domain_pair, real_names, shared_classes
from fercore.studies.session import MATCHED, RAW, Arms, Study


def pair_features(run, model, sets, real: str, synthetic_run=None) -> tuple[np.ndarray, pd.DataFrame]:
    """Features of the real test set ``real`` and the synthetic one (from the run's inference
    passes on the whole sets; the synthetic pass from ``synthetic_run`` when given, e.g. a
    matched arm) and the table of those faces, in the same order."""
    feats = np.concatenate([run(model, sets[real]).features, (synthetic_run or run)(model, sets["synthetic"]).features])
    return feats, domain_pair(sets, real)


@dataclass(frozen=True)
class CentroidDistance:
    """Distance between the real and the synthetic centroid of one emotion (standardised features)."""

    emotion: str
    euclidean: float
    cosine: float
    n_real: int
    n_synthetic: int


@dataclass(frozen=True)
class DomainGap:
    """Real-vs-synthetic separation of one model's embeddings in one regime."""

    model: str
    regime: str
    real_set: str
    arm: str  # raw | matched (synthetic faces matched to the real set's format)
    n_real: int
    n_synthetic: int
    groups_synthetic: int
    auc: float  # domain probe, pooled out-of-fold ROC AUC, grouped folds (0.5: not separable)
    auc_low: float  # cluster-bootstrap 95 % interval
    auc_high: float
    folds: int
    mmd2: float
    mmd_p: float
    centroids: tuple[CentroidDistance, ...]
    distance_ratio: float  # mean same-emotion cross-domain distance / mean between-emotion distance (real)


def domain_gap(feats: np.ndarray, table: pd.DataFrame, *, model: str, regime: str, real_set: str = "real", arm: str = "raw",
               classes: list[str] | None = None, permutations: int = 500, seed: int = 0) -> DomainGap:
    """Domain probe AUC (grouped folds, cluster-bootstrap interval: faces of one source grid never
    on both sides, resampled together), MMD test and per-emotion centroid distances between the
    two domains (``table['domain']``: real / synthetic); centroids for ``classes`` (the classes
    both sets hold). The MMD permutation test treats faces as exchangeable (stated in the chapter)."""
    table = table.reset_index(drop=True)
    domains = table["domain"].to_numpy()
    feats = np.asarray(feats, dtype=np.float64)
    normed = (feats - feats.mean(0)) / (feats.std(0) + 1e-8)
    groups = np.array([f"{d}:{g}" for d, g in zip(domains, sample_groups(table), strict=True)], dtype=object)
    probe = grouped_domain_auc(feats, domains, groups, folds=5, seed=seed)
    real, synthetic = normed[domains == "real"], normed[domains == "synthetic"]
    mmd = mmd_test(real, synthetic, permutations=permutations, seed=seed)
    centroids = centroid_distances(normed, table)
    if classes is not None:
        centroids = centroids[centroids["emotion"].isin(labels.class_set(classes))].reset_index(drop=True)
    is_real = table["domain"] == "real"
    means = np.stack([normed[(is_real & (table["emotion"] == c)).to_numpy()].mean(0) for c in centroids["emotion"]])
    between = np.linalg.norm(means[:, None] - means[None], axis=-1)[np.triu_indices(len(means), 1)].mean() if len(means) > 1 else np.nan
    rows = tuple(CentroidDistance(str(r.emotion), float(r.euclidean), float(r.cosine), int(r.n_real), int(r.n_synthetic))
                 for r in centroids.itertuples())
    return DomainGap(model, regime, real_set, arm, int(is_real.sum()), int((~is_real).sum()),
                     len(set(groups[~is_real.to_numpy()])), probe.auc, probe.low, probe.high, probe.folds,
                     float(mmd["mmd2"]), float(mmd["p_value"]), rows, float(centroids["euclidean"].mean() / between))


def embed_regimes(session: Study, sets: TestSets, arms: Arms, networks: Mapping[tuple[str, str], Classifier], *, tsne: bool = True,
                  permutations: int = 500, seed: int = 0) -> list[DomainGap]:
    """The chapter's loop: for every real set, every ``(model, regime)`` network and both arms, the
    embeddings of that set and the synthetic faces, their PCA (and t-SNE) maps, shown in the chapter
    one figure per real set and method with a note naming them, and the domain gap (:func:`domain_gap`)."""
    gaps, shown = [], []
    for real_set in real_names(sets):
        maps: dict[str, dict[str, np.ndarray]] = {"pca": {}, "tsne": {}}
        tables: dict[str, pd.DataFrame] = {}
        axes: dict[str, tuple[str, ...]] = {}
        for (name, regime), model in networks.items():
            for arm in (RAW, MATCHED):
                feats, faces = pair_features(session.inference, model, sets, real_set,
                                             session.inference_with(arms.transform(real_set, arm)))
                label = f"{name}, {regime}, {arm}"
                tables[label] = faces
                axes[label] = tuple(f"PC{i + 1} ({100 * v:.1f}% of variance)" for i, v in enumerate(embeddings.pca_variance(feats)))
                for method in ("pca", "tsne") if tsne else ("pca",):
                    maps[method][label] = embeddings.project(feats, method, seed=seed)
                gaps.append(domain_gap(feats, faces, model=name, regime=regime, real_set=real_set, arm=arm,
                                       classes=shared_classes(sets, (real_set, "synthetic")), permutations=permutations, seed=seed))
        shown += _show_maps(session.chapter, real_set, maps, tables, axes)
    session.chapter.note("The embedding maps: " + ", ".join(f"{{numref}}`{label}`" for label in shown) + ".")
    return gaps


def _show_maps(chapter: Chapter, real_set: str, maps: dict[str, dict[str, np.ndarray]], tables: dict[str, pd.DataFrame],
               axes: dict[str, tuple[str, ...]]) -> list[str]:
    shown = []
    for method, panels in maps.items():
        if panels:
            shown.append(chapter.figure(
                plots.embedding_panels(panels, tables, axis_labels=axes if method == "pca" else None, ncols=2,
                                       title=f"{method.upper()}: {real_set} and synthetic faces"),
                f"{method}_{slug(real_set)}",
                f"{'PCA' if method == 'pca' else 't-SNE'} map of the penultimate-layer embeddings of {real_set} and the synthetic test "
                "faces, one panel per model, regime and arm; colour is the domain, the marker the emotion."))
    return shown


TITLES = {"model": "model", "regime": "regime", "real_set": "real set", "arm": "synthetic faces", "n_real": "n real",
          "n_synthetic": "n synthetic", "groups_synthetic": "grids", "auc": "domain AUC", "auc_low": "AUC 95% low",
          "auc_high": "AUC 95% high", "mmd2": "MMD²", "mmd_p": "MMD p", "distance_ratio": "centroid distance / between-emotion"}


def gap_table(gaps: list[DomainGap]) -> pd.DataFrame:
    return declare(frame(gaps, TITLES, index=["model", "regime", "real_set", "arm"]), p=["MMD p"],
                   ci={"domain AUC": ("AUC 95% low", "AUC 95% high")},
                   show=["grids", "domain AUC", "MMD²", "MMD p", "centroid distance / between-emotion"])  # faces: the test-set table and the CSV


def centroid_table(gaps: list[DomainGap]) -> pd.DataFrame:
    """Euclidean distance per emotion (rows) and (model, regime, real set, arm) (columns)."""
    columns = {(g.model, g.regime, g.real_set, g.arm): {c.emotion: c.euclidean for c in g.centroids} for g in gaps}
    table = pd.DataFrame(columns)
    table.columns = pd.MultiIndex.from_tuples(list(columns), names=["model", "regime", "real set", "arm"])
    return table.rename_axis("emotion")


def findings(gaps: list[DomainGap]) -> list[str]:
    """Computed statements of fact; how large an AUC or a distance is, the chapter's prose says."""
    out = []
    matched = {(g.model, g.regime, g.real_set): g for g in gaps if g.arm == "matched"}
    for g in (g for g in gaps if g.arm == "raw"):
        test = "significant" if g.mmd_p < ALPHA else "not significant"
        furthest = max(g.centroids, key=lambda c: c.euclidean)
        closest = min(g.centroids, key=lambda c: c.euclidean)
        line = (f"{g.model}, {g.regime}, {g.real_set} against synthetic faces: domain probe AUC {g.auc:.3f} "
                f"[{g.auc_low:.3f}, {g.auc_high:.3f}] ({g.folds} grouped folds); MMD² = {g.mmd2:.4f}, {test} at α = {ALPHA} "
                f"({p_text(g.mmd_p)}); same-emotion centroids lie {g.distance_ratio:.2f} times as far apart as different "
                f"emotions' on real faces (furthest: {furthest.emotion}, closest: {closest.emotion}).")
        m = matched.get((g.model, g.regime, g.real_set))
        if m is not None:
            survives = ("the probe still separates the domains" if m.auc_low > 0.5 else "the probe's interval reaches 0.5")
            line += (f" Matched to {g.real_set}'s format: AUC {m.auc:.3f} [{m.auc_low:.3f}, {m.auc_high:.3f}], MMD "
                     f"{'significant' if m.mmd_p < ALPHA else 'not significant'} ({p_text(m.mmd_p)}), centroid ratio "
                     f"{m.distance_ratio:.2f}: {survives}.")
        out.append(line)
    return out


def glue_values(gaps: list[DomainGap]) -> dict[str, float | str]:
    """``rq4_<model>_<regime>_<set>_auc_<arm>`` and ``_ratio_<arm>``; ``rq4_lowest_auc`` /
    ``rq4_highest_auc`` (raw arm) with their (model, regime, set); ``rq4_matched_highest_auc``."""
    values: dict[str, float | str] = {}
    for g in gaps:
        key = f"rq4_{slug(g.model)}_{slug(g.regime)}_{slug(g.real_set)}"
        values[f"{key}_auc_{g.arm}"] = g.auc
        values[f"{key}_ratio_{g.arm}"] = g.distance_ratio
    raw = [g for g in gaps if g.arm == "raw"]
    matched = [g for g in gaps if g.arm == "matched"] or raw
    low, high = min(raw, key=lambda g: g.auc), max(raw, key=lambda g: g.auc)
    mhigh, mlow = max(matched, key=lambda g: g.auc), min(matched, key=lambda g: g.auc)
    values.update({"rq4_lowest_auc": low.auc, "rq4_lowest_auc_model": f"{low.model}, {low.regime}, {low.real_set}",
                   "rq4_highest_auc": high.auc, "rq4_highest_auc_model": f"{high.model}, {high.regime}, {high.real_set}",
                   "rq4_matched_lowest_auc": mlow.auc, "rq4_matched_highest_auc": mhigh.auc,
                   "rq4_matched_highest_auc_model": f"{mhigh.model}, {mhigh.regime}, {mhigh.real_set}"})
    return values
