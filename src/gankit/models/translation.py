"""Image-to-image translation: pix2pix (Isola et al. 2017) and CycleGAN (Zhu et al. 2017).

Generators map an image of domain A (``channels_a`` channels) to one of domain B (the data's other channels):

* ``unet`` (pix2pix, sec. 3.2.1 and appendix 6.1.1): an encoder of 4x4 stride-2 convolutions (LeakyReLU 0.2) and a
  decoder of 4x4 stride-2 transposed convolutions (ReLU), with a skip connection from each encoder layer to its
  mirror in the decoder; no norm on the first encoder layer nor on the innermost one; tanh output. ``depth`` layers
  each way (the image is reflect-padded to a multiple of 2^depth and the output cropped back, so 28x28 works).
  Noise, so that one input can give several outputs: dropout in the innermost decoder layers (pix2pix's choice),
  or an injected vector z (``noise_dim`` > 0) broadcast over the pixels and joined to the input's channels. When
  translating, dropout is off (eval mode: one output per input, what an export carries) unless K > 1 outputs are
  asked for; ``test_dropout: true`` keeps it on for every translation, as the paper does at test time (sec. 3.3),
  its masks drawn from the translation's seed, so a seed repeats its output.
* ``resnet`` (CycleGAN, appendix 7.2, after Johnson et al. 2016): c7s1-w, two 3x3 stride-2 convolutions (w, 2w,
  4w), ``res_blocks`` residual blocks of two 3x3 convolutions with reflection padding, two 3x3 transposed
  convolutions back, c7s1-C and tanh.

Discriminator: the PatchGAN (pix2pix sec. 3.2.2): ``d_layers`` 4x4 stride-2 convolutions (C64-C128-...; no norm on
the first), one 4x4 stride-1 convolution and a 4x4 stride-1 convolution to one channel: a map of logits, each
judging one patch (70x70 pixels for 3 layers on 256x256 images; use 2 layers for 28x28 digits). pix2pix's D sees the
input and the output stacked on the channels (it is conditional); CycleGAN's D_A and D_B see one domain's images.

Norms: ``batch`` (pix2pix) or ``instance`` (CycleGAN; affine-free, no running statistics, as the reference code).
Weights are drawn from N(0, 0.02), as both papers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..config import MAX_CHANNELS, MAX_HALVINGS, MAX_LATENT, MAX_LAYERS, check_range
from ..errors import ConfigError
from ..registry import MODELS
from ..shard import sharded

Norm = Literal["batch", "instance"]


@dataclass
class Pix2PixConfig:
    """A U-Net (or ResNet) generator and a conditional PatchGAN; the data's A and B channels fix the rest."""

    name: str = "pix2pix"
    channels_a: int = 0  # channels of the A images: set from the data (a translation dataset) when 0
    generator: Literal["unet", "resnet"] = "unet"
    width: int = 64  # channels of G's first layer (doubled with each halving of the resolution)
    max_width: int = 512
    depth: int = 0  # U-Net: stride-2 layers each way; 0 picks halvings down to a 4x4 (or smaller) bottleneck
    res_blocks: int = 6  # ResNet generator: residual blocks at the lowest resolution
    norm: Norm = "batch"
    noise: Literal["dropout", "vector", "none"] = "dropout"  # how G takes noise
    dropout: float = 0.5  # in the innermost decoder layers, with noise=dropout
    test_dropout: bool = False  # true: keep that dropout on when translating, as the paper does at test time
    noise_dim: int = 8  # size of z, with noise=vector
    d_width: int = 64
    d_layers: int = 3  # PatchGAN: stride-2 layers; 2 suits 28x28 images

    def __post_init__(self) -> None:
        _check_common(self)
        check_range("model.dropout", self.dropout, 0.0, 1.0, open_hi=True)
        check_range("model.noise_dim", self.noise_dim, 1, MAX_LATENT)


