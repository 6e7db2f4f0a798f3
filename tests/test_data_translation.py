"""Translation data: the ``paired`` and ``unpaired`` folder sources (layouts, exact round trips, every error names the
offending file or folder), the unpaired pairing, and the MNIST tasks ``mnist_edges`` and ``mnist_colour``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.config import DataConfig
from gankit.data.mnist import read_mnist
from gankit.data.mnist_translation import split_halves
from gankit.data.sources import load_dataset
from gankit.data.transforms import uint8_to_unit
from gankit.data.translation import unpaired_indices
from gankit.errors import DataError


def _save(path: Path, pixels: np.ndarray) -> None:
    """Write (H, W) grey or (H, W, 3) RGB uint8 pixels as a PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode="L" if pixels.ndim == 2 else "RGB").save(path)


def _unit(pixels: np.ndarray) -> torch.Tensor:
    """(H, W[, 3]) uint8 pixels as the (C, H, W) float a source returns."""
    x = uint8_to_unit(pixels if pixels.ndim == 3 else pixels[..., None])
    return torch.from_numpy(x.transpose(2, 0, 1).copy())


def _load(name: str, root: Path, split: str = "train", seed: int = 0, **fields):
    return load_dataset(DataConfig(name=name, root=str(root), **fields), split, seed)


RNG = np.random.default_rng(0)


# ---------------------------------------------------------------------------------------------------- paired

def test_side_by_side_pairs_round_trip_exactly(tmp_path):
    pairs = [RNG.integers(0, 256, (8, 16, 3), dtype=np.uint8) for _ in range(3)]
    for i, p in enumerate(pairs):
        _save(tmp_path / "train" / f"p{i}.png", p)
    _save(tmp_path / "test" / "q.png", pairs[0])
    data = _load("paired", tmp_path)
    assert data.is_translation and data.channels_a == 3 and data.x.shape == (3, 6, 8, 8)
    assert data.y is None and data.y_b is None and data.num_classes == 0 and data.name == "paired"
    for i, p in enumerate(pairs):
        assert torch.equal(data.a[i], _unit(p[:, :8])) and torch.equal(data.b[i], _unit(p[:, 8:]))
    assert len(_load("paired", tmp_path, "test")) == 1


def test_a_grey_half_of_a_colour_file_keeps_one_channel_unless_data_channels_forces_three(tmp_path):
    grey = RNG.integers(0, 256, (8, 8), dtype=np.uint8)
    colour = RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    _save(tmp_path / "p.png", np.concatenate([np.repeat(grey[..., None], 3, 2), colour], axis=1))
    data = _load("paired", tmp_path)  # no train/ or test/: the whole folder is the train split
    assert data.channels_a == 1 and data.x.shape == (1, 4, 8, 8)
    assert torch.equal(data.a[0], _unit(grey)) and torch.equal(data.b[0], _unit(colour))
    forced = _load("paired", tmp_path, channels=3)
    assert forced.channels_a == 3 and forced.x.shape == (1, 6, 8, 8)
    assert torch.equal(forced.a[0], _unit(grey).repeat(3, 1, 1))


def test_two_folder_pairs_round_trip_exactly_with_their_own_channels(tmp_path):
    grey = [RNG.integers(0, 256, (8, 8), dtype=np.uint8) for _ in range(4)]
    colour = [RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(4)]
    for i in range(4):
        _save(tmp_path / "train" / "A" / f"{i}.png", grey[i])
        _save(tmp_path / "train" / "B" / f"{i}.png", colour[i])
    data = _load("paired", tmp_path)
    assert data.channels_a == 1 and data.x.shape == (4, 4, 8, 8) and data.x.dtype == torch.float32
    for i in range(4):
        assert torch.equal(data.a[i], _unit(grey[i])) and torch.equal(data.b[i], _unit(colour[i]))
    assert _load("paired", tmp_path, channels=1).x.shape == (4, 2, 8, 8)


