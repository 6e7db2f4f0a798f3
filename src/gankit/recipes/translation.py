"""Translation recipes: ``pix2pix`` (paired) and ``cyclegan`` (unpaired). A batch is a translation dataset's rows: A
and B images stacked on the channels (see :class:`gankit.data.ArrayData`).

``pix2pix`` (Isola et al. 2017, eq. 4): G minimises the conditional GAN loss plus ``l1_weight`` (lambda = 100 in the
paper) times the pixel loss ||B - G(A)||_1 (``pixel_loss: mse`` for an L2 variant); D judges the pairs (A, B) and
(A, G(A)) and its objective is halved, as the paper does to slow D down relative to G. ``gan_weight: 0`` is the
pure-regression baseline: the same generator trained on the pixel loss alone, no discriminator step.

``cyclegan`` (Zhu et al. 2017, eq. 1-3 and sec. 4): G_AB and G_BA minimise the least-squares adversarial losses of
D_B(G_AB(A)) and D_A(G_BA(B)), plus ``cycle_weight`` (lambda = 10) times the cycle losses ||G_BA(G_AB(A)) - A||_1 +
||G_AB(G_BA(B)) - B||_1, plus ``identity_weight`` x ``cycle_weight`` times the identity losses ||G_AB(B) - B||_1 +
||G_BA(A) - A||_1 (sec. 5.2; only when both domains have the same number of channels). D_A and D_B are trained on
real images and on fakes drawn from a history buffer of the last ``pool_size`` (50) generated images (Shrivastava et
al. 2017): each new fake either enters the buffer and is shown, or, with probability 1/2 once the buffer is full,
replaces a random stored fake, which is shown instead. Each discriminator's objective is halved, as the paper's code
does. Not in the CycleGAN paper, and off by default: ``semantic_weight`` adds CyCADA's semantic consistency loss
(Hoffman et al. 2018, "CyCADA"), the cross-entropy between a frozen classifier's reading of each translation and the
label a frozen classifier of the source domain gives its source image, CE(C_B(G_AB(A)), argmax C_A(A)) +
CE(C_A(G_BA(B)), argmax C_B(B)): it stops a generator from hiding a digit's identity in a form only its partner
decodes. The classifiers are evaluators (``classifier_a``, ``classifier_b``: a built-in name or a file from
``gankit evaluator train``; empty: the data's built-in evaluator of that domain). Where the same evaluators then
measure class preservation, the figure is optimistic: train the classifiers separately, or check with another.

The adversarial loss is any registered loss (``loss``; ``least_squares`` by default); with least squares both
recipes use the plain mean squared error of the papers' code, E[(D(G(x)) - 1)^2] for G, not LSGAN's halved form.
Under torchrun each rank keeps its own history buffers (of its own fakes) and a checkpoint keeps rank 0's, so a
CycleGAN step is not exactly the step of one process with the whole batch, unlike the other recipes.

Both players share one optimizer per side: ``generator`` (G, or G_AB and G_BA) and ``discriminator`` (D, or D_A and
D_B); Adam with the optim section's betas. Linear learning-rate decay is ``optim.schedule: linear``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import MAX_WEIGHT, OptimConfig, check_range
from ..errors import ConfigError, GankitError
from ..models.translation import check_fits
from ..registry import LOSSES, RECIPES
from ..shard import sharded
from ..nn.modes import frozen
from .base import Recipe, update
from .optim import adam


@dataclass
class Pix2PixRecipeConfig:
    name: str = "pix2pix"
    loss: str = "non_saturating"  # a registered adversarial loss
    gan_weight: float = 1.0  # 0: the L1-only regression baseline (no discriminator step)
    l1_weight: float = 100.0  # lambda of eq. 4
    pixel_loss: str = "l1"  # l1 or mse

    def __post_init__(self) -> None:
        LOSSES.get(self.loss)
        check_range("recipe.gan_weight", self.gan_weight, 0.0, MAX_WEIGHT)
        check_range("recipe.l1_weight", self.l1_weight, 0.0, MAX_WEIGHT)
        if self.gan_weight + self.l1_weight == 0:
            raise ConfigError("recipe.gan_weight and recipe.l1_weight must be >= 0 and not both 0")
        if self.pixel_loss not in ("l1", "mse"):
            raise ConfigError(f"recipe.pixel_loss={self.pixel_loss!r} is not one of: l1, mse")


@dataclass
class CycleGANRecipeConfig:
    name: str = "cyclegan"
    loss: str = "least_squares"
    cycle_weight: float = 10.0  # lambda of eq. 3
    identity_weight: float = 0.5  # times cycle_weight; 0 turns the identity loss off
    pool_size: int = 50  # history buffer of generated images per discriminator; 0: none
    semantic_weight: float = 0.0  # CyCADA's semantic consistency loss (not in the CycleGAN paper); 0: off
    classifier_a: str = ""  # evaluator reading domain A for it (name or .safetensors); empty: the data's built-in
    classifier_b: str = ""  # the same for domain B

    def __post_init__(self) -> None:
        LOSSES.get(self.loss)
        check_range("recipe.cycle_weight", self.cycle_weight, 0.0, MAX_WEIGHT)
        check_range("recipe.semantic_weight", self.semantic_weight, 0.0, MAX_WEIGHT)
        check_range("recipe.identity_weight", self.identity_weight, 0.0, MAX_WEIGHT, note="times recipe.cycle_weight")
        # images kept per discriminator (the paper keeps 50); each is a whole image in memory
        check_range("recipe.pool_size", self.pool_size, 0, 1000)


def cycle_terms(a: torch.Tensor, b: torch.Tensor, g_ab, g_ba) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(G_AB(A), G_BA(B), the cycle loss ||G_BA(G_AB(A)) - A||_1 + ||G_AB(G_BA(B)) - B||_1), means over pixels."""
    fake_b, fake_a = g_ab(a), g_ba(b)
    cycle = F.l1_loss(g_ba(fake_b).float(), a) + F.l1_loss(g_ab(fake_a).float(), b)
    return fake_b, fake_a, cycle


