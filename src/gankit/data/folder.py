"""The ``folder`` source: a folder of image files read with Pillow.

Layout rules (``data.root`` is the folder):

* Splits: if the folder holds a ``train/`` or a ``test/`` sub-folder, the split reads that sub-folder (asking for a
  split whose folder is missing is an error). Otherwise the whole folder is the train split, and ``test`` is an error.
* Labels: image files directly in the split folder -> unlabelled; only sub-folders -> one class per sub-folder
  (sorted names -> 0..K-1; images anywhere below a class folder belong to it); a mix of both -> error.
* Files: .png .jpg .jpeg .bmp .gif .webp .tif .tiff (any case). Hidden files (``.name``) and OS litter
  (Thumbs.db, desktop.ini) are skipped silently, files without an image's extension (notes.txt, a README) with a
  note on stderr naming them; a file with an image's extension that Pillow cannot read is an error naming it.
* Pixels: the first frame, EXIF orientation applied, alpha dropped, 16-bit scaled to 8-bit. Every image is converted
  to ``data.channels`` when set, else to RGB if any image is in colour, else to grey.
* Size: with ``data.size`` each image's shorter side is resized to it (box filter when shrinking, bilinear when
  growing) and the centre square cropped; without it all images must share one square size.
* Images above ``MAX_PIXELS`` are refused before decoding (decompression bombs), checked per call.
* Only regular files are read: a named pipe, socket or device among the images (``mkfifo pipe.png``) is refused,
  named with the other unreadable files, rather than skipped: opening a pipe would block forever, and skipping an
  entry that carries an image's name would silently train on less data than the folder shows.
"""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..config import DataConfig
from ..errors import DataError
from ..registry import DATASETS
from .transforms import check_split, make_array_data, uint8_to_unit
from .base import ArrayData
from .limits import NotRegularFile, check_setting, open_regular, user_path

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini"})
MAX_PIXELS = 1 << 26  # 67M pixels: above any training image, below Pillow's own bomb limit (89M)
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
SHOWN_BAD_FILES = 3  # how many unreadable files an error names before giving the count


@DATASETS.register("folder")
def load_folder(cfg: DataConfig, split: str = "train", seed: int = 0) -> ArrayData:
    """The images under ``cfg.root`` (see the module docstring for the layout) as (N, C, S, S) in [-1, 1]."""
    check_split(split, "folder")
    folder = split_folder(cfg.root, split)
    files, labels, classes = list_images(folder)
    pixels = read_images(files, cfg.size, cfg.channels)  # (N, S, S, C) uint8
    x = uint8_to_unit(pixels).transpose(0, 3, 1, 2)  # (N, C, S, S)
    y = None if labels is None else np.asarray(labels, dtype=np.int64)
    return make_array_data(x, y, "folder", num_classes=len(classes) if classes else None, classes=tuple(classes))


def split_folder(root: str | None, split: str) -> Path:
    """The folder that holds ``split``: ``root/<split>`` when root has train/ or test/, else root (train only)."""
    if root is None:
        raise DataError("folder: data.root is not set; set data.root to a folder of images")
    path = user_path(root)
    if not path.is_dir():
        raise DataError(f"{path} is not a folder; set data.root to a folder of images")
    if (path / "train").is_dir() or (path / "test").is_dir():
        if not (path / split).is_dir():
            raise DataError(f"{path} has no {split}/ folder; add {path / split} to use the {split} split")
        return path / split
    if split == "test":
        raise DataError(f"{path} has no test/ folder, so all of it is the train split; to hold out a test split "
                        f"move the images into {path / 'train'} and {path / 'test'}")
    return path


def lacks_test_split(root: str | None) -> bool:
    """True when ``root`` is a folder with no ``test/`` sub-folder: its test split is then the fixed 10% hold-out
    of its train split (:func:`gankit.metrics.train_evaluator.holdout`), for ``gankit evaluator train`` and
    ``gankit eval`` alike."""
    if root is None:
        return False
    path = user_path(root)
    return path.is_dir() and not (path / "test").is_dir()


def _visible(path: Path) -> bool:
    """False for hidden entries and OS litter that a dataset folder may carry."""
    return not path.name.startswith(".") and path.name.lower() not in IGNORED_NAMES


