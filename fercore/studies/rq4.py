"""RQ4: how real and synthetic faces differ inside each model (per regime): penultimate
embeddings from the run's inference pass, PCA / t-SNE maps, a cross-validated domain probe
(logistic regression, ROC AUC), an MMD two-sample test (RBF kernel, permutation p-value) and
per-emotion distances between the domains' centroids."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import labels
from .common import ALPHA, frame, p_text, slug


def pair_features(run, model, sets, real: str | None = None) -> tuple[np.ndarray, pd.DataFrame]:
    """Features of one real test set and the synthetic one (from the run's inference passes on
    the whole sets) and the table of those faces, in the same order."""
    from .data import domain_pair, first_real

    real = real or first_real(sets)
    feats = np.concatenate([run(model, sets[real]).features, run(model, sets["synthetic"]).features])
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
    n_real: int
    n_synthetic: int
    auc_mean: float  # domain probe, cross-validated ROC AUC (0.5: not separable)
    auc_sd: float
    folds: int
    mmd2: float
    mmd_p: float
    centroids: tuple[CentroidDistance, ...]
    distance_ratio: float  # mean same-emotion cross-domain distance / mean between-emotion distance (real)


def domain_gap(feats: np.ndarray, table: pd.DataFrame, *, model: str, regime: str, classes: list[str] | None = None,
               permutations: int = 500, seed: int = 0) -> DomainGap:
    """Domain probe AUC, MMD test and per-emotion centroid distances between the two domains
    (``table['domain']``: real / synthetic); centroids for ``classes`` (the classes both sets hold)."""
    from ..embeddings import centroid_distances, domain_auc, mmd_test

    table = table.reset_index(drop=True)
    domains = table["domain"].to_numpy()
    feats = np.asarray(feats, dtype=np.float64)
    normed = (feats - feats.mean(0)) / (feats.std(0) + 1e-8)
    auc = domain_auc(feats, domains, folds=min(5, int(pd.Series(domains).value_counts().min())), seed=seed)
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
    return DomainGap(model, regime, int(is_real.sum()), int((~is_real).sum()), float(auc["auc_mean"]), float(auc["auc_std"]),
                     int(auc["folds"]), float(mmd["mmd2"]), float(mmd["p_value"]), rows,
                     float(centroids["euclidean"].mean() / between))


TITLES = {"model": "model", "regime": "regime", "n_real": "n real", "n_synthetic": "n synthetic", "auc_mean": "domain AUC",
          "auc_sd": "AUC sd", "mmd2": "MMD²", "mmd_p": "MMD p", "distance_ratio": "centroid distance / between-emotion"}


def gap_table(gaps: list[DomainGap]) -> pd.DataFrame:
    return frame(gaps, TITLES, index=["model", "regime"])


def centroid_table(gaps: list[DomainGap]) -> pd.DataFrame:
    """Euclidean distance per emotion (rows) and (model, regime) (columns)."""
    columns = {(g.model, g.regime): {c.emotion: c.euclidean for c in g.centroids} for g in gaps}
    table = pd.DataFrame(columns)
    table.columns = pd.MultiIndex.from_tuples(list(columns), names=["model", "regime"])
    return table.rename_axis("emotion")


def findings(gaps: list[DomainGap]) -> list[str]:
    """Computed statements of fact; how large an AUC or a distance is, the chapter's prose says."""
    out = []
    for g in gaps:
        test = "significant" if g.mmd_p < ALPHA else "not significant"
        furthest = max(g.centroids, key=lambda c: c.euclidean)
        closest = min(g.centroids, key=lambda c: c.euclidean)
        out.append(f"{g.model}, {g.regime}: domain probe AUC {g.auc_mean:.3f} ± {g.auc_sd:.3f} ({g.folds} folds); MMD² = {g.mmd2:.4f}, "
                   f"{test} at α = {ALPHA} ({p_text(g.mmd_p)}); same-emotion centroids lie {g.distance_ratio:.2f} times as far apart "
                   f"as different emotions' on real faces (furthest: {furthest.emotion}, closest: {closest.emotion}).")
    return out


def glue_values(gaps: list[DomainGap]) -> dict[str, float | str]:
    """``rq4_<model>_<regime>_auc`` and ``_ratio``; ``rq4_lowest_auc`` / ``rq4_highest_auc`` with their (model, regime)."""
    values: dict[str, float | str] = {}
    for g in gaps:
        key = f"rq4_{slug(g.model)}_{slug(g.regime)}"
        values[f"{key}_auc"] = g.auc_mean
        values[f"{key}_ratio"] = g.distance_ratio
    low, high = min(gaps, key=lambda g: g.auc_mean), max(gaps, key=lambda g: g.auc_mean)
    values.update({"rq4_lowest_auc": low.auc_mean, "rq4_lowest_auc_model": f"{low.model}, {low.regime}",
                   "rq4_highest_auc": high.auc_mean, "rq4_highest_auc_model": f"{high.model}, {high.regime}"})
    return values
