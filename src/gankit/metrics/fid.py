"""Fréchet distance between Gaussian fits of two feature sets (Heusel et al. 2017, "GANs trained by a two time-scale
update rule converge to a local Nash equilibrium", eq. 6):

    d^2 = ||mu1 - mu2||^2 + Tr(C1 + C2 - 2 (C1 C2)^{1/2})

Tr (C1 C2)^{1/2} is computed through the symmetric matrix sqrt(C1) C2 sqrt(C1), which has the same eigenvalues as
C1 C2 and is positive semi-definite, so its square root is the sum of the square roots of its eigenvalues: no
complex round-off as with a general matrix square root.

Intra-class FID (Miyato & Koyama 2018, "cGANs with Projection Discriminator", sec. 5): for a class-conditional
generator, the FID between the samples generated for class c and the reference items of class c, averaged over the
classes. It sees what the pooled FID cannot: a generator that draws good digits under the wrong labels.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of (N, D) features, in float64."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need (N, D) features with N >= 2, got shape {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False, ddof=1).reshape(x.shape[1], x.shape[1])


def _psd_sqrt(c: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (negative round-off eigenvalues clipped)."""
    w, v = linalg.eigh(c)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """The squared Fréchet distance between N(mu1, cov1) and N(mu2, cov2)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    cov1, cov2 = np.atleast_2d(np.asarray(cov1, np.float64)), np.atleast_2d(np.asarray(cov2, np.float64))
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != mu1.shape * 2:
        raise ValueError(f"mismatched statistics: means {mu1.shape} and {mu2.shape}, covariances {cov1.shape} "
                         f"and {cov2.shape}")
    root1 = _psd_sqrt(cov1)
    inner = root1 @ cov2 @ root1
    eig = linalg.eigvalsh((inner + inner.T) / 2)
    tr_sqrt = float(np.sqrt(np.clip(eig, 0, None)).sum())
    d2 = float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * tr_sqrt)
    scale = float(np.trace(cov1) + np.trace(cov2)) + 1e-12
    return 0.0 if -1e-6 * scale < d2 < 0 else d2


def fid_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    """FID of two (N, D) feature sets."""
    return frechet_distance(*gaussian_stats(real), *gaussian_stats(fake))


def intra_class_fid(features: np.ndarray, labels: np.ndarray, ref_features: np.ndarray,
                    ref_labels: np.ndarray) -> dict:
    """``intra_fid`` (the mean over classes) and ``intra_fid_per_class`` (in class order) of (N, D) generated
    features with their (N,) labels against (M, D) reference features with theirs. Every class present on either
    side needs at least 2 items on both."""
    labels, ref_labels = np.asarray(labels).reshape(-1), np.asarray(ref_labels).reshape(-1)
    if len(labels) != len(features) or len(ref_labels) != len(ref_features):
        raise ValueError(f"one label per item: {len(labels)} labels for {len(features)} samples, "
                         f"{len(ref_labels)} for {len(ref_features)} reference items")
    per_class = []
    for c in np.union1d(labels, ref_labels):
        fake, real = features[labels == c], ref_features[ref_labels == c]
        if min(len(fake), len(real)) < 2:
            raise ValueError(f"class {c} has {len(fake)} samples and {len(real)} reference items; FID needs >= 2")
        per_class.append(fid_from_features(real, fake))
    return {"intra_fid": float(np.mean(per_class)), "intra_fid_per_class": per_class}
