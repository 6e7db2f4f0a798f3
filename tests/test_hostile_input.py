"""Hostile input refused before it costs anything (issue 24, items 9 and 10): files whose headers claim more than
they hold or than memory allows, zip and gzip bombs, and input that would hang (a truncation threshold of 1e-30, a
named pipe among the images, a billion evaluation samples). Each ends, through the command line, in one line, exit
code 2, no traceback and no run directory; memory is measured with tracemalloc (numpy, gzip and zipfile report to
it), never with a clock.

The bombs are built in O(compressed size): after a full flush, deflate's output for a block of zeros repeats
exactly, so one block is compressed and its bytes repeated.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import struct
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import numpy.lib.format as npformat
import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.config import MAX_EVAL_SAMPLES, TrainConfig
from gankit.data import limits
from gankit.data.download import _size_cap
from gankit.data.idx import encode_idx, file_md5
from gankit.data.mnist_files import MNIST_MD5, MNIST_SIZES
from gankit.data.npyfile import load_npy, load_npz
from gankit.errors import ConfigError, DataError
from gankit.latent import truncated_normal
from cli_helpers import one_line_error, train_args

BLOCK = 1 << 24  # bytes of zeros per repeated deflate block
MiB = 1 << 20


@contextlib.contextmanager
def peak_memory():
    """Yields a list that receives the peak of traced allocations (bytes) made inside the block."""
    result: list[int] = []
    tracemalloc.start()
    try:
        yield result
        result.append(tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()


@contextlib.contextmanager
def deadline(seconds: int):
    """Raise in the main thread if the block runs past ``seconds`` (a hang fails the test instead of the suite)."""
    def _raise(signum, frame):
        raise TimeoutError(f"still running after {seconds} s: it hangs")

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def deflate_zeros(prefix: bytes, blocks: int, wbits: int) -> bytes:
    """A deflate stream (raw for wbits -15, gzip for 31) of ``prefix`` then ``blocks`` x 16 MiB of zeros. A gzip
    trailer, when there is one, is that of the prefix and two blocks: readers that stop early never see it."""
    c = zlib.compressobj(9, zlib.DEFLATED, wbits)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(bytes(BLOCK)) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(bytes(BLOCK)) + c.flush(zlib.Z_FULL_FLUSH)
    assert block == again  # the repetition the construction relies on
    return head + block * blocks + c.flush()


def npy_header(shape: tuple[int, ...], descr: str = "|u1") -> bytes:
    """A version 1.0 .npy header (magic string included) declaring ``shape`` of ``descr``."""
    buf = io.BytesIO()
    npformat.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def zip_one_member(name: str, deflated: bytes, file_size: int, crc: int = 0) -> bytes:
    """A zip archive holding one deflated member whose stated uncompressed size is ``file_size`` (true or not)."""
    raw = name.encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(deflated), file_size, len(raw), 0)
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, len(deflated), file_size,
                          len(raw), 0, 0, 0, 0, 0, 0)
    body = local + raw + deflated
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central) + len(raw), len(body), 0)
    return body + central + raw + end


# ---------------------------------------------------------------------------------------------------- the limit


def test_limit_defaults_to_an_eighth_of_memory_and_reads_the_environment(monkeypatch):
    monkeypatch.delenv(limits.ENV_VAR, raising=False)
    memory = limits.physical_memory()
    limit, source = limits.max_bytes()
    assert limit == (memory // 8 if memory else limits.FALLBACK_BYTES) and "memory" in source
    for text, expected in (("12345", 12345), ("512M", 512 * MiB), ("8g", 8 << 30), ("2GiB", 2 << 30)):
        monkeypatch.setenv(limits.ENV_VAR, text)
        assert limits.max_bytes() == (expected, f"set by {limits.ENV_VAR}")
    for bad in ("lots", "0", "-5", "1.5G"):
        monkeypatch.setenv(limits.ENV_VAR, bad)
        with pytest.raises(ConfigError, match=rf"{limits.ENV_VAR}=.* is not a positive byte count"):
            limits.max_bytes()


def test_a_bad_limit_in_the_environment_is_one_line(tmp_path, capsys, monkeypatch):
    np.save(tmp_path / "x.npy", np.zeros((4, 8, 8), np.uint8))
    monkeypatch.setenv(limits.ENV_VAR, "lots")
    err = one_line_error(capsys, train_args(tmp_path / "run", "data.name=arrays", f"data.root={tmp_path / 'x.npy'}"))
    assert "GANKIT_MAX_BYTES='lots'" in err
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------------------------- .npy and .npz


def test_npy_whose_header_claims_petabytes_is_refused_before_allocating(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(limits.ENV_VAR, raising=False)
    path = tmp_path / "huge.npy"
    path.write_bytes(npy_header((10**9, 1000, 1000), "<f8") + bytes(1000))  # about 1 KB on disk
    with peak_memory() as peak:
        err = one_line_error(capsys, train_args(tmp_path / "run", "data.name=arrays", f"data.root={path}"))
    assert "huge.npy" in err and "8,000,000,000,000,000 bytes" in err and "GANKIT_MAX_BYTES" in err
    assert peak[0] < 32 * MiB
    assert not (tmp_path / "run").exists()


def test_npy_claiming_more_than_it_holds_is_refused_before_allocating(tmp_path, monkeypatch):
    monkeypatch.setenv(limits.ENV_VAR, "1G")
    path = tmp_path / "short.npy"
    path.write_bytes(npy_header((500, 1000, 1000)) + bytes(1000))  # 500 MB claimed, under the limit, 1 KB held
    with peak_memory() as peak, pytest.raises(DataError, match=r"short.npy.*500,000,000 bytes, but only 1,000 "
                                                                r"follow; the file is truncated"):
        load_npy(path)
    assert peak[0] < 32 * MiB


def test_npy_and_npz_still_read_every_layout(tmp_path):
    fortran = np.asfortranarray(np.arange(12, dtype=">f4").reshape(3, 4))
    np.save(tmp_path / "f.npy", fortran)
    read = load_npy(tmp_path / "f.npy")
    np.testing.assert_array_equal(read, fortran)
    assert read.dtype == fortran.dtype and read.flags.writeable
    np.savez_compressed(tmp_path / "c.npz", x=np.arange(6, dtype=np.uint8).reshape(2, 3), y=np.array([1.5, 2.5]))
    with load_npz(tmp_path / "c.npz") as npz:
        assert npz.files == ["x", "y"] and "x" in npz and "z" not in npz
        np.testing.assert_array_equal(npz["x"], np.arange(6).reshape(2, 3))
        np.testing.assert_array_equal(npz["y"], [1.5, 2.5])
        with pytest.raises(KeyError):
            npz["z"]


def test_a_4_mb_zip_bomb_is_refused_by_its_stated_size_without_inflating(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(limits.ENV_VAR, "1G")  # the machine's own limit would also refuse it, but varies
    header = npy_header((255 * BLOCK,))
    deflated = deflate_zeros(header, 255, -15)  # 4 GiB of zeros (all a zip without zip64 can state) in about 4 MB
    path = tmp_path / "bomb.npz"
    size = len(header) + 255 * BLOCK
    path.write_bytes(zip_one_member("x.npy", deflated, size))
    assert 3 * MiB < path.stat().st_size < 6 * MiB
    with peak_memory() as peak:
        err = one_line_error(capsys, train_args(tmp_path / "run", "data.name=arrays", f"data.root={path}"))
    assert "bomb.npz (member x.npy)" in err and f"its uncompressed size claims {size:,} bytes" in err
    assert "GANKIT_MAX_BYTES" in err
    assert peak[0] < 32 * MiB
    assert not (tmp_path / "run").exists()


def test_a_zip_member_that_understates_its_size_is_cut_off_at_the_claim(tmp_path, monkeypatch):
    monkeypatch.setenv(limits.ENV_VAR, "64G")  # the limit plays no part: the member's own claim is the cap
    header = npy_header((64 * BLOCK,))
    deflated = deflate_zeros(header, 64, -15)  # 1 GiB inflated
    path = tmp_path / "liar.npz"
    crc = zlib.crc32(header + bytes(1000 - len(header)))  # right for the 1000 bytes stated, so that check passes
    path.write_bytes(zip_one_member("x.npy", deflated, 1000, crc))  # the archive says 1000 bytes
    with peak_memory() as peak, pytest.raises(DataError, match=r"liar.npz \(member x.npy\).*1,073,741,824 bytes, "
                                                                r"but only 872 follow"):
        with load_npz(path) as npz:
            npz["x"]
    assert peak[0] < 32 * MiB
    small = npy_header((10,))  # a claim the member keeps, followed by a gigabyte it never mentions
    path.write_bytes(zip_one_member("x.npy", deflate_zeros(small, 64, -15), len(small) + 10,
                                    zlib.crc32(small + bytes(10))))
    with peak_memory() as peak, load_npz(path) as npz:
        assert npz["x"].tolist() == [0] * 10
    assert peak[0] < 32 * MiB


def test_garbage_that_starts_with_pk_is_one_line(tmp_path, capsys):
    path = tmp_path / "samples.npz"
    path.write_bytes(b"PK\x03\x04" + os.urandom(200))
    err = one_line_error(capsys, ["eval", str(path), "--data", "toy2d"])
    assert "samples.npz" in err and "not a valid .npz (zip) file" in err


def test_object_arrays_in_an_npz_are_still_refused(tmp_path, capsys):
    objects = np.empty(2, dtype=object)
    objects[:] = [np.zeros(3), "text"]
    np.savez(tmp_path / "obj.npz", arr_0=objects)
    err = one_line_error(capsys, ["eval", str(tmp_path / "obj.npz"), "--data", "toy2d"])
    assert "obj.npz" in err and "never unpickles" in err


# ----------------------------------------------------------------------------------------------------- MNIST gzip


def _mnist_folder(tmp_path: Path, images_gz: bytes) -> Path:
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(images_gz)
    (folder / "train-labels-idx1-ubyte").write_bytes(encode_idx(np.zeros(60_000, np.uint8)))
    return folder


def test_an_mnist_gzip_bomb_is_cut_off_just_past_the_real_size(tmp_path, capsys):
    header = encode_idx(np.zeros((60_000, 28, 28), np.uint8))[:16]  # MNIST's own header, then a gigabyte of zeros
    bomb = deflate_zeros(header, 64, 31)
    folder = _mnist_folder(tmp_path, bomb)
    with peak_memory() as peak:
        err = one_line_error(capsys, train_args(tmp_path / "run", "data.name=mnist", f"data.root={folder}"))
    assert "train-images-idx3-ubyte.gz has trailing bytes" in err and "more than" in err
    assert peak[0] < MNIST_SIZES["train-images-idx3-ubyte"] + 16 * MiB
    assert not (tmp_path / "run").exists()


def test_an_mnist_header_claiming_more_than_mnist_is_refused_before_reading(tmp_path, capsys):
    header = bytes.fromhex("00000803") + struct.pack(">3I", 2**32 - 1, 2**32 - 1, 2**32 - 1)
    folder = _mnist_folder(tmp_path, deflate_zeros(header, 64, 31))
    with peak_memory() as peak:
        err = one_line_error(capsys, train_args(tmp_path / "run", "data.name=mnist", f"data.root={folder}"))
    assert "train-images-idx3-ubyte.gz" in err and "more than the 47,040,016 expected of it" in err
    assert peak[0] < 16 * MiB


def test_a_downloaded_gzip_bomb_is_hashed_only_up_to_the_known_size(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(deflate_zeros(b"", 64, 31))
    cap = _size_cap(path.name, MNIST_MD5["train-labels-idx1-ubyte"])
    assert cap == MNIST_SIZES["train-labels-idx1-ubyte"] == 60_008
    with peak_memory() as peak, pytest.raises(limits.TooLarge, match="holds more than 60,008 bytes uncompressed"):
        file_md5(path, cap=cap)
    assert peak[0] < 16 * MiB


# ----------------------------------------------------------------------------------------------------------- hangs


def test_truncated_normal_keeps_its_draws_for_ordinary_thresholds():
    def redraw(n, dim, t, g):  # the rejection loop the codes were always drawn with
        z = torch.randn(n, dim, generator=g)
        while (bad := z.abs() > t).any():
            z[bad] = torch.randn(int(bad.sum()), generator=g)
        return z

    for t in (0.1, 0.5, 1.0, 2.0):
        ours = truncated_normal(300, 8, t, generator=torch.Generator().manual_seed(3))
        assert torch.equal(ours, redraw(300, 8, t, torch.Generator().manual_seed(3)))


@pytest.mark.parametrize("t", [1e-30, 1e-3, 0.05])
def test_truncated_normal_with_a_tiny_threshold_is_drawn_directly(t):
    with deadline(10):
        z = truncated_normal(4000, 8, t, generator=torch.Generator().manual_seed(0))
    again = truncated_normal(4000, 8, t, generator=torch.Generator().manual_seed(0))
    assert z.shape == (4000, 8) and z.dtype == torch.float32 and torch.equal(z, again)
    assert z.abs().max() <= t
    if t >= 1e-3:  # nearly uniform on [-t, t] this close to the mode: mean |z| = t / 2, spread both ways
        assert abs(z.abs().mean().item() - t / 2) < 0.02 * t
        assert abs(z.mean().item()) < 0.02 * t


def test_redrawing_is_bounded_and_the_rest_drawn_directly(monkeypatch):
    from gankit.latent import tools

    monkeypatch.setattr(tools, "MAX_REDRAWS", 2)  # the bound, reached here on purpose
    z = truncated_normal(2000, 8, 0.2, generator=torch.Generator().manual_seed(0))
    assert z.abs().max() <= 0.2 and z.std() > 0.05


def test_sample_with_a_tiny_truncation_finishes_and_bad_values_are_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(train_args(run)) == 0
    out = tmp_path / "s.npz"
    with deadline(30):
        assert main(["sample", str(run), "-n", "4", "--truncation", "1e-30", "-o", str(out)]) == 0
    with np.load(out) as npz:
        assert npz["arr_0"].shape[0] == 4
    capsys.readouterr()
    for bad in ("0", "-1", "nan", "inf"):
        err = one_line_error(capsys, ["sample", str(run), "-n", "4", "--truncation", bad, "-o", str(out)])
        assert "truncation threshold must be a positive, finite number" in err


def test_a_named_pipe_among_the_images_is_refused_not_waited_on(tmp_path):
    images = tmp_path / "imgs"
    images.mkdir()
    for i in range(4):
        Image.new("L", (8, 8), 40 * i).save(images / f"{i}.png")
    os.mkfifo(images / "pipe.png")
    fresh = tmp_path / "run"
    argv = train_args(fresh, "data.name=folder", f"data.root={images}")
    done = subprocess.run([sys.executable, "-m", "gankit", *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("gankit: error:"), done.stderr
    assert "pipe.png (a named pipe, not a regular file" in done.stderr
    assert not fresh.exists()


def test_only_regular_files_are_opened(tmp_path):
    os.mkfifo(tmp_path / "samples.npz")
    with deadline(10):
        with pytest.raises(limits.NotRegularFile, match=r"samples.npz is a named pipe, not a regular file"):
            load_npz(tmp_path / "samples.npz")
        with pytest.raises(limits.NotRegularFile, match=r"is a folder, not a regular file"):
            limits.open_regular(tmp_path)


def test_eval_samples_has_an_upper_bound(tmp_path, capsys):
    err = one_line_error(capsys, train_args(tmp_path / "run", "train.eval_samples=1000000000"))
    assert f"train.eval_samples=1000000000 is out of range: expected an integer in 1..{MAX_EVAL_SAMPLES}" in err
    assert not (tmp_path / "run").exists()
    assert TrainConfig(eval_samples=MAX_EVAL_SAMPLES).eval_samples == MAX_EVAL_SAMPLES
