"""Fit a regression network on in-memory arrays in one call, the way scikit-learn's ``fit`` does.

    >>> import gankit
    >>> run = gankit.fit_regressor(x_train, y_train, steps=2000)   # x (N, D), y (N,) or (N, T)
    >>> run.predict(x_test)                                         # (M, T), in the targets' units

Under the hood this is an ordinary run: the arrays are saved to ``RUN/data.npz`` and trained with the ``arrays``
source, the ``mlp_regressor`` model and the ``regression`` recipe, so ``RUN`` can be resumed, loaded and inspected
like any other run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from .api import LoadedRun, load
from .config import from_dict
from .errors import GankitError
from .train import Trainer, rundir

DATA_FILE = "data.npz"


def fit_regressor(x, y, *, hidden: tuple[int, ...] | list[int] = (64, 64), steps: int = 2000, batch_size: int = 64,
                  lr: float = 1e-3, seed: int = 0, out: str | Path | None = None) -> LoadedRun:
    """Train an MLP regressor on features x (N, D) and targets y (N,) or (N, T); returns the loaded run (its
    ``predict`` gives (M, T)). ``out`` keeps the run directory; None trains in a temporary one that is deleted."""
    x, y = _as_table(x, y)
    if batch_size > len(x):
        raise GankitError(f"batch_size={batch_size} is larger than the {len(x)} samples: pass a smaller batch_size")
    settings = {"hidden": list(hidden), "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed}
    if out is not None:
        return _fit(x, y, Path(out), settings)
    with tempfile.TemporaryDirectory(prefix="gankit-regressor-") as tmp:
        return _fit(x, y, Path(tmp) / "run", settings)  # load() holds the weights in memory before tmp goes


def _as_table(x, y) -> tuple[np.ndarray, np.ndarray]:
    """x as float32 (N, D) and y as float32 (N, T), both finite; a clear error otherwise."""
    x, y = np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.float32)
    if x.ndim != 2 or y.ndim not in (1, 2) or len(x) != len(y) or not len(x):
        raise GankitError(f"fit_regressor needs x of shape (N, D) and y of shape (N,) or (N, T) with N >= 1, got "
                          f"x {x.shape} and y {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise GankitError("fit_regressor: x and y must be finite (no NaN or Inf)")
    return x, y.reshape(len(y), -1)


def _fit(x: np.ndarray, y: np.ndarray, run_dir: Path, settings: dict) -> LoadedRun:
    """Save the arrays in ``run_dir``, train there, and load the result."""
    # gankit.train refuses a non-empty run directory, and the data file must live in the run: so the trainer is
    # driven directly, after the same check and under the same lock
    rundir.check_target(run_dir, overwrite=False)
    with rundir.claim(run_dir):
        np.savez(run_dir / DATA_FILE, x=x, y=y)
        Trainer(_config(run_dir / DATA_FILE, y.shape[1], settings), run_dir).fit()
    return load(run_dir)


def _config(data_file: Path, targets: int, settings: dict):
    """The run's config: the arrays source on ``data_file``, mlp_regressor, the regression recipe."""
    return from_dict({
        "data": {"name": "arrays", "root": str(data_file.resolve())},
        "model": {"name": "mlp_regressor", "hidden": settings["hidden"], "targets": targets},
        "recipe": {"name": "regression"},
        "optim": {"lr_g": settings["lr"], "beta1": 0.9},
        "train": {"steps": settings["steps"], "batch_size": settings["batch_size"], "seed": settings["seed"],
                  "progress": False, "eval_every": 0},
    })
