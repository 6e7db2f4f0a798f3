"""An exponential moving average of the generator's weights (Karras et al. 2018, sec. 3; Yazıcı et al. 2019),
used for sampling, grids and evaluation: ema <- decay * ema + (1 - decay) * weights after every step. Buffers (batch
norm's running statistics) are copied, not averaged."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """A frozen copy of ``module`` that trails its weights."""

    def __init__(self, module: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, source: nn.Module) -> None:
        """One averaging step towards ``source``'s current weights."""
        mine, theirs = list(self.module.parameters()), list(source.parameters())
        torch._foreach_lerp_(mine, theirs, 1.0 - self.decay)
        for b_mine, b_theirs in zip(self.module.buffers(), source.buffers()):
            b_mine.copy_(b_theirs)
