"""Log-likelihood estimates for latent-variable models (the VAE fills in :class:`LikelihoodModel`).

With log weights log w_i = log p(x, z_i) - log q(z_i | x) for z_i ~ q(z | x), i = 1..k, the importance-weighted
bound of Burda et al. 2016 (eq. 8) is L_k = log (1/k) sum_i w_i <= log p(x); L_1 is the ELBO, and L_k rises to
log p(x) as k grows. The published MNIST protocol uses k = 5000.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch


class LikelihoodModel(Protocol):
    """A model that can draw k importance samples per input and return their log weights."""

    def log_weights(self, x: torch.Tensor, k: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """(k, B) log p(x, z_i) - log q(z_i | x) for z_i ~ q(z | x)."""
        ...


def importance_weighted_bound(log_weights: torch.Tensor) -> torch.Tensor:
    """(k, B) log weights -> (B,) L_k = logsumexp_i - log k."""
    return torch.logsumexp(log_weights, dim=0) - math.log(log_weights.shape[0])


def elbo(log_weights: torch.Tensor) -> torch.Tensor:
    """(k, B) log weights -> (B,) the ELBO, estimated by their mean."""
    return log_weights.mean(dim=0)


def bits_per_dim(nll_nats: torch.Tensor | float, num_dims: int) -> torch.Tensor | float:
    """A negative log-likelihood in nats per example -> bits per dimension."""
    return nll_nats / (num_dims * math.log(2))


@torch.no_grad()
def estimate_nll(model: LikelihoodModel, x: torch.Tensor, k: int = 5000, batch_size: int = 100, chunk: int = 500,
                 generator: torch.Generator | None = None) -> dict:
    """Mean -L_k (``nll``) and mean -ELBO (``elbo_nll``, from each chunk's samples) over ``x``, in nats."""
    bounds, elbos = [], []
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        lse, elbo_sum, seen = None, 0.0, 0
        for done in range(0, k, chunk):
            lw = model.log_weights(xb, min(chunk, k - done), generator=generator)  # (c, B)
            part = torch.logsumexp(lw, dim=0)
            lse = part if lse is None else torch.logaddexp(lse, part)
            elbo_sum, seen = elbo_sum + lw.sum(dim=0), seen + lw.shape[0]
        bounds.append(lse - math.log(k))
        elbos.append(elbo_sum / seen)
    bound, lower = torch.cat(bounds), torch.cat(elbos)
    return {"nll": float(-bound.mean()), "elbo_nll": float(-lower.mean()), "k": k, "n": len(x)}
