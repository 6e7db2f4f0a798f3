"""2-D mixtures of Gaussians, the classic mode-collapse test beds.

``ring`` (8 modes on the unit circle) and ``grid`` (25 modes on {-4, -2, 0, 2, 4}^2) follow Metz et al., "Unrolled
Generative Adversarial Networks" (2017), Sec. 3.1 and Srivastava et al., "VEEGAN" (2017), Sec. 5.1, with the radius and
standard deviations used here. ``spiral`` and ``rings`` are extra, harder layouts. Every component has equal weight
and an isotropic standard deviation; :func:`mixture_means` exposes the means so metrics can count covered modes.

Points are drawn once per load with a ``torch.Generator``: the train split is seeded with ``2 * seed`` and the test
split with ``2 * seed + 1``, so the two never share draws for any run seed.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from ..config import DataConfig
from ..errors import ConfigError
from ..registry import DATASETS
from .transforms import check_split
from .base import ArrayData
from .limits import check_setting


def _ring() -> torch.Tensor:
    """8 means at angles 2*pi*k/8 on the unit circle."""
    return _circle(8, 1.0)


def _grid() -> torch.Tensor:
    """25 means on {-4, -2, 0, 2, 4}^2."""
    axis = torch.arange(-4.0, 5.0, 2.0)
    gx, gy = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)  # (25, 2)


def _spiral() -> torch.Tensor:
    """12 means along an Archimedean spiral of 1.5 turns, radius 0.5 -> 2."""
    t = torch.linspace(0.0, 1.0, 12, dtype=torch.float64)
    radius, angle = 0.5 + 1.5 * t, 3 * math.pi * t
    return torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1).float()  # (12, 2)


def _rings() -> torch.Tensor:
    """Two concentric rings: 8 means at radius 1 and 16 at radius 2."""
    return torch.cat([_circle(8, 1.0), _circle(16, 2.0)])  # (24, 2)


def _circle(k: int, radius: float) -> torch.Tensor:
    """``k`` points evenly spaced on a circle, the first on the positive x axis."""
    angle = 2 * math.pi * torch.arange(k, dtype=torch.float64) / k
    return (radius * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)).float()  # (k, 2)


# name -> (function making the (K, 2) means, per-component standard deviation)
MIXTURES: dict[str, tuple[Callable[[], torch.Tensor], float]] = {
    "ring": (_ring, 0.01),
    "grid": (_grid, 0.05),
    "spiral": (_spiral, 0.05),
    "rings": (_rings, 0.02),
}


def mixture_means(name: str) -> tuple[torch.Tensor, float]:
    """The (K, 2) float32 component means and the standard deviation of mixture ``name``."""
    if name not in MIXTURES:
        raise ConfigError(f"data.mixture={name!r} is not valid; valid choices: {', '.join(sorted(MIXTURES))}")
    make, std = MIXTURES[name]
    return make(), std


def sample_mixture(name: str, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points (n, 2) from mixture ``name`` and the (n,) int64 index of the component each came from."""
    means, std = mixture_means(name)
    component = torch.randint(len(means), (n,), generator=generator)  # (n,)
    noise = torch.randn(n, 2, generator=generator)  # (n, 2)
    return means[component] + std * noise, component


DEFAULT_SAMPLES = 100_000  # points per split when data.num_samples is unset


@DATASETS.register("toy2d")
def load_toy2d(cfg: DataConfig, split: str = "train", seed: int = 0) -> ArrayData:
    """``cfg.num_samples`` points from the 2-D mixture ``cfg.mixture``, labelled by component."""
    check_split(split, "toy2d")
    means, _ = mixture_means(cfg.mixture)
    generator = torch.Generator().manual_seed(2 * seed + (split == "test"))
    n = cfg.num_samples or DEFAULT_SAMPLES
    check_setting(f"data.num_samples={n}", n * (2 * 4 + 8), f"{n:,} points (float32 x, y) and labels (int64)")
    x, y = sample_mixture(cfg.mixture, n, generator)
    return ArrayData(x.float(), y.long(), len(means), "toy2d")
