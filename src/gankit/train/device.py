"""Which device a run uses."""

from __future__ import annotations

import os
import re

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


def busy_cpu_note(load: float | None = None, cores: int | None = None, threads: int | None = None) -> str | None:
    """A note when other programs keep the CPU busy (the 1-minute load average at least the number of cores) and
    PyTorch would use more than one thread: its threads then wait for each other, which can make small models
    several times slower than one thread (measured in docs/performance.md). None otherwise, and where the load
    average is unknown."""
    try:
        load = os.getloadavg()[0] if load is None else load
    except OSError:
        return None
    cores = (os.cpu_count() or 1) if cores is None else cores
    threads = torch.get_num_threads() if threads is None else threads
    if threads < 2 or load < cores:
        return None
    return (f"the CPU is busy (load average {load:.1f} on {cores} cores) and PyTorch uses {threads} threads, which "
            "then wait for each other; --threads 1 (or OMP_NUM_THREADS=1) is often several times faster here")
