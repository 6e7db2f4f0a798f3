"""Which device a run uses."""

from __future__ import annotations

import os

import torch

from ..errors import GankitError


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; anything else is taken as given (and checked). Under torchrun, ``cuda``
    means the GPU of this process's LOCAL_RANK."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GankitError(f"train.device={name!r} but CUDA is not available here; use train.device=cpu or auto")
    if device.type == "cuda" and device.index is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)
    return device
