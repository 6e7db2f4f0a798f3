"""Shared fixtures: where real MNIST lives (tests that need it skip when it is absent) and tiny configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

MNIST_CANDIDATES = [os.environ.get("GANKIT_DATA"), Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"]


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Reference features are cached under $GANKIT_CACHE: keep the tests' cache out of the user's."""
    old = os.environ.get("GANKIT_CACHE")
    os.environ["GANKIT_CACHE"] = str(tmp_path_factory.mktemp("gankit-cache"))
    yield
    if old is None:
        os.environ.pop("GANKIT_CACHE", None)
    else:
        os.environ["GANKIT_CACHE"] = old


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """The folder holding the four MNIST IDX files, or skip."""
    for candidate in MNIST_CANDIDATES:
        if candidate and (Path(candidate) / "train-images-idx3-ubyte.gz").is_file():
            return Path(candidate)
        if candidate and (Path(candidate) / "mnist" / "train-images-idx3-ubyte.gz").is_file():
            return Path(candidate) / "mnist"
    pytest.skip("real MNIST not found (set GANKIT_DATA or place it at ../shared/data/mnist)")


TINY = [
    "model.g_hidden=[32, 32]",
    "model.d_hidden=[32]",
    "model.latent_dim=8",
    "train.batch_size=16",
    "train.progress=false",
    "train.eval_every=0",
]


@pytest.fixture
def tiny_overrides() -> list[str]:
    """Overrides that make the default (digits) run small enough for a unit test."""
    return list(TINY)
