"""Nearest-neighbour metrics on features.

* Improved precision and recall (Kynkäänniemi et al. 2019, eq. 1-2): each set's manifold is the union of balls
  around its points, of radius the distance to the k-th nearest neighbour; precision is the share of generated
  points inside the real manifold, recall the share of real points inside the generated one.
* Density and coverage (Naeem et al. 2020, eq. 3-4): density counts how many real balls hold each generated point,
  divided by k (about 1 when the two distributions match); coverage is the share of real points whose own ball
  holds at least one generated point.

Distances are computed in chunks with ``torch.cdist``, so 10,000 x 10,000 pairs never sit in memory at once.
"""

from __future__ import annotations

import numpy as np
import torch


def _as_tensor(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).float()


def knn_radii(features: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    """(N,) distance from each point to its k-th nearest other point of the same set."""
    x = _as_tensor(features)
    if len(x) <= k:
        raise ValueError(f"k={k} nearest neighbours need more than {k} points, got {len(x)}")
    radii = []
    for start in range(0, len(x), chunk):
        d = torch.cdist(x[start:start + chunk], x)  # (c, N)
        radii.append(d.kthvalue(k + 1, dim=1).values)  # the 1st smallest is the point itself (distance 0)
    return torch.cat(radii)


def _ball_counts(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int) -> torch.Tensor:
    """(P,) number of balls (centres, radii) that hold each point."""
    counts = []
    for start in range(0, len(points), chunk):
        d = torch.cdist(points[start:start + chunk], centres)  # (c, C)
        counts.append((d <= radii[None, :]).sum(dim=1))
    return torch.cat(counts)


def _covered(centres: torch.Tensor, radii: torch.Tensor, points: torch.Tensor, chunk: int) -> torch.Tensor:
    """(C,) whether each ball (centre, radius) holds at least one point."""
    nearest = []
    for start in range(0, len(centres), chunk):
        nearest.append(torch.cdist(centres[start:start + chunk], points).min(dim=1).values)
    return torch.cat(nearest) <= radii


def prdc(real, fake, k: int = 3, chunk: int = 2048) -> dict[str, float]:
    """Precision, recall, density and coverage of ``fake`` (M, D) against ``real`` (N, D)."""
    real, fake = _as_tensor(real), _as_tensor(fake)
    real_radii, fake_radii = knn_radii(real, k, chunk), knn_radii(fake, k, chunk)
    in_real = _ball_counts(fake, real, real_radii, chunk)  # (M,) real balls holding each generated point
    return {"precision": float((in_real > 0).float().mean()),
            "recall": float((_ball_counts(real, fake, fake_radii, chunk) > 0).float().mean()),
            "density": float(in_real.sum()) / (k * len(fake)),
            "coverage": float(_covered(real, real_radii, fake, chunk).float().mean())}
