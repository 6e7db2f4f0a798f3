"""Metrics of image-to-image translation, pure functions of tensors.

* Against a ground truth (paired tasks): mean absolute error (L1), PSNR averaged over images (see
  :mod:`gankit.metrics.reconstruction`) and SSIM (Wang, Bovik, Sheikh & Simoncelli 2004, eq. 13: the mean over
  pixels of l(x, y) c(x, y) s(x, y) computed in an 11x11 Gaussian window of sigma 1.5, with K1 = 0.01, K2 = 0.03 and
  L the data range; windows lie wholly inside the image; the channels' SSIMs are averaged).
* Class preservation: the share of translations whose class, as a target-domain evaluator labels them, is the label
  of their source image.
* Cycle reconstruction error: L1 between an image and its return trip G_BA(G_AB(x)).
* Output diversity: for K outputs of one input, the mean L1 distance between all K(K-1)/2 pairs, averaged over the
  inputs (0 for a deterministic translator).

Images are (N, C, H, W) in [-1, 1]; every function computes in float64 and returns Python floats (or per-image
tensors where named so).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .reconstruction import psnr_per_image

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-coords ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return torch.outer(g, g)  # (size, size), sums to 1


def ssim_per_image(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0, window: int = SSIM_WINDOW,
                   sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """(N,) SSIM of each image pair (channels averaged). Images smaller than the window use a window of their
    smaller side (odd)."""
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"expected two (N, C, H, W) tensors of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    n, c, h, w = x.shape
    size = min(window, h - (1 - h % 2), w - (1 - w % 2))
    kernel = _gaussian_window(size, sigma).to(x.device)[None, None].expand(c, 1, size, size)
    x, y = x.double(), y.double()
    blur = lambda t: F.conv2d(t, kernel, groups=c)  # noqa: E731  (valid windows only)
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(dim=1)


def paired_scores(fake: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """L1, PSNR (dB, mean over images; identical images are left out of the mean) and SSIM of translations
    against their ground truth."""
    l1 = (fake.double() - target.double()).abs().flatten(1).mean(dim=1)
    psnr = psnr_per_image(fake, target)
    finite = psnr[torch.isfinite(psnr)]
    return {"l1": float(l1.mean()), "psnr": float(finite.mean()) if len(finite) else float("inf"),
            "ssim": float(ssim_per_image(fake, target).mean())}


def class_preservation(predicted: torch.Tensor, source_labels: torch.Tensor) -> float:
    """Share of translations whose predicted class is their source's label."""
    if predicted.shape != source_labels.shape:
        raise ValueError(f"shapes differ: {tuple(predicted.shape)} and {tuple(source_labels.shape)}")
    return float((predicted == source_labels).double().mean())


def cycle_error(x: torch.Tensor, returned: torch.Tensor) -> float:
    """Mean absolute error between images and their return trip."""
    if x.shape != returned.shape:
        raise ValueError(f"shapes differ: {tuple(x.shape)} and {tuple(returned.shape)}")
    return float((x.double() - returned.double()).abs().mean())


def output_diversity(outputs: torch.Tensor) -> float:
    """Mean pairwise L1 distance between the K outputs (N, K, C, H, W) of each input, averaged over inputs."""
    if outputs.dim() != 5 or outputs.shape[1] < 2:
        raise ValueError(f"expected (N, K >= 2, C, H, W) outputs, got {tuple(outputs.shape)}")
    flat = outputs.flatten(2)  # (N, K, D)
    k = flat.shape[1]
    total = torch.zeros(flat.shape[0], dtype=torch.float64)
    for i in range(k):  # pair by pair: memory of one (N, D) difference at a time
        for j in range(i + 1, k):
            total += (flat[:, i].double() - flat[:, j].double()).abs().mean(dim=-1).cpu()
    return float(total.mean() / (k * (k - 1) / 2))
