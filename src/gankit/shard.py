"""Which rows of a global batch this process computes, for data-parallel training (see
:mod:`gankit.train.distributed`).

Every rank keeps the same data sampler and noise generator; inside a training step each random draw whose first
dimension is the batch draws the rows of the whole global batch and keeps this rank's (:func:`sharded`), so that the
ranks together compute exactly the batch one process would. Outside a distributed step nothing changes: a draw of
``n`` rows draws ``n`` rows. This module imports nothing of gankit's, so that models and losses can use it.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Callable

import torch


@dataclass(frozen=True)
class Shard:
    """This process's part of each global batch."""

    rank: int = 0
    world: int = 1


_SHARD: ContextVar[Shard] = ContextVar("gankit_shard", default=Shard())


@contextmanager
def sharding(shard: Shard):
    """Within the context, :func:`shard_rows` splits draws between ``shard.world`` processes."""
    token = _SHARD.set(shard)
    try:
        yield
    finally:
        _SHARD.reset(token)


def shard_rows(n: int) -> tuple[int, slice]:
    """For a draw of ``n`` rows on this rank: the global number of rows to draw and the slice this rank keeps.

    Draw ``total`` rows from the shared generator, keep ``rows``: every rank consumes the generator alike and the
    ranks' rows, side by side, are exactly what one process would draw for the whole batch. Outside a distributed
    step, ``(n, slice(0, n))``."""
    shard = _SHARD.get()
    return n * shard.world, slice(shard.rank * n, (shard.rank + 1) * n)


def sharded(draw: Callable[..., torch.Tensor], *args, size: tuple[int, ...], **kwargs) -> torch.Tensor:
    """``draw(*args, global_size, **kwargs)`` restricted to this rank's rows, e.g.
    ``sharded(torch.randn, size=(n, d), generator=g)`` or ``sharded(torch.randint, 0, 10, size=(n,), generator=g)``
    (``size[0]`` is this rank's number of rows)."""
    total, mine = shard_rows(size[0])
    if total == size[0]:
        return draw(*args, size, **kwargs)
    return draw(*args, (total, *size[1:]), **kwargs)[mine]
