"""The trainer, checkpoints and logging."""

from .trainer import Trainer, latest_checkpoint

__all__ = ["Trainer", "latest_checkpoint"]
