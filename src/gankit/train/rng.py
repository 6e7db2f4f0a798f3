"""torch's global generators as a run's own: ops that take no ``torch.Generator`` (dropout, say) draw from them, so
the trainer seeds them for the run and checkpoints them; but a caller's own global RNG must come out of
``gankit.train`` as it went in. Inside :meth:`RunRNG.active`, the global generators hold the run's state; outside,
the caller's (``torch.random.fork_rng`` saves and restores them)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


class RunRNG:
    """The run's states of torch's global generators (CPU, and this run's CUDA device), kept between uses."""

    def __init__(self, device: torch.device, seed: int) -> None:
        self.device = device
        self.seed = seed  # seeds the global generators at the first use (until a checkpoint sets them)
        self.states: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self.depth = 0

    def reseed(self, seed: int) -> None:
        """Start the run's stream again from ``seed``."""
        self.seed, self.states = seed, None
        if self.depth:
            torch.manual_seed(seed)

    @contextmanager
    def active(self) -> Iterator[None]:
        """Inside, torch's global generators hold the run's state (re-entrant); on the way out the run's state is
        kept and the caller's put back."""
        if self.depth:
            self.depth += 1
            try:
                yield
            finally:
                self.depth -= 1
            return
        cuda = self.device.type == "cuda"
        with torch.random.fork_rng(devices=[self.device] if cuda else []):
            self._enter()
            try:
                yield
            finally:
                self.depth = 0
                self.states = (torch.get_rng_state(), torch.cuda.get_rng_state(self.device) if cuda else None)

    def _enter(self) -> None:
        self.depth = 1
        if self.states is None:
            torch.manual_seed(self.seed)
            return
        torch.set_rng_state(self.states[0])
        if self.states[1] is not None:
            torch.cuda.set_rng_state(self.states[1], self.device)
