"""Model families, one per file, each registered in :data:`gankit.registry.MODELS` with its config dataclass."""

from . import dcgan, mlp_gan  # noqa: F401
from .build import build_models

__all__ = ["build_models"]
