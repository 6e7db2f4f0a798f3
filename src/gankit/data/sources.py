"""Looking up and loading a registered data source."""

from __future__ import annotations

import dataclasses

import torch.nn.functional as F

from ..config import MAX_SIDE, DataConfig
from ..errors import ConfigError
from ..registry import DATASETS
from .base import ArrayData
from .clusters import cached_fit, check_clusterable, clustered
from .limits import check_setting


def load_dataset(cfg: DataConfig, split: str = "train", seed: int = 0) -> ArrayData:
    """Load the split (``train`` or ``test``) of the source ``cfg.name``; ``seed`` is used by generated data."""
    loader = DATASETS.get(cfg.name)
    data = loader(cfg, split=split, seed=seed)
    if cfg.pad:
        data = pad_images(data, cfg.pad)
    data = domain_view(data, cfg.domain) if cfg.domain else data
    if not cfg.clusters:
        return data
    train = (lambda: data) if split == "train" else (lambda: load_dataset(dataclasses.replace(cfg, clusters=0),
                                                                          "train", seed))
    check_clusterable(data, cfg.clusters)
    return clustered(data, cached_fit((dataclasses.astuple(cfg), seed), train, cfg.clusters))


def pad_images(data: ArrayData, pad: int) -> ArrayData:
    """``data.pad``: a black (-1) border of ``pad`` pixels on every side of every image (MNIST's 28 to StyleGAN's 32).
    Evaluation crops it off again before scoring (see :class:`gankit.metrics.evaluate.Evaluation`)."""
    if not data.is_image:
        raise ConfigError(f"data.pad={pad}: data {data.name!r} holds vectors, not images; set data.pad=0")
    n, c, h, w = data.x.shape
    if max(h, w) + 2 * pad > MAX_SIDE:
        raise ConfigError(f"data.pad={pad} makes images of {h + 2 * pad}x{w + 2 * pad} pixels, more than gankit's "
                          f"{MAX_SIDE}: expected an integer >= 0 and <= {(MAX_SIDE - max(h, w)) // 2} for these "
                          f"{h}x{w} images")
    check_setting(f"data.pad={pad}", n * c * (h + 2 * pad) * (w + 2 * pad) * 4, f"{n:,} padded float32 images")
    return dataclasses.replace(data, x=F.pad(data.x, (pad, pad, pad, pad), value=-1.0))


def domain_view(data: ArrayData, domain: str) -> ArrayData:
    """One domain of a translation dataset as a plain image dataset: A's images with ``y``, or B's with ``y_b``
    (a paired dataset's B images share A's labels). Rows of an unpaired dataset whose domains differ in size repeat
    some images of the smaller domain (see :func:`gankit.data.translation.unpaired_indices`)."""
    if not data.is_translation:
        raise ConfigError(f"data.domain={domain}: data {data.name!r} is not a translation dataset (it has no A and B "
                          "domains); leave data.domain empty")
    if domain == "A":
        x, y = data.a, data.y
    else:
        x, y = data.b, (data.y if data.paired else data.y_b)  # a pair's B shares its A's label
    classes = data.classes if y is not None else ()
    return ArrayData(x.contiguous(), y, data.num_classes if y is not None else 0, f"{data.name}:{domain}", classes)
