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

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from pytorch_grad_cam import GradCAM, LayerCAM
from pytorch_grad_cam.utils.image import show_cam_on_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn
from torchvision.transforms.functional import gaussian_blur

from fercore import faces, inference
from fercore.analysis import plots, sample_groups
from fercore.core import labels
from fercore.core.audit import pass_kind
from fercore.core.files import atomic_open, write_csv, write_json
from fercore.core.labels import CLASSES
from fercore.core.progress import progress_bar as tqdm
from fercore.core.runtime import pick_device
from fercore.data import IMAGENET_MEAN, IMAGENET_STD, InputPipeline, load_rgb
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


#: What pytorch-grad-cam calls on each image's model output (a 1-D tensor of logits) to get the score explained.
CamTarget = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class RestrictedTarget:
    """A pytorch-grad-cam target (like its ``ClassifierOutputTarget``): the logit of class ``index``
    (canonical) among ``classes``, through :func:`fercore.core.labels.restrict_logits`, the one
    restriction; ``index=None`` takes the class predicted within ``classes`` from the same output,
    so no forward pass is spent finding it."""

    classes: tuple[str, ...]
    index: int | None = None

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        restricted = labels.restrict_logits(output, self.classes)
        if self.index is None:
            column = restricted.argmax(-1, keepdim=True)
        else:
            column = torch.full((*restricted.shape[:-1], 1), labels.class_indices(self.classes).index(int(self.index)),
                                device=restricted.device)
        return restricted.gather(-1, column).squeeze(-1)


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
        if method not in CAM_METHODS:
            raise ValueError(f"method must be one of {CAM_METHODS}, not {method!r}")
        net, trained = (model.net, model.trained_classes) if isinstance(model, Classifier) else (model, None)
        self.device = pick_device(device)
        self.net = copy.deepcopy(net).to(self.device).eval()
        self.classes = labels.class_set(classes, within=trained)
        layer = self.net.get_submodule(layer_name) if layer_name else target_layer(self.net)
        self.method = method
        self.cam = (GradCAM if method == "gradcam" else LayerCAM)(model=self.net, target_layers=[layer])

    def __call__(self, images: torch.Tensor, targets: Sequence[int | CamTarget] | None = None) -> np.ndarray:
        """CAMs for ``targets``: per image a canonical class index (its logit), a target object
        (e.g. :class:`RestrictedTarget`), or by default the prediction restricted to ``classes``,
        read off the CAM's own forward pass."""
        images = images.to(self.device)
        if targets is None:
            targets = [RestrictedTarget(tuple(self.classes))] * len(images)
        chosen = [ClassifierOutputTarget(int(t)) if isinstance(t, (int, np.integer)) else t for t in targets]
        with pass_kind("grad-cam"):
            return self.cam(input_tensor=images, targets=chosen)


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
    table, row_classes = _scored_table(model, samples, classes, predictions, device, progress)
    images, marks, region_px = _shown_faces(table, transforms, detector, face_cache, model.image_size)
    sizes = [im.size for im in images]
    known = [v for v in region_px if v is not None]
    smallest = float(np.median(known)) if known else float("nan")
    reference = reference_layer(model.net, model.image_size)
    if fine_layer is None:
        fine_layer, fits = choose_layer(model.net, model.image_size, smallest if known else 0.0, method)
    else:
        fits = bool(known) and fine_layer.cell_px < smallest
    targets = [RestrictedTarget(tuple(c), int(label)) for c, label in zip(row_classes, table["label"], strict=True)]
    maps = _cam_maps(model, table, targets, {"reference": reference, "fine": fine_layer}, transforms,
                     batch_size=batch_size, device=device, progress=progress)

    shares = regions.region_shares(maps["fine"], marks, sizes)
    table["width"], table["height"] = [s[0] for s in sizes], [s[1] for s in sizes]
    table["iod_px"] = [float(np.linalg.norm(m[1] - m[0])) if m is not None else np.nan for m in marks]
    table["zero_reference"] = maps["reference"].reshape(len(table), -1).max(axis=1) <= 0
    table = pd.concat([table, shares], axis=1)

    frame = faces.CanonicalFrame()
    matrices, aligned, mean_maps = _aligned_maps(table, marks, sizes, maps, frame)
    layers = {"reference": asdict(reference), "fine": asdict(fine_layer), "fits": fits, "smallest_region_px": smallest,
              "input_px": model.image_size, "canonical_frame": asdict(frame)}
    _write_report(out, table, layers, mean_maps)
    written = _figures(out, table, images, matrices, aligned["fine"], mean_maps, frame, per_class) if figures else []
    return CamReport(table, reference, fine_layer, fits, smallest, model.image_size, mean_maps, written)


