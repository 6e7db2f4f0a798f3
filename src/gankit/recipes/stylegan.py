"""The StyleGAN recipe: the adversarial step of :mod:`gankit.recipes.adversarial` (non-saturating loss, lazy R1 on
real images by default) with what StyleGAN training adds:

* **progressive growing** (Karras et al. 2018, sec. 2): training starts at ``start_size`` pixels; every
  ``phase_steps`` generator steps the schedule alternates a fade-in phase (alpha rises linearly from 0 to 1 while the
  next resolution's layers blend in) and a stable phase, until the data's resolution is reached, which then trains for
  the rest of the run. Real images are shown to D at the current resolution and faded the same way: (1 - alpha) x
  the lower resolution's image upsampled + alpha x the current one. ``progressive: false`` trains at the full
  resolution from the start (StyleGAN2's fixed-resolution training).
* **style mixing regularisation** (Karras et al. 2019, sec. 3.1): for a share ``mixing_prob`` of the fakes, two codes
  z1, z2 are mapped and the styles switch from w1 to w2 at a crossover layer drawn uniformly among the layers in use.
* the generator's running mean of w (for truncation) is updated on every generator step.
* **path length regularisation** (StyleGAN2, sec. 3.2), when ``pl_weight`` > 0: every ``pl_every`` generator steps,
  after the adversarial update, a separate generator update on ``pl_weight`` x ``pl_every`` x the penalty of
  :func:`gankit.losses.penalties.path_length_penalty`, on a batch ``pl_batch_shrink`` times smaller (mixed styles
  as the adversarial fakes), as StyleGAN2 runs its lazy regularisation; the running mean of the path lengths
  (``pl_decay`` per update) is kept in the recipe's state. StyleGAN2's weight is 2 (gamma of its eq. 4, with its
  own normalisation of y, which :func:`path_length_penalty` follows).

* **class conditioning** (``model.conditioning=projection``): fakes get uniform labels (both codes of a mixed fake
  share one), D sees every image's label. With ``cond_start`` / ``cond_ramp``, transitional conditioning (Shahbazi
  et al. 2023, "Collapse by conditioning"): the class's weight in G's mapping and in D's projection is 0 for
  ``cond_start`` generator steps (an unconditional GAN), then rises linearly to 1 over ``cond_ramp`` steps.

StyleGAN2 as the paper trains it is ``model.conv=modulated model.g_arch=skip model.d_arch=residual
recipe.progressive=false recipe.pl_weight=2`` (adaptive augmentation, for small data, is the adversarial recipe's
``ada_target``); configs/stylegan2_mnist.yaml sets all but the last (path length regularisation measured worse at
32 px in 10 minutes: docs/stylegan.md).

The progress (level, alpha) is a function of the generator steps taken, which the recipe keeps in its state (and so
in checkpoints); both networks also store it in a buffer, so a checkpoint alone samples at the resolution it was at.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..config import MAX_BATCH, MAX_SIDE, MAX_STEPS, MAX_WEIGHT, check_range
from ..errors import ConfigError
from ..losses.penalties import path_length_penalty
from ..models.stylegan import up2, up2_smooth
from ..registry import RECIPES
from ..shard import sharded
from .adversarial import AdversarialConfig, AdversarialRecipe


@dataclass
class StyleGANRecipeConfig(AdversarialConfig):
    """The adversarial settings (non-saturating loss and lazy R1 by default) plus growing and mixing."""

    name: str = "stylegan"
    penalty: Literal["none", "gp", "r1", "r1_r2"] = "r1"
    # gamma of R1 (the loss adds gamma / 2 E||grad D(x)||^2 on reals); on MNIST, 10 minutes, seed 0: FID 10.1 with
    # 10, 14.4 with 1, 33.7 with 0.1 (docs/stylegan.md)
    penalty_weight: float = 10.0
    penalty_every: int = 16  # lazy regularisation (StyleGAN2, sec. 3.1)
    mixing_prob: float = 0.9  # share of fakes made from two codes
    progressive: bool = True
    start_size: int = 8  # first resolution of progressive growing (4 x 2^k, at most the data's side)
    phase_steps: int = 1000  # generator steps of each fade-in and each stable phase
    pl_weight: float = 0.0  # path length regularisation (StyleGAN2: 2); 0 turns it off
    pl_every: int = 4  # lazy: a path length update every this many generator steps, its weight scaled to match
    pl_decay: float = 0.01  # rate of the running mean of the path lengths
    pl_batch_shrink: int = 2  # the path length batch is train.batch_size / this
    cond_start: int = 0  # transitional conditioning: generator steps trained unconditionally, then ...
    cond_ramp: int = 0  # ... the steps over which the class's weight rises linearly from 0 to 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("recipe.mixing_prob", self.mixing_prob, 0.0, 1.0)
        check_range("recipe.phase_steps", self.phase_steps, 1, MAX_STEPS)
        check_range("recipe.start_size", self.start_size, 4, MAX_SIDE)
        check_range("recipe.pl_weight", self.pl_weight, 0.0, MAX_WEIGHT)
        check_range("recipe.pl_every", self.pl_every, 1, MAX_STEPS)
        check_range("recipe.pl_decay", self.pl_decay, 0.0, 1.0, open_lo=True)
        check_range("recipe.pl_batch_shrink", self.pl_batch_shrink, 1, MAX_BATCH)
        check_range("recipe.cond_start", self.cond_start, 0, MAX_STEPS)
        check_range("recipe.cond_ramp", self.cond_ramp, 0, MAX_STEPS)
        if 4 * 2 ** round(math.log2(self.start_size / 4)) != self.start_size:
            raise ConfigError(f"recipe.start_size={self.start_size}: expected 4 x 2^k (4, 8, 16, ...)")


def progress_at(step: int, start_level: int, top_level: int, phase_steps: int) -> tuple[int, float]:
    """(level, alpha) after ``step`` generator steps: ``phase_steps`` stable at ``start_level``, then for each
    higher level a fade-in (alpha from 0 to 1) and a stable phase of ``phase_steps`` each; the top level stays."""
    if start_level >= top_level:
        return top_level, 1.0
    phase, within = divmod(step, phase_steps)
    if phase == 0:
        return start_level, 1.0
    level = start_level + (phase + 1) // 2  # phases 1, 2 -> start + 1 (fade, stable); 3, 4 -> start + 2; ...
    if level > top_level:
        return top_level, 1.0
    return (level, within / phase_steps) if phase % 2 == 1 else (level, 1.0)


def fade_images(x: torch.Tensor, level: int, alpha: float, smooth: bool = False) -> torch.Tensor:
    """Full-size images (B, C, S, S) as the generator shows them at (level, alpha): average-pooled to 4 x 2^level,
    during a fade-in blended with the lower level's image upsampled (nearest, or bilinearly with ``smooth``, as
    the skip generator upsamples), then upsampled (nearest) back to S."""
    side, res = x.shape[-1], 4 * 2 ** level
    x_r = F.avg_pool2d(x, side // res) if side != res else x
    if level > 0 and alpha < 1:
        low = F.avg_pool2d(x_r, 2)
        x_r = torch.lerp(up2_smooth(low) if smooth else up2(low), x_r, alpha)
    return x_r if side == res else F.interpolate(x_r, scale_factor=side // res, mode="nearest")


class _FadedReals:
    """The data sampler, with every batch shown at the current (level, alpha)."""

    def __init__(self, batches, level: int, alpha: float, smooth: bool) -> None:
        self.batches, self.level, self.alpha, self.smooth = batches, level, alpha, smooth

    def next(self, n: int):
        x, y = self.batches.next(n)
        return fade_images(x, self.level, self.alpha, self.smooth), y


class StyleGANRecipe(AdversarialRecipe):
    """One StyleGAN step: k discriminator updates on faded reals and (mixed) fakes, then one generator update."""

    def __init__(self, cfg: StyleGANRecipeConfig, modules, optim) -> None:
        super().__init__(cfg, modules, optim)
        if not hasattr(self.G, "synthesis"):
            raise ConfigError(f"recipe.name=stylegan needs model.name=stylegan (a mapping and a synthesis network); "
                              f"this model's generator is a {type(self.G).__name__}: use recipe.name=adversarial")
        self.top = self.G.levels - 1
        self.start = min(self.top, int(round(math.log2(cfg.start_size / 4)))) if cfg.progressive else self.top
        self.g_steps = 0
        self.progress = (self.top, 1.0)
        self._shown: tuple[int, float, float] | None = None  # (level, alpha, class weight) last written
        self.pl_mean = torch.zeros((), device=next(self.G.parameters()).device)
        self.pl_logs: dict[str, torch.Tensor] = {}  # the last path length update's, logged every step

    def validate(self, data, batch_size: int) -> None:
        """The adversarial checks, plus the minibatch-std group and the growing schedule's start."""
        super().validate(data, batch_size)
        group = min(self.D.group, batch_size)
        if batch_size % group:
            raise ConfigError(f"model.mbstd_group={self.D.group} must divide each process's batch ({batch_size}): "
                              "change train.batch_size or model.mbstd_group")
        if self.cfg.pl_weight > 0 and batch_size % self.cfg.pl_batch_shrink:
            raise ConfigError(f"recipe.pl_batch_shrink={self.cfg.pl_batch_shrink} must divide each process's batch "
                              f"({batch_size}): change train.batch_size or recipe.pl_batch_shrink")
        if (self.cfg.cond_start or self.cfg.cond_ramp) and not self.G.num_classes:
            raise ConfigError("recipe.cond_start and recipe.cond_ramp (transitional conditioning) need a "
                              "class-conditional model: set model.conditioning=projection, or leave them at 0")
        side = data.sample_shape[-1]
        if self.cfg.progressive and self.cfg.start_size > side:
            raise ConfigError(f"recipe.start_size={self.cfg.start_size} is larger than the images ({side}px): lower "
                              "it or set recipe.progressive=false")

    def state_dict(self) -> dict:
        """Lazy-penalty counter, the generator steps that place the growing schedule, and the running mean of the
        path lengths (a float: exact for its fp32 value)."""
        return {**super().state_dict(), "g_steps": self.g_steps, "pl_mean": float(self.pl_mean)}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""
        super().load_state_dict(state)
        self.g_steps = int(state.get("g_steps", 0))
        self.pl_mean = torch.tensor(float(state.get("pl_mean", 0.0)), device=self.pl_mean.device)
        self._shown = None  # the networks' buffers were restored too: write the schedule's progress again

    def tensor_state(self) -> dict[str, torch.Tensor]:
        """The adversarial recipe's, plus the last path length penalty (logged every step until the next update)."""
        kept = super().tensor_state()
        if "pl_penalty" in self.pl_logs:
            kept["last_pl_penalty"] = self.pl_logs["pl_penalty"]
        return kept

    def load_tensor_state(self, tensors: dict[str, torch.Tensor], device: torch.device) -> None:
        """Restore :meth:`tensor_state`; the logged mean is the running mean restored with the JSON state."""
        super().load_tensor_state(tensors, device)
        last = tensors.get("last_pl_penalty")
        self.pl_logs = {} if last is None else {"pl_penalty": last.to(device), "pl_mean": self.pl_mean}

    def compile_skip(self, modules: dict[str, nn.Module]) -> tuple[set[str], str]:
        """Every module runs eagerly: the step calls the mapping and synthesis networks directly, and a fade-in
        changes alpha every step."""
        return set(modules), ("train.compile=true is not applied to StyleGAN yet (its step calls the mapping and "
                              "synthesis networks directly, and a fade-in changes alpha every step): it runs eagerly")

    def condition_weight(self) -> float:
        """The class's weight in G's mapping and D's projection for the next step: 0 for ``cond_start`` generator
        steps, then rising linearly to 1 over ``cond_ramp`` steps (transitional conditioning)."""
        cfg = self.cfg
        if self.g_steps < cfg.cond_start:
            return 0.0
        return 1.0 if cfg.cond_ramp == 0 else min(1.0, (self.g_steps - cfg.cond_start) / cfg.cond_ramp)

    def current_progress(self) -> tuple[int, float]:
        """(level, alpha) for the next step."""
        if not self.cfg.progressive:
            return self.top, 1.0
        return progress_at(self.g_steps, self.start, self.top, self.cfg.phase_steps)

    def step(self, batches, noise: torch.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        """Set the networks' progress, then the adversarial step on faded reals; logs add the resolution and alpha."""
        self.progress = level, alpha = self.current_progress()
        shown = (*self.progress, self.condition_weight())
        if self._shown != shown:  # a buffer write only when the schedule moves
            for net in (self.G, self.D):
                net.set_progress(level, alpha)
                net.set_condition_weight(shown[2])
            self._shown = shown
        if level < self.top or alpha < 1:
            batches = _FadedReals(batches, level, alpha, smooth=self.G.cfg.g_arch == "skip")
        logs = super().step(batches, noise, batch_size)
        self.g_steps += 1
        device = logs["g_loss"].device
        logs["resolution"] = torch.full((), float(4 * 2 ** level), device=device)
        logs["alpha"] = torch.full((), float(alpha), device=device)
        return logs

    def _g_step(self, noise: torch.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        """The adversarial generator update, then (every ``pl_every`` steps) the path length update."""
        logs = super()._g_step(noise, batch_size)
        cfg = self.cfg
        if cfg.pl_weight > 0 and (self.g_steps + 1) % cfg.pl_every == 0:
            n = max(1, batch_size // cfg.pl_batch_shrink)
            images, ws, _ = self._styled_fakes(n, noise)
            penalty, self.pl_mean = path_length_penalty(images, ws, self.pl_mean, cfg.pl_decay, noise,
                                                        self._layers_in_use())
            self._update("generator", cfg.pl_weight * cfg.pl_every * penalty)
            self.pl_logs = {"pl_penalty": penalty.detach(), "pl_mean": self.pl_mean}
        return {**logs, **self.pl_logs}

    def _layers_in_use(self) -> int:
        """Style layers of the levels that run (two per level)."""
        return 2 * (self.progress[0] + 1)

    def _judge(self, x: torch.Tensor, labels: torch.Tensor | None):
        logits, _ = self.D.forward_all(x, labels if self.d_takes_labels else None, progress=self.progress)
        return logits.float(), None

    def _fakes(self, n: int, noise: torch.Generator):
        """(fakes with style mixing, their labels (None for an unconditional model)); the generator step (the one
        with gradients) also moves the running mean of w."""
        images, _, labels = self._styled_fakes(n, noise, update_w_avg=torch.is_grad_enabled())
        return images, labels

    def _styled_fakes(self, n: int, noise: torch.Generator, update_w_avg: bool = False):
        """(images, the per-layer styles they were drawn from, their labels), with style mixing; a conditional
        model's labels are uniform, drawn after the codes, and both codes of a mixed sample share its label."""
        G = self.G
        z = G.sample_latent(n, generator=noise)
        labels = G.sample_labels(n, generator=noise)
        ws = G.styles(z, update_w_avg=update_w_avg, labels=labels)
        if self.cfg.mixing_prob > 0:
            ws2 = G.styles(G.sample_latent(n, generator=noise), labels=labels)
            crossover = sharded(torch.randint, 1, self._layers_in_use(), size=(n,), generator=noise, device=ws.device)
            mixed = sharded(torch.rand, size=(n,), generator=noise, device=ws.device) < self.cfg.mixing_prob
            crossover = torch.where(mixed, crossover, torch.full_like(crossover, G.num_ws))
            ws = mix_styles(ws, ws2, crossover)
        return G.synthesis(ws, noise_mode="random", generator=noise, progress=self.progress), ws, labels


def mix_styles(ws1: torch.Tensor, ws2: torch.Tensor, crossover: torch.Tensor | int) -> torch.Tensor:
    """Per-layer styles taking layers < crossover from ws1 and layers >= crossover from ws2; ws (B, L, D),
    crossover an int or (B,) per sample."""
    layers = torch.arange(ws1.shape[1], device=ws1.device)
    if not torch.is_tensor(crossover):
        crossover = torch.full((ws1.shape[0],), int(crossover), device=ws1.device)
    first = (layers[None, :] < crossover[:, None])[..., None]  # (B, L, 1)
    return torch.where(first, ws1, ws2)


RECIPES.register("stylegan", config=StyleGANRecipeConfig)(StyleGANRecipe)
