"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs", sec. 4 and eq. 3 of the unbiased
estimator): the unbiased estimate of the squared maximum mean discrepancy with the cubic polynomial kernel
k(x, y) = (x.y / d + 1)^3, averaged over random subsets,

    MMD^2_u = sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (n (n - 1))
              - 2 sum_{i, j} k(x_i, y_j) / (m n).

Unlike FID it is unbiased, so its expectation is 0 for two samples of one distribution (and single values can be
negative). Computed in float64.
"""

from __future__ import annotations

import numpy as np

ROWS = 256  # rows per kernel block: (256, 1000) float64 is 2 MB, so the elementwise cube runs in cache


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x.y / d + 1)^3 for (M, D) and (N, D) sets -> (M, N)."""
    base = x @ y.T  # (M, N)
    base /= x.shape[1]
    base += 1.0
    out = base * base  # an explicit cube: several times faster than ** 3
    out *= base
    return out


def _cross_sum(x: np.ndarray, y: np.ndarray, rows: int = ROWS) -> float:
    """Sum of k(x_i, y_j) over all pairs, in row blocks small enough to stay in cache."""
    return float(sum(polynomial_kernel(x[i:i + rows], y).sum() for i in range(0, len(x), rows)))


def _within_sum(x: np.ndarray, rows: int = ROWS) -> float:
    """Sum of k(x_i, x_j) over i != j, from the upper triangle (the kernel is symmetric)."""
    total = 0.0
    for i in range(0, len(x), rows):
        block = polynomial_kernel(x[i:i + rows], x[i:])  # (r, m - i): a diagonal block, then the strict upper part
        r = len(block)
        total += 2 * block[:, r:].sum() + block[:, :r].sum() - np.trace(block)
    return float(total)


def polynomial_mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 between (M, D) and (N, D) samples (self-similarities left out of the within-set means)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"need (M, D) and (N, D) features, got shapes {x.shape} and {y.shape}")
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        raise ValueError(f"unbiased MMD needs at least 2 samples per set, got {m} and {n}")
    within = _within_sum(x) / (m * (m - 1)) + _within_sum(y) / (n * (n - 1))
    return within - 2 * _cross_sum(x, y) / (m * n)


def kernel_inception_distance(real: np.ndarray, fake: np.ndarray, *, subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0) -> tuple[float, float]:
    """Mean and standard deviation of the unbiased MMD^2 over ``subsets`` random subsets of each set."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if subset_size > len(real) or subset_size > len(fake):
        raise ValueError(f"KID subset size {subset_size} is larger than the sets ({len(real)} real, {len(fake)} "
                         "generated); lower the subset size or provide more samples")
    if subsets < 1:
        raise ValueError(f"KID needs at least one subset, got subsets={subsets}")
    rng = np.random.default_rng(seed)
    values = [polynomial_mmd2_unbiased(real[rng.choice(len(real), subset_size, replace=False)],
                                       fake[rng.choice(len(fake), subset_size, replace=False)])
              for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))