def _scored_table(model: Classifier, samples: pd.DataFrame, classes: Sequence[str] | Mapping[str, Sequence[str]],
                  predictions: inference.Inference | None, device: str | torch.device,
                  progress: bool) -> tuple[pd.DataFrame, list[list[str]]]:
    """The rows to explain with each one's class set, emotion and restricted prediction (right /
    wrong, group), from ``predictions`` or one inference pass; rows of a class outside their set dropped."""
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
    return table, row_classes


def _shown_faces(table: pd.DataFrame, transforms: Mapping[str, inference.ImageTransform] | None, detector: Any,
                 face_cache: str | Path | None, image_size: int) -> tuple[list[Image.Image], list[np.ndarray | None], list[float | None]]:
    """Each image as shown to the model, its face's landmarks (``detector``, default MTCNN) and its
    smallest region's side in input pixels (None without plausible landmarks)."""
    images = [_shown(load_rgb(p), d, transforms) for p, d in zip(table["path"], table["domain"], strict=True)]
    found = faces.detect_faces([np.asarray(im.convert("RGB")) for im in images], detector or faces.make_face_detector("mtcnn"),
                               cache_dir=face_cache, progress=False)
    marks = [d.landmarks for d in found]
    region_px: list[float | None] = []
    for m, image in zip(marks, images, strict=True):
        try:
            region_px.append(regions.smallest_region_px(m, image.size, image_size) if m is not None else None)
        except regions.ImplausibleLandmarks:
            region_px.append(None)
    return images, marks, region_px


def _cam_inputs(table: pd.DataFrame, transforms: Mapping[str, inference.ImageTransform] | None, pipeline: InputPipeline,
               *, batch_size: int, device: str | torch.device, progress: bool) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """(row numbers, model input) batches in table order, ``batch_size`` rows each, from the inference
    data path (:func:`fercore.inference.image_batches`). When domains go through different
    transforms, each batch is put together from one pass per transform (the same rows as one pass:
    the maps do not depend on how a set is split into batches)."""
    paths = table["path"].astype(str).to_numpy()
    chosen = [(transforms or {}).get(d) for d in table["domain"]]
    if all(t is None for t in chosen):
        for x, index, _errors in inference.image_batches(list(paths), pipeline, batch_size=batch_size, device=device,
                                                         progress=progress):
            yield index.numpy(), x
        return
    for start in tqdm(range(0, len(table), batch_size), desc="cam inputs", unit="batch", disable=not progress):
        rows = np.arange(start, min(start + batch_size, len(table)))
        parts, order = [], []
        for transform in dict.fromkeys(chosen[i] for i in rows):
            members = [i for i in rows if chosen[i] is transform]
            ((x, _index, _errors),) = inference.image_batches(list(paths[members]), pipeline, transform=transform,
                                                              batch_size=len(members), workers=0, device=device)
            parts.append(x)
            order += members
        yield rows, torch.cat(parts)[np.argsort(order, kind="stable")]


