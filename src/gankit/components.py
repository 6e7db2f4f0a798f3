"""Importing this module registers every built-in component (datasets, models, losses, recipes, tasks, metrics)."""

from .data import arrays, digits, folder, mnist, mnist_translation, patches  # noqa: F401
from .data import stacked_mnist, tabular, toy2d, translation  # noqa: F401
from . import losses, models, recipes, tasks  # noqa: F401
from .metrics import evaluate  # noqa: F401  (the metrics Evaluation.score computes)
