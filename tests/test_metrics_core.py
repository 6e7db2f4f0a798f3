"""The pure metric functions of gankit.metrics against closed forms, brute force and hand-built sets (CPU, fast)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import linalg

from gankit.metrics import (bits_per_dim, class_histogram, classifier_score, elbo, estimate_nll, fid_from_features,
                            frechet_distance, gaussian_stats, importance_weighted_bound, intra_class_fid,
                            kernel_inception_distance, kl_to_uniform, knn_radii, mixture_scores, modes_present, mse,
                            polynomial_mmd2_unbiased, prdc, psnr, psnr_per_image, stacked_modes,
                            vendi_from_similarity, vendi_score)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def random_spd(seed: int, d: int) -> np.ndarray:
    """A well-conditioned random symmetric positive-definite (d, d) matrix."""
    a = rng(seed).normal(size=(d, d))
    return a @ a.T / d + 0.2 * np.eye(d)


# ---------------------------------------------------------------------------------------------------------------
# FID


def test_gaussian_stats_of_a_square_uses_the_unbiased_covariance():
    mu, cov = gaussian_stats(np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]], dtype=np.float32))
    assert mu.dtype == np.float64 and cov.dtype == np.float64
    assert np.abs(mu - [1.0, 1.0]).max() < 1e-12
    assert np.abs(cov - np.diag([4 / 3, 4 / 3])).max() < 1e-12  # ddof=1: sum of squares 4 over n - 1 = 3


def test_frechet_distance_diagonal_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0, 3.0]), np.array([1.0, -1.0, 0.0, 3.0])
    s1, s2 = np.array([1.0, 4.0, 0.5, 2.0]), np.array([9.0, 1.0, 0.5, 0.1])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    got = frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2))
    assert isinstance(got, float) and abs(got - expected) < 1e-10


def test_frechet_distance_full_covariances_match_sqrtm():
    c1, c2 = random_spd(1, 6), random_spd(2, 6)
    mu1, mu2 = rng(3).normal(size=6), rng(4).normal(size=6)
    ref = np.sum((mu1 - mu2) ** 2) + np.trace(c1) + np.trace(c2) - 2 * np.trace(linalg.sqrtm(c1 @ c2).real)
    assert abs(frechet_distance(mu1, c1, mu2, c2) - ref) < 1e-9 * max(1.0, ref)
    assert abs(frechet_distance(mu1, c1, mu2, c2) - frechet_distance(mu2, c2, mu1, c1)) < 1e-9


def test_frechet_distance_of_one_dimensional_gaussians():
    # N(0, 1) vs N(1, 4): 1 + 1 + 4 - 2 * 2 = 2
    assert abs(frechet_distance(np.zeros(1), np.eye(1), np.ones(1), 4 * np.eye(1)) - 2.0) < 1e-12


def test_fid_of_a_set_with_itself_is_zero_and_fid_is_symmetric():
    x = rng(5).normal(size=(3000, 32)) @ rng(6).normal(size=(32, 32))
    y = rng(7).normal(loc=0.2, size=(3000, 32))
    assert abs(fid_from_features(x, x)) < 1e-8
    assert abs(fid_from_features(x, y) - fid_from_features(y, x)) < 1e-8 * fid_from_features(x, y)
    assert fid_from_features(x, y) > 1.0


def test_fid_from_samples_approaches_the_closed_form():
    c1, c2 = random_spd(8, 4), random_spd(9, 4)
    mu1, mu2 = np.zeros(4), np.array([0.5, -0.5, 0.0, 1.0])
    x = rng(10).multivariate_normal(mu1, c1, size=200_000)
    y = rng(11).multivariate_normal(mu2, c2, size=200_000)
    expected = frechet_distance(mu1, c1, mu2, c2)
    assert expected > 1.0
    assert abs(fid_from_features(x, y) - expected) < 0.01 * expected


def test_frechet_distance_rejects_mismatched_shapes_and_names_both():
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="N >= 2"):
        gaussian_stats(np.zeros((1, 3)))


# ---------------------------------------------------------------------------------------------------------------
# Intra-class FID


def classes_of(seed: int, per_class: int, means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(features, labels): ``per_class`` Gaussian points around each row of ``means``, with unequal spreads."""
    k, d = means.shape
    g = rng(seed)
    x = np.concatenate([means[c] + (1 + c) * 0.3 * g.normal(size=(per_class, d)) for c in range(k)])
    return x, np.repeat(np.arange(k), per_class)


