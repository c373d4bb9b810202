"""Where the model looks: Grad-CAM (pytorch-grad-cam), Integrated Gradients (captum, optional),
and the share of attribution mass in the eye, brow, nose and mouth regions.

Regions use a fixed canonical layout for aligned, square face crops (128 / 224 px, face
filling the frame, eyes about 40 % down), given as fractions of width and height, so the
same numbers apply at any size. Pass your own ``regions`` for other alignments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats
from torch import nn

from . import inference, labels
from .fileio import write_csv
from .models import Classifier

#: Canonical face regions (x0, y0, x1, y1) as fractions of the crop; disjoint by construction.
FACE_REGIONS: dict[str, tuple[float, float, float, float]] = {
    "brows": (0.12, 0.20, 0.88, 0.33),
    "eyes": (0.12, 0.33, 0.88, 0.47),
    "nose": (0.33, 0.47, 0.67, 0.65),
    "mouth": (0.22, 0.65, 0.78, 0.86),
}


def target_layer(model: nn.Module) -> nn.Module:
    """Grad-CAM layer: EfficientNet's last BN of the head (``bn2``, after ``conv_head``);
    ResNet's last block; otherwise the last module with parameters before the classifier."""
    if hasattr(model, "conv_head") and hasattr(model, "bn2"):
        return model.bn2
    if hasattr(model, "layer4"):
        return model.layer4[-1]
    if hasattr(model, "stages"):
        return model.stages[-1]
    raise ValueError(f"no known Grad-CAM layer for {type(model).__name__}; pass target_layer= explicitly")


class CamExplainer:
    """Build once, call many: Grad-CAM maps (N, H, W) in [0, 1] for given target classes.

    Works on its own copy of the network (in eval mode, on ``device``), so the caller's model is
    never changed. ``layer_name``: the module to explain (``net.get_submodule``; default
    :func:`target_layer`). ``classes``: the classes a default target (the prediction) is chosen
    among; default the model's trained classes (:func:`fercore.labels.class_set`)."""

    def __init__(self, model: Classifier | nn.Module, layer_name: str | None = None, classes: Sequence[str] | None = None,
                 device: str | torch.device = "auto"):
        import copy

        from pytorch_grad_cam import GradCAM

        from .runtime import pick_device

        net, trained = (model.net, model.trained_classes) if isinstance(model, Classifier) else (model, None)
        self.device = pick_device(device)
        self.net = copy.deepcopy(net).to(self.device).eval()
        self.classes = labels.class_set(classes, within=trained)
        layer = self.net.get_submodule(layer_name) if layer_name else target_layer(self.net)
        self.cam = GradCAM(model=self.net, target_layers=[layer])

    def __call__(self, images: torch.Tensor, targets: Sequence[int] | None = None) -> np.ndarray:
        """CAMs for ``targets`` (canonical indices; default: the restricted prediction)."""
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        from .inference import pass_kind

        images = images.to(self.device)
        with pass_kind("grad-cam"):
            if targets is None:
                with torch.no_grad():
                    targets = labels.predict_restricted(self.net(images), self.classes).tolist()
            return self.cam(input_tensor=images, targets=[ClassifierOutputTarget(int(t)) for t in targets])


IG_BASELINES = ("mean", "black", "blur")


def ig_baseline(images: torch.Tensor, kind: str = "mean") -> torch.Tensor:
    """Integrated-Gradients baseline for normalised images (ImageNet mean/std):

    * ``mean``: all zeros in normalised space, i.e. the ImageNet-mean grey (RGB 124, 116, 104);
    * ``black``: RGB (0, 0, 0) normalised, i.e. -mean/std per channel;
    * ``blur``: the image under a strong Gaussian blur (sigma 1/8 of its size): keeps colour and
      layout, removes the detail an expression is made of.
    """
    from .images import IMAGENET_MEAN, IMAGENET_STD

    if kind == "mean":
        return torch.zeros_like(images)
    if kind == "black":
        mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        return (-mean / std).expand_as(images).clone()
    if kind == "blur":
        from torchvision.transforms.functional import gaussian_blur

        sigma = max(1.0, images.shape[-1] / 8)
        size = int(2 * round(3 * sigma) + 1)
        return gaussian_blur(images, [size, size], [sigma, sigma])
    raise ValueError(f"baseline must be one of {IG_BASELINES}, not {kind!r}")


