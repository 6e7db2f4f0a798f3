"""The thin wrapper around the pure metrics: features of generated samples and of a reference split, then every
metric that applies, stored with how it was computed.

What is measured depends on the data:

* images with an evaluator (mnist, digits, a folder with ``gankit evaluator train``): FID, KID, precision, recall,
  density, coverage and the Vendi score (cosine similarity) on the evaluator's features; the classifier score and
  the class histogram (``modes`` = classes above 1% of the samples, ``mode_kl`` = KL(p_gen || uniform)) from its
  class probabilities;
* samples given with the labels a class-conditional generator drew them for (``score(x, labels=...)``), on a
  labelled reference: intra-class FID, the FID of each class's samples against that class's reference items,
  averaged (``intra_fid``; ``intra_fid_per_class`` in class order);
* ``stacked_mnist``: the MNIST evaluator labels each channel; ``modes``/``mode_kl`` count the 1,000 digit triplets;
  the features of an image are its three channels' features side by side and its class probabilities the outer
  product of theirs;
* 2-D points (``toy2d``): FID, KID and the nearest-neighbour metrics on the coordinates themselves, plus the mixture
  protocol (``modes``, ``hq_fraction``, ``mode_kl``) on the first 2,500 samples; no Vendi score (a cosine of raw
  coordinates means nothing, and the mixture protocol counts the modes outright).

The reference is the dataset's test split (at most ``reference_size`` items, the first ones); a folder without a
``test/`` sub-folder gives the fixed 10% hold-out that ``gankit evaluator train`` held out (with a warning: the run
trained on those images too). Its features are cached on disk under ``$GANKIT_CACHE`` (default
``~/.cache/gankit``)/reference, keyed by the data settings, split, a hash of the reference data and of its labels,
the evaluator's hash and the cache's layout (:data:`CACHE_LAYOUT`: a cache written before labels were kept is never
read as one without labels).

Size guards: FID needs twice as many samples (and reference items) as feature dimensions, and intra-class FID as
many of every class; KID's subsets must fit in both sets, the nearest-neighbour metrics need more than k.
:class:`Evaluation` refuses a failed guard unless ``force`` (computed and flagged); with ``partial`` (what ``gankit
eval`` uses) a failed FID, intra-class FID or KID guard drops that metric alone, says why in the result's warnings,
and the rest is reported; the k-NN guard, the last one that can fail, still refuses.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import scipy
import torch
from safetensors.numpy import load_file, save_file

from ..version import __version__
from ..config import DataConfig
from ..data import ArrayData, load_dataset
from ..data.folder import lacks_test_split
from ..data.toy2d import mixture_means
from ..errors import GankitError
from ..progress import progress
from ..registry import DATASETS, METRICS
from .classes import class_histogram, classifier_score, kl_to_uniform, modes_present, stacked_modes
from .evaluator import Evaluator, default_evaluator, load_evaluator
from .fid import frechet_distance, gaussian_stats, intra_class_fid
from .kid import kernel_inception_distance
from .mixture import mixture_scores
from .prdc import prdc
from .train_evaluator import HOLDOUT_NAME, holdout
from .vendi import vendi_score

MIXTURE_SAMPLES = 2500  # the 2-D protocol scores exactly this many samples
CLASS_THRESHOLD = 0.01  # a class counts as present above this share of the samples
REFERENCE_SEED = 0  # generated sources (toy2d, stacked_mnist) draw their reference split with this seed
SHOWN = {"intra_fid": "intra-class FID"}  # how a warning names a metric left out (default: its key in capitals)
CACHE_LAYOUT = 2  # the fields a cached reference holds; 2: labels added (older caches lack them: never read)


@dataclass
class EvalSettings:
    """How an evaluation is computed; every field is recorded in the result's provenance."""

    n: int | None = None  # samples to draw from a run: default the dataset's (Evaluation.default_n)
    seed: int = 0  # seed of the generated samples and of KID's subsets
    k: int = 3  # nearest neighbours for precision, recall, density and coverage
    kid_subsets: int = 100
    kid_subset_size: int | None = None  # default: min(1000, number of samples, reference size)
    score_splits: int = 10  # splits of the classifier score (as the Inception Score's 10)
    reference_size: int = 10_000  # at most this many test items form the reference
    evaluator: str | None = None  # built-in name or .safetensors path; default: the dataset's built-in one
    force: bool = False  # compute despite a failed size guard (flagged in the result)
    partial: bool = False  # a failed FID or KID guard drops that metric (said in the warnings) instead of refusing
    batch_size: int = 500
    device: str = "cpu"
    cache: bool = True  # cache reference features on disk
    progress: bool | None = None  # a progress bar on stderr: None on a terminal only, False never

    def __post_init__(self) -> None:
        for key in ("k", "kid_subsets", "score_splits", "reference_size", "batch_size"):
            if getattr(self, key) < 1:
                raise GankitError(f"{key} must be a positive integer, got {getattr(self, key)}")
        if self.n is not None and self.n < 1:
            raise GankitError(f"n must be a positive number of samples, got {self.n}")
        if self.kid_subset_size is not None and self.kid_subset_size < 2:
            raise GankitError(f"--kid-subset-size must be at least 2 (the unbiased MMD needs pairs), got "
                              f"{self.kid_subset_size}")
        if not 0 <= self.seed < 2 ** 63:
            raise GankitError(f"--seed must be in 0 .. 2**63 - 1, got {self.seed}")