MEANS = np.array([[0.0, 0.0, 0.0], [4.0, 0.0, 1.0], [0.0, -3.0, 2.0]])


def test_intra_fid_of_a_set_with_itself_and_of_two_draws_of_one_distribution():
    x, y = classes_of(0, 20_000, MEANS)
    same = intra_class_fid(x, y, x, y)
    assert abs(same["intra_fid"]) < 1e-8 and len(same["intra_fid_per_class"]) == 3
    x2, y2 = classes_of(1, 20_000, MEANS)
    fresh = intra_class_fid(x2, y2, x, y)
    assert abs(fresh["intra_fid"]) < 0.01  # sampling error only: d / n scale
    assert all(abs(v) < 0.02 for v in fresh["intra_fid_per_class"])


def test_intra_fid_of_shifted_classes_is_the_mean_squared_shift():
    x, y = classes_of(2, 500, MEANS)
    shifts = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [1.0, 1.0, 1.0]])
    out = intra_class_fid(x + shifts[y], y, x, y)  # same covariances, means moved: FID_c = |shift_c|^2 exactly
    expected = (shifts ** 2).sum(1)
    assert np.abs(np.array(out["intra_fid_per_class"]) - expected).max() < 1e-8
    assert abs(out["intra_fid"] - expected.mean()) < 1e-8


def test_swapping_two_classes_raises_intra_fid_but_not_the_pooled_fid():
    x, y = classes_of(3, 2000, MEANS)
    ref, ref_y = classes_of(4, 2000, MEANS)
    swapped = np.where(y == 0, 1, np.where(y == 1, 0, y))  # the same images, drawn under the wrong label
    right, wrong = intra_class_fid(x, y, ref, ref_y), intra_class_fid(x, swapped, ref, ref_y)
    assert abs(fid_from_features(ref, x[np.argsort(swapped, kind="stable")]) - fid_from_features(ref, x)) < 1e-8
    assert right["intra_fid"] < 0.05 and wrong["intra_fid"] > 10 * right["intra_fid"] + 5.0
    assert abs(wrong["intra_fid_per_class"][2] - right["intra_fid_per_class"][2]) < 1e-12  # class 2 untouched


def test_intra_fid_refuses_a_class_with_too_few_items_and_mismatched_labels():
    x, y = classes_of(5, 10, MEANS)
    with pytest.raises(ValueError, match="class 2 has 1 samples"):
        intra_class_fid(x[:21], y[:21], x, y)
    with pytest.raises(ValueError, match="one label per item"):
        intra_class_fid(x, y[:-1], x, y)


# ---------------------------------------------------------------------------------------------------------------
# Vendi score


def test_vendi_of_identical_points_is_one_on_both_routes():
    v = rng(0).normal(size=8)
    assert abs(vendi_score(np.tile(v, (50, 1))) - 1.0) < 1e-9  # n > d: through X^T X
    assert abs(vendi_score(np.tile(rng(1).normal(size=20), (5, 1))) - 1.0) < 1e-9  # n <= d: through K
    assert abs(vendi_score(v[None]) - 1.0) < 1e-12


@pytest.mark.parametrize("n, d", [(6, 6), (4, 10)])
def test_vendi_of_orthogonal_points_is_their_number(n, d):
    q, _ = np.linalg.qr(rng(2).normal(size=(d, d)))
    x = q[:n] * rng(3).uniform(0.1, 10.0, size=(n, 1))  # the cosine ignores each point's length
    assert abs(vendi_score(x) - n) < 1e-9


