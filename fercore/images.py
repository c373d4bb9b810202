"""Reading images the one right way, and HSEmotion's preprocessing.

HSEmotion's models were trained on RGB images resized with PIL (``transforms.Resize``,
bilinear with antialiasing) to 224 (B0) / 260 (B2) and normalised with ImageNet mean/std.
BGR input or OpenCV resizing costs 1-2.6 accuracy points, so fercore's readers only hand
out RGB PIL images, and numpy input must state its channel order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"})

#: Grey used under transparent pixels: ImageNet's mean, so transparency normalises to ~0.
ALPHA_BACKGROUND: tuple[int, int, int] = (124, 116, 104)

_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}


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
                f"Preprocess takes a PIL image, got {type(image).__name__}; use fercore.images.load_rgb(path) "
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
    from torchvision import transforms as T

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


def preprocess_for(arch: str, image_size: int | None = None) -> Preprocess:
    """Preprocessing for an architecture at its trained size (224 B0, 260 B2) unless given."""
    from .models import default_image_size

    return Preprocess(image_size or default_image_size(arch))


def denormalize(batch: torch.Tensor) -> torch.Tensor:
    """Undo :class:`Preprocess` normalisation (for showing images); returns values in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN, device=batch.device).view(-1, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=batch.device).view(-1, 1, 1)
    return (batch * std + mean).clamp(0, 1)