@dataclass
class Features:
    """What the metrics need from one sample set."""

    features: np.ndarray  # (N, D) float32
    probs: np.ndarray | None = None  # (N, K) class probabilities, when an evaluator gives them
    channel_labels: np.ndarray | None = None  # (N, 3) per-channel digits (stacked_mnist)
    points: np.ndarray | None = None  # (N, 2) raw points (toy2d)
    labels: np.ndarray | None = None  # (N,) int64: the class each sample was generated for / a reference item's


class Evaluation:
    """Evaluator and reference features for one dataset, prepared once; :meth:`score` rates sample sets."""

    def __init__(self, data_cfg: DataConfig, settings: EvalSettings | None = None) -> None:
        self.data_cfg = data_cfg
        self.settings = settings or EvalSettings()
        self.evaluator = self._load_evaluator()
        started = time.monotonic()
        reference, split, self.notes = reference_split(data_cfg, REFERENCE_SEED)
        reference = _first(reference, self.settings.reference_size)
        self.points = not reference.is_image
        self.sample_shape = reference.sample_shape
        self.reference_info = {"dataset": data_cfg.name, "split": split, "size": len(reference),
                               "sha256": _data_hash(reference), "data": _data_settings(data_cfg)}
        self.reference = self._reference_features(reference)
        self.notes += self._mismatch(reference)
        self.last_features: Features | None = None  # the samples' features from the latest score()
        self.reference_info["seconds"] = round(time.monotonic() - started, 2)

    def default_n(self) -> int:
        """Samples to draw from a run when ``n`` is unset: the dataset's registered protocol (``eval_samples``, as
        Stacked MNIST's 26,000), else 2,500 points or 10,000 images."""
        protocol = DATASETS.meta(self.data_cfg.name).get("eval_samples")
        return self.settings.n or protocol or (MIXTURE_SAMPLES if self.points else 10_000)

    # ------------------------------------------------------------------------------------------------------------

    def _load_evaluator(self) -> Evaluator | None:
        if self.data_cfg.name == "toy2d":
            return None
        name = self.settings.evaluator or default_evaluator(self.data_cfg.name, self.data_cfg.domain)
        if name is None:
            raise GankitError(f"data {self.data_cfg.name!r} has no built-in evaluator: train one on labelled "
                              f"images with `gankit evaluator train --data {self.data_cfg.name} --set "
                              "data.root=DIR -o my.safetensors`, then pass --evaluator my.safetensors")
        return load_evaluator(name, self.settings.device)

    def _mismatch(self, reference) -> list[str]:
        """A warning when an evaluator named by the user was trained on other data than this (another source, or
        other classes): its features need not describe these images, and every score computed on them is suspect.
        The built-in pairings (an MNIST evaluator for Stacked MNIST's channels, say) are not questioned."""
        ev, data = self.evaluator, self.data_cfg
        if ev is None or self.settings.evaluator in (None, default_evaluator(data.name, data.domain)):
            return []
        trained, classes = ev.spec.dataset, list(ev.spec.classes)
        ours = list(reference.classes) if reference.classes else None
        if trained == data.name and (ours is None or ours == classes):
            return []

        def shown(names: list[str]) -> str:
            return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")

        theirs = f"{trained or 'unrecorded data'} ({len(classes)} classes: {shown(classes)})"
        here = f"{data.name}" + (f" ({len(ours)} classes: {shown(ours)})" if ours else "")
        return [f"evaluator {ev.name!r} was trained on {theirs}, and these images are {here}: its features need not "
                "describe them, so read the scores with care (train an evaluator on this data: gankit evaluator "
                "train)"]

    def featurize(self, x: torch.Tensor) -> Features:
        """Features (and class probabilities) of images (N, C, H, W) in [-1, 1] or points (N, 2)."""
        if self.points:
            pts = x.detach().cpu().double().numpy()
            return Features(pts.astype(np.float32), points=pts)
        if self.data_cfg.pad:  # the border data.pad added is not the data's: score what is inside it
            p = self.data_cfg.pad
            x = x[..., p:x.shape[-2] - p, p:x.shape[-1] - p]
        if self.data_cfg.name == "stacked_mnist":
            return self._featurize_stacked(x)
        b = self.settings.batch_size  # the evaluator's own batches, a bar's step each: the same numbers
        parts = [self.evaluator(x[i:i + b], b) for i in progress(range(0, len(x), b), desc="features", unit="batch",
                                                                 enabled=self._bar(len(x)))]
        return Features(np.concatenate([f for f, _ in parts]), np.concatenate([p for _, p in parts]))

    def _bar(self, n: int) -> bool | None:
        """Whether ``n`` items get a progress bar: never for one batch, else as ``progress`` says."""
        return False if n <= self.settings.batch_size else self.settings.progress

    def _featurize_stacked(self, x: torch.Tensor) -> Features:
        if x.dim() != 4 or x.shape[1] != 3:
            raise GankitError(f"stacked_mnist samples are (N, 3, H, W) images, got {tuple(x.shape)}")
        parts = [self.evaluator(x[:, c:c + 1], self.settings.batch_size) for c in range(3)]
        feats = np.concatenate([f for f, _ in parts], axis=1)  # (N, 3D)
        p = [p for _, p in parts]
        joint = np.einsum("na,nb,nc->nabc", *p).reshape(len(x), -1)  # (N, 1000), mode id 100a + 10b + c
        labels = np.stack([q.argmax(1) for q in p], axis=1)  # (N, 3)
        return Features(feats, joint, channel_labels=labels)

    def _reference_features(self, reference: ArrayData) -> Features:
        path = self._cache_path(_class_labels(reference))
        if path is not None and path.is_file():
            arrays = load_file(str(path))
            return Features(**arrays)
        feats = self.featurize(reference.x)
        feats.labels = _class_labels(reference)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            save_file({k: v for k, v in asdict(feats).items() if v is not None}, str(path))
        return feats

    def _cache_path(self, labels: np.ndarray | None) -> Path | None:
        if not self.settings.cache:
            return None
        labels_hash = None if labels is None else hashlib.sha256(labels.tobytes()).hexdigest()
        key = {"reference": {k: v for k, v in self.reference_info.items() if k != "seconds"},
               "labels": labels_hash, "layout": CACHE_LAYOUT,
               "evaluator": self.evaluator.sha256 if self.evaluator else "points", "gankit": __version__}
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
        root = Path(os.environ.get("GANKIT_CACHE", "~/.cache/gankit")).expanduser()
        return root / "reference" / f"{self.data_cfg.name}-test-{digest}.safetensors"

    # ------------------------------------------------------------------------------------------------------------

    def kid_subset_size(self, n: int) -> int:
        """KID's subset size for ``n`` samples: the setting, else 1000, never above either set's size."""
        return min(self.settings.kid_subset_size or 1000, n, len(self.reference.features))

    def size_problems(self, n: int, labels: np.ndarray | None = None) -> dict[str, str]:
        """The size guards that scoring ``n`` samples (generated for ``labels``) fails, by the metric they guard
        (fid, intra_fid, kid, prdc)."""
        s, dim, n_ref = self.settings, self.reference.features.shape[1], len(self.reference.features)
        problems = self._intra_fid_problems(labels)
        if min(n, n_ref) < 2 * dim:
            problems["fid"] = (f"FID needs at least {2 * dim} samples and reference items (twice the evaluator's "
                               f"{dim} feature dimensions) to fit a full-rank covariance; got {n} samples and a "
                               f"reference of {n_ref}")
        if s.kid_subset_size is not None and s.kid_subset_size > min(n, n_ref):
            problems["kid"] = (f"KID subsets of {s.kid_subset_size} are larger than the {min(n, n_ref)} samples "
                               "available; lower --kid-subset-size or raise -n")
        if min(n, n_ref) <= s.k:
            problems["prdc"] = f"nearest-neighbour metrics need more than k={s.k} samples; got {min(n, n_ref)}"
        return problems

    def _intra_fid_problems(self, labels: np.ndarray | None) -> dict[str, str]:
        """Intra-class FID's guard: every class needs twice as many samples (and reference items) as feature
        dimensions, as FID does."""
        if labels is None or self.reference.labels is None:
            return {}
        dim, ref = self.reference.features.shape[1], self.reference.labels
        classes = np.union1d(labels, ref)
        counts = [(int((labels == c).sum()), int((ref == c).sum())) for c in classes]
        worst = int(np.argmin([min(pair) for pair in counts]))
        if min(counts[worst]) >= 2 * dim:
            return {}
        return {"intra_fid": f"intra-class FID needs at least {2 * dim} samples and reference items of every class "
                             f"(twice the feature dimensions); class {classes[worst]} has {counts[worst][0]} samples "
                             f"and {counts[worst][1]} reference items"}

    def check_sizes(self, n: int, labels: np.ndarray | None = None) -> list[str]:
        """Problems with scoring ``n`` samples (refused unless ``force``); empty when all is well."""
        return list(self.size_problems(n, labels).values())

    def _skipped(self, n: int, labels: np.ndarray | None) -> dict[str, str]:
        """The metrics left out of this score (``partial``), or a refusal when a guard fails otherwise."""
        problems = self.size_problems(n, labels)
        if not problems or self.settings.force:
            return {}
        if not self.settings.partial or "prdc" in problems:
            raise GankitError("; ".join(problems.values()) + " (pass --force to compute anyway; the result is "
                              "flagged)")
        return problems

    def score(self, x: torch.Tensor, source: str = "", labels: torch.Tensor | None = None) -> dict:
        """Every applicable metric for samples ``x`` (images in [-1, 1] or points), with provenance; ``labels``
        (N,), the classes a conditional generator drew them for, add intra-class FID."""
        started = time.monotonic()
        self._check_shape(x)
        labels = self._check_labels(labels, len(x))
        skipped = self._skipped(len(x), labels)
        fake = self.last_features = self.featurize(x)  # kept for callers that also need the class probabilities
        fake.labels = labels
        result = {}
        for name in METRICS.names(ordered=True):  # every registered metric that applies to these samples
            if name not in skipped:
                result.update(METRICS.get(name)(self, fake))
        result["warnings"] = self.notes + ([f"{SHOWN.get(name, name.upper())} not computed: {why} (--force "
                                            "computes it anyway, flagged)" for name, why in skipped.items()]
                                           if skipped else self.check_sizes(len(x), labels))
        result["provenance"] = self._provenance(len(x), source, time.monotonic() - started, labels)
        if skipped:
            result["provenance"]["not_computed"] = sorted(skipped)
        return result

    @staticmethod
    def _check_labels(labels: torch.Tensor | None, n: int) -> np.ndarray | None:
        """The samples' labels as (N,) int64 numpy, or None."""
        if labels is None:
            return None
        labels = torch.as_tensor(labels).detach().cpu()
        if labels.shape != (n,) or labels.dtype.is_floating_point or labels.dtype == torch.bool:
            raise GankitError(f"labels must be ({n},) integer classes, one per sample; got {labels.dtype} "
                              f"{tuple(labels.shape)}")
        return labels.long().numpy()

    def _check_shape(self, x: torch.Tensor) -> None:
        if self.points and tuple(x.shape[1:]) != self.sample_shape:
            raise GankitError(f"samples of shape {tuple(x.shape[1:])} cannot be compared with "
                              f"{self.data_cfg.name} points of shape {self.sample_shape}")
        if not self.points and (x.dim() != 4 or x.shape[1] != self.sample_shape[0]):
            raise GankitError(f"samples of shape {tuple(x.shape[1:])} cannot be compared with "
                              f"{self.data_cfg.name} images of shape {self.sample_shape} (channels differ)")


    def _provenance(self, n: int, source: str, seconds: float, labels: np.ndarray | None = None) -> dict:
        s = self.settings
        evaluator = self.evaluator.describe() if self.evaluator else {"name": "identity: the 2-D coordinates"}
        return {"samples": source, "num_samples": n, "seed": s.seed, "evaluator": evaluator,
                "feature_dim": int(self.reference.features.shape[1]), "reference": self.reference_info,
                "k": s.k, "kid": {"subsets": s.kid_subsets, "subset_size": self.kid_subset_size(n),
                                  "kernel": "(x.y/d + 1)^3"},
                "classifier_score_splits": s.score_splits, "class_threshold": CLASS_THRESHOLD,
                "vendi": None if self.points else "cosine similarity of the features (L2-normalised), all samples",
                "intra_fid": _labels_provenance(labels),
                "resize": None if self.points else f"bilinear, antialiased, to {self.evaluator.spec.size}px "
                                                     "when sizes differ",
                "crop": f"{self.data_cfg.pad}px border (data.pad) removed before scoring" if self.data_cfg.pad
                else None,
                "forced": bool(s.force and self.check_sizes(n, labels)), "seconds": round(seconds, 2),
                "versions": {"gankit": __version__, "torch": torch.__version__, "numpy": np.__version__,
                             "scipy": scipy.__version__, "python": platform.python_version()}}


