"""The variational autoencoder (Kingma & Welling 2014), with the importance-weighted bound of Burda et al. (2016).

A Gaussian encoder q(z|x) gives mu and log sigma^2 (one linear layer of 2 x ``latent_dim`` units on top of the hidden
layers); the decoder p(x|z) is Bernoulli (``likelihood: bernoulli``: logits, for binarised or grey images in [0, 1])
or Gaussian (``gaussian``: a mean and one learned scale sigma shared by every value, for continuous data); the prior
is N(0, I). The terms themselves are pure functions in :mod:`gankit.losses.reconstruction`; the ``autoencoding``
recipe trains the ELBO, with beta (Higgins et al. 2017) and a KL warm-up.

Architectures: ``arch: mlp`` with ``hidden`` widths (784-400-20 is the PyTorch example's ``vae_mnist``,
784-200-200-50 with tanh the IWAE paper's) or ``arch: conv`` (see :mod:`gankit.nn.hourglass`).

Verbs: ``posterior(x) -> (mu, logvar)``, ``encode(x) -> mu``, ``decode(z) -> the decoder's mean as an image in
[-1, 1]``, ``reconstruct(x) = decode(mu)``, ``sample(n)`` from the prior, and ``log_weights(x, k)`` for
:func:`gankit.metrics.likelihood.estimate_nll`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from ..config import MAX_CHANNELS, MAX_LATENT, MAX_UNITS, check_range, check_widths
from ..errors import ConfigError
from ..losses.reconstruction import (bernoulli_log_likelihood, diagonal_normal_log_prob, gaussian_log_likelihood,
                                     standard_normal_log_prob, to_unit)
from ..nn.generator import Generator
from ..nn.hourglass import ACTIVATIONS, build_halves
from ..registry import MODELS


@dataclass
class VAEConfig:
    """A VAE's shape and its decoder's likelihood."""

    name: str = "vae"
    arch: Literal["mlp", "conv"] = "mlp"
    latent_dim: int = 20
    hidden: list[int] = field(default_factory=lambda: [400])  # mlp: encoder widths, mirrored in the decoder
    width: int = 32  # conv: channels of the first convolution
    activation: Literal["relu", "tanh", "leaky_relu"] = "relu"
    likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"

    def __post_init__(self) -> None:
        check_range("model.latent_dim", self.latent_dim, 1, MAX_LATENT)
        check_widths("model.hidden", self.hidden, MAX_UNITS, empty_ok=True)
        check_range("model.width", self.width, 1, MAX_CHANNELS)
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"model.activation={self.activation!r}: valid choices: {', '.join(ACTIVATIONS)}")


class VAE(Generator):
    """q(z|x) = N(mu(x), diag(sigma^2(x))), p(z) = N(0, I), p(x|z) Bernoulli or Gaussian."""

    has_prior = True

    def __init__(self, cfg: VAEConfig, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape, self.latent_dim, self.likelihood = tuple(shape), cfg.latent_dim, cfg.likelihood
        self.encoder, self.decoder = build_halves(cfg.arch, self.shape, cfg.hidden, cfg.width, 2 * cfg.latent_dim,
                                                  cfg.latent_dim, cfg.activation)
        # log sigma of the Gaussian decoder (unused by a Bernoulli one); starts at sigma = 1
        self.log_sigma = nn.Parameter(torch.zeros(())) if cfg.likelihood == "gaussian" else None

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, *shape) -> mu, logvar, each (B, latent_dim)."""
        assert tuple(x.shape[1:]) == self.shape, f"expected (B, {self.shape}), got {tuple(x.shape)}"
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean: (B, *shape) -> (B, latent_dim)."""
        return self.posterior(x)[0]

    def decoder_output(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> (B, *shape) logits (Bernoulli) or means (Gaussian)."""
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's mean as an image in [-1, 1]: 2p - 1 for Bernoulli, the clamped mean for Gaussian."""
        out = self.decoder(z)
        return torch.sigmoid(out) * 2 - 1 if self.likelihood == "bernoulli" else out.clamp(-1, 1)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """decode(mu(x))."""
        return self.decode(self.encode(x))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """decode(z): samples from the prior's codes."""
        return self.decode(z)

    def log_likelihood(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(B,) log p(x|z) of images x in [-1, 1] given the decoder output for z (Bernoulli on (x + 1) / 2)."""
        if self.likelihood == "bernoulli":
            return bernoulli_log_likelihood(out, to_unit(x))
        return gaussian_log_likelihood(out, x, self.log_sigma)

    @torch.no_grad()
    def log_weights(self, x: torch.Tensor, k: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """(k, B) log p(x, z_i) - log q(z_i|x), z_i ~ q(z|x): the importance weights of Burda et al. (2016)."""
        mu, logvar = self.posterior(x)
        eps = torch.randn((k, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps  # (k, B, d)
        out = self.decoder(z.reshape(-1, self.latent_dim))  # (k * B, *shape)
        log_px = self.log_likelihood(out, x.repeat(k, *[1] * (x.dim() - 1))).reshape(k, -1)
        return log_px + standard_normal_log_prob(z) - diagonal_normal_log_prob(z, mu, logvar)


@MODELS.register("vae", config=VAEConfig, recipe="autoencoding", task="autoencoding")
def build_vae(cfg: VAEConfig, shape: tuple[int, ...], num_classes: int) -> dict[str, nn.Module]:
    """A VAE; the trainer knows it as the ``generator`` module (its decoder draws from the prior)."""
    if cfg.arch == "conv" and len(shape) != 3:
        raise ConfigError(f"model.arch=conv needs images, but the data's samples have shape {tuple(shape)}")
    try:
        return {"generator": VAE(cfg, shape)}
    except ValueError as exc:
        raise ConfigError(f"model.arch=conv: {exc}; resize with data.size (e.g. 32) or use model.arch=mlp") from None
