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
from ..errors import DataError, GankitError, MissingSplitError
from ..metrics.regression import score_regressor
from ..nn.graph import EXAMPLE_BATCH, Call, Graph, shape_doc, take_options
from ..registry import TASKS
from .base import Asked, Scored, Task


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

    def score(self, run, asked: Asked) -> tuple[dict, str | int]:
        """Test RMSE, MAE and R^2 in the targets' units."""
        return regression_report(run, asked.data, selected=asked.selected), "test"

    def used_modules(self) -> tuple[str, ...]:
        return ("regressor",)

    def export_graph(self, run, options: dict) -> Graph:
        """``features`` in their own units -> ``predictions`` in the targets' units, as ``gankit predict`` (the
        standardisation is inside the graph; dropout off)."""
        take_options(options, {}, self.cfg.model.name)
        model = run.modules["regressor"]
        shape = tuple(run.data_info["sample_shape"])
        noise = torch.randn((EXAMPLE_BATCH, *shape), generator=run.rng(0), device=run.device)
        x = model.x_mean.view(shape) + model.x_std.view(shape) * noise  # inputs in the features' range
        docs = {"features": shape_doc(shape, "float32", "features in their own units"),
                "predictions": shape_doc((model.targets,), "float32", "predictions in the targets' units")}
        return Graph(Call(model.eval(), "forward"), {"features": x}, "predictions", docs)

    def usage(self, target: str, data: dict) -> list[str]:
        return [f"gankit predict {target} features.csv -o predictions.csv"]


def regression_report(run, data_cfg, selected: bool = False) -> dict:
    """A regressor's RMSE, MAE and R^2 on the test split, in the targets' units, with their provenance; ``selected``
    (the run's best checkpoint, picked by these very scores) adds a warning."""
    test = load_dataset(data_cfg, "test", seed=run.config.train.seed)
    if not test.is_regression:
        raise GankitError(f"data {data_cfg.name!r} has no regression targets to score a regressor against")
    expected = tuple(run.data_info["sample_shape"])
    where = f"data {data_cfg.name!r}" + (f" ({data_cfg.root})" if data_cfg.root else "")
    if test.sample_shape != expected:
        raise GankitError(f"{where}: test rows have shape {test.sample_shape}, the regressor takes {expected}")
    model = run.modules["regressor"]
    if test.y.shape[1] != model.targets:
        raise GankitError(f"{where}: the test split has {test.y.shape[1]} target column(s), the regressor predicts "
                          f"{model.targets}")
    scores = score_regressor(model, test.x, test.y)
    prov = {"samples": f"{run.config.model.name} predictions of {data_cfg.name} test", "num_samples": len(test),
            "reference": {"dataset": data_cfg.name, "split": "test", "size": len(test), "targets": test.y.shape[1]},
            "method": "rmse and mae pooled over rows and targets, in the targets' units; r2 = 1 - SSE/SST per "
                      "target about the test mean, averaged over targets"}
    warnings = ["this is the checkpoint with the best test score during training: selected on the test split, its "
                "test scores are optimistic (quote the last checkpoint's, or score rows held out from training)"] \
        if selected else []
    return {**scores, "provenance": prov, "warnings": warnings}


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
