"""From a sample table to model input: the torch Dataset, the DataLoader factory, and the input
pipeline that turns decoded images into model input (``preprocess: exact | fast``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, default_collate

from fercore.core.runtime import default_workers, seed_worker
from fercore.data.images import (
    EXACT_PREPROCESSING,
    FAST_PREPROCESSING,
    BatchAugment,
    Preprocess,
    augment_transform,
    check_preprocess,
    load_rgb,
    native_uint8,
    resize_batch,
)
from fercore.data.samples import discover


class FaceDataset(Dataset):
    """Images and canonical labels from a sample table (as made by :func:`discover`)."""

    def __init__(self, samples: pd.DataFrame, transform: Callable | None = None):
        if not {"path", "label"} <= set(samples.columns):
            raise ValueError("samples need at least the columns 'path' and 'label'")
        self.samples = samples.reset_index(drop=True)
        self.paths: list[str] = self.samples["path"].astype(str).tolist()
        self.labels: np.ndarray = self.samples["label"].to_numpy(dtype=np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path = self.paths[index]
        try:
            image = load_rgb(path)
        except Exception as err:
            raise OSError(f"cannot read image {path}: {err}. Run `fercore check-data` on the dataset") from err
        x = self.transform(image) if self.transform is not None else image
        return x, int(self.labels[index])

    @classmethod
    def from_folder(
        cls, root: str | Path, split: str, image_size: int, transform: Callable | None = None
    ) -> FaceDataset:
        """Dataset of one split with HSEmotion preprocessing at ``image_size``."""
        return cls(discover(root, [split]), transform or Preprocess(image_size))


@dataclass
class SizeBuckets:
    """A batch of uint8 CHW images of possibly different sizes: one stacked tensor per size, with
    the positions its images hold in the batch (``fast`` preprocessing moves these, not resized floats)."""

    groups: list[tuple[torch.Tensor, torch.Tensor]]  # (positions, k x C x H x W uint8)
    count: int

    @classmethod
    def from_images(cls, images: Sequence[torch.Tensor]) -> SizeBuckets:
        """Bucket CHW tensors by shape, first-seen order; one bucket keeps the batch order."""
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, image in enumerate(images):
            by_shape.setdefault(tuple(image.shape), []).append(i)
        groups = [(torch.tensor(rows, dtype=torch.long), torch.stack([images[i] for i in rows])) for rows in by_shape.values()]
        return cls(groups, len(images))

    def __len__(self) -> int:
        return self.count

    def pin_memory(self) -> SizeBuckets:
        """Page-locked copies (called by the DataLoader's pinning thread on CUDA)."""
        return SizeBuckets([(rows, images.pin_memory()) for rows, images in self.groups], self.count)

    def to(self, device: str | torch.device, non_blocking: bool = False) -> SizeBuckets:
        return SizeBuckets([(rows, images.to(device, non_blocking=non_blocking)) for rows, images in self.groups], self.count)

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """``fn`` applied to each bucket (all outputs of one shape), reassembled in batch order."""
        if len(self.groups) == 1:
            return fn(self.groups[0][1])
        parts = [(rows, fn(images)) for rows, images in self.groups]
        out = parts[0][1].new_empty((self.count, *parts[0][1].shape[1:]))
        for rows, values in parts:
            out[rows.to(out.device)] = values
        return out


def collate_native(batch: Sequence[tuple[Any, ...]]) -> tuple[Any, ...]:
    """DataLoader ``collate_fn`` for (native-size image, ...) items: the images as
    :class:`SizeBuckets`, the other fields collated as usual."""
    rest = default_collate([item[1:] for item in batch]) if len(batch[0]) > 1 else []
    return (SizeBuckets.from_images([item[0] for item in batch]), *rest)


@dataclass
class InputPipeline:
    """How decoded images become a model's input batch, in one of two modes.

    ``exact``: loader workers resize with PIL (HSEmotion's preprocessing) to uint8 (or, with
    ``augment``, run :func:`fercore.data.images.augment_transform` to normalised floats).
    ``fast``: workers decode only; :class:`SizeBuckets` of native-size uint8 images go to the
    device (pinned, non-blocking on CUDA), where :func:`fercore.data.images.resize_batch` (or
    :class:`fercore.data.images.BatchAugment`) and the normalisation run batched.
    Build the DataLoader with ``collate_fn=pipeline.collate`` and items from :meth:`item`;
    :meth:`prepare` turns each batch into the normalised N x 3 x S x S input on the device."""

    mode: str = "exact"
    image_size: int = 224
    augment: bool = False

    def __post_init__(self) -> None:
        check_preprocess(self.mode)
        self._worker: Callable[[Image.Image], torch.Tensor] = (
            native_uint8 if self.mode == "fast" else augment_transform(self.image_size) if self.augment
            else Preprocess(self.image_size).resized_uint8)

    @property
    def name(self) -> str:
        """The preprocessing recipe, for cache keys."""
        return FAST_PREPROCESSING if self.mode == "fast" else EXACT_PREPROCESSING

    def item(self, image: Image.Image) -> torch.Tensor:
        """Worker side: what one decoded image becomes before batching."""
        return self._worker(image)

    def collate(self, batch: Sequence[tuple[Any, ...]]) -> Any:
        return collate_native(batch) if self.mode == "fast" else default_collate(batch)

    def prepare(self, x: torch.Tensor | SizeBuckets, device: str | torch.device, *, generator: torch.Generator | None = None,
                channels_last: bool = False) -> torch.Tensor:
        """A loader batch -> normalised float N x 3 x S x S on ``device``. uint8 batches are
        normalised there, float batches (``exact`` with augmentation) only moved; ``fast`` batches
        are resized (augmented when ``augment``, drawing from ``generator``) there first."""
        device = torch.device(device)
        normalize = Preprocess(self.image_size).normalize
        if isinstance(x, SizeBuckets):
            x = x.to(device, non_blocking=True)
            if self.augment:
                augment = BatchAugment(self.image_size)
                draw = generator if generator is not None else torch.default_generator
                x = normalize(x.map(lambda images: augment(images, draw)))
            else:
                x = normalize(x.map(lambda images: resize_batch(images, self.image_size)))
        else:
            x = x.to(device, non_blocking=True)
            x = normalize(x) if x.dtype == torch.uint8 else x
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def make_loader(
    dataset: Dataset,
    batch_size: int = 32,
    *,
    shuffle: bool = False,
    seed: int = 0,
    workers: int | None = None,
    device: str | torch.device = "cpu",
    drop_last: bool = False,
) -> DataLoader:
    """DataLoader with seeded, reproducible order, worker seeding and pinned memory on CUDA.

    ``workers=None`` picks :func:`default_workers`; 0 loads in the main process.
    """
    if workers is None:
        workers = default_workers()
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        pin_memory=torch.device(device).type == "cuda",
        worker_init_fn=seed_worker,
        generator=generator,
        persistent_workers=workers > 0,
        drop_last=drop_last,
    )