# ---------------------------------------------------------------------------------------------------------------
# The metrics: each a function of the prepared evaluation and the samples' features, returning its keys (nothing
# when it does not apply); :meth:`Evaluation.score` computes every registered one, in this order.


@METRICS.register("fid")
def _fid(ev: Evaluation, fake: Features) -> dict:
    """Fréchet distance of Gaussian fits to the features (Heusel et al. 2017)."""
    return {"fid": frechet_distance(*gaussian_stats(ev.reference.features), *gaussian_stats(fake.features))}


@METRICS.register("intra_fid")
def _intra_fid(ev: Evaluation, fake: Features) -> dict:
    """FID per class, averaged: conditional samples only (Miyato & Koyama 2018). Nothing when a class has under
    two items on either side (possible only with ``force``; the warnings say which)."""
    if fake.labels is None or ev.reference.labels is None:
        return {}
    try:
        return intra_class_fid(fake.features, fake.labels, ev.reference.features, ev.reference.labels)
    except ValueError:
        return {}


@METRICS.register("kid")
def _kid(ev: Evaluation, fake: Features) -> dict:
    """Unbiased MMD^2 with a cubic polynomial kernel over random subsets (Binkowski et al. 2018)."""
    s = ev.settings
    kid, kid_std = kernel_inception_distance(ev.reference.features, fake.features, subsets=s.kid_subsets,
                                             subset_size=ev.kid_subset_size(len(fake.features)), seed=s.seed)
    return {"kid": kid, "kid_std": kid_std}


