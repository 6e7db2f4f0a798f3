"""Image-to-image translation data: the ``paired`` (pix2pix) and ``unpaired`` (CycleGAN) folder sources, and the
helpers every translation source shares.

A translation dataset is one :class:`ArrayData` whose ``x`` stacks an A image (its first ``channels_a`` channels)
and a B image (the rest) on the channel axis, both in [-1, 1] and of one size; ``data.a`` and ``data.b`` split them.

* Paired (Isola et al. 2017, "Image-to-image translation with conditional adversarial networks"): row i holds an A
  image and its own B image.
* Unpaired (Zhu et al. 2017, "Unpaired image-to-image translation using cycle-consistent adversarial networks"):
  row i holds an A image and a B image drawn by a fixed random permutation (:func:`unpaired_indices`), fixed so the
  data never moves with train.seed. The pairing carries no information: CycleGAN's losses never compare a row's A
  with its B (each discriminator judges one domain alone; each cycle loss compares an image with its own round
  trip). When the domains differ in size there are max(NA, NB) rows and the smaller domain is cycled through a
  fixed permutation, so every image of both domains appears. ``y`` holds A's labels, ``y_b`` B's.

``paired`` layout (``data.root`` is the folder):

* Splits as in the folder source: ``train/`` and ``test/``; a root with neither is all train split.
* A split folder holds either side-by-side pairs, one image per pair with A on the left half and B on the right, so
  exactly twice as wide as high (the pix2pix datasets' layout), or two sub-folders ``A/`` and ``B/`` whose files
  pair up by name (same name, same size).
* Pixels are read as in the folder source (:func:`gankit.data.folder.open_image`). Channels: ``data.channels``
  forces both sides; otherwise each side is grey when all its images are grey, else RGB, so a grey sketch can pair
  with an RGB photo. Because one side-by-side file has one mode, a half whose three channels are equal everywhere
  counts as grey.
* Size: ``data.size`` resizes each image (shorter side, then centre crop, as the folder source); without it every A
  and B image must be square and of one size.

``unpaired`` layout: ``data.root`` holds ``trainA/``, ``trainB/``, ``testA/`` and ``testB/`` (the CycleGAN
layout). Each domain folder is read as the folder source reads a split folder, so class sub-folders give labels (``y``
indexes A's sorted class folders and sets ``num_classes``; ``y_b`` indexes B's). Each domain keeps its own channels
unless ``data.channels`` forces both. Size: ``data.size``, else the A domain's own (one square size, as the folder
source requires), to which the B images are resized.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..config import DataConfig
from ..errors import DataError
from ..registry import DATASETS
from .base import ArrayData
from .limits import user_path
from .folder import (_check_same_size, _convert, _fit, _target_mode, _visible, list_images, open_image, read_images,
                     split_folder)
from .transforms import check_split, uint8_to_unit

PAIRING_SEED = 20_240_917  # fixed: the unpaired pairing must not move with train.seed
SHOWN = 3  # how many offending files an error names before giving the count
DOMAIN_FOLDERS = ("trainA", "trainB", "testA", "testB")


def stack_translation(a: np.ndarray, b: np.ndarray, name: str, y: np.ndarray | None = None,
                      y_b: np.ndarray | None = None, num_classes: int = 0,
                      classes: tuple[str, ...] = (), paired: bool = False) -> ArrayData:
    """One translation dataset from A and B images, float (N, C, S, S) in [-1, 1] with the same N, H and W.

    ``num_classes`` and ``classes`` describe ``y`` (A's labels) and are dropped when ``y`` is None.
    """
    if a.shape[0] != b.shape[0] or a.shape[2:] != b.shape[2:]:
        raise ValueError(f"A images {a.shape} and B images {b.shape} differ in count or size")
    x = torch.from_numpy(np.concatenate([a, b], axis=1, dtype=np.float32))  # (N, CA + CB, S, S)
    labels = None if y is None else torch.from_numpy(np.asarray(y, dtype=np.int64))
    labels_b = None if y_b is None else torch.from_numpy(np.asarray(y_b, dtype=np.int64))
    k, names = (num_classes, tuple(classes)) if labels is not None else (0, ())
    return ArrayData(x, labels, k, name, names, channels_a=a.shape[1], y_b=labels_b, paired=paired)


def unpaired_indices(n_a: int, n_b: int) -> tuple[np.ndarray, np.ndarray]:
    """Row i of an unpaired dataset holds A image ``ia[i]`` and B image ``ib[i]``: max(n_a, n_b) rows that cover
    every image of both domains. A keeps its order when it is the larger domain; the smaller domain (and B always)
    follows a fixed permutation, repeated cyclically. Depends on nothing but the two sizes."""
    n = max(n_a, n_b)
    rng_a, rng_b = (np.random.default_rng([PAIRING_SEED, k]) for k in (0, 1))
    ia = np.arange(n) if n_a == n else np.resize(rng_a.permutation(n_a), n)  # np.resize repeats cyclically
    ib = np.resize(rng_b.permutation(n_b), n)
    return ia, ib


def _root(root: str | None, source: str) -> Path:
    """``data.root`` as an existing folder, or a one-line error."""
    if root is None:
        raise DataError(f"{source}: data.root is not set; set data.root to the dataset folder")
    path = user_path(root)
    if not path.is_dir():
        raise DataError(f"{source}: {path} is not a folder; set data.root to the dataset folder")
    return path


def _shown(items: list) -> str:
    """The first few items, comma-separated, and how many more there are."""
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return ", ".join(str(i) for i in items[:SHOWN]) + more


def _open_all(files: list[Path]) -> list[Image.Image]:
    """Decode ``files`` (8-bit L or RGB); unreadable ones are collected and reported together."""
    images, bad = [], []
    for path in files:
        try:
            images.append(open_image(path))
        except DataError as exc:
            bad.append(f"{path} ({exc})")
    if bad:
        raise DataError(f"{len(bad)} file(s) cannot be read as images: {_shown(bad)}; fix or remove them")
    return images


def _finish_side(images: list[Image.Image], files: list[Path], size: int | None,
                 channels: int | None) -> np.ndarray:
    """One side's images as float (N, C, S, S) in [-1, 1]: one mode for the side, resized, one square size."""
    mode = _target_mode(images, channels)
    images = [_fit(_convert(im, mode), size) for im in images]
    _check_same_size(images, files)
    pixels = np.stack([np.asarray(im, dtype=np.uint8) for im in images])  # (N, S, S) or (N, S, S, 3)
    pixels = pixels[..., None] if pixels.ndim == 3 else pixels
    return uint8_to_unit(pixels).transpose(0, 3, 1, 2)  # (N, C, S, S)


# ---------------------------------------------------------------------------------------------------- paired

@DATASETS.register("paired")
def load_paired(cfg: DataConfig, split: str = "train", seed: int = 0) -> ArrayData:
    """Aligned A -> B pairs under ``cfg.root`` (side-by-side files or A/ and B/ folders) as a translation dataset."""
    check_split(split, "paired")
    folder = split_folder(str(_root(cfg.root, "paired")), split)
    if (folder / "A").is_dir() or (folder / "B").is_dir():
        a_files, b_files = _two_folder_files(folder)
        a_images, b_images = _read_two_folders(a_files, b_files)
    else:
        a_files = b_files = _side_by_side_files(folder)
        a_images, b_images = _read_side_by_side(a_files, cfg.size)
    a = _finish_side(a_images, a_files, cfg.size, cfg.channels)
    b = _finish_side(b_images, b_files, cfg.size, cfg.channels)
    return stack_translation(a, b, "paired", paired=True)


def _side_by_side_files(folder: Path) -> list[Path]:
    """The image files of a side-by-side split folder (no sub-folders allowed)."""
    entries = sorted(p for p in folder.iterdir() if _visible(p))
    dirs = [p.name + "/" for p in entries if p.is_dir()]
    if dirs:
        raise DataError(f"{folder} holds sub-folders ({_shown(dirs)}); a paired split holds either side-by-side "
                        "image files (A on the left half, B on the right) or exactly the two sub-folders A/ and B/")
    if not entries:
        raise DataError(f"{folder} holds no images; add side-by-side pairs, or A/ and B/ folders, or fix data.root")
    return entries


def _read_side_by_side(files: list[Path], size: int | None) -> tuple[list[Image.Image], list[Image.Image]]:
    """The left (A) and right (B) halves of each file; every file must be exactly twice as wide as high."""
    images = _open_all(files)
    odd = [f"{p} ({im.width}x{im.height})" for p, im in zip(files, images) if im.width % 2]
    if odd:
        raise DataError(f"{len(odd)} side-by-side file(s) have an odd width, so they cannot be cut into a left (A) "
                        f"and a right (B) half: {_shown(odd)}; a pair is exactly twice as wide as high")
    skewed = [f"{p} ({im.width}x{im.height})" for p, im in zip(files, images) if im.width != 2 * im.height]
    if skewed:
        raise DataError(f"{len(skewed)} side-by-side file(s) are not twice as wide as high: {_shown(skewed)}; "
                        "each holds A on the left half and B on the right, both square")
    other = next(((p, im) for p, im in zip(files, images) if im.size != images[0].size), None)
    if size is None and other is not None:
        raise DataError(f"side-by-side pairs have different sizes ({files[0]} is {images[0].width}x"
                        f"{images[0].height}, {other[0]} is {other[1].width}x{other[1].height}); set data.size=N "
                        "to resize them")
    halves = [(_grey_if_equal(im.crop((0, 0, im.height, im.height))),
               _grey_if_equal(im.crop((im.height, 0, im.width, im.height)))) for im in images]
    return [h[0] for h in halves], [h[1] for h in halves]


def _grey_if_equal(im: Image.Image) -> Image.Image:
    """An RGB half whose three channels agree everywhere as an L image (a grey side of a colour file)."""
    if im.mode != "RGB":
        return im
    rgb = np.asarray(im)
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
        return Image.fromarray(np.ascontiguousarray(rgb[..., 0]), mode="L")
    return im


def _two_folder_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """Matching A/ and B/ files by name; names without a partner, stray entries or sub-folders are errors."""
    stray = sorted(p.name for p in folder.iterdir() if _visible(p) and p.name not in ("A", "B"))
    if stray:
        raise DataError(f"{folder} holds A/ or B/ but also {_shown(stray)}; a two-folder paired split holds only "
                        "A/ and B/, with the same file names in both")
    for side, other in (("A", "B"), ("B", "A")):
        if not (folder / side).is_dir():
            raise DataError(f"{folder} has {other}/ but no {side}/ folder; a two-folder paired split holds A/ and "
                            "B/ with the same file names in both")
    names = {side: _file_names(folder / side) for side in ("A", "B")}
    lonely = [f"{len(only)} file(s) in {folder / side} have no partner in {other}/ ({_shown(only)})"
              for side, other in (("A", "B"), ("B", "A")) if (only := sorted(names[side] - names[other]))]
    if lonely:
        raise DataError("; ".join(lonely) + "; each image in A/ needs one of the same name in B/ and vice versa")
    shared = sorted(names["A"])
    return [folder / "A" / n for n in shared], [folder / "B" / n for n in shared]


def _file_names(side: Path) -> set[str]:
    """The visible file names directly in ``side`` (a sub-folder there is an error)."""
    entries = [p for p in side.iterdir() if _visible(p)]
    dirs = sorted(p.name + "/" for p in entries if p.is_dir())
    if dirs:
        raise DataError(f"{side} holds sub-folders ({_shown(dirs)}); put the images directly in {side}")
    if not entries:
        raise DataError(f"{side} holds no images; add the {side.name} side of each pair")
    return {p.name for p in entries}


def _read_two_folders(a_files: list[Path], b_files: list[Path]) -> tuple[list[Image.Image], list[Image.Image]]:
    """Decode both sides; the two images of a pair must have the same size."""
    a_images, b_images = _open_all(a_files), _open_all(b_files)
    differ = [f"{fa} is {ia.width}x{ia.height} but {fb} is {ib.width}x{ib.height}"
              for fa, fb, ia, ib in zip(a_files, b_files, a_images, b_images) if ia.size != ib.size]
    if differ:
        raise DataError(f"{len(differ)} pair(s) differ in size: {_shown(differ)}; the A and B images of a pair "
                        "must be the same size (aligned pixel for pixel)")
    return a_images, b_images


# ---------------------------------------------------------------------------------------------------- unpaired

@DATASETS.register("unpaired")
def load_unpaired(cfg: DataConfig, split: str = "train", seed: int = 0) -> ArrayData:
    """Two unaligned domains under ``cfg.root`` (``<split>A/``, ``<split>B/``) as a translation dataset."""
    check_split(split, "unpaired")
    dir_a, dir_b = _domain_folders(_root(cfg.root, "unpaired"), split)
    files_a, labels_a, classes_a = list_images(dir_a)
    files_b, labels_b, _ = list_images(dir_b)
    pixels_a = read_images(files_a, cfg.size, cfg.channels)  # (NA, S, S, CA) uint8
    pixels_b = read_images(files_b, cfg.size or pixels_a.shape[1], cfg.channels)  # (NB, S, S, CB)
    ia, ib = unpaired_indices(len(pixels_a), len(pixels_b))
    a = uint8_to_unit(pixels_a[ia]).transpose(0, 3, 1, 2)  # (N, CA, S, S)
    b = uint8_to_unit(pixels_b[ib]).transpose(0, 3, 1, 2)  # (N, CB, S, S)
    y = None if labels_a is None else np.asarray(labels_a)[ia]
    y_b = None if labels_b is None else np.asarray(labels_b)[ib]
    return stack_translation(a, b, "unpaired", y, y_b, len(classes_a), tuple(classes_a))


def _domain_folders(root: Path, split: str) -> tuple[Path, Path]:
    """``root/<split>A`` and ``root/<split>B``; a missing one is an error that lists the expected layout."""
    missing = [f"{split}{d}/" for d in "AB" if not (root / f"{split}{d}").is_dir()]
    if missing:
        expected = ", ".join(f"{d}/" for d in DOMAIN_FOLDERS)
        raise DataError(f"{root} has no {' or '.join(missing)} folder; the unpaired source expects {expected} under "
                        "data.root (the CycleGAN layout: one folder of images per domain and split)")
    return root / f"{split}A", root / f"{split}B"
