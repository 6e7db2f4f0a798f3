"""Losses as pure functions of tensors, looked up by name in :data:`gankit.registry.LOSSES`."""

from .adversarial import AdversarialLoss, d_bce, g_minimax, g_non_saturating

__all__ = ["AdversarialLoss", "d_bce", "g_minimax", "g_non_saturating"]
