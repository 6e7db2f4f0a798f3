"""Cheap batch sampling from an in-memory dataset, with a state that checkpoints exactly."""

from __future__ import annotations

import torch

from ..errors import ConfigError
from ..shard import shard_rows
from .base import ArrayData


class BatchSampler:
    """Draws batches as index draws from epoch-wise random permutations (the tail of an epoch is dropped)."""

    def __init__(self, data: ArrayData, seed: int, device: torch.device | str = "cpu") -> None:
        self.data = data.to(device)
        self.device = torch.device(device)
        self.generator = torch.Generator().manual_seed(seed)
        self.perm = torch.randperm(len(data), generator=self.generator)
        self.pos = 0

    def next(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The next ``n`` samples and their labels (None when unlabelled). In a distributed step (see
        :func:`gankit.train.distributed.shard_rows`) ``n`` is this rank's share: the indices of the whole global
        batch are drawn and this rank keeps its rows."""
        total, mine = shard_rows(n)
        if total > len(self.data):
            raise ConfigError(f"batch of {total} is larger than the dataset ({len(self.data)} samples): lower "
                              "train.batch_size")
        if self.pos + total > len(self.perm):
            self.perm = torch.randperm(len(self.data), generator=self.generator)
            self.pos = 0
        idx = self.perm[self.pos:self.pos + total][mine].to(self.device, non_blocking=True)
        self.pos += total
        y = None if self.data.y is None else self.data.y[idx]
        return self.data.x[idx], y  # (n, *sample_shape), (n,)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors that restore the exact sampling position."""
        return {"rng": self.generator.get_state(), "perm": self.perm, "pos": torch.tensor(self.pos)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore a state from :meth:`state_dict`."""
        if state["perm"].numel() != len(self.data):
            raise ConfigError(f"the checkpoint's sampler covers {state['perm'].numel()} samples but the dataset "
                              f"has {len(self.data)}: resume with the same data settings")
        self.generator.set_state(state["rng"])
        self.perm = state["perm"].clone()
        self.pos = int(state["pos"])
