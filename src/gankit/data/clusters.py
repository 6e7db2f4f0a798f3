"""``data.clusters``: labels found in the training data itself, for a conditional model that learns without labels.

The self-conditioned GAN (Liu, Torralba et al. 2020, "Diverse Image Generation via Self-Conditioned GANs") clusters
the training images and trains a class-conditional GAN on the cluster indices; samples draw the cluster from the
clusters' sizes. The condition splits the data into groups a generator can cover one by one, which is what an
unconditional generator fails at when it drops modes. The paper clusters the discriminator's features and re-clusters
during training; here the clusters are found once, before training, from the data alone:

1. images are average-pooled until they hold at most ``MAX_DIMS`` values (MNIST's 784 are kept as they are);
2. principal components of the training split (the exact eigenvectors of the covariance, in float64) keep the
   ``COMPONENTS`` largest directions;
3. k-means (Lloyd's algorithm from a k-means++ start, a fixed seed) on those coordinates finds ``k`` centres.

No labels and no trained network take part. The test split is assigned to the training split's centres, so
evaluation's per-class scores (intra-class FID) compare samples of a cluster with test items of the same cluster.
The fit is kept per process, so a run's evaluations and its data loads share one fit.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .base import ArrayData
from .limits import check_setting

MAX_DIMS = 1024  # values per item after pooling: the covariance is MAX_DIMS^2
COMPONENTS = 50  # principal components kept (fewer when the items have fewer values)
MAX_ITERATIONS = 100  # Lloyd iterations; they stop earlier once no item changes cluster
SEED = 0  # of the k-means++ start: the same data gives the same clusters, whatever train.seed is
CHUNK = 8192  # items per distance computation


@dataclasses.dataclass(frozen=True)
class ClusterFit:
    """What assigning an item needs: the pooling, the projection, the centres; and the training split's sizes."""

    pool: int  # average-pooling factor for images (1: none)
    mean: torch.Tensor  # (D,) float64
    basis: torch.Tensor  # (D, P) float64, principal directions
    centres: torch.Tensor  # (k, P) float64
    prior: torch.Tensor  # (k,) float32: each cluster's share of the training items

    def assign(self, x: torch.Tensor) -> torch.Tensor:
        """(N,) int64: the nearest centre of each item of x (items as the source gives them)."""
        return _nearest(self.project(x), self.centres)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """(N, P) float64 coordinates of x's items in the principal directions."""
        parts = []
        for start in range(0, x.shape[0], CHUNK):
            part = x[start:start + CHUNK].to(torch.float64)
            if self.pool > 1:
                part = F.avg_pool2d(part, self.pool, ceil_mode=True)
            parts.append((part.reshape(part.shape[0], -1) - self.mean) @ self.basis)
        return torch.cat(parts)


def pooling(shape: tuple[int, ...]) -> int:
    """The smallest average-pooling factor that leaves an image of ``shape`` (C, H, W) at most MAX_DIMS values (1
    for vectors)."""
    if len(shape) != 3:
        return 1
    c, h, w = shape
    factor = 1
    while c * math.ceil(h / factor) * math.ceil(w / factor) > MAX_DIMS:
        factor += 1
    return factor


def fit_clusters(x: torch.Tensor, k: int) -> ClusterFit:
    """Principal components and k-means of the items ``x`` (N, ...) into ``k`` clusters (see the module's text)."""
    n = x.shape[0]
    if n < k:
        raise ConfigError(f"data.clusters={k}: the training data holds only {n:,} items; expected at most {n:,} "
                          "clusters")
    pool = pooling(tuple(x.shape[1:]))
    dims = math.prod(x.shape[1:]) // pool ** 2 if pool > 1 else math.prod(x.shape[1:])
    check_setting(f"data.clusters={k}", n * (2 * dims + COMPONENTS + k) * 8,
                  f"float64 copies, coordinates and distances of {n:,} items")
    flat = _pooled(x, pool)
    mean = flat.mean(0)
    centred = flat - mean
    cov = centred.T @ centred / max(n - 1, 1)
    values, vectors = torch.linalg.eigh(cov)  # ascending
    keep = min(COMPONENTS, flat.shape[1])
    basis = vectors[:, -keep:].flip(1)
    basis = basis * torch.where(basis.sum(0) < 0, -1.0, 1.0).to(basis)  # a fixed sign per direction
    coords = centred @ basis
    centres = _kmeans(coords, k)
    labels = _nearest(coords, centres)
    prior = torch.bincount(labels, minlength=k).to(torch.float32) / n
    return ClusterFit(pool, mean, basis, centres, prior)