def _cam_maps(model: Classifier, table: pd.DataFrame, targets: Sequence[CamTarget], layers: Mapping[str, CamLayer],
              transforms: Mapping[str, inference.ImageTransform] | None, *, batch_size: int, device: str | torch.device,
              progress: bool) -> dict[str, np.ndarray]:
    """Each layer's maps (N, S, S), one per row for its target, on the model's exact preprocessing
    of each image through its domain's transform (:func:`_cam_inputs`)."""
    explainers = {name: CamExplainer(model, layer.name, device=device, method=layer.method) for name, layer in layers.items()}
    pipeline = InputPipeline(mode="exact", image_size=model.image_size)
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {name: [] for name in layers}
    for rows, x in _cam_inputs(table, transforms, pipeline, batch_size=batch_size, device=device, progress=progress):
        for name, explainer in explainers.items():
            parts[name].append((rows, explainer(x, [targets[i] for i in rows])))
    maps = {}
    for name, found in parts.items():
        maps[name] = np.empty((len(table), *found[0][1].shape[1:]), dtype=found[0][1].dtype) if found else np.zeros((0, 0, 0))
        for rows, values in found:
            maps[name][rows] = values
    return maps


def _aligned_maps(table: pd.DataFrame, marks: Sequence[np.ndarray | None], sizes: Sequence[tuple[int, int]],
                  maps: Mapping[str, np.ndarray], frame: faces.CanonicalFrame
                  ) -> tuple[dict[int, np.ndarray], dict[str, dict[int, np.ndarray]], dict[tuple[str, str, str], np.ndarray]]:
    """The used rows' alignment matrices and maps warped into ``frame`` (by eye alignment), and
    the mean aligned map per (layer, domain, emotion)."""
    aligned: dict[str, dict[int, np.ndarray]] = {"fine": {}, "reference": {}}
    matrices: dict[int, np.ndarray] = {}
    for i in np.flatnonzero(table["excluded"].to_numpy() == ""):
        matrices[i] = faces.alignment_matrix(marks[i], frame)
        aligned["fine"][i] = faces.align_map(maps["fine"][i], matrices[i], sizes[i], frame)
        aligned["reference"][i] = faces.align_map(maps["reference"][i], matrices[i], sizes[i], frame)
    mean_maps = {}
    used = table[table["excluded"] == ""]
    for (domain, emotion), rows in used.groupby(["domain", "emotion"]):
        for kind in ("fine", "reference"):
            mean_maps[kind, str(domain), str(emotion)] = np.mean([aligned[kind][i] for i in rows.index], axis=0)
    return matrices, aligned, mean_maps


def _write_report(out: Path, table: pd.DataFrame, layers: Mapping[str, Any],
                  mean_maps: Mapping[tuple[str, str, str], np.ndarray]) -> None:
    """``cam_regions.csv``, ``layers.json`` and ``mean_maps.npz`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    keep = [c for c in ("path", "domain", "dataset", "emotion", "pred", "correct", "group", "width", "height", "iod_px",
                        "zero_reference", "excluded", *regions.REGIONS, *(f"area_{r}" for r in regions.REGIONS))
            if c in table.columns]
    write_csv(out / "cam_regions.csv", table[keep])
    write_json(out / "layers.json", dict(layers))
    with atomic_open(out / "mean_maps.npz", "wb") as handle:
        np.savez_compressed(handle, **{"|".join(key): value.astype(np.float32) for key, value in mean_maps.items()})


def _figures(out: Path, table: pd.DataFrame, images: Sequence[Image.Image], matrices: Mapping[int, np.ndarray],
             aligned: Mapping[int, np.ndarray], mean_maps: Mapping[tuple[str, str, str], np.ndarray],
             frame: faces.CanonicalFrame, per_class: int) -> list[Path]:
    """The canonical mean maps and, per domain and outcome, up to ``per_class`` aligned faces per
    class with their (fine) maps; the figure files written."""
    written: list[Path] = []
    used = table[table["excluded"] == ""]
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
                shown = [overlay(faces.align_image(images[i], matrices[i], frame).astype(np.float32) / 255, aligned[i])
                         for i in chosen.index]
                plots.gallery(shown, [f"{e} -> {p}" for e, p in zip(chosen["emotion"], chosen["pred"], strict=True)],
                              out / "figures" / f"cam_{domain}_{outcome}")
                written.append(out / "figures" / f"cam_{domain}_{outcome}.png")
    return written


def canonical_labels(frame: Any = None) -> np.ndarray:
    """The face regions of the canonical frame's typical face (its template landmarks), as a label map."""
    frame = frame or faces.CanonicalFrame()
    return regions.label_map(frame.template(), (frame.width, frame.height))
