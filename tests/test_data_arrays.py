"""The arrays source: layout and range rules, keys, splits, labels, and errors naming the file or key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.config import DataConfig
from gankit.data.arrays import load_arrays
from gankit.data.transforms import resize_images
from gankit.errors import DataError, MissingSplitError


def _npz(path: Path, **arrays) -> DataConfig:
    np.savez(path, **arrays)
    return DataConfig(name="arrays", root=str(path))


def _pixels(shape) -> np.ndarray:
    return (np.arange(int(np.prod(shape))) % 256).astype(np.uint8).reshape(shape)


@pytest.mark.parametrize("layout", ["NHWC", "NCHW", "NHW"])
def test_uint8_layouts(tmp_path, layout):
    nhwc = _pixels((4, 8, 8, 1 if layout == "NHW" else 3))
    stored = {"NHWC": nhwc, "NCHW": nhwc.transpose(0, 3, 1, 2), "NHW": nhwc[..., 0]}[layout]
    data = load_arrays(_npz(tmp_path / "d.npz", x=stored, y=np.array([0, 2, 1, 2])))
    expected = nhwc.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1
    assert data.x.shape == expected.shape and data.name == "arrays"
    assert float(np.abs(data.x.numpy() - expected).max()) < 1e-6
    assert data.y.tolist() == [0, 2, 1, 2] and data.num_classes == 3


def test_ambiguous_layout_names_file_and_shape(tmp_path):
    with pytest.raises(DataError, match=r"d.npz: cannot tell the channel axis of shape \(2, 3, 5, 3\)"):
        load_arrays(_npz(tmp_path / "d.npz", x=np.zeros((2, 3, 5, 3), np.uint8)))


def test_float_ranges(tmp_path):
    unit = np.linspace(0, 1, 2 * 16, dtype=np.float32).reshape(2, 4, 4)
    data = load_arrays(_npz(tmp_path / "a.npz", x=unit))
    assert float(np.abs(data.x.numpy()[:, 0] - (2 * unit - 1)).max()) < 1e-6  # min >= 0: read as [0, 1]
    signed = unit * 2 - 1
    data = load_arrays(_npz(tmp_path / "b.npz", x=signed.astype(np.float64)))
    assert data.x.dtype.is_floating_point and float(np.abs(data.x.numpy()[:, 0] - signed).max()) < 1e-6
    with pytest.raises(DataError, match=r"c.npz: float images must lie in \[-1, 1\] or \[0, 1\], found \[0, 255\]"):
        load_arrays(_npz(tmp_path / "c.npz", x=unit * 255))


def test_nan_and_out_of_range_integers(tmp_path):
    bad = np.zeros((2, 4, 4), np.float32)
    bad[0, 1, 1] = np.nan
    bad[1, 2, 2] = np.inf
    with pytest.raises(DataError, match=r"nan.npz: 2 values are NaN or Inf"):
        load_arrays(_npz(tmp_path / "nan.npz", x=bad))
    with pytest.raises(DataError, match=r"int.npz: integer pixels must lie in 0..255, found 0..300"):
        load_arrays(_npz(tmp_path / "int.npz", x=np.array([[[0, 300]]], np.int64)))


def test_points(tmp_path):
    points = np.random.default_rng(0).normal(size=(50, 2)) * 3
    cfg = _npz(tmp_path / "p.npz", x=points, y=np.arange(50) % 5)
    data = load_arrays(cfg)
    assert data.x.shape == (50, 2) and not data.is_image and data.num_classes == 5
    assert float(np.abs(data.x.numpy() - points).max()) < 1e-5
    cfg.size = 8
    with pytest.raises(DataError, match=r"p.npz holds points of shape \(50, 2\), not images; unset data.size"):
        load_arrays(cfg)


@pytest.mark.parametrize("xkey,ykey", [("images", "labels"), ("arr_0", None)])
def test_alternative_keys(tmp_path, xkey, ykey):
    arrays = {xkey: _pixels((3, 5, 5))} | ({ykey: np.array([1, 1, 0])} if ykey else {})
    data = load_arrays(_npz(tmp_path / "k.npz", **arrays))
    assert data.x.shape == (3, 1, 5, 5)
    assert (data.y is None) == (ykey is None)


def test_unknown_keys_are_listed(tmp_path):
    with pytest.raises(DataError, match=r"k.npz has no train data: expected one of the keys x, images, arr_0 \(.*"
                                        r"with y or labels for labels or targets\), found pixels, targets"):
        load_arrays(_npz(tmp_path / "k.npz", pixels=_pixels((2, 4, 4)), targets=np.zeros(2, np.int64)))


def test_test_split(tmp_path):
    cfg = _npz(tmp_path / "s.npz", x=_pixels((4, 4, 4)), y=np.arange(4), x_test=_pixels((2, 4, 4)),
               y_test=np.array([3, 1]))
    test = load_arrays(cfg, "test")
    assert test.x.shape == (2, 1, 4, 4) and test.y.tolist() == [3, 1]
    with pytest.raises(MissingSplitError, match=r"t.npz has no test data: expected one of the keys x_test \(.*\), "
                                                r"found x"):
        load_arrays(_npz(tmp_path / "t.npz", x=_pixels((4, 4, 4))), "test")
    with pytest.raises(DataError, match="valid splits: train, test"):
        load_arrays(cfg, "val")


def test_npy_file(tmp_path):
    np.save(tmp_path / "imgs.npy", _pixels((3, 6, 6, 3)))
    cfg = DataConfig(name="arrays", root=str(tmp_path / "imgs.npy"))
    data = load_arrays(cfg)
    assert data.x.shape == (3, 3, 6, 6) and data.y is None
    with pytest.raises(DataError, match=r"imgs.npy is a .npy file with no test split"):
        load_arrays(cfg, "test")


def test_path_errors(tmp_path):
    with pytest.raises(DataError, match=r"gone.npz not found"):
        load_arrays(DataConfig(name="arrays", root=str(tmp_path / "gone.npz")))
    (tmp_path / "data.csv").write_text("1,2\n")
    with pytest.raises(DataError, match=r"data.csv is not a .npz or .npy file"):
        load_arrays(DataConfig(name="arrays", root=str(tmp_path / "data.csv")))
    with pytest.raises(DataError, match=r"data.root is not set"):
        load_arrays(DataConfig(name="arrays"))
    (tmp_path / "junk.npz").write_bytes(b"definitely not a zip")
    with pytest.raises(DataError, match=r"cannot read .*junk.npz"):
        load_arrays(DataConfig(name="arrays", root=str(tmp_path / "junk.npz")))


def test_pickled_objects_refused(tmp_path):
    objects = np.empty(2, dtype=object)
    objects[:] = [np.zeros((4, 4)), np.ones((4, 4))]
    with pytest.raises(DataError, match=r"cannot read .*obj.npz"):
        load_arrays(_npz(tmp_path / "obj.npz", x=objects))


def test_label_errors(tmp_path):
    x = _pixels((3, 4, 4))
    with pytest.raises(DataError, match=r"f.npz: labels must be a 1-D integer array, got float64"):
        load_arrays(_npz(tmp_path / "f.npz", x=x, y=np.array([0.0, 1.0, 2.0])))
    with pytest.raises(DataError, match=r"n.npz: 2 labels for 3 images"):
        load_arrays(_npz(tmp_path / "n.npz", x=x, y=np.array([0, 1])))
    with pytest.raises(DataError, match=r"m.npz: labels must be non-negative"):
        load_arrays(_npz(tmp_path / "m.npz", x=x, y=np.array([0, -1, 2])))


def test_resize_and_channels(tmp_path):
    x = _pixels((2, 3, 8, 8))  # NCHW, RGB
    data = load_arrays(_npz(tmp_path / "r.npz", x=x))
    cfg = DataConfig(name="arrays", root=str(tmp_path / "r.npz"), size=4, channels=1)
    small = load_arrays(cfg)
    assert small.x.shape == (2, 1, 4, 4)
    luma = (data.x * torch.tensor([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1)).sum(1)
    pooled = luma.reshape(2, 4, 2, 4, 2).mean(dim=(2, 4))  # box filter = 2x2 average
    assert float((small.x[:, 0] - pooled).abs().max()) < 1e-5


@pytest.mark.parametrize("shape,size", [((2, 1, 28, 28), 32), ((2, 3, 8, 16), 4), ((1, 1, 9, 13), 7)])
def test_batched_resize_matches_pillow_per_image(shape, size):
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    h, w = shape[2:]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    top, left = (nh - size) // 2, (nw - size) // 2
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    expected = np.stack([[np.asarray(Image.fromarray(plane, mode="F").resize((nw, nh), resample))
                          [top:top + size, left:left + size] for plane in image] for image in x])
    assert float(np.abs(resize_images(x, size) - expected).max()) < 1e-6
