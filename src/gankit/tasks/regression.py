"""Regression: a network from features to float targets (``mlp_regressor``).

No previews; during training the regressor is scored on the test split (RMSE, MAE and R^2 in the targets' units)
every ``train.eval_every`` steps, and the best checkpoint has the lowest test RMSE in standardised units.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..data import load_dataset
from ..data.base import ArrayData
from ..errors import DataError, MissingSplitError
from ..registry import TASKS
from .base import Scored, Task


@TASKS.register("regression")
class RegressionTask(Task):
    """A regressor (``modules["regressor"]``) trained by the regression recipe."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.test: ArrayData | None = None

    def prepare_evaluation(self, data, run_dir: Path) -> None:
        """The test split, on the device; a note when there is none."""
        if self.cfg.train.eval_every == 0:
            return
        try:
            test = load_dataset(self.cfg.data, "test", seed=self.cfg.train.seed)
        except MissingSplitError as err:  # a corrupt test split is an error like any other
            self.say(f"note: no evaluation during training: {err}")
            return
        _check_test_split(self.cfg.data, data, test)
        self.test = test.to(self.device)

    @torch.no_grad()
    def evaluate(self, averaged: nn.Module | None, step: int, source: str) -> Scored | None:
        if self.test is None:
            return None
        result = self.recipe.score(self.test)
        result["provenance"] = {"split": "test", "dataset": self.cfg.data.name, "n": len(self.test)}
        return Scored(result, self.recipe.select, ("rmse", "mae", "r2"))


def _check_test_split(cfg, train, test) -> None:
    """The test split must have the training split's columns and targets."""
    where = f"data {cfg.name!r}" + (f" ({cfg.root})" if cfg.root else "")
    if test.sample_shape != train.sample_shape:
        raise DataError(f"{where}: test rows have shape {test.sample_shape}, train rows {train.sample_shape}; "
                        "save x_test with the same columns as x")
    if not test.is_regression:
        raise DataError(f"{where}: the test split has no regression targets; save float y_test beside x_test")
    if test.y.shape[1] != train.y.shape[1]:
        raise DataError(f"{where}: the test split has {test.y.shape[1]} target column(s), the train split "
                        f"{train.y.shape[1]}; save y_test with the same columns as y")
