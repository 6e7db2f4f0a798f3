"""The mnist source: folder layouts, verification and errors on small fake files, then the real files when present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from gankit.config import DataConfig
from gankit.data import mnist
from gankit.data.idx import file_md5, write_idx
from gankit.data.mnist import load_mnist, locate_mnist, read_mnist
from gankit.errors import DataError


def _fake_mnist(folder: Path, n_train: int = 12, n_test: int = 6, suffix: str = ".gz") -> dict[str, str]:
    """Write small fake MNIST files into ``folder``; return their checksums."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    sums = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        for stem, array in ((f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)),
                            (f"{prefix}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))):
            sums[stem] = file_md5(write_idx(folder / f"{stem}{suffix}", array))
    return sums


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(mnist.ENV_VAR, raising=False)


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_read_fake_files(tmp_path, suffix):
    sums = _fake_mnist(tmp_path, suffix=suffix)
    images, labels = read_mnist(tmp_path, "train", checksums=sums)
    assert images.shape == (12, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, np.arange(12) % 10)
    assert read_mnist(tmp_path, "test", checksums=sums)[0].shape == (6, 28, 28)


def test_known_checksums_reject_other_files(tmp_path, no_env):
    _fake_mnist(tmp_path)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz fails its checksum.*6bbc9ace"):
        load_mnist(DataConfig(name="mnist", root=str(tmp_path)))


def test_root_may_be_the_folder_or_its_parent(tmp_path, monkeypatch):
    _fake_mnist(tmp_path / "data" / "mnist")
    monkeypatch.setenv(mnist.ENV_VAR, str(tmp_path / "data"))
    assert locate_mnist(DataConfig(name="mnist"), "train") == tmp_path / "data" / "mnist"
    monkeypatch.setenv(mnist.ENV_VAR, str(tmp_path / "data" / "mnist"))
    assert locate_mnist(DataConfig(name="mnist"), "test") == tmp_path / "data" / "mnist"
    other = tmp_path / "other"
    _fake_mnist(other)
    assert locate_mnist(DataConfig(name="mnist", root=str(other)), "train") == other  # data.root wins


def test_missing_files_say_where_and_how(tmp_path, no_env):
    with pytest.raises(DataError) as err:
        load_mnist(DataConfig(name="mnist", root=str(tmp_path / "empty")))
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / "empty") in message and "train-images-idx3-ubyte" in message
    assert "GANKIT_DATA" in message and "data.download=true" in message


def test_missing_label_file_is_named(tmp_path):
    sums = _fake_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\[\.gz\] not found"):
        read_mnist(tmp_path, "test", checksums=sums)


def test_count_mismatch_and_wrong_side(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((5, 28, 28), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte holds 5 images but .*labels-idx1-ubyte holds 4"):
        read_mnist(tmp_path, "train", checksums=None)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((4, 27, 28), np.uint8))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte holds 27x28 images"):
        read_mnist(tmp_path, "train", checksums=None)


def test_bad_split(tmp_path):
    with pytest.raises(DataError, match="valid splits: train, test"):
        load_mnist(DataConfig(name="mnist", root=str(tmp_path)), split="val")


def test_download_used_only_when_enabled(tmp_path, no_env, monkeypatch):
    from gankit.data import download

    calls = []

    def fake_download(dest: Path) -> Path:
        calls.append(dest)
        _fake_mnist(dest)
        return dest

    monkeypatch.setattr(download, "download_mnist", fake_download)
    with pytest.raises(DataError):
        locate_mnist(DataConfig(name="mnist", root=str(tmp_path)), "train")
    assert calls == []
    assert locate_mnist(DataConfig(name="mnist", root=str(tmp_path), download=True), "train") == tmp_path
    assert calls == [tmp_path]


# ----------------------------------------------------------------------------------------------------------------
# The real files (skipped where absent)


def _real_root() -> Path | None:
    candidates = [os.environ.get(mnist.ENV_VAR), Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"]
    for candidate in candidates:
        if candidate:
            for folder in (Path(candidate), Path(candidate) / "mnist"):
                if (folder / "t10k-images-idx3-ubyte.gz").is_file() or (folder / "t10k-images-idx3-ubyte").is_file():
                    return folder
    return None


@pytest.fixture(scope="module")
def real_root() -> Path:
    root = _real_root()
    if root is None:
        pytest.skip("real MNIST not found (set GANKIT_DATA or provide ../shared/data/mnist)")
    return root


@pytest.fixture(scope="module")
def real_train(real_root):
    return load_mnist(DataConfig(name="mnist", root=str(real_root)), "train")


@pytest.fixture(scope="module")
def real_test(real_root):
    return load_mnist(DataConfig(name="mnist", root=str(real_root)), "test")


def test_real_train_split(real_train):
    assert real_train.x.shape == (60000, 1, 28, 28) and real_train.num_classes == 10 and real_train.name == "mnist"
    assert float(real_train.x.min()) == -1.0 and float(real_train.x.max()) == 1.0
    assert abs(float(real_train.x.mean()) - (2 * 0.1307 - 1)) < 2e-3  # the well-known pixel mean 0.1307
    counts = np.bincount(real_train.y.numpy(), minlength=10)
    assert counts[1] == 6742 and counts[5] == 5421 and counts.sum() == 60000


def test_real_test_split(real_test):
    assert real_test.x.shape == (10000, 1, 28, 28)
    assert np.bincount(real_test.y.numpy(), minlength=10).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028,
                                                                       974, 1009]


def test_real_resize_is_area_average(real_root, real_test):
    small = load_mnist(DataConfig(name="mnist", root=str(real_root), size=14), "test")
    assert small.x.shape == (10000, 1, 14, 14)
    pooled = real_test.x.reshape(10000, 1, 14, 2, 14, 2).mean(dim=(3, 5))
    assert float((small.x - pooled).abs().max()) < 1e-5


def test_real_via_env_parent_and_rgb(real_root, monkeypatch):
    if real_root.name != "mnist":
        pytest.skip("the real files are not in a folder called mnist")
    monkeypatch.setenv(mnist.ENV_VAR, str(real_root.parent))
    rgb = load_mnist(DataConfig(name="mnist", channels=3), "test")
    assert rgb.x.shape == (10000, 3, 28, 28)
    assert float((rgb.x[:, 0] - rgb.x[:, 2]).abs().max()) == 0.0