@METRICS.register("prdc")
def _prdc(ev: Evaluation, fake: Features) -> dict:
    """Precision and recall (Kynkaanniemi et al. 2019), density and coverage (Naeem et al. 2020), k-NN based."""
    return prdc(torch.from_numpy(ev.reference.features), torch.from_numpy(fake.features), k=ev.settings.k)


@METRICS.register("vendi")
def _vendi(ev: Evaluation, fake: Features) -> dict:
    """Reference-free diversity: exp of the entropy of the eigenvalues of the cosine-similarity matrix of the
    samples' features, over n (Friedman & Dieng 2023). Images only: raw 2-D coordinates have no meaningful cosine,
    and the mixture protocol already counts their modes."""
    if fake.points is not None:
        return {}
    return {"vendi": vendi_score(fake.features)}


@METRICS.register("classifier_score")
def _classifier_score(ev: Evaluation, fake: Features) -> dict:
    """The Inception Score computed with the evaluator (Salimans et al. 2016); images only."""
    if fake.probs is None:
        return {}
    score, score_std = classifier_score(fake.probs, splits=min(ev.settings.score_splits, len(fake.probs)))
    return {"classifier_score": score, "classifier_score_std": score_std}


@METRICS.register("modes")
def _modes(ev: Evaluation, fake: Features) -> dict:
    """Modes covered: classes above 1% and KL to uniform; Stacked MNIST's 1,000 triplets (Metz et al. 2017); the
    2-D mixtures' modes and high-quality share (Srivastava et al. 2017)."""
    if fake.points is not None:
        if ev.data_cfg.name != "toy2d":
            return {}
        means, std = mixture_means(ev.data_cfg.mixture)
        scores = mixture_scores(fake.points[:MIXTURE_SAMPLES], means.double().numpy(), std)
        return {**scores, "mixture_samples": min(len(fake.points), MIXTURE_SAMPLES)}
    if fake.channel_labels is not None:
        return {**stacked_modes(fake.channel_labels), "num_modes": 1000}
    hist = class_histogram(fake.probs.argmax(1), fake.probs.shape[1])
    return {"modes": modes_present(hist, CLASS_THRESHOLD), "mode_kl": kl_to_uniform(hist),
            "num_modes": int(fake.probs.shape[1]), "class_histogram": [round(float(v), 5) for v in hist]}


