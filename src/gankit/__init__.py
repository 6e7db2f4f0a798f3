"""gankit: train, evaluate and use deep generative models, on PyTorch.

The public API is a handful of verbs: :func:`train` a run from a config, :func:`load` it back from a run directory or
a checkpoint, ``load(run).sample(n)`` (``encode``/``decode`` for autoencoders, ``predict`` for regressors),
:func:`evaluate` a run or a file of samples, and :func:`fit_regressor` on in-memory arrays. See the README for the
command line.
"""

# The registries are filled here, once, before anything else: every ``import gankit.<anything>`` runs this file
# first, so no look-up (a config section, a data source, a loss) can come before its component is registered, and no
# module needs to import ``components`` itself (which would let data or config reach the models).
from . import components  # noqa: F401  (first: fills the registries)
from .api import LoadedRun, evaluate, load, save_samples, train
from .config import Config, load_config
from .errors import ConfigError, DataError, GankitError
from .regression import fit_regressor
from .version import __version__

__all__ = ["Config", "ConfigError", "DataError", "GankitError", "LoadedRun", "evaluate", "fit_regressor", "load",
           "load_config", "save_samples", "train", "__version__"]
