"""Reading and writing the files a user hands gankit or asks for: images, folders of images, arrays and tables.

One module for the API and the CLI alike (the data sources read through the same :mod:`gankit.data.folder` and
:mod:`gankit.data.npyfile` readers): images come in as (N, C, H, W) float tensors in [-1, 1] and go out as 8-bit
files; arrays live in ``.npz`` files (``arr_0`` for images as ``gankit sample`` writes them, ``x`` for features,
``codes`` for an autoencoder's codes); every failure is a one-line :class:`~gankit.errors.GankitError` naming the
file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .data.folder import list_images, read_images
from .data.npyfile import load_npz
from .data.transforms import uint8_to_unit
from .errors import GankitError
from .images import save_grid, save_scatter, to_uint8

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def from_uint8(arr: np.ndarray) -> torch.Tensor:
    """uint8 images (N, H, W, C) -> (N, C, H, W) floats in [-1, 1]."""
    return torch.from_numpy(uint8_to_unit(arr)).permute(0, 3, 1, 2).contiguous()


def save_samples(samples: torch.Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """``.png``: a grid (a scatter plot for 2-D points); ``.npz``: ``arr_0`` as uint8 (N, H, W, C) for images,
    float32 (N, D) for points."""
    path = writable(path, (".png", ".npz"), "samples")
    if path.suffix == ".png":
        if samples.dim() == 2 and samples.shape[1] == 2:
            return save_scatter(None, samples, path)
        if samples.dim() != 4:
            raise GankitError(f"cannot draw samples of shape {tuple(samples.shape[1:])} as a .png; use .npz")
        return save_grid(samples, path, nrow=nrow)
    np.savez(path, arr_0=to_uint8(samples) if samples.dim() == 4 else samples.float().cpu().numpy())
    return path


def writable(path: str | Path, suffixes: tuple[str, ...], what: str) -> Path:
    """``path`` checked before anything is computed: a suffix among ``suffixes``, not a folder, and a parent
    that is a folder (created when missing, and said on stderr, so that a typo in a folder's name does not leave
    files somewhere unexpected without a word). ``what``: what is written, in the plural."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        choices = " or ".join(("an " if s[1] in "aefhilmnorsx" else "a ") + s for s in suffixes[:4])  # an .npz
        raise GankitError(f"-o {path}: {what} are written to {choices}" + (", ..." if len(suffixes) > 4 else "")
                          + " file")
    if path.is_dir():
        raise GankitError(f"cannot write {what} to {path}: it is a folder; name a file inside it")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise GankitError(f"cannot write {what} to {path}: {parent} is a file, not a folder")
    if not path.parent.is_dir():
        missing = next(p for p in reversed(path.parents) if not p.exists())  # the first folder that is created
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"note: created the folder {missing}" + (f" (and {path.parent} inside it)" if missing != path.parent
                                                        else "") + f" for {path.name}", file=sys.stderr)
    return path


def read_samples(path: str | Path) -> torch.Tensor:
    """Samples from an ``.npz``: ``arr_0`` as uint8 (N, H, W, C) images -> (N, C, H, W) in [-1, 1], or float
    (N, D) points."""
    arr = read_array(path, "arr_0", "samples", "save samples as np.savez(path, arr_0=images) with uint8 (N, H, W, C) "
                     "images")
    if arr.ndim >= 1 and len(arr) == 0:
        raise GankitError(f"{path}: arr_0 holds no samples (shape {arr.shape})")
    if arr.dtype == np.uint8 and arr.ndim == 4:
        return from_uint8(arr)
    if arr.ndim == 2 and np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise GankitError(f"{path}: arr_0 holds NaN or infinite values")
        return torch.from_numpy(arr.astype(np.float32))
    raise GankitError(f"{path}: arr_0 is {arr.dtype} {arr.shape}; expected uint8 images (N, H, W, C) or float "
                      "points (N, D)")


def read_array(path: str | Path, key: str, what: str, hint: str) -> np.ndarray:
    """The array ``key`` (``what`` it holds) of an ``.npz``, its sizes checked before anything is allocated;
    ``hint`` says how to make one."""
    path = Path(path)
    if not path.is_file():
        raise GankitError(f"{what} file not found: {path}" + (" (a folder)" if path.is_dir() else ""))
    try:
        with load_npz(path) as npz:
            if key not in npz.files:
                raise GankitError(f"{path} has no {key!r} array (it holds {', '.join(npz.files) or 'nothing'}); "
                                  f"{hint}")
            return npz[key]
    except (OSError, ValueError, KeyError) as exc:
        raise GankitError(f"cannot read {what} from {path}: {exc}; {hint}") from None