@dataclass
class CycleGANConfig:
    """Two generators (A -> B, B -> A) and two unconditional PatchGANs (on A, on B)."""

    name: str = "cyclegan"
    channels_a: int = 0  # channels of the A images: set from the data when 0
    generator: Literal["unet", "resnet"] = "resnet"
    width: int = 64
    max_width: int = 512
    depth: int = 0
    res_blocks: int = 9  # 9 for 256x256 images in the paper, 6 for 128x128
    norm: Norm = "instance"
    d_width: int = 64
    d_layers: int = 3

    def __post_init__(self) -> None:
        _check_common(self)


def _check_common(cfg) -> None:
    for key in ("width", "max_width", "d_width"):
        check_range(f"model.{key}", getattr(cfg, key), 1, MAX_CHANNELS)
    # halvings: how far they may go depends on the images too (checked by check_fits when the data is known)
    check_range("model.depth", cfg.depth, 0, MAX_HALVINGS, note="0 picks it from the image size")
    check_range("model.d_layers", cfg.d_layers, 1, MAX_HALVINGS)
    check_range("model.res_blocks", cfg.res_blocks, 0, MAX_LAYERS)
    if cfg.channels_a not in (0, 1, 3):
        raise ConfigError(f"model.channels_a={cfg.channels_a} is out of range: expected 1 or 3 (grey or RGB A "
                          "images), or 0 to take it from the data")


def max_unet_depth(side: int) -> int:
    """The most halvings a U-Net may make of an image of ``side`` pixels: down to a 1x1 bottleneck (the input is
    padded to a multiple of 2^depth, so a deeper net would only add padding)."""
    return max(1, math.ceil(math.log2(side))) if side > 1 else 1


def max_patch_layers(side: int) -> int:
    """The most stride-2 layers a PatchGAN may have on images of ``side`` pixels: its logit map is
    side / 2^layers - 2 wide (two 4x4 stride-1 convolutions close it), and must keep at least one logit."""
    layers = 0
    while side // 2 ** (layers + 1) >= 3:
        layers += 1
    return layers


def check_fits(modules: list[nn.Module], side: int) -> None:
    """Each U-Net's depth and PatchGAN's layers against the images' (smaller) side, in one line naming the key: a
    recipe checks this against its data before the first step."""
    for m in modules:
        if isinstance(m, UNetGenerator) and m.depth > max_unet_depth(side):
            raise ConfigError(f"model.depth={m.depth} is out of range for images of {side} pixels: expected 0 "
                              f"(picked from the size) or an integer >= 1 and <= {max_unet_depth(side)} (halvings "
                              "down to a 1x1 bottleneck)")
        if isinstance(m, PatchDiscriminator) and m.layers > max_patch_layers(side):
            raise ConfigError(f"model.d_layers={m.layers} is out of range for images of {side} pixels: expected an "
                              f"integer >= 1 and <= {max_patch_layers(side)} (the PatchGAN must keep at least one "
                              "logit), or larger images (data.size)")


