"""The toy2d source: mixture geometry, equal component weights, labels, and seeding."""

from __future__ import annotations

import math

import pytest
import torch

from gankit.config import DataConfig
from gankit.data.toy2d import MIXTURES, load_toy2d, mixture_means
from gankit.errors import ConfigError, DataError
from gankit.registry import DATASETS

N = 20_000


def _load(mixture: str, split: str = "train", seed: int = 0):
    return load_toy2d(DataConfig(name="toy2d", mixture=mixture, num_samples=N), split, seed)


def test_registered():
    assert DATASETS.get("toy2d") is load_toy2d
    assert {"ring", "grid"} <= set(MIXTURES) and len(MIXTURES) >= 4


def test_ring_means():
    means, std = mixture_means("ring")
    assert means.shape == (8, 2) and means.dtype == torch.float32 and std == 0.01
    angles = [2 * math.pi * k / 8 for k in range(8)]
    expected = torch.tensor([[math.cos(a), math.sin(a)] for a in angles])
    assert float((means - expected).abs().max()) < 1e-6


def test_grid_means():
    means, std = mixture_means("grid")
    assert means.shape == (25, 2) and std == 0.05
    assert sorted(map(tuple, means.tolist())) == [(float(a), float(b)) for a in range(-4, 5, 2)
                                                  for b in range(-4, 5, 2)]


def test_ring_points():
    data = _load("ring")
    radius = data.x.norm(dim=1)
    assert float((radius - 1).abs().max()) < 6 * 0.01
    assert 0.006 < float((radius - 1).abs().mean()) < 0.010  # E|N(0, 0.01)| = 0.008
    fractions = torch.bincount(data.y, minlength=8).float() / N
    assert float((fractions - 1 / 8).abs().max()) < 0.012
    means, _ = mixture_means("ring")
    nearest = torch.cdist(data.x, means).argmin(dim=1)
    assert bool((nearest == data.y).all())


@pytest.mark.parametrize("name", sorted(MIXTURES))
def test_every_mixture(name):
    data = _load(name)
    means, std = mixture_means(name)
    assert data.x.shape == (N, 2) and data.x.dtype == torch.float32 and data.y.dtype == torch.int64
    assert data.num_classes == len(means) and data.name == "toy2d" and not data.is_image
    offset = data.x - means[data.y]  # (N, 2)
    assert float(offset.abs().max()) < 6 * std
    assert abs(float(offset.std()) - std) < 0.05 * std
    fractions = torch.bincount(data.y, minlength=len(means)).float() / N
    assert float((fractions - 1 / len(means)).abs().max()) < 0.4 / len(means)


def test_seeding():
    a, b = _load("grid", seed=3), _load("grid", seed=3)
    assert bool((a.x == b.x).all())
    assert not bool((a.x == _load("grid", seed=4).x).all())
    assert not bool((a.x == _load("grid", "test", seed=3).x).all())
    assert not bool((_load("grid", "test", seed=0).x == _load("grid", "train", seed=1).x).all())


def test_unknown_mixture_lists_choices():
    with pytest.raises(ConfigError, match=r"data.mixture='moons'.*grid, ring"):
        _load("moons")
    with pytest.raises(ConfigError, match="ring"):
        mixture_means("moons")


def test_bad_split():
    with pytest.raises(DataError, match="valid splits: train, test"):
        _load("ring", "dev")
