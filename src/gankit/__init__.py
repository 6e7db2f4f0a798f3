"""gankit: train, evaluate and use deep generative models, on PyTorch.

The public API is a handful of verbs: :func:`train` a run from a config, :func:`load` it back from a run directory or
a checkpoint, ``load(run).sample(n)`` (``encode``/``decode`` for autoencoders, ``predict`` for regressors),
:func:`evaluate` a run or a file of samples, and :func:`fit_regressor` on in-memory arrays. See the README for the
command line.
"""

__version__ = "0.1.0"

from .api import LoadedRun, evaluate, load, save_samples, train  # noqa: E402
from .config import Config, load_config  # noqa: E402
from .errors import ConfigError, DataError, GankitError  # noqa: E402
from .regression import fit_regressor  # noqa: E402

__all__ = ["Config", "ConfigError", "DataError", "GankitError", "LoadedRun", "evaluate", "fit_regressor", "load",
           "load_config", "save_samples", "train", "__version__"]
