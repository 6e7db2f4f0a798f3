"""The digits source: a fixed split independent of the run seed, values in [-1, 1], resizing and channels."""

from __future__ import annotations

import numpy as np
import pytest

from gankit.config import DataConfig
from gankit.data.digits import load_digits, split_indices
from gankit.errors import DataError
from gankit.registry import DATASETS


@pytest.fixture(scope="module")
def train():
    return load_digits(DataConfig(), "train", seed=0)


def test_registered():
    assert DATASETS.get("digits") is load_digits


def test_split_sizes_and_disjoint():
    train, test = split_indices(1797, "train"), split_indices(1797, "test")
    assert (len(train), len(test)) == (1438, 359)
    assert len(np.intersect1d(train, test)) == 0 and len(np.union1d(train, test)) == 1797


def test_train_split(train):
    assert train.x.shape == (1438, 1, 8, 8) and train.num_classes == 10 and train.name == "digits"
    assert float(train.x.min()) == -1.0 and float(train.x.max()) == 1.0
    counts = np.bincount(train.y.numpy(), minlength=10)
    assert counts.sum() == 1438 and counts.min() > 120 and counts.max() < 170  # about 144 per class


def test_split_ignores_run_seed(train):
    other = load_digits(DataConfig(), "train", seed=123)
    assert bool((other.x == train.x).all()) and bool((other.y == train.y).all())
    test = load_digits(DataConfig(), "test", seed=5)
    assert test.x.shape == (359, 1, 8, 8)


@pytest.mark.parametrize("size", [4, 16, 32])
def test_resize(train, size):
    data = load_digits(DataConfig(size=size), "train")
    assert data.x.shape == (1438, 1, size, size)
    assert float(data.x.min()) >= -1.0 and float(data.x.max()) <= 1.0
    assert abs(float(data.x.mean()) - float(train.x.mean())) < 0.03  # resampling keeps the mean ink


def test_rgb(train):
    rgb = load_digits(DataConfig(channels=3), "train")
    assert rgb.x.shape == (1438, 3, 8, 8)
    assert all(bool((rgb.x[:, c] == train.x[:, 0]).all()) for c in range(3))


def test_bad_split():
    with pytest.raises(DataError, match=r"digits: unknown split 'valid'; valid splits: train, test"):
        load_digits(DataConfig(), "valid")
