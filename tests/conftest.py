"""Shared fixtures: small images and datasets written by the tests, the team's shared FER2013."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED_FER2013 = REPO.parent / "shared" / "data" / "fer2013"


@pytest.fixture(autouse=True, scope="session")
def _two_threads() -> None:
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def fer2013_root() -> Path:
    """The shared FER2013 folder (../shared/data/fer2013), skipped with a reason when absent."""
    if not (SHARED_FER2013 / "train").is_dir():
        pytest.skip(f"shared FER2013 not found at {SHARED_FER2013} (../shared is provided by the team beside the checkout)")
    return SHARED_FER2013


def pattern_image(width: int = 120, height: int = 90, seed: int = 0) -> Image.Image:
    """A deterministic, detailed RGB test image (gradients plus noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    arr = np.stack([xx * 255 / width, yy * 255 / height, (xx + yy) % 64 * 4], axis=-1)
    arr = np.clip(arr + rng.normal(0, 20, arr.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(arr, mode="RGB")


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    """root/{train,test}/{angry,happy,sad}/ with 4 + 2 small PNGs per class (distinct pixels)."""
    root = tmp_path / "tiny"
    k = 0
    for split, n in (("train", 4), ("test", 2)):
        for folder in ("angry", "happy", "sad"):
            (root / split / folder).mkdir(parents=True)
            for i in range(n):
                pattern_image(32, 32, seed=k).save(root / split / folder / f"{i}.png")
                k += 1
    return root


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory) -> Path:
    """The default demo dataset, written once per test session."""
    from fercore.demo import make_demo_data

    root = tmp_path_factory.mktemp("demo")
    make_demo_data(root, progress=False)
    return root
