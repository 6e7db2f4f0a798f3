"""Reading ``.npy`` and ``.npz`` files without trusting the sizes they claim.

``np.load`` allocates whatever an ``.npy`` header declares (a 1 KB file can declare (1e9, 1000, 1000) float64) and
decompresses an ``.npz`` member in full. Here, before anything is allocated, each array's header is parsed with
``numpy.lib.format`` and its declared size (the product of the shape times the item size) is checked against
:func:`gankit.data.limits.max_bytes`, against the bytes the file holds, and, inside an ``.npz``, against the
member's declared uncompressed size (``ZipInfo.file_size``, itself checked against the limit first). The payload is
then read into that one allocation and no further, so a member that inflates beyond its claim (a zip bomb) is cut
off at the claim. Object arrays are refused, as ``np.load(allow_pickle=False)`` does: gankit never unpickles.

Every failure is one :class:`~gankit.errors.DataError` line, ``cannot read FILE: why; what to do``.
"""

from __future__ import annotations

import math
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.lib import format as npformat

from ..errors import DataError
from .limits import check_claim, open_regular, read_into

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK"
_STREAM_ERRORS = (OSError, EOFError, ValueError, zlib.error, zipfile.BadZipFile, NotImplementedError, RuntimeError)
# numpy parses a header's dict with Python's tokenizer and ast.literal_eval: a mangled one raises their errors too
_HEADER_ERRORS = (ValueError, SyntaxError, tokenize.TokenError, RecursionError)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _open(path: Path, kind: str) -> BinaryIO:
    """``path`` opened as a regular file; a missing or unreadable one is a one-line error."""
    try:
        return open_regular(path)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or _one_line(exc)}; check the path to the {kind} "
                        "file") from None


def load_npy(path: str | Path) -> np.ndarray:
    """The array in the ``.npy`` file at ``path``, its declared size checked before it is allocated."""
    path = Path(path)
    with _open(path, ".npy") as f:
        size = f.seek(0, 2)
        f.seek(0)
        if f.read(len(NPY_MAGIC)) != NPY_MAGIC:
            raise DataError(f"cannot read {path}: not an .npy file (it does not start with numpy's magic bytes); "
                            "re-save it with numpy.save")
        f.seek(0)
        try:
            return read_array(f, str(path), size)
        except _STREAM_ERRORS as exc:
            raise DataError(f"cannot read {path}: {_one_line(exc)}; re-save it with numpy.save") from None


def read_array(f: BinaryIO, where: str, available: int) -> np.ndarray:
    """One array from an open ``.npy`` stream holding at most ``available`` bytes (header included)."""
    shape, fortran, dtype = _read_header(f, where)
    _check_dtype(dtype, where)
    if any(n < 0 for n in shape):
        raise DataError(f"cannot read {where}: its header declares the negative shape {shape}; the file is corrupt")
    nbytes = math.prod(shape) * dtype.itemsize
    check_claim(where, nbytes, f"its header ({dtype} {shape})")
    left = available - f.tell()
    if nbytes > left:
        raise DataError(f"cannot read {where}: its header declares {dtype} {shape}, {nbytes:,} bytes, but only "
                        f"{max(left, 0):,} follow; the file is truncated or corrupt: re-save it with numpy.save")
    out = np.empty(shape[::-1] if fortran else shape, dtype=dtype)
    got = _fill(f, out, where)
    if got < nbytes:
        raise DataError(f"cannot read {where}: its header declares {nbytes:,} bytes of data, found {got:,}; the file "
                        "is truncated or corrupt: re-save it with numpy.save")
    return out.T if fortran else out


def _read_header(f: BinaryIO, where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, Fortran order, dtype) from the ``.npy`` header at the stream's position."""
    try:
        version = npformat.read_magic(f)
        if version == (1, 0):
            return npformat.read_array_header_1_0(f)
        if version == (2, 0):
            return npformat.read_array_header_2_0(f)
    except _HEADER_ERRORS as exc:  # what numpy says of a bad magic string or header; stream errors go to the caller
        raise DataError(f"cannot read {where}: not a valid .npy header ({_one_line(exc)}); re-save it with "
                        "numpy.save") from None
    raise DataError(f"cannot read {where}: .npy format version {version[0]}.{version[1]} is not supported (only "
                    "1.0 and 2.0, which numpy.save writes for numeric arrays); re-save it as a numeric array")


def _check_dtype(dtype: np.dtype, where: str) -> None:
    """Refuse object arrays (they would be unpickled) and dtypes with no size."""
    if dtype.hasobject:
        raise DataError(f"cannot read {where}: it holds Python objects (dtype {dtype}), which would have to be "
                        "unpickled, and gankit never unpickles; re-save it as numbers (no pickled objects)")
    if dtype.itemsize == 0:
        raise DataError(f"cannot read {where}: dtype {dtype} has no size; re-save it as numbers")


def _fill(f: BinaryIO, out: np.ndarray, where: str) -> int:
    """Read ``out.nbytes`` bytes from ``f`` into ``out``; the number read."""
    try:
        return read_into(f, memoryview(out.reshape(-1).view(np.uint8)))
    except _STREAM_ERRORS as exc:
        raise DataError(f"cannot read {where}: {_one_line(exc)}; the file is corrupt: re-save it") from None


class NpzArrays:
    """The arrays of an open ``.npz``, read one at a time on indexing, like ``np.load``'s ``NpzFile``."""

    def __init__(self, path: Path, f: BinaryIO) -> None:
        self.path, self._f = path, f
        try:
            self._zip = zipfile.ZipFile(f)
            infos = self._zip.infolist()
        except _STREAM_ERRORS as exc:
            raise DataError(f"cannot read {path}: not a valid .npz (zip) file ({_one_line(exc)}); re-save it with "
                            "numpy.savez (no pickled objects)") from None
        self._members = {(i.filename[:-4] if i.filename.endswith(".npy") else i.filename): i for i in infos}
        self.files = list(self._members)

    def __contains__(self, key: str) -> bool:
        return key in self._members

    def __getitem__(self, key: str) -> np.ndarray:
        """The array ``key``; its claimed sizes are checked before anything is decompressed or allocated."""
        info = self._members[key]  # KeyError for a missing key, as np.load's
        where = f"{self.path} (member {info.filename})"
        check_claim(where, info.file_size, "its uncompressed size")
        try:
            with self._zip.open(info) as member:
                return read_array(member, where, info.file_size)
        except _STREAM_ERRORS as exc:
            raise DataError(f"cannot read {where}: {_one_line(exc)}; the file is corrupt: re-save it with "
                            "numpy.savez") from None

    def close(self) -> None:
        self._zip.close()
        self._f.close()

    def __enter__(self) -> NpzArrays:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def load_npz(path: str | Path) -> NpzArrays:
    """The ``.npz`` file at ``path``, open for reading arrays by key (use it in a ``with`` block)."""
    path = Path(path)
    f = _open(path, ".npz")
    try:
        if f.read(len(ZIP_MAGIC)) != ZIP_MAGIC:
            raise DataError(f"cannot read {path}: not an .npz file (a zip archive starts with 'PK'); re-save it with "
                            "numpy.savez (no pickled objects)")
        f.seek(0)
        return NpzArrays(path, f)
    except BaseException:
        f.close()
        raise