def test_data_size_resizes_both_sides_of_a_pair(tmp_path):
    for i in range(2):
        _save(tmp_path / "A" / f"{i}.png", RNG.integers(0, 256, (16, 16), dtype=np.uint8))
        _save(tmp_path / "B" / f"{i}.png", RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    data = _load("paired", tmp_path, size=8)
    assert data.x.shape == (2, 4, 8, 8)
    assert -1.0 <= data.x.min().item() < -0.5 and 0.5 < data.x.max().item() <= 1.0


@pytest.mark.parametrize("width, words", [(15, "odd width"), (12, "not twice as wide as high")])
def test_a_side_by_side_file_that_is_not_two_squares_is_named(tmp_path, width, words):
    _save(tmp_path / "good.png", np.zeros((8, 16), np.uint8))
    _save(tmp_path / "bad.png", np.zeros((8, width), np.uint8))
    with pytest.raises(DataError, match=words) as info:
        _load("paired", tmp_path)
    assert str(tmp_path / "bad.png") in str(info.value) and "good.png" not in str(info.value)


def test_side_by_side_files_of_different_sizes_need_data_size(tmp_path):
    _save(tmp_path / "a.png", np.zeros((8, 16), np.uint8))
    _save(tmp_path / "b.png", np.zeros((4, 8), np.uint8))
    with pytest.raises(DataError, match="data.size") as info:
        _load("paired", tmp_path)
    assert "b.png" in str(info.value)
    assert _load("paired", tmp_path, size=4).x.shape == (2, 2, 4, 4)


def test_files_without_a_partner_are_named(tmp_path):
    for name in "abcde":
        _save(tmp_path / "A" / f"{name}.png", np.zeros((8, 8), np.uint8))
    _save(tmp_path / "B" / "a.png", np.zeros((8, 8), np.uint8))
    _save(tmp_path / "B" / "z.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError) as info:
        _load("paired", tmp_path)
    message = str(info.value)
    assert "4 file(s) in" in message and "b.png, c.png, d.png and 1 more" in message
    assert "1 file(s) in" in message and "z.png" in message and "a.png" not in message


def test_a_pair_of_two_sizes_names_both_files(tmp_path):
    _save(tmp_path / "A" / "x.png", np.zeros((8, 8), np.uint8))
    _save(tmp_path / "B" / "x.png", np.zeros((10, 10), np.uint8))
    with pytest.raises(DataError, match="differ in size") as info:
        _load("paired", tmp_path)
    assert str(tmp_path / "A" / "x.png") in str(info.value) and str(tmp_path / "B" / "x.png") in str(info.value)


def test_paired_layout_errors_name_the_folder_or_file(tmp_path):
    _save(tmp_path / "A" / "x.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError, match="no B/ folder") as info:
        _load("paired", tmp_path)
    assert str(tmp_path) in str(info.value)
    _save(tmp_path / "B" / "x.png", np.zeros((8, 8), np.uint8))
    (tmp_path / "notes.txt").write_text("stray")
    with pytest.raises(DataError, match="notes.txt"):
        _load("paired", tmp_path)
    (tmp_path / "notes.txt").unlink()
    (tmp_path / "B" / "x.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="cannot be read") as info:
        _load("paired", tmp_path)
    assert str(tmp_path / "B" / "x.png") in str(info.value)
    with pytest.raises(DataError, match="data.root is not set"):
        load_dataset(DataConfig(name="paired"))


# ---------------------------------------------------------------------------------------------------- unpaired

@pytest.mark.parametrize("n_a, n_b", [(7, 3), (3, 7), (5, 5), (1, 4)])
def test_the_unpaired_pairing_covers_both_domains_and_is_fixed(n_a, n_b):
    ia, ib = unpaired_indices(n_a, n_b)
    n = max(n_a, n_b)
    assert ia.shape == ib.shape == (n,)
    for idx, k in ((ia, n_a), (ib, n_b)):
        counts = np.bincount(idx, minlength=k)
        assert len(counts) == k and counts.min() >= 1 and counts.max() <= -(-n // k)  # each image, evenly
    again = unpaired_indices(n_a, n_b)
    assert np.array_equal(ia, again[0]) and np.array_equal(ib, again[1])


def _domains(root: Path, n_a: int = 5, n_b: int = 3, side_b: int = 16) -> None:
    """trainA: grey 8x8 images whose value encodes their index; trainB: RGB ones likewise, ``side_b`` square."""
    for i in range(n_a):
        _save(root / "trainA" / f"{i}.png", np.full((8, 8), 20 * (i + 1), np.uint8))
    for i in range(n_b):
        _save(root / "trainB" / f"{i}.png", np.full((side_b, side_b, 3), 20 * (i + 1), np.uint8))


def test_unpaired_rows_cover_every_image_of_both_domains_whatever_the_seed(tmp_path):
    _domains(tmp_path)  # B is 16x16: resized to A's 8x8
    data = _load("unpaired", tmp_path)
    assert data.channels_a == 1 and data.x.shape == (5, 4, 8, 8) and data.name == "unpaired"
    index_a = torch.round((data.a[:, 0, 0, 0] + 1) * 127.5 / 20).long() - 1  # constant images: read the index back
    index_b = torch.round((data.b[:, 0, 0, 0] + 1) * 127.5 / 20).long() - 1
    assert sorted(index_a.tolist()) == [0, 1, 2, 3, 4]
    assert set(index_b.tolist()) == {0, 1, 2} and np.bincount(index_b.numpy()).max() == 2
    ia, ib = unpaired_indices(5, 3)
    assert index_a.tolist() == ia.tolist() and index_b.tolist() == ib.tolist()
    assert torch.equal(data.x, _load("unpaired", tmp_path, seed=9).x)  # independent of train.seed
    assert _load("unpaired", tmp_path, size=4).x.shape == (5, 4, 4, 4)


def test_unpaired_labels_come_from_class_folders_of_each_domain(tmp_path):
    for i, cls in enumerate(["cat", "cat", "dog"]):
        _save(tmp_path / "trainA" / cls / f"{i}.png", np.full((8, 8), 30 * i, np.uint8))
    for i in range(2):
        _save(tmp_path / "trainB" / f"{i}.png", np.zeros((8, 8, 3), np.uint8))
    data = _load("unpaired", tmp_path)
    ia, _ = unpaired_indices(3, 2)
    assert data.num_classes == 2 and data.classes == ("cat", "dog") and data.y_b is None
    assert data.y.tolist() == [[0, 0, 1][i] for i in ia]


def test_unpaired_errors_name_the_missing_folder_and_the_layout(tmp_path):
    _save(tmp_path / "trainA" / "0.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError, match=r"no trainB/ folder") as info:
        _load("unpaired", tmp_path)
    assert "trainA/, trainB/, testA/, testB/" in str(info.value) and str(tmp_path) in str(info.value)
    with pytest.raises(DataError, match=r"no testA/ or testB/ folder"):
        _load("unpaired", tmp_path, "test")


def test_unpaired_a_domain_of_mixed_sizes_needs_data_size(tmp_path):
    _domains(tmp_path, side_b=8)
    _save(tmp_path / "trainA" / "big.png", np.zeros((12, 12), np.uint8))
    with pytest.raises(DataError, match="data.size") as info:
        _load("unpaired", tmp_path)
    assert "big.png" in str(info.value)
    assert _load("unpaired", tmp_path, size=8).x.shape == (6, 4, 8, 8)


# ---------------------------------------------------------------------------------------------------- MNIST tasks

def _lit_in_2x2_blocks(lit: np.ndarray) -> float:
    """The share of lit pixels of (N, H, W) masks that belong to a fully lit 2x2 block (thick strokes)."""
    block = lit[:, :-1, :-1] & lit[:, 1:, :-1] & lit[:, :-1, 1:] & lit[:, 1:, 1:]
    covered = np.zeros_like(lit)
    for dy in (0, 1):
        for dx in (0, 1):
            covered[:, dy:dy + block.shape[1], dx:dx + block.shape[2]] |= block
    return (covered & lit).sum() / lit.sum()


def test_mnist_edges_pairs_a_thin_outline_with_its_digit(mnist_root):
    data = _load("mnist_edges", mnist_root, num_samples=2000)
    digits, labels = read_mnist(mnist_root, "train")
    assert data.channels_a == 1 and data.x.shape == (2000, 2, 28, 28) and data.num_classes == 10
    assert torch.equal(data.b[:, 0], torch.from_numpy(uint8_to_unit(digits[:2000])))
    assert data.y.tolist() == labels[:2000].tolist() and data.y_b is None
    assert set(torch.unique(data.a).tolist()) == {-1.0, 1.0}  # a white-on-black line drawing
    a, b = (data.a[:, 0] > 0).numpy(), (data.b[:, 0] > 0).numpy()
    assert 0.5 < a.mean() / b.mean() < 0.85  # fewer lit pixels than the digit: a line, not a filled shape
    assert _lit_in_2x2_blocks(a) < 0.05 and _lit_in_2x2_blocks(b) > 0.8  # one pixel wide; strokes are not
    near = np.zeros_like(b)  # B's strokes grown by one pixel (4-neighbourhood)
    near[:, 1:] |= b[:, :-1]
    near[:, :-1] |= b[:, 1:]
    near[:, :, 1:] |= b[:, :, :-1]
    near[:, :, :-1] |= b[:, :, 1:]
    assert not (a & b).any() and not (a & ~near).any()  # lit only right next to B's strokes, around them
    assert a.reshape(2000, -1).any(1).all()  # every digit has an outline
    assert _load("mnist_edges", mnist_root, "test", num_samples=10, size=32).x.shape == (10, 2, 32, 32)


def _edge_magnitude(x: np.ndarray) -> np.ndarray:
    """Per-image gradient magnitude of (N, H, W) images (central differences, never across images)."""
    gy, gx = np.gradient(x, axis=(1, 2))
    return np.hypot(gy, gx)


def _row_correlation(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    u, v = u.reshape(len(u), -1), v.reshape(len(v), -1)
    u, v = u - u.mean(1, keepdims=True), v - v.mean(1, keepdims=True)
    return (u * v).sum(1) / np.sqrt((u * u).sum(1) * (v * v).sum(1) + 1e-12)


def test_mnist_colour_blends_disjoint_halves_into_recognisable_colour_digits(mnist_root):
    n = 1000
    data = _load("mnist_colour", mnist_root, num_samples=n)
    digits, labels = read_mnist(mnist_root, "train")
    half_a, half_b = split_halves(len(digits), "train")
    ia, ib = unpaired_indices(n, n)
    assert data.channels_a == 1 and data.x.shape == (n, 4, 28, 28) and data.num_classes == 10
    assert torch.equal(data.a[:, 0], torch.from_numpy(uint8_to_unit(digits[half_a[:n]][ia])))
    assert data.y.tolist() == labels[half_a[:n]][ia].tolist() and data.y_b.tolist() == labels[half_b[:n]][ib].tolist()
    b = data.b.numpy()
    assert -1.0 <= b.min() < -0.9 and 0.9 < b.max() <= 1.0
    assert 0.05 < b.std(axis=1).mean() < 0.5  # colour: the channels of a pixel differ
    luminance = np.tensordot(np.array([0.299, 0.587, 0.114], np.float32), b, axes=([0], [1]))  # (n, 28, 28)
    source = digits[half_b[:n]][ib].astype(np.float32) / 255
    own = _row_correlation(_edge_magnitude(luminance), _edge_magnitude(source)).mean()
    other = _row_correlation(_edge_magnitude(luminance), _edge_magnitude(np.roll(source, 1, 0))).mean()
    assert 0.55 < own < 0.95 and own - other > 0.3  # B's edges trace its own digit, not another one
    assert torch.equal(data.x, _load("mnist_colour", mnist_root, seed=7, num_samples=n).x)


def test_mnist_colour_halves_are_disjoint_and_cover_the_split(mnist_root):
    for n, split in ((60_000, "train"), (10_000, "test")):
        half_a, half_b = split_halves(n, split)
        assert len(half_a) == len(half_b) == n // 2 and not set(half_a) & set(half_b)
        assert np.array_equal(np.sort(np.concatenate([half_a, half_b])), np.arange(n))
    data = _load("mnist_colour", mnist_root, "test")
    assert data.x.shape == (5000, 4, 28, 28) and data.y_b.shape == (5000,)
    digits, labels = read_mnist(mnist_root, "test")
    half_a, _ = split_halves(len(digits), "test")
    assert torch.equal(data.a[:, 0], torch.from_numpy(uint8_to_unit(digits[half_a])))  # A: all of its half, in order


def test_mnist_colourize_pairs_each_colour_digit_with_its_own_luminance(mnist_root):
    from gankit.data.mnist_translation import colour_digits

    n = 500
    data = _load("mnist_colourize", mnist_root, num_samples=n)
    digits, labels = read_mnist(mnist_root, "train")
    assert data.paired and data.channels_a == 1 and data.x.shape == (n, 4, 28, 28) and data.num_classes == 10
    assert data.y.tolist() == labels[:n].tolist()
    assert torch.equal(data.b, torch.from_numpy(colour_digits(digits[:n], "train")))  # mnist_colour's B, every image
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    assert torch.allclose(data.a, (data.b * weights).sum(1, keepdim=True), atol=1e-6)  # A is B's luma, in [-1, 1]
    assert 0.05 < data.b.std(dim=1).mean() < 0.5 and data.a.std() > 0.2  # B has colour, A has the shapes
    test = _load("mnist_colourize", mnist_root, "test")
    assert test.x.shape == (10_000, 4, 28, 28) and test.paired  # every test digit, not a half
    assert torch.equal(data.x, _load("mnist_colourize", mnist_root, seed=3, num_samples=n).x)  # seed-independent
