"""Importing this module registers every built-in component (datasets, models, losses, recipes)."""

from .data import arrays, digits, folder, mnist, patches, stacked_mnist, tabular, toy2d  # noqa: F401
from . import losses, models, recipes  # noqa: F401
