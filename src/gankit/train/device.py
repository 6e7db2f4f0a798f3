"""Which device a run uses."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ..errors import ConfigError

CHOICES = "auto, cpu, cuda, cuda:N"
_PATTERN = re.compile(r"auto|cpu|cuda(?::(\d{1,4}))?|mps")  # mps only where this PyTorch has it


def resolve_device(name: str, key: str = "train.device") -> torch.device:
    """'auto' picks CUDA when present (see ``_auto``); anything else is checked against ``CHOICES`` and against
    what this machine has, so that a typo or a missing GPU is one line naming ``key``. Under torchrun, ``cuda``
    means the GPU of this process's LOCAL_RANK."""
    match = _PATTERN.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        raise ConfigError(f"{key}={name!r} is not a device gankit knows: valid choices: {CHOICES}")
    if name == "auto":
        name = _auto()
    if name == "mps" and not _mps_available():
        raise ConfigError(f"{key}='mps' but Apple's MPS is not available here; valid choices: {CHOICES}")
    if name.startswith("cuda"):
        _check_cuda(name, match.group(1), key)
    device = torch.device(name)
    if device.type == "cuda" and device.index is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)
    return device


def _auto() -> str:
    """CUDA when every process gets a GPU of its own (torchrun with more processes than GPUs: CPU), else CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return "cuda" if torch.cuda.is_available() and torch.cuda.device_count() >= world else "cpu"


def auto_note() -> str:
    """The line a verb prints when ``auto`` picked its device: which one, and why."""
    if _auto() == "cuda":
        return f"device: cuda (auto: {torch.cuda.get_device_name(0)})"
    if torch.cuda.is_available():
        return "device: cpu (auto: fewer GPUs than processes)"
    built = torch.version.cuda
    return f"device: cpu (auto: {'this PyTorch (CUDA ' + built + ') sees no GPU' if built else 'no CUDA here'})"


def _check_cuda(name: str, index: str | None, key: str) -> None:
    if not torch.cuda.is_available():
        raise ConfigError(f"{key}={name!r} but CUDA is not available here; use {key}=cpu or auto")
    count = torch.cuda.device_count()
    if index is not None and int(index) >= count:
        raise ConfigError(f"{key}={name!r} but this machine has {count} CUDA device(s): expected cuda:0 .. "
                          f"cuda:{count - 1}")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


BUSY_ADVICE = "--threads 1 (or OMP_NUM_THREADS=1) is often several times faster on a busy CPU"


def others_busy_cores(interval: float = 0.1) -> float | None:
    """How many cores other processes kept busy over ``interval`` seconds (Linux's /proc/stat less this process's
    own time), or None where /proc is not there. Unlike the load average, a run that just ended does not count."""
    def sample() -> tuple[float, float, float]:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        ticks = [int(v) for v in fields[:8]]  # guest time is already counted in user time
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
        own = os.times()
        return sum(ticks) - idle, own.user + own.system, time.monotonic()

    try:
        busy0, own0, t0 = sample()
        time.sleep(interval)
        busy1, own1, t1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return max(0.0, ((busy1 - busy0) / hz - (own1 - own0)) / max(t1 - t0, 1e-6))


def cores_to_spare(busy: float, cores: int, threads: int) -> bool:
    """Whether ``cores`` less the ``busy`` ones other programs keep leave room for ``threads`` (half a core of
    slack)."""
    return cores - busy >= threads - 0.5


def busy_cpu_note(busy: float | None = None, cores: int | None = None, threads: int | None = None) -> str | None:
    """A note when other programs leave fewer free cores (``busy``: cores they keep busy, measured by
    :func:`others_busy_cores` when None) than PyTorch has threads: its threads then wait for each other, which can
    make small models several times slower than one thread (measured in docs/performance.md). None otherwise, and
    where it cannot be measured."""
    busy = others_busy_cores() if busy is None else busy
    if busy is None:
        return None
    cores = (os.cpu_count() or 1) if cores is None else cores
    threads = torch.get_num_threads() if threads is None else threads
    if threads < 2 or cores_to_spare(busy, cores, threads):
        return None
    return (f"the CPU is busy (other programs keep {busy:.1f} of its {cores} cores busy) and PyTorch uses {threads} "
            f"threads, which then wait for each other; {BUSY_ADVICE}")


class SlowdownWatch:
    """Training speed (steps per second of the training step alone, evaluations and checkpoints left out) watched
    over log rows: a note, once, when a CPU run with several threads falls below ``factor`` of its best rate after
    ``settle`` rows (another program took the cores: the case ``busy_cpu_note`` sees at start-up, arising later).
    A fall while the cores are free (``busy``, :func:`others_busy_cores` by default, says so) is the step itself
    growing dearer, as when a progressively grown model doubles its resolution: the slower rate becomes the one
    to watch, without a note."""

    def __init__(self, device: torch.device, factor: float = 1 / 3, settle: int = 3,
                 busy: Callable[[], float | None] = others_busy_cores) -> None:
        self.active = device.type == "cpu" and torch.get_num_threads() > 1
        self.factor, self.settle, self.busy = factor, settle, busy
        self.best, self.rows, self.said = 0.0, 0, False

    def observe(self, rate: float) -> str | None:
        """The note for a row's training rate (steps/s), or None."""
        if not self.active or self.said or rate <= 0:
            return None
        self.rows += 1
        slow = self.rows > self.settle and rate < self.factor * self.best
        self.best = max(self.best, rate)
        if not slow:
            return None
        busy, threads = self.busy(), torch.get_num_threads()
        if busy is not None and cores_to_spare(busy, os.cpu_count() or 1, threads):
            self.best = rate  # free cores: the work per step grew; watch the new rate
            return None
        self.said = True
        return (f"training slowed from {self.best:.1f} to {rate:.1f} steps/s with {threads} threads: "
                f"another program may be using the cores; {BUSY_ADVICE} (stop, then --resume with it)")
