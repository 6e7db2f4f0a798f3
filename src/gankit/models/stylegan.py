"""StyleGAN (Karras, Laine & Aila 2019), with progressive growing (Karras et al. 2018) and, as options, the
modulated convolution and the skip generator / residual discriminator of StyleGAN2 (Karras et al. 2020).

Generator = mapping network + synthesis network:

* **mapping** f: z -> w. z is normalised to unit mean square (pixel norm), then ``mapping_layers`` equalised
  fully connected layers with LeakyReLU(0.2), their learning rate scaled by ``mapping_lr_mul`` (0.01 in the paper).
* **synthesis** starts from a learned 4x4 constant and doubles the resolution up to the data's side. Each resolution
  has two style layers; each layer takes its own w (one per layer: ``num_ws = 2 x levels``), so different layers can
  take different codes (style mixing). A layer is, with ``conv: adain`` (StyleGAN, fig. 1b):
  ``[upsample] -> conv3x3 -> + per-pixel noise x learned per-channel strength -> + bias -> LeakyReLU -> AdaIN(w)``,
  where AdaIN(x, w) = ys * (x - mean(x)) / std(x) + yb per sample and channel, (ys, yb) = A(w) an equalised affine
  map initialised to ys = 1, yb = 0. The first layer at 4x4 is the constant itself (no conv). With
  ``conv: modulated`` (StyleGAN2, sec. 2.2): ``[upsample] -> modulated conv3x3 (weights x s = A(w) per input channel,
  then demodulated: each output channel's weights rescaled to unit L2 norm) -> + noise -> + bias -> LeakyReLU``; here
  both layers at 4x4 are convolutions.
* **output**: a 1x1 "toRGB" at every resolution (modulated, without demodulation, in the StyleGAN2 option, by the
  w of the level's second layer, where StyleGAN2 feeds it the next layer's), then ``output``: ``tanh`` by default,
  a departure from the papers' linear image (``output: linear``): on data whose pixels sit at the ends of [-1, 1],
  as MNIST's black background does, the linear image has to learn to hit -1 exactly and the discriminator sees every
  miss; on 8x8 digits, 600 steps, seed 0, evaluator-FID on 2,000 samples fell from 128 (linear) to 37 (tanh).
  :meth:`StyleGANGenerator.sample` clamps to [-1, 1] (a no-op under tanh).
  With ``g_arch: skip`` (StyleGAN2, sec. 4.1 and fig. 7b) every level's toRGB output is added to the image of the
  levels below, upsampled bilinearly: image_l = up(image_{l-1}) + toRGB_l(h_l), then the output function; the
  lower resolutions keep a direct path to the image, which StyleGAN2 uses in place of progressive growing. Under
  progressive growing a level fading in adds alpha x its toRGB (the recipe then fades the reals with the same
  bilinear upsampling).

**Equalised learning rate** (Karras et al. 2018, sec. 4.1): every weight is stored as N(0, 1) / lr_mul and multiplied
at run time by lr_mul x He's constant gain / sqrt(fan_in) (gain sqrt(2) before a LeakyReLU, 1 for toRGB, the
styles' affine maps and D's output), so Adam's step is the same relative change for every layer.

**Progressive growing** (Karras et al. 2018, sec. 2): the ``progress`` buffer holds (level, alpha). Level l works at
4 x 2^l pixels; the blocks above it are not run. While a new level fades in, G's image is
(1 - alpha) x upsample(toRGB_{l-1}(h_{l-1})) + alpha x toRGB_l(h_l) and D's input features are
(1 - alpha) x fromRGB_{l-1}(downsample(x)) + alpha x block_l(fromRGB_l(x)). G's output is always returned at the
full size (nearest-neighbour upsampling of the current level's image), so grids, evaluation and D's input keep one
shape; D average-pools its input to the current level, which undoes the upsampling exactly. The recipe sets the
progress; a fixed-resolution model keeps level = top, alpha = 1.

**Truncation in W** (sec. 2.3 / appendix B): w' = w_avg + psi (w - w_avg) on the first ``truncation_cutoff`` layers
(all by default); w_avg is a running mean of the mapping's output kept during training (``w_avg_beta``).

**Discriminator**: ProGAN's, with equalised learning rate: fromRGB (1x1) at each level, two 3x3 convolutions and a
2x average pool per level, then at 4x4 the minibatch standard deviation layer (sec. 3 of ProGAN: the std of each
feature over groups of ``mbstd_group`` samples, averaged to one number per group, appended as a constant channel),
a 3x3 convolution, and two fully connected layers. With ``d_arch: residual`` (StyleGAN2, fig. 7c) each block adds
a 1x1 convolution of its pooled input to its output and scales the sum by 1 / sqrt(2).

**Class conditioning** (``conditioning: projection``, as StyleGAN2-ADA conditions): the mapping network reads the
pixel-normed z joined to the pixel-normed embedding of the label, so every style layer sees the class through w;
D adds embed(y) . h / sqrt(dim h) to its logit, h the features its output layer reads (the projection
discriminator of Miyato & Koyama 2018). Style mixing then mixes two codes of the same class. The label's embedding
in G learns at the mapping's reduced rate (StyleGAN2-ADA's at the full rate). Both places scale the class by a
buffer ``cond_scale`` (1 unless the recipe's transitional conditioning, Shahbazi et al. 2023, ramps it up from 0).

Not built: the blur (low-pass) filters around the convolutions' up/downsampling, StyleGAN2's single 4x4
convolution and toRGB fed by the next level's w, StyleGAN2's Adam correction for lazy regularisation,
and per-resolution batch sizes. Path length regularisation is the recipe's (``pl_weight``).
Under torchrun the running mean of w follows rank 0's share of each batch (the buffers are broadcast from rank 0
every step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..config import MAX_BATCH, MAX_CHANNELS, MAX_LATENT, MAX_LAYERS, check_range
from ..errors import ConfigError
from ..nn.generator import Generator
from ..nn.graph import EXAMPLE_BATCH, Graph, shape_doc, take_options
from ..registry import MODELS
from ..shard import sharded

SLOPE = 0.2  # LeakyReLU slope everywhere
RELU_GAIN = math.sqrt(2.0)  # He et al. 2015's gain for (Leaky)ReLU layers


@dataclass
class StyleGANConfig:
    """Widths and options of a StyleGAN pair; the resolution and channels come from the data (a side of 4 x 2^n)."""

    name: str = "stylegan"
    latent_dim: int = 128  # z
    w_dim: int = 128  # w (the style code)
    mapping_layers: int = 8
    mapping_lr_mul: float = 0.01  # the mapping network learns 100x slower, as in the paper
    width: int = 128  # channels at 4x4 and 8x8; halved at every doubling above 8x8 ...
    min_width: int = 32  # ... down to this
    conv: Literal["adain", "modulated"] = "adain"  # StyleGAN's AdaIN layers or StyleGAN2's (de)modulated conv
    g_arch: Literal["original", "skip"] = "original"  # image from the top level's toRGB, or StyleGAN2's skip sum
    d_arch: Literal["original", "residual"] = "original"  # ProGAN's D blocks, or StyleGAN2's residual ones
    noise: bool = True  # per-pixel noise inputs
    mbstd_group: int = 4  # minibatch standard deviation: group size (the batch must be a multiple, or smaller)
    w_avg_beta: float = 0.995  # running mean of w: w_avg <- beta w_avg + (1 - beta) mean(w) every generator step
    truncation_cutoff: int | None = None  # truncation acts on layers < cutoff (None: every layer)
    output: Literal["linear", "tanh"] = "tanh"  # tanh (as DCGAN), or the papers' linear image; see the docstring
    conditioning: Literal["none", "projection"] = "none"  # class-conditional: label embedding in G, projection in D
    embed_lr_mul: float | None = None  # learning-rate multiplier of G's label embedding (None: mapping_lr_mul's)

    def __post_init__(self) -> None:
        for key in ("latent_dim", "w_dim"):
            check_range(f"model.{key}", getattr(self, key), 1, MAX_LATENT)
        check_range("model.mapping_layers", self.mapping_layers, 1, MAX_LAYERS)
        for key in ("width", "min_width"):
            check_range(f"model.{key}", getattr(self, key), 1, MAX_CHANNELS)
        check_range("model.mbstd_group", self.mbstd_group, 1, MAX_BATCH)
        check_range("model.mapping_lr_mul", self.mapping_lr_mul, 0.0, 1.0, open_lo=True)
        check_range("model.w_avg_beta", self.w_avg_beta, 0.0, 1.0, open_hi=True)
        check_range("model.embed_lr_mul", self.embed_lr_mul, 0.0, 1.0, open_lo=True, none_ok=True)
        if self.output not in ("linear", "tanh"):
            raise ConfigError(f"model.output={self.output!r}: expected linear or tanh")
        for key, kinds in (("conv", ("adain", "modulated")), ("g_arch", ("original", "skip")),
                           ("d_arch", ("original", "residual")), ("conditioning", ("none", "projection"))):
            if getattr(self, key) not in kinds:
                raise ConfigError(f"model.{key}={getattr(self, key)!r}: expected {' or '.join(kinds)}")
        check_range("model.truncation_cutoff", self.truncation_cutoff, 1, 2 * MAX_LAYERS, none_ok=True,
                    note="a layer count; null for every layer")


def levels_for(side: int) -> int:
    """Number of resolutions 4, 8, ..., side; ``side`` must be 4 x 2^n."""
    n = int(round(math.log2(side / 4))) if side >= 4 else -1
    if n < 0 or 4 * 2 ** n != side:
        raise ConfigError(f"StyleGAN needs a square side of 4 x 2^n (8, 16, 32, 64, ...); got {side}: resize with "
                          "data.size, or pad MNIST's 28 to 32 with data.pad=2")
    return n + 1


def width_at(cfg: StyleGANConfig, res: int) -> int:
    """Channels of the layers at resolution ``res``."""
    return max(cfg.min_width, min(cfg.width, cfg.width * 8 // res))


# ---------------------------------------------------------------------------------------------------------------
# Equalised learning rate


class EqualLinear(nn.Module):
    """A linear layer whose weight is N(0, 1) / lr_mul at rest and scaled by lr_mul * gain / sqrt(fan_in) when
    used; the bias is scaled by lr_mul."""

    def __init__(self, n_in: int, n_out: int, *, gain: float = RELU_GAIN, lr_mul: float = 1.0,
                 bias_init: float = 0.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in) / lr_mul)
        self.bias = nn.Parameter(torch.full((n_out,), float(bias_init) / lr_mul))
        self.scale = lr_mul * gain / math.sqrt(n_in)  # He's constant (times lr_mul)
        self.lr_mul = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_in) -> (B, n_out)."""
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class EqualConv2d(nn.Module):
    """A k x k convolution (stride 1, same padding) with an equalised learning rate."""

    def __init__(self, c_in: int, c_out: int, kernel: int, *, gain: float = RELU_GAIN, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None
        self.scale = gain / math.sqrt(c_in * kernel * kernel)
        self.padding = kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, c_in, H, W) -> (B, c_out, H, W)."""
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


def leaky(x: torch.Tensor) -> torch.Tensor:
    """LeakyReLU(0.2)."""
    return F.leaky_relu(x, SLOPE)


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """x / sqrt(mean(x^2) + eps) over the feature dimension."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


