"""The 2-D mixture protocol of Srivastava et al. 2017 (VEEGAN, sec. 5.1) and Lin et al. 2018 (PacGAN): a sample is
*high quality* when it lies within 3 standard deviations of its nearest component mean; a mode is *captured* when
it is the nearest mean of at least one high-quality sample. The papers score 2,500 samples.
"""

from __future__ import annotations

import numpy as np

from .classes import kl_to_uniform


def mixture_scores(samples: np.ndarray, means: np.ndarray, std: float) -> dict:
    """Modes captured, the share of high-quality samples and KL(their histogram over modes || uniform)."""
    x, mu = np.asarray(samples, np.float64), np.asarray(means, np.float64)
    dist = np.linalg.norm(x[:, None, :] - mu[None, :, :], axis=2)  # (N, K)
    nearest = dist.argmin(axis=1)
    good = dist[np.arange(len(x)), nearest] <= 3 * std
    counts = np.bincount(nearest[good], minlength=len(mu))
    kl = kl_to_uniform(counts / counts.sum()) if good.any() else float("inf")
    return {"modes": int((counts > 0).sum()), "hq_fraction": float(good.mean()) if len(x) else 0.0,
            "mode_kl": kl, "num_modes": len(mu)}
