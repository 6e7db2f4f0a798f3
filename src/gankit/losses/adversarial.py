"""Adversarial losses on discriminator logits (Goodfellow et al. 2014, eq. 1 and section 3).

The value function is V(D, G) = E[log D(x)] + E[log(1 - D(G(z)))] with D = sigmoid(logits). The discriminator
maximises it, i.e. minimises the binary cross-entropy ``d_bce``. The generator of the original minimax game minimises
E[log(1 - D(G(z)))] (``g_minimax``), whose gradient vanishes when D confidently rejects the fakes (D(G(z)) -> 0);
the paper's practical fix, ``g_non_saturating``, minimises -E[log D(G(z))] instead. Using
log(sigmoid(l)) = -softplus(-l) and log(1 - sigmoid(l)) = -softplus(l) keeps every term finite.

The other pairs, each a pure function of logits (the critic's raw outputs):

* ``least_squares`` (LSGAN, Mao et al. 2017, eq. 2 with a = 0, b = c = 1): D minimises
  1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2], G minimises 1/2 E[(D(G(z)) - 1)^2].
* ``hinge`` (Lim & Ye 2017; Miyato et al. 2018, eq. 16-17): D minimises E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))],
  G minimises -E[D(G(z))].
* ``wasserstein`` (Arjovsky et al. 2017, Algorithm 1): the critic minimises E[D(G(z))] - E[D(x)], G minimises
  -E[D(G(z))]; it needs a Lipschitz constraint: weight clipping (``recipe.weight_clip``) or the gradient penalty
  (``recipe.penalty: gp``, Gulrajani et al. 2017), see :mod:`gankit.losses.penalties`.
* ``relativistic_average`` (RaGAN, Jolicoeur-Martineau 2019, eq. 13-14): D judges whether real data is more
  realistic than the average fake, C(x) - E[C(x_f)]; its generator loss needs the real logits too.
* ``relativistic_pairing`` (RpGAN, Jolicoeur-Martineau 2019, eq. 10-11; the loss of R3GAN, Huang et al. 2024,
  eq. 2): real and fake samples are paired, D minimises E[softplus(-(C(x_r) - C(x_f)))] and G minimises
  E[softplus(-(C(x_f) - C(x_r)))] over the pairs. With the zero-centred penalties on both real and fake data
  (``recipe.penalty: r1_r2``) it has no mode-dropping local minima (Huang et al. 2024, sec. 2).

One-sided label smoothing (Salimans et al. 2016, sec. 3.4) replaces the real target 1 by ``real_target`` (0.9, say)
in the binary cross-entropy of the discriminator; the fake target stays 0.

Each function is pure: tensors in, a scalar tensor out; no ``.backward()``, no optimiser, no noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..registry import LOSSES


def d_bce(real_logits: torch.Tensor | None, fake_logits: torch.Tensor | None, real_target: float = 1.0) -> torch.Tensor:
    """Discriminator BCE: -E[log D(x)] - E[log(1 - D(G(z)))]; either side may be None (a one-sided update).
    ``real_target`` < 1 is one-sided label smoothing: -E[t log D(x) + (1 - t) log(1 - D(x))]."""
    terms = []
    if real_logits is not None:
        smooth = (1 - real_target) * F.softplus(real_logits).mean() if real_target != 1.0 else 0.0
        terms.append(real_target * F.softplus(-real_logits).mean() + smooth)  # -log sigmoid(l), smoothed
    if fake_logits is not None:
        terms.append(F.softplus(fake_logits).mean())  # -log(1 - sigmoid(l))
    if not terms:
        raise ValueError("d_bce needs real_logits, fake_logits or both")
    return terms[0] if len(terms) == 1 else terms[0] + terms[1]


def g_minimax(fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
    """Saturating generator loss of the original game: E[log(1 - D(G(z)))]."""
    return -F.softplus(fake_logits).mean()


def g_non_saturating(fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
    """Non-saturating generator loss: -E[log D(G(z))]."""
    return F.softplus(-fake_logits).mean()


def d_least_squares(real_logits: torch.Tensor | None, fake_logits: torch.Tensor | None) -> torch.Tensor:
    """LSGAN critic: 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]."""
    return _sum_sides(None if real_logits is None else 0.5 * ((real_logits - 1) ** 2).mean(),
                      None if fake_logits is None else 0.5 * (fake_logits ** 2).mean())


def g_least_squares(fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
    """LSGAN generator: 1/2 E[(D(G(z)) - 1)^2]."""
    return 0.5 * ((fake_logits - 1) ** 2).mean()


def d_hinge(real_logits: torch.Tensor | None, fake_logits: torch.Tensor | None) -> torch.Tensor:
    """Hinge critic: E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]."""
    return _sum_sides(None if real_logits is None else F.relu(1 - real_logits).mean(),
                      None if fake_logits is None else F.relu(1 + fake_logits).mean())


def g_critic(fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
    """Generator of the hinge and Wasserstein losses: -E[D(G(z))]."""
    return -fake_logits.mean()


def d_wasserstein(real_logits: torch.Tensor | None, fake_logits: torch.Tensor | None) -> torch.Tensor:
    """Wasserstein critic: E[D(G(z))] - E[D(x)] (the negated estimate of the earth mover's distance)."""
    return _sum_sides(None if real_logits is None else -real_logits.mean(),
                      None if fake_logits is None else fake_logits.mean())


def d_relativistic_average(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """RaGAN critic: -E[log sigmoid(C(x_r) - E C(x_f))] - E[log(1 - sigmoid(C(x_f) - E C(x_r)))]."""
    return (F.softplus(-(real_logits - fake_logits.mean())).mean()
            + F.softplus(fake_logits - real_logits.mean()).mean())


def g_relativistic_average(fake_logits: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """RaGAN generator: the critic's loss with real and fake swapped."""
    return (F.softplus(-(fake_logits - real_logits.mean())).mean()
            + F.softplus(real_logits - fake_logits.mean()).mean())


def d_relativistic_pairing(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """RpGAN critic: E[softplus(C(x_f) - C(x_r))] over pairs (the i-th real sample with the i-th fake)."""
    _check_pairs(real_logits, fake_logits)
    return F.softplus(fake_logits - real_logits).mean()


def g_relativistic_pairing(fake_logits: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """RpGAN generator: E[softplus(C(x_r) - C(x_f))] over the same pairs."""
    _check_pairs(real_logits, fake_logits)
    return F.softplus(real_logits - fake_logits).mean()


def _check_pairs(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> None:
    if real_logits.shape != fake_logits.shape:
        raise ValueError(f"relativistic pairing needs as many real as fake logits, got {tuple(real_logits.shape)} "
                         f"and {tuple(fake_logits.shape)}")


def _sum_sides(real_term: torch.Tensor | None, fake_term: torch.Tensor | None) -> torch.Tensor:
    if real_term is None and fake_term is None:
        raise ValueError("a critic loss needs real_logits, fake_logits or both")
    if real_term is None or fake_term is None:
        return real_term if fake_term is None else fake_term
    return real_term + fake_term


@dataclass(frozen=True)
class AdversarialLoss:
    """A discriminator loss and a generator loss that belong together.

    ``relativistic``: both losses need the real and the fake logits of the same step (no one-sided updates), and
    the generator's loss takes ``(fake_logits, real_logits)``. ``bce``: the critic is a probability (label smoothing
    applies). ``boundary``: the critic value that separates its "real" and "fake" verdicts, for its accuracy."""

    d: Callable[..., torch.Tensor]
    g: Callable[..., torch.Tensor]
    relativistic: bool = False
    bce: bool = False
    boundary: float | None = 0.0  # critic value between "real" and "fake" (None: the loss has none)


LOSSES.register("minimax")(AdversarialLoss(d=d_bce, g=g_minimax, bce=True))
LOSSES.register("non_saturating")(AdversarialLoss(d=d_bce, g=g_non_saturating, bce=True))
LOSSES.register("least_squares")(AdversarialLoss(d=d_least_squares, g=g_least_squares, boundary=0.5))
LOSSES.register("hinge")(AdversarialLoss(d=d_hinge, g=g_critic))
LOSSES.register("wasserstein")(AdversarialLoss(d=d_wasserstein, g=g_critic, boundary=None))
LOSSES.register("relativistic_average")(AdversarialLoss(d=d_relativistic_average, g=g_relativistic_average,
                                                        relativistic=True, boundary=None))
LOSSES.register("relativistic_pairing")(AdversarialLoss(d=d_relativistic_pairing, g=g_relativistic_pairing,
                                                        relativistic=True, boundary=None))
