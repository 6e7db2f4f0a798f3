"""Adversarial losses on discriminator logits (Goodfellow et al. 2014, eq. 1 and section 3).

The value function is V(D, G) = E[log D(x)] + E[log(1 - D(G(z)))] with D = sigmoid(logits). The discriminator
maximises it, i.e. minimises the binary cross-entropy ``d_bce``. The generator of the original minimax game minimises
E[log(1 - D(G(z)))] (``g_minimax``), whose gradient vanishes when D confidently rejects the fakes (D(G(z)) -> 0);
the paper's practical fix, ``g_non_saturating``, minimises -E[log D(G(z))] instead. Using
log(sigmoid(l)) = -softplus(-l) and log(1 - sigmoid(l)) = -softplus(l) keeps every term finite.

Each function is pure: tensors in, a scalar tensor out; no ``.backward()``, no optimiser, no noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..registry import LOSSES


def d_bce(real_logits: torch.Tensor | None, fake_logits: torch.Tensor | None) -> torch.Tensor:
    """Discriminator BCE: -E[log D(x)] - E[log(1 - D(G(z)))]; either side may be None (a one-sided update)."""
    terms = []
    if real_logits is not None:
        terms.append(F.softplus(-real_logits).mean())  # -log sigmoid(l)
    if fake_logits is not None:
        terms.append(F.softplus(fake_logits).mean())  # -log(1 - sigmoid(l))
    if not terms:
        raise ValueError("d_bce needs real_logits, fake_logits or both")
    return terms[0] if len(terms) == 1 else terms[0] + terms[1]


def g_minimax(fake_logits: torch.Tensor) -> torch.Tensor:
    """Saturating generator loss of the original game: E[log(1 - D(G(z)))]."""
    return -F.softplus(fake_logits).mean()


def g_non_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: -E[log D(G(z))]."""
    return F.softplus(-fake_logits).mean()


@dataclass(frozen=True)
class AdversarialLoss:
    """A discriminator loss and a generator loss that belong together."""

    d: Callable[[torch.Tensor | None, torch.Tensor | None], torch.Tensor]
    g: Callable[[torch.Tensor], torch.Tensor]


LOSSES.register("minimax")(AdversarialLoss(d=d_bce, g=g_minimax))
LOSSES.register("non_saturating")(AdversarialLoss(d=d_bce, g=g_non_saturating))
