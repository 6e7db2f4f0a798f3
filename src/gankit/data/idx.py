"""Reading and writing IDX files, the format MNIST ships in (LeCun et al., http://yann.lecun.com/exdb/mnist/).

An IDX file is a 4-byte magic number ``0x00 0x00 <dtype> <ndim>``, then ``ndim`` big-endian uint32 dimension sizes,
then the payload in C order. Only unsigned bytes (dtype ``0x08``) are supported, which is all MNIST uses: images are
``0x00000803`` (N, rows, cols) and labels ``0x00000801`` (N,). Files may be gzip-compressed; compression is detected
from the gzip magic bytes, not from the file name. Every malformed file raises a one-line :class:`DataError` naming it.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import math
import os
import struct
import tempfile
import zlib
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

from ..errors import DataError
from .limits import CHUNK, TooLarge, check_claim, max_bytes, open_regular, read_into

GZIP_MAGIC = b"\x1f\x8b"
UBYTE = 0x08  # the IDX dtype code for unsigned bytes
IMAGES_MAGIC = 0x00000803  # ubyte, 3 dimensions
LABELS_MAGIC = 0x00000801  # ubyte, 1 dimension
TRAILING_SHOWN = 1 << 20  # trailing bytes counted exactly in an error; beyond this, "more than"
_GZIP_ERRORS = (OSError, EOFError, zlib.error)  # gzip.BadGzipFile is an OSError


@contextlib.contextmanager
def _open_idx(path: Path) -> Iterator[BinaryIO]:
    """``path`` as a stream of its uncompressed bytes (gunzipped when it starts with the gzip magic bytes)."""
    try:
        f = open_regular(path)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}; check the path and its permissions") from None
    with f:
        try:
            gzipped = f.read(2) == GZIP_MAGIC
            f.seek(0)
        except OSError as exc:
            raise DataError(f"cannot read {path}: {exc.strerror or exc}; check the path and its permissions") from None
        if not gzipped:
            yield f
            return
        with gzip.GzipFile(fileobj=f, mode="rb") as unzipped:  # closing it leaves f open: the outer with closes f
            yield unzipped


def _corrupt(path: Path, exc: BaseException) -> DataError:
    return DataError(f"{path} is a corrupt gzip file ({exc}); delete it and fetch it again")


def read_idx_bytes(path: str | Path, cap: int | None = None) -> bytes:
    """The uncompressed content of ``path``, decompressed as a stream that stops past ``cap`` bytes (default: the
    memory limit of :mod:`gankit.data.limits`), so a gzip bomb costs no more than the cap."""
    path = Path(path)
    cap = max_bytes()[0] if cap is None else cap
    chunks, total = [], 0
    with _open_idx(path) as f:
        try:
            while total <= cap and (chunk := f.read(min(CHUNK, cap + 1 - total))):
                chunks.append(chunk)
                total += len(chunk)
        except _GZIP_ERRORS as exc:
            raise _corrupt(path, exc) from None
    if total > cap:
        check_claim(path, total, "its uncompressed content (read as far as the limit)")
    return b"".join(chunks)


def md5_hex(data: bytes) -> str:
    """Hex MD5 digest of ``data``."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def file_md5(path: str | Path, cap: int | None = None) -> str:
    """Hex MD5 of the *uncompressed* content of ``path`` (the form MNIST's published checksums use), hashed as a
    stream; content beyond ``cap`` bytes (default: the memory limit) is refused without being decompressed."""
    path = Path(path)
    cap = max_bytes()[0] if cap is None else cap
    digest, total = hashlib.md5(usedforsecurity=False), 0
    with _open_idx(path) as f:
        try:
            while chunk := f.read(min(CHUNK, cap + 1 - total)):
                digest.update(chunk)
                total += len(chunk)
                if total > cap:
                    raise TooLarge(f"{path} holds more than {cap:,} bytes uncompressed, more than the file can be; "
                                    "delete it and fetch it again")
        except _GZIP_ERRORS as exc:
            raise _corrupt(path, exc) from None
    return digest.hexdigest()


def parse_idx(data: bytes, path: str | Path, ndim: int | None = None) -> np.ndarray:
    """Decode IDX ``data`` (already uncompressed) into a uint8 array; ``path`` is only used in errors."""
    shape, header = _parse_header(data, path, ndim)
    expected, actual = header + math.prod(shape), len(data)
    if actual != expected:
        raise _wrong_length(path, shape, expected, actual)
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


