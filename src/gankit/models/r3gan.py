"""R3GAN (Huang, Gokaslan, Kuleshov & Tompkin 2024, "The GAN is dead; long live the GAN! A Modern GAN Baseline",
sec. 3 and fig. 3): a plain residual architecture that trains with the relativistic pairing loss and zero-centred
gradient penalties on real and fake data (``recipe.loss: relativistic_pairing``, ``recipe.penalty: r1_r2``), with no
normalisation layer and no trick besides those.

Both networks are stacks of stages, one per resolution, that mirror each other:

* **generator**: a learned ``s0 x s0`` basis (one map per channel), modulated per sample by a linear projection of
  z (and of the class embedding, for a conditional model), then per stage ``blocks`` residual blocks and a transition
  to the next stage (a 1x1 convolution to its width, then 2x upsampling through the low-pass filter); a 1x1
  convolution makes the image. The output is linear, as in the paper; :meth:`R3GANGenerator.generate` (which
  ``sample`` and an exported graph compute) clamps it to [-1, 1], the range every image file holds.
* **discriminator**: a 1x1 convolution from the image, per stage ``blocks`` residual blocks and a transition (low-pass
  filter and 2x downsampling, then a 1x1 convolution), then a depthwise ``s0 x s0`` convolution that collapses the
  last map to one vector per sample and a linear layer: the logit, or for a conditional model the dot product of a
  class embedding with it (projection, Miyato & Koyama 2018).

A residual block is ResNeXt's: a 1x1 convolution to ``expansion`` x the width, a grouped 3x3 convolution with
``cardinality`` groups, a 1x1 convolution back, each with a bias, leaky ReLU (0.2) after the first two. Fix-up
initialisation (Zhang et al. 2019, as the paper): the branch's last layer starts at zero, so every block starts as
the identity, and its other layers have He initialisation scaled by L^(-1/4) for L blocks in the network (L^(-1/(2m
- 2)) with m = 3 layers per branch). The low-pass filter is the binomial [1, 2, 1] (outer product, normalised):
upsampling inserts zeros and filters (a bilinear interpolation), downsampling filters then keeps every second pixel.

Sizes are arguments: ``widths`` and ``blocks`` hold one entry per stage, from the basis (``s0`` px) up to the
image's side, which is ``s0 x 2^n`` with 4 <= s0 <= 7 (4 for 32 px: stages 4, 8, 16, 32; 7 for MNIST's 28: stages
7, 14, 28). The discriminator takes the same widths in reverse unless ``d_widths`` is given. The paper's CIFAR-10
model is ``widths: [768, 768, 768, 768]``, ``blocks: [2, 2, 2, 2]``, ``cardinality: 96``, ``expansion: 2``, a
GPU-sized model (docs/gans.md gives the config lines).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..config import MAX_CHANNELS, MAX_LATENT, MAX_PACK, check_range
from ..errors import ConfigError
from ..nn.generator import Generator
from ..registry import MODELS
from .dcgan import plan

SLOPE = 0.2  # leaky ReLU slope everywhere
LOW_PASS = (1.0, 2.0, 1.0)  # binomial filter taps of the resampling


@dataclass
class R3GANConfig:
    """Widths per stage (from the basis up to the image), residual blocks per stage, cardinality, conditioning."""

    name: str = "r3gan"
    latent_dim: int = 64
    widths: list[int] = field(default_factory=lambda: [256, 256, 128, 64])  # G's stages, basis first
    d_widths: list[int] | None = None  # D's stages, image first (default: ``widths`` reversed)
    blocks: list[int] = field(default_factory=lambda: [1, 1, 1, 1])  # residual blocks per stage, as ``widths``
    cardinality: int = 16  # groups of each block's 3x3 convolution
    expansion: int = 2  # a block's inner width, as a multiple of the stage's width
    conditioning: Literal["none", "projection"] = "none"
    embed_dim: int = 64  # class embedding: joined to z in G, projected against D's features
    pack: int = 1  # PacGAN: D judges this many samples at once

    def __post_init__(self) -> None:
        check_range("model.latent_dim", self.latent_dim, 1, MAX_LATENT)
        check_range("model.cardinality", self.cardinality, 1, MAX_CHANNELS)
        check_range("model.expansion", self.expansion, 1, 16)
        check_range("model.embed_dim", self.embed_dim, 1, MAX_LATENT)
        check_range("model.pack", self.pack, 1, MAX_PACK)
        for key in ("widths", "d_widths", "blocks"):
            for value in getattr(self, key) or []:
                check_range(f"model.{key}", value, 0 if key == "blocks" else 1, 64 if key == "blocks" else MAX_CHANNELS)
        if self.pack > 1 and self.conditioning != "none":
            raise ConfigError("model.pack > 1 (PacGAN) needs an unconditional model: set model.conditioning=none")


def stage_sides(side: int) -> list[int]:
    """The side of each stage, from the basis up to ``side`` (32 -> [4, 8, 16, 32], 28 -> [7, 14, 28])."""
    s0, n = plan(side, "R3GAN")
    return [s0 * 2 ** i for i in range(n + 1)]


def _check_widths(cfg: R3GANConfig, sides: list[int]) -> None:
    for key, values in (("widths", cfg.widths), ("d_widths", cfg.d_widths), ("blocks", cfg.blocks)):
        if values is not None and len(values) != len(sides):
            raise ConfigError(f"model.{key} has {len(values)} entries; images of {sides[-1]} px have stages at "
                              f"{', '.join(map(str, sides))} px: give {len(sides)}")
    for width in set(cfg.widths) | set(cfg.d_widths or []):
        if (width * cfg.expansion) % cfg.cardinality:
            raise ConfigError(f"model.cardinality={cfg.cardinality} must divide every block's inner width "
                              f"(model.expansion x width = {width * cfg.expansion})")


def _he(layer: nn.Module, scale: float = 1.0, gain: float = math.sqrt(2 / (1 + SLOPE ** 2))) -> nn.Module:
    """He (fan-in) initialisation with ``gain`` (leaky ReLU's by default) times ``scale``; bias 0."""
    fan_in = layer.weight[0].numel()
    with torch.no_grad():
        layer.weight.normal_(0.0, gain * scale / math.sqrt(fan_in))
        if getattr(layer, "bias", None) is not None:
            layer.bias.zero_()
    return layer


def _linear_init(layer: nn.Module) -> nn.Module:
    """Unit-gain fan-in initialisation: for layers followed by no activation."""
    return _he(layer, gain=1.0)


class ResidualBlock(nn.Module):
    """x + W3 lrelu(G2 lrelu(W1 x)): 1x1 expand, grouped 3x3, 1x1 project (zero at start), each with a bias."""

    def __init__(self, width: int, cardinality: int, expansion: int, total_blocks: int) -> None:
        super().__init__()
        inner = width * expansion
        scale = total_blocks ** (-1 / 4)  # fix-up: L^(-1/(2m - 2)) with m = 3 layers in the branch
        self.expand = _he(nn.Conv2d(width, inner, 1), scale)
        self.grouped = _he(nn.Conv2d(inner, inner, 3, padding=1, groups=cardinality), scale)
        self.project = nn.Conv2d(inner, width, 1, bias=False)
        nn.init.zeros_(self.project.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output, same shape as its input."""
        h = F.leaky_relu(self.expand(x), SLOPE)
        h = F.leaky_relu(self.grouped(h), SLOPE)
        return x + self.project(h)


def _down_last(x: torch.Tensor) -> torch.Tensor:
    """Along the last axis (even length n): out[i] = (x[2i-1] + 2 x[2i] + x[2i+1]) / 4, x[-1] = 0, i < n/2."""
    even, odd = x[..., 0::2], x[..., 1::2]
    before = F.pad(odd, (1, 0))[..., :-1]  # x[2i-1], zero at the border
    return (before + 2 * even + odd) / 4


def _up_last(x: torch.Tensor) -> torch.Tensor:
    """Along the last axis: zero insertion, then the filter with a gain of 2, i.e. y[2i] = x[i] and y[2i+1] = (x[i]
    + x[i+1]) / 2, x[n] = 0: linear interpolation."""
    after = F.pad(x, (0, 1))[..., 1:]  # x[i+1], zero at the border
    return torch.stack([x, (x + after) / 2], dim=-1).flatten(-2)


def low_pass_down(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H/2, W/2): the binomial [1, 2, 1] filter (outer product, normalised; zero padding),
    then every second pixel, as a strided depthwise convolution computes it. Written as shifted sums of the two axes
    in turn: the gradient penalties differentiate it twice, and a depthwise convolution's double backward runs one
    convolution per channel (thousands of kernel launches per step on a GPU)."""
    return _down_last(_down_last(x).transpose(-1, -2)).transpose(-1, -2)


def low_pass_up(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, 2H, 2W): zero insertion and the binomial filter with a gain of 4, as the transposed
    depthwise convolution computes it (which keeps the mean), as shifted sums for the reason :func:`low_pass_down`
    gives."""
    return _up_last(_up_last(x).transpose(-1, -2)).transpose(-1, -2)


class Resample(nn.Module):
    """2x up- or downsampling through the low-pass filter, with a 1x1 convolution to the next stage's width (before
    upsampling, after downsampling: the convolution runs at the lower resolution)."""

    def __init__(self, c_in: int, c_out: int, up: bool) -> None:
        super().__init__()
        self.up = up
        self.change = _linear_init(nn.Conv2d(c_in, c_out, 1, bias=False)) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, c_in, s, s) -> (B, c_out, 2s, 2s) or (B, c_out, s/2, s/2)."""
        if self.up:
            return low_pass_up(self.change(x))
        return self.change(low_pass_down(x))


def _stages(widths: list[int], blocks: list[int], cfg: R3GANConfig, up: bool) -> nn.ModuleList:
    """One stage per width: its residual blocks, then the transition to the next stage (none after the last)."""
    stages, total = nn.ModuleList(), max(1, sum(blocks))
    for i, width in enumerate(widths):
        layers = [ResidualBlock(width, cfg.cardinality, cfg.expansion, total) for _ in range(blocks[i])]
        if i + 1 < len(widths):
            layers.append(Resample(width, widths[i + 1], up))
        stages.append(nn.Sequential(*layers))
    return stages


class R3GANGenerator(Generator):
    """z (B, latent_dim) [+ labels (B,)] -> images (B, C, S, S); linear output, clamped by :meth:`generate`."""

    def __init__(self, cfg: R3GANConfig, shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        sides = stage_sides(shape[-1])
        self.latent_dim, self.shape = cfg.latent_dim, shape
        self.num_classes = num_classes if cfg.conditioning != "none" else 0
        c0 = cfg.widths[0]
        self.embed = nn.Embedding(self.num_classes, cfg.embed_dim) if self.num_classes else None
        code = cfg.latent_dim + (cfg.embed_dim if self.num_classes else 0)
        self.basis = nn.Parameter(torch.randn(c0, sides[0], sides[0]))  # the learned s0 x s0 input
        self.modulate = _linear_init(nn.Linear(code, c0, bias=False))
        self.stages = _stages(cfg.widths, cfg.blocks, cfg, up=True)
        self.to_image = _linear_init(nn.Conv2d(cfg.widths[-1], shape[0], 1))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Map codes (and labels, for a conditional generator) to images."""
        assert z.dim() == 2 and z.shape[1] == self.latent_dim, f"expected (B, {self.latent_dim}), got {z.shape}"
        if self.num_classes:
            if labels is None:
                raise ValueError("a conditional generator needs labels")
            z = torch.cat([z, self.embed(labels)], dim=1)
        h = self.basis[None] * self.modulate(z)[:, :, None, None]  # (B, c0, s0, s0)
        for stage in self.stages:
            h = stage(h)
        return self.to_image(h)

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Samples in [-1, 1] from codes (the linear output clamped to the range of the data): what ``sample``
        draws and an exported graph computes."""
        return super().generate(z, labels).clamp(-1.0, 1.0)


class R3GANDiscriminator(nn.Module):
    """images (B, C * pack, S, S) [+ labels (B,)] -> logits (B,)."""

    def __init__(self, cfg: R3GANConfig, shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        sides = stage_sides(shape[-1])
        widths = cfg.d_widths or list(reversed(cfg.widths))
        self.conditioning = cfg.conditioning if num_classes else "none"
        self.num_classes = num_classes if self.conditioning != "none" else 0
        self.pack = cfg.pack
        self.from_image = _he(nn.Conv2d(shape[0] * cfg.pack, widths[0], 1))
        self.stages = _stages(widths, list(reversed(cfg.blocks)), cfg, up=False)
        self.collapse = _linear_init(nn.Conv2d(widths[-1], widths[-1], sides[0], groups=widths[-1], bias=False))
        self.out = _linear_init(nn.Linear(widths[-1], cfg.embed_dim if self.num_classes else 1))
        if self.num_classes:
            self.embed = nn.Embedding(num_classes, cfg.embed_dim)
            nn.init.normal_(self.embed.weight, 0.0, 1.0)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """One logit per (packed) sample."""
        return self.forward_all(x, labels)[0]

    def forward_all(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        """(logits (B,), None): the adversarial recipe's interface (no class head)."""
        h = F.leaky_relu(self.from_image(x), SLOPE)
        for stage in self.stages:
            h = stage(h)
        # the depthwise s0 x s0 convolution, as the weighted sum it is (its double backward as a convolution runs
        # one per channel)
        h = self.out((h * self.collapse.weight[:, 0]).sum(dim=(2, 3)))  # (B, 1) or (B, embed_dim)
        if not self.num_classes:
            return h.flatten(), None
        if labels is None:
            raise ValueError("a projection-conditional discriminator needs labels")
        return (h * self.embed(labels)).sum(dim=1) / math.sqrt(h.shape[1]), None


def _build(cfg: R3GANConfig, shape: tuple[int, ...], num_classes: int) -> dict[str, nn.Module]:
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ConfigError(f"R3GAN needs square images, got samples of shape {shape}")
    if cfg.conditioning != "none" and num_classes < 2:
        raise ConfigError(f"model.conditioning={cfg.conditioning} needs labelled data; this dataset has none")
    _check_widths(cfg, stage_sides(shape[-1]))
    return {"generator": R3GANGenerator(cfg, shape, num_classes),
            "discriminator": R3GANDiscriminator(cfg, shape, num_classes)}


MODELS.register("r3gan", config=R3GANConfig, task="generation")(_build)
