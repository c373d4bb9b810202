"""Reading images the one right way, and HSEmotion's preprocessing.

HSEmotion's models were trained on RGB images resized with PIL (``transforms.Resize``,
bilinear with antialiasing) to 224 (B0) / 260 (B2) and normalised with ImageNet mean/std.
BGR input or OpenCV resizing costs 1-2.6 accuracy points, so fercore's readers only hand
out RGB PIL images, and numpy input must state its channel order.

Two preprocessing modes (:data:`PREPROCESS_MODES`) reach the same model input:

* ``exact`` (the default): PIL resizes each image in the loader, as HSEmotion trained;
* ``fast``: the loader hands over 8-bit images at their own size, and the resize to the model
  size (:func:`resize_batch`: bilinear, antialiased, in two 8-bit passes as PIL's),
  the normalisation and, for training, the augmentation (:class:`BatchAugment`) run batched with
  torch ops on the batch's device (the GPU). Measured against ``exact``: at most two 8-bit levels
  apart per pixel (0.035 in normalised units), most pixels equal, upsampling and downsampling
  alike (tested).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.nn import functional as F
from torchvision import transforms as T
from torchvision.ops import roi_align
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"})

#: Grey used under transparent pixels: ImageNet's mean, so transparency normalises to ~0.
ALPHA_BACKGROUND: tuple[int, int, int] = (124, 116, 104)

_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}

#: ``exact``: PIL resize in the loader (HSEmotion's); ``fast``: resize and normalise batched on the device.
PREPROCESS_MODES: tuple[str, str] = ("exact", "fast")
#: The modes' recipes, as named in inference cache keys.
EXACT_PREPROCESSING = "pil-bilinear-antialias+imagenet-norm"
FAST_PREPROCESSING = "torch-bilinear-antialias-rounded+imagenet-norm"


def is_image_file(path: str | Path) -> bool:
    """True for file names with a known image suffix (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB correctly.

    Grayscale is replicated, CMYK / palette / LAB are converted by PIL, 16/32-bit integer
    images are *scaled* to 8 bits (PIL's own ``convert`` clips them to 255), and
    transparent pixels are composited over :data:`ALPHA_BACKGROUND`.
    """
    if image.mode in _SIXTEEN_BIT_MODES:
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if array.max(initial=0) > 255 or image.mode != "I" else 255.0
        array = np.clip(np.rint(array * (255.0 / peak)), 0, 255).astype(np.uint8)
        image = Image.fromarray(array, mode="L")
    elif image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        array = np.clip(np.rint(array * 255.0 if array.max(initial=0) <= 1.0 else array), 0, 255)
        image = Image.fromarray(array.astype(np.uint8), mode="L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*ALPHA_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode != "RGB":
        image = image.convert("RGB")
    return image


def load_rgb(path: str | Path) -> Image.Image:
    """Open an image file fully (truncation is an error), honour EXIF rotation, return RGB."""
    with Image.open(path) as handle:
        handle.load()
        image = ImageOps.exif_transpose(handle) or handle
        return to_rgb(image.copy())


def from_array(array: np.ndarray, *, channel_order: Literal["RGB", "BGR"]) -> Image.Image:
    """RGB PIL image from an HxW or HxWx3/4 uint8 array; OpenCV arrays are ``channel_order='BGR'``."""
    if array.dtype != np.uint8:
        raise TypeError(f"expected a uint8 array, got {array.dtype}; scale it to 0-255 first")
    if array.ndim == 2:
        return to_rgb(Image.fromarray(array, mode="L"))
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"expected HxW, HxWx3 or HxWx4, got shape {array.shape}")
    if channel_order == "BGR":
        array = array[..., [2, 1, 0, 3][: array.shape[2]]]
    elif channel_order != "RGB":
        raise ValueError("channel_order must be 'RGB' or 'BGR'")
    mode = "RGB" if array.shape[2] == 3 else "RGBA"
    return to_rgb(Image.fromarray(np.ascontiguousarray(array), mode=mode))


class Preprocess:
    """PIL RGB image -> normalised CHW float tensor, exactly as HSEmotion trained.

    Equal to ``Compose([Resize((s, s)), ToTensor(), Normalize(IMAGENET_MEAN, IMAGENET_STD)])``.
    """

    def __init__(self, image_size: int, mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD):
        self.image_size = int(image_size)
        self.mean = list(mean)
        self.std = list(std)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.normalize(self.resized_uint8(image))

    def resized_uint8(self, image: Image.Image) -> torch.Tensor:
        """The resized image as a uint8 CHW tensor (4x less to move between processes than float)."""
        if not isinstance(image, Image.Image):
            raise TypeError(
                f"Preprocess takes a PIL image, got {type(image).__name__}; use fercore.data.images.load_rgb(path) "
                "or from_array(array, channel_order=...)"
            )
        image = TF.resize(
            to_rgb(image), [self.image_size, self.image_size], interpolation=InterpolationMode.BILINEAR, antialias=True
        )
        return TF.pil_to_tensor(image)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 CHW or NCHW -> float, scaled to [0, 1] and normalised (on the tensor's device);
        the same arithmetic as ``ToTensor`` + ``Normalize``."""
        x = images.to(torch.float32).div(255)
        shape = (-1, 1, 1)
        mean = torch.tensor(self.mean, dtype=torch.float32, device=x.device).view(shape)
        std = torch.tensor(self.std, dtype=torch.float32, device=x.device).view(shape)
        return x.sub_(mean).div_(std)

    def __repr__(self) -> str:
        return f"Preprocess(image_size={self.image_size}, PIL bilinear, ImageNet mean/std)"


def augment_transform(image_size: int, *, scale: tuple[float, float] = (0.7, 1.0), flip: bool = True, jitter: float = 0.3):
    """Training augmentation: random resized crop (PIL, antialiased), horizontal flip,
    brightness/contrast jitter, then the same tensor conversion and normalisation as
    :class:`Preprocess`."""
    steps = [
        T.Lambda(to_rgb),
        T.RandomResizedCrop(image_size, scale=scale, ratio=(0.9, 1.1), antialias=True),
    ]
    if flip:
        steps.append(T.RandomHorizontalFlip())
    if jitter:
        steps.append(T.ColorJitter(brightness=jitter, contrast=jitter))
    steps += [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return T.Compose(steps)


def check_preprocess(mode: str) -> str:
    """``mode`` if it is one of :data:`PREPROCESS_MODES`, else a ValueError naming them."""
    if mode not in PREPROCESS_MODES:
        raise ValueError(f"preprocess must be one of {', '.join(PREPROCESS_MODES)}, got {mode!r}")
    return mode


def native_uint8(image: Image.Image) -> torch.Tensor:
    """A PIL image as an RGB uint8 CHW tensor at its own size (what ``fast`` loader workers hand over)."""
    return TF.pil_to_tensor(to_rgb(image))


def resize_batch(images: torch.Tensor, image_size: int) -> torch.Tensor:
    """N x C x H x W images with 0-255 values -> float32 N x C x S x S, on their device.

    PIL's resize, rebuilt from torch ops: bilinear with antialiasing (torch's filter follows PIL's:
    a triangle widened by the scale factor when shrinking), the width first, then the height,
    each pass rounded half up and clipped to 8-bit levels as PIL's 8-bit passes are. Measured
    against :meth:`Preprocess.resized_uint8`: at most 2 levels apart, most pixels equal (tested)."""
    if images.ndim != 4:
        raise ValueError(f"expected N x C x H x W images, got shape {tuple(images.shape)}")
    x = images.to(torch.float32)
    height, width = x.shape[-2:]
    if width != image_size:
        x = _round_to_levels(F.interpolate(x, size=(height, image_size), mode="bilinear", antialias=True, align_corners=False))
    if height != image_size:
        x = _round_to_levels(F.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True,
                                           align_corners=False))
    return x


def _round_to_levels(x: torch.Tensor) -> torch.Tensor:
    """Round half up (PIL's rounding, not torch's half-to-even) and clip to 0-255."""
    return x.add_(0.5).floor_().clamp_(0, 255)


class BatchAugment:
    """Training augmentation for a batch on its device, in the spirit of :func:`augment_transform`:
    a random resized crop (area ``scale`` of the image, aspect ``ratio``) resampled to the model
    size with ``torchvision.ops.roi_align`` (bilinear, averaging several samples per output pixel
    when shrinking), a horizontal flip (p 0.5), then brightness and contrast jitter (in that order).

    Parameters are drawn from ``generator`` (a CPU generator: the same draws on every device).
    Takes and returns 0-255 float images (N x C x H x W -> N x C x S x S)."""

    def __init__(self, image_size: int, *, scale: tuple[float, float] = (0.7, 1.0), ratio: tuple[float, float] = (0.9, 1.1),
                 flip: bool = True, jitter: float = 0.3):
        self.image_size, self.scale, self.ratio, self.flip, self.jitter = int(image_size), scale, ratio, flip, float(jitter)

    def crop_boxes(self, n: int, height: int, width: int, generator: torch.Generator) -> torch.Tensor:
        """n crop boxes (x0, y0, x1, y1) in pixel-edge coordinates, each inside the image."""
        area = torch.empty(n).uniform_(*self.scale, generator=generator) * height * width
        log_ratio = torch.empty(n).uniform_(float(np.log(self.ratio[0])), float(np.log(self.ratio[1])), generator=generator)
        aspect = log_ratio.exp()
        w = (area * aspect).sqrt().clamp(max=width)
        h = (area / aspect).sqrt().clamp(max=height)
        x0 = torch.rand(n, generator=generator) * (width - w)
        y0 = torch.rand(n, generator=generator) * (height - h)
        return torch.stack([x0, y0, x0 + w, y0 + h], dim=1)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, _, height, width = images.shape
        x = images.to(torch.float32)
        boxes = self.crop_boxes(n, height, width, generator)
        flips = torch.rand(n, generator=generator) < 0.5 if self.flip else torch.zeros(n, dtype=torch.bool)
        low, high = max(0.0, 1 - self.jitter), 1 + self.jitter
        brightness = torch.empty(n).uniform_(low, high, generator=generator)
        contrast = torch.empty(n).uniform_(low, high, generator=generator)
        rois = torch.cat([torch.arange(n, dtype=torch.float32)[:, None], boxes], dim=1).to(x.device)
        x = roi_align(x, rois, output_size=self.image_size, spatial_scale=1.0, sampling_ratio=-1, aligned=True)
        if flips.any():
            x = torch.where(flips.to(x.device).view(-1, 1, 1, 1), x.flip(-1), x)
        if self.jitter:
            x = (x * brightness.to(x.device).view(-1, 1, 1, 1)).clamp_(0, 255)
            grey = x.mul(torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)).sum(1).mean((1, 2))
            grey = grey.view(-1, 1, 1, 1)
            x = ((x - grey) * contrast.to(x.device).view(-1, 1, 1, 1) + grey).clamp_(0, 255)
        return x


def denormalize(batch: torch.Tensor) -> torch.Tensor:
    """Undo :class:`Preprocess` normalisation (for showing images); returns values in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN, device=batch.device).view(-1, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=batch.device).view(-1, 1, 1)
    return (batch * std + mean).clamp(0, 1)
