"""Where the model looks: class activation maps (pytorch-grad-cam: Grad-CAM, LayerCAM), Integrated
Gradients (captum, optional), and :func:`cam_report`, which puts each map's mass into the face
regions of its own face (:mod:`fercore.faces.regions`, from the face's landmarks) and averages maps in
a canonical frame (:mod:`fercore.faces` alignment), so that averaged maps line up anatomically.

Maps are computed on the image as the model sees it (its preprocessing, its input size), at two
layers: the last convolutional stage (Grad-CAM, the reference: one cell is 32 px of the input for
EfficientNet and ResNet) and a finer stage whose cell is smaller than the smallest face region
(:func:`choose_layer`; LayerCAM by default, which is made for shallower layers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from fercore import faces, inference
from fercore.analysis import plots, sample_groups
from fercore.core import labels
from fercore.core.audit import pass_kind
from fercore.core.files import atomic_open, write_csv, write_json
from fercore.core.labels import CLASSES
from fercore.core.progress import progress_bar as tqdm
from fercore.core.runtime import pick_device
from fercore.data import IMAGENET_MEAN, IMAGENET_STD, Preprocess, load_rgb
from fercore.faces import regions
from fercore.models import Classifier

#: The CAM methods :class:`CamExplainer` offers (pytorch-grad-cam classes).
CAM_METHODS = ("gradcam", "layercam")


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


def target_layer_name(net: nn.Module) -> str:
    """The name of :func:`target_layer` inside ``net``."""
    layer = target_layer(net)
    return next(name for name, module in net.named_modules() if module is layer)


@dataclass(frozen=True)
class CamLayer:
    """A layer a CAM is taken at: its name, the CAM method, and one map cell in input pixels."""

    name: str
    method: str
    cells: int  # the map's side in cells
    cell_px: float  # input pixels per cell (input size / cells)

    def describe(self) -> str:
        return f"{'Grad-CAM' if self.method == 'gradcam' else 'LayerCAM'} at `{self.name}` ({self.cells} x {self.cells} cells of {self.cell_px:.1f} px)"


def map_sides(net: nn.Module, names: Sequence[str], image_size: int) -> dict[str, int]:
    """The side (cells) of each named module's output map for a square ``image_size`` input, from one dummy forward pass."""
    sides: dict[str, int] = {}
    hooks = [net.get_submodule(name).register_forward_hook(
        lambda _m, _i, out, name=name: sides.__setitem__(name, int(out.shape[-1]))) for name in names]
    training = net.training
    try:
        device = next(net.parameters()).device
        with torch.inference_mode(), pass_kind("cam-layers"):
            net.eval()(torch.zeros(1, 3, image_size, image_size, device=device))
    finally:
        net.train(training)
        for hook in hooks:
            hook.remove()
    return sides


def feature_layers(net: nn.Module, image_size: int) -> list[tuple[str, int]]:
    """(module name, map side in cells) of the network's feature stages, shallow to deep: timm's
    ``feature_info`` where the network has it, else the children of its ``blocks`` / ``stages`` /
    ``layer1-4``; only stages with a spatial output, one per map size (the deepest)."""
    info = getattr(net, "feature_info", None)
    if isinstance(info, list) and info and isinstance(info[0], dict) and "module" in info[0]:
        names = [d["module"] for d in info]
    else:
        names = [name for name, _ in net.named_modules()
                 if name.count(".") == 1 and name.split(".")[0] in ("blocks", "stages", "layers", "features")]
        names += [f"layer{i}" for i in range(1, 5) if hasattr(net, f"layer{i}")]
    sides = map_sides(net, names, image_size)
    deepest: dict[int, str] = {}
    for name in names:  # in network order: a later module of the same size replaces an earlier one
        if name in sides:
            deepest[sides[name]] = name
    return sorted(((name, side) for side, name in deepest.items()), key=lambda item: -item[1])