def _pooled(x: torch.Tensor, pool: int) -> torch.Tensor:
    """(N, D) float64 items, images average-pooled by ``pool``."""
    x = x.to(torch.float64)
    if pool > 1:
        x = F.avg_pool2d(x, pool, ceil_mode=True)
    return x.reshape(x.shape[0], -1)


def _nearest(coords: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """(N,) index of each row's nearest centre: squared Euclidean distances |c|^2 - 2 x.c (|x|^2 is the same for
    every centre) in float64, chunk by chunk."""
    norms = (centres ** 2).sum(1)
    return torch.cat([(norms - 2 * coords[start:start + CHUNK] @ centres.T).argmin(1)
                      for start in range(0, coords.shape[0], CHUNK)])


def _kmeans(coords: torch.Tensor, k: int) -> torch.Tensor:
    """(k, P) centres: k-means++ seeding (Arthur & Vassilvitskii 2007), then Lloyd's iterations."""
    g = torch.Generator().manual_seed(SEED)
    n = coords.shape[0]
    centres = coords[torch.randint(n, (1,), generator=g)]
    nearest = ((coords - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        total = nearest.sum()
        pick = torch.multinomial(nearest / total, 1, generator=g) if total > 0 else torch.randint(n, (1,), generator=g)
        centres = torch.cat([centres, coords[pick]])
        nearest = torch.minimum(nearest, ((coords - coords[pick]) ** 2).sum(1))
    labels = _nearest(coords, centres)
    for _ in range(MAX_ITERATIONS):
        counts = torch.bincount(labels, minlength=k)
        sums = torch.zeros_like(centres).index_add_(0, labels, coords)
        filled = counts > 0  # an emptied cluster keeps its centre
        centres[filled] = sums[filled] / counts[filled, None].to(sums)
        moved = _nearest(coords, centres)
        if torch.equal(moved, labels):
            break
        labels = moved
    return centres


_FITS: dict[tuple, ClusterFit] = {}


def clustered(data: ArrayData, fit: ClusterFit) -> ArrayData:
    """``data`` with its labels replaced by cluster indices (names ``cluster 0`` ...) and the clusters' sizes as
    the prior a generator draws labels from."""
    k = fit.centres.shape[0]
    return dataclasses.replace(data, y=fit.assign(data.x), num_classes=k,
                               classes=tuple(f"cluster {i}" for i in range(k)), label_prior=fit.prior.clone())


def cached_fit(key: tuple, train: Callable[[], ArrayData], k: int) -> ClusterFit:
    """The fit for ``key`` (the data settings), computed from the items of ``train()`` (the training split) on
    first use."""
    if key not in _FITS:
        data = train()
        check_clusterable(data, k)
        _FITS[key] = fit_clusters(data.x, k)
    return _FITS[key]


def check_clusterable(data: ArrayData, k: int) -> None:
    """Refuse data whose labels cannot be replaced by clusters: translation pairs and regression tables."""
    if data.is_translation:
        raise ConfigError(f"data.clusters={k}: data {data.name!r} holds image pairs for translation, which cluster "
                          "labels do not describe; set data.clusters=0")
    if data.is_regression:
        raise ConfigError(f"data.clusters={k}: data {data.name!r} has regression targets, not class labels; set "
                          "data.clusters=0")
