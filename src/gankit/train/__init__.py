"""The trainer, checkpoints and logging."""

from .checkpoint import latest_checkpoint
from .trainer import Trainer

__all__ = ["Trainer", "latest_checkpoint"]
