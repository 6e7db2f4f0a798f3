"""The ``digits`` source: scikit-learn's bundled 8x8 handwritten digits (UCI "Optical Recognition of Handwritten
Digits", Alpaydin & Kaynak 1998), 1,797 images with values 0..16, available offline.

The train/test split is a fixed permutation drawn with a fixed seed, so it never depends on the run seed: the first
20% of the permuted indices (359 images) form the test split, the rest (1,438) the train split.
"""

from __future__ import annotations

import numpy as np

from ..config import DataConfig
from ..registry import DATASETS
from .transforms import check_split, finish_images, make_array_data
from .base import ArrayData

SPLIT_SEED = 20_240_601  # fixed: the split must not move with train.seed
TEST_FRACTION = 0.2
MAX_VALUE = 16.0  # pixel values in load_digits run 0..16


def split_indices(n: int, split: str) -> np.ndarray:
    """Sorted indices of ``split`` in a dataset of ``n`` items, from the fixed permutation."""
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_test = int(round(n * TEST_FRACTION))
    return np.sort(order[:n_test] if split == "test" else order[n_test:])


# scikit-learn's copy of the UCI "Optical Recognition of Handwritten Digits" set, which UCI licenses CC BY 4.0 (model
# cards name it: gankit.interop.card)
@DATASETS.register("digits", license="cc-by-4.0")
def load_digits(cfg: DataConfig, split: str = "train", seed: int = 0) -> ArrayData:
    """The 8x8 digits as (N, 1, S, S) images in [-1, 1] (S = ``cfg.size`` or 8) with labels 0..9."""
    from sklearn.datasets import load_digits as sklearn_digits  # deferred: importing sklearn costs ~1 s

    check_split(split, "digits")
    bunch = sklearn_digits()
    idx = split_indices(len(bunch.target), split)
    x = bunch.images[idx].astype(np.float32)[:, None]  # (N, 1, 8, 8), values 0..16
    x = x * np.float32(2.0 / MAX_VALUE) - np.float32(1.0)
    return make_array_data(finish_images(x, cfg), bunch.target[idx], "digits", num_classes=10)
