"""Reconstruction metrics for autoencoders: mean squared error and peak signal-to-noise ratio,
PSNR = 10 log10(range^2 / MSE); images in [-1, 1] have a range of 2."""

from __future__ import annotations

import math

import torch


def mse(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean squared error over every element."""
    return float(((x.double() - y.double()) ** 2).mean())


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0) -> float:
    """PSNR of the whole set in dB (inf when identical)."""
    err = mse(x, y)
    return math.inf if err == 0 else 10 * math.log10(data_range ** 2 / err)


def psnr_per_image(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """(B,) PSNR of each image in dB, as papers average it."""
    err = ((x.double() - y.double()) ** 2).flatten(1).mean(dim=1)
    return 10 * torch.log10(data_range ** 2 / err)