def _image_files(files: list[Path], where: Path, required: bool = True) -> list[Path]:
    """The files with an image's extension; the others are skipped with a note (once per folder and process), or,
    when ``required`` and nothing else is there, named in the error."""
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    others = [p for p in files if p.suffix.lower() not in IMAGE_SUFFIXES]
    if not others:
        return images
    names = ", ".join(str(p.relative_to(where)) for p in others[:SHOWN_BAD_FILES])
    names += f" and {len(others) - SHOWN_BAD_FILES} more" if len(others) > SHOWN_BAD_FILES else ""
    if not images and required:
        raise DataError(f"{where} holds no images, only {len(others)} other file(s) ({names}); add image files "
                        f"({' '.join(sorted(IMAGE_SUFFIXES))}) or fix data.root")
    if where not in _NOTED:
        _NOTED.add(where)
        print(f"note: skipped {len(others)} file(s) in {where} that are not images by their extension: {names}",
              file=sys.stderr)
    return images


_NOTED: set[Path] = set()  # folders whose skipped files were already named


def list_images(folder: Path) -> tuple[list[Path], list[int] | None, list[str]]:
    """The image files under ``folder``, their labels (None when unlabelled) and the sorted class names."""
    entries = sorted(p for p in folder.iterdir() if _visible(p))
    dirs = [p for p in entries if p.is_dir()]
    files = _image_files([p for p in entries if not p.is_dir()], folder, required=not dirs)
    if dirs and files:
        raise DataError(f"{folder} mixes files ({files[0].name}, ...) with class sub-folders ({dirs[0].name}/, ...); "
                        "put every image in a class sub-folder, or remove the sub-folders for unlabelled data")
    if not dirs:
        if not files:
            raise DataError(f"{folder} holds no images; add image files (.png, .jpg, ...) or fix data.root")
        return files, None, []
    return _class_files(folder, dirs)


def _class_files(folder: Path, dirs: list[Path]) -> tuple[list[Path], list[int], list[str]]:
    """All files below each class folder, labelled by the folder's index in sorted order."""
    files: list[Path] = []
    labels: list[int] = []
    for label, d in enumerate(dirs):
        found = _image_files(sorted(p for p in d.rglob("*") if not p.is_dir() and _visible(p)
                                    and not any(part.startswith(".") for part in p.relative_to(d).parts)), d)
        if not found:
            raise DataError(f"class folder {d} holds no images; add images or remove it from {folder}")
        files += found
        labels += [label] * len(found)
    return files, labels, [d.name for d in dirs]


