"""The pure metric functions against closed forms and hand-built sample sets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import linalg

from gankit.data.toy2d import mixture_means
from gankit.metrics import (class_histogram, classifier_score, elbo, estimate_nll, fid_from_features,
                            frechet_distance, gaussian_stats, importance_weighted_bound, kernel_inception_distance,
                            kl_to_uniform, knn_radii, mixture_scores, modes_present, mse, prdc, psnr,
                            psnr_per_image, stacked_modes)


def rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------------------------------------------
# FID


def test_fid_closed_form_diagonal():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = 1 + 0 + 4 + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert abs(frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) - expected) < 1e-9


def test_fid_closed_form_full_covariance_matches_sqrtm():
    a, b = rng(1).normal(size=(5, 5)), rng(2).normal(size=(5, 5))
    c1, c2 = a @ a.T + 0.1 * np.eye(5), b @ b.T + 0.1 * np.eye(5)
    mu1, mu2 = rng(3).normal(size=5), rng(4).normal(size=5)
    ref = np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * linalg.sqrtm(c1 @ c2).real)
    assert abs(frechet_distance(mu1, c1, mu2, c2) - ref) < 1e-8 * max(1, ref)


def test_fid_of_a_set_with_itself_is_zero_and_fid_is_symmetric():
    x, y = rng(5).normal(size=(2000, 16)), rng(6).normal(loc=0.3, size=(2000, 16))
    assert abs(fid_from_features(x, x)) < 1e-8
    assert abs(fid_from_features(x, y) - fid_from_features(y, x)) < 1e-8
    assert fid_from_features(x, y) > 1.0


def test_fid_from_samples_approaches_the_closed_form():
    shift = np.full(4, 0.5)
    x = rng(7).normal(size=(200_000, 4))
    y = rng(8).normal(size=(200_000, 4)) * 2.0 + shift
    expected = 4 * 0.25 + 4 * (1 + 4 - 2 * 2)  # ||mu||^2 + Tr(I + 4I - 2*2I)
    assert abs(fid_from_features(x, y) - expected) < 0.05


def test_fid_rejects_mismatched_statistics():
    with pytest.raises(ValueError, match="mismatched"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    mu, cov = gaussian_stats(rng().normal(size=(10, 3)))
    assert mu.shape == (3,) and cov.shape == (3, 3)


# ---------------------------------------------------------------------------------------------------------------
# KID


def test_kid_is_unbiased_for_one_distribution_and_positive_for_two():
    values = [kernel_inception_distance(rng(s).normal(size=(200, 8)), rng(100 + s).normal(size=(200, 8)),
                                        subsets=2, subset_size=200, seed=s)[0] for s in range(40)]
    mean, sem = np.mean(values), np.std(values) / np.sqrt(len(values))
    assert abs(mean) < 4 * sem + 1e-6
    shifted, std = kernel_inception_distance(rng(1).normal(size=(500, 8)), rng(2).normal(loc=1.0, size=(500, 8)),
                                             subsets=20, subset_size=200)
    assert shifted > 10 * std and shifted > 0.1


def test_kid_refuses_subsets_larger_than_the_sets():
    with pytest.raises(ValueError, match="larger than the sets"):
        kernel_inception_distance(np.zeros((10, 2)), np.zeros((50, 2)), subset_size=20)


# ---------------------------------------------------------------------------------------------------------------
# Precision, recall, density, coverage


def test_knn_radii_exclude_the_point_itself_and_match_brute_force():
    x = torch.from_numpy(rng(3).normal(size=(50, 3))).float()
    d = torch.cdist(x, x)
    d.fill_diagonal_(float("inf"))
    brute = d.sort(dim=1).values[:, 2]  # the 3rd nearest other point
    assert torch.allclose(knn_radii(x, 3, chunk=7), brute, atol=1e-5)


def test_prdc_on_half_overlapping_squares():
    real = rng(1).uniform(size=(4000, 2))
    fake = rng(2).uniform(size=(4000, 2)) + np.array([0.5, 0.0])
    out = prdc(real, fake, k=3)
    assert abs(out["precision"] - 0.5) < 0.07 and abs(out["recall"] - 0.5) < 0.07
    assert abs(out["coverage"] - 0.5) < 0.07


def test_prdc_identical_distributions_and_disjoint_sets():
    same = prdc(rng(1).normal(size=(3000, 4)), rng(2).normal(size=(3000, 4)), k=3)
    assert 0.85 < same["precision"] <= 1 and 0.85 < same["recall"] <= 1 and 0.85 < same["coverage"] <= 1
    assert 0.8 < same["density"] < 1.2
    far = prdc(rng(1).normal(size=(500, 4)), rng(2).normal(size=(500, 4)) + 100, k=3)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


# ---------------------------------------------------------------------------------------------------------------
# Classes, stacked MNIST, 2-D mixtures


def test_classifier_score_bounds():
    k = 10
    confident_spread = np.eye(k)[np.arange(1000) % k]
    assert abs(classifier_score(confident_spread, splits=10)[0] - k) < 1e-9
    assert abs(classifier_score(np.tile(np.eye(k)[3], (1000, 1)))[0] - 1.0) < 1e-9
    uniform = np.full((1000, k), 1 / k)
    assert abs(classifier_score(uniform)[0] - 1.0) < 1e-9


def test_class_histogram_kl_and_modes():
    hist = class_histogram(np.array([0, 0, 1, 3]), 4)
    assert np.allclose(hist, [0.5, 0.25, 0, 0.25])
    assert abs(kl_to_uniform(np.full(10, 0.1))) < 1e-12
    assert abs(kl_to_uniform(np.eye(10)[0]) - math.log(10)) < 1e-12
    assert modes_present(np.array([0.5, 0.495, 0.005]), 0.01) == 2


def test_stacked_modes():
    every = np.array([[a, b, c] for a in range(10) for b in range(10) for c in range(10)])
    full = stacked_modes(every)
    assert full["modes"] == 1000 and abs(full["mode_kl"]) < 1e-9
    ten = stacked_modes(np.repeat(every[:10], 7, axis=0))
    assert ten["modes"] == 10 and abs(ten["mode_kl"] - math.log(100)) < 1e-9


def test_mixture_protocol_on_hand_built_sets():
    means, std = mixture_means("ring")
    means = means.double().numpy()
    noise = rng(0).normal(scale=std, size=(2400, 2))
    on_all = np.repeat(means, 300, axis=0) + noise
    out = mixture_scores(on_all, means, std)
    assert out["modes"] == 8 and out["hq_fraction"] > 0.98 and out["mode_kl"] < 0.01 and out["num_modes"] == 8
    half = mixture_scores(np.repeat(means[:4], 300, axis=0) + noise[:1200], means, std)
    assert half["modes"] == 4 and abs(half["mode_kl"] - math.log(2)) < 0.01
    off = np.zeros((1200, 2))  # the centre of the ring is far from every mean
    mixed = mixture_scores(np.concatenate([on_all[:1200], off]), means, std)
    assert abs(mixed["hq_fraction"] - 0.5) < 0.02
    none = mixture_scores(off, means, std)
    assert none["modes"] == 0 and none["hq_fraction"] == 0.0 and none["mode_kl"] == float("inf")


# ---------------------------------------------------------------------------------------------------------------
# Reconstruction and likelihood


def test_psnr_closed_form():
    x = torch.zeros(4, 1, 8, 8)
    assert psnr(x, x) == float("inf")
    y = x + 0.5  # MSE 0.25 -> 10 log10(4 / 0.25) (0.5 is exact in float32)
    assert abs(psnr(x, y) - 10 * math.log10(16)) < 1e-9 and abs(mse(x, y) - 0.25) < 1e-12
    assert torch.allclose(psnr_per_image(x, y), torch.full((4,), 10 * math.log10(16), dtype=torch.float64))


class GaussianModel:
    """p(z) = N(0, 1), p(x|z) = N(z, 1): p(x) = N(0, 2), p(z|x) = N(x/2, 1/2). A proposal with the wrong scale
    gives a loose ELBO that the importance-weighted bound tightens."""

    def __init__(self, q_std: float) -> None:
        self.q_std = q_std

    def log_weights(self, x, k, *, generator=None):
        mean = x / 2
        z = mean + self.q_std * torch.randn(k, len(x), generator=generator, dtype=torch.float64)
        log_joint = _normal_logpdf(z, 0.0, 1.0) + _normal_logpdf(x, z, 1.0)
        return log_joint - _normal_logpdf(z, mean, self.q_std)


def _normal_logpdf(x, mean, std):
    return -0.5 * ((x - mean) / std) ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)


def test_exact_posterior_gives_the_exact_likelihood():
    x = torch.linspace(-2, 2, 9, dtype=torch.float64)
    true = _normal_logpdf(x, 0.0, math.sqrt(2))
    lw = GaussianModel(math.sqrt(0.5)).log_weights(x, 3, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(importance_weighted_bound(lw), true, atol=1e-10)
    assert torch.allclose(elbo(lw), true, atol=1e-10)


def test_importance_weighted_bound_tightens_with_k():
    x = torch.linspace(-2, 2, 50, dtype=torch.float64)
    nll = float(-_normal_logpdf(x, 0.0, math.sqrt(2)).mean())
    model = GaussianModel(q_std=1.5)
    est = {k: estimate_nll(model, x, k=k, batch_size=20, chunk=64, generator=torch.Generator().manual_seed(1))
           for k in (1, 50, 2000)}
    assert est[1]["nll"] > est[50]["nll"] > est[2000]["nll"] > nll - 0.01
    assert abs(est[2000]["nll"] - nll) < 0.02
    assert est[2000]["elbo_nll"] > est[2000]["nll"] + 0.05 and est[2000]["k"] == 2000 and est[2000]["n"] == 50