def test_vendi_of_two_clusters_matches_the_closed_form():
    """A share p of the points at unit vector a, the rest at b, cos(a, b) = c: K / n has the non-zero eigenvalues
    of [[p, c sqrt(pq)], [c sqrt(pq), q]], (1 +- sqrt(1 - 4 p q (1 - c^2))) / 2."""
    for n_a, n_b, c in [(30, 70, 0.5), (50, 50, 0.0), (20, 20, 0.9)]:
        a, b = np.array([1.0, 0.0, 0.0, 0.0]), np.array([c, np.sqrt(1 - c * c), 0.0, 0.0])
        x = np.concatenate([np.tile(a, (n_a, 1)), np.tile(b, (n_b, 1))])
        p, q = n_a / (n_a + n_b), n_b / (n_a + n_b)
        root = np.sqrt(1 - 4 * p * q * (1 - c * c))
        lam = np.array([(1 + root) / 2, (1 - root) / 2])
        expected = np.exp(-np.sum(lam * np.log(lam)))
        assert abs(vendi_score(x) - expected) < 1e-9, (n_a, n_b, c)


def test_vendi_is_invariant_to_the_order_of_the_samples():
    x = rng(4).normal(size=(300, 16)) + 1.0
    perm = rng(5).permutation(300)
    assert abs(vendi_score(x) - vendi_score(x[perm])) < 1e-9 * vendi_score(x)
    assert 1.0 < vendi_score(x) < 16.0


@pytest.mark.parametrize("n, d", [(200, 12), (40, 12)])
def test_vendi_from_features_equals_vendi_of_the_cosine_similarity_matrix(n, d):
    x = rng(6).normal(size=(n, d)) * rng(7).uniform(0.5, 2.0, size=d)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    from_k = vendi_from_similarity(unit @ unit.T)  # the (n, n) route, by definition
    assert abs(vendi_score(x) - from_k) < 1e-9 * from_k
    assert abs(vendi_score(x.astype(np.float32)) - from_k) < 1e-4 * from_k  # float32 features are upcast


def test_vendi_leaves_out_rows_without_a_direction_and_checks_its_input():
    x = rng(8).normal(size=(30, 5))
    assert abs(vendi_score(np.concatenate([x, np.zeros((10, 5))])) - vendi_score(x)) < 1e-9
    assert vendi_score(np.zeros((10, 5))) == 1.0
    with pytest.raises(ValueError, match="square"):
        vendi_from_similarity(np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"\(n, d\)"):
        vendi_score(np.ones(3))


# ---------------------------------------------------------------------------------------------------------------
# KID


def cubic_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(x.y / d + 1)^3 for (M, D) and (N, D) sets, or for two single points."""
    return (a @ b.T / a.shape[-1] + 1.0) ** 3


def brute_force_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased estimator written out with loops."""
    k, m, n = cubic_kernel, len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return kxx + kyy - 2 * kxy


@pytest.mark.parametrize("m, n", [(7, 7), (5, 9), (300, 270)])
def test_polynomial_mmd2_matches_brute_force(m, n):
    x, y = rng(m).normal(size=(m, 3)), rng(n + 1).normal(loc=0.3, size=(n, 3))
    ref = brute_force_mmd2(x, y)
    assert abs(polynomial_mmd2_unbiased(x, y) - ref) < 1e-10 * max(1.0, abs(ref))


def test_mmd2_estimator_is_unbiased_for_one_distribution():
    draws = 400
    unbiased, biased = [], []
    for s in range(draws):
        x, y = rng(2 * s).normal(size=(40, 4)), rng(2 * s + 1).normal(size=(40, 4))
        unbiased.append(polynomial_mmd2_unbiased(x, y))
        k = cubic_kernel
        biased.append(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())  # the V-statistic, biased upwards
    sem = np.std(unbiased) / math.sqrt(draws)
    assert abs(np.mean(unbiased)) < 4 * sem
    assert abs(np.mean(biased)) > 10 * sem  # the check has the power to see a bias of this size