def reference_split(data_cfg: DataConfig, seed: int = REFERENCE_SEED) -> tuple[ArrayData, str, list[str]]:
    """(the test split, its name, warnings): the dataset's own test split, or for a folder without ``test/`` the
    fixed 10% hold-out that ``gankit evaluator train`` scored its evaluator on."""
    if data_cfg.name != "folder" or not lacks_test_split(data_cfg.root):
        return load_dataset(data_cfg, "test", seed=seed), "test", []
    _, held = holdout(load_dataset(data_cfg, "train", seed=seed))
    return held, f"holdout ({HOLDOUT_NAME})", [
        f"{data_cfg.root} has no test/ folder: scored against {HOLDOUT_NAME} ({len(held)} images), the images "
        "`gankit evaluator train` held out; the run itself trained on them too (add a test/ folder for a clean split)"]


def _first(data: ArrayData, n: int) -> ArrayData:
    if len(data) <= n:
        return data
    y = None if data.y is None else data.y[:n]
    return ArrayData(data.x[:n], y, data.num_classes, data.name, data.classes)


def _labels_provenance(labels: np.ndarray | None) -> dict | None:
    """What intra-class FID was computed over: the number of classes drawn and the smallest one's sample count."""
    if labels is None:
        return None
    _, counts = np.unique(labels, return_counts=True)
    return {"classes": len(counts), "smallest_class": int(counts.min())}


