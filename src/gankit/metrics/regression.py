"""Scores of a regressor on held-out data.

* ``rmse``: root of the mean squared error pooled over every row and target column, in the targets' units;
* ``mae``: mean absolute error, pooled the same way;
* ``r2``: the coefficient of determination 1 - SSE / SST per target column (SST about the held-out targets' own
  mean), averaged over the columns, as scikit-learn's ``r2_score``: 0 is the constant predictor that knows the
  held-out mean, negative is worse than it; a constant column scores 1 when predicted exactly, else 0;
* ``std_rmse``: the RMSE with each column's error divided by the train split's standard deviation of that target
  (the regressor's standardised units), so that with several targets each counts alike. A run keeps its best
  checkpoint by this score.
"""

from __future__ import annotations

import torch

SELECT = "std_rmse"  # the score a run keeps its best checkpoint by (lower is better)


@torch.no_grad()
def predict_all(model, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """The model's predictions (N, T) of every row of ``x``, in eval mode, on the CPU."""
    device = next(model.parameters()).device
    return torch.cat([model.predict(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])


def regression_scores(pred: torch.Tensor, y: torch.Tensor, scale: torch.Tensor | None = None) -> dict[str, float]:
    """RMSE, MAE and R^2 of predictions (N, T) against targets (N, T), computed in float64; with ``scale`` (T,),
    the targets' train standard deviations, also ``std_rmse``."""
    assert pred.shape == y.shape and y.dim() == 2, f"expected two (N, T) tensors, got {pred.shape} and {y.shape}"
    pred, y = pred.double(), y.double()
    error = pred - y
    sst = (y - y.mean(0)).pow(2).sum(0)
    sse = error.pow(2).sum(0)
    exact = torch.where(sse == 0, torch.ones_like(sse), torch.zeros_like(sse))  # a constant column
    r2 = torch.where(sst > 0, 1 - sse / sst.clamp_min(1e-300), exact)
    out = {"rmse": float(error.pow(2).mean().sqrt()), "mae": float(error.abs().mean()), "r2": float(r2.mean())}
    if scale is not None:
        out["std_rmse"] = float((error / scale.double().cpu()).pow(2).mean().sqrt())
    return out


def score_regressor(model, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """:func:`regression_scores` of the model's predictions of ``x`` against ``y`` (``std_rmse`` in the model's
    standardised target units)."""
    return regression_scores(predict_all(model, x), y.cpu(), model.y_std)
