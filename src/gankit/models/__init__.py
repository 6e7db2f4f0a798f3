"""Model families, one per file, each registered in :data:`gankit.registry.MODELS` with its config dataclass."""

from . import autoencoder, dcgan, mlp_gan, r3gan, regressor, stylegan, translation, vae  # noqa: F401
from .build import build_models

__all__ = ["build_models"]
