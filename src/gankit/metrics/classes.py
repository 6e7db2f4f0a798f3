"""Metrics on class predictions of generated samples.

* Classifier score: the Inception Score of Salimans et al. 2016 (sec. 4), exp(E_x KL(p(y|x) || p(y))), computed
  with a domain classifier (an evaluator) instead of the Inception network, averaged over splits as in the paper.
  It runs from 1 (every sample gets the same prediction) to K (confident predictions spread evenly over K classes).
* Class histogram: how many classes hold more than a threshold share of the samples, and KL(p_gen || uniform).
* Stacked MNIST (Metz et al. 2017; Srivastava et al. 2017): three digits per image give 1,000 modes; a mode is
  covered when at least one sample falls in it.
"""

from __future__ import annotations

import numpy as np


def _xlogy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x * log(y) with 0 * log(anything) = 0."""
    out = np.zeros(np.broadcast(x, y).shape)
    mask = np.broadcast_to(x > 0, out.shape)
    xb, yb = np.broadcast_to(x, out.shape), np.broadcast_to(y, out.shape)
    out[mask] = xb[mask] * np.log(yb[mask])
    return out


def classifier_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """Mean and standard deviation over ``splits`` of exp(E_x KL(p(y|x) || p(y))) for (N, K) probabilities."""
    p = np.asarray(probs, np.float64)
    scores = []
    for part in np.array_split(p, splits):
        marginal = part.mean(axis=0, keepdims=True)  # (1, K)
        kl = (_xlogy(part, part) - _xlogy(part, marginal)).sum(axis=1)  # (n,)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def class_histogram(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(K,) share of the samples in each class."""
    counts = np.bincount(np.asarray(labels, np.int64), minlength=num_classes)[:num_classes]
    return counts / max(counts.sum(), 1)


def kl_to_uniform(freqs: np.ndarray) -> float:
    """KL(p || uniform) = sum p log(p K), natural log, 0 log 0 = 0."""
    p = np.asarray(freqs, np.float64)
    return float(_xlogy(p, p * len(p)).sum())


def modes_present(freqs: np.ndarray, threshold: float = 0.01) -> int:
    """Number of classes holding more than ``threshold`` of the samples."""
    return int((np.asarray(freqs) > threshold).sum())


def stacked_modes(digit_labels: np.ndarray) -> dict:
    """Stacked MNIST: (N, 3) digits per channel -> modes covered (of 1,000) and KL to the uniform over them."""
    d = np.asarray(digit_labels, np.int64)
    if d.ndim != 2 or d.shape[1] != 3:
        raise ValueError(f"need (N, 3) digit labels, got shape {d.shape}")
    hist = class_histogram(100 * d[:, 0] + 10 * d[:, 1] + d[:, 2], 1000)
    return {"modes": int((hist > 0).sum()), "mode_kl": kl_to_uniform(hist)}