def choose_layer(net: nn.Module, image_size: int, smallest_region_px: float, method: str = "layercam") -> tuple[CamLayer, bool]:
    """The deepest feature stage whose map cell (``image_size`` / cells) is smaller than
    ``smallest_region_px`` (so a region holds at least one whole cell), and whether one fits; when
    none does, the finest stage."""
    layers = feature_layers(net, image_size)
    if not layers:
        raise ValueError(f"no feature stages found in {type(net).__name__}; pass the layer name explicitly")
    fitting = [(name, side) for name, side in layers if image_size / side < smallest_region_px]
    name, side = fitting[-1] if fitting else layers[0]
    return CamLayer(name, method, side, image_size / side), bool(fitting)


def reference_layer(net: nn.Module, image_size: int) -> CamLayer:
    """The last convolutional stage (:func:`target_layer`), for Grad-CAM."""
    name = target_layer_name(net)
    side = map_sides(net, [name], image_size)[name]
    return CamLayer(name, "gradcam", side, image_size / side)


class CamExplainer:
    """Build once, call many: CAM maps (N, H, W) at the input size, in [0, 1], for given target classes.

    Works on its own copy of the network (in eval mode, on ``device``), so the caller's model is
    never changed. ``layer_name``: the module to explain (``net.get_submodule``; default
    :func:`target_layer`). ``classes``: the classes a default target (the prediction) is chosen
    among; default the model's trained classes (:func:`fercore.core.labels.class_set`). ``method``:
    ``gradcam`` (Selvaraju et al. 2017) or ``layercam`` (Jiang et al. 2021: element-wise positive
    gradients, made for shallower layers)."""

    def __init__(self, model: Classifier | nn.Module, layer_name: str | None = None, classes: Sequence[str] | None = None,
                 device: str | torch.device = "auto", method: str = "gradcam"):
        import copy

        from pytorch_grad_cam import GradCAM, LayerCAM

        if method not in CAM_METHODS:
            raise ValueError(f"method must be one of {CAM_METHODS}, not {method!r}")
        net, trained = (model.net, model.trained_classes) if isinstance(model, Classifier) else (model, None)
        self.device = pick_device(device)
        self.net = copy.deepcopy(net).to(self.device).eval()
        self.classes = labels.class_set(classes, within=trained)
        layer = self.net.get_submodule(layer_name) if layer_name else target_layer(self.net)
        self.method = method
        self.cam = (GradCAM if method == "gradcam" else LayerCAM)(model=self.net, target_layers=[layer])

    def __call__(self, images: torch.Tensor, targets: Sequence[int] | None = None) -> np.ndarray:
        """CAMs for ``targets`` (canonical indices; default: the restricted prediction)."""
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

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


def overlay(image: np.ndarray, cam: np.ndarray, weight: float = 0.55) -> np.ndarray:
    """CAM heat map over an RGB float image in [0, 1] (pytorch-grad-cam's overlay, RGB order)."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    return show_cam_on_image(np.clip(image, 0, 1).astype(np.float32), cam, use_rgb=True, image_weight=weight)


def _shown(image, domain: str, transforms: Mapping[str, inference.ImageTransform] | None):
    """The image as the model is shown it: through its domain's transform, if any."""
    transform = (transforms or {}).get(domain)
    return transform(image) if transform is not None else image


@dataclass
class CamReport:
    """What :func:`cam_report` found: a row per explained image, the two layers, canonical mean maps."""

    table: pd.DataFrame  # path, domain, emotion, pred, correct, group, width, height, iod_px, excluded, <region shares>
    reference: CamLayer  # last stage, Grad-CAM: the reference panel
    fine: CamLayer  # the finer stage the region shares come from
    fits: bool  # whether the fine layer's cell is smaller than the smallest region
    smallest_region_px: float  # median smallest-region side (an eye box) in input pixels, over faces with landmarks
    input_px: int  # the model's input size
    mean_maps: dict[tuple[str, str, str], np.ndarray]  # (fine | reference, domain, emotion) -> mean map in the canonical frame
    figures: list[Path]

    @property
    def used(self) -> pd.DataFrame:
        """The rows in the region statistics (landmarks found and plausible, map not all zero)."""
        return self.table[self.table["excluded"] == ""]


