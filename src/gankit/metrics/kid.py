"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs", sec. 4): the unbiased estimator of the
squared maximum mean discrepancy with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random
subsets. Unlike FID it is unbiased, so its expectation is 0 for two samples of one distribution.
"""

from __future__ import annotations

import numpy as np


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x.y / d + 1)^3 for (M, D) and (N, D) sets -> (M, N)."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def polynomial_mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 between (M, D) and (N, D) samples (self-similarities left out of the within-set means)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        raise ValueError(f"unbiased MMD needs at least 2 samples per set, got {m} and {n}")
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(within_x + within_y - 2 * kxy.mean())


def kernel_inception_distance(real: np.ndarray, fake: np.ndarray, *, subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0) -> tuple[float, float]:
    """Mean and standard deviation of the unbiased MMD^2 over ``subsets`` random subsets of each set."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if subset_size > len(real) or subset_size > len(fake):
        raise ValueError(f"KID subset size {subset_size} is larger than the sets ({len(real)} real, {len(fake)} "
                         "generated)")
    rng = np.random.default_rng(seed)
    values = [polynomial_mmd2_unbiased(real[rng.choice(len(real), subset_size, replace=False)],
                                       fake[rng.choice(len(fake), subset_size, replace=False)])
              for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))
