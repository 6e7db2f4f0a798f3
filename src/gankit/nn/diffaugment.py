"""Differentiable augmentation (Zhao et al. 2020, "Differentiable augmentation for data-efficient GAN training",
sec. 3): the same random transforms applied to real and fake images before the discriminator, in both players'
steps, so D cannot memorise a small dataset while G still receives gradients through the transform.

Policies (``translation``, ``cutout``, ``color``), as in the paper's reference choices: translation by up to 1/8 of
the side with zero padding; cutout of one square of half the side set to 0; colour = brightness + U(-0.5, 0.5),
saturation x U(0, 2) around the pixel's channel mean, contrast x U(0.5, 1.5) around the image mean. Randomness
comes from the ``generator`` passed in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..shard import sharded

POLICIES = ("translation", "cutout", "color")


def parse_policy(policy: str) -> tuple[str, ...]:
    """'translation,cutout' -> ('translation', 'cutout'); an unknown name raises ValueError naming the valid ones."""
    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    bad = [p for p in names if p not in POLICIES]
    if bad:
        raise ValueError(f"unknown DiffAugment policy {bad[0]!r}; valid: {', '.join(POLICIES)}")
    return names


def diff_augment(x: torch.Tensor, policy: tuple[str, ...], generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply each transform of ``policy`` to (B, C, H, W) images, with fresh randomness per image."""
    for name in policy:
        x = _TRANSFORMS[name](x, generator)
    return x


def _uniform(x: torch.Tensor, generator, shape, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * sharded(torch.rand, size=shape, generator=generator, device=x.device, dtype=x.dtype)


def _color(x: torch.Tensor, generator) -> torch.Tensor:
    b = x.shape[0]
    x = x + _uniform(x, generator, (b, 1, 1, 1), -0.5, 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * _uniform(x, generator, (b, 1, 1, 1), 0.0, 2.0) + mean  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _uniform(x, generator, (b, 1, 1, 1), 0.5, 1.5) + mean  # contrast


def _translation(x: torch.Tensor, generator, ratio: float = 0.125) -> torch.Tensor:
    b, _, h, w = x.shape
    sy, sx = max(1, int(h * ratio + 0.5)), max(1, int(w * ratio + 0.5))
    dy = sharded(torch.randint, -sy, sy + 1, size=(b, 1, 1), generator=generator, device=x.device)
    dx = sharded(torch.randint, -sx, sx + 1, size=(b, 1, 1), generator=generator, device=x.device)
    rows = torch.arange(h, device=x.device)[None, :, None] - dy  # (B, H, 1): source row of each output row
    cols = torch.arange(w, device=x.device)[None, None, :] - dx  # (B, 1, W)
    padded = F.pad(x, (1, 1, 1, 1))  # index 0 and -1 are the zero border
    rows = (rows.clamp(-1, h) + 1).expand(b, h, w)
    cols = (cols.clamp(-1, w) + 1).expand(b, h, w)
    batch = torch.arange(b, device=x.device)[:, None, None].expand(b, h, w)
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, generator, ratio: float = 0.5) -> torch.Tensor:
    b, _, h, w = x.shape
    ch, cw = max(1, int(h * ratio + 0.5)), max(1, int(w * ratio + 0.5))
    top = sharded(torch.randint, 0, h, size=(b, 1, 1), generator=generator, device=x.device) - ch // 2  # square centre
    left = sharded(torch.randint, 0, w, size=(b, 1, 1), generator=generator, device=x.device) - cw // 2
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    inside = (ys >= top) & (ys < top + ch) & (xs >= left) & (xs < left + cw)  # (B, H, W)
    return x * (~inside)[:, None].to(x.dtype)


_TRANSFORMS = {"translation": _translation, "cutout": _cutout, "color": _color}