def read_images(files: list[Path], size: int | None, channels: int | None,
                max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode ``files`` into one (N, S, S, C) uint8 array; bad files are collected and reported together."""
    images, bad = [], []
    for path in files:
        try:
            images.append(open_image(path, max_pixels))
        except DataError as exc:
            bad.append((path, str(exc)))
    if bad:
        shown = "; ".join(f"{p} ({why})" for p, why in bad[:SHOWN_BAD_FILES])
        more = f" and {len(bad) - SHOWN_BAD_FILES} more" if len(bad) > SHOWN_BAD_FILES else ""
        raise DataError(f"{len(bad)} file(s) cannot be read as images: {shown}{more}; fix or remove them")
    mode = _target_mode(images, channels)
    if size is not None:  # before any image is resized: N float32 copies of size x size follow
        check_setting(f"data.size={size}", len(images) * len(mode) * size * size * 4,
                      f"{len(images):,} float32 images of {len(mode)}x{size}x{size}")
    images = [_fit(_convert(im, mode), size) for im in images]
    _check_same_size(images, files)
    arrays = [np.asarray(im, dtype=np.uint8) for im in images]
    stacked = np.stack(arrays)  # (N, S, S) or (N, S, S, 3)
    return stacked[..., None] if stacked.ndim == 3 else stacked


def open_image(path: Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode one image as 8-bit "L" or "RGB" (first frame, EXIF orientation applied, alpha dropped)."""
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise DataError(f"not an image file extension; use one of {' '.join(sorted(IMAGE_SUFFIXES))}")
    try:
        with warnings.catch_warnings(), _open_file(path) as f:
            warnings.simplefilter("ignore", UserWarning)  # Pillow's notes on damaged metadata it skips ("Corrupt EXIF")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(f) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise DataError(f"{w}x{h} pixels exceeds the limit of {max_pixels}; possible decompression bomb")
                im.load()
                return _to_8bit(ImageOps.exif_transpose(im))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(f"possible decompression bomb: {exc}") from None
    except DataError:
        raise
    except UnidentifiedImageError:
        raise DataError(_unreadable(path)) from None
    except OSError as exc:
        if exc.errno is not None:  # the file system's refusal (permissions, a vanished file), not the image's fault
            raise DataError(f"cannot open it: {exc.strerror}") from None
        raise DataError(_plain(f"damaged image data: {exc}")) from None
    except (ValueError, SyntaxError) as exc:
        raise DataError(_plain(f"damaged image data: {exc}")) from None
    except Exception as exc:  # noqa: BLE001  Pillow's plugins raise what they meet in a damaged file (struct.error,
        # TypeError, IndexError, ... from malformed EXIF or headers; found by tests/test_fuzz_readers.py): the file
        # is unreadable, not gankit broken
        raise DataError(_plain(f"damaged image data ({type(exc).__name__}: {exc})")) from None


def _unreadable(path: Path) -> str:
    """Why Pillow found no image in ``path``, in a user's words."""
    try:
        empty = path.stat().st_size == 0
    except OSError:
        empty = False
    return "an empty file" if empty else f"not a readable {path.suffix.lower()[1:].upper()} image (damaged, or " \
                                         "another kind of file under an image's name)"


def _plain(message: str) -> str:
    """One line, without the reprs of Python's file objects that Pillow's messages carry."""
    return re.sub(r"\s*<_io\.\w+ name=[^>]*>", "", message).replace("\n", " ").strip()


def _open_file(path: Path) -> BinaryIO:
    """``path`` opened for reading if it is a regular file; a pipe or device (which could block forever) is refused
    with a reason that names what it is."""
    try:
        return open_regular(path)
    except NotRegularFile as exc:
        raise DataError(f"{exc.kind}, not a regular file: reading it could block forever; remove it or put the "
                        "image itself there") from None


def _to_8bit(im: Image.Image) -> Image.Image:
    """An 8-bit "L" or "RGB" copy of ``im``; P images whose palette is grey become "L"."""
    if im.mode in ("L", "RGB"):
        return im
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        values = np.asarray(im, dtype=np.float64)
        if not np.isfinite(values).all():  # a float TIFF with NaN or Inf pixels: no 8-bit value stands for them
            raise DataError(f"{int((~np.isfinite(values)).sum())} pixel(s) are NaN or infinite")
        wide = im.mode.startswith("I;16") or (im.mode == "I" and values.size and values.max() > 255)
        scale = 257.0 if wide else 1.0  # 65535 -> 255; "I" holding 8-bit values and "F" are taken as 0..255
        return Image.fromarray(np.clip(np.rint(values / scale), 0, 255).astype(np.uint8), mode="L")
    if im.mode in GREY_MODES:
        return im.convert("L")
    rgb = im.convert("RGB")
    if im.mode in ("P", "PA"):
        a = np.asarray(rgb)
        if np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 1], a[..., 2]):
            return Image.fromarray(a[..., 0], mode="L")
    return rgb


def _target_mode(images: list[Image.Image], channels: int | None) -> str:
    """``L`` or ``RGB``: from ``channels`` when set, else RGB if any image is in colour."""
    if channels is not None:
        return "L" if channels == 1 else "RGB"
    return "RGB" if any(im.mode == "RGB" for im in images) else "L"


def _convert(im: Image.Image, mode: str) -> Image.Image:
    """``im`` in ``mode`` (RGB -> L with the ITU-R 601-2 luma weights)."""
    if im.mode == mode:
        return im
    if mode == "RGB":
        return im.convert("RGB")
    return im.convert("L")  # Pillow uses the ITU-R 601-2 luma weights, as transforms.LUMA


def _fit(im: Image.Image, size: int | None) -> Image.Image:
    """Resize the shorter side to ``size`` and centre-crop a square (no-op when ``size`` is None)."""
    if size is None:
        return im
    w, h = im.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    left, top = (nw - size) // 2, (nh - size) // 2
    return im.resize((nw, nh), resample).crop((left, top, left + size, top + size))


def _check_same_size(images: list[Image.Image], files: list[Path]) -> None:
    """All images must share one square size (always true after :func:`_fit`)."""
    first = images[0].size
    for im, path in zip(images, files):
        if im.size != first:
            raise DataError(f"images have different sizes ({files[0]} is {first[0]}x{first[1]}, {path} is "
                            f"{im.size[0]}x{im.size[1]}); set data.size=N to resize them")
    if first[0] != first[1]:
        raise DataError(f"images are {first[0]}x{first[1]}, not square ({files[0]}); set data.size=N to resize "
                        "and centre-crop them")
