"""A regression network: a multilayer perceptron with a linear output (Rumelhart, Hinton & Williams 1986).

``mlp_regressor`` maps a feature vector (B, D) through ``hidden`` layers (``activation``, optional ``dropout``) to
``targets`` real outputs. Inputs and targets are standardised with the training split's statistics, which the
module keeps as buffers (so a checkpoint carries them): the network sees (x - x_mean) / x_std and predicts
(y - y_mean) / y_std, and :meth:`MLPRegressor.predict` maps its output back to the targets' units. With
``hidden: []`` the network is one linear layer: least-squares linear regression fitted by gradient descent.

The ``regression`` recipe (:mod:`gankit.recipes.regression`) trains it; the model has no generator, so the trainer
draws no sample grids: its periodic evaluation scores the test split instead (RMSE, MAE, R^2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from ..config import MAX_UNITS, check_range, check_widths
from ..registry import MODELS

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}
REL_STD = 1e-7  # a column whose spread is below this share of its magnitude is constant: it gets std 1


@dataclass
class RegressorConfig:
    """Widths, activation and dropout of the MLP, and the number of targets it predicts."""

    name: str = "mlp_regressor"
    hidden: list[int] = field(default_factory=lambda: [64, 64])  # [] is a linear model
    activation: Literal["relu", "tanh"] = "relu"
    dropout: float = 0.0  # after each hidden activation, while training
    targets: int = 1  # T, the data's target columns (the recipe checks it against the data)

    def __post_init__(self) -> None:
        check_widths("model.hidden", self.hidden, MAX_UNITS, empty_ok=True)
        check_range("model.dropout", self.dropout, 0.0, 1.0, open_hi=True)
        check_range("model.targets", self.targets, 1, MAX_UNITS)


class MLPRegressor(nn.Module):
    """features (B, *shape) -> predictions (B, targets), with the standardisation kept as buffers."""

    def __init__(self, cfg: RegressorConfig, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape, self.targets = tuple(shape), cfg.targets
        features = math.prod(shape)
        layers: list[nn.Module] = []
        width = features
        for hidden in cfg.hidden:
            layers += [nn.Linear(width, hidden), ACTIVATIONS[cfg.activation]()]
            if cfg.dropout:
                layers.append(nn.Dropout(cfg.dropout))
            width = hidden
        layers.append(nn.Linear(width, cfg.targets))  # linear output: predictions are unbounded
        self.net = nn.Sequential(*layers)
        self.register_buffer("x_mean", torch.zeros(features))
        self.register_buffer("x_std", torch.ones(features))
        self.register_buffer("y_mean", torch.zeros(cfg.targets))
        self.register_buffer("y_std", torch.ones(cfg.targets))

    @torch.no_grad()
    def fit_standardisation(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Set the buffers to the per-column mean and (population) standard deviation of x (N, ...) and y (N, T)."""
        assert y.shape == (x.shape[0], self.targets), f"expected y ({x.shape[0]}, {self.targets}), got {tuple(y.shape)}"
        for (mean, std), values in (((self.x_mean, self.x_std), x.flatten(1)), ((self.y_mean, self.y_std), y)):
            m, s = _moments(values)
            mean.copy_(m)
            std.copy_(s)

    def standardise_targets(self, y: torch.Tensor) -> torch.Tensor:
        """Targets (B, T) in the network's units: (y - y_mean) / y_std."""
        return (y - self.y_mean) / self.y_std

    def forward_standardised(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs in their own units (B, *shape) -> predictions in standardised target units (B, T)."""
        assert tuple(x.shape[1:]) == self.shape, f"expected (B, {self.shape}), got {tuple(x.shape)}"
        return self.net((x.flatten(1) - self.x_mean) / self.x_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs (B, *shape) -> predictions (B, T) in the targets' units (differentiable)."""
        return self.forward_standardised(x) * self.y_std + self.y_mean

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predictions (B, T) in the targets' units, in eval mode (no dropout) and without gradients."""
        was_training = self.training
        self.eval()
        try:
            return self(x)
        finally:
            self.train(was_training)


def _moments(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Column means and population standard deviations of (N, K) values (in float64; a constant column gets 1,
    where constant is relative to the column's magnitude, so a feature measured in tiny units keeps its scale)."""
    values = values.double()
    spread = values.std(0, correction=0)
    constant = spread <= REL_STD * values.abs().amax(0)  # also true for an all-zero column
    return values.mean(0), torch.where(constant, torch.ones_like(spread), spread)


@MODELS.register("mlp_regressor", config=RegressorConfig, recipe="regression", task="regression")
def build_mlp_regressor(cfg: RegressorConfig, shape: tuple[int, ...], num_classes: int) -> dict[str, nn.Module]:
    """An MLP regressor, known to the trainer as the ``regressor`` module (no generator: no grids; the trainer
    evaluates it on the test split)."""
    return {"regressor": MLPRegressor(cfg, shape)}
