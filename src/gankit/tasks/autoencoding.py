"""Autoencoding: autoencoders (MLP, convolutional, denoising) and VAEs.

Previews add rows of fixed real images, each above the row of their reconstructions (``recon_step_*.png`` beside a
VAE's prior samples; in place of them for a plain autoencoder, which has no prior to sample from and so is not
scored during training either: ``gankit eval RUN`` scores its reconstructions).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..images import save_grid
from ..nn.modes import eval_mode
from ..registry import TASKS
from .base import Preview, derive_seed
from .generation import GenerationTask


@TASKS.register("autoencoding")
class AutoencodingTask(GenerationTask):
    """An autoencoder or VAE (``modules["generator"]`` with ``encode``/``decode``)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reals: torch.Tensor | None = None  # fixed real images shown above their reconstructions

    @property
    def has_prior(self) -> bool:
        return bool(getattr(self.generator, "has_prior", True))

    def setup(self, data, run_dir: Path) -> None:
        super().setup(data, run_dir)
        pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(derive_seed(self.cfg.train.seed,
                                                                                             "recon")))
        self.reals = data.x[pick[:self.columns * (self.columns // 2)]].to(self.device)

    def prepare_evaluation(self, data, run_dir: Path) -> None:
        if self.cfg.train.eval_every and not self.has_prior:
            self.say("note: no evaluation during training: a plain autoencoder has no prior to sample from (score "
                     "its reconstructions with `gankit eval RUN`)")
            return
        super().prepare_evaluation(data, run_dir)

    @torch.no_grad()
    def preview(self, path: Path, averaged: nn.Module | None) -> Preview | None:
        if not self.drawable:
            return None
        G = averaged or self.generator
        with eval_mode(G):
            recon = G.reconstruct(self.reals)
        pairs = _interleave_rows(self.reals, recon, self.columns)
        if not self.has_prior:
            return Preview(save_grid(pairs, path, nrow=self.columns), None)
        save_grid(pairs, path.with_name("recon_" + path.name), nrow=self.columns)
        return super().preview(path, averaged)


def _interleave_rows(real: torch.Tensor, recon: torch.Tensor, cols: int) -> torch.Tensor:
    """Rows of ``cols`` real images, each followed by the row of their reconstructions."""
    rows = real.shape[0] // cols
    pair = torch.stack([real[:rows * cols].reshape(rows, cols, *real.shape[1:]),
                        recon[:rows * cols].reshape(rows, cols, *recon.shape[1:])], dim=1)  # (rows, 2, cols, ...)
    return pair.reshape(rows * 2 * cols, *real.shape[1:])
