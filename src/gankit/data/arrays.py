"""The ``arrays`` source: images, point sets or regression tables from a ``.npz``/``.npy`` file.

Layout of the file at ``data.root``:

* ``.npz``: images under the first of ``x``, ``images``, ``arr_0``; labels (optional) under ``y`` or ``labels``.
  The test split reads ``x_test`` and (optionally) ``y_test``.
* ``.npy``: one array of images (train split only, unlabelled).

How an array is read (the rule is decided from dtype and shape alone, never guessed from content beyond the range):

* integer dtype (values must lie in 0..255): 8-bit pixels, mapped to [-1, 1] by ``x / 127.5 - 1``;
* floating dtype, 3-D or 4-D: images already scaled; if ``min >= 0`` they are read as [0, 1] and mapped by
  ``2x - 1``, otherwise they must lie in [-1, 1] (a 1e-3 slack is clipped); anything else is an error;
* floating (N, D): a point set (like ``toy2d``), returned as is;
* (N, H, W): grey images; (N, A, B, C): channels-last if ``C`` is 1 or 3 and ``A`` is not, channels-first if ``A``
  is 1 or 3 and ``C`` is not; when both or neither are 1 or 3 the layout is ambiguous and an error.

Labels must be a 1-D integer array with one non-negative entry per image; ``num_classes`` is ``max(y) + 1``.

The file is read by :mod:`gankit.data.npyfile`: the sizes it claims are checked against the memory limit
(``GANKIT_MAX_BYTES``, :mod:`gankit.data.limits`) before anything is allocated, and pickled objects are refused.

A *float* ``y`` (shape (N,) or (N, T)) holds regression targets: then ``x`` must be an (N, D) table of numbers, and
both are returned as they are (float32, targets as (N, T)), for a regressor to standardise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import DataConfig
from ..errors import DataError, MissingSplitError
from ..registry import DATASETS
from .base import ArrayData
from .limits import user_path
from .npyfile import load_npy, load_npz
from .tabular import check_tabular, tabular_data
from .transforms import check_split, finish_images, make_array_data, uint8_to_unit

IMAGE_KEYS = ("x", "images", "arr_0")
LABEL_KEYS = ("y", "labels")
TEST_IMAGE_KEYS = ("x_test",)
TEST_LABEL_KEYS = ("y_test",)
# Labels are class indices, and there are max(y) + 1 classes: a one-hot label (model.conditioning=concat) and the
# per-class metrics take that many columns, so a stray 1e9 asks for gigabytes. ImageNet has 1,000 classes.
MAX_CLASSES = 10_000
RANGE_SLACK = 1e-3  # float images may overshoot [-1, 1] / [0, 1] by this much (rounding); the excess is clipped


# ----------------------------------------------------------------------------------------------------------------
# The arrays source


@DATASETS.register("arrays")
def load_arrays(cfg: DataConfig, split: str = "train", seed: int = 0) -> ArrayData:
    """Images (or 2-D point sets) and optional labels from the ``.npz``/``.npy`` file at ``cfg.root``."""
    check_split(split, "arrays")
    path = _array_path(cfg.root)
    x, y = _read_arrays(path, split)
    if y is not None and y.dtype.kind == "f" and x.ndim == 2 and x.dtype.kind in "fiu":
        return _regression_table(x.astype(np.float64), y, path, cfg)
    x = to_unit_images(x, path)
    if x.ndim == 2:
        if cfg.size is not None or cfg.channels is not None:
            raise DataError(f"{path} holds points of shape {x.shape}, not images; unset data.size and data.channels "
                            "(or store images as (N, H, W) / (N, H, W, C))")
    else:
        x = finish_images(x, cfg)
    if y is not None:
        y = check_labels(y, len(x), path)
    return make_array_data(x, y, "arrays")


def _regression_table(x: np.ndarray, y: np.ndarray, path: Path, cfg: DataConfig) -> ArrayData:
    """Features (N, D) and float targets (N,) or (N, T) as tabular :class:`ArrayData`."""
    check_tabular(cfg, str(path))
    if not len(x):
        raise DataError(f"{path}: the table has no rows; save at least one row of features and targets")
    if y.ndim not in (1, 2) or len(y) != len(x):
        raise DataError(f"{path}: regression targets y must have shape ({len(x)},) or ({len(x)}, T), one row per row "
                        f"of x, got {y.shape}")
    _check_finite(x, path)
    _check_finite(y, path)
    return tabular_data(x, y, "arrays")


def _array_path(root: str | None) -> Path:
    """The ``.npz``/``.npy`` file named by ``data.root``."""
    if root is None:
        raise DataError("arrays: data.root is not set; set data.root to a .npz or .npy file")
    path = user_path(root)
    if path.suffix.lower() not in (".npz", ".npy"):
        raise DataError(f"{path} is not a .npz or .npy file; the arrays source reads only those (data.root=FILE)")
    if not path.is_file():
        raise DataError(f"{path} not found; set data.root to an existing .npz or .npy file")
    return path


def _read_arrays(path: Path, split: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The (images, labels or None) of ``split`` in ``path``."""
    if path.suffix.lower() == ".npy":
        if split == "test":
            raise MissingSplitError(f"{path} is a .npy file with no test split; save an .npz with x_test (and y_test) "
                                    "keys")
        return load_npy(path), None
    with load_npz(path) as data:  # sizes the file claims are checked before anything is allocated
        return _pick_keys(data, path, split)