def test_kid_near_zero_for_one_distribution_and_positive_for_a_shift():
    same, same_std = kernel_inception_distance(rng(1).normal(size=(2000, 16)), rng(2).normal(size=(2000, 16)),
                                               subsets=20, subset_size=500)
    assert same_std > 0 and abs(same) < same_std
    shifted, shifted_std = kernel_inception_distance(rng(1).normal(size=(2000, 16)),
                                                     rng(2).normal(loc=0.5, size=(2000, 16)),
                                                     subsets=20, subset_size=500)
    assert shifted > 10 * shifted_std and shifted > 20 * abs(same)


def test_kid_with_one_full_size_subset_equals_the_estimator_on_the_sets():
    x, y = rng(3).normal(size=(120, 5)), rng(4).normal(loc=0.2, size=(120, 5))
    mean, std = kernel_inception_distance(x, y, subsets=1, subset_size=120, seed=3)  # permutations of x and y
    assert abs(mean - polynomial_mmd2_unbiased(x, y)) < 1e-12 and abs(std) < 1e-15


def test_kid_is_reproducible_from_its_seed():
    x, y = rng(5).normal(size=(400, 8)), rng(6).normal(size=(400, 8))
    a = kernel_inception_distance(x, y, subsets=5, subset_size=100, seed=1)
    b = kernel_inception_distance(x, y, subsets=5, subset_size=100, seed=1)
    c = kernel_inception_distance(x, y, subsets=5, subset_size=100, seed=2)
    assert a == b and a != c


def test_kid_refuses_subsets_larger_than_either_set():
    with pytest.raises(ValueError, match="subset size 20 is larger"):
        kernel_inception_distance(np.zeros((10, 2)), np.zeros((50, 2)), subset_size=20)
    with pytest.raises(ValueError, match="50 real, 10 generated"):
        kernel_inception_distance(np.zeros((50, 2)), np.zeros((10, 2)), subset_size=20)


# ---------------------------------------------------------------------------------------------------------------
# Precision, recall, density, coverage


def test_knn_radii_exclude_the_point_itself_and_match_brute_force():
    x = rng(3).normal(size=(60, 3))
    d = np.linalg.norm(x[:, None] - x[None], axis=2)
    np.fill_diagonal(d, np.inf)
    for k in (1, 3):
        brute = np.sort(d, axis=1)[:, k - 1]  # the k-th nearest other point
        got = knn_radii(torch.from_numpy(x), k, chunk=7)
        assert got.shape == (60,) and np.abs(got.double().numpy() - brute).max() < 1e-5


def test_knn_radii_with_duplicates_count_the_copy_as_a_neighbour():
    x = torch.tensor([[0.0, 0.0], [0.0, 0.0], [3.0, 4.0]])
    assert torch.equal(knn_radii(x, 1), torch.tensor([0.0, 0.0, 5.0]))
    with pytest.raises(ValueError, match="more than k"):
        knn_radii(x, 3)


