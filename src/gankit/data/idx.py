"""Reading and writing IDX files, the format MNIST ships in (LeCun et al., http://yann.lecun.com/exdb/mnist/).

An IDX file is a 4-byte magic number ``0x00 0x00 <dtype> <ndim>``, then ``ndim`` big-endian uint32 dimension sizes,
then the payload in C order. Only unsigned bytes (dtype ``0x08``) are supported, which is all MNIST uses: images are
``0x00000803`` (N, rows, cols) and labels ``0x00000801`` (N,). Files may be gzip-compressed; compression is detected
from the gzip magic bytes, not from the file name. Every malformed file raises a one-line :class:`DataError` naming it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
UBYTE = 0x08  # the IDX dtype code for unsigned bytes
IMAGES_MAGIC = 0x00000803  # ubyte, 3 dimensions
LABELS_MAGIC = 0x00000801  # ubyte, 1 dimension


def read_idx_bytes(path: str | Path) -> bytes:
    """The uncompressed content of ``path`` (gunzipped when it starts with the gzip magic bytes)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}; check the path and its permissions") from None
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path} is a corrupt gzip file ({exc}); delete it and fetch it again") from None


def md5_hex(data: bytes) -> str:
    """Hex MD5 digest of ``data``."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def file_md5(path: str | Path) -> str:
    """Hex MD5 of the *uncompressed* content of ``path`` (the form MNIST's published checksums use)."""
    return md5_hex(read_idx_bytes(path))


def parse_idx(data: bytes, path: str | Path, ndim: int | None = None) -> np.ndarray:
    """Decode IDX ``data`` (already uncompressed) into a uint8 array; ``path`` is only used in errors."""
    if len(data) < 4:
        raise DataError(f"{path} is not an IDX file: {len(data)} bytes, shorter than the 4-byte header; "
                        "delete it and fetch it again")
    zero, dtype, dims = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != UBYTE or dims == 0 or (ndim is not None and dims != ndim):
        want = f"0x{0x800 | ndim:08x}" if ndim is not None else "0x000008NN (unsigned bytes, NN dimensions)"
        raise DataError(f"{path} is not a valid IDX file: magic number 0x{int.from_bytes(data[:4], 'big'):08x}, "
                        f"expected {want}; check that it is the right file, or fetch it again")
    shape = _read_shape(data, dims, path)
    header = 4 + 4 * dims
    expected, actual = header + int(np.prod(shape, dtype=np.int64)), len(data)
    if actual != expected:
        kind = "truncated" if actual < expected else "has trailing bytes"
        raise DataError(f"{path} {kind}: header {shape} needs {expected} bytes, found {actual}; "
                        "delete it and fetch it again")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


def _read_shape(data: bytes, dims: int, path: str | Path) -> tuple[int, ...]:
    """The ``dims`` big-endian uint32 sizes that follow the magic number."""
    if len(data) < 4 + 4 * dims:
        raise DataError(f"{path} truncated: its {dims}-dimension header needs {4 + 4 * dims} bytes, found "
                        f"{len(data)}; delete it and fetch it again")
    return struct.unpack(f">{dims}I", data[4:4 + 4 * dims])


def read_idx(path: str | Path, ndim: int | None = None, md5: str | None = None) -> np.ndarray:
    """Read an IDX file (raw or gzip) as uint8; check its dimension count and, if given, the MD5 of its content."""
    data = read_idx_bytes(path)
    if md5 is not None:
        actual = md5_hex(data)
        if actual != md5.lower():
            raise DataError(f"{path} fails its checksum (MD5 of the uncompressed content is {actual}, expected "
                            f"{md5.lower()}); the file is corrupt or a different version: delete it and fetch it again")
    return parse_idx(data, path, ndim)


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array with at least one dimension."""
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"IDX encoding needs a uint8 array with 1..255 dimensions, got {array.dtype} "
                         f"{array.shape}")
    header = struct.pack(">HBB", 0, UBYTE, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write ``array`` (uint8) as an IDX file, gzip-compressed when ``path`` ends in ``.gz``; atomic rename."""
    path = Path(path)
    data = encode_idx(array)
    if path.suffix == ".gz":
        data = gzip.compress(data, compresslevel=6, mtime=0)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
