"""The Vendi score (Friedman & Dieng 2023, "The Vendi Score: A Diversity Evaluation Metric for Machine Learning",
TMLR; eq. 1 and sec. 3): the exponential of the Shannon entropy of the eigenvalues of K / n, where K is the (n, n)
similarity matrix of the samples with k(x, x) = 1:

    VS = exp(-sum_i lambda_i log lambda_i),   lambda_i the eigenvalues of K / n (they sum to tr(K) / n = 1)

It is the "effective number of distinct samples": 1 for n identical samples, n for n mutually dissimilar ones
(k = 0), and it needs no reference set. gankit uses the cosine similarity of feature vectors: with X the (n, d)
features L2-normalised row by row, K = X X^T, whose non-zero eigenvalues are those of X^T X (d, d) -- the cheaper
route when n > d, and the reason the score is at most min(n, d).
"""

from __future__ import annotations

import numpy as np


def vendi_from_similarity(similarity: np.ndarray) -> float:
    """The Vendi score of an (n, n) symmetric positive semi-definite similarity matrix with unit diagonal."""
    k = np.asarray(similarity, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or len(k) == 0:
        raise ValueError(f"need a square (n, n) similarity matrix with n >= 1, got shape {k.shape}")
    return _exp_entropy(np.linalg.eigvalsh((k + k.T) / 2) / len(k))


def vendi_score(features: np.ndarray) -> float:
    """The Vendi score of (n, d) features under the cosine similarity (rows L2-normalised, K = X X^T).

    A row of zeros has no direction, hence no cosine: such rows are left out (all of them: the score is 1). The
    eigenvalues come from X^T X / n when n > d (identical non-zero spectrum), else from K / n.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"need (n, d) features with n >= 1, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1)
    x = x[norms > 0] / norms[norms > 0, None]
    n, d = x.shape
    if n == 0:
        return 1.0
    gram = x.T @ x if n > d else x @ x.T  # (d, d) or (n, n), both with trace n
    return _exp_entropy(np.linalg.eigvalsh(gram) / n)


def _exp_entropy(eigenvalues: np.ndarray) -> float:
    """exp(Shannon entropy) of eigenvalues that should sum to 1: round-off negatives clipped at 0, renormalised,
    0 log 0 = 0."""
    p = np.clip(eigenvalues, 0.0, None)
    if not p.sum() > 0:
        raise ValueError("the similarity matrix has no positive eigenvalue (its diagonal should be 1)")
    p = p / p.sum()
    p = p[p > 0]
    return float(np.exp(-np.sum(p * np.log(p))))
