"""Scores of a regressor on held-out data, in the targets' own units.

* ``rmse``: root of the mean squared error pooled over every row and target column;
* ``mae``: mean absolute error, pooled the same way;
* ``r2``: the coefficient of determination 1 - SSE / SST per target column (SST about the held-out targets' own
  mean, as scikit-learn's ``r2_score``), averaged over the columns; 0 is the constant predictor that knows the
  held-out mean, negative is worse than it.
"""

from __future__ import annotations

import torch

SELECT = "rmse"  # the score a run keeps its best checkpoint by (lower is better)


@torch.no_grad()
def predict_all(model, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """The model's predictions (N, T) of every row of ``x``, in eval mode, on the CPU."""
    device = next(model.parameters()).device
    return torch.cat([model.predict(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])


def regression_scores(pred: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """RMSE, MAE and R^2 of predictions (N, T) against targets (N, T) (computed in float64)."""
    assert pred.shape == y.shape and y.dim() == 2, f"expected two (N, T) tensors, got {pred.shape} and {y.shape}"
    pred, y = pred.double(), y.double()
    error = pred - y
    sst = (y - y.mean(0)).pow(2).sum(0)
    sse = error.pow(2).sum(0)
    r2 = torch.where(sst > 0, 1 - sse / sst.clamp_min(1e-300), torch.zeros_like(sst))  # a constant column: 0
    return {"rmse": float(error.pow(2).mean().sqrt()), "mae": float(error.abs().mean()), "r2": float(r2.mean())}


def score_regressor(model, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """:func:`regression_scores` of the model's predictions of ``x`` against ``y``."""
    return regression_scores(predict_all(model, x), y.cpu())