def read_table(path: str | Path) -> np.ndarray:
    """Features (N, D) float32 from a headerless .csv or from the 'x' array of an .npz; errors name the file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".npz"):
        raise GankitError(f"{path}: features come in a .csv (numbers only, one row per sample) or an .npz with 'x'")
    if suffix == ".npz":
        x = np.asarray(read_array(path, "x", "features", "save features as np.savez(path, x=features)"),
                       dtype=np.float32)
    elif not path.is_file():
        raise GankitError(f"features file not found: {path}")
    else:
        try:
            x = np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2)
        except (OSError, ValueError) as exc:
            why = " ".join(str(exc).split()).rstrip(".")
            raise GankitError(f"cannot read features from {path}: {why}; the .csv must hold numbers only, with no "
                              "header row") from None
    if x.ndim != 2 or not np.isfinite(x).all():
        raise GankitError(f"{path}: expected a finite (N, D) table of features, got shape {x.shape}"
                          + ("" if np.isfinite(x).all() else " with NaN or Inf"))
    return x


def write_table(path: str | Path, table: np.ndarray) -> Path:
    """A (N, T) table as a .csv (8 significant digits) or as ``pred`` in an .npz."""
    path = writable(path, (".csv", ".npz"), "predictions")
    if path.suffix.lower() == ".npz":
        np.savez(path, pred=table)
    else:
        np.savetxt(path, table, delimiter=",", fmt="%.8g")
    return path


def read_codes(path: str | Path) -> torch.Tensor:
    """An autoencoder's codes (N, d) from the 'codes' array of an .npz, as ``gankit encode`` writes it."""
    if Path(path).suffix != ".npz":
        raise GankitError(f"{path}: codes come in an .npz file with a 'codes' array, as gankit encode writes")
    codes = read_array(path, "codes", "codes", "expected an .npz with a 'codes' array, as gankit encode writes")
    return torch.from_numpy(np.asarray(codes, dtype=np.float32))


def write_codes(path: str | Path, codes: torch.Tensor, labels: torch.Tensor | None) -> Path:
    """Codes (and labels, when known) to an .npz."""
    path = writable(path, (".npz",), "codes")
    np.savez(path, codes=codes.numpy(), **({} if labels is None else {"labels": labels.numpy()}))
    return path


# ---------------------------------------------------------------------------------------------------------------
# Images in: one file, a folder, a list of files, or an .npz


def read_inputs(sources: list[str | Path], channels: int, side: int) -> tuple[torch.Tensor, list[Path] | None]:
    """Images from one .npz (``arr_0``), one folder (every image in it, recursively) or image files, converted to
    ``channels`` and resized to ``side``: ((N, C, side, side) in [-1, 1], the names relative to their folder, or
    None for an .npz)."""
    paths = [Path(s) for s in sources]
    for path in paths:
        if not path.exists():
            raise GankitError(f"no input at {path}")
    if len(paths) == 1 and paths[0].suffix == ".npz":
        x = read_samples(paths[0])
        if x.dim() != 4:
            raise GankitError(f"{paths[0]}: arr_0 must hold images (N, H, W, C)")
        return fit_images(x, channels, side, paths[0]), None
    if len(paths) == 1 and paths[0].is_dir():
        files = list_images(paths[0])[0]
        return from_uint8(read_images(files, side, channels)), [f.relative_to(paths[0]) for f in files]
    return from_uint8(read_images(paths, side, channels)), [Path(p.name) for p in paths]


def fit_images(x: torch.Tensor, channels: int, side: int, source: Path | str) -> torch.Tensor:
    """Images to ``channels`` (grey <-> RGB by ITU-R 601 luma) and to a square ``side`` (bilinear, antialiased)."""
    if x.shape[1] != channels:
        if x.shape[1] == 3 and channels == 1:
            x = 0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
        elif x.shape[1] == 1 and channels == 3:
            x = x.expand(-1, 3, -1, -1)
        else:
            raise GankitError(f"{source}: images with {x.shape[1]} channels; the input domain has {channels}")
    if x.shape[-1] != side or x.shape[-2] != side:
        x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False, antialias=True)
    return x.contiguous()


def save_image(image: torch.Tensor, path: Path) -> Path:
    """One image (C, H, W) in [-1, 1] as an 8-bit file of any format Pillow writes (by its suffix)."""
    arr = to_uint8(image[None])[0]  # (H, W, C): the image itself, unpadded
    try:
        Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).save(path)
    except (ValueError, KeyError) as exc:  # an unknown suffix
        raise GankitError(f"cannot write an image to {path}: {exc}; use .png, .jpg, ...") from None
    return path


def save_images(images: torch.Tensor, folder: Path, names: list[Path], per_input: int = 1) -> list[Path]:
    """``images`` (N * per_input, C, H, W) as files in ``folder`` under ``names`` (as .png; with several outputs per
    input, ``name.0.png``, ``name.1.png``, ...)."""
    written = []
    for i, name in enumerate(names):
        for j in range(per_input):
            path = folder / Path(name).with_suffix(".png" if per_input == 1 else f".{j}.png")
            path.parent.mkdir(parents=True, exist_ok=True)
            written.append(save_image(images[i * per_input + j], path))
    return written
