"""The 2-D mixture protocol of Srivastava et al. 2017 (VEEGAN, sec. 5.1) and Lin et al. 2018 (PacGAN, sec. 5): a
sample is *high quality* when it lies within 3 standard deviations of its nearest component mean; a mode is
*captured* when it is the nearest mean of at least one high-quality sample; the KL divergence of the high-quality
samples' histogram over modes to the uniform measures how evenly they are spread. The papers score 2,500 samples.
"""

from __future__ import annotations

import numpy as np

from .classes import kl_to_uniform


def mixture_scores(samples: np.ndarray, means: np.ndarray, std: float) -> dict:
    """Modes captured, the share of high-quality samples and KL(their histogram over modes || uniform)."""
    x, mu = np.asarray(samples, np.float64), np.asarray(means, np.float64)
    if x.ndim != 2 or mu.ndim != 2 or x.shape[1] != mu.shape[1]:
        raise ValueError(f"need (N, D) samples and (K, D) means, got shapes {x.shape} and {mu.shape}")
    dist = np.linalg.norm(x[:, None, :] - mu[None, :, :], axis=2)  # (N, K)
    nearest = dist.argmin(axis=1) if len(x) else np.zeros(0, np.int64)
    good = dist[np.arange(len(x)), nearest] <= 3 * std  # (N,) high quality
    counts = np.bincount(nearest[good], minlength=len(mu))  # (K,)
    kl = kl_to_uniform(counts / counts.sum()) if good.any() else float("inf")
    return {"modes": int((counts > 0).sum()), "hq_fraction": float(good.mean()) if len(x) else 0.0,
            "mode_kl": kl, "num_modes": len(mu)}
