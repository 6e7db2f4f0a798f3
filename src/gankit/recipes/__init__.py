"""Recipes: what one training step is. Registered in :data:`gankit.registry.RECIPES` with their config class."""

from . import adversarial, autoencoding, regression, stylegan, translation  # noqa: F401