def _parse_header(data: bytes, path: str | Path, ndim: int | None) -> tuple[tuple[int, ...], int]:
    """(shape, header length) from the start of IDX ``data``."""
    if len(data) < 4:
        raise DataError(f"{path} is not an IDX file: {len(data)} bytes, shorter than the 4-byte header; "
                        "delete it and fetch it again")
    zero, dtype, dims = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != UBYTE or dims == 0 or (ndim is not None and dims != ndim):
        want = f"0x{0x800 | ndim:08x}" if ndim is not None else "0x000008NN (unsigned bytes, NN dimensions)"
        raise DataError(f"{path} is not a valid IDX file: magic number 0x{int.from_bytes(data[:4], 'big'):08x}, "
                        f"expected {want}; check that it is the right file, or fetch it again")
    return _read_shape(data, dims, path), 4 + 4 * dims


def _wrong_length(path: str | Path, shape: tuple[int, ...], expected: int, actual: int | str) -> DataError:
    kind = "truncated" if isinstance(actual, int) and actual < expected else "has trailing bytes"
    return DataError(f"{path} {kind}: header {shape} needs {expected} bytes, found {actual}; "
                     "delete it and fetch it again")


def _read_shape(data: bytes, dims: int, path: str | Path) -> tuple[int, ...]:
    """The ``dims`` big-endian uint32 sizes that follow the magic number."""
    if len(data) < 4 + 4 * dims:
        raise DataError(f"{path} truncated: its {dims}-dimension header needs {4 + 4 * dims} bytes, found "
                        f"{len(data)}; delete it and fetch it again")
    return struct.unpack(f">{dims}I", data[4:4 + 4 * dims])


def read_idx(path: str | Path, ndim: int | None = None, md5: str | None = None,
             max_size: int | None = None) -> np.ndarray:
    """Read an IDX file (raw or gzip) as uint8; check its dimension count and, if given, the MD5 of its content.

    The file is read as a stream: the header's claim (header + product of the dimensions) is checked against
    ``max_size`` (a known file size, such as MNIST's) or else the memory limit before the array is allocated, and
    decompression stops a little past the claim, so a gzip bomb costs no more than the claim.
    """
    path = Path(path)
    with _open_idx(path) as f:
        try:
            return _read_stream(f, path, ndim, md5, max_size)
        except _GZIP_ERRORS as exc:
            raise _corrupt(path, exc) from None


def _read_stream(f: BinaryIO, path: Path, ndim: int | None, md5: str | None, max_size: int | None) -> np.ndarray:
    """The body of :func:`read_idx` on an open stream of uncompressed bytes."""
    head = f.read(4)
    if len(head) == 4:
        head += f.read(4 * head[3])
    shape, header = _parse_header(head, path, ndim)
    expected = header + math.prod(shape)
    if max_size is not None and expected > max_size:
        raise DataError(f"{path}: its header {shape} claims {expected:,} bytes, more than the {max_size:,} expected "
                        "of it; check that it is the right file, or delete it and fetch it again")
    check_claim(path, expected, f"its IDX header {shape}")
    payload = np.empty(expected - header, dtype=np.uint8)
    got = header + read_into(f, memoryview(payload))
    tail = f.read(TRAILING_SHOWN + 1) if got == expected else b""  # a bomb stops here, past the claim
    complete = len(tail) <= TRAILING_SHOWN  # all of the content has been read
    if md5 is not None and complete:
        _check_md5(path, (head, payload[:got - header], tail), md5)
    if got != expected or tail:
        raise _wrong_length(path, shape, expected,
                            got + len(tail) if complete else f"more than {expected + TRAILING_SHOWN}")
    return payload.reshape(shape)


def _check_md5(path: Path, parts: tuple, md5: str) -> None:
    """Compare the MD5 of the whole uncompressed content (``parts`` in order) with ``md5``."""
    digest = hashlib.md5(usedforsecurity=False)
    for part in parts:
        digest.update(part)
    actual = digest.hexdigest()
    if actual != md5.lower():
        raise DataError(f"{path} fails its checksum (MD5 of the uncompressed content is {actual}, expected "
                        f"{md5.lower()}); the file is corrupt or a different version: delete it and fetch it again")


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