def integrated_gradients(model: nn.Module, images: torch.Tensor, targets: Sequence[int], steps: int = 32,
                         baseline: str = "mean") -> np.ndarray:
    """Integrated Gradients (captum) from a ``baseline`` (:func:`ig_baseline`: ``mean`` grey,
    the default; ``black``; ``blur``); returns (N, H, W) absolute attributions summed over
    channels and scaled to [0, 1] per image. Needs ``captum``."""
    try:
        from captum.attr import IntegratedGradients
    except ImportError:
        raise ImportError("Integrated Gradients needs captum: pip install 'fercore[explain]' (or pip install captum)") from None
    model = model.eval()
    device = next(model.parameters()).device
    images = images.to(device).requires_grad_(True)
    attributions = IntegratedGradients(model).attribute(
        images, baselines=ig_baseline(images.detach(), baseline), target=torch.as_tensor(list(targets), device=device), n_steps=steps,
        internal_batch_size=max(1, len(images)),
    )
    maps = attributions.abs().sum(dim=1).detach().cpu().numpy()
    peak = maps.reshape(len(maps), -1).max(axis=1)[:, None, None]
    return np.divide(maps, peak, out=np.zeros_like(maps), where=peak > 0)


def region_masks(height: int, width: int, regions: dict[str, tuple[float, float, float, float]] | None = None) -> dict[str, np.ndarray]:
    """Boolean masks of the canonical regions at a given size."""
    masks = {}
    for name, (x0, y0, x1, y1) in (regions or FACE_REGIONS).items():
        mask = np.zeros((height, width), dtype=bool)
        mask[int(round(y0 * height)): int(round(y1 * height)), int(round(x0 * width)): int(round(x1 * width))] = True
        masks[name] = mask
    return masks


def region_shares(maps: np.ndarray, regions: dict[str, tuple[float, float, float, float]] | None = None) -> pd.DataFrame:
    """Share of each map's total mass inside each region (rows: maps; columns: regions + ``other``)."""
    maps = np.asarray(maps, dtype=np.float64)
    masks = region_masks(maps.shape[1], maps.shape[2], regions)
    total = maps.sum(axis=(1, 2))
    total = np.where(total > 0, total, 1.0)
    shares = {name: (maps * mask).sum(axis=(1, 2)) / total for name, mask in masks.items()}
    frame = pd.DataFrame(shares)
    frame["other"] = 1.0 - frame.sum(axis=1)
    return frame


@dataclass
class RegionComparison:
    """Real vs synthetic region shares: means, difference and a Mann-Whitney U test per region."""

    table: pd.DataFrame

    def significant(self, alpha: float = 0.05) -> list[str]:
        return self.table.index[self.table["p_value_holm"] < alpha].tolist()


def compare_regions(shares_a: pd.DataFrame, shares_b: pd.DataFrame, names: tuple[str, str] = ("real", "synthetic")) -> RegionComparison:
    """Two-sided Mann-Whitney U per region, Holm-corrected over the regions."""
    rows = []
    for region in shares_a.columns:
        a, b = shares_a[region].to_numpy(), shares_b[region].to_numpy()
        test = stats.mannwhitneyu(a, b, alternative="two-sided")
        rows.append({"region": region, f"mean_{names[0]}": a.mean(), f"mean_{names[1]}": b.mean(),
                     "difference": a.mean() - b.mean(), "u_statistic": float(test.statistic), "p_value": float(test.pvalue)})
    table = pd.DataFrame(rows).set_index("region")
    order = np.argsort(table["p_value"].to_numpy())
    m = len(table)
    holm = np.empty(m)
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * table["p_value"].iloc[idx]))
        holm[idx] = running
    table["p_value_holm"] = holm
    return RegionComparison(table)


def mean_maps(maps: np.ndarray, table: pd.DataFrame, by: Sequence[str] = ("domain", "emotion")) -> dict[tuple, np.ndarray]:
    """Mean map per group (e.g. per class per domain)."""
    table = table.reset_index(drop=True)
    return {key if isinstance(key, tuple) else (key,): maps[idx.to_numpy()].mean(axis=0)
            for key, idx in table.groupby(list(by)).groups.items()}


def overlay(image: np.ndarray, cam: np.ndarray, weight: float = 0.55) -> np.ndarray:
    """CAM heat map over an RGB float image in [0, 1] (pytorch-grad-cam's overlay, RGB order)."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    return show_cam_on_image(np.clip(image, 0, 1).astype(np.float32), cam, use_rgb=True, image_weight=weight)


def _shown(image, domain: str, transforms: Mapping[str, inference.ImageTransform] | None):
    """The image as the model is shown it: through its domain's transform, if any."""
    transform = (transforms or {}).get(domain)
    return transform(image) if transform is not None else image


