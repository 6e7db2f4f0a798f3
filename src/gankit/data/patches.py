"""The ``patches`` source: random square patches of the two photographs that ship with scikit-learn
(``china.jpg`` and ``flower.jpg``, 427 x 640), the compression data of the autoencoder notes (8 x 8 patches through a
64-16-64 network).

Patches are ``data.size`` pixels square (default 8), grey (``data.channels`` 1, the default) or RGB (3), in [-1, 1].
Train patches come from the left three quarters of each photograph and test patches from the right quarter, so the
two splits share no pixel. ``data.num_samples`` patches are drawn per split (default 50,000 train, 10,000 test) at
positions from a fixed seed that never depends on the run seed.
"""

from __future__ import annotations

import numpy as np

from ..config import DataConfig
from ..errors import ConfigError
from ..registry import DATASETS
from .base import ArrayData
from .limits import check_setting
from .transforms import LUMA, check_split, make_array_data, uint8_to_unit

POSITION_SEED = 20_240_602
DEFAULT_SAMPLES = {"train": 50_000, "test": 10_000}
TRAIN_SHARE = 0.75  # of each photograph's width


def photographs(channels: int) -> list[np.ndarray]:
    """The bundled photographs as float (C, H, W) arrays in [-1, 1]."""
    from sklearn.datasets import load_sample_images  # deferred: importing sklearn costs ~1 s

    images = []
    for img in load_sample_images().images:  # (427, 640, 3) uint8
        x = uint8_to_unit(np.asarray(img)).transpose(2, 0, 1)  # (3, H, W)
        if channels == 1:
            x = np.clip((x * np.asarray(LUMA, np.float32)[:, None, None]).sum(0, keepdims=True), -1, 1)
        images.append(np.ascontiguousarray(x, dtype=np.float32))
    return images


def cut_patches(images: list[np.ndarray], n: int, size: int, split: str, rng: np.random.Generator) -> np.ndarray:
    """``n`` random (C, size, size) patches, evenly from each image's ``split`` region."""
    out = []
    for i, img in enumerate(images):
        m = n // len(images) + (1 if i < n % len(images) else 0)
        h, w = img.shape[1:]
        cut = int(w * TRAIN_SHARE)
        lo, hi = (0, cut - size) if split == "train" else (cut, w - size)
        top, left = rng.integers(0, h - size + 1, m), rng.integers(lo, hi + 1, m)
        rows = top[:, None] + np.arange(size)  # (m, size)
        cols = left[:, None] + np.arange(size)
        out.append(img[:, rows[:, :, None], cols[:, None, :]].transpose(1, 0, 2, 3))  # (m, C, size, size)
    return np.concatenate(out)


@DATASETS.register("patches")
def load_patches(cfg: DataConfig, split: str = "train", seed: int = 0) -> ArrayData:
    """(N, C, S, S) patches in [-1, 1] (S = ``cfg.size`` or 8), unlabelled."""
    check_split(split, "patches")
    size = cfg.size or 8
    n = cfg.num_samples or DEFAULT_SAMPLES[split]
    channels = cfg.channels or 1
    check_setting(f"data.num_samples={n}", n * channels * size * size * 4, f"{n:,} float32 patches of {size}x{size}")
    images = photographs(channels)
    h, w = images[0].shape[1:]
    largest = min(h, w - int(w * TRAIN_SHARE))  # the test region is the narrower one
    if size > largest:
        raise ConfigError(f"data.size={size} is out of range for patches: expected an integer >= 4 and <= {largest} "
                          f"(the test quarter of each photograph is {largest} pixels wide)")
    rng = np.random.default_rng([POSITION_SEED, 0 if split == "train" else 1])
    return make_array_data(cut_patches(images, n, size, split, rng), None, "patches")