def _norm(kind: Norm, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.BatchNorm2d(channels)


def _init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def unet_depth(side: int) -> int:
    """Halvings from ``side`` (rounded up at each step) down to a bottleneck of at most 4 pixels, at least 2."""
    depth = 0
    while side > 4:
        side = (side + 1) // 2
        depth += 1
    return max(depth, 2)


def _pad_to(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode="reflect" if min(h, w) > max(ph, pw)
                  else "replicate")
    return x, (ph, pw)


def _crop(x: torch.Tensor, pads: tuple[int, int]) -> torch.Tensor:
    ph, pw = pads
    h, w = x.shape[-2:]
    return x[..., ph // 2:h - (ph - ph // 2), pw // 2:w - (pw - pw // 2)]


class Translator(nn.Module):
    """Base class of the translation generators: images of domain A (B, channels_in, H, W) -> domain B."""

    channels_in: int
    channels_out: int
    noise_dim: int = 0  # > 0: forward takes a code z (B, noise_dim)
    test_dropout = False  # True: translate keeps dropout on, as pix2pix does at test time
    has_prior = False  # nothing to sample from: a translator needs an input image

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def sample_noise(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor | None:
        """Codes for an injected-vector generator (None for the others)."""
        if not self.noise_dim:
            return None
        return sharded(torch.randn, size=(n, self.noise_dim), generator=generator, device=self.device)

    @torch.no_grad()
    def translate(self, x: torch.Tensor, *, stochastic: bool = False,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        """Translations in eval mode; ``stochastic`` (or ``test_dropout``) keeps dropout on (pix2pix's test-time
        noise), its masks drawn from ``generator`` when one is given (the global streams stay untouched: a
        training-time evaluation must not move the run's randomness) and from torch's global generator otherwise;
        an injected-vector generator draws its z from ``generator``."""
        was_training = self.training
        self.eval()
        drops = [m for m in self.modules() if isinstance(m, nn.Dropout)] if stochastic or self.test_dropout else []
        for m in drops:
            m.train()
        try:
            z = self.sample_noise(len(x), generator=generator)
            if not drops or generator is None:
                return self(x, z)
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                torch.manual_seed(int(torch.randint(2 ** 62, (1,), generator=generator, device=generator.device)))
                return self(x, z)
        finally:
            self.train(was_training)


class UNetGenerator(Translator):
    """pix2pix's U-Net: skips join each encoder layer to its mirror in the decoder."""

    def __init__(self, channels_in: int, channels_out: int, side: int, width: int, max_width: int, depth: int,
                 norm: Norm, dropout: float = 0.0, noise_dim: int = 0, test_dropout: bool = False) -> None:
        super().__init__()
        self.channels_in, self.channels_out, self.noise_dim = channels_in, channels_out, noise_dim
        self.test_dropout = bool(dropout) and test_dropout
        self.depth = depth or unet_depth(side)
        widths = [min(width * 2 ** i, max_width) for i in range(self.depth)]
        self.downs = nn.ModuleList()
        prev = channels_in + noise_dim
        for i, w in enumerate(widths):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(prev, w, 4, 2, 1, bias=i == 0 or i == self.depth - 1))
            if 0 < i < self.depth - 1:
                layers.append(_norm(norm, w))
            self.downs.append(nn.Sequential(*layers))
            prev = w
        self.ups = nn.ModuleList()  # ups[0] is the innermost
        for j, i in enumerate(reversed(range(self.depth))):
            c_in = widths[i] * (1 if j == 0 else 2)
            outermost = i == 0
            c_out = channels_out if outermost else widths[i - 1]
            layers = [nn.ReLU(), nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=outermost)]
            if outermost:
                layers.append(nn.Tanh())
            else:
                layers.append(_norm(norm, c_out))
                if dropout and j < 3:  # pix2pix: dropout in the three innermost decoder layers
                    layers.append(nn.Dropout(dropout))
            self.ups.append(nn.Sequential(*layers))
        _init(self)

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        if self.noise_dim:
            if z is None:
                raise ValueError("this generator takes a noise vector z (B, noise_dim)")
            x = torch.cat([x, z[:, :, None, None].expand(-1, -1, *x.shape[-2:]).to(x.dtype)], dim=1)
        h, pads = _pad_to(x, 2 ** self.depth)
        skips = []
        for down in self.downs:
            h = down(h)
            skips.append(h)
        for j, up in enumerate(self.ups):
            if j:
                h = torch.cat([h, skips[-1 - j]], dim=1)
            h = up(h)
        return _crop(h, pads)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, norm: Norm) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(norm, channels),
                                  nn.ReLU(True), nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3),
                                  _norm(norm, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNetGenerator(Translator):
    """CycleGAN's generator: c7s1-w, d2w, d4w, R4w x n, u2w, uw, c7s1-C, tanh."""

    def __init__(self, channels_in: int, channels_out: int, width: int, max_width: int, res_blocks: int,
                 norm: Norm) -> None:
        super().__init__()
        self.channels_in, self.channels_out = channels_in, channels_out
        w1, w2, w4 = (min(width * k, max_width) for k in (1, 2, 4))
        bias = norm == "instance"  # batch norm has its own shift
        self.net = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(channels_in, w1, 7, bias=bias), _norm(norm, w1), nn.ReLU(True),
            nn.Conv2d(w1, w2, 3, 2, 1, bias=bias), _norm(norm, w2), nn.ReLU(True),
            nn.Conv2d(w2, w4, 3, 2, 1, bias=bias), _norm(norm, w4), nn.ReLU(True),
            *[ResidualBlock(w4, norm) for _ in range(res_blocks)],
            nn.ConvTranspose2d(w4, w2, 3, 2, 1, output_padding=1, bias=bias), _norm(norm, w2), nn.ReLU(True),
            nn.ConvTranspose2d(w2, w1, 3, 2, 1, output_padding=1, bias=bias), _norm(norm, w1), nn.ReLU(True),
            nn.ReflectionPad2d(3), nn.Conv2d(w1, channels_out, 7), nn.Tanh())
        _init(self)

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        h, pads = _pad_to(x, 4)
        return _crop(self.net(h), pads)


