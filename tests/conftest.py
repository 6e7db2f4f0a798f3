"""Shared fixtures: where real MNIST lives (tests that need it skip when it is absent) and tiny configs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

# train.device and --device default to auto: the suite runs on the CPU even on a machine with a GPU, so that its
# bit-for-bit comparisons and CPU-specific checks hold there too
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

from gankit.data.base import ArrayData
from gankit.data.digits import load_digits
from gankit.registry import DATASETS

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


# Translation tasks for the tests (no MNIST needed): A is a digits image, B the same digit mirrored and inverted

def _mirrored_digits(cfg, split="train", seed=0, paired=True) -> ArrayData:
    d = load_digits(cfg, split, seed)
    b = -torch.flip(d.x, dims=[3])  # mirrored and inverted: a fixed, invertible map A -> B
    y_b = d.y
    if not paired:  # unpaired: B rows come in another (fixed) order
        perm = torch.from_numpy(np.random.default_rng(7).permutation(len(d)))
        b, y_b = b[perm], d.y[perm]
    return ArrayData(torch.cat([d.x, b], 1).contiguous(), d.y, 10, "mirrored", channels_a=1,
                     y_b=None if paired else y_b, paired=paired)


if "test_mirrored_pairs" not in DATASETS.names():
    DATASETS.register("test_mirrored_pairs")(lambda cfg, split="train", seed=0: _mirrored_digits(cfg, split, seed))
    DATASETS.register("test_mirrored_unpaired")(
        lambda cfg, split="train", seed=0: _mirrored_digits(cfg, split, seed, paired=False))


@pytest.fixture(scope="session")
def looked_at_runs(tmp_path_factory):
    """Finished, stopped, crashed (SIGKILL) and translation runs, for the run list, plot and report tests."""
    from report_runs import make_runs
    return make_runs(tmp_path_factory.mktemp("looked-at-runs"))
