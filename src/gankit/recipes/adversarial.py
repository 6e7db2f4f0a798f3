"""The adversarial recipe: ``d_steps`` discriminator updates, then one generator update (Goodfellow et al. 2014,
Algorithm 1, with k = ``d_steps``).

Two schedules:

- ``full``: each discriminator update sees a batch of real and a batch of fake images in one loss; the fakes come
  from the generator in training mode.
- ``keras``: the classic Keras MNIST example. The discriminator takes two separate updates, one on half a batch of
  real images (label 1) and one on half a batch of fakes (label 0) made by ``generator.predict``, i.e. in inference
  mode (batch norm uses its running statistics). The generator update uses a full batch.

In both, the player that is not learning is frozen: its parameters do not require gradients and receive none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..config import OptimConfig
from ..errors import ConfigError
from ..registry import LOSSES, RECIPES


@dataclass
class AdversarialConfig:
    """What one GAN step is: the loss pair, k discriminator steps per generator step, the batch schedule."""

    name: str = "adversarial"
    loss: str = "non_saturating"  # a registered loss: minimax, non_saturating, ...
    d_steps: int = 1  # k in Algorithm 1
    schedule: Literal["full", "keras"] = "full"

    def __post_init__(self) -> None:
        if self.d_steps < 1:
            raise ConfigError(f"recipe.d_steps={self.d_steps} is out of range: expected an integer >= 1")
        from .. import losses  # noqa: F401  (registers the losses before the look-up)

        LOSSES.get(self.loss)


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    """Freeze (False) or unfreeze (True) every parameter of ``module``."""
    for p in module.parameters():
        p.requires_grad_(flag)


class AdversarialRecipe:
    """One GAN training step over a generator/discriminator pair."""

    def __init__(self, cfg: AdversarialConfig, modules: dict[str, nn.Module], optim: OptimConfig) -> None:
        self.cfg = cfg
        self.G, self.D = modules["generator"], modules["discriminator"]
        self.loss = LOSSES.get(cfg.loss)
        betas = (optim.beta1, optim.beta2)
        self.optimizers = {
            "generator": torch.optim.Adam(self.G.parameters(), lr=optim.lr_g, betas=betas, eps=optim.eps),
            "discriminator": torch.optim.Adam(self.D.parameters(), lr=optim.lr_d, betas=betas, eps=optim.eps),
        }

    def step(self, batches, noise: torch.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        """k discriminator updates then one generator update; returns detached scalar tensors (no host sync)."""
        d_step = self._d_step_keras if self.cfg.schedule == "keras" else self._d_step_full
        for _ in range(self.cfg.d_steps):
            logs = d_step(batches, noise, batch_size)
        logs.update(self._g_step(noise, batch_size))
        return logs

    def _d_step_full(self, batches, noise: torch.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        real, _ = batches.next(batch_size)
        with torch.no_grad():
            fake = self.G(self.G.sample_latent(batch_size, generator=noise))
        real_logits, fake_logits = self.D(real), self.D(fake)
        loss = self.loss.d(real_logits, fake_logits)
        self._update("discriminator", loss)
        return _d_logs(loss, real_logits, fake_logits)

    def _d_step_keras(self, batches, noise: torch.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        half = max(1, batch_size // 2)
        real, _ = batches.next(half)
        z = self.G.sample_latent(half, generator=noise)
        fake = _predict(self.G, z)
        real_logits = self.D(real)
        loss_real = self.loss.d(real_logits, None)
        self._update("discriminator", loss_real)
        fake_logits = self.D(fake)
        loss_fake = self.loss.d(None, fake_logits)
        self._update("discriminator", loss_fake)
        # Keras reports 0.5 * (real + fake) as the discriminator loss.
        return _d_logs(0.5 * (loss_real + loss_fake), real_logits, fake_logits)

    def _g_step(self, noise: torch.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        set_requires_grad(self.D, False)
        try:
            fake = self.G(self.G.sample_latent(batch_size, generator=noise))
            loss = self.loss.g(self.D(fake))
            self._update("generator", loss)
        finally:
            set_requires_grad(self.D, True)
        return {"g_loss": loss.detach()}

    def _update(self, name: str, loss: torch.Tensor) -> None:
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def _predict(G: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """G(z) in inference mode, as Keras' ``predict`` runs it."""
    was_training = G.training
    G.eval()
    try:
        with torch.no_grad():
            return G(z)
    finally:
        G.train(was_training)


def _d_logs(loss: torch.Tensor, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> dict[str, torch.Tensor]:
    return {
        "d_loss": loss.detach(),
        "d_real": torch.sigmoid(real_logits.detach()).mean(),  # mean D(x): 1 is a sure "real"
        "d_fake": torch.sigmoid(fake_logits.detach()).mean(),  # mean D(G(z))
        # share of real and fake samples D classifies correctly; pinned at 1 is a sign of collapse
        "d_acc": 0.5 * ((real_logits.detach() > 0).float().mean() + (fake_logits.detach() < 0).float().mean()),
    }


RECIPES.register("adversarial", config=AdversarialConfig)(AdversarialRecipe)
