"""Image-to-image translation: pix2pix (paired) and CycleGAN (unpaired).

The data holds A and B images stacked on the channel axis. Previews are rows of fixed A images, their translations,
and below them the B image of each pair (paired data) or the return trip G_BA(G_AB(A)) (CycleGAN). There is no
evaluation during training yet: ``gankit eval RUN`` scores a run per direction.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError
from ..images import save_grid, to_channels
from ..registry import TASKS
from .base import Preview, Task, derive_seed


@TASKS.register("translation")
class TranslationTask(Task):
    """A translator ``modules["generator"]`` (G_AB; CycleGAN adds ``generator_ba``)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reals: torch.Tensor | None = None  # fixed (A, B) pairs, stacked on the channel axis
        self.channels_a = 0

    def describe(self, data) -> dict:
        """The data's record plus A's channel count, which the model takes from the data when left at 0."""
        if not data.is_translation:
            return super().describe(data)  # the recipe's validation says what is wrong
        model = self.cfg.model
        if model.channels_a not in (0, data.channels_a):
            raise ConfigError(f"model.channels_a={model.channels_a} but data {self.cfg.data.name!r} has A images of "
                              f"{data.channels_a} channel(s): leave model.channels_a at 0 (taken from the data)")
        model.channels_a = self.channels_a = data.channels_a  # recorded in the resolved config: the run rebuilds
        return {**super().describe(data), "channels_a": data.channels_a}

    def averaged(self) -> nn.Module:
        return self.modules["generator"]

    def setup(self, data, run_dir: Path) -> None:
        seed = derive_seed(self.cfg.train.seed, "recon")
        pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
        self.reals = data.x[pick[:2 * self.cfg.train.grid_rows]].to(self.device)
        if self.cfg.train.eval_every:
            self.say("note: no evaluation during training for a translation model yet (score a run with "
                     f"`gankit eval {run_dir}`); the grids are in {run_dir / 'samples'}")

    def reference_samples(self, data) -> torch.Tensor | None:
        return data.b[:64]

    @torch.no_grad()
    def preview(self, path: Path, averaged: nn.Module | None) -> Preview | None:
        c = self.channels_a
        a, b = self.reals[:, :c], self.reals[:, c:]
        G, G_ba = averaged or self.modules["generator"], self.modules.get("generator_ba")
        fake = G.translate(a, generator=torch.Generator(self.device).manual_seed(0))
        third = G_ba.translate(fake) if G_ba is not None else b
        rows = [to_channels(t, max(a.shape[1], b.shape[1])) for t in (a, fake, third)]
        return Preview(save_grid(torch.cat(rows), path, nrow=len(a)), fake)
