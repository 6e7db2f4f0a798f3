"""The folder source: class sub-folders, splits, colour modes, sizes, and errors that name the bad file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gankit.config import DataConfig
from gankit.data.folder import load_folder, read_images
from gankit.errors import DataError

RED, GREY = (255, 0, 0), 128


def _save(path: Path, mode: str = "RGB", size: tuple[int, int] = (8, 8), color=RED) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)
    return path


def _cfg(root: Path, **kw) -> DataConfig:
    return DataConfig(name="folder", root=str(root), **kw)


def _unit(v: float) -> float:
    return v / 127.5 - 1


def test_class_folders_and_mixed_modes(tmp_path):
    _save(tmp_path / "cat" / "a.png")  # red, RGB
    _save(tmp_path / "cat" / "deeper" / "b.JPG", "L", color=GREY)
    _save(tmp_path / "ant" / "c.bmp", "L", color=GREY)
    (tmp_path / "ant" / ".DS_Store").write_bytes(b"junk")  # hidden: skipped
    data = load_folder(_cfg(tmp_path))
    assert data.x.shape == (3, 3, 8, 8) and data.num_classes == 2 and data.name == "folder"
    assert data.y.tolist() == [0, 1, 1]  # ant=0, cat=1 (sorted)
    assert abs(float(data.x[0].mean()) - _unit(GREY)) < 1e-6  # grey replicated into RGB
    red = data.x[1, :, 0, 0].tolist()
    assert abs(red[0] - 1) < 1e-6 and abs(red[1] + 1) < 1e-6 and abs(red[2] + 1) < 1e-6


def test_grey_when_all_grey_and_forced_grey(tmp_path):
    _save(tmp_path / "a.png", "L", color=10)
    _save(tmp_path / "b.gif", "L", color=200)
    data = load_folder(_cfg(tmp_path))
    assert data.x.shape == (2, 1, 8, 8) and data.y is None and data.num_classes == 0
    _save(tmp_path / "c.tiff")  # red
    grey = load_folder(_cfg(tmp_path, channels=1))
    assert grey.x.shape == (3, 1, 8, 8)
    assert abs(float(grey.x[2].mean()) - _unit(76)) < 1e-6  # 0.299 * 255 = 76.2


def test_alpha_palette_and_16_bit_modes(tmp_path):
    _save(tmp_path / "rgba.png", "RGBA", color=(0, 0, 255, 10))
    _save(tmp_path / "la.png", "LA", color=(255, 0))
    Image.new("P", (8, 8), 0).save(tmp_path / "p.gif")  # default palette entry 0 = black
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(tmp_path / "i16.png")
    data = load_folder(_cfg(tmp_path))
    assert data.x.shape == (4, 3, 8, 8)
    means = {n: data.x[i].mean(dim=(1, 2)).tolist() for i, n in enumerate(["i16", "la", "p", "rgba"])}
    assert means["i16"] == pytest.approx([1, 1, 1], abs=1e-6)
    assert means["la"] == pytest.approx([1, 1, 1], abs=1e-6)  # alpha dropped, not composited
    assert means["p"] == pytest.approx([-1, -1, -1], abs=1e-6)
    assert means["rgba"] == pytest.approx([-1, -1, 1], abs=1e-6)


def test_train_test_split_folders(tmp_path):
    for i in range(3):
        _save(tmp_path / "train" / "x" / f"{i}.png")
    _save(tmp_path / "test" / "x" / "0.png")
    assert len(load_folder(_cfg(tmp_path), "train")) == 3
    assert len(load_folder(_cfg(tmp_path), "test")) == 1


def test_test_split_needs_a_test_folder(tmp_path):
    _save(tmp_path / "a.png")
    with pytest.raises(DataError, match=r"has no test/ folder.*move the images into"):
        load_folder(_cfg(tmp_path), "test")
    _save(tmp_path / "split" / "train" / "a.png")
    with pytest.raises(DataError, match=r"split has no test/ folder; add .*split/test"):
        load_folder(_cfg(tmp_path / "split"), "test")


def test_corrupt_files_are_named_and_counted(tmp_path):
    _save(tmp_path / "good.png")
    for i in range(5):
        (tmp_path / f"bad{i}.png").write_bytes(b"not an image at all")
    with pytest.raises(DataError) as err:
        load_folder(_cfg(tmp_path))
    message = str(err.value)
    assert "\n" not in message and message.startswith("5 file(s) cannot be read")
    assert "bad0.png" in message and "bad2.png" in message and "bad3.png" not in message and "2 more" in message


def test_non_image_files_are_skipped_with_a_note_and_truncated_ones_refused(tmp_path, capsys):
    _save(tmp_path / "c0" / "good.png")
    _save(tmp_path / "c1" / "good.png")
    (tmp_path / "notes.txt").write_text("hello")  # beside the class folders: no "mixes files" error either
    (tmp_path / "c1" / "README.md").write_text("about")
    data = load_folder(_cfg(tmp_path))
    assert len(data) == 2 and data.num_classes == 2
    err = capsys.readouterr().err
    assert "skipped 1 file(s) in" in err and "notes.txt" in err and "README.md" in err
    load_folder(_cfg(tmp_path))
    assert capsys.readouterr().err == ""  # said once per folder
    only_text = tmp_path / "text"
    only_text.mkdir()
    (only_text / "a.txt").write_text("x")
    with pytest.raises(DataError, match="holds no images"):
        load_folder(_cfg(only_text))


def test_truncated_and_empty_image_files_are_named_in_plain_words(tmp_path):
    _save(tmp_path / "good.png")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "fake.jpg").write_bytes(b"hello, not a jpeg")
    with pytest.raises(DataError) as err:
        load_folder(_cfg(tmp_path))
    message = str(err.value)
    assert "empty.png (an empty file)" in message and "fake.jpg (not a readable JPG image" in message
    assert "_io" not in message and "UnidentifiedImageError" not in message
    (tmp_path / "empty.png").unlink()
    (tmp_path / "fake.jpg").unlink()
    whole = _save(tmp_path / "cut.png", size=(64, 64)).read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match=r"1 file\(s\) cannot be read as images: .*cut.png"):
        load_folder(_cfg(tmp_path))


def test_empty_and_mixed_layouts(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty holds no images"):
        load_folder(_cfg(tmp_path / "empty"))
    _save(tmp_path / "mixed" / "loose.png")
    _save(tmp_path / "mixed" / "dogs" / "d.png")
    with pytest.raises(DataError, match=r"mixed mixes files \(loose.png, ...\) with class sub-folders \(dogs/"):
        load_folder(_cfg(tmp_path / "mixed"))
    with pytest.raises(DataError, match=r"missing is not a folder"):
        load_folder(_cfg(tmp_path / "missing"))


def test_mixed_sizes_need_data_size(tmp_path):
    _save(tmp_path / "a.png", size=(8, 8))
    _save(tmp_path / "b.png", size=(12, 12))
    with pytest.raises(DataError, match=r"a.png is 8x8.*b.png is 12x12.*set data.size=N to resize"):
        load_folder(_cfg(tmp_path))
    data = load_folder(_cfg(tmp_path, size=4))
    assert data.x.shape == (2, 3, 4, 4)
    assert float((data.x[:, 0] - 1).abs().max()) < 1e-6  # a flat colour survives resampling


def test_resize_shorter_side_then_centre_crop(tmp_path):
    pixels = np.zeros((8, 16), np.uint8)  # 16 wide, 8 high: black left half, white right half
    pixels[:, 8:] = 255
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    with pytest.raises(DataError, match=r"16x8, not square.*wide.png"):
        load_folder(_cfg(tmp_path))
    data = load_folder(_cfg(tmp_path, size=4))  # 16x8 -> 8x4 -> crop columns 2..6
    row = data.x[0, 0, 0].tolist()
    assert row == pytest.approx([-1, -1, 1, 1], abs=1e-6)
    assert load_folder(_cfg(tmp_path, size=32)).x.shape == (1, 1, 32, 32)


def test_pixel_limit_is_reported(tmp_path):
    path = _save(tmp_path / "big.png", size=(16, 16))
    with pytest.raises(DataError, match=r"big.png \(16x16 pixels exceeds the limit of 100; possible decompression"):
        read_images([path], None, None, max_pixels=100)
    assert read_images([path], None, None, max_pixels=256).shape == (1, 16, 16, 3)
