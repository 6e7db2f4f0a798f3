"""What every generator shares: the Gaussian prior, uniform labels for class-conditional models, the one-hot
label joined to the code (Mirza & Osindero 2014), and the uniform ``sample`` verb (eval mode, explicit generator).
A family subclasses :class:`Generator`, sets ``latent_dim`` and ``num_classes`` (0: unconditional) and defines
``forward(z, labels=None)``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..shard import sharded


class Generator(nn.Module):
    """Base class of the generators: codes z (B, latent_dim) [+ labels (B,)] -> samples."""

    latent_dim: int
    num_classes: int = 0

    @property
    def device(self) -> torch.device:
        """Where the weights live."""
        return next(self.parameters()).device

    def join_labels(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """[z, onehot(labels)] for a conditional generator; z itself for an unconditional one."""
        assert z.dim() == 2 and z.shape[1] == self.latent_dim, f"expected (B, {self.latent_dim}), got {z.shape}"
        if not self.num_classes:
            return z
        if labels is None:
            raise ValueError("a conditional generator needs labels")
        return torch.cat([z, F.one_hot(labels, self.num_classes).to(z.dtype)], dim=1)

    def sample_latent(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw n codes from the prior N(0, I)."""
        return sharded(torch.randn, size=(n, self.latent_dim), generator=generator, device=self.device)

    def sample_labels(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor | None:
        """Uniform labels for a conditional generator (None for an unconditional one)."""
        if not self.num_classes:
            return None
        return sharded(torch.randint, self.num_classes, size=(n,), generator=generator, device=self.device)

    @torch.no_grad()
    def sample(self, n: int, *, labels: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """n samples (images in [-1, 1]) drawn in eval mode; labels default to uniform ones for a conditional
        generator and are ignored by an unconditional one."""
        was_training = self.training
        self.eval()
        try:
            z = self.sample_latent(n, generator=generator)
            if labels is None:
                labels = self.sample_labels(n, generator=generator)
            return self(z, labels if self.num_classes else None)
        finally:
            self.train(was_training)
