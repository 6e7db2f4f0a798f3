"""Nearest-neighbour metrics on features.

* Improved precision and recall (Kynkäänniemi et al. 2019, "Improved precision and recall metric for assessing
  generative models", eq. 1-2): each set's manifold is the union of balls around its points, of radius the distance
  to the k-th nearest neighbour; precision is the share of generated points inside the real manifold, recall the
  share of real points inside the generated one.
* Density and coverage (Naeem et al. 2020, "Reliable fidelity and diversity metrics for generative models",
  eq. 3-4): density counts how many real balls hold each generated point, divided by k (about 1 when the two
  distributions match); coverage is the share of real points whose own ball holds at least one generated point.

"Inside" means distance <= radius. Distances are computed in row chunks with ``torch.cdist``, so an N x M matrix
never sits in memory at once, and the real-vs-generated distances are computed in a single pass that feeds all
four metrics.
"""

from __future__ import annotations

import numpy as np
import torch


def _as_tensor(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    """A float32 (N, D) tensor from a tensor or an array."""
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    if t.dim() != 2:
        raise ValueError(f"need (N, D) features, got shape {tuple(t.shape)}")
    return t.float()


def knn_radii(features: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    """(N,) distance from each point to its k-th nearest other point of the same set."""
    x = _as_tensor(features)
    if k < 1 or len(x) <= k:
        raise ValueError(f"k={k} nearest neighbours need k >= 1 and more than k points, got {len(x)}")
    radii = []
    for start in range(0, len(x), chunk):
        d = torch.cdist(x[start:start + chunk], x)  # (c, N)
        rows = torch.arange(len(d))
        d[rows, rows + start] = float("inf")  # leave each point out of its own neighbours, by index
        radii.append(d.topk(k, dim=1, largest=False).values[:, -1])
    return torch.cat(radii)


def _cross_pass(real: torch.Tensor, fake: torch.Tensor, real_radii: torch.Tensor, fake_radii: torch.Tensor,
                chunk: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One pass over real-vs-fake distances: (M,) real balls holding each fake point, (N,) real point in some fake
    ball, (N,) real ball holding some fake point."""
    real_balls = torch.zeros(len(fake), dtype=torch.int64)
    in_fake, covered = [], []
    for start in range(0, len(real), chunk):
        d = torch.cdist(real[start:start + chunk], fake)  # (c, M)
        r = real_radii[start:start + chunk, None]  # (c, 1)
        real_balls += (d <= r).sum(dim=0)
        in_fake.append((d <= fake_radii[None, :]).any(dim=1))
        covered.append(d.min(dim=1).values <= r[:, 0])
    return real_balls, torch.cat(in_fake), torch.cat(covered)


def prdc(real: torch.Tensor | np.ndarray, fake: torch.Tensor | np.ndarray, k: int = 3,
         chunk: int = 2048) -> dict[str, float]:
    """Precision, recall, density and coverage of ``fake`` (M, D) against ``real`` (N, D)."""
    real, fake = _as_tensor(real), _as_tensor(fake)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature sizes differ: real {tuple(real.shape)}, fake {tuple(fake.shape)}")
    real_radii, fake_radii = knn_radii(real, k, chunk), knn_radii(fake, k, chunk)
    real_balls, in_fake, covered = _cross_pass(real, fake, real_radii, fake_radii, chunk)
    return {"precision": float((real_balls > 0).double().mean()),
            "recall": float(in_fake.double().mean()),
            "density": float(real_balls.sum()) / (k * len(fake)),
            "coverage": float(covered.double().mean())}
