"""Regression on scikit-learn's diabetes table: prints one JSON object.

The ``regression_diabetes`` config is trained with seeds 0-4 (through ``gankit.train``, as the CLI does) and scored
on the fixed test split (88 of 442 rows) by root-mean-square error and R^2 (scikit-learn's ``r2_score``: 1 - SSE /
the test targets' own sum of squares), mean and population standard deviation over the seeds. Beside it, two
references fitted on the same train split: ordinary least squares (scikit-learn's ``LinearRegression``, which needs
no seed) and the constant train-mean predictor. ``seconds`` is the wall-clock time of each seed's training run.

    python benchmarks/regression.py [--seeds 5] [--config configs/regression_diabetes.yaml]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import gankit
from gankit.config import DataConfig
from gankit.data import load_dataset

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "regression_diabetes.yaml"


def scores(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Test RMSE and R^2 of predictions (N, 1) against targets (N, 1)."""
    from sklearn.metrics import r2_score

    return {"rmse": float(np.sqrt(np.mean((pred - y) ** 2))), "r2": float(r2_score(y, pred))}


def train_and_score(config: Path, seed: int, x_test: np.ndarray, y_test: np.ndarray) -> dict[str, float]:
    """One seed's run of ``config``, scored on the test split, with its training time."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        run = gankit.train(config, out=Path(tmp) / "run", overrides=[f"train.seed={seed}", "train.progress=false"])
        seconds = time.monotonic() - started
        return {**scores(gankit.load(run).predict(x_test), y_test), "seconds": seconds}


def summary(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean and population standard deviation of each figure over the seeds."""
    out = {}
    for key in rows[0]:
        values = [row[key] for row in rows]
        out[f"{key}_mean"], out[f"{key}_std"] = round(statistics.fmean(values), 4), round(statistics.pstdev(values), 4)
    return out


def references(x_train, y_train, x_test, y_test) -> dict[str, dict[str, float]]:
    """Least squares and the train-mean predictor on the same split."""
    from sklearn.linear_model import LinearRegression

    linear = LinearRegression().fit(x_train, y_train).predict(x_test)
    mean = np.full_like(y_test, y_train.mean())
    return {"linear_regression": {k: round(v, 4) for k, v in scores(linear, y_test).items()},
            "train_mean": {k: round(v, 4) for k, v in scores(mean, y_test).items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--config", type=Path, default=CONFIG)
    args = parser.parse_args()
    started = time.monotonic()
    train, test = (load_dataset(DataConfig(name="diabetes"), split) for split in ("train", "test"))
    x_test, y_test = test.x.numpy(), test.y.numpy()
    rows = [train_and_score(args.config, seed, x_test, y_test) for seed in range(args.seeds)]
    machine = {"cpu_threads": torch.get_num_threads(), "cores": os.cpu_count(), "torch": torch.__version__,
               "python": platform.python_version(), "gankit": gankit.__version__}
    print(json.dumps({"suite": "regression_diabetes", "machine": machine, "config": str(args.config.name),
                      "train_size": len(train), "test_size": len(test), "seeds": args.seeds,
                      "mlp_regressor": {**summary(rows), "per_seed_rmse": [round(r["rmse"], 3) for r in rows]},
                      **references(train.x.numpy(), train.y.numpy(), x_test, y_test),
                      "total_seconds": round(time.monotonic() - started, 1)}))


if __name__ == "__main__":
    main()
