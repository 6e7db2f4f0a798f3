"""Module modes as context managers: one place for "freeze this player" and "evaluate in eval mode"."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from torch import nn


@contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Inside, the modules' parameters require no gradient (the player that is not learning receives none, and
    gradients flow through a frozen network to its inputs only); afterwards each parameter is as it was, even if
    the block raised."""
    params = [p for module in modules for p in module.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


@contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Inside, the modules are in eval mode (batch norm uses its running statistics, dropout is off); afterwards
    each is back in the mode it was in."""
    was = [m.training for m in modules]
    for module in modules:
        module.eval()
    try:
        yield
    finally:
        for module, mode in zip(modules, was):
            module.train(mode)
