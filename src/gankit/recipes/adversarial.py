"""The adversarial recipe: ``d_steps`` discriminator updates, then one generator update (Goodfellow et al. 2014,
Algorithm 1, with k = ``d_steps``).

Two schedules:

- ``full``: each discriminator update sees a batch of real and a batch of fake images in one loss; the fakes come
  from the generator in training mode.
- ``keras``: the classic Keras MNIST example. The discriminator takes two separate updates, one on half a batch of
  real images (label 1) and one on half a batch of fakes (label 0) made by ``generator.predict``, i.e. in inference
  mode (batch norm uses its running statistics). The generator update uses a full batch.

In both, the player that is not learning is frozen: its parameters do not require gradients and receive none.

What D sees, in order: DiffAugment (``augment``, applied alike to real and fake, in both players' steps; each
transform to each image with probability ``augment_p``, or ADA's p steered towards ``ada_target``), then
PacGAN packing (the model's ``pack``). Class-conditional models get the real labels with real data and uniform
labels drawn from the noise generator with fakes; a discriminator with a class head (its ``forward_all`` gives class
logits too) adds ``aux_weight`` x the class cross-entropy to both players' losses (Odena et al. 2017, eq. 2-3: D on
real and fake, G on fake; with ``aux_fakes`` false D's class loss is on real data only, so the class it learns is the
data's and not also what G draws). Stabilisers: ``penalty`` (``gp``: WGAN-GP on interpolates; ``r1``: on real data;
``r1_r2``: zero-centred on real data and on the fakes, gamma / 2 (R1 + R2) as in R3GAN, from the same forward pass
as the loss; each every ``penalty_every`` D steps with the weight scaled up to match, as lazy regularisation),
``weight_clip`` (WGAN), ``label_smoothing`` (one-sided, BCE losses). ``penalty_final`` moves the penalty weight
along with the learning-rate schedule: it is ``penalty_weight`` while D's rate is at its base and ``penalty_final``
when the rate reaches ``optim.final_factor`` of it (R3GAN decays gamma with the rate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..config import MAX_STEPS, MAX_WEIGHT, OptimConfig, check_range
from ..errors import ConfigError
from ..losses.penalties import gradient_penalty, r1_penalty, zero_centred_penalty
from ..nn.diffaugment import AdaptiveProbability, diff_augment, parse_policy
from ..registry import LOSSES, RECIPES
from ..nn.modes import eval_mode, frozen
from .base import Recipe, update
from .optim import adam

@dataclass
class AdversarialConfig:
    """What one GAN step is: the loss pair, k discriminator steps per generator step, the batch schedule."""

    name: str = "adversarial"
    loss: str = "non_saturating"  # a registered loss: minimax, non_saturating, least_squares, hinge, wasserstein, ...
    d_steps: int = 1  # k in Algorithm 1
    schedule: Literal["full", "keras"] = "full"
    penalty: Literal["none", "gp", "r1", "r1_r2"] = "none"
    penalty_weight: float = 10.0  # lambda of WGAN-GP, gamma of R1 (and R2)
    penalty_final: float | None = None  # the weight once the learning-rate schedule has run (None: constant)
    penalty_every: int = 1  # lazy regularisation: apply the penalty every this many D steps
    weight_clip: float | None = None  # WGAN: clamp every D weight to [-c, c] after each D update (0.01 in the paper)
    label_smoothing: float = 0.0  # one-sided: the real target becomes 1 - label_smoothing (BCE losses only)
    augment: str = ""  # DiffAugment policy, e.g. "translation,cutout,color"
    # probability that each augment transform is applied to an image; None: 1 (DiffAugment), or with ada_target
    # where ADA's p starts (0)
    augment_p: float | None = None
    ada_target: float = 0.0  # ADA: steer augment_p so that E[sign D(x_real)] stays near this (the paper's 0.6); 0 off
    ada_interval: int = 4  # ADA: D updates between two moves of p
    ada_kimg: float = 500.0  # ADA: thousands of real images over which p can go from 0 to 1 (the paper's 500)
    aux_weight: float = 1.0  # ACGAN: weight of the class cross-entropy
    aux_fakes: bool = True  # D's class cross-entropy on fakes too (ACGAN); false: on real data only

    def __post_init__(self) -> None:
        check_range("recipe.d_steps", self.d_steps, 1, 100, note="WGAN takes 5")
        loss = LOSSES.get(self.loss)
        check_range("recipe.penalty_weight", self.penalty_weight, 0.0, MAX_WEIGHT)
        check_range("recipe.penalty_final", self.penalty_final, 0.0, MAX_WEIGHT, none_ok=True)
        check_range("recipe.penalty_every", self.penalty_every, 1, MAX_STEPS)
        # WGAN clips to 0.01; at 10 no weight of a freshly initialised D is ever clipped
        check_range("recipe.weight_clip", self.weight_clip, 0.0, 10.0, open_lo=True, none_ok=True)
        check_range("recipe.label_smoothing", self.label_smoothing, 0.0, 1.0, open_hi=True)
        check_range("recipe.aux_weight", self.aux_weight, 0.0, MAX_WEIGHT)
        _require(self.label_smoothing == 0 or loss.bce, f"recipe.label_smoothing needs a BCE loss (minimax or "
                 f"non_saturating), not {self.loss}")
        _require(self.schedule == "full" or (loss.bce and self.penalty == "none" and not self.augment),
                 "recipe.schedule=keras only with the BCE losses and without penalty or augment")
        try:
            parse_policy(self.augment)
        except ValueError as exc:
            raise ConfigError(f"recipe.augment={self.augment!r}: {exc}") from None
        check_range("recipe.augment_p", self.augment_p, 0.0, 1.0, none_ok=True)
        check_range("recipe.ada_target", self.ada_target, 0.0, 1.0, open_hi=True, note="the paper's 0.6; 0 is off")
        check_range("recipe.ada_interval", self.ada_interval, 1, MAX_STEPS)
        check_range("recipe.ada_kimg", self.ada_kimg, 0.0, 1e6, open_lo=True)
        for key, on in (("augment_p", self.augment_p is not None), ("ada_target", self.ada_target > 0)):
            _require(not on or self.augment, f"recipe.augment to be set with recipe.{key} (which transforms: "
                     "translation, cutout, color, e.g. recipe.augment=translation,color)")
        _require(self.ada_target == 0 or loss.boundary is not None, f"recipe.ada_target with a loss that has a "
                 f"decision boundary (ADA steers by the sign of D on real images); {self.loss} has none")


def _require(ok: bool, what: str) -> None:
    if not ok:
        raise ConfigError(f"invalid recipe settings: expected {what}")


class AdversarialRecipe(Recipe):
    """One GAN training step over a generator/discriminator pair."""

    def __init__(self, cfg: AdversarialConfig, modules: dict[str, nn.Module], optim: OptimConfig) -> None:
        self.cfg = cfg
        if "discriminator" not in modules:
            raise ConfigError(f"recipe.name=adversarial needs a model with a discriminator (a GAN), not "
                              f"{sorted(modules)}: pick a matching recipe.name ({', '.join(RECIPES.names())})")
        self.G, self.D = modules["generator"], modules["discriminator"]
        self.loss = LOSSES.get(cfg.loss)
        self.policy = parse_policy(cfg.augment)
        self.ada = None
        if cfg.ada_target > 0:
            start = 0.0 if cfg.augment_p is None else cfg.augment_p
            self.ada = AdaptiveProbability(cfg.ada_target, cfg.ada_interval, cfg.ada_kimg, start,
                                           next(self.D.parameters()).device)
        self.pack = int(getattr(self.D, "pack", 1))
        self.d_takes_labels = getattr(self.D, "conditioning", "none") in ("concat", "projection")
        self.d_updates = 0
        self.penalty_values: dict[str, torch.Tensor] = {}  # the last R1 / R2, logged every step
        _require(cfg.penalty_final is None or (optim.schedule != "constant" and optim.final_factor < 1),
                 "recipe.penalty_final with a learning-rate schedule that falls (optim.schedule linear or cosine, "
                 "optim.final_factor < 1): the weight moves with the rate")
        self.final_factor = optim.final_factor
        self.optimizers = {"generator": adam(self.G.parameters(), optim.lr_g, optim),
                           "discriminator": adam(self.D.parameters(), optim.lr_d, optim)}

    def validate(self, data, batch_size: int) -> None:
        """Refuse settings that cannot work with this data and models, before training starts."""
        if getattr(data, "is_regression", False):
            raise ConfigError(f"data {data.name!r} holds regression targets, which a GAN does not model: train "
                              "model.name=mlp_regressor on it (or give a GAN images or 2-D points)")
        if batch_size % self.pack:
            raise ConfigError(f"train.batch_size={batch_size} must be a multiple of model.pack={self.pack}")
        if self.policy and not data.is_image:
            raise ConfigError(f"recipe.augment={self.cfg.augment!r} transforms images; data {data.name!r} holds "
                              "points: set recipe.augment to an empty string")
        if self.cfg.schedule == "keras" and getattr(self.D, "class_head", False):
            raise ConfigError("recipe.schedule=keras has no class loss for a discriminator with a class head "
                              "(model.conditioning=acgan, model.class_head): use recipe.schedule=full")

    def state_dict(self) -> dict:
        """What a checkpoint must keep besides the optimizers: the D-update count that times lazy penalties."""
        return {"d_updates": self.d_updates}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""
        self.d_updates = int(state.get("d_updates", 0))

    def tensor_state(self) -> dict[str, torch.Tensor]:
        """The last lazy penalty's values, which every step logs until the next one: kept, so that the first log
        row after a resume averages them over the same steps as an uninterrupted run's; with ADA, its p and sums."""
        kept = {f"last_{k}": v for k, v in self.penalty_values.items()}
        return {**kept, **self.ada.state()} if self.ada is not None else kept

    def load_tensor_state(self, tensors: dict[str, torch.Tensor], device: torch.device) -> None:
        """Restore :meth:`tensor_state` onto ``device``."""
        self.penalty_values = {k.removeprefix("last_"): v.to(device) for k, v in tensors.items()
                               if k in ("last_r1", "last_r2")}
        if self.ada is not None:
            self.ada.load_state(tensors)

    def step(self, batches, noise: torch.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        """k discriminator updates then one generator update; returns detached scalar tensors (no host sync)."""
        d_step = self._d_step_keras if self.cfg.schedule == "keras" else self._d_step_full
        for _ in range(self.cfg.d_steps):
            logs = d_step(batches, noise, batch_size)
        logs.update(self._g_step(noise, batch_size))
        return logs

    # -- what D sees ------------------------------------------------------------------------------------------

    def _view(self, x: torch.Tensor, noise: torch.Generator) -> torch.Tensor:
        """DiffAugment (each transform with probability p: ADA's, or ``augment_p``), then PacGAN packing:
        (B, C, ...) -> (B / pack, C * pack, ...)."""
        if self.policy:
            x = diff_augment(x, self.policy, noise, self.ada.p if self.ada is not None else self.cfg.augment_p)
        if self.pack > 1:
            x = x.reshape(x.shape[0] // self.pack, x.shape[1] * self.pack, *x.shape[2:])
        return x

    def _judge(self, x: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """D's logits (and ACGAN class logits) for an already-viewed batch, in fp32 (under train.precision=bf16
        the network runs in bf16; the losses do not)."""
        logits, cls = self.D.forward_all(x, labels if self.d_takes_labels else None)
        return logits.float(), (None if cls is None else cls.float())

    def _fakes(self, n: int, noise: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        labels = self.G.sample_labels(n, generator=noise)
        return self.G(self.G.sample_latent(n, generator=noise), labels), labels

    # -- the discriminator -------------------------------------------------------------------------------------

    def _d_step_full(self, batches, noise: torch.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        real, real_y = batches.next(batch_size)
        with torch.no_grad():
            fake, fake_y = self._fakes(batch_size, noise)
        real_in, fake_in = self._view(real, noise), self._view(fake, noise)
        due = self._penalty_due()
        if due and self.cfg.penalty == "r1_r2":  # gradients with respect to D's inputs, from this very forward pass
            real_in, fake_in = real_in.detach().requires_grad_(True), fake_in.detach().requires_grad_(True)
        (real_logits, real_cls), (fake_logits, fake_cls) = self._judge(real_in, real_y), self._judge(fake_in, fake_y)
        loss = self._d_loss(real_logits, fake_logits)
        if real_cls is not None:
            classes = F.cross_entropy(real_cls, real_y)
            if self.cfg.aux_fakes:
                classes = classes + F.cross_entropy(fake_cls, fake_y)
            loss = loss + self.cfg.aux_weight * classes
        if due:
            loss = loss + self._penalty(real_in, fake_in, real_y, noise, (real_logits, fake_logits))
        self._update("discriminator", loss)
        self._clip()
        self.last_real = (real, real_y)  # the relativistic generator loss compares against this batch
        logs = {**_d_logs(loss, real_logits, fake_logits, self.loss), **self.penalty_values}
        if self.ada is not None:  # D's view of the (augmented) reals steers p, as in the paper
            self.ada.observe(real_logits.detach() - self.loss.boundary, self.d_updates, real.shape[0])
            logs["augment_p"] = self.ada.p
        return logs

    def _d_loss(self, real_logits: torch.Tensor | None, fake_logits: torch.Tensor | None) -> torch.Tensor:
        if self.loss.bce:
            return self.loss.d(real_logits, fake_logits, real_target=1.0 - self.cfg.label_smoothing)
        return self.loss.d(real_logits, fake_logits)

    def _penalty_due(self) -> bool:
        """Count this D update; True when it carries the penalty (every ``penalty_every`` updates)."""
        cfg = self.cfg
        self.d_updates += 1
        return cfg.penalty != "none" and cfg.penalty_weight > 0 and self.d_updates % cfg.penalty_every == 0

    def penalty_weight(self) -> float:
        """The penalty's weight now: ``penalty_weight``, or on its way to ``penalty_final`` as far as D's learning
        rate is on its way from its base to ``optim.final_factor`` of it."""
        cfg = self.cfg
        if cfg.penalty_final is None:
            return cfg.penalty_weight
        group = self.optimizers["discriminator"].param_groups[0]
        done = (1.0 - group["lr"] / group.get("base_lr", group["lr"])) / (1.0 - self.final_factor)
        return cfg.penalty_weight + (cfg.penalty_final - cfg.penalty_weight) * min(max(done, 0.0), 1.0)

    def _penalty(self, real_in: torch.Tensor, fake_in: torch.Tensor, labels, noise, logits) -> torch.Tensor:
        cfg, weight = self.cfg, self.penalty_weight() * self.cfg.penalty_every
        if cfg.penalty == "r1_r2":
            r1, r2 = zero_centred_penalty(logits[0], real_in), zero_centred_penalty(logits[1], fake_in)
            self.penalty_values = {"r1": r1.detach(), "r2": r2.detach()}
            return weight * (r1 + r2)
        critic = lambda x: self._judge(x, labels)[0]  # noqa: E731
        if cfg.penalty == "gp":
            return weight * gradient_penalty(critic, real_in, fake_in, noise)
        return weight * r1_penalty(critic, real_in)

    def _clip(self) -> None:
        if self.cfg.weight_clip is not None:
            with torch.no_grad():
                for p in self.D.parameters():
                    p.clamp_(-self.cfg.weight_clip, self.cfg.weight_clip)

    def _d_step_keras(self, batches, noise: torch.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        half = max(1, batch_size // 2)
        real, real_y = batches.next(half)
        z, fake_y = self.G.sample_latent(half, generator=noise), self.G.sample_labels(half, generator=noise)
        fake = _predict(self.G, z, fake_y)
        real_logits = self._judge(self._view(real, noise), real_y)[0]
        loss_real = self._d_loss(real_logits, None)
        self._update("discriminator", loss_real)
        fake_logits = self._judge(self._view(fake, noise), fake_y)[0]
        loss_fake = self._d_loss(None, fake_logits)
        self._update("discriminator", loss_fake)
        self.last_real = (real, real_y)
        # Keras reports 0.5 * (real + fake) as the discriminator loss.
        return _d_logs(0.5 * (loss_real + loss_fake), real_logits, fake_logits, self.loss)

    # -- the generator -----------------------------------------------------------------------------------------

    def _g_step(self, noise: torch.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        # D's buffers (batch-norm statistics, spectral norm's power-iteration vectors) must not learn from the
        # generator's step either: they are put back afterwards
        buffers = [b.detach().clone() for b in self.D.buffers()]
        try:
            with frozen(self.D):
                logs = self._g_update(noise, batch_size)
        finally:
            with torch.no_grad():
                for b, saved in zip(self.D.buffers(), buffers):
                    b.copy_(saved)
        return logs

    def _g_update(self, noise: torch.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        fake, fake_y = self._fakes(batch_size, noise)
        fake_logits, fake_cls = self._judge(self._view(fake, noise), fake_y)
        real_logits = None
        if self.loss.relativistic:
            real, real_y = self.last_real
            real_logits = self._judge(self._view(real, noise), real_y)[0].detach()
        loss = self.loss.g(fake_logits, real_logits)
        if fake_cls is not None:
            loss = loss + self.cfg.aux_weight * F.cross_entropy(fake_cls, fake_y)
        self._update("generator", loss)
        return {"g_loss": loss.detach()}

    def _update(self, name: str, loss: torch.Tensor) -> None:
        update(self.optimizers[name], loss)

    def compile_skip(self, modules: dict[str, nn.Module]) -> tuple[set[str], str]:
        """A gradient penalty differentiates through D twice, which compiled code does not support."""
        if self.cfg.penalty == "none":
            return set(), ""
        return {"discriminator"}, (f"train.compile=true: the discriminator runs uncompiled (recipe.penalty="
                                   f"{self.cfg.penalty} differentiates through it twice, which compiled code does "
                                   "not support)")


def _predict(G: nn.Module, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """G(z) in inference mode, as Keras' ``predict`` runs it."""
    with eval_mode(G), torch.no_grad():
        return G(z, labels)


def _d_logs(loss: torch.Tensor, real_logits: torch.Tensor, fake_logits: torch.Tensor, adv) -> dict[str, torch.Tensor]:
    """The discriminator's log: its loss, what it says of real and fake data (the probability D(x) for the BCE
    losses, the raw critic value otherwise) and, where the loss has a decision boundary, its accuracy."""
    real, fake = real_logits.detach(), fake_logits.detach()
    logs = {"d_loss": loss.detach(),
            "d_real": torch.sigmoid(real).mean() if adv.bce else real.mean(),
            "d_fake": torch.sigmoid(fake).mean() if adv.bce else fake.mean()}
    if adv.boundary is not None:  # share of real and fake samples D classifies correctly; pinned at 1: collapse?
        logs["d_acc"] = 0.5 * ((real > adv.boundary).float().mean() + (fake < adv.boundary).float().mean())
        # ADA's overfitting heuristic r_t = E[sign(D(x_real))] (Karras et al. 2020b): 0 while D cannot tell the
        # training images from fakes, 1 once it is sure of every one; ADA raises its augmentation above 0.6
        logs["d_sign_real"] = torch.sign(real - adv.boundary).mean()
    return logs


RECIPES.register("adversarial", config=AdversarialConfig)(AdversarialRecipe)
