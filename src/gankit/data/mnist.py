"""The ``mnist`` source: LeCun, Cortes & Burges, "The MNIST database of handwritten digits" (1998), read from its
original IDX files (:mod:`gankit.data.idx`), raw or gzip-compressed.

Where the files are looked for, first match wins: ``data.root``, else ``$GANKIT_DATA``, else the download cache
``~/.cache/gankit/mnist``. That folder may hold the four files itself or an ``mnist/`` sub-folder that does, so
``GANKIT_DATA`` can name either the MNIST folder or a data folder above it. Missing files are fetched from the usual
mirrors only when ``data.download`` is true (see :mod:`gankit.data.download`).

Verification: each file's MD5 is checked on every load, over the uncompressed bytes that are already in memory for
decoding. Hashing 47 MB costs about 0.07 s next to 0.3 s to gunzip it, so no sidecar cache is kept: a cache keyed by
size and mtime would need write access to what is often a shared, read-only data folder, and could go stale.
Each file is decompressed as a stream, capped at its known size (``MNIST_SIZES`` in :mod:`gankit.data.mnist_files`), so
a gzip bomb in its place costs no more than the real file before it is refused.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..config import DataConfig
from ..errors import DataError
from ..registry import DATASETS
from .transforms import check_split, finish_images, make_array_data, uint8_to_unit
from .base import ArrayData
from .limits import user_path
from . import download
from .idx import read_idx
from .mnist_files import DEFAULT_CACHE, MNIST_MD5, MNIST_SIZES, SIDE, known_size  # noqa: F401  (re-exported)

ENV_VAR = "GANKIT_DATA"
SUBFOLDER = "mnist"
NUM_CLASSES = 10
_PREFIX = {"train": "train", "test": "t10k"}


def split_files(split: str) -> tuple[str, str]:
    """The (images, labels) file names of ``split``, without the optional ``.gz``."""
    prefix = _PREFIX[split]
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def base_folder(root: str | None) -> tuple[Path, str]:
    """The folder to search and where it came from (``data.root``, ``$GANKIT_DATA`` or the default cache)."""
    if root is not None:
        return user_path(root), "data.root"
    if os.environ.get(ENV_VAR):
        return user_path(os.environ[ENV_VAR], f"${ENV_VAR}"), f"${ENV_VAR}"
    return user_path(DEFAULT_CACHE, "the default cache"), f"the default cache (data.root and ${ENV_VAR} are unset)"


def find_file(folder: Path, name: str) -> Path | None:
    """``folder/name`` or ``folder/name.gz``, whichever exists first."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def locate_mnist(cfg: DataConfig, split: str) -> Path:
    """The folder holding ``split``'s files: ``base`` or ``base/mnist``; downloads them when allowed."""
    base, source = base_folder(cfg.root)
    for folder in (base, base / SUBFOLDER):
        if any(find_file(folder, name) for name in split_files(split)):
            return folder
    if cfg.download:
        return download.download_mnist(base / SUBFOLDER if (base / SUBFOLDER).is_dir() else base)
    names = " and ".join(f"{n}[.gz]" for n in split_files(split))
    raise DataError(f"MNIST {split} files not found: looked for {names} in {base} and {base / SUBFOLDER} (from "
                    f"{source}); set data.root or ${ENV_VAR} to the folder holding them, or set "
                    "data.download=true when online")


def _require(folder: Path, name: str) -> Path:
    """The existing ``name[.gz]`` in ``folder``, or a one-line error."""
    path = find_file(folder, name)
    if path is None:
        raise DataError(f"{folder / name}[.gz] not found next to the other MNIST files; copy it there, or set "
                        "data.download=true when online")
    return path


def read_mnist(folder: str | Path, split: str,
               checksums: dict[str, str] | None = MNIST_MD5) -> tuple[np.ndarray, np.ndarray]:
    """The (N, 28, 28) uint8 images and (N,) uint8 labels of ``split`` in ``folder``, verified.

    ``checksums`` maps file names (without ``.gz``) to the MD5 of their uncompressed content; ``None`` skips it.
    """
    folder = Path(folder)
    names = split_files(split)
    paths = [_require(folder, name) for name in names]
    md5s = [None if checksums is None else checksums.get(name) for name in names]
    sizes = [known_size(name, md5) for name, md5 in zip(names, md5s)]
    images = read_idx(paths[0], ndim=3, md5=md5s[0], max_size=sizes[0])  # (N, 28, 28)
    labels = read_idx(paths[1], ndim=1, md5=md5s[1], max_size=sizes[1])  # (N,)
    if images.shape[1:] != (SIDE, SIDE):
        raise DataError(f"{paths[0]} holds {images.shape[1]}x{images.shape[2]} images, MNIST's are "
                        f"{SIDE}x{SIDE}; check that it is the right file")
    if len(images) != len(labels):
        raise DataError(f"{paths[0]} holds {len(images)} images but {paths[1]} holds {len(labels)} labels; "
                        "the files do not belong together: fetch them again")
    if labels.size and labels.max() >= NUM_CLASSES:
        raise DataError(f"{paths[1]} holds label {labels.max()}, outside 0..9; check that it is the right file")
    return images, labels


@DATASETS.register("mnist")
def load_mnist(cfg: DataConfig, split: str = "train", seed: int = 0) -> ArrayData:
    """MNIST as (N, 1, S, S) images in [-1, 1] (S = ``cfg.size`` or 28) with labels 0..9."""
    check_split(split, "mnist")
    images, labels = read_mnist(locate_mnist(cfg, split), split)
    x = uint8_to_unit(images)[:, None]  # (N, 1, 28, 28)
    return make_array_data(finish_images(x, cfg), labels, "mnist", num_classes=NUM_CLASSES)