def cam_report(
    model: Classifier,
    samples: pd.DataFrame,
    out: str | Path,
    *,
    classes: Sequence[str] | Mapping[str, Sequence[str]],
    predictions: inference.Inference | None = None,
    transforms: Mapping[str, inference.ImageTransform] | None = None,
    per_class: int = 4,
    batch_size: int = 16,
    device: str | torch.device = "auto",
    progress: bool = True,
) -> dict[str, Any]:
    """Grad-CAM for every image in ``samples`` (``path``, ``label``; ``domain`` optional), for its true class.

    ``classes`` is the class set of the data (one list, or ``{dataset: list}`` keyed by the
    ``dataset`` column); right / wrong comes from the model's prediction restricted to
    ``labels.class_set(classes, within=<trained classes>)``, as in ``predict``, taken from
    ``predictions`` (an :class:`~fercore.inference.Inference` holding these images, e.g. the
    whole test set's) or else from one :func:`fercore.inference.infer` pass on ``samples``.
    ``transforms`` (``{domain: transform}``, e.g. the synthetic faces matched to a real set's
    format) changes those domains' images before Grad-CAM; ``predictions`` must then come from
    the same transform.

    Writes under ``out``: ``cam_regions.csv`` (per image: region shares, prediction),
    ``region_comparison.csv`` (when there are two domains: means, difference, Mann-Whitney U,
    Holm-corrected p), ``figures/cam_mean.png`` (mean CAM per domain x emotion) and
    ``figures/cam_<domain>_<correct|incorrect>.png`` overlay galleries (up to ``per_class`` per class).
    """
    from .progress import progress_bar as tqdm  # a bar in a terminal, log lines in a log file

    from . import plots
    from .images import Preprocess, denormalize, load_rgb
    from .labels import CLASSES

    out = Path(out)
    table = samples.reset_index(drop=True).copy()
    if "domain" not in table.columns:
        table["domain"] = "all"
    table["emotion"] = [CLASSES[int(i)] for i in table["label"]]
    trained = model.trained_classes
    if isinstance(classes, Mapping):
        if "dataset" not in table.columns:
            raise ValueError("classes given per data set need a 'dataset' column in samples")
        row_classes = [labels.class_set(classes[d], within=trained) for d in table["dataset"]]
    else:
        row_classes = [labels.class_set(classes, within=trained)] * len(table)
    inside = np.array([e in c for e, c in zip(table["emotion"], row_classes, strict=True)], dtype=bool)
    if not inside.all():  # images of a class outside the scored set cannot be right or wrong
        table = table[inside].reset_index(drop=True)
        row_classes = [c for c, keep in zip(row_classes, inside, strict=True) if keep]
    scored = (predictions if predictions is not None else inference.infer(model, table, device=device, progress=progress))
    logits = scored.subset(table["path"].astype(str).tolist()).logits
    table["pred"] = [CLASSES[int(labels.predict_restricted(logits[i: i + 1], row_classes[i])[0])] for i in range(len(table))]
    table["correct"] = table["pred"] == table["emotion"]
    preprocess = Preprocess(model.image_size)
    explainer = CamExplainer(model, device=device)
    cams, shown = [], []
    for start in tqdm(range(0, len(table), batch_size), desc="grad-cam", unit="batch", disable=not progress):
        rows = table.iloc[start:start + batch_size]
        x = torch.stack([preprocess(_shown(load_rgb(p), d, transforms)) for p, d in zip(rows["path"], rows["domain"], strict=True)])
        cams.append(explainer(x, rows["label"].astype(int).tolist()))
        shown.extend(denormalize(x).permute(0, 2, 3, 1).numpy())
    maps = np.concatenate(cams)
    shares = region_shares(maps)
    regions = pd.concat([table[["path", "domain", "emotion", "pred", "correct"]], shares], axis=1)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "cam_regions.csv", regions)
    result: dict[str, Any] = {"images": len(table), "mean_shares": shares.mean().to_dict()}
    domains = sorted(table["domain"].unique())
    if len(domains) == 2:
        comparison = compare_regions(shares[table["domain"] == domains[0]].reset_index(drop=True),
                                     shares[table["domain"] == domains[1]].reset_index(drop=True), names=tuple(domains))
        write_csv(out / "region_comparison.csv", comparison.table.reset_index())
        result["significant_regions"] = comparison.significant()
    plots.cam_grid(mean_maps(maps, table), out / "figures" / "cam_mean")
    for domain in domains:
        for outcome, flag in (("correct", True), ("incorrect", False)):
            chosen = table[(table["domain"] == domain) & (table["correct"] == flag)].groupby("emotion").head(per_class)
            if len(chosen):
                plots.gallery([overlay(shown[i], maps[i]) for i in chosen.index],
                              [f"{e} -> {p}" for e, p in zip(chosen["emotion"], chosen["pred"], strict=True)],
                              out / "figures" / f"cam_{domain}_{outcome}")
    return result
