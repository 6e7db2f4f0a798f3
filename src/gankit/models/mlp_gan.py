"""Multilayer-perceptron GANs (Goodfellow et al. 2014).

``mlp_gan`` is the seed model of the classic Keras MNIST example, reproduced exactly: a generator
100 -> 256 -> 512 -> 1024 -> prod(shape) with LeakyReLU(0.2) and batch norm after each hidden layer and a tanh output,
and a discriminator prod(shape) -> 512 -> 256 -> 1 with LeakyReLU(0.2). Keras' batch-norm momentum 0.8 (weight of
the old running average) is PyTorch's momentum 0.2 (weight of the new batch), and Keras' epsilon is 1e-3; Dense
layers start from Glorot-uniform weights and zero biases, as in Keras.

``mlp_toy`` is the same family with toy-sized defaults for 2-D mixtures: a linear output and no batch norm.

The discriminator returns *logits* (the probability is ``sigmoid(logits)``); losses work on logits for stability.

``conditioning: concat`` is the conditional GAN of Mirza & Osindero (2014, sec. 4.1): the one-hot label joins the
noise at G's input and the flattened sample at D's input. ``pack`` is PacGAN's packing (Lin et al. 2018): D's input
holds ``pack`` samples side by side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..config import MAX_LATENT, MAX_PACK, MAX_UNITS, check_range, check_widths
from ..errors import ConfigError
from ..nn.generator import Generator
from ..registry import MODELS


@dataclass
class MLPGANConfig:
    """Widths and activations of an MLP generator/discriminator pair."""

    name: str = "mlp_gan"
    latent_dim: int = 100
    g_hidden: list[int] = field(default_factory=lambda: [256, 512, 1024])
    d_hidden: list[int] = field(default_factory=lambda: [512, 256])
    slope: float = 0.2  # LeakyReLU negative slope
    batch_norm: bool = True  # after each hidden layer of G
    bn_momentum: float = 0.2  # PyTorch convention (Keras 0.8)
    bn_eps: float = 1e-3
    output: Literal["tanh", "linear"] = "tanh"
    init: Literal["glorot", "torch"] = "glorot"
    conditioning: Literal["none", "concat"] = "none"
    pack: int = 1  # PacGAN: D judges this many samples at once

    def __post_init__(self) -> None:
        check_range("model.pack", self.pack, 1, MAX_PACK)
        if self.pack > 1 and self.conditioning != "none":
            raise ConfigError("model.pack > 1 (PacGAN) needs an unconditional model: set model.conditioning=none")
        check_range("model.latent_dim", self.latent_dim, 1, MAX_LATENT)
        for key in ("g_hidden", "d_hidden"):
            check_widths(f"model.{key}", getattr(self, key), MAX_UNITS)
        check_range("model.slope", self.slope, 0.0, 1.0, note="0 is a ReLU, 1 the identity")
        check_range("model.bn_momentum", self.bn_momentum, 0.0, 1.0, open_lo=True)
        # eps is added to the batch variance: PyTorch refuses 0 while training, and the variance of images in
        # [-1, 1] is at most 1, which an eps above 1 would drown
        check_range("model.bn_eps", self.bn_eps, 0.0, 1.0, open_lo=True)


@dataclass
class MLPToyConfig(MLPGANConfig):
    """Toy-sized defaults for 2-D mixtures."""

    name: str = "mlp_toy"
    latent_dim: int = 2
    g_hidden: list[int] = field(default_factory=lambda: [128, 128, 128])
    d_hidden: list[int] = field(default_factory=lambda: [128, 128, 128])
    batch_norm: bool = False
    output: Literal["tanh", "linear"] = "linear"
    init: Literal["glorot", "torch"] = "torch"


class MLPGenerator(Generator):
    """z (B, latent_dim) -> samples (B, *shape)."""

    def __init__(self, cfg: MLPGANConfig, shape: tuple[int, ...], num_classes: int = 0) -> None:
        super().__init__()
        self.latent_dim = cfg.latent_dim
        self.shape = shape
        self.num_classes = num_classes if cfg.conditioning == "concat" else 0
        layers: list[nn.Module] = []
        width = cfg.latent_dim + self.num_classes
        for hidden in cfg.g_hidden:
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(cfg.slope)]
            if cfg.batch_norm:
                layers.append(nn.BatchNorm1d(hidden, eps=cfg.bn_eps, momentum=cfg.bn_momentum))
            width = hidden
        layers.append(nn.Linear(width, math.prod(shape)))
        if cfg.output == "tanh":
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)
        _init(self, cfg.init)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Map latent codes (and labels, for a conditional generator) to samples."""
        return self.net(self.join_labels(z, labels)).view(z.shape[0], *self.shape)  # (B, *shape)


class MLPDiscriminator(nn.Module):
    """samples (B, *shape) -> logits (B,)."""

    def __init__(self, cfg: MLPGANConfig, shape: tuple[int, ...], num_classes: int = 0) -> None:
        super().__init__()
        self.num_classes = num_classes if cfg.conditioning == "concat" else 0
        self.conditioning = "concat" if self.num_classes else "none"
        self.pack = cfg.pack
        layers: list[nn.Module] = [nn.Flatten()]  # a no-op on the flattened input; keeps the layer indices
        width = math.prod(shape) * cfg.pack + self.num_classes
        for hidden in cfg.d_hidden:
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(cfg.slope)]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        _init(self, cfg.init)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Return one logit per (packed) sample."""
        h = x.flatten(1)
        if self.num_classes:
            if labels is None:
                raise ValueError("a conditional discriminator needs labels")
            h = torch.cat([h, F.one_hot(labels, self.num_classes).to(h.dtype)], dim=1)
        return self.net(h).squeeze(1)  # (B,)

    def forward_all(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        """(logits, None): no auxiliary classifier."""
        return self(x, labels), None


def _init(module: nn.Module, scheme: str) -> None:
    if scheme != "glorot":
        return
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)


def _build(cfg: MLPGANConfig, shape: tuple[int, ...], num_classes: int) -> dict[str, nn.Module]:
    if cfg.conditioning != "none" and num_classes < 2:
        raise ConfigError(f"model.conditioning={cfg.conditioning} needs labelled data; this dataset has none")
    return {"generator": MLPGenerator(cfg, shape, num_classes),
            "discriminator": MLPDiscriminator(cfg, shape, num_classes)}


MODELS.register("mlp_gan", config=MLPGANConfig, task="generation")(_build)
MODELS.register("mlp_toy", config=MLPToyConfig, task="generation")(_build)
