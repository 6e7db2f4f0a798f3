"""Reconstruction metrics for autoencoders: mean squared error and peak signal-to-noise ratio,
PSNR = 10 log10(range^2 / MSE) in dB; images in [-1, 1] have a range of 2. Papers average PSNR over images
(:func:`psnr_per_image`), which differs from the PSNR of the pooled MSE (:func:`psnr`). Computed in float64.
"""

from __future__ import annotations

import math

import torch


def _squared_error(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Elementwise squared error in float64; shapes must match exactly (no broadcasting)."""
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {tuple(x.shape)} and {tuple(y.shape)}")
    return (x.double() - y.double()) ** 2


def mse(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean squared error over every element."""
    return float(_squared_error(x, y).mean())


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0) -> float:
    """PSNR of the whole set in dB (inf when identical)."""
    err = mse(x, y)
    return math.inf if err == 0 else 10 * math.log10(data_range ** 2 / err)


def psnr_per_image(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """(B,) PSNR of each image in dB (inf where identical), as papers average it."""
    err = _squared_error(x, y).flatten(1).mean(dim=1)  # (B,)
    return 10 * torch.log10(data_range ** 2 / err)
