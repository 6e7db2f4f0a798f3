"""Bad input, tried as a new user would through the command line: each ends in one line that names the file or key
and says what to do, exits 2 without a traceback, and loses nothing (an existing run is left as it was, even with
--overwrite, since the data is read before anything is replaced)."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gankit.cli import main
from cli_helpers import one_line_error, train_args



def _png(path: Path, size=(8, 8), mode="L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size).save(path)


def _copy_mnist(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.glob("*-ubyte*"):
        shutil.copy(f, dst / f.name)
    return dst


# -- each case builds its bad input in tmp and returns (overrides, words the one-line error must contain) --------


def truncated_gzip_idx(tmp, mnist_root):
    root = _copy_mnist(mnist_root, tmp / "mnist")
    f = root / "train-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[:5000])
    return ["data.name=mnist", f"data.root={root}"], ["train-images-idx3-ubyte.gz", "corrupt gzip", "fetch it again"]


def truncated_raw_idx(tmp, mnist_root):
    root = _copy_mnist(mnist_root, tmp / "mnist")
    gz = root / "train-labels-idx1-ubyte.gz"
    (root / "train-labels-idx1-ubyte").write_bytes(gzip.decompress(gz.read_bytes())[:-100])
    gz.unlink()
    return ["data.name=mnist", f"data.root={root}"], ["train-labels-idx1-ubyte", "checksum", "fetch it again"]


def wrong_magic(tmp, mnist_root):
    root = _copy_mnist(mnist_root, tmp / "mnist")
    gz = root / "train-labels-idx1-ubyte.gz"
    data = bytearray(gzip.decompress(gz.read_bytes()))
    data[3] = 3  # 0x00000803: an image file's magic where a label file's belongs
    gz.write_bytes(gzip.compress(bytes(data)))
    return ["data.name=mnist", f"data.root={root}"], ["train-labels-idx1-ubyte.gz", "fetch it again"]


def missing_mnist(tmp, mnist_root):
    (tmp / "empty").mkdir()
    return ["data.name=mnist", f"data.root={tmp / 'empty'}"], ["MNIST train files not found", "data.root"]


def non_image_in_folder(tmp, _):
    (tmp / "imgs").mkdir(parents=True)
    (tmp / "imgs" / "notes.txt").write_text("hello")  # beside images it is skipped with a note; alone, an error
    return ["data.name=folder", f"data.root={tmp / 'imgs'}"], ["holds no images", "notes.txt"]


def corrupt_image_in_folder(tmp, _):
    _png(tmp / "imgs" / "a.png")
    (tmp / "imgs" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return ["data.name=folder", f"data.root={tmp / 'imgs'}"], ["b.png", "cannot be read"]


def mixed_sizes(tmp, _):
    _png(tmp / "imgs" / "a.png", (8, 8))
    _png(tmp / "imgs" / "b.png", (12, 12))
    return ["data.name=folder", f"data.root={tmp / 'imgs'}"], ["data.size"]


def empty_folder(tmp, _):
    (tmp / "imgs").mkdir()
    return ["data.name=folder", f"data.root={tmp / 'imgs'}"], ["holds no images"]


def decompression_bomb(tmp, _):
    Image.new("1", (8193, 8193)).save(tmp / "bomb.png")  # 67.1 M pixels, a few kB on disk
    _png(tmp / "imgs" / "a.png")
    shutil.move(tmp / "bomb.png", tmp / "imgs" / "bomb.png")
    return ["data.name=folder", f"data.root={tmp / 'imgs'}"], ["bomb.png", "decompression bomb"]


def nan_in_arrays(tmp, _):
    x = np.zeros((10, 8, 8, 1), np.float32)
    x[3, 2, 2, 0] = np.nan
    np.savez(tmp / "x.npz", x=x)
    return ["data.name=arrays", f"data.root={tmp / 'x.npz'}"], ["x.npz", "NaN"]


def unknown_key(tmp, _):
    return ["train.stepz=3"], ["train.stepz", "valid keys"]


def wrong_type(tmp, _):
    return ["train.steps=many"], ["train.steps", "many"]


def zero_d_steps(tmp, _):
    return ["recipe.d_steps=0"], ["recipe.d_steps"]


def negative_lr(tmp, _):
    return ["optim.lr_d=-0.001"], ["optim.lr_d", "positive"]


CASES = [truncated_gzip_idx, truncated_raw_idx, wrong_magic, missing_mnist, non_image_in_folder,
         corrupt_image_in_folder, mixed_sizes, empty_folder, decompression_bomb, nan_in_arrays, unknown_key,
         wrong_type, zero_d_steps, negative_lr]
NEEDS_MNIST = {truncated_gzip_idx, truncated_raw_idx, wrong_magic}


@pytest.fixture
def maybe_mnist(request):
    """Real MNIST for the cases that damage a copy of it (they skip when it is absent)."""
    return request.getfixturevalue("mnist_root") if request.node.callspec.params["case"] in NEEDS_MNIST else None


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_bad_input_is_one_line_and_loses_nothing(tmp_path, capsys, case, maybe_mnist):
    overrides, words = case(tmp_path, maybe_mnist)
    fresh = tmp_path / "fresh"
    err = one_line_error(capsys, train_args(fresh, *overrides))
    for word in words:
        assert word in err, err
    assert not fresh.exists()  # a failed start leaves no half-made run behind


def test_an_existing_run_survives_bad_input_even_with_overwrite(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(train_args(run)) == 0
    before = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    one_line_error(capsys, train_args(run, "data.name=folder", f"data.root={tmp_path / 'nowhere'}"))
    err = one_line_error(capsys, train_args(run, "data.name=folder", f"data.root={tmp_path / 'nowhere'}")
                         + ["--overwrite"])
    assert "nowhere" in err
    after = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert after == before


def test_a_pickle_offered_as_a_checkpoint_is_refused(tmp_path, capsys):
    import torch

    path = tmp_path / "model.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    err = one_line_error(capsys, ["sample", str(path), "-o", str(tmp_path / "x.png")])
    assert "pickle" in err and "never unpickles" in err
