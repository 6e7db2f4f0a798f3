"""Reconstruction losses and the VAE's terms, as pure functions of tensors (each returns one value per sample).

VAE (Kingma & Welling 2014): with q(z|x) = N(mu, diag(exp(logvar))) and the prior p(z) = N(0, I),

* the reparameterisation z = mu + exp(logvar / 2) * eps, eps ~ N(0, I) (sec. 2.4), so gradients reach mu and logvar;
* the analytic KL(q || p) = 1/2 sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j) (appendix B);
* log p(x|z) for a Bernoulli decoder (logits l, targets t in [0, 1]): sum_i t_i l_i - softplus(l_i), the negative
  binary cross-entropy; for continuous t (grey MNIST, as the PyTorch example trains) it is a cross-entropy, not a
  likelihood, and only binary t give a log-probability;
* log p(x|z) for a Gaussian decoder with mean m and one shared scale sigma: -1/2 sum_i ((x_i - m_i)^2 / sigma^2
  + log(2 pi sigma^2)).

Images live in [-1, 1] in gankit: :func:`to_unit` maps them to the [0, 1] targets of the Bernoulli decoder.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..shard import sharded


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] -> intensities in [0, 1]."""
    return (x + 1) / 2


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """z = mu + sigma * eps with eps ~ N(0, I) drawn from ``generator``; differentiable in mu and logvar."""
    eps = sharded(torch.randn, size=tuple(mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """(B, d) -> (B,) KL(N(mu, exp(logvar)) || N(0, I)), in nats."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1)


def bernoulli_log_likelihood(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, ...) logits and targets in [0, 1] -> (B,) sum of t log p + (1 - t) log(1 - p), in nats."""
    return -F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).sum(dim=1)


def gaussian_log_likelihood(mean: torch.Tensor, target: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """(B, ...) means and targets, a scalar log sigma -> (B,) log N(target; mean, sigma^2 I), in nats."""
    d = mean[0].numel()
    sq = (target - mean).pow(2).flatten(1).sum(dim=1)
    return -0.5 * sq * torch.exp(-2 * log_sigma) - d * (log_sigma + 0.5 * math.log(2 * math.pi))


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """(..., d) -> (...) log N(z; 0, I)."""
    return -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(dim=-1)


def diagonal_normal_log_prob(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """(..., d) -> (...) log N(z; mu, diag(exp(logvar)))."""
    return -0.5 * ((z - mu).pow(2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(dim=-1)


def reconstruction_loss(name: str, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, ...) -> (B,) per-sample ``mse``, ``l1`` (means over the values) or ``bce`` (sum, on [0, 1] intensities of
    [-1, 1] images)."""
    if name == "mse":
        return (out - target).pow(2).flatten(1).mean(dim=1)
    if name == "l1":
        return (out - target).abs().flatten(1).mean(dim=1)
    if name == "bce":
        return F.binary_cross_entropy(to_unit(out).clamp(1e-6, 1 - 1e-6), to_unit(target),
                                      reduction="none").flatten(1).sum(dim=1)
    raise ValueError(f"unknown reconstruction loss {name!r}; valid choices: mse, l1, bce")
