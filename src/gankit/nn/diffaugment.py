"""Differentiable augmentation (Zhao et al. 2020, "Differentiable augmentation for data-efficient GAN training",
sec. 3): the same random transforms applied to real and fake images before the discriminator, in both players'
steps, so D cannot memorise a small dataset while G still receives gradients through the transform.

Policies (``translation``, ``cutout``, ``color``), as in the paper's reference choices: translation by up to 1/8 of
the side with zero padding; cutout of one square of half the side set to 0; colour = brightness + U(-0.5, 0.5),
saturation x U(0, 2) around the pixel's channel mean, contrast x U(0.5, 1.5) around the image mean. Randomness
comes from the ``generator`` passed in.

With a probability ``p``, each transform is applied to each image with probability p and the image is left as it is
otherwise (the stochastic augmentation of Karras et al. 2020b, "Training generative adversarial networks with limited
data", sec. 2.2: while p stays below about 0.8, the un-augmented images remain what D's real inputs are most
often, and the augmentations do not leak into the generator's images). :class:`AdaptiveProbability` steers p as ADA
does (sec. 3).
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


def diff_augment(x: torch.Tensor, policy: tuple[str, ...], generator: torch.Generator | None = None,
                 p: float | torch.Tensor | None = None) -> torch.Tensor:
    """Apply each transform of ``policy`` to (B, C, H, W) images, with fresh randomness per image: to every image
    (``p`` None), or to each image with probability ``p`` (a float or a 0-d tensor), drawn per transform."""
    for name in policy:
        if p is None:
            x = _TRANSFORMS[name](x, generator)
        else:
            chosen = sharded(torch.rand, size=(x.shape[0], 1, 1, 1), generator=generator, device=x.device,
                             dtype=x.dtype) < p
            x = torch.where(chosen, _TRANSFORMS[name](x, generator), x)
    return x


class AdaptiveProbability:
    """ADA's augmentation probability (Karras et al. 2020b, sec. 3): p starts at ``start``; every ``interval``
    discriminator updates, r_t = E[sign(D(x_real))] over the real images of those updates is compared with
    ``target`` (the paper's 0.6) and p moves by sign(r_t - target) x (images seen over the interval) / (``kimg`` x
    1000), clamped to [0, 1], so that p can go from 0 to 1 within ``kimg`` thousand real images. A D that grows
    sure of the training images (r_t high: it is memorising them) gets more augmentation, one that cannot tell them
    from fakes less. The sums and p stay on the device (no host sync); under distributed training the sums are added
    over the processes first, so every process steers the same p."""

    def __init__(self, target: float, interval: int, kimg: float, start: float, device: torch.device) -> None:
        self.target, self.interval, self.kimg = target, interval, kimg
        self.p = torch.full((), float(start), device=device)
        self.sums = torch.zeros(2, device=device)  # sum of sign(D(x_real)) and the number of logits, this interval

    def observe(self, real_margins: torch.Tensor, d_updates: int, images: int) -> None:
        """Count one D update's real logits, given as distances from the loss's decision boundary; ``images``: the
        real images that update saw (this process's batch). On every ``interval``-th update, move p."""
        with torch.no_grad():
            self.sums += torch.stack([torch.sign(real_margins.float()).sum(),
                                      torch.tensor(float(real_margins.numel()), device=self.sums.device)])
            if d_updates % self.interval:
                return
            sums, world = self.sums, 1
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                sums, world = sums.clone(), torch.distributed.get_world_size()
                torch.distributed.all_reduce(sums)
            r_t = sums[0] / sums[1].clamp(min=1.0)
            step = images * world * self.interval / (self.kimg * 1000.0)
            self.p = (self.p + torch.sign(r_t - self.target) * step).clamp(0.0, 1.0)
            self.sums.zero_()

    def state(self) -> dict[str, torch.Tensor]:
        """What a checkpoint keeps: p and the interval's sums so far (a resumed run moves p at the same updates)."""
        return {"ada_p": self.p, "ada_sums": self.sums}

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore :meth:`state` (missing keys: an older checkpoint, p stays where it starts)."""
        if "ada_p" in tensors:
            self.p = tensors["ada_p"].to(self.p.device, torch.float32).reshape(())
        if "ada_sums" in tensors:
            self.sums = tensors["ada_sums"].to(self.sums.device, torch.float32).reshape(2).clone()


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