def instance_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(x - mean) / std over each sample's and channel's pixels (the biased std, as instance normalisation)."""
    x = x - x.mean(dim=(2, 3), keepdim=True)
    return x * torch.rsqrt(x.square().mean(dim=(2, 3), keepdim=True) + eps)


def adain(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """AdaIN(x, y) = y_s * (x - mu(x)) / sigma(x) + y_b, with (B, C) styles."""
    return scale[:, :, None, None] * instance_norm(x) + bias[:, :, None, None]


def up2(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour 2x upsampling."""
    return F.interpolate(x, scale_factor=2, mode="nearest")


def up2_smooth(x: torch.Tensor) -> torch.Tensor:
    """Bilinear 2x upsampling (half-pixel centres): the separable [1, 3, 3, 1] / 4 filter StyleGAN2 upsamples the
    skip generator's images with, the border replicated where StyleGAN2 pads with zeros."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True,
                     eps: float = 1e-8) -> torch.Tensor:
    """StyleGAN2's modulated convolution: w'_ijk = s_i w_ijk, then (with ``demodulate``) w''_ijk = w'_ijk /
    sqrt(sum_ik w'_ijk^2 + eps). x (B, I, H, W), weight (O, I, k, k) already scaled, styles (B, I).

    Run unfused, as StyleGAN2-ADA trains: the styles scale the input, one ordinary convolution shared by the batch,
    the demodulation scales the output; the same sums as one grouped convolution with per-sample weights, but on a
    CPU 1.6x faster forward and backward (and through the double backward of path length regularisation), and an
    exported graph's dynamic batch needs no group count."""
    k = weight.shape[-1]
    out = F.conv2d(x * styles[:, :, None, None], weight, padding=k // 2)  # (B, O, H, W)
    if not demodulate:
        return out
    # sum_ik (s_i w_ijk)^2 = sum_i s_i^2 (sum_k w_ijk^2): (B, I) @ (I, O), without a per-sample weight tensor
    coef = torch.rsqrt(styles.square() @ weight.square().sum(dim=(2, 3)).t() + eps)  # (B, O)
    return out * coef[:, :, None, None].to(out.dtype)


# ---------------------------------------------------------------------------------------------------------------
# Generator


class MappingNetwork(nn.Module):
    """z (B, latent_dim) -> w (B, w_dim): pixel norm, then an MLP with LeakyReLU and a reduced learning rate. A
    class-conditional mapping (``num_classes`` > 0) joins the pixel-normed embedding of the label (an equalised
    linear map of its one-hot, at the mapping's learning rate) to the pixel-normed z, as StyleGAN2-ADA conditions."""

    def __init__(self, cfg: StyleGANConfig, num_classes: int = 0) -> None:
        super().__init__()
        self.num_classes = num_classes
        # the embedding learns at the mapping's reduced rate: at the full rate (as StyleGAN2-ADA's) the class took
        # over w within 2,000 steps and each class drew nearly one image (docs/stylegan.md, "Class-conditional")
        rate = cfg.mapping_lr_mul if cfg.embed_lr_mul is None else cfg.embed_lr_mul
        self.embed = EqualLinear(num_classes, cfg.w_dim, gain=1.0, lr_mul=rate) if num_classes else None
        if num_classes:  # the class's weight (transitional conditioning: the recipe raises it from 0 to 1)
            self.register_buffer("cond_scale", torch.ones(()))
        dims = [cfg.latent_dim + (cfg.w_dim if num_classes else 0)] + [cfg.w_dim] * cfg.mapping_layers
        self.layers = nn.ModuleList(EqualLinear(a, b, lr_mul=cfg.mapping_lr_mul) for a, b in zip(dims, dims[1:]))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Map codes (and, for a conditional mapping, their labels (B,)) to styles."""
        x = pixel_norm(z)
        if self.embed is not None:
            if labels is None:
                raise ValueError("a class-conditional StyleGAN needs labels")
            onehot = F.one_hot(labels, self.num_classes).to(z.dtype)
            x = torch.cat([x, pixel_norm(self.embed(onehot)) * self.cond_scale.to(x.dtype)], dim=1)
        for layer in self.layers:
            x = leaky(layer(x))
        return x


class NoiseInput(nn.Module):
    """Adds per-pixel Gaussian noise, scaled by a learned per-channel strength (initially 0). Holds a fixed noise
    map (``noise_const``) for repeatable renders."""

    def __init__(self, channels: int, res: int) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(channels))
        self.register_buffer("noise_const", torch.randn(1, 1, res, res))

    def forward(self, x: torch.Tensor, mode: str, generator: torch.Generator | None,
                given: torch.Tensor | None = None) -> torch.Tensor:
        """``mode``: random (fresh maps, from ``generator``), const (the fixed map), given (the map ``given``,
        (B, 1, r, r)) or none."""
        if mode == "none":
            return x
        if mode == "given":
            noise = given
        elif mode == "const":
            noise = self.noise_const
        else:
            noise = sharded(torch.randn, size=(x.shape[0], 1, *x.shape[2:]), generator=generator, device=x.device,
                            dtype=x.dtype)
        return x + self.strength.to(x.dtype)[None, :, None, None] * noise


class StyleLayer(nn.Module):
    """One style layer: [up] -> [conv] -> noise -> bias -> LeakyReLU -> AdaIN(w) (adain), or [up] -> modulated
    conv(w) -> noise -> bias -> LeakyReLU (modulated)."""

    def __init__(self, cfg: StyleGANConfig, c_in: int, c_out: int, res: int, *, up: bool, conv: bool) -> None:
        super().__init__()
        self.mode, self.up, self.has_conv = cfg.conv, up, conv
        if self.mode == "adain":
            self.conv = EqualConv2d(c_in, c_out, 3, bias=False) if conv else None
            self.style = EqualLinear(cfg.w_dim, 2 * c_out, gain=1.0,
                                     bias_init=0.0)  # (ys, yb); ys's bias set to 1 below
            with torch.no_grad():
                self.style.bias[:c_out] = 1.0
        else:
            self.weight = nn.Parameter(torch.randn(c_out, c_in, 3, 3))
            self.scale = 1.0 / math.sqrt(c_in * 9)  # demodulation normalises anyway; kept for the styles' scale
            self.style = EqualLinear(cfg.w_dim, c_in, gain=1.0, bias_init=1.0)  # s, initially 1
        self.noise = NoiseInput(c_out, res) if cfg.noise else None
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.c_out = c_out

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str, generator,
                noise: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, c_in, r/2 or r, ...), w (B, w_dim) -> (B, c_out, r, r); ``noise``: the map of noise_mode given."""
        if self.up:
            x = up2(x)
        style = self.style(w)
        if self.mode == "adain":
            if self.conv is not None:
                x = self.conv(x)
        else:
            x = modulated_conv2d(x, self.weight * self.scale, style)
        if self.noise is not None:
            x = self.noise(x, noise_mode, generator, noise)
        x = leaky(x + self.bias[None, :, None, None])
        if self.mode == "adain":
            return adain(x, style[:, :self.c_out], style[:, self.c_out:])
        # demodulated weights have unit norm, so the activation's gain (He's sqrt(2), which the equalised convolutions
        # of the AdaIN layers carry in their weights) is applied here, as StyleGAN2 does after its bias and LeakyReLU
        return x * RELU_GAIN


class ToRGB(nn.Module):
    """1x1 convolution to the image's channels (modulated, without demodulation, in the StyleGAN2 option)."""

    def __init__(self, cfg: StyleGANConfig, c_in: int, channels: int) -> None:
        super().__init__()
        self.modulated = cfg.conv == "modulated"
        if self.modulated:
            self.weight = nn.Parameter(torch.randn(channels, c_in, 1, 1))
            self.scale = 1.0 / math.sqrt(c_in)
            self.style = EqualLinear(cfg.w_dim, c_in, gain=1.0, bias_init=1.0)
            self.bias = nn.Parameter(torch.zeros(channels))
        else:
            self.conv = EqualConv2d(c_in, channels, 1, gain=1.0)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Features (B, c_in, r, r) -> image (B, channels, r, r)."""
        if not self.modulated:
            return self.conv(x)
        out = modulated_conv2d(x, self.weight * self.scale, self.style(w), demodulate=False)
        return out + self.bias[None, :, None, None]


class StyleGANGenerator(Generator):
    """z (B, latent_dim) -> images (B, C, S, S), S = 4 x 2^(levels - 1); see the module's docstring."""

    def __init__(self, cfg: StyleGANConfig, shape: tuple[int, ...], num_classes: int = 0) -> None:
        super().__init__()
        channels, side = shape[0], shape[-1]
        self.cfg, self.shape = cfg, tuple(shape)
        self.latent_dim = cfg.latent_dim
        self.num_classes = num_classes if cfg.conditioning != "none" else 0
        self.levels = levels_for(side)
        self.num_ws = 2 * self.levels
        self.mapping = MappingNetwork(cfg, self.num_classes)
        c4 = width_at(cfg, 4)
        self.const = nn.Parameter(torch.ones(1, c4, 4, 4))
        self.blocks = nn.ModuleList()
        self.to_rgb = nn.ModuleList()
        c_prev = c4
        for level in range(self.levels):
            res, c = 4 * 2 ** level, width_at(cfg, 4 * 2 ** level)
            first_is_const = level == 0 and cfg.conv == "adain"
            self.blocks.append(nn.ModuleList([
                StyleLayer(cfg, c_prev, c, res, up=level > 0, conv=not first_is_const),
                StyleLayer(cfg, c, c, res, up=False, conv=True)]))
            self.to_rgb.append(ToRGB(cfg, c, channels))
            c_prev = c
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))
        self.register_buffer("progress", torch.tensor([self.levels - 1.0, 1.0]))  # (level, alpha)

    # -- progress -------------------------------------------------------------------------------------------------

    def set_progress(self, level: int, alpha: float) -> None:
        """Grow to ``level`` (0: 4x4) with the fade-in weight ``alpha`` of its new layers (scalar fills: no host
        synchronisation on a GPU)."""
        self.progress[0] = float(level)
        self.progress[1] = float(alpha)

    def set_condition_weight(self, weight: float) -> None:
        """The class's weight in the mapping (a conditional model's ``cond_scale``; transitional conditioning)."""
        if self.num_classes:
            self.mapping.cond_scale.fill_(float(weight))

    def current_progress(self) -> tuple[int, float]:
        """(level, alpha) from the buffer (a host read)."""
        level, alpha = self.progress.tolist()
        return int(level), float(alpha)

    # -- the two networks -----------------------------------------------------------------------------------------

    def truncate(self, w: torch.Tensor, psi: float | torch.Tensor, cutoff: int | None = None) -> torch.Tensor:
        """w_avg + psi (w - w_avg) for ws (B, num_ws, w_dim) on layers < cutoff (the config's, else all); ``psi``
        a number, or a (1,) tensor (an exported graph's input)."""
        if not torch.is_tensor(psi) and psi == 1:
            return w
        cutoff = cutoff or self.cfg.truncation_cutoff or self.num_ws
        out = w.clone()
        avg = self.w_avg.to(w.dtype)
        out[:, :cutoff] = avg + psi * (w[:, :cutoff] - avg)
        return out

    def styles(self, z: torch.Tensor, psi: float | torch.Tensor | None = None, update_w_avg: bool = False,
               labels: torch.Tensor | None = None) -> torch.Tensor:
        """Per-layer styles ws (B, num_ws, w_dim) for codes z (and labels (B,), which a conditional model needs),
        truncated towards w_avg when ``psi`` is given; ``update_w_avg`` moves the running mean of w towards this
        batch's (the training step does). A conditional model's w_avg is the mean over all classes."""
        w = self.mapping(z, labels)
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().float().mean(dim=0).lerp(self.w_avg, self.cfg.w_avg_beta))
        ws = w[:, None, :].expand(-1, self.num_ws, -1)
        return ws if psi is None else self.truncate(ws, psi)

    def synthesis(self, ws: torch.Tensor, *, noise_mode: str | None = None, generator: torch.Generator | None = None,
                  progress: tuple[int, float] | None = None, noise: list[torch.Tensor] | None = None
                  ) -> torch.Tensor:
        """Images (B, C, S, S) from per-layer styles ws (B, num_ws, w_dim). ``noise_mode``: random (default while
        training; drawn from ``generator``), const (default in eval mode: the fixed maps), none, or given (the maps
        ``noise``, one per noise layer in the order :meth:`noise_shapes` lists them)."""
        if ws.dim() != 3 or ws.shape[1] != self.num_ws:
            raise ValueError(f"expected styles (B, {self.num_ws}, {self.cfg.w_dim}), got {tuple(ws.shape)}")
        noise_mode = noise_mode or ("random" if self.training else "const")
        level, alpha = progress if progress is not None else self.current_progress()
        if noise_mode == "given" and len(noise or ()) != len(self.noise_shapes((level, alpha))):
            raise ValueError(f"expected {len(self.noise_shapes((level, alpha)))} noise maps, got {len(noise or ())}")
        maps = iter(noise or ())
        x = self.const.to(ws.dtype).expand(ws.shape[0], -1, -1, -1)
        previous = skip = None
        for lv in range(level + 1):
            if lv == level:
                previous = x
            for i, layer in enumerate(self.blocks[lv]):
                given = next(maps) if noise_mode == "given" and layer.noise is not None else None
                x = layer(x, ws[:, 2 * lv + i], noise_mode, generator, given)
            if self.cfg.g_arch == "skip":  # every level adds its toRGB to the upsampled sum of the ones below
                rgb = self.to_rgb[lv](x, ws[:, 2 * lv + 1])
                rgb = rgb * alpha if lv == level and lv > 0 and alpha < 1 else rgb  # a new level fades in
                skip = rgb if skip is None else up2_smooth(skip) + rgb
        if skip is not None:
            image = self._output(skip)
        else:
            image = self._output(self.to_rgb[level](x, ws[:, 2 * level + 1]))
        if skip is None and level > 0 and alpha < 1:  # fade-in: the lower level's image, upsampled, blended in
            # previous holds the input of this level's block, i.e. the output of level - 1; each image goes through
            # the output function before the blend, so G fades in pixel space exactly as the reals are faded
            low = self._output(self.to_rgb[level - 1](previous, ws[:, 2 * level - 1]))
            image = torch.lerp(up2(low), image, alpha)
        factor = self.shape[-1] // image.shape[-1]
        return image if factor == 1 else F.interpolate(image, scale_factor=factor, mode="nearest")

    def _output(self, image: torch.Tensor) -> torch.Tensor:
        return torch.tanh(image) if self.cfg.output == "tanh" else image

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None, *, psi: float | torch.Tensor | None = None,
                noise_mode: str | None = None, generator: torch.Generator | None = None,
                progress: tuple[int, float] | None = None, noise: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Images for codes z (and labels (B,), which a conditional model needs and an unconditional one ignores)."""
        ws = self.styles(z, psi, labels=labels if self.num_classes else None)
        return self.synthesis(ws, noise_mode=noise_mode, generator=generator, progress=progress, noise=noise)

    def noise_shapes(self, progress: tuple[int, float] | None = None) -> list[tuple[int, int, int]]:
        """(1, r, r) of each noise layer the synthesis runs (at ``progress``, else the current one), in order."""
        level = (progress if progress is not None else self.current_progress())[0]
        return [tuple(layer.noise.noise_const.shape[1:]) for lv in range(level + 1) for layer in self.blocks[lv]
                if layer.noise is not None]

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None, *,
                 psi: float | torch.Tensor | None = None, noise: list[torch.Tensor] | None = None,
                 progress: tuple[int, float] | None = None) -> torch.Tensor:
        """Images in [-1, 1] from codes z as :meth:`sample` computes them, given its noise maps (``noise``: one
        (B, 1, r, r) per noise layer, as :meth:`noise_shapes` lists them and ``sample`` draws them after z), or
        the fixed maps (``noise`` None); ``psi`` truncates (a number, or a (1,) tensor)."""
        mode = "const" if noise is None else "given"
        return self(z, labels, psi=psi, noise_mode=mode, noise=noise, progress=progress).clamp(-1, 1)

    def graph(self, options: dict, *, generator: torch.Generator | None = None, name: str = "stylegan") -> Graph:
        """The exported form of :meth:`generate`: inputs ``z``, ``psi`` (unless the option ``psi`` fixes it) and,
        with ``noise=input`` (the default), one noise map per noise layer, ``noise0``, ``noise1``, ... (with
        ``noise=const``, the fixed maps instead); output ``images``. The growing schedule's (level, alpha) at
        export time is fixed in the graph."""
        opts = take_options(options, {"psi": (None, None), "noise": ("input", ("input", "const"))}, name)
        progress = self.current_progress()
        inputs = {"z": self.sample_latent(EXAMPLE_BATCH, generator=generator)}
        docs = {"z": shape_doc((self.latent_dim,), "float32", "codes drawn from N(0, I)")}
        if self.num_classes:
            inputs["label"] = self.sample_labels(EXAMPLE_BATCH, generator=generator)
            docs["label"] = f"(B,) int64, class labels in 0..{self.num_classes - 1}"
        if opts["psi"] is None:
            inputs["psi"] = torch.ones(1, device=self.device)
            docs["psi"] = ("(1,) float32, truncation in W: w_avg + psi (w - w_avg) (1: none, as gankit sample; 0: "
                           "the mean image)")
        shapes = self.noise_shapes(progress) if opts["noise"] == "input" else []
        for i, shape in enumerate(shapes):
            inputs[f"noise{i}"] = torch.randn((EXAMPLE_BATCH, *shape), generator=generator, device=self.device)
            docs[f"noise{i}"] = shape_doc(shape, "float32", f"N(0, 1) noise map of noise layer {i} (as gankit "
                                          "sample draws them: fresh for each image, after z)")
        docs["images"] = shape_doc(self.shape, "float32", "images in [-1, 1]")
        module = _Rendering(self.eval(), opts["psi"], opts["noise"] == "input", progress, bool(self.num_classes))
        return Graph(module, inputs, "images", docs, ("psi",) if opts["psi"] is None else (),
                     {"psi": "input" if opts["psi"] is None else opts["psi"], "noise": opts["noise"]})

    @torch.no_grad()
    def sample(self, n: int, *, labels: torch.Tensor | None = None, generator: torch.Generator | None = None,
               psi: float | None = None) -> torch.Tensor:
        """n images in [-1, 1] in eval mode, with fresh noise maps drawn from ``generator``; ``psi`` truncates. A
        conditional model draws uniform labels (after z) unless ``labels`` are given."""
        was_training = self.training
        self.eval()
        try:
            z = self.sample_latent(n, generator=generator)
            if labels is None:
                labels = self.sample_labels(n, generator=generator)
            return self(z, labels, psi=psi, noise_mode="random", generator=generator).clamp(-1, 1)
        finally:
            self.train(was_training)


class _Rendering(nn.Module):
    """StyleGAN's exported forward: (z, [label], [psi], *noise maps) -> images, through
    :meth:`StyleGANGenerator.generate` (``labelled``: the labels follow z; ``psi`` None: psi follows; ``given``: the
    maps follow; ``progress`` fixed)."""

    def __init__(self, G: StyleGANGenerator, psi: float | None, given: bool, progress: tuple[int, float],
                 labelled: bool = False) -> None:
        super().__init__()
        self.G, self.psi, self.given, self.progress, self.labelled = G, psi, given, progress, labelled

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) codes [, (B,) labels] [, (1,) psi], noise maps -> (B, C, S, S) images in [-1, 1]."""
        z, rest = inputs[0], inputs[1:]
        labels, rest = (rest[0], rest[1:]) if self.labelled else (None, rest)
        psi, maps = (rest[0], rest[1:]) if self.psi is None else (self.psi, rest)
        return self.G.generate(z, labels, psi=psi, noise=list(maps) if self.given else None, progress=self.progress)


