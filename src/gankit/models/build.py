"""Building a registered model family from its config and the data's shape."""

from __future__ import annotations

import torch
from torch import nn

from ..registry import MODELS


def build_models(cfg, sample_shape: tuple[int, ...], num_classes: int, seed: int) -> dict[str, nn.Module]:
    """Build the modules of the family ``cfg.name``; weights are drawn from ``seed`` without touching global RNG."""
    builder = MODELS.get(cfg.name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builder(cfg, tuple(sample_shape), num_classes)
