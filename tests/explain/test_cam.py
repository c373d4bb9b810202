"""Grad-CAM and LayerCAM on a planted cue, the layers maps are taken at, Integrated Gradients; embedding domain-gap numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from fercore.explain import cam as X
from fercore.explain import embeddings as E


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


def test_feature_layers_and_the_layer_fine_enough_for_the_regions():
    """Stages of timm networks with their map sizes; the chosen layer is the deepest whose cell is
    smaller than the smallest region, and the reference is the last stage."""
    from fercore.models import create_model

    resnet = create_model("resnet10t")
    assert X.feature_layers(resnet, 64) == [("act1", 32), ("layer1", 16), ("layer2", 8), ("layer3", 4), ("layer4", 2)]
    b0 = create_model("b0")
    assert [side for _, side in X.feature_layers(b0, 224)] == [112, 56, 28, 14, 7]
    layer, fits = X.choose_layer(b0, 224, smallest_region_px=29.0)  # an eye box of a FER2013 face at 224 px
    assert (layer.name, layer.cells, layer.cell_px, fits) == ("blocks.4", 14, 16.0, True)
    layer, fits = X.choose_layer(resnet, 64, smallest_region_px=5.8)  # the demo's 64 px faces
    assert (layer.name, layer.cell_px, fits) == ("layer1", 4.0, True)
    layer, fits = X.choose_layer(resnet, 64, smallest_region_px=1.0)  # nothing fits: the finest, and it says so
    assert (layer.name, fits) == ("act1", False)
    reference = X.reference_layer(b0, 224)
    assert (reference.name, reference.cells, reference.method) == ("bn2", 7, "gradcam")
    resnet.train()  # measuring the maps leaves the network's mode alone
    X.feature_layers(resnet, 64)
    assert resnet.training


def test_layercam_at_a_fine_layer_keeps_the_planted_patch(planted_model):
    """LayerCAM is offered beside Grad-CAM and finds the same planted cue, at the first convolution."""
    x, y = quadrant_batch(16, torch.Generator().manual_seed(1))
    cams = X.CamExplainer(planted_model, layer_name="2", device="cpu", method="layercam")(x, y.tolist())
    assert cams.shape == (16, 32, 32)
    shares = []
    for cam, q in zip(cams, y.tolist(), strict=True):
        top, left = (q // 2) * 16, (q % 2) * 16
        shares.append(cam[top:top + 16, left:left + 16].sum() / cam.sum())
    assert np.mean(shares) > 0.5
    with pytest.raises(ValueError, match="method must be one of"):
        X.CamExplainer(planted_model, layer_name="2", device="cpu", method="scorecam")


def test_domain_probe_and_mmd_behave():
    from fercore.analysis.uncertainty import grouped_domain_auc

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
    from fercore.data.images import denormalize

    x = torch.randn(2, 3, 32, 32)
    black = denormalize(X.ig_baseline(x, "black"))
    assert torch.allclose(black, torch.zeros_like(black), atol=1e-6)  # RGB (0, 0, 0)
    grey = denormalize(X.ig_baseline(x, "mean"))  # zeros in normalised space: the ImageNet mean colour
    assert torch.allclose(grey[:, :, 0, 0], torch.tensor([0.485, 0.456, 0.406]).expand(2, 3), atol=1e-6)
    blurred = X.ig_baseline(x, "blur")
    assert blurred.shape == x.shape and blurred.std() < 0.5 * x.std()
    with pytest.raises(ValueError, match="baseline must be one of"):
        X.ig_baseline(x, "white")
