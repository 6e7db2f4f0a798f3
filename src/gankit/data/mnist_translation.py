"""Three offline image-to-image translation tasks made from MNIST (read as the ``mnist`` source reads it, so
``data.root`` is the MNIST folder). Both are translation datasets (see :mod:`gankit.data.translation`).

* ``mnist_edges`` (paired, sketch -> digit, in the spirit of pix2pix's edges2shoes; Isola et al. 2017): A is the
  outline of each digit, B the digit itself, 1 channel each, labels in ``y``. The outline is the external
  morphological gradient of the binarised digit (pixels above half intensity): the digit dilated by one pixel
  (4-neighbourhood) minus the digit, i.e. a closed line one pixel wide around every stroke, white (+1) on black
  (-1). The full gradient (dilation minus erosion) is two pixels wide, which on MNIST's 2-3 pixel strokes covers
  the stroke itself and lights more pixels than the digit does: a filled shape, not a line drawing.
* ``mnist_colour`` (unpaired, in the spirit of MNIST-M; Ganin et al. 2016, "Domain-adversarial training of neural
  networks", sec. 5.2): A is plain MNIST (1 channel); B is colour digits (3 channels), each digit blended into a
  28x28 patch cut from one of the photos that ship with scikit-learn (china.jpg, flower.jpg) with MNIST-M's blend
  ``|patch - digit|`` per channel, both in [0, 1]. Photo and patch position are drawn from a seed fixed per split.
  A and B come from disjoint halves of the split's images (:func:`split_halves`), so no B is a recoloured copy of
  an A; rows pair them by :func:`gankit.data.translation.unpaired_indices`. ``y`` holds A's labels, ``y_b`` B's.
* ``mnist_colourize`` (paired, grey -> colour, in the spirit of pix2pix's colourisation task; Isola et al. 2017,
  sec. 4.4): B is ``mnist_colour``'s colour digit made from every image of the split, A its luminance (ITU-R BT.601:
  0.299 R + 0.587 G + 0.114 B, 1 channel). Which photo, and which part of it, a grey value came from is not in the
  grey image, so the colours have no single right answer: a network trained on L1 alone predicts their average,
  desaturated, where an adversarial loss asks for colours that look real. Labels in ``y``.

``data.num_samples`` caps the items: the first N digits of the split (``mnist_edges``, ``mnist_colourize``), the
first N of each half (``mnist_colour``). ``data.size`` and ``data.channels`` then apply to each side, as for the
``mnist`` source. Nothing depends on train.seed.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..config import DataConfig
from ..registry import DATASETS
from .base import ArrayData
from .mnist import NUM_CLASSES, locate_mnist, read_mnist
from .transforms import SPLITS, check_split, finish_images, uint8_to_unit
from .translation import stack_translation, unpaired_indices

INK_THRESHOLD = 127  # a pixel above half intensity belongs to the digit
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601 luma weights of R, G, B (they sum to 1)
CROSS = ndimage.generate_binary_structure(2, 1)  # 3x3 4-neighbourhood: a one-pixel outline
HALVES_SEED = 20_240_918  # fixed: which images go to A and which to B never moves with train.seed
PATCH_SEED = 20_240_919  # fixed: photo and patch position of each B image


def read_split(cfg: DataConfig, split: str, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The split's (N, 28, 28) uint8 MNIST digits and (N,) labels, the first ``limit`` of them when set."""
    images, labels = read_mnist(locate_mnist(cfg, split), split)
    return images[:limit], labels[:limit]


def digit_outline(digits: np.ndarray) -> np.ndarray:
    """A one-pixel line around every stroke of (N, H, W) uint8 digits, as a boolean (N, H, W)."""
    ink = digits > INK_THRESHOLD
    grown = ndimage.binary_dilation(ink, structure=CROSS[None])  # (1, 3, 3): never across images
    return grown & ~ink


@DATASETS.register("mnist_edges")
def load_mnist_edges(cfg: DataConfig, split: str = "train", seed: int = 0) -> ArrayData:
    """Paired MNIST outlines (A) and digits (B), (N, 2, S, S) in [-1, 1] (S = ``cfg.size`` or 28), labels 0..9."""
    check_split(split, "mnist_edges")
    digits, labels = read_split(cfg, split, cfg.num_samples)
    outline = np.where(digit_outline(digits), np.float32(1), np.float32(-1))[:, None]  # (N, 1, 28, 28)
    b = uint8_to_unit(digits)[:, None]  # (N, 1, 28, 28)
    return stack_translation(finish_images(outline, cfg), finish_images(b, cfg), "mnist_edges", labels,
                             num_classes=NUM_CLASSES, paired=True)


