"""Losses as pure functions of tensors, looked up by name in :data:`gankit.registry.LOSSES`; gradient penalties."""

from .adversarial import (AdversarialLoss, d_bce, d_hinge, d_least_squares, d_relativistic_average, d_wasserstein,
                          g_critic, g_least_squares, g_minimax, g_non_saturating, g_relativistic_average)
from .penalties import gradient_penalty, r1_penalty

__all__ = ["AdversarialLoss", "d_bce", "d_hinge", "d_least_squares", "d_relativistic_average", "d_wasserstein",
           "g_critic", "g_least_squares", "g_minimax", "g_non_saturating", "g_relativistic_average",
           "gradient_penalty", "r1_penalty"]