def _split(x: torch.Tensor, channels_a: int) -> tuple[torch.Tensor, torch.Tensor]:
    return x[:, :channels_a], x[:, channels_a:]


def _check_translation_data(data, name: str) -> None:
    if not getattr(data, "is_translation", False):
        raise ConfigError(f"recipe.name={name} needs a translation dataset (data.name: paired, unpaired, "
                          f"mnist_edges, mnist_colourize or mnist_colour), not {data.name!r}")
    if name == "pix2pix" and not data.paired:
        raise ConfigError(f"recipe.name=pix2pix learns from input-output pairs; data {data.name!r} is unpaired: "
                          "use model.name=cyclegan (or a paired source: paired, mnist_edges, mnist_colourize)")


def _adversarial_scale(loss_name: str) -> float:
    """The registered least-squares pair carries LSGAN's 1/2; the pix2pix and CycleGAN papers use the plain mean
    squared error (their code's MSELoss), so their terms are doubled back here."""
    return 2.0 if loss_name == "least_squares" else 1.0


class Pix2PixRecipe(Recipe):
    """One D update on real and generated pairs, then one G update (adversarial + weighted pixel loss)."""

    def __init__(self, cfg: Pix2PixRecipeConfig, modules: dict[str, nn.Module], optim: OptimConfig) -> None:
        if "discriminator" not in modules or not hasattr(modules.get("generator"), "translate"):
            raise ConfigError("recipe.name=pix2pix needs model.name=pix2pix")
        self.cfg = cfg
        self.G, self.D = modules["generator"], modules["discriminator"]
        self.loss = LOSSES.get(cfg.loss)
        self.scale = _adversarial_scale(cfg.loss)
        self.channels_a = self.G.channels_in
        self.optimizers = {"generator": adam(self.G.parameters(), optim.lr_g, optim),
                           "discriminator": adam(self.D.parameters(), optim.lr_d, optim)}

    def validate(self, data, batch_size: int) -> None:
        _check_translation_data(data, "pix2pix")
        check_fits([self.G, self.D], min(data.x.shape[-2:]))

    def pixel(self, fake: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(fake, target) if self.cfg.pixel_loss == "l1" else F.mse_loss(fake, target)

    def step(self, batches, noise: torch.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        x, _ = batches.next(batch_size)
        a, b = _split(x, self.channels_a)
        fake = self.G(a, self.G.sample_noise(len(a), generator=noise))
        logs: dict[str, torch.Tensor] = {}
        if self.cfg.gan_weight:
            real_logits = self.D(torch.cat([a, b], 1)).float()
            fake_logits = self.D(torch.cat([a, fake.detach()], 1)).float()
            d_loss = 0.5 * self.scale * self.loss.d(real_logits, fake_logits)
            update(self.optimizers["discriminator"], d_loss)
            logs.update(d_loss=d_loss.detach(), d_real=_judged(real_logits, self.loss),
                        d_fake=_judged(fake_logits, self.loss))
        with frozen(self.D):
            pixel = self.pixel(fake.float(), b)
            loss = self.cfg.l1_weight * pixel
            if self.cfg.gan_weight:
                g_adv = self.scale * self.loss.g(self.D(torch.cat([a, fake], 1)).float())
                loss = loss + self.cfg.gan_weight * g_adv
                logs["g_adv"] = g_adv.detach()
            update(self.optimizers["generator"], loss)
        logs.update(g_loss=loss.detach(), pixel=pixel.detach())
        return logs


class HistoryBuffer:
    """The last ``size`` generated images, shown to the discriminator in place of half of the new ones."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: torch.Tensor | None = None  # (n <= size, C, H, W)

    def query(self, fakes: torch.Tensor, noise: torch.Generator) -> torch.Tensor:
        """The batch D sees: per image, the new fake while the buffer fills; then, with probability 1/2, a stored
        fake (which the new one replaces), else the new one. Draws come from ``noise``, two per image."""
        if self.size == 0:
            return fakes
        fakes = fakes.detach()
        coins = sharded(torch.rand, size=(len(fakes),), generator=noise, device=fakes.device).tolist()
        slots = sharded(torch.randint, 0, self.size, size=(len(fakes),), generator=noise,
                        device=fakes.device).tolist()  # one host sync per batch, not per image
        shown = []
        for i, image in enumerate(fakes):
            n = 0 if self.images is None else len(self.images)
            if n < self.size:
                self.images = image[None].clone() if self.images is None else torch.cat([self.images, image[None]])
                shown.append(image)
            elif coins[i] < 0.5:
                slot = slots[i]
                shown.append(self.images[slot].clone())
                self.images[slot] = image
            else:
                shown.append(image)
        return torch.stack(shown)


class CycleGANRecipe(Recipe):
    """One update of G_AB and G_BA together, then one of D_A and D_B together (the reference code's order)."""

    def __init__(self, cfg: CycleGANRecipeConfig, modules: dict[str, nn.Module], optim: OptimConfig) -> None:
        needed = {"generator", "generator_ba", "discriminator", "discriminator_a"}
        if not needed <= set(modules):
            raise ConfigError("recipe.name=cyclegan needs model.name=cyclegan")
        self.cfg = cfg
        self.G_ab, self.G_ba = modules["generator"], modules["generator_ba"]
        self.D_b, self.D_a = modules["discriminator"], modules["discriminator_a"]
        self.loss = LOSSES.get(cfg.loss)
        self.scale = _adversarial_scale(cfg.loss)
        self.channels_a = self.G_ab.channels_in
        self.identity = cfg.identity_weight > 0
        if self.identity and self.G_ab.channels_in != self.G_ab.channels_out:
            raise ConfigError(f"recipe.identity_weight={cfg.identity_weight} needs A and B images with the same "
                              f"number of channels (here {self.G_ab.channels_in} and {self.G_ab.channels_out}): set "
                              "recipe.identity_weight=0")
        self.pool_a, self.pool_b = HistoryBuffer(cfg.pool_size), HistoryBuffer(cfg.pool_size)
        self.classifiers: dict = {}  # per domain, for the semantic loss (loaded with the data)
        g_params = [*self.G_ab.parameters(), *self.G_ba.parameters()]
        d_params = [*self.D_a.parameters(), *self.D_b.parameters()]
        self.optimizers = {"generator": adam(g_params, optim.lr_g, optim),
                           "discriminator": adam(d_params, optim.lr_d, optim)}

    def validate(self, data, batch_size: int) -> None:
        _check_translation_data(data, "cyclegan")
        check_fits([self.G_ab, self.G_ba, self.D_a, self.D_b], min(data.x.shape[-2:]))
        if self.cfg.semantic_weight:
            device = next(self.G_ab.parameters()).device
            self.classifiers = {d: _frozen_classifier(getattr(self.cfg, f"classifier_{d.lower()}"), data.name, d,
                                                      channels, device)
                                for d, channels in (("A", self.G_ab.channels_in), ("B", self.G_ab.channels_out))}

    def semantic(self, a: torch.Tensor, b: torch.Tensor, fake_b: torch.Tensor, fake_a: torch.Tensor) -> torch.Tensor:
        """CyCADA's semantic consistency: each translation should be read as its source's class, as the source
        domain's classifier reads the source (pseudo-labels; the classifiers stay frozen)."""
        c_a, c_b = self.classifiers["A"], self.classifiers["B"]
        with torch.no_grad():
            label_a, label_b = c_a(a.float()).argmax(1), c_b(b.float()).argmax(1)
        return F.cross_entropy(c_b(fake_b.float()), label_a) + F.cross_entropy(c_a(fake_a.float()), label_b)

    def step(self, batches, noise: torch.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        x, _ = batches.next(batch_size)
        a, b = _split(x, self.channels_a)
        lam = self.cfg.cycle_weight
        with frozen(self.D_a, self.D_b):
            fake_b, fake_a, cycle = cycle_terms(a, b, self.G_ab, self.G_ba)
            adv_ab = self.scale * self.loss.g(self.D_b(fake_b).float())
            adv_ba = self.scale * self.loss.g(self.D_a(fake_a).float())
            loss = adv_ab + adv_ba + lam * cycle
            logs = {"g_adv_ab": adv_ab.detach(), "g_adv_ba": adv_ba.detach(), "cycle": cycle.detach()}
            if self.identity:
                identity = F.l1_loss(self.G_ab(b).float(), b) + F.l1_loss(self.G_ba(a).float(), a)
                loss = loss + lam * self.cfg.identity_weight * identity
                logs["identity"] = identity.detach()
            if self.classifiers:
                semantic = self.semantic(a, b, fake_b, fake_a)
                loss = loss + self.cfg.semantic_weight * semantic
                logs["semantic"] = semantic.detach()
            update(self.optimizers["generator"], loss)
        shown_a = self.pool_a.query(fake_a, noise)
        shown_b = self.pool_b.query(fake_b, noise)
        real_a, fake_a_logits = self.D_a(a).float(), self.D_a(shown_a).float()
        real_b, fake_b_logits = self.D_b(b).float(), self.D_b(shown_b).float()
        d_loss = 0.5 * self.scale * (self.loss.d(real_a, fake_a_logits) + self.loss.d(real_b, fake_b_logits))
        update(self.optimizers["discriminator"], d_loss)
        logs.update(g_loss=loss.detach(), d_loss=d_loss.detach(), d_real=_judged(real_b, self.loss),
                    d_fake=_judged(fake_b_logits, self.loss))
        return logs

    def state_dict(self) -> dict:
        """Nothing beyond the optimizers in the JSON part; the buffers are tensors (:meth:`tensor_state`)."""
        return {}

    def tensor_state(self) -> dict[str, torch.Tensor]:
        """The history buffers, for a checkpoint (a resumed run shows D the same old fakes)."""
        return {f"pool_{k}": p.images for k, p in (("a", self.pool_a), ("b", self.pool_b)) if p.images is not None}

    def load_tensor_state(self, tensors: dict[str, torch.Tensor], device: torch.device) -> None:
        for k, pool in (("a", self.pool_a), ("b", self.pool_b)):
            saved = tensors.get(f"pool_{k}")
            pool.images = None if saved is None else saved.to(device).clone()


def _frozen_classifier(name: str, dataset: str, domain: str, channels: int, device: torch.device):
    """A frozen evaluator network (logits of images in [-1, 1], resized to its own size) for one domain."""
    from ..metrics.evaluator import default_evaluator, load_evaluator  # deferred: only the semantic loss needs it

    key = f"recipe.classifier_{domain.lower()}"
    name = name or default_evaluator(dataset, domain) or ""
    if not name:
        raise ConfigError(f"recipe.semantic_weight needs a classifier of domain {domain}: data {dataset!r} has no "
                          f"built-in evaluator for it; set {key} to a file from `gankit evaluator train`")
    try:
        evaluator = load_evaluator(name, device)
    except GankitError as exc:
        raise ConfigError(f"{key}={name}: {exc}") from None
    if evaluator.spec.in_channels != channels:
        raise ConfigError(f"{key}={name} reads {evaluator.spec.in_channels}-channel images, but domain {domain} has "
                          f"{channels}")
    for p in evaluator.net.parameters():
        p.requires_grad_(False)
    return lambda x: evaluator.net(evaluator.prepare(x))  # not a module of the run: never saved, trained or averaged


def _judged(logits: torch.Tensor, adv) -> torch.Tensor:
    """What D says of a batch, averaged over its patches: a probability for BCE losses, the raw value otherwise."""
    logits = logits.detach()
    return torch.sigmoid(logits).mean() if adv.bce else logits.mean()


RECIPES.register("pix2pix", config=Pix2PixRecipeConfig)(Pix2PixRecipe)
RECIPES.register("cyclegan", config=CycleGANRecipeConfig)(CycleGANRecipe)
