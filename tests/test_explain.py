"""Grad-CAM on a planted cue, region shares, Integrated Gradients; embedding domain-gap numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from fercore import embeddings as E
from fercore import explain as X


def quadrant_batch(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise images with a bright 8x8 patch in one quadrant; the label is the quadrant."""
    x = torch.rand(n, 3, 32, 32, generator=gen) * 0.3
    y = torch.randint(0, 4, (n,), generator=gen)
    for i, q in enumerate(y.tolist()):
        top, left = 4 + 16 * (q // 2), 4 + 16 * (q % 2)
        x[i, :, top:top + 8, left:left + 8] = 1.0
    return x, y


class AddCoords(nn.Module):
    """Append x/y coordinate channels, so a global-pooling CNN can tell where the patch is."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        ys = torch.linspace(-1, 1, h).view(1, 1, h, 1).expand(n, 1, h, w)
        xs = torch.linspace(-1, 1, w).view(1, 1, 1, w).expand(n, 1, h, w)
        return torch.cat([x, xs, ys], dim=1)


@pytest.fixture(scope="module")
def planted_model():
    torch.manual_seed(0)
    model = nn.Sequential(
        AddCoords(),
        nn.Conv2d(5, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1, stride=2), nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 4),
    )
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(300):
        x, y = quadrant_batch(32, gen)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def test_gradcam_mass_falls_on_the_planted_patch(planted_model):
    gen = torch.Generator().manual_seed(1)
    x, y = quadrant_batch(16, gen)
    assert (planted_model(x).argmax(1) == y).float().mean() > 0.9
    cams = X.CamExplainer(planted_model, layer_name="6", device="cpu")(x, y.tolist())
    assert cams.shape == (16, 32, 32)
    shares = []
    for cam, q in zip(cams, y.tolist(), strict=True):
        top, left = 16 * (q // 2), 16 * (q % 2)
        shares.append(cam[top:top + 16, left:left + 16].sum() / cam.sum())
    assert np.mean(shares) > 0.5, np.mean(shares)  # the quadrant is a quarter of the image


def test_integrated_gradients_also_find_the_patch(planted_model):
    pytest.importorskip("captum", reason="captum (explain extra) not installed")
    gen = torch.Generator().manual_seed(2)
    x, y = quadrant_batch(4, gen)
    maps = X.integrated_gradients(planted_model, x, y.tolist(), steps=16)
    assert maps.shape == (4, 32, 32) and maps.max() == pytest.approx(1.0)
    for m, q in zip(maps, y.tolist(), strict=True):
        top, left = 4 + 16 * (q // 2), 4 + 16 * (q % 2)
        assert m[top:top + 8, left:left + 8].sum() / m.sum() > 0.3  # patch: 6 % of the pixels


def test_target_layer_for_efficientnet_and_resnet():
    from fercore.models import create_model

    b0 = create_model("b0")
    assert X.target_layer(b0) is b0.bn2
    resnet = create_model("resnet10t")
    assert X.target_layer(resnet) is resnet.layer4[-1]
    cams = X.CamExplainer(b0, device="cpu")(torch.randn(2, 3, 64, 64))
    assert cams.shape == (2, 64, 64)


def test_region_shares_and_comparison():
    maps = np.zeros((2, 100, 100))
    maps[0, 70:80, 40:60] = 1.0  # all in the mouth region
    maps[1, 40:45, 20:30] = 1.0  # all in the eyes region
    shares = X.region_shares(maps)
    assert shares.loc[0, "mouth"] == pytest.approx(1.0) and shares.loc[1, "eyes"] == pytest.approx(1.0)
    assert np.allclose(shares.sum(axis=1), 1.0)
    rng = np.random.default_rng(0)
    real = pd.DataFrame({"eyes": rng.normal(0.4, 0.05, 40), "mouth": rng.normal(0.3, 0.05, 40)})
    synth = pd.DataFrame({"eyes": rng.normal(0.4, 0.05, 40), "mouth": rng.normal(0.5, 0.05, 40)})
    comparison = X.compare_regions(real, synth)
    assert comparison.significant() == ["mouth"]
    assert comparison.table.loc["mouth", "difference"] < 0


def test_domain_probe_and_mmd_behave():
    from fercore.uncertainty import grouped_domain_auc

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(150, 16)), rng.normal(size=(150, 16))
    far = rng.normal(size=(150, 16)) + 2.0
    labels = np.array(["real"] * 150 + ["synthetic"] * 150)
    same = grouped_domain_auc(np.concatenate([a, b]), labels)
    apart = grouped_domain_auc(np.concatenate([a, far]), labels)
    assert 0.35 < same.auc < 0.65 and same.low < 0.5 < same.high and apart.auc > 0.99
    assert E.mmd_test(a[:80], b[:80], permutations=200)["p_value"] > 0.05
    assert E.mmd_test(a[:80], far[:80], permutations=200)["p_value"] < 0.01


def test_projection_and_centroids():
    rng = np.random.default_rng(1)
    feats = np.concatenate([rng.normal(size=(30, 8)), rng.normal(size=(30, 8)) + 1.0])
    table = pd.DataFrame({"domain": ["real"] * 30 + ["synthetic"] * 30, "emotion": ["Anger", "Happiness"] * 30})
    assert E.project(feats, "pca").shape == (60, 2) and E.project(feats, "tsne").shape == (60, 2)
    distances = E.centroid_distances(feats, table)
    assert len(distances) == 2 and (distances.euclidean > 1.5).all() and distances.n_real.tolist() == [15, 15]


def test_integrated_gradients_baselines_are_what_their_names_say():
    from fercore.images import denormalize

    x = torch.randn(2, 3, 32, 32)
    black = denormalize(X.ig_baseline(x, "black"))
    assert torch.allclose(black, torch.zeros_like(black), atol=1e-6)  # RGB (0, 0, 0)
    grey = denormalize(X.ig_baseline(x, "mean"))  # zeros in normalised space: the ImageNet mean colour
    assert torch.allclose(grey[:, :, 0, 0], torch.tensor([0.485, 0.456, 0.406]).expand(2, 3), atol=1e-6)
    blurred = X.ig_baseline(x, "blur")
    assert blurred.shape == x.shape and blurred.std() < 0.5 * x.std()
    with pytest.raises(ValueError, match="baseline must be one of"):
        X.ig_baseline(x, "white")
