"""The optimizer every recipe builds: Adam with the optim section's betas and epsilon, in its fused form.

The fused implementation updates every parameter of the optimizer in one kernel per step (PyTorch has one for CPUs
and CUDA) instead of a Python loop over the parameters; its update is Adam's, computed in fp32 like the loop's.
Where it is unavailable (another device), PyTorch's default implementation is used.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from ..config import OptimConfig

FUSED_DEVICES = ("cpu", "cuda")


def adam(params: Iterable[torch.nn.Parameter], lr: float, cfg: OptimConfig) -> torch.optim.Adam:
    """Adam(lr, betas=(beta1, beta2), eps) over ``params``, fused where every parameter allows it."""
    params = list(params)
    fused = bool(params) and all(p.device.type in FUSED_DEVICES and p.dtype.is_floating_point for p in params)
    return torch.optim.Adam(params, lr=lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, fused=fused or None)