def _class_labels(data: ArrayData) -> np.ndarray | None:
    """The (N,) int64 class labels of a labelled split, else None (unlabelled data or regression targets)."""
    if data.y is None or data.y.dtype != torch.int64 or data.y.dim() != 1:
        return None
    return data.y.numpy().copy()


def _data_hash(data: ArrayData) -> str:
    return hashlib.sha256(data.x.contiguous().numpy().tobytes()).hexdigest()


def _data_settings(cfg: DataConfig) -> dict:
    """The data settings that shape the reference (the folder path is left out: the data hash covers it)."""
    keep = {"size": cfg.size, "channels": cfg.channels}
    if cfg.pad:
        keep["pad"] = cfg.pad
    if cfg.domain:
        keep["domain"] = cfg.domain
    if cfg.clusters:  # the reference's labels are clusters (intra-class FID is per cluster)
        keep["clusters"] = cfg.clusters
    if cfg.name == "toy2d":
        keep["mixture"] = cfg.mixture
    if cfg.name in ("toy2d", "stacked_mnist"):
        keep.update(num_samples=cfg.num_samples, seed=REFERENCE_SEED)
    return keep


def format_result(result: dict) -> str:
    """A readable table of an evaluation result and how it was computed (what ``gankit eval`` prints)."""
    prov = result["provenance"]
    lines = [f"{prov['samples']}: {prov['num_samples']} samples vs {prov['reference']['dataset']} "
             f"{prov['reference']['split']} ({prov['reference']['size']})"]
    shown = [(k, v) for k, v in result.items() if not k.endswith("_std") and (
        isinstance(v, float) or (isinstance(v, int) and not isinstance(v, bool) and k != "step"))]
    width = max([18, *(len(k) for k, _ in shown)])
    for key, value in shown:
        std = result.get(f"{key}_std")
        text = f"{value:.4f}" + (f" ± {std:.4f}" if std is not None else "") if isinstance(value, float) else value
        lines.append(f"  {key:<{width}} {text}")
    ae = prov.get("autoencoder", {})
    if "likelihood_n" in ae:  # the bounds may cover fewer test images than the reconstruction scores
        k = ae["iwae_k"]
        lines.append(f"likelihood: on the first {ae['likelihood_n']:,} {ae['split']} images"
                     + (" (binarised)" if ae.get("binarized") else "") + f", in {ae['units']}: nll is minus the "
                     f"IWAE bound with k={k:,} samples per image (k=1: the ELBO), elbo_nll minus the ELBO from the "
                     "same samples, test_loss the training loss")
    if prov.get("weights"):  # gankit eval's: which weights drew the samples
        lines.append("weights: " + ("the moving average of the trained ones (train.ema; --no-ema: the trained ones)"
                                    if prov["weights"] == "ema" else "as trained (no moving average)"))
    ev = prov.get("evaluator")
    if prov.get("method"):
        lines.append(f"computed: {prov['method']}")
    if ev is not None:
        lines.append(f"features: {ev['name']}" + (f" (sha256 {ev['sha256'][:12]}, {prov['feature_dim']}-d)"
                                                  if "sha256" in ev else ""))
    lines += [f"warning: {w}" for w in result["warnings"]]
    return "\n".join(lines)
