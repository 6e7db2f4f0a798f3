"""Evaluation: pure metric functions on features (fid, kid, prdc, vendi, classes, mixture, reconstruction, likelihood),
the evaluators that give the features (:mod:`.evaluator`, trained by :mod:`.train_evaluator`), and the wrapper that
samples, extracts features, caches the reference and records provenance (:mod:`.evaluate`)."""

from .classes import class_histogram, classifier_score, kl_to_uniform, modes_present, stacked_modes
from .fid import fid_from_features, frechet_distance, gaussian_stats, intra_class_fid
from .kid import kernel_inception_distance, polynomial_mmd2_unbiased
from .likelihood import LikelihoodModel, bits_per_dim, elbo, estimate_nll, importance_weighted_bound
from .mixture import mixture_scores
from .prdc import knn_radii, prdc
from .reconstruction import mse, psnr, psnr_per_image
from .vendi import vendi_from_similarity, vendi_score

__all__ = ["LikelihoodModel", "bits_per_dim", "class_histogram", "classifier_score", "elbo", "estimate_nll",
           "fid_from_features", "frechet_distance", "gaussian_stats", "importance_weighted_bound", "intra_class_fid",
           "kernel_inception_distance", "kl_to_uniform", "knn_radii", "mixture_scores", "modes_present", "mse",
           "polynomial_mmd2_unbiased", "prdc", "psnr", "psnr_per_image", "stacked_modes", "vendi_from_similarity",
           "vendi_score"]
