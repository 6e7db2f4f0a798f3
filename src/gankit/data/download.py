"""Fetching the four MNIST files from the usual mirrors, with the standard library only.

Each file is streamed into a temporary file beside its destination, its uncompressed content is checked against the
published MD5 (decompressed as a stream that stops past the file's known size, so a gzip bomb from a mirror is cut
off), and only then is it renamed into place (atomically), so an interrupted or corrupt download never leaves a file
that looks complete. A failing mirror (HTTP error, unreachable host, timeout, corrupt gzip, checksum
mismatch) is skipped for the next; when all fail, the :class:`DataError` lists every URL tried and why it failed.
"""

from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO, Mapping, Sequence

from ..errors import DataError
from .idx import file_md5
from .limits import TooLarge, max_bytes
from .mnist_files import DEFAULT_CACHE, MNIST_MD5, known_size

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
TIMEOUT_S = 30.0  # per socket operation (connect, each read)
MAX_BYTES = 64 << 20  # the largest MNIST file is 9.9 MB compressed; refuse anything absurdly larger
CHUNK = 1 << 16
USER_AGENT = "gankit-data-download"


def download_mnist(dest: str | Path | None = None, *, mirrors: Sequence[str] = MIRRORS,
                   checksums: Mapping[str, str] | None = None, timeout: float = TIMEOUT_S) -> Path:
    """Fetch each missing ``<name>.gz`` of ``checksums`` (default: the MNIST table) into ``dest``; return ``dest``."""
    folder = Path(dest if dest is not None else DEFAULT_CACHE).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create {folder} for the MNIST download ({exc.strerror}); set data.root to a "
                        "writable folder") from None
    opener = urllib.request.build_opener()  # per call: honours the proxy settings of the moment, no global state
    for name, md5 in (MNIST_MD5 if checksums is None else checksums).items():
        if not any((folder / f"{name}{ext}").is_file() for ext in ("", ".gz")):
            fetch_file(f"{name}.gz", folder, md5, mirrors=mirrors, timeout=timeout, opener=opener)
    return folder


def fetch_file(filename: str, folder: Path, md5: str, *, mirrors: Sequence[str] = MIRRORS,
               timeout: float = TIMEOUT_S, opener: urllib.request.OpenerDirector | None = None) -> Path:
    """Download ``filename`` from the first mirror that serves it with the right checksum; return its path."""
    opener = opener or urllib.request.build_opener()
    tried = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + filename
        problem = _try_mirror(opener, url, folder / filename, md5.lower(), timeout)
        if problem is None:
            return folder / filename
        tried.append(f"{url} ({problem})")
    raise DataError(f"could not download {filename} into {folder}: tried {'; '.join(tried) or 'no mirrors'}; check "
                    "the network, or fetch the files by hand and set data.root to their folder")


def _try_mirror(opener: urllib.request.OpenerDirector, url: str, target: Path, md5: str,
                timeout: float) -> str | None:
    """Download ``url`` to ``target`` via a verified temporary file; None on success, else why it failed."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            _stream(opener, url, f, timeout)
        actual = file_md5(tmp, cap=_size_cap(target.name, md5))  # streamed: a gzip bomb stops at the cap
        if actual != md5:
            return f"checksum mismatch: MD5 {actual}, expected {md5}"
        os.replace(tmp, target)
        return None
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except urllib.error.URLError as exc:
        return "timed out" if isinstance(exc.reason, TimeoutError) else f"unreachable: {exc.reason}"
    except TimeoutError:
        return f"timed out after {timeout:g} s"
    except TooLarge:
        return "more uncompressed bytes than the file has: refused"
    except DataError:
        return "corrupt gzip"
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        Path(tmp).unlink(missing_ok=True)


def _size_cap(filename: str, md5: str) -> int:
    """The most uncompressed bytes worth hashing for ``filename``: MNIST's known size, else the memory limit."""
    name = filename.removesuffix(".gz")
    return known_size(name, md5) or max_bytes()[0]


def _stream(opener: urllib.request.OpenerDirector, url: str, out: BinaryIO, timeout: float) -> None:
    """Copy the body of ``url`` into ``out`` in chunks, refusing more than ``MAX_BYTES``."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with opener.open(request, timeout=timeout) as response:
        total = 0
        while chunk := response.read(CHUNK):
            total += len(chunk)
            if total > MAX_BYTES:
                raise OSError(f"response larger than {MAX_BYTES} bytes")
            out.write(chunk)
