"""The ``stacked_mnist`` source: three MNIST digits drawn independently as the red, green and blue channels of one
image, so the data has 10 x 10 x 10 = 1,000 modes (Metz et al. 2017, "Unrolled generative adversarial networks";
used to count mode collapse in Srivastava et al. 2017 and Lin et al. 2018). The label of an image is
100 * a + 10 * b + c for the digits a, b, c of its channels.

The triplets are drawn once per split from the split's MNIST images with a seed fixed per split (as toy2d: train
uses 2 * train.seed, test 2 * train.seed + 1), ``data.num_samples`` of them (default 25,600 per split; 25,600
float32 images of 3x28x28 take 240 MB).
"""

from __future__ import annotations

import torch

from ..config import DataConfig
from ..registry import DATASETS
from .base import ArrayData
from .limits import check_setting
from .mnist import load_mnist
from .transforms import check_split

DEFAULT_SAMPLES = 25_600
NUM_MODES = 1000
# samples `gankit eval` draws from a run unless told: the published protocol (Srivastava et al. 2017, Lin et al.
# 2018); N draws from 1,000 equal modes are off uniform by KL ~ 999 / 2N, 0.05 at the usual 10,000
EVAL_SAMPLES = 26_000


@DATASETS.register("stacked_mnist", eval_samples=EVAL_SAMPLES)
def load_stacked_mnist(cfg: DataConfig, split: str = "train", seed: int = 0) -> ArrayData:
    """(N, 3, S, S) images in [-1, 1], one MNIST digit per channel, labelled 0..999."""
    check_split(split, "stacked_mnist")
    n = cfg.num_samples or DEFAULT_SAMPLES
    side = cfg.size or 28  # MNIST's own side unless resized (padding comes later, and is checked there)
    check_setting(f"data.num_samples={n}", n * (3 * side * side * 4 + 8), f"{n:,} float32 images of 3x{side}x{side}")
    digits = load_mnist(cfg, split)  # (M, 1, S, S), labels (M,)
    generator = torch.Generator().manual_seed(2 * seed + (split == "test"))
    pick = torch.randint(len(digits), (n, 3), generator=generator)  # (n, 3) indices, one per channel
    x = digits.x[pick, 0]  # (n, 3, S, S)
    a, b, c = digits.y[pick].unbind(1)
    return ArrayData(x.contiguous(), 100 * a + 10 * b + c, NUM_MODES, "stacked_mnist")
