"""Family contracts: one :class:`~gankit.tasks.base.Task` per kind of model, registered in
:data:`gankit.registry.TASKS` and named on each model's registry line."""

from . import autoencoding, generation, regression, translation  # noqa: F401
from .base import Asked, Graph, Preview, Scored, Task, derive_seed, task_for

__all__ = ["Asked", "Graph", "Preview", "Scored", "Task", "derive_seed", "task_for"]