def cam_report(
    model: Classifier,
    samples: pd.DataFrame,
    out: str | Path,
    *,
    classes: Sequence[str] | Mapping[str, Sequence[str]],
    predictions: inference.Inference | None = None,
    transforms: Mapping[str, inference.ImageTransform] | None = None,
    detector: Any = None,
    face_cache: str | Path | None = None,
    fine_layer: CamLayer | None = None,
    method: str = "layercam",
    figures: bool = True,
    per_class: int = 4,
    batch_size: int = 16,
    device: str | torch.device = "auto",
    progress: bool = True,
) -> CamReport:
    """Class activation maps for every image in ``samples`` (``path``, ``label``; ``domain`` optional),
    for its true class, put into the regions of each image's own face.

    ``classes`` is the class set of the data (one list, or ``{dataset: list}`` keyed by the
    ``dataset`` column); right / wrong comes from the model's prediction restricted to
    ``labels.class_set(classes, within=<trained classes>)``, as in ``predict``, taken from
    ``predictions`` (an :class:`~fercore.inference.Inference` holding these images, e.g. the
    whole test set's) or else from one :func:`fercore.inference.infer` pass on ``samples``.
    ``transforms`` (``{domain: transform}``, e.g. the synthetic faces matched to a real set's
    format) changes those domains' images first; ``predictions`` must then come from the same transform.

    Each image, as shown to the model, gets five landmarks from ``detector`` (default MTCNN;
    detections cached by content in ``face_cache``) and two maps: Grad-CAM at the last stage
    (:func:`reference_layer`) and ``method`` at ``fine_layer`` (default :func:`choose_layer` for the
    median smallest region of these faces). The fine map's mass is shared out over the face's
    regions (:func:`fercore.faces.regions.region_shares`); images without (plausible) landmarks or with
    an all-zero map are kept in the table with the reason in ``excluded`` and left out of shares
    and means. Maps of used images are warped into :class:`fercore.faces.CanonicalFrame` with the
    face's eye alignment and averaged per domain and emotion.

    Writes under ``out``: ``cam_regions.csv``, ``layers.json``, ``mean_maps.npz`` and, with
    ``figures``, ``figures/cam_mean.png`` (canonical mean maps with the canonical regions drawn)
    and ``figures/cam_<domain>_<correct|incorrect>.png`` (up to ``per_class`` aligned faces per class).
    """
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
    table["group"] = sample_groups(table)

    images = [_shown(load_rgb(p), d, transforms) for p, d in zip(table["path"], table["domain"], strict=True)]
    sizes = [im.size for im in images]
    found = faces.detect_faces([np.asarray(im.convert("RGB")) for im in images], detector or faces.make_face_detector("mtcnn"),
                               cache_dir=face_cache, progress=False)
    marks = [d.landmarks for d in found]
    valid = []
    for m, size in zip(marks, sizes, strict=True):
        try:
            valid.append(regions.smallest_region_px(m, size, model.image_size) if m is not None else None)
        except regions.ImplausibleLandmarks:
            valid.append(None)
    known = [v for v in valid if v is not None]
    smallest = float(np.median(known)) if known else float("nan")
    reference = reference_layer(model.net, model.image_size)
    if fine_layer is None:
        fine_layer, fits = choose_layer(model.net, model.image_size, smallest if known else 0.0, method)
    else:
        fits = bool(known) and fine_layer.cell_px < smallest

    preprocess = Preprocess(model.image_size)
    explainers = {"reference": CamExplainer(model, reference.name, device=device, method=reference.method),
                  "fine": CamExplainer(model, fine_layer.name, device=device, method=fine_layer.method)}
    maps: dict[str, list[np.ndarray]] = {"reference": [], "fine": []}
    for start in tqdm(range(0, len(table), batch_size), desc="cam", unit="batch", disable=not progress):
        x = torch.stack([preprocess(im) for im in images[start:start + batch_size]])
        targets = table["label"].iloc[start:start + batch_size].astype(int).tolist()
        for name, explainer in explainers.items():
            maps[name].append(explainer(x, targets))
    fine_maps, reference_maps = np.concatenate(maps["fine"]), np.concatenate(maps["reference"])

    shares = regions.region_shares(fine_maps, marks, sizes)
    table["width"], table["height"] = [s[0] for s in sizes], [s[1] for s in sizes]
    table["iod_px"] = [float(np.linalg.norm(m[1] - m[0])) if m is not None else np.nan for m in marks]
    table["zero_reference"] = reference_maps.reshape(len(table), -1).max(axis=1) <= 0
    table = pd.concat([table, shares], axis=1)

    frame = faces.CanonicalFrame()
    aligned: dict[str, dict[int, np.ndarray]] = {"fine": {}, "reference": {}}
    matrices: dict[int, np.ndarray] = {}
    for i in np.flatnonzero(table["excluded"].to_numpy() == ""):
        matrices[i] = faces.alignment_matrix(marks[i], frame)
        aligned["fine"][i] = faces.align_map(fine_maps[i], matrices[i], sizes[i], frame)
        aligned["reference"][i] = faces.align_map(reference_maps[i], matrices[i], sizes[i], frame)
    mean_maps = {}
    used = table[table["excluded"] == ""]
    for (domain, emotion), rows in used.groupby(["domain", "emotion"]):
        for kind in ("fine", "reference"):
            mean_maps[kind, str(domain), str(emotion)] = np.mean([aligned[kind][i] for i in rows.index], axis=0)

    out.mkdir(parents=True, exist_ok=True)
    keep = [c for c in ("path", "domain", "dataset", "emotion", "pred", "correct", "group", "width", "height", "iod_px",
                        "zero_reference", "excluded", *regions.REGIONS) if c in table.columns]
    write_csv(out / "cam_regions.csv", table[keep])
    write_json(out / "layers.json", {"reference": asdict(reference), "fine": asdict(fine_layer), "fits": fits,
                                     "smallest_region_px": smallest, "input_px": model.image_size,
                                     "canonical_frame": asdict(frame)})
    with atomic_open(out / "mean_maps.npz", "wb") as handle:
        np.savez_compressed(handle, **{"|".join(key): value.astype(np.float32) for key, value in mean_maps.items()})
    written: list[Path] = []
    if figures:
        domains = sorted(table["domain"].unique())
        rows = {f"{d} ({kind})": {e: mean_maps[kind, d, e] for e in CLASSES if (kind, d, e) in mean_maps}
                for kind in ("fine", "reference") for d in domains}
        rows = {k: v for k, v in rows.items() if v}
        if rows:  # none when no face had usable landmarks
            plots.cam_canonical(rows, canonical_labels(frame), out / "figures" / "cam_mean")
            written.append(out / "figures" / "cam_mean.png")
        for domain in domains:
            for outcome, flag in (("correct", True), ("incorrect", False)):
                chosen = used[(used["domain"] == domain) & (used["correct"] == flag)].groupby("emotion").head(per_class)
                if len(chosen):
                    shown = [overlay(faces.align_image(images[i], matrices[i], frame).astype(np.float32) / 255, aligned["fine"][i])
                             for i in chosen.index]
                    plots.gallery(shown, [f"{e} -> {p}" for e, p in zip(chosen["emotion"], chosen["pred"], strict=True)],
                                  out / "figures" / f"cam_{domain}_{outcome}")
                    written.append(out / "figures" / f"cam_{domain}_{outcome}.png")
    return CamReport(table, reference, fine_layer, fits, smallest, model.image_size, mean_maps, written)


def canonical_labels(frame: Any = None) -> np.ndarray:
    """The face regions of the canonical frame's typical face (its template landmarks), as a label map."""
    frame = frame or faces.CanonicalFrame()
    return regions.label_map(frame.template(), (frame.width, frame.height))