def brute_force_prdc(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    """The four metrics from full float64 distance matrices."""
    def radii(x):
        d = np.linalg.norm(x[:, None] - x[None], axis=2)
        np.fill_diagonal(d, np.inf)
        return np.sort(d, axis=1)[:, k - 1]

    r_real, r_fake = radii(real), radii(fake)
    d = np.linalg.norm(fake[:, None] - real[None], axis=2)  # (M, N)
    inside_real = d <= r_real[None, :]
    return {"precision": inside_real.any(axis=1).mean(), "recall": (d <= r_fake[:, None]).any(axis=0).mean(),
            "density": inside_real.sum() / (k * len(fake)), "coverage": (d.min(axis=0) <= r_real).mean()}


def test_prdc_matches_brute_force_and_does_not_depend_on_the_chunk():
    real, fake = rng(1).normal(size=(70, 3)), rng(2).normal(loc=0.4, size=(55, 3))
    ref = brute_force_prdc(real, fake, k=3)
    small, whole = prdc(real, fake, k=3, chunk=8), prdc(torch.from_numpy(real), torch.from_numpy(fake), k=3)
    assert set(small) == {"precision", "recall", "density", "coverage"}
    for key in ref:
        assert abs(small[key] - ref[key]) < 1e-9 and abs(whole[key] - ref[key]) < 1e-9


def test_prdc_counts_points_on_a_ball_boundary_as_inside():
    real = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])  # k = 1: every real radius is 1
    fake = torch.tensor([[4.0, 0.0], [7.0, 0.0]])  # fake radii 3: (1, 0) lies exactly on the ball of (4, 0)
    out = prdc(real, fake, k=1)  # (4, 0) lies exactly on the ball of (3, 0)
    assert out == {"precision": 0.5, "recall": 0.75, "density": 0.5, "coverage": 0.25}


def test_prdc_on_half_overlapping_squares():
    real = rng(1).uniform(size=(3000, 2))
    fake = rng(2).uniform(size=(3000, 2)) + np.array([0.5, 0.0])
    out = prdc(real, fake, k=3)
    assert abs(out["precision"] - 0.5) < 0.07 and abs(out["recall"] - 0.5) < 0.07
    assert abs(out["density"] - 0.5) < 0.07
    # half the real points lie in the overlap, where coverage is 1 - 2^-k for matched densities (Naeem et al.)
    assert abs(out["coverage"] - 0.5 * (1 - 2 ** -3)) < 0.05


@pytest.mark.parametrize("k", [3, 5])
def test_prdc_for_identical_distributions(k):
    out = prdc(rng(1).uniform(size=(3000, 2)), rng(2).uniform(size=(3000, 2)), k=k)
    assert abs(out["precision"] - 1) < 0.05 and abs(out["recall"] - 1) < 0.05
    assert abs(out["density"] - 1) < 0.05
    assert abs(out["coverage"] - (1 - 2 ** -k)) < 0.03  # 0.875 for k = 3, 0.969 for k = 5


def test_prdc_of_far_apart_sets_is_zero():
    out = prdc(rng(1).normal(size=(500, 4)), rng(2).normal(size=(500, 4)) + 100.0, k=3)
    assert out == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    with pytest.raises(ValueError, match="feature sizes differ"):
        prdc(np.zeros((10, 3)), np.zeros((10, 4)))


# ---------------------------------------------------------------------------------------------------------------
# Classifier score, class histograms, Stacked MNIST


def test_classifier_score_runs_from_one_to_k():
    k = 10
    spread = np.eye(k)[np.arange(1000) % k]
    score, std = classifier_score(spread, splits=10)
    assert abs(score - k) < 1e-9 and abs(std) < 1e-9
    assert abs(classifier_score(np.tile(np.eye(k)[3], (1000, 1)))[0] - 1.0) < 1e-9
    assert abs(classifier_score(np.full((1000, k), 1 / k))[0] - 1.0) < 1e-9


def test_classifier_score_hand_computed_and_per_split():
    probs = np.array([[1.0, 0.0], [0.5, 0.5]])  # marginal (0.75, 0.25)
    kl = (math.log(1 / 0.75) + 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)) / 2
    assert abs(classifier_score(probs, splits=1)[0] - math.exp(kl)) < 1e-12
    # split 1: all class 0 (score 1); split 2: one-hot over 4 classes (score 4)
    probs = np.concatenate([np.tile(np.eye(4)[0], (8, 1)), np.eye(4)[np.arange(8) % 4]])
    mean, std = classifier_score(probs, splits=2)
    assert abs(mean - 2.5) < 1e-12 and abs(std - 1.5) < 1e-12


