"""Data sources, each registered by name in :data:`gankit.registry.DATASETS`, and batching."""

from .base import ArrayData
from .sources import load_dataset

__all__ = ["ArrayData", "load_dataset"]
