"""Log-likelihood estimates for latent-variable models (the VAE fills in :class:`LikelihoodModel`).

With log weights log w_i = log p(x, z_i) - log q(z_i | x) for z_i ~ q(z | x), i = 1..k, the importance-weighted
bound of Burda et al. 2016 ("Importance weighted autoencoders", eq. 8) is

    L_k = log (1/k) sum_i w_i <= log p(x);

L_1 is the ELBO, E[L_k] rises with k and tends to log p(x). The published MNIST protocol uses k = 5000, drawn here
in chunks whose log-sum-exps are combined exactly: logsumexp over all k = logaddexp of the chunks' logsumexps.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch

from ..progress import progress as bar


class LikelihoodModel(Protocol):
    """A model that can draw k importance samples per input and return their log weights."""

    def log_weights(self, x: torch.Tensor, k: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """(k, B) log p(x, z_i) - log q(z_i | x) for z_i ~ q(z | x)."""
        ...


def importance_weighted_bound(log_weights: torch.Tensor) -> torch.Tensor:
    """(k, B) log weights -> (B,) L_k = logsumexp_i log w_i - log k."""
    return torch.logsumexp(log_weights, dim=0) - math.log(log_weights.shape[0])


def elbo(log_weights: torch.Tensor) -> torch.Tensor:
    """(k, B) log weights -> (B,) the ELBO, estimated by their mean."""
    return log_weights.mean(dim=0)


def bits_per_dim(nll_nats: torch.Tensor | float, num_dims: int) -> torch.Tensor | float:
    """A negative log-likelihood in nats per example -> bits per dimension."""
    return nll_nats / (num_dims * math.log(2))


def _batch_bounds(model: LikelihoodModel, x: torch.Tensor, k: int, chunk: int,
                  generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,) L_k and (B,) ELBO for one batch, drawing the k samples ``chunk`` at a time."""
    lse, total = None, None
    for done in range(0, k, chunk):
        c = min(chunk, k - done)
        lw = model.log_weights(x, c, generator=generator).double()  # (c, B)
        if lw.shape != (c, len(x)):
            raise ValueError(f"log_weights(x, {c}) must return shape ({c}, {len(x)}), got {tuple(lw.shape)}")
        part = torch.logsumexp(lw, dim=0)  # (B,)
        lse = part if lse is None else torch.logaddexp(lse, part)
        total = lw.sum(dim=0) if total is None else total + lw.sum(dim=0)
    return lse - math.log(k), total / k


@torch.no_grad()
def estimate_nll(model: LikelihoodModel, x: torch.Tensor, k: int = 5000, batch_size: int = 100, chunk: int = 500,
                 generator: torch.Generator | None = None, progress: bool | None = False) -> dict:
    """Mean -L_k (``nll``) and mean -ELBO (``elbo_nll``, from the same k samples) over ``x``, in nats
    (``progress``: a bar over the batches; None: on a terminal)."""
    if k < 1 or chunk < 1 or batch_size < 1 or len(x) == 0:
        raise ValueError(f"need k, chunk, batch_size >= 1 and some inputs, got k={k}, chunk={chunk}, "
                         f"batch_size={batch_size}, {len(x)} inputs")
    bounds, elbos = [], []
    for start in bar(range(0, len(x), batch_size), desc=f"likelihood (k={k})", unit="batch", enabled=progress):
        bound, lower = _batch_bounds(model, x[start:start + batch_size], k, chunk, generator)
        bounds.append(bound)
        elbos.append(lower)
    return {"nll": float(-torch.cat(bounds).mean()), "elbo_nll": float(-torch.cat(elbos).mean()), "k": k,
            "n": len(x)}