def test_class_histogram_kl_to_uniform_and_modes_present():
    hist = class_histogram(np.array([0, 0, 1, 3]), 4)
    assert np.abs(hist - [0.5, 0.25, 0.0, 0.25]).max() < 1e-15 and abs(hist.sum() - 1) < 1e-15
    assert abs(kl_to_uniform(np.full(10, 0.1))) < 1e-12
    assert abs(kl_to_uniform(np.eye(10)[0]) - math.log(10)) < 1e-12
    assert abs(kl_to_uniform(np.array([0.5, 0.5, 0.0, 0.0])) - math.log(2)) < 1e-12
    assert modes_present(np.array([0.5, 0.49, 0.01, 0.0]), 0.01) == 2  # strictly above the threshold
    assert modes_present(np.array([0.5, 0.49, 0.01, 0.0]), 0.005) == 3
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        class_histogram(np.array([0, 4]), 4)


def test_stacked_modes():
    every = np.array([[a, b, c] for a in range(10) for b in range(10) for c in range(10)])
    full = stacked_modes(np.repeat(every, 3, axis=0))
    assert full["modes"] == 1000 and abs(full["mode_kl"]) < 1e-9
    ten = stacked_modes(np.repeat(every[::100], 7, axis=0))  # 000, 100, ..., 900, each 7 times
    assert ten["modes"] == 10 and abs(ten["mode_kl"] - math.log(100)) < 1e-9
    one = stacked_modes(np.array([[1, 2, 3], [1, 2, 3]]))
    assert one["modes"] == 1 and abs(one["mode_kl"] - math.log(1000)) < 1e-9
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        stacked_modes(np.zeros((4, 2), np.int64))
    with pytest.raises(ValueError, match="0..9"):
        stacked_modes(np.array([[0, 10, 0]]))


# ---------------------------------------------------------------------------------------------------------------
# 2-D mixtures


RING_STD = 0.02
RING = 2.0 * np.stack([np.cos(np.arange(8) * np.pi / 4), np.sin(np.arange(8) * np.pi / 4)], axis=1)  # (8, 2)


def near(means: np.ndarray, per_mode: int, seed: int = 0) -> np.ndarray:
    """``per_mode`` points around each mean, well inside 3 standard deviations."""
    noise = rng(seed).normal(scale=0.5 * RING_STD, size=(len(means) * per_mode, 2))
    return np.repeat(means, per_mode, axis=0) + noise


def test_mixture_all_modes_covered_evenly():
    out = mixture_scores(near(RING, 50), RING, RING_STD)
    assert out["modes"] == 8 and out["num_modes"] == 8
    assert abs(out["hq_fraction"] - 1.0) < 1e-12 and abs(out["mode_kl"]) < 1e-12


def test_mixture_half_the_modes():
    out = mixture_scores(near(RING[:4], 50), RING, RING_STD)
    assert out["modes"] == 4 and abs(out["mode_kl"] - math.log(2)) < 1e-12


def test_mixture_off_mode_points_are_not_counted():
    off = np.concatenate([np.zeros((50, 2)), np.full((50, 2), 10.0)])  # the ring's centre and far away
    out = mixture_scores(np.concatenate([near(RING, 50), off]), RING, RING_STD)
    assert out["modes"] == 8 and abs(out["hq_fraction"] - 400 / 500) < 1e-12 and abs(out["mode_kl"]) < 1e-12
    edge = RING[0] + np.array([[2.99 * RING_STD, 0.0], [3.01 * RING_STD, 0.0]])  # just inside, just outside
    assert abs(mixture_scores(edge, RING, RING_STD)["hq_fraction"] - 0.5) < 1e-12


