"""Metrics on class predictions of generated samples.

* Classifier score: the Inception Score of Salimans et al. 2016 ("Improved techniques for training GANs", sec. 4),
  exp(E_x KL(p(y|x) || p(y))), computed with a domain classifier (an evaluator) instead of the Inception network,
  with p(y) the marginal of each split and the mean and standard deviation over splits, as in the paper. It runs
  from 1 (every sample gets the same prediction) to K (confident predictions spread evenly over K classes).
* Class histogram: how many classes hold more than a threshold share of the samples, and KL(p_gen || uniform).
* Stacked MNIST (Metz et al. 2017, "Unrolled GANs"; Srivastava et al. 2017, VEEGAN; Lin et al. 2018, PacGAN): three
  digits per image give 1,000 modes; a mode is covered when at least one sample falls in it, and the KL divergence
  of the mode histogram to the uniform over 1,000 modes measures how evenly they are covered.

Logarithms are natural, with 0 log 0 = 0.
"""

from __future__ import annotations

import numpy as np
from scipy.special import xlogy


def classifier_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """Mean and standard deviation over ``splits`` of exp(E_x KL(p(y|x) || p(y))) for (N, K) probabilities."""
    p = np.asarray(probs, np.float64)
    if p.ndim != 2 or not 1 <= splits <= len(p):
        raise ValueError(f"need (N, K) probabilities with 1 <= splits <= N, got shape {p.shape}, splits={splits}")
    scores = []
    for part in np.array_split(p, splits):
        marginal = part.mean(axis=0, keepdims=True)  # (1, K)
        kl = (xlogy(part, part) - xlogy(part, marginal)).sum(axis=1)  # (n,); marginal > 0 wherever part > 0
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def class_histogram(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(K,) share of the samples in each class."""
    y = np.asarray(labels, np.int64).ravel()
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got values from {y.min()} to {y.max()}")
    counts = np.bincount(y, minlength=num_classes)
    return counts / max(counts.sum(), 1)


def kl_to_uniform(freqs: np.ndarray) -> float:
    """KL(p || uniform) = sum p log(p K), natural log, 0 log 0 = 0."""
    p = np.asarray(freqs, np.float64)
    return float(xlogy(p, p * len(p)).sum())


def modes_present(freqs: np.ndarray, threshold: float = 0.01) -> int:
    """Number of classes holding more than ``threshold`` of the samples."""
    return int((np.asarray(freqs) > threshold).sum())


def stacked_modes(digit_labels: np.ndarray) -> dict:
    """Stacked MNIST: (N, 3) digits per channel -> modes covered (of 1,000) and KL to the uniform over them."""
    d = np.asarray(digit_labels, np.int64)
    if d.ndim != 2 or d.shape[1] != 3:
        raise ValueError(f"need (N, 3) digit labels, got shape {d.shape}")
    if d.size and (d.min() < 0 or d.max() > 9):
        raise ValueError(f"digit labels must lie in 0..9, got values from {d.min()} to {d.max()}")
    hist = class_histogram(100 * d[:, 0] + 10 * d[:, 1] + d[:, 2], 1000)
    return {"modes": int((hist > 0).sum()), "mode_kl": kl_to_uniform(hist)}
