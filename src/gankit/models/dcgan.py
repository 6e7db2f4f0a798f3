"""DCGAN (Radford, Metz & Chintala 2016, sec. 3 and fig. 1), with the class-conditional variants of the GAN family.

Architecture guidelines of the paper, followed here: strided convolutions in D and fractionally-strided (transposed)
convolutions in G instead of pooling; batch norm in both (not on G's output layer nor D's input layer); ReLU in G
with a tanh output, LeakyReLU(0.2) in D; no fully connected hidden layers; weights from N(0, 0.02).

Resolution is an argument: G starts from an s0 x s0 map (4 <= s0 <= 7) and doubles it n times to reach the data's
side, n as large as keeps s0 whole and >= 4: 28 = 7 x 2^2 (MNIST), 32 = 4 x 2^3, 64 = 4 x 2^4, 8 = 4 x 2 (digits).
Channels double on the way down in D and halve on the way up in G, as in the paper's 1024 -> 512 -> 256 -> 128.

Conditioning (``conditioning``), given labels y in 0..K-1:

* ``concat`` (Mirza & Osindero 2014): G sees [z, onehot(y)]; D sees the image with K extra constant channels, one
  per class (the one-hot label broadcast over the pixels).
* ``projection`` (Miyato & Koyama 2018, eq. 3): D(x, y) = psi(phi(x)) + embed(y) . phi(x), phi(x) the sum-pooled
  features of the last convolution; G as in ``concat``.
* ``acgan`` (Odena, Olah & Shlens 2017): D is unconditional but has a second head predicting the class; both
  players add the class cross-entropy (the recipe does that); G as in ``concat``.

``class_head`` gives a ``concat`` or ``projection`` D the ACGAN class head as well, and with it the class
cross-entropy of both players: the projection term tells D whether an image matches its label, the head tells G which
class its image shows, a stronger pull towards the requested digit at some cost in diversity within a class (a
projection D with an auxiliary classifier, as P2GAN pairs them: Han et al. 2021).

Spectral normalisation (Miyato et al. 2018) wraps every layer of D when ``spectral_norm`` is true (and D's batch norm
is then dropped, as in that paper). PacGAN packing (Lin et al. 2018) is ``pack``: D's input has ``pack`` times the
channels and sees ``pack`` samples, concatenated along the channels, at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as _sn

from ..config import MAX_CHANNELS, MAX_LATENT, MAX_PACK, check_range
from ..errors import ConfigError
from ..nn.generator import Generator
from ..registry import MODELS

Conditioning = Literal["none", "concat", "projection", "acgan"]


@dataclass
class DCGANConfig:
    """Widths and options of a DCGAN pair; resolution and channels come from the data."""

    name: str = "dcgan"
    latent_dim: int = 100
    g_width: int = 64  # channels of G's last hidden layer (doubled towards its input)
    d_width: int = 64  # channels of D's first layer (doubled towards its output)
    max_width: int = 512  # cap on any layer's channels
    slope: float = 0.2  # LeakyReLU slope in D
    d_batch_norm: bool = True
    spectral_norm: bool = False  # on every layer of D (then no batch norm in D)
    conditioning: Conditioning = "none"
    pack: int = 1  # PacGAN: D judges this many samples at once
    class_head: bool = False  # a concat or projection D predicts the class too (ACGAN's head and loss)

    def __post_init__(self) -> None:
        check_range("model.latent_dim", self.latent_dim, 1, MAX_LATENT)
        for key in ("g_width", "d_width", "max_width"):
            check_range(f"model.{key}", getattr(self, key), 1, MAX_CHANNELS)
        check_range("model.slope", self.slope, 0.0, 1.0, note="0 is a ReLU, 1 the identity")
        check_range("model.pack", self.pack, 1, MAX_PACK)
        if self.pack > 1 and self.conditioning != "none":
            raise ConfigError("model.pack > 1 (PacGAN) needs an unconditional model: set model.conditioning=none")
        if self.class_head and self.conditioning not in ("concat", "projection"):
            raise ConfigError(f"model.class_head adds ACGAN's class head to a concat or projection discriminator, "
                              f"not to model.conditioning={self.conditioning} (acgan has it already)")


def plan(side: int, family: str = "DCGAN") -> tuple[int, int]:
    """(s0, n): the starting side and the number of doublings that reach ``side`` (``family`` names the model in the
    error, for the families that share this rule)."""
    n = 0
    while side % (2 ** (n + 1)) == 0 and side // 2 ** (n + 1) >= 4:
        n += 1
    s0 = side // 2 ** n
    if n == 0 or s0 > 7:
        raise ConfigError(f"{family} needs a side of s0 * 2^n with 4 <= s0 <= 7 and n >= 1 (8, 12, 16, 28, 32, 64, "
                          f"...); got {side}: set data.size")
    return s0, n


def _init_dcgan(module: nn.Module) -> None:
    """N(0, 0.02) weights, as the paper; batch-norm scales N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            # a spectral-normed layer computes .weight from .original: initialise that one
            weight = m.parametrizations.weight.original if parametrize.is_parametrized(m, "weight") else m.weight
            nn.init.normal_(weight, 0.0, 0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(Generator):
    """z (B, latent_dim) [+ labels (B,)] -> images (B, C, S, S) in [-1, 1]."""

    def __init__(self, cfg: DCGANConfig, shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        channels, side = shape[0], shape[-1]
        s0, n = plan(side)
        self.latent_dim, self.shape = cfg.latent_dim, shape
        self.num_classes = num_classes if cfg.conditioning != "none" else 0
        widths = [min(cfg.g_width * 2 ** i, cfg.max_width) for i in reversed(range(n))]  # widest first
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(cfg.latent_dim + self.num_classes, widths[0], s0, 1, 0, bias=False),  # (B, w0, s0, s0)
            nn.BatchNorm2d(widths[0]), nn.ReLU(True)]
        for w_in, w_out in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=False), nn.BatchNorm2d(w_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh()]  # (B, C, S, S)
        self.net = nn.Sequential(*layers)
        _init_dcgan(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Map codes (and labels, for a conditional generator) to images."""
        return self.net(self.join_labels(z, labels)[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """images (B, C * pack, S, S) [+ labels (B,)] -> logits (B,); one with a class head also gives class logits."""

    def __init__(self, cfg: DCGANConfig, shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        channels, side = shape[0], shape[-1]
        s0, n = plan(side)
        self.conditioning = cfg.conditioning if num_classes else "none"
        self.num_classes = num_classes if self.conditioning != "none" else 0
        self.pack = cfg.pack
        sn = _sn if cfg.spectral_norm else (lambda m: m)
        use_bn = cfg.d_batch_norm and not cfg.spectral_norm
        extra = self.num_classes if self.conditioning == "concat" else 0
        widths = [min(cfg.d_width * 2 ** i, cfg.max_width) for i in range(n)]
        layers: list[nn.Module] = [sn(nn.Conv2d(channels * cfg.pack + extra, widths[0], 4, 2, 1)),
                                   nn.LeakyReLU(cfg.slope, True)]
        for w_in, w_out in zip(widths, widths[1:]):
            layers += [sn(nn.Conv2d(w_in, w_out, 4, 2, 1, bias=not use_bn))]
            layers += [nn.BatchNorm2d(w_out)] if use_bn else []
            layers += [nn.LeakyReLU(cfg.slope, True)]
        self.trunk = nn.Sequential(*layers)  # (B, w, s0, s0)
        self.out = sn(nn.Conv2d(widths[-1], 1, s0, 1, 0))  # (B, 1, 1, 1)
        if self.conditioning == "projection":
            self.embed = sn(nn.Embedding(num_classes, widths[-1]))
        self.class_head = self.conditioning == "acgan" or (cfg.class_head and self.conditioning != "none")
        if self.class_head:
            self.classes_out = sn(nn.Conv2d(widths[-1], num_classes, s0, 1, 0))  # (B, K, 1, 1)
        _init_dcgan(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """One logit per (packed) sample."""
        return self.forward_all(x, labels)[0]

    def forward_all(self, x: torch.Tensor, labels: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits (B,), class logits (B, K) with a class head (``acgan``, ``class_head``), else None)."""
        if self.conditioning in ("concat", "projection") and labels is None:
            raise ValueError(f"a {self.conditioning}-conditional discriminator needs labels")
        if self.conditioning == "concat":
            maps = F.one_hot(labels, self.num_classes).to(x.dtype)[:, :, None, None]
            x = torch.cat([x, maps.expand(-1, -1, *x.shape[2:])], dim=1)
        h = self.trunk(x)
        logits = self.out(h).flatten()  # (B,)
        if self.conditioning == "projection":
            logits = logits + (self.embed(labels) * h.sum(dim=(2, 3))).sum(dim=1)
        classes = self.classes_out(h).flatten(1) if self.class_head else None
        return logits, classes


def _build(cfg: DCGANConfig, shape: tuple[int, ...], num_classes: int) -> dict[str, nn.Module]:
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ConfigError(f"DCGAN needs square images, got samples of shape {shape}")
    if cfg.conditioning != "none" and num_classes < 2:
        raise ConfigError(f"model.conditioning={cfg.conditioning} needs labelled data; this dataset has none")
    return {"generator": DCGANGenerator(cfg, shape, num_classes),
            "discriminator": DCGANDiscriminator(cfg, shape, num_classes)}


MODELS.register("dcgan", config=DCGANConfig, task="generation")(_build)