def test_mixture_exact_sampler_scores_the_2d_gaussian_share_within_3_std():
    # the ceiling the docs state for the ring and the grid: draws from the mixture itself land within 3 std of their
    # mode with probability 1 - exp(-9/2) = 98.89% (a chi-square with 2 degrees of freedom), not 100%
    n, seed = 40_000, 3
    component = rng(seed).integers(0, 8, size=n)
    points = RING[component] + rng(seed + 1).normal(scale=RING_STD, size=(n, 2))
    out = mixture_scores(points, RING, RING_STD)
    expected = 1 - math.exp(-4.5)
    spread = math.sqrt(expected * (1 - expected) / n)  # binomial std, 0.05 points
    assert out["modes"] == 8 and abs(out["hq_fraction"] - expected) < 4 * spread
    assert 0 < out["mode_kl"] < 0.002  # 8 modes, 40,000 draws: ~7 / (2 x 40,000) = 0.0001


def test_mixture_without_high_quality_samples():
    out = mixture_scores(np.zeros((20, 2)), RING, RING_STD)
    assert out["modes"] == 0 and out["hq_fraction"] == 0.0 and out["mode_kl"] == float("inf")


# ---------------------------------------------------------------------------------------------------------------
# Reconstruction


def test_psnr_of_identical_images_is_infinite():
    x = torch.rand(3, 1, 8, 8) * 2 - 1
    assert psnr(x, x) == float("inf") and mse(x, x) == 0.0
    assert bool(torch.isinf(psnr_per_image(x, x)).all())


def test_psnr_of_a_constant_error_is_the_closed_form():
    x = torch.zeros(4, 3, 8, 8)
    y = x + 0.25  # MSE 1/16; 0.25 is exact in float32
    assert abs(mse(x, y) - 1 / 16) < 1e-15
    assert abs(psnr(x, y) - 10 * math.log10(4 * 16)) < 1e-12
    assert abs(psnr(x, y, data_range=1.0) - 10 * math.log10(16)) < 1e-12
    per = psnr_per_image(x, x + torch.tensor([0.5, 0.25, 0.125, 0.0625]).view(4, 1, 1, 1))
    expected = torch.tensor([10 * math.log10(4 / c ** 2) for c in (0.5, 0.25, 0.125, 0.0625)], dtype=torch.float64)
    assert per.shape == (4,) and float((per - expected).abs().max()) < 1e-12
    with pytest.raises(ValueError, match="shapes differ"):
        mse(x, y[:2])


# ---------------------------------------------------------------------------------------------------------------
# Likelihood


def test_bound_elbo_and_bits_per_dim_on_hand_values():
    lw = torch.log(torch.tensor([[1.0, 4.0], [2.0, 4.0], [3.0, 4.0]], dtype=torch.float64))  # (k=3, B=2)
    assert torch.allclose(importance_weighted_bound(lw), torch.log(torch.tensor([2.0, 4.0], dtype=torch.float64)))
    assert abs(float(elbo(lw)[0]) - math.log(6) / 3) < 1e-12
    one = lw[:1]
    assert torch.equal(importance_weighted_bound(one), elbo(one))  # k = 1: the ELBO
    assert abs(bits_per_dim(784 * math.log(2), 784) - 1.0) < 1e-12


def normal_logpdf(x, mean, std):
    return -0.5 * ((x - mean) / std) ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)


