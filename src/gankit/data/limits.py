"""What gankit will read from a file a user hands it: how many bytes into memory, and only from regular files.

Files state their own sizes: an ``.npy`` header its shape, a zip member its uncompressed size, an IDX header its
dimensions, and a kilobyte can claim a petabyte. Every reader checks such a claim against one limit *before* it
allocates, and decompresses as a stream that stops at the claim, so a claim that lies costs no more than the claim.

The limit is, first match wins:

* ``GANKIT_MAX_BYTES``: an environment variable holding a byte count, optionally with a K, M, G or T suffix in
  powers of 1024 (``GANKIT_MAX_BYTES=8G``). It is read at each check, so it can be set for one command.
* An eighth of this machine's physical memory (``os.sysconf``). Not a half: an array is rarely held once. 8-bit
  pixels become float32 (4 bytes each) while the file's own copy is still alive, so a file of an eighth of memory
  already needs more than half of it.
* 2 GiB, where the memory size cannot be read.

Regular files only: a named pipe (``mkfifo pipe.png``) or a device blocks a reader forever or never ends, so
:func:`open_regular` opens without blocking, asks the kernel what the file is, and refuses anything else.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import BinaryIO

from ..errors import ConfigError, DataError

ENV_VAR = "GANKIT_MAX_BYTES"
MEMORY_SHARE = 8  # the default limit is physical memory / MEMORY_SHARE
FALLBACK_BYTES = 2 << 30  # where physical memory cannot be read
_SUFFIXES = {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
CHUNK = 1 << 20  # bytes per read when streaming


def physical_memory() -> int | None:
    """Bytes of physical memory, or None where the system does not say."""
    try:
        pages, page = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * page if pages > 0 and page > 0 else None


def max_bytes() -> tuple[int, str]:
    """The limit in bytes and where it comes from (for messages); rules in the module docstring."""
    text = os.environ.get(ENV_VAR, "").strip()
    if text:
        return _parse_bytes(text), f"set by {ENV_VAR}"
    memory = physical_memory()
    if memory is None:
        return FALLBACK_BYTES, "the default where the machine's memory is unknown"
    return memory // MEMORY_SHARE, f"1/{MEMORY_SHARE} of this machine's {human(memory)} of memory"


def _parse_bytes(text: str) -> int:
    """``"123"``, ``"8G"``, ``"512m"`` -> bytes; anything else is a one-line error naming the variable."""
    match = re.fullmatch(r"(\d+)\s*([KMGT]?)i?B?", text, flags=re.IGNORECASE)
    if match is None or int(match.group(1)) == 0:
        raise ConfigError(f"{ENV_VAR}={text!r} is not a positive byte count: expected e.g. 4000000000, 512M or 8G")
    return int(match.group(1)) << _SUFFIXES[match.group(2).upper()]


def human(n: int) -> str:
    """``n`` bytes in the largest binary unit that keeps it >= 1 (``3.0 GiB``)."""
    value, unit = float(n), "bytes"
    for name in ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if value < 1024:
            break
        value, unit = value / 1024, name
    return f"{value:.1f} {unit}" if unit != "bytes" else f"{n} bytes"


class TooLarge(DataError):
    """A file that claims, or turns out to hold, more than gankit will read."""


def check_claim(path: str | Path, claimed: int, what: str) -> None:
    """Refuse, in one line, a file whose ``what`` claims more than :func:`max_bytes` allows in memory."""
    limit, source = max_bytes()
    if claimed > limit:
        raise TooLarge(f"cannot read {path}: {what} claims {claimed:,} bytes ({human(claimed)}), more than gankit's "
                        f"limit of {limit:,} bytes ({human(limit)}, {source}); if the file is genuine and fits in "
                        f"memory, raise the limit with {ENV_VAR}=<bytes> (e.g. {ENV_VAR}=64G)")


class NotRegularFile(DataError):
    """A path that names a pipe, device, socket or folder where a file's bytes were expected."""

    def __init__(self, path: str | Path, kind: str) -> None:
        self.kind = kind
        super().__init__(f"{path} is {kind}, not a regular file; gankit reads only regular files (a pipe or a device "
                         "can block forever or never end): replace it by the file itself")


def open_regular(path: str | Path) -> BinaryIO:
    """``path`` opened for binary reading, refused with :class:`NotRegularFile` unless it is a regular file.

    The file is opened without blocking (opening a pipe that nobody writes would otherwise wait forever) and the
    kernel is asked about the open file itself, so nothing can swap it between the check and the read.
    Other failures (missing, unreadable) raise :class:`OSError` for the caller to word.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(path, next((kind for test, kind in _KINDS if test(mode)), "not a regular file"))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_into(stream: BinaryIO, buffer: memoryview) -> int:
    """Fill ``buffer`` from ``stream`` until it is full or the stream ends; the number of bytes read."""
    done = 0
    while done < len(buffer):
        n = stream.readinto(buffer[done:done + CHUNK])
        if not n:
            break
        done += n
    return done



def check_setting(setting: str, nbytes: int, what: str) -> None:
    """Refuse, in one line naming the ``setting`` (``data.size=4096``), data that would hold more than
    :func:`max_bytes` in memory: checked from the counts alone, before anything is drawn, decoded or resized."""
    limit, source = max_bytes()
    if nbytes > limit:
        raise ConfigError(f"{setting} makes {what}: {human(nbytes)}, more than gankit's limit of {human(limit)} "
                          f"({source}); lower it, or raise the limit with {ENV_VAR}=<bytes> (e.g. {ENV_VAR}=64G)")


def user_path(root: str, key: str = "data.root") -> Path:
    """``root`` with a leading ``~`` or ``~user`` expanded, or a one-line error where there is no such home."""
    if "\0" in root:
        raise ConfigError(f"{key}={root!r} holds a NUL character, which no path can")
    path = os.path.expanduser(root)
    if path.startswith("~"):  # os.path.expanduser leaves what it cannot expand as it was
        user = root[1:].split(os.sep, 1)[0]
        whose = f"user {user!r}" if user else "you ($HOME is not set)"
        raise ConfigError(f"{key}={root!r} starts with ~{user}, but this machine has no home folder for {whose}; "
                          "write the path out in full")
    return Path(path)


def foreign_kind(head: bytes) -> str | None:
    """What the first 8 bytes of a file given where a safetensors file belongs say it is instead: "pickle"
    (``torch.save``'s zip archive or a raw pickle stream), "text" (a config or a log: a safetensors header's length
    is never printable), or None when they do not tell."""
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        return "pickle"
    if len(head) == 8 and all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        return "text"
    return None
