"""How real and synthetic faces differ inside the model: penultimate embeddings and domain-gap numbers.

* ``extract`` : penultimate features for a sample table (the one inference pass);
* ``project`` : 2-D PCA or t-SNE coordinates for plots;
* the domain probe (a linear classifier telling the domains apart) lives in
  :func:`fercore.analysis.uncertainty.grouped_domain_auc` (grouped folds, cluster-bootstrap interval);
* ``mmd_test`` : squared MMD with an RBF kernel (median-heuristic bandwidth) and a
  permutation p-value over single faces: valid only for independent faces. Grids of one prompt
  are not, so RQ4 uses :func:`fercore.analysis.domain_tests.mmd_grid_test` (whole grids swapped);
  the calibration harness shows this face-level test rejecting a true null in most data sets;
* ``centroid_distances`` : per-class distance between the domains' class centroids.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.preprocessing import StandardScaler

from fercore import inference
from fercore.models import Classifier


def extract(model: Classifier, samples: pd.DataFrame, *, batch_size: int = 64, workers: int | None = None,
            device: str = "auto", progress: bool = True, cache_dir: str | None = None) -> np.ndarray:
    """Penultimate embeddings (N x D) of the images in ``samples`` (:func:`fercore.inference.infer`)."""
    return inference.infer(model, samples, batch_size=batch_size, workers=workers, device=device, progress=progress,
                           cache_dir=cache_dir).features


def project(feats: np.ndarray, method: str = "pca", *, seed: int = 0) -> np.ndarray:
    """2-D coordinates: ``pca`` or ``tsne`` (on standardised features, t-SNE after a 50-d PCA)."""
    scaled = StandardScaler().fit_transform(feats)
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(scaled)
    if method == "tsne":
        reduced = PCA(n_components=min(50, *scaled.shape), random_state=seed).fit_transform(scaled)
        perplexity = float(min(30.0, max(2.0, (len(reduced) - 1) / 3)))
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(reduced)
    raise ValueError(f"method must be 'pca' or 'tsne', not {method!r}")


def _rbf_gram(z: np.ndarray, gamma: float) -> np.ndarray:
    sq = (z * z).sum(axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0.0)
    return np.exp(-gamma * d2)


def mmd_test(x: np.ndarray, y: np.ndarray, *, permutations: int = 500, seed: int = 0, gamma: float | None = None) -> dict[str, Any]:
    """Unbiased squared MMD between samples ``x`` and ``y`` (RBF kernel) and its permutation p-value.

    ``gamma`` defaults to 1 / median squared pairwise distance of the pooled sample.
    """
    z = np.concatenate([x, y]).astype(np.float64)
    n, m = len(x), len(y)
    if gamma is None:
        sq = (z * z).sum(axis=1)
        d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0.0)
        median = np.median(d2[np.triu_indices(len(z), 1)])
        gamma = 1.0 / median if median > 0 else 1.0
    k = _rbf_gram(z, gamma)

    def mmd2(index: np.ndarray) -> float:
        a, b = index[:n], index[n:]
        kxx, kyy, kxy = k[np.ix_(a, a)], k[np.ix_(b, b)], k[np.ix_(a, b)]
        return float((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean())

    rng = np.random.default_rng(seed)
    observed = mmd2(np.arange(n + m))
    null = np.array([mmd2(rng.permutation(n + m)) for _ in range(permutations)])
    return {"mmd2": observed, "p_value": float((1 + (null >= observed).sum()) / (1 + permutations)),
            "gamma": float(gamma), "permutations": permutations}


def centroid_distances(feats: np.ndarray, table: pd.DataFrame, *, domain: str = "domain", label: str = "emotion") -> pd.DataFrame:
    """Per class: Euclidean and cosine distance between the two domains' centroids, and counts."""
    table = table.reset_index(drop=True)
    kinds = sorted(table[domain].unique())
    if len(kinds) != 2:
        raise ValueError(f"centroid_distances needs two domains, got {kinds}")
    rows = []
    for cls, part in table.groupby(label):
        idx = [part.index[part[domain] == k].to_numpy() for k in kinds]
        if any(len(i) == 0 for i in idx):
            continue
        a, b = feats[idx[0]].mean(axis=0), feats[idx[1]].mean(axis=0)
        cosine = 1 - float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))
        rows.append({label: cls, "euclidean": float(np.linalg.norm(a - b)), "cosine": cosine,
                     f"n_{kinds[0]}": len(idx[0]), f"n_{kinds[1]}": len(idx[1])})
    return pd.DataFrame(rows)


def pca_variance(feats: np.ndarray, components: int = 2) -> list[float]:
    """Share of the (standardised) features' variance held by each of the first principal
    components that :func:`project` draws with ``pca``."""
    pca = PCA(n_components=components).fit(StandardScaler().fit_transform(feats))
    return [float(v) for v in pca.explained_variance_ratio_]
