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
* Colour (RGB outputs): the colourfulness of Hasler & Suesstrunk 2003 ("Measuring colourfulness in natural
  images", eq. 3 and table 2's M^(3)): with rg = R - G and yb = (R + G) / 2 - B in 0..255,
  M = sqrt(sd(rg)^2 + sd(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2) over the pixels of one image, averaged over the
  images; HSV saturation (max - min) / max of each pixel (0 where max is 0); and the earth mover's distance (the
  1-Wasserstein distance) between the outputs' and the real images' distributions of pixel saturation, from their
  histograms on SATURATION_BINS equal bins of [0, 1]. A network that averages plausible colours (L1 alone) draws
  less colourful, less saturated images than real ones; one that draws real-looking colours matches them.

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
SATURATION_BINS = 100


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


def _rgb255(images: torch.Tensor) -> torch.Tensor:
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected (N, 3, H, W) RGB images, got {tuple(images.shape)}")
    return (images.double().clamp(-1, 1) + 1) * 127.5


def colourfulness_per_image(images: torch.Tensor) -> torch.Tensor:
    """(N,) colourfulness M of Hasler & Suesstrunk 2003 of each RGB image in [-1, 1] (0 for a grey image)."""
    x = _rgb255(images).flatten(2)  # (N, 3, P)
    rg = x[:, 0] - x[:, 1]
    yb = (x[:, 0] + x[:, 1]) / 2 - x[:, 2]
    spread = torch.sqrt(rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False))
    return spread + 0.3 * torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2)


def saturation(images: torch.Tensor) -> torch.Tensor:
    """(N, H, W) HSV saturation of RGB images in [-1, 1]: (max - min) / max over the channels, 0 where max is 0."""
    x = (images.double().clamp(-1, 1) + 1) / 2
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected (N, 3, H, W) RGB images, got {tuple(images.shape)}")
    top, bottom = x.amax(dim=1), x.amin(dim=1)
    return torch.where(top > 0, (top - bottom) / top.clamp_min(1e-12), torch.zeros_like(top))


def histogram_emd(a: torch.Tensor, b: torch.Tensor, bins: int = SATURATION_BINS) -> float:
    """Earth mover's distance between the distributions of values ``a`` and ``b`` in [0, 1], from histograms of
    ``bins`` equal bins: the area between their cumulative distributions (bins' width times the summed gaps)."""
    cdfs = []
    for values in (a, b):
        counts = torch.histc(values.double().flatten(), bins=bins, min=0.0, max=1.0)
        cdfs.append(torch.cumsum(counts / counts.sum(), 0))
    return float((cdfs[0] - cdfs[1]).abs().sum() / bins)


def colour_scores(fake: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    """Colourfulness and saturation of RGB translations against real images of their domain: each one's mean,
    their ratio (fake / real), and the earth mover's distance between the pixel-saturation distributions."""
    c_fake, c_real = colourfulness_per_image(fake).mean(), colourfulness_per_image(real).mean()
    s_fake, s_real = saturation(fake), saturation(real)
    return {"colourfulness": float(c_fake), "colourfulness_real": float(c_real),
            "colourfulness_ratio": float(c_fake / c_real) if c_real > 0 else float("inf"),
            "saturation": float(s_fake.mean()), "saturation_real": float(s_real.mean()),
            "saturation_emd": histogram_emd(s_fake, s_real)}
