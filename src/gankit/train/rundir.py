"""Run directories: what marks one, who may write it, and what ``--overwrite`` may delete.

A run directory holds a marker, ``.gankit-run.json``, written when gankit first claims the folder. ``--overwrite``
replaces only a marked run (or one written before markers existed: a ``config.yaml`` beside step checkpoints), and
deletes only the files gankit writes there, by exact name; anything else in the folder is left where it is. A
folder that is not a run is refused whole, so ``--out . --overwrite`` in a source tree deletes nothing.

One writer per run: the writer holds an exclusive ``flock`` on ``.gankit-lock`` for as long as it trains. The
kernel releases the lock when the process ends, however it ends, so a run killed with SIGKILL never blocks its own
``--resume``; a second writer is refused with one line naming the holder (pid, host, start time, command). The
lock file is never deleted (deleting it would let two writers lock two different files).

Each training session appends two lines to ``sessions.jsonl``: one when it starts (step, time, pid, host, command)
and one when it ends (step, time, outcome: finished, stopped or crashed, and why). A session killed outright
(SIGKILL, a power cut) writes no end line: a start with no end and no holder of the lock is a crashed session,
which is how ``gankit runs`` tells a crashed run from a stopped one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..version import __version__
from ..errors import GankitError, Interrupted
from .log import why_unwritten

MARKER = ".gankit-run.json"
LOCK = ".gankit-lock"
SESSIONS = "sessions.jsonl"

# the entries gankit writes in a run directory, by exact name: a folder maps to the patterns of its files
_STEP = r"step_\d{7,}"
# data.npz: fit_regressor's arrays
OWNED_FILES = re.compile(r"config\.yaml|metrics\.jsonl(\.tmp)?|sessions\.jsonl|data\.npz|" + re.escape(MARKER))
# an evaluation: training's step_N.json, gankit eval's with -nN (or -ntest, -nrecon), -psiP and -raw as asked
EVAL_FILE = re.compile(r"step_(\d{7,})(-n[a-z0-9]+)?(-psi[-0-9.e]+)?(-raw)?\.json")
OWNED_FOLDERS = {
    "checkpoints": re.compile(rf"({_STEP}|best)\.safetensors(\.tmp)?|(latest|best)\.json(\.tmp)?"
                              r"|\.tmp[A-Za-z0-9]{6}"),
    "samples": re.compile(rf"(recon_)?{_STEP}\.png"),
    "eval": re.compile(rf"{EVAL_FILE.pattern}(\.tmp)?"),
    "tensorboard": re.compile(r"events\.out\.tfevents\.\d{10,}\..+\.\d+\.\d+"),  # time.host.pid.counter
}

try:  # POSIX; elsewhere a run is not locked (gankit's machines are Linux)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None


def is_run(folder: Path) -> bool:
    """True when ``folder`` is a gankit run: it has the marker, or (written before markers) a config.yaml beside
    a checkpoints folder holding a step checkpoint."""
    if (folder / MARKER).is_file():
        return True
    checkpoints = folder / "checkpoints"
    return (folder / "config.yaml").is_file() and checkpoints.is_dir() and any(
        OWNED_FOLDERS["checkpoints"].fullmatch(p.name) for p in checkpoints.glob("step_*.safetensors"))


def check_target(run_dir: Path, overwrite: bool) -> None:
    """Refuse, before anything loads, an ``--out`` that cannot take a new run: a file, a folder holding anything
    without ``overwrite``, or a folder that is not a run with it."""
    if run_dir.exists() and not run_dir.is_dir():
        raise GankitError(f"--out {run_dir} is a file, not a folder: name a new folder for the run")
    for parent in run_dir.parents:
        if parent.exists() and not parent.is_dir():
            raise GankitError(f"--out {run_dir}: {parent} is a file, not a folder: name a folder for the run")
    foreign = [p.name for p in _entries(run_dir) if p.name != LOCK]
    if not foreign:
        return
    if not overwrite:
        raise GankitError(f"run directory {run_dir} already exists; pass --resume to continue it or "
                          "--overwrite to replace it")
    if not is_run(run_dir):
        shown = ", ".join(sorted(foreign)[:3]) + (", ..." if len(foreign) > 3 else "")
        raise GankitError(f"--overwrite refused: {run_dir} is not a gankit run (no {MARKER}) and holds {shown}; "
                          "gankit only replaces runs it wrote: choose another --out")


def _entries(folder: Path) -> list[Path]:
    return list(folder.iterdir()) if folder.is_dir() else []


def remove_run_files(run_dir: Path) -> list[str]:
    """Delete what gankit wrote in ``run_dir`` (exact names only) and return the names of the entries kept."""
    kept = []
    for entry in _entries(run_dir):
        name = entry.name
        if name in (LOCK,):
            continue
        if OWNED_FILES.fullmatch(name) and entry.is_file() and not entry.is_symlink():
            entry.unlink()
        elif name in OWNED_FOLDERS and entry.is_dir() and not entry.is_symlink():
            kept += [f"{name}/{n}" for n in _remove_owned(entry, OWNED_FOLDERS[name])]
        else:
            kept.append(name)
    return sorted(kept)


def _remove_owned(folder: Path, pattern: re.Pattern) -> list[str]:
    """Delete the files of ``folder`` whose names match ``pattern``; the folder goes too once empty."""
    kept = []
    for entry in folder.iterdir():
        if pattern.fullmatch(entry.name) and entry.is_file() and not entry.is_symlink():
            entry.unlink()
        else:
            kept.append(entry.name)
    if not kept:
        folder.rmdir()
    return kept


@dataclass
class RunLock:
    """An exclusive lock on a run directory, held until :meth:`release` (or the process's end)."""

    path: Path
    fd: int | None

    def release(self) -> None:
        """Give the run directory up (also done by the kernel when the process ends)."""
        if self.fd is not None:
            os.close(self.fd)  # closing the last descriptor releases the flock
            self.fd = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def lock(run_dir: Path) -> RunLock:
    """Take the run directory's lock (creating the folder), or refuse with one line naming its holder."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / LOCK
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise GankitError(f"cannot use {run_dir} as a run directory: {exc.strerror or exc}") from None
    if fcntl is None:  # pragma: no cover
        return RunLock(path, fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_holder(fd)
        os.close(fd)
        raise GankitError(f"{run_dir} is in use by another gankit process ({holder}); wait for it to finish or stop "
                          "it, or choose another --out") from None
    _write_holder(fd)
    return RunLock(path, fd)


def _command() -> str:
    return " ".join(["gankit", *sys.argv[1:]])[:200]


def _write_holder(fd: int) -> None:
    """Record who holds the lock, for the message a second writer gets."""
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
              "command": _command()}
    data = json.dumps(holder).encode()
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
    except OSError:  # a full disk: the lock holds all the same, only a second writer's message lacks its holder
        pass


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode())
        return f"pid {info['pid']} on {info['host']} since {info['since']}: {info['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"


def claim(run_dir: Path, *, overwrite: bool = False, resume: bool = False) -> RunLock:
    """Lock ``run_dir`` for a writer and make it a run: checked again under the lock (another process may have
    written it since the first check), emptied of gankit's files with ``overwrite``, and marked."""
    held = lock(run_dir)
    try:
        if not resume:
            check_target(run_dir, overwrite)
            if overwrite:
                kept = remove_run_files(run_dir)
                if kept:
                    print(f"note: --overwrite kept what gankit did not write in {run_dir}: {', '.join(kept[:5])}"
                          + (", ..." if len(kept) > 5 else ""), file=sys.stderr)
        _mark(run_dir)
    except BaseException:
        held.release()
        raise
    return held


def _mark(run_dir: Path) -> None:
    marker = run_dir / MARKER
    if marker.is_file():
        return
    try:
        marker.write_text(json.dumps({"format": "gankit-run/1", "gankit": __version__,
                                      "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n")
    except OSError as exc:
        marker.unlink(missing_ok=True)  # a half-written marker would make any folder look like a run
        raise GankitError(f"cannot use {run_dir} as a run directory: writing {MARKER} failed: "
                          f"{why_unwritten(exc)}") from None


def is_locked(run_dir: Path) -> bool:
    """True while a process holds the run directory's lock (a run training now); never takes the lock for long."""
    path = Path(run_dir) / LOCK
    if fcntl is None or not path.is_file():  # pragma: no cover - no flock: nothing can tell
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # refused while a writer holds LOCK_EX
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases the shared lock taken above


def _append_session(run_dir: Path, record: dict) -> None:
    """One line of ``sessions.jsonl``; a failed write (a full disk) loses the record, never the run."""
    with contextlib.suppress(OSError):
        with open(Path(run_dir) / SESSIONS, "a") as fh:
            fh.write(json.dumps({**record, "time": round(time.time(), 3)}) + "\n")


@contextlib.contextmanager
def session(run_dir: Path, step, planned: int, config: str | None = None):
    """Record a training session in ``sessions.jsonl`` around the block that trains: its start, and its end with
    the outcome (``step`` is called for the step reached; ``planned`` is train.steps). The outcome is
    ``finished`` at train.steps, ``stopped`` for a signal or train.max_minutes, ``crashed`` for an error."""
    start = {"event": "start", "step": step(), "planned": planned, "pid": os.getpid(), "host": socket.gethostname(),
             "command": _command()}
    _append_session(run_dir, {**start, **({"config": config} if config else {})})
    outcome, reason = "crashed", None
    try:
        yield
        done = step()
        outcome, reason = ("finished", None) if done >= planned else ("stopped", "train.max_minutes reached")
    except (Interrupted, KeyboardInterrupt) as exc:
        outcome, reason = "stopped", str(exc).split(";")[0].split(":")[0] or "interrupted"
        raise
    except BaseException as exc:
        reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]
        raise
    finally:
        _append_session(run_dir, {"event": "end", "step": step(), "outcome": outcome,
                                  **({"reason": reason} if reason else {})})


__all__ = ["MARKER", "LOCK", "SESSIONS", "is_locked", "session", "is_run", "check_target", "remove_run_files", "lock",
           "claim", "RunLock"]
