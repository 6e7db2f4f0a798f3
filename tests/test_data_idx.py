"""IDX reading and writing: round trips, gzip detection, and one-line errors for malformed files."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest

from gankit.data.idx import encode_idx, file_md5, md5_hex, parse_idx, read_idx, read_idx_bytes, write_idx
from gankit.errors import DataError


def _images(n: int = 5, h: int = 4, w: int = 3) -> np.ndarray:
    return (np.arange(n * h * w) % 256).astype(np.uint8).reshape(n, h, w)


@pytest.mark.parametrize("name", ["a-idx3-ubyte", "a-idx3-ubyte.gz"])
def test_round_trip_images_and_labels(tmp_path, name):
    images, labels = _images(), np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    read_back = read_idx(write_idx(tmp_path / name, images), ndim=3)
    assert read_back.dtype == np.uint8 and read_back.shape == (5, 4, 3)
    np.testing.assert_array_equal(read_back, images)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / f"l{name}", labels), ndim=1), labels)


def test_header_is_the_mnist_magic():
    assert encode_idx(_images())[:16] == bytes.fromhex("00000803") + bytes.fromhex("00000005 00000004 00000003")
    assert encode_idx(np.zeros(7, np.uint8))[:8] == bytes.fromhex("00000801 00000007")


def test_gzip_detected_by_magic_bytes_not_suffix(tmp_path):
    images = _images()
    (tmp_path / "raw.gz").write_bytes(encode_idx(images))  # raw content, misleading suffix
    (tmp_path / "packed").write_bytes(gzip.compress(encode_idx(images)))  # gzip content, no suffix
    np.testing.assert_array_equal(read_idx(tmp_path / "raw.gz"), images)
    np.testing.assert_array_equal(read_idx(tmp_path / "packed"), images)
    assert (tmp_path / "packed").read_bytes()[:2] == b"\x1f\x8b"


def test_wrong_magic_names_file_and_magic(tmp_path):
    path = tmp_path / "floats-idx"
    path.write_bytes(bytes.fromhex("00000d01 00000001") + b"\0\0\0\0")  # dtype 0x0d = float32
    with pytest.raises(DataError, match=r"floats-idx.*0x00000d01"):
        read_idx(path)


def test_wrong_dimension_count(tmp_path):
    path = write_idx(tmp_path / "labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(DataError, match=r"labels-idx1-ubyte.*0x00000801.*expected 0x00000803"):
        read_idx(path, ndim=3)


def test_truncated_file_reports_expected_and_actual_bytes(tmp_path):
    path = tmp_path / "cut-idx3-ubyte"
    path.write_bytes(encode_idx(_images())[:-7])  # header 16 + payload 60 = 76 bytes, keep 69
    with pytest.raises(DataError, match=r"cut-idx3-ubyte truncated.* 76 bytes, found 69") as err:
        read_idx(path)
    assert "\n" not in str(err.value)


def test_trailing_bytes_rejected(tmp_path):
    path = tmp_path / "long-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(encode_idx(_images()) + b"xyz"))
    with pytest.raises(DataError, match=r"long-idx3-ubyte.gz has trailing bytes.* 76 bytes, found 79"):
        read_idx(path)


def test_header_too_short(tmp_path):
    (tmp_path / "tiny").write_bytes(b"\0\0")
    (tmp_path / "dims").write_bytes(bytes.fromhex("00000803 00000002"))  # 3 dims announced, 1 given
    with pytest.raises(DataError, match="tiny"):
        read_idx(tmp_path / "tiny")
    with pytest.raises(DataError, match=r"dims truncated.* 16 bytes, found 8"):
        read_idx(tmp_path / "dims")


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupt_gzip_names_file(tmp_path, damage):
    packed = bytearray(gzip.compress(encode_idx(_images(50, 10, 10))))
    if damage == "truncate":
        packed = packed[: len(packed) // 2]
    else:
        packed[-6] ^= 0xFF  # inside the CRC32 / size trailer
    path = tmp_path / "bad-idx3-ubyte.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(DataError, match=r"bad-idx3-ubyte.gz is a corrupt gzip file"):
        read_idx(path)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(DataError, match="nowhere-idx3-ubyte"):
        read_idx_bytes(tmp_path / "nowhere-idx3-ubyte")


def test_md5_is_of_uncompressed_content(tmp_path):
    raw = encode_idx(_images())
    path = write_idx(tmp_path / "x.gz", _images())
    assert file_md5(path) == hashlib.md5(raw).hexdigest() == md5_hex(raw)
    np.testing.assert_array_equal(read_idx(path, md5=md5_hex(raw).upper()), _images())
    with pytest.raises(DataError, match=r"x.gz fails its checksum.*expected 0{32}"):
        read_idx(path, md5="0" * 32)


def test_parse_returns_writable_copy():
    array = parse_idx(encode_idx(_images()), "mem")
    array[0, 0, 0] = 255  # would raise on a read-only view of the bytes
    assert array[0, 0, 0] == 255


def test_writer_rejects_non_uint8(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_idx(tmp_path / "f", np.zeros((2, 2), np.float32))
    assert list(tmp_path.iterdir()) == []
