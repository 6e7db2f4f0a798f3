"""An exponential moving average of the generator's weights (Karras et al. 2018, sec. 3; Yazıcı et al. 2019),
used for sampling, grids and evaluation: ema <- beta * ema + (1 - beta) * weights after every step, with
beta = min(decay, (1 + t) / (10 + t)) at step t, so that early on the average does not drag in the random initial
weights for thousands of steps (the warm-up of TensorFlow's ExponentialMovingAverage with num_updates). Buffers
(batch norm's running statistics) are copied, not averaged."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """A frozen copy of ``module`` that trails its weights."""

    def __init__(self, module: nn.Module, decay: float, name: str = "generator") -> None:
        self.decay = decay
        self.module = copy.deepcopy(module).eval().requires_grad_(False)
        self.name = f"{name}_ema"  # what checkpoints call the copy

    @classmethod
    def of(cls, modules: dict[str, nn.Module], target: nn.Module, decay: float) -> "EMA":
        """The average of ``target``, one of ``modules``, named after it (``generator`` -> ``generator_ema``)."""
        return cls(target, decay, next(k for k, m in modules.items() if m is target))

    def beta(self, step: int) -> float:
        """The averaging weight after ``step`` updates."""
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, source: nn.Module, step: int) -> None:
        """One averaging step towards ``source``'s current weights (``step``: updates made so far)."""
        mine, theirs = list(self.module.parameters()), list(source.parameters())
        torch._foreach_lerp_(mine, theirs, 1.0 - self.beta(step))
        for b_mine, b_theirs in zip(self.module.buffers(), source.buffers()):
            b_mine.copy_(b_theirs)