class PatchDiscriminator(nn.Module):
    """A map of logits (B, 1, h, w), one per overlapping patch of the input."""

    def __init__(self, channels: int, width: int, max_width: int, layers: int, norm: Norm) -> None:
        super().__init__()
        self.layers = layers
        mods: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        prev = width
        for i in range(1, layers + 1):
            w = min(width * 2 ** i, max_width)
            stride = 2 if i < layers else 1
            mods += [nn.Conv2d(prev, w, 4, stride, 1, bias=False), _norm(norm, w), nn.LeakyReLU(0.2, True)]
            prev = w
        mods.append(nn.Conv2d(prev, 1, 4, 1, 1))
        self.net = nn.Sequential(*mods)
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _generator(cfg, c_in: int, c_out: int, side: int, noise: bool = True) -> Translator:
    if cfg.generator == "resnet":
        return ResNetGenerator(c_in, c_out, cfg.width, cfg.max_width, cfg.res_blocks, cfg.norm)
    dropout = getattr(cfg, "dropout", 0.0) if noise and getattr(cfg, "noise", "none") == "dropout" else 0.0
    noise_dim = cfg.noise_dim if noise and getattr(cfg, "noise", "none") == "vector" else 0
    return UNetGenerator(c_in, c_out, side, cfg.width, cfg.max_width, cfg.depth, cfg.norm, dropout, noise_dim,
                         getattr(cfg, "test_dropout", False))


def _channels(cfg, shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(shape) != 3 or not cfg.channels_a or cfg.channels_a >= shape[0]:
        raise ConfigError(f"model.name={cfg.name} translates images of one domain into another: it needs a "
                          "translation dataset (paired, unpaired, mnist_edges, mnist_colourize, mnist_colour), not "
                          f"samples of shape {tuple(shape)}")
    return cfg.channels_a, shape[0] - cfg.channels_a, shape[-1]


@MODELS.register("pix2pix", config=Pix2PixConfig, recipe="pix2pix", task="translation")
def build_pix2pix(cfg: Pix2PixConfig, shape: tuple[int, ...], num_classes: int) -> dict[str, nn.Module]:
    """{generator: A -> B, discriminator: PatchGAN on (A, B) stacked on the channels}."""
    c_a, c_b, side = _channels(cfg, shape)
    if cfg.generator == "resnet" and cfg.noise != "none":
        raise ConfigError("model.noise needs the unet generator (the resnet one takes no noise): set model.noise=none")
    return {"generator": _generator(cfg, c_a, c_b, side),
            "discriminator": PatchDiscriminator(c_a + c_b, cfg.d_width, cfg.max_width, cfg.d_layers, cfg.norm)}


@MODELS.register("cyclegan", config=CycleGANConfig, recipe="cyclegan", task="translation")
def build_cyclegan(cfg: CycleGANConfig, shape: tuple[int, ...], num_classes: int) -> dict[str, nn.Module]:
    """{generator: G_AB, generator_ba: G_BA, discriminator: D_B (judges B), discriminator_a: D_A}."""
    c_a, c_b, side = _channels(cfg, shape)
    return {"generator": _generator(cfg, c_a, c_b, side, noise=False),
            "generator_ba": _generator(cfg, c_b, c_a, side, noise=False),
            "discriminator": PatchDiscriminator(c_b, cfg.d_width, cfg.max_width, cfg.d_layers, cfg.norm),
            "discriminator_a": PatchDiscriminator(c_a, cfg.d_width, cfg.max_width, cfg.d_layers, cfg.norm)}
