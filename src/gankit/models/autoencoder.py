"""Autoencoders: an hourglass network trained to regress its own input (Hinton & Salakhutdinov 2006).

The encoder squeezes a sample through a ``bottleneck``-unit code; the decoder maps the code back. With the input as
the target the network learns a compression; with noise on the input and the clean image as the target it is a
denoising autoencoder (Vincent et al. 2008; the ``autoencoding`` recipe adds the noise). ``mlp_ae`` is the fully
connected form (``hidden`` widths, mirrored in the decoder), ``conv_ae`` the convolutional one (see
:mod:`gankit.nn.hourglass`). Images come out through tanh, in [-1, 1]; 2-D points and other vectors through a linear
layer (``output``).

Every autoencoder has the verbs ``encode(x) -> z``, ``decode(z) -> x`` and ``reconstruct(x)``; ``forward(z)`` is
``decode`` so that the trainer's grids and the latent tools work on codes. A plain autoencoder has no prior over its
codes (``has_prior`` is False): it cannot ``sample``; the VAE family (:mod:`gankit.models.vae`) can.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from ..config import MAX_CHANNELS, MAX_LATENT, MAX_UNITS, check_range, check_widths
from ..errors import ConfigError, GankitError
from ..nn.generator import Generator
from ..nn.hourglass import ACTIVATIONS, build_halves
from ..registry import MODELS


@dataclass
class AutoencoderConfig:
    """Shape of an hourglass: the code size, the hidden widths (mlp) or base channels (conv)."""

    name: str = "mlp_ae"
    bottleneck: int = 32  # units in the code
    hidden: list[int] = field(default_factory=lambda: [512, 256])  # mlp: encoder widths, mirrored in the decoder
    width: int = 32  # conv: channels of the first convolution (doubled at each halving)
    activation: Literal["relu", "tanh", "leaky_relu"] = "relu"
    output: Literal["auto", "tanh", "linear"] = "auto"  # auto: tanh for images, linear for vectors
    code_activation: Literal["linear", "tanh"] = "linear"  # the code layer's units (tanh: the classic 64-16-64 net)

    def __post_init__(self) -> None:
        check_range("model.bottleneck", self.bottleneck, 1, MAX_LATENT)
        check_widths("model.hidden", self.hidden, MAX_UNITS, empty_ok=True)
        check_range("model.width", self.width, 1, MAX_CHANNELS)
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"model.activation={self.activation!r}: valid choices: {', '.join(ACTIVATIONS)}")


@dataclass
class ConvAutoencoderConfig(AutoencoderConfig):
    """The convolutional autoencoder's defaults."""

    name: str = "conv_ae"
    bottleneck: int = 16


class Autoencoder(Generator):
    """encoder: (B, *shape) -> (B, bottleneck); decoder: (B, bottleneck) -> (B, *shape)."""

    has_prior = False

    def __init__(self, cfg: AutoencoderConfig, shape: tuple[int, ...], arch: str) -> None:
        super().__init__()
        self.shape, self.latent_dim = tuple(shape), cfg.bottleneck
        self.encoder, self.decoder = build_halves(arch, self.shape, cfg.hidden, cfg.width, cfg.bottleneck,
                                                  cfg.bottleneck, cfg.activation)
        output = cfg.output if cfg.output != "auto" else ("tanh" if len(shape) == 3 else "linear")
        self.squash = output == "tanh"
        self.code_tanh = cfg.code_activation == "tanh"

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, *shape) -> (B, bottleneck) codes."""
        assert tuple(x.shape[1:]) == self.shape, f"expected (B, {self.shape}), got {tuple(x.shape)}"
        z = self.encoder(x)
        return torch.tanh(z) if self.code_tanh else z

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, bottleneck) -> (B, *shape) reconstructions (in [-1, 1] for images)."""
        out = self.decoder(z)
        return torch.tanh(out) if self.squash else out

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """decode(encode(x))."""
        return self.decode(self.encode(x))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """decode(z): the generation path the trainer and the latent tools use."""
        return self.decode(z)

    def sample(self, n: int, **kw) -> torch.Tensor:
        """A plain autoencoder has no prior over its codes: it cannot sample."""
        raise GankitError("a plain autoencoder has no prior over its codes and cannot sample: train a VAE "
                          "(configs/vae_mnist.yaml), or use encode/decode on real data")


@MODELS.register("mlp_ae", config=AutoencoderConfig, recipe="autoencoding", task="autoencoding")
def build_mlp_ae(cfg: AutoencoderConfig, shape: tuple[int, ...], num_classes: int) -> dict[str, nn.Module]:
    """A fully connected autoencoder; the trainer knows it as the ``generator`` module (it owns the decoder)."""
    return {"generator": Autoencoder(cfg, shape, "mlp")}


@MODELS.register("conv_ae", config=ConvAutoencoderConfig, recipe="autoencoding", task="autoencoding")
def build_conv_ae(cfg: AutoencoderConfig, shape: tuple[int, ...], num_classes: int) -> dict[str, nn.Module]:
    """A convolutional autoencoder for square images."""
    if len(shape) != 3:
        raise ConfigError(f"model.name=conv_ae needs images, but the data's samples have shape {tuple(shape)}: use "
                          "model.name=mlp_ae")
    try:
        return {"generator": Autoencoder(cfg, shape, "conv")}
    except ValueError as exc:
        raise ConfigError(f"model.name=conv_ae: {exc}; resize with data.size (e.g. 32) or use mlp_ae") from None
