"""gankit: train, evaluate and use deep generative models, on PyTorch.

The public API is a handful of verbs: :func:`train` a run from a config, :func:`load` it back from a run directory, a
checkpoint or a model folder, ``load(run).sample(n)`` (``encode``/``decode`` for autoencoders, ``predict`` for
regressors, ``translate`` for translators), :func:`evaluate` a run or a file of samples, and :func:`fit_regressor` on
in-memory arrays. Every CLI verb is one call here too, on files: :func:`sample_to_file`, :func:`translate_files`
(an image, a folder or an .npz), :func:`project_files`, :func:`latent_to_file`, :func:`predict_file`,
:func:`encode_to_file`, :func:`decode_file` and :func:`train_evaluator`; and on run directories, read from their
files, :func:`list_runs`, :func:`plot_runs` and :func:`report`; :func:`serve` a page to play with a model;
:func:`export` it (an ONNX file, a model folder for the Hugging Face Hub); :func:`sweep` a config's
hyperparameters with Optuna and :func:`show_sweep` what it found. See docs/ for the command line.
"""

# The registries are filled here, once, before anything else: every ``import gankit.<anything>`` runs this file
# first, so no look-up (a config section, a data source, a loss) can come before its component is registered, and no
# module needs to import ``components`` itself (which would let data or config reach the models).
from . import components  # noqa: F401  (first: fills the registries)
from .api import (LoadedRun, decode_file, encode_to_file, evaluate, export, latent_to_file, list_runs, load,
                  plot_runs, predict_file, project_files, report, sample_to_file, save_samples, serve, show_sweep,
                  sweep, train, train_evaluator, translate_files)
from .config import Config, load_config
from .errors import ConfigError, DataError, GankitError
from .regression import fit_regressor
from .version import __version__

__all__ = ["Config", "ConfigError", "DataError", "GankitError", "LoadedRun", "decode_file", "encode_to_file",
           "evaluate", "export", "fit_regressor", "latent_to_file", "list_runs", "load", "load_config", "plot_runs",
           "predict_file", "project_files", "report", "sample_to_file", "save_samples", "serve", "show_sweep",
           "sweep", "train",
           "train_evaluator",
           "translate_files", "__version__"]
