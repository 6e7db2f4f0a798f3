"""The regression recipe: one Adam step on a regression loss between a regressor's predictions and the targets.

Before training, :meth:`RegressionRecipe.prepare` fits the regressor's standardisation (per-column mean and
standard deviation of the training split's inputs and targets). The loss is computed in standardised target units,
so one learning rate suits targets of any scale: ``mse`` (least squares), ``l1`` (least absolute deviations) or
``huber`` (Huber 1964: quadratic within one standard deviation of the target, linear beyond).

Logs (tensors, no host sync): ``loss`` in standardised units and ``rmse`` of the batch in the targets' own units
(pooled over the target columns). Every ``train.eval_every`` steps the trainer asks :meth:`RegressionRecipe.score`
for the test split's RMSE, MAE and R^2 (:mod:`gankit.metrics.regression`) and keeps the checkpoint with the lowest
test RMSE in standardised units (``std_rmse``: each target counts alike) as ``best``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from ..config import OptimConfig
from ..errors import ConfigError
from ..metrics.regression import SELECT, score_regressor
from ..registry import RECIPES
from .base import Recipe, update
from .optim import adam

LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss, "huber": F.huber_loss}
TARGET_SOURCES = "data.name=diabetes, or data.name=arrays with an .npz holding float x (N, D) and float y"


@dataclass
class RegressionConfig:
    """Which regression loss the step minimises."""

    name: str = "regression"
    loss: Literal["mse", "l1", "huber"] = "mse"


class RegressionRecipe(Recipe):
    """One optimizer (``optim.lr_g``, betas and eps of the optim section) over the regressor's parameters."""

    lr_keys = {"regressor": "lr_g"}

    def __init__(self, cfg: RegressionConfig, modules: dict[str, torch.nn.Module], optim: OptimConfig) -> None:
        self.cfg = cfg
        self.model = modules.get("regressor")
        if self.model is None:
            raise ConfigError(f"recipe.name=regression needs a regressor model (mlp_regressor), not one with "
                              f"{sorted(modules)}: set model.name=mlp_regressor")
        self.loss = LOSSES[cfg.loss]
        self.optimizers = {"regressor": adam(self.model.parameters(), optim.lr_g, optim)}

    def validate(self, data, batch_size: int) -> None:
        """Refuse data without regression targets, or with a different number of them than the model predicts (the
        trainer checks the batch against the rows)."""
        if not data.is_regression:
            what = "class labels" if data.y is not None else "no targets"
            raise ConfigError(f"recipe.name=regression needs regression targets, but data {data.name!r} has {what}: "
                              f"use {TARGET_SOURCES}")
        targets = data.y.shape[1]
        if targets != self.model.targets:
            raise ConfigError(f"model.targets={self.model.targets} but data {data.name!r} has {targets} target "
                              f"column(s): set model.targets={targets}")

    def prepare(self, data) -> None:
        """Fit the regressor's standardisation to the training split (the trainer calls this once)."""
        self.model.fit_standardisation(data.x.to(self.model.x_mean.device), data.y.to(self.model.y_mean.device))

    select = SELECT  # the score of :meth:`score` that picks the best checkpoint (lower is better)

    def score(self, test) -> dict[str, float]:
        """RMSE, MAE and R^2 on held-out data (the trainer's periodic evaluation), in the targets' units."""
        return score_regressor(self.model, test.x, test.y)

    def step(self, batches, noise: torch.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        """One update on a batch; returns detached scalar tensors (no host sync)."""
        x, y = batches.next(batch_size)  # (B, D), (B, T)
        pred = self.model.forward_standardised(x).float()  # (B, T), standardised units; fp32 under bf16
        target = self.model.standardise_targets(y)
        loss = self.loss(pred, target)
        update(self.optimizers["regressor"], loss)
        error = (pred.detach() - target) * self.model.y_std  # (B, T), the targets' units
        return {"loss": loss.detach(), "rmse": error.pow(2).mean().sqrt()}


RECIPES.register("regression", config=RegressionConfig)(RegressionRecipe)