# ---------------------------------------------------------------------------------------------------------------
# Discriminator


def minibatch_std(x: torch.Tensor, group: int) -> torch.Tensor:
    """Append one channel: the std of every feature over groups of ``group`` samples (or the whole batch when it is
    smaller), averaged over features and pixels, broadcast to the group's samples. (B, C, H, W) -> (B, C + 1, H, W).
    Groups are runs of consecutive samples (ProGAN groups by stride; consecutive groups are the same under torchrun,
    where each rank holds consecutive rows of the global batch, as long as its share is a multiple of the group)."""
    b, c, h, w = x.shape
    g = min(group, b)
    if b % g:
        raise ValueError(f"minibatch std: batch {b} is not a multiple of the group size {g}")
    y = x.float().reshape(b // g, g, c, h, w)
    std = (y.var(dim=1, unbiased=False) + 1e-8).sqrt()  # (B/g, C, H, W)
    stat = std.mean(dim=(1, 2, 3))  # (B/g,)
    stat = stat.repeat_interleave(g)[:, None, None, None].expand(b, 1, h, w).to(x.dtype)
    return torch.cat([x, stat], dim=1)


class DBlock(nn.Module):
    """conv3x3 -> LeakyReLU -> conv3x3 -> LeakyReLU -> 2x average pool."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = EqualConv2d(c_in, c_in, 3)
        self.conv2 = EqualConv2d(c_in, c_out, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, c_in, r, r) -> (B, c_out, r/2, r/2)."""
        return F.avg_pool2d(leaky(self.conv2(leaky(self.conv1(x)))), 2)


class ResidualDBlock(DBlock):
    """StyleGAN2's residual D block: (the two convolutions and the pool of :class:`DBlock` + a 1x1 convolution
    without bias of the pooled input) / sqrt(2), which keeps the variance of the sum of two unit-variance paths."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(c_in, c_out)
        self.skip = EqualConv2d(c_in, c_out, 1, gain=1.0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, c_in, r, r) -> (B, c_out, r/2, r/2)."""
        return (super().forward(x) + self.skip(F.avg_pool2d(x, 2))) * (1 / math.sqrt(2))


class StyleGANDiscriminator(nn.Module):
    """images (B, C, S, S) -> logits (B,); grows with the generator (see the module's docstring)."""

    pack = 1

    def __init__(self, cfg: StyleGANConfig, shape: tuple[int, ...], num_classes: int = 0) -> None:
        super().__init__()
        channels, side = shape[0], shape[-1]
        self.conditioning = cfg.conditioning if num_classes else "none"
        self.num_classes = num_classes if self.conditioning != "none" else 0
        self.side, self.levels, self.group = side, levels_for(side), cfg.mbstd_group
        self.from_rgb = nn.ModuleList(EqualConv2d(channels, width_at(cfg, 4 * 2 ** lv), 1)
                                      for lv in range(self.levels))
        # blocks[lv] takes level lv's features down to level lv - 1's (blocks[0] is unused: the final block)
        block = ResidualDBlock if cfg.d_arch == "residual" else DBlock
        self.blocks = nn.ModuleList([nn.Identity()] + [
            block(width_at(cfg, 4 * 2 ** lv), width_at(cfg, 2 * 2 ** lv)) for lv in range(1, self.levels)])
        c4 = width_at(cfg, 4)
        self.final_conv = EqualConv2d(c4 + 1, c4, 3)
        self.final_fc = EqualLinear(c4 * 16, c4)
        self.out = EqualLinear(c4, 1, gain=1.0)
        # projection (Miyato & Koyama 2018): + embed(y) . h / sqrt(c4), h the features the output layer reads
        self.embed = EqualLinear(self.num_classes, c4, gain=1.0) if self.num_classes else None
        if self.num_classes:
            self.register_buffer("cond_scale", torch.ones(()))
        self.register_buffer("progress", torch.tensor([self.levels - 1.0, 1.0]))

    def set_progress(self, level: int, alpha: float) -> None:
        """Grow to ``level`` with fade-in weight ``alpha`` (as the generator)."""
        self.progress[0] = float(level)
        self.progress[1] = float(alpha)

    def set_condition_weight(self, weight: float) -> None:
        """The projection term's weight (a conditional D's ``cond_scale``; transitional conditioning)."""
        if self.num_classes:
            self.cond_scale.fill_(float(weight))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, *,
                progress: tuple[int, float] | None = None) -> torch.Tensor:
        """One logit per sample."""
        return self.forward_all(x, labels, progress=progress)[0]

    def forward_all(self, x: torch.Tensor, labels: torch.Tensor | None = None, *,
                    progress: tuple[int, float] | None = None) -> tuple[torch.Tensor, None]:
        """(logits (B,), None): the adversarial recipe's interface (no class head); a conditional D needs the
        labels (B,)."""
        if self.embed is not None and labels is None:
            raise ValueError("a class-conditional StyleGAN discriminator needs labels")
        if progress is None:
            level, alpha = self.progress.tolist()
            level = int(level)
        else:
            level, alpha = progress
        res = 4 * 2 ** level
        if x.shape[-1] != res:
            x = F.avg_pool2d(x, x.shape[-1] // res)
        h = leaky(self.from_rgb[level](x))
        if level > 0:
            h = self.blocks[level](h)
            if alpha < 1:
                low = leaky(self.from_rgb[level - 1](F.avg_pool2d(x, 2)))
                h = torch.lerp(low, h, alpha)
        for lv in range(level - 1, 0, -1):
            h = self.blocks[lv](h)
        h = leaky(self.final_conv(minibatch_std(h, self.group)))
        h = leaky(self.final_fc(h.flatten(1)))
        logits = self.out(h).flatten()
        if self.embed is not None:
            y = self.embed(F.one_hot(labels, self.num_classes).to(h.dtype))
            logits = logits + (y * h).sum(dim=1) * (self.cond_scale.to(h.dtype) / math.sqrt(h.shape[1]))
        return logits, None


def _build(cfg: StyleGANConfig, shape: tuple[int, ...], num_classes: int) -> dict[str, nn.Module]:
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ConfigError(f"StyleGAN needs square images, got samples of shape {shape}")
    if cfg.conditioning != "none" and num_classes < 2:
        raise ConfigError(f"model.conditioning={cfg.conditioning} needs labelled data; this dataset has none")
    return {"generator": StyleGANGenerator(cfg, shape, num_classes),
            "discriminator": StyleGANDiscriminator(cfg, shape, num_classes)}


MODELS.register("stylegan", config=StyleGANConfig, recipe="stylegan", task="generation")(_build)
