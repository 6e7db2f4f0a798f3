"""The recipe contract: what one training step is, and the state a step keeps between steps.

A recipe owns its optimizers and one training step; it is the only place that orders the players' updates. Every
hook but :meth:`Recipe.step` has a no-op default, so a recipe states only what it needs and nobody above it probes
for methods.
"""

from __future__ import annotations

import torch
from torch import nn


def update(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One optimizer update: clear the gradients, back-propagate ``loss``, step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


class Recipe:
    """Base of every recipe: ``optimizers`` (name -> optimizer), ``lr_keys`` (name -> the optim key that sets its
    learning rate), one :meth:`step`, and no-op hooks."""

    optimizers: dict[str, torch.optim.Optimizer]
    lr_keys: dict[str, str] = {"generator": "lr_g", "discriminator": "lr_d"}
    shown: tuple[str, ...] = ("d_loss", "g_loss", "d_real", "d_fake", "loss", "recon", "kl", "rmse")  # progress bar

    def validate(self, data, batch_size: int) -> None:
        """Refuse settings that cannot work with this data (``batch_size``: each process's share), before training."""

    def prepare(self, data) -> None:
        """Fit statistics of the training data once, before the first step (a regressor's standardisation)."""

    def step(self, batches, noise: torch.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        """One training step on ``batch_size`` samples; returns detached scalar tensors to log."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        """JSON state a checkpoint keeps besides the modules and optimizers (counters)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""

    def tensor_state(self) -> dict[str, torch.Tensor]:
        """Tensor state a checkpoint keeps (a CycleGAN's history buffers)."""
        return {}

    def load_tensor_state(self, tensors: dict[str, torch.Tensor], device: torch.device) -> None:
        """Restore :meth:`tensor_state` onto ``device``."""

    def compile_skip(self, modules: dict[str, nn.Module]) -> tuple[set[str], str]:
        """The modules ``train.compile`` must leave eager, and a note saying why (empty when none)."""
        return set(), ""