def split_halves(n: int, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices of the A half and the B half of a split's ``n`` images: a fixed random split, disjoint."""
    order = np.random.default_rng([HALVES_SEED, SPLITS.index(split)]).permutation(n)
    return np.sort(order[:n // 2]), np.sort(order[n // 2:])


def sample_photos() -> np.ndarray:
    """scikit-learn's sample photos (china.jpg, flower.jpg) as one (P, H, W, 3) uint8 array."""
    from sklearn.datasets import load_sample_images  # deferred: importing sklearn costs ~1 s

    photos = load_sample_images().images
    h, w = min(p.shape[0] for p in photos), min(p.shape[1] for p in photos)
    return np.stack([p[:h, :w, :3] for p in photos])


def colour_digits(digits: np.ndarray, split: str) -> np.ndarray:
    """MNIST-M-style colour digits: ``|patch - digit|`` per channel -> float (N, 3, H, W) in [-1, 1].

    Digit i goes into a patch whose photo and position depend only on i and the split, so capping N keeps the
    patches of the first images.
    """
    photos = sample_photos()  # (P, PH, PW, 3)
    n, side = digits.shape[0], digits.shape[1]
    draws = np.random.default_rng([PATCH_SEED, SPLITS.index(split)]).random((n, 3))  # rows are prefix-stable
    which = (draws[:, 0] * len(photos)).astype(np.int64)
    top = (draws[:, 1] * (photos.shape[1] - side + 1)).astype(np.int64)
    left = (draws[:, 2] * (photos.shape[2] - side + 1)).astype(np.int64)
    r = np.arange(side)
    patches = photos[which[:, None, None], (top[:, None] + r)[:, :, None], (left[:, None] + r)[:, None, :]]
    blend = np.abs(patches.astype(np.int16) - digits[..., None]).astype(np.uint8)  # (N, H, W, 3): |p - d| * 255
    return uint8_to_unit(blend).transpose(0, 3, 1, 2)  # (N, 3, H, W)


@DATASETS.register("mnist_colour")
def load_mnist_colour(cfg: DataConfig, split: str = "train", seed: int = 0) -> ArrayData:
    """Unpaired plain digits (A, 1 channel) and colour digits (B, 3 channels) from disjoint halves of MNIST."""
    check_split(split, "mnist_colour")
    digits, labels = read_split(cfg, split)
    half_a, half_b = (half[:cfg.num_samples] for half in split_halves(len(digits), split))
    ia, ib = unpaired_indices(len(half_a), len(half_b))
    a = uint8_to_unit(digits[half_a][ia])[:, None]  # (N, 1, 28, 28)
    b = colour_digits(digits[half_b], split)[ib]  # (N, 3, 28, 28)
    return stack_translation(finish_images(a, cfg), finish_images(b, cfg), "mnist_colour", labels[half_a][ia],
                             labels[half_b][ib], NUM_CLASSES)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of (N, 3, H, W) colour images in [-1, 1] -> (N, 1, H, W) in [-1, 1] (the weights sum to 1,
    so the affine map between [0, 1] and [-1, 1] commutes with it)."""
    return np.einsum("c,nchw->nhw", LUMA, rgb)[:, None].astype(np.float32)


@DATASETS.register("mnist_colourize")
def load_mnist_colourize(cfg: DataConfig, split: str = "train", seed: int = 0) -> ArrayData:
    """Paired grey (A, 1 channel: the luminance of B) and colour digits (B, 3 channels, as ``mnist_colour``'s B),
    labels 0..9."""
    check_split(split, "mnist_colourize")
    digits, labels = read_split(cfg, split, cfg.num_samples)
    b = colour_digits(digits, split)  # (N, 3, 28, 28) in [-1, 1]
    return stack_translation(finish_images(luminance(b), cfg), finish_images(b, cfg), "mnist_colourize", labels,
                             num_classes=NUM_CLASSES, paired=True)