def _pick_keys(data, path: Path, split: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Images and labels of ``split`` from an open ``.npz``."""
    image_keys, label_keys = (IMAGE_KEYS, LABEL_KEYS) if split == "train" else (TEST_IMAGE_KEYS, TEST_LABEL_KEYS)
    found = list(data.files)
    xkey = next((k for k in image_keys if k in found), None)
    if xkey is None:
        error = MissingSplitError if split == "test" else DataError
        raise error(f"{path} has no {split} data: expected one of the keys {', '.join(image_keys)} (images, points or "
                    f"features; with {' or '.join(label_keys)} for labels or targets), found "
                    f"{', '.join(found) or 'no keys'}; re-save it with one of those keys")
    ykey = next((k for k in label_keys if k in found), None)
    return data[xkey], (data[ykey] if ykey is not None else None)


def to_unit_images(x: np.ndarray, path: Path | str) -> np.ndarray:
    """Images as float32 (N, C, H, W) in [-1, 1], or float points (N, D); rules in the module docstring."""
    if x.dtype.kind == "b" or x.dtype.kind not in "uif":
        raise DataError(f"{path}: images have dtype {x.dtype}; store uint8 pixels or floats in [-1, 1] / [0, 1]")
    if x.ndim == 2 and x.dtype.kind == "f":
        _check_finite(x, path)
        return x.astype(np.float32)
    x = _to_nchw(x, path)
    if x.dtype.kind in "ui":
        return _from_integers(x, path)
    return _from_floats(x, path)


def _to_nchw(x: np.ndarray, path: Path | str) -> np.ndarray:
    """(N, H, W), (N, H, W, C) or (N, C, H, W) -> (N, C, H, W), with C in {1, 3}."""
    if x.ndim == 3:
        return x[:, None]  # (N, 1, H, W)
    if x.ndim == 4:
        first, last = x.shape[1] in (1, 3), x.shape[3] in (1, 3)
        if last and not first:
            return x.transpose(0, 3, 1, 2)  # NHWC -> NCHW
        if first and not last:
            return x
        why = "both" if first else "neither"
        raise DataError(f"{path}: cannot tell the channel axis of shape {x.shape} ({why} axis 1 and axis 3 are 1 or "
                        "3); store images as (N, H, W), (N, H, W, C) or (N, C, H, W) with C in 1, 3")
    raise DataError(f"{path}: array of shape {x.shape} is neither images (N, H, W[, C]) nor float points (N, D); "
                    "reshape it before saving")


def _from_integers(x: np.ndarray, path: Path | str) -> np.ndarray:
    """Integer pixels 0..255 -> float32 in [-1, 1]."""
    if x.size and (x.min() < 0 or x.max() > 255):
        raise DataError(f"{path}: integer pixels must lie in 0..255, found {x.min()}..{x.max()}; "
                        "store uint8 pixels or floats in [-1, 1]")
    return uint8_to_unit(x)


def _from_floats(x: np.ndarray, path: Path | str) -> np.ndarray:
    """Float images in [0, 1] (when min >= 0) or [-1, 1] -> float32 in [-1, 1]."""
    _check_finite(x, path)
    x = x.astype(np.float32)
    lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    if lo >= 0 and hi <= 1 + RANGE_SLACK:
        return np.clip(x * 2 - 1, -1, 1)
    if lo >= -1 - RANGE_SLACK and hi <= 1 + RANGE_SLACK:
        return np.clip(x, -1, 1)
    raise DataError(f"{path}: float images must lie in [-1, 1] or [0, 1], found [{lo:.4g}, {hi:.4g}]; "
                    "rescale them, or store uint8 pixels")


def _check_finite(x: np.ndarray, path: Path | str) -> None:
    """Raise when ``x`` holds NaN or Inf."""
    bad = int(np.count_nonzero(~np.isfinite(x)))
    if bad:
        raise DataError(f"{path}: {bad} values are NaN or Inf; remove or replace them before saving")


def check_labels(y: np.ndarray, n: int, path: Path | str) -> np.ndarray:
    """Labels as int64 (N,): integer dtype, one per sample, non-negative."""
    if y.dtype.kind not in "ui" or y.ndim != 1:
        raise DataError(f"{path}: labels must be a 1-D integer array, got {y.dtype} of shape {y.shape}; "
                        "save them as integers (e.g. y.astype('int64')), or, for regression targets, store x as a "
                        "float (N, D) array beside a float y")
    if len(y) != n:
        raise DataError(f"{path}: {len(y)} labels for {n} images; save one label per image")
    if n and y.min() < 0:
        raise DataError(f"{path}: labels must be non-negative class indices, found {y.min()}")
    if n and y.max() >= MAX_CLASSES:
        raise DataError(f"{path}: labels must be class indices >= 0 and <= {MAX_CLASSES - 1:,}, found {y.max()}; "
                        "number the classes 0, 1, 2, ...")
    return y.astype(np.int64)