class LinearGaussian:
    """z ~ N(0, 1), x | z ~ N(a z, s^2): p(x) = N(0, a^2 + s^2) and p(z | x) = N(a x / (a^2 + s^2), s^2 / (a^2 + s^2)).
    The proposal is the exact posterior with its standard deviation times ``widen``."""

    a, s = 2.0, 0.5

    def __init__(self, widen: float = 1.0) -> None:
        self.widen = widen

    def proposal(self, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        total = self.a ** 2 + self.s ** 2
        return self.a * x / total, self.widen * math.sqrt(self.s ** 2 / total)

    def log_weights(self, x, k, *, generator=None):
        mean, std = self.proposal(x)
        z = mean + std * torch.randn(k, len(x), generator=generator, dtype=torch.float64)  # (k, B)
        log_joint = normal_logpdf(z, 0.0, 1.0) + normal_logpdf(x, self.a * z, self.s)
        return log_joint - normal_logpdf(z, mean, std)

    def log_px(self, x: torch.Tensor) -> torch.Tensor:
        return normal_logpdf(x, 0.0, math.sqrt(self.a ** 2 + self.s ** 2))

    def exact_elbo(self, x: torch.Tensor) -> torch.Tensor:
        """E_q[log p(x, z) - log q(z)] in closed form."""
        m, v = self.proposal(x)[0], self.proposal(x)[1] ** 2
        prior = -0.5 * (m ** 2 + v) - 0.5 * math.log(2 * math.pi)
        lik = -((x - self.a * m) ** 2 + self.a ** 2 * v) / (2 * self.s ** 2) - math.log(self.s) \
            - 0.5 * math.log(2 * math.pi)
        return prior + lik + 0.5 * math.log(2 * math.pi * math.e * v)


def test_exact_posterior_gives_the_exact_likelihood_for_every_k():
    model, x = LinearGaussian(), torch.linspace(-3, 3, 13, dtype=torch.float64)
    lw = model.log_weights(x, 4, generator=torch.Generator().manual_seed(0))
    assert float((lw - model.log_px(x)).abs().max()) < 1e-10  # every log weight is log p(x)
    out = estimate_nll(model, x, k=10, batch_size=5, chunk=3, generator=torch.Generator().manual_seed(0))
    nll = float(-model.log_px(x).mean())
    assert abs(out["nll"] - nll) < 1e-10 and abs(out["elbo_nll"] - nll) < 1e-10
    assert out["k"] == 10 and out["n"] == 13


def test_the_bound_tightens_with_k_towards_log_px():
    model, x = LinearGaussian(widen=2.0), torch.linspace(-3, 3, 200, dtype=torch.float64)
    nll = float(-model.log_px(x).mean())
    est = {k: estimate_nll(model, x, k=k, batch_size=64, chunk=250, generator=torch.Generator().manual_seed(k))
           for k in (1, 10, 1000)}
    assert est[1]["nll"] > est[10]["nll"] + 0.05 > est[1000]["nll"] + 0.05
    assert abs(est[1000]["nll"] - nll) < 0.01
    elbo_nll = float(-model.exact_elbo(x).mean())
    assert elbo_nll > nll + 0.2  # the widened proposal leaves a real gap
    assert abs(est[1000]["elbo_nll"] - elbo_nll) < 0.01


class Replay:
    """Log weights read from a fixed (K, N) table, so chunked estimates can be checked exactly; x holds row ids."""

    def __init__(self, table: torch.Tensor) -> None:
        self.table, self.used = table, torch.zeros(table.shape[1], dtype=torch.long)

    def log_weights(self, x, k, *, generator=None):
        cols = x.long()
        start = int(self.used[cols[0]])
        self.used[cols] += k
        return self.table[start:start + k, cols]


def test_chunks_and_batches_combine_exactly():
    table = torch.from_numpy(rng(0).normal(scale=3.0, size=(20, 11)))  # (K=20, N=11)
    out = estimate_nll(Replay(table), torch.arange(11.0), k=20, batch_size=3, chunk=7)
    assert abs(out["nll"] - float(-importance_weighted_bound(table).mean())) < 1e-12
    assert abs(out["elbo_nll"] - float(-table.mean())) < 1e-12


def test_estimate_nll_rejects_log_weights_of_the_wrong_shape():
    class Transposed(LinearGaussian):
        def log_weights(self, x, k, *, generator=None):
            return super().log_weights(x, k, generator=generator).T

    with pytest.raises(ValueError, match="must return shape"):
        estimate_nll(Transposed(), torch.zeros(3, dtype=torch.float64), k=5)
