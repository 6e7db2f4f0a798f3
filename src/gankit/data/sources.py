"""Looking up and loading a registered data source."""

from __future__ import annotations

from ..config import DataConfig
from ..registry import DATASETS
from .base import ArrayData


def load_dataset(cfg: DataConfig, split: str = "train", seed: int = 0) -> ArrayData:
    """Load the split (``train`` or ``test``) of the source ``cfg.name``; ``seed`` is used by generated data."""
    from .. import components  # noqa: F401  (fills the registries)

    loader = DATASETS.get(cfg.name)
    return loader(cfg, split=split, seed=seed)
