"""Gradient penalties on the critic. They need the critic and its inputs (autograd through D), so they take the
module; they still never call ``.backward()`` or step an optimiser: they return a scalar to add to D's loss.

* ``gradient_penalty`` (WGAN-GP, Gulrajani et al. 2017, eq. 3): lambda E[(||grad D(x_hat)||_2 - 1)^2] with
  x_hat = eps x + (1 - eps) x_fake, eps ~ U[0, 1] drawn per sample; the norm runs over every non-batch dimension.
* ``r1_penalty`` (Mescheder et al. 2018, eq. 9): gamma / 2 E[||grad D(x)||_2^2] on real data only.
* ``zero_centred_penalty``: the same 1/2 E[||grad D(x)||^2] from logits already computed on inputs that require
  gradients, so that one forward pass serves the loss and the penalty. On real data it is R1, on fakes R2 (Roth et
  al. 2017; R3GAN, Huang et al. 2024, eq. 3 adds both: gamma / 2 (R1 + R2)).

One penalty on the generator, with the same contract (a scalar to add to G's loss):

* ``path_length_penalty`` (StyleGAN2, Karras et al. 2020, eq. 4): E[(||J_w^T y||_2 - a)^2], J_w the Jacobian of the
  images with respect to the styles w, y ~ N(0, I) / sqrt(H W) an image of noise, a the running mean of the lengths
  (an exponential moving average with rate ``decay``). Per-layer styles (B, L, D) give one length per sample:
  sqrt(mean over L of ||J_{w_l}^T y||^2), as StyleGAN2 computes it.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from ..shard import sharded


def _input_grad_norm2(critic: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """(B,) squared L2 norm, over every non-batch dimension, of d critic(x).sum() / dx (graph kept for backward)."""
    x = x.detach().requires_grad_(True)
    out = critic(x)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.flatten(1).pow(2).sum(dim=1)


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """E[(||grad D(x_hat)|| - 1)^2] on random interpolates of real and fake (without the lambda factor)."""
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    eps = sharded(torch.rand, size=shape, generator=generator, device=real.device, dtype=real.dtype)  # per sample
    x_hat = eps * real.detach() + (1 - eps) * fake.detach()
    norm = (_input_grad_norm2(critic, x_hat) + 1e-12).sqrt()  # eps keeps the gradient of sqrt finite at 0
    return ((norm - 1) ** 2).mean()


def r1_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor) -> torch.Tensor:
    """1/2 E[||grad D(x)||^2] on real data (without the gamma factor)."""
    return 0.5 * _input_grad_norm2(critic, real).mean()


def zero_centred_penalty(logits: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """1/2 E[||d logits_i / d inputs_i||^2] (without the gamma factor); ``logits`` (B,) must have been computed from
    ``inputs`` (B, ...), which require gradients. The graph is kept, so the penalty can be back-propagated."""
    if not inputs.requires_grad:
        raise ValueError("zero_centred_penalty needs inputs that require gradients (set before the forward pass)")
    (grad,) = torch.autograd.grad(logits.sum(), inputs, create_graph=True)
    return 0.5 * grad.flatten(1).pow(2).sum(dim=1).mean()


def path_length_penalty(images: torch.Tensor, ws: torch.Tensor, mean: torch.Tensor, decay: float,
                        generator: torch.Generator | None = None,
                        layers: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(penalty, new mean): E[(||J_w^T y|| - a)^2] with a = lerp(``mean``, the batch's mean length, ``decay``)
    (without the weight). ``images`` (B, C, H, W) must have been computed from ``ws`` (B, L, D) or (B, D); the
    graph is kept, so the penalty can be back-propagated; the new mean is detached. ``layers``: average over the
    first this many of the L layers only (a growing generator's layers in use; the others have no gradient). Under
    torchrun the batch's mean length is averaged over the processes, so every rank keeps the same mean."""
    if not ws.requires_grad:
        raise ValueError("path_length_penalty needs styles that require gradients (part of the images' graph)")
    y = sharded(torch.randn, size=tuple(images.shape), generator=generator, device=images.device)  # fp32 noise
    y = y / math.sqrt(images.shape[-2] * images.shape[-1])
    (grad,) = torch.autograd.grad((images.float() * y).sum(), ws, create_graph=True)
    grad = grad.float() if grad.dim() == 3 else grad.float()[:, None]
    lengths = grad[:, :layers].square().sum(dim=2).mean(dim=1).sqrt()  # (B,)
    batch_mean = lengths.detach().mean()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(batch_mean)
        batch_mean = batch_mean / torch.distributed.get_world_size()
    new_mean = mean.lerp(batch_mean, decay)
    return (lengths - new_mean).square().mean(), new_mean
