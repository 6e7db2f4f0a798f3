"""Training an evaluator (:mod:`gankit.metrics.evaluator`) on a labelled dataset: the built-in MNIST and digits
ones (``scripts/train_evaluators.sh``) and a user's own, through ``gankit evaluator train``.

Recipe: AdamW (weight decay 5e-4) with a one-cycle learning-rate schedule, cross-entropy, and random translations
of up to ~10% of the side as the only augmentation (digits must stay digits: no flips). Everything random (weights,
batch order, shifts) comes from ``seed``, so the same command on the same machine and torch version gives the same
file. Beside the weights, ``NAME.json`` records the test accuracy, the settings and the file's SHA-256.
The test split is the dataset's own; a source without one (a folder with no ``test/``) holds out a fixed 10%
(:func:`load_splits`, which ``gankit eval`` uses too, so that it scores against images the evaluator never saw).

Training is sized in optimizer steps: ``epochs`` passes over the train split, but never fewer than ``min_steps``
(default 200): on a small folder 4 epochs are a handful of steps, and such a network is no better than chance. An
evaluator whose test accuracy cannot be told apart from chance (:func:`near_chance`) is refused, nothing written:
every score computed on its features would be noise. ``force`` keeps it anyway (the record says so).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..version import __version__
from ..config import DataConfig
from ..data import ArrayData, load_dataset
from ..errors import DataError, GankitError
from .evaluator import EvaluatorNet, EvaluatorSpec, save_evaluator

HOLDOUT_FRACTION = 0.1
HOLDOUT_SEED = 12_345  # fixed: the held-out split must not move with the training seed
MIN_STEPS = 200  # optimizer steps however few the images: a 200-image folder gives 4 epochs of 1 step otherwise


def load_splits(data_cfg: DataConfig) -> tuple[ArrayData, ArrayData, str]:
    """(train, test, how the test split was made); a labelled dataset is required."""
    train = load_dataset(data_cfg, "train")
    if train.y is None or train.num_classes < 2:
        raise GankitError(f"an evaluator is a classifier: data {data_cfg.name!r} has no labels. Use a folder with "
                          "one sub-folder per class (e.g. DATA/train/cat/*.png, DATA/train/dog/*.png)")
    try:
        return train, load_dataset(data_cfg, "test"), "the dataset's test split"
    except DataError:
        kept, held = holdout(train)
        return kept, held, HOLDOUT_NAME


HOLDOUT_NAME = f"a fixed {HOLDOUT_FRACTION:.0%} of the train split"


def holdout(train: ArrayData) -> tuple[ArrayData, ArrayData]:
    """(the rest, the held-out fixed 10%) of a split that has no test split beside it; the same images every time
    (``HOLDOUT_SEED``), whatever the training seed."""
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(HOLDOUT_SEED))
    n_test = max(1, int(round(len(train) * HOLDOUT_FRACTION)))
    y = (lambda idx: None) if train.y is None else (lambda idx: train.y[idx])
    pick = lambda idx: ArrayData(train.x[idx], y(idx), train.num_classes, train.name, train.classes)
    return pick(order[n_test:]), pick(order[:n_test])


def near_chance(acc: float, classes: int, n_test: int) -> tuple[bool, float]:
    """(whether ``acc`` on ``n_test`` images cannot be told from guessing among ``classes``, the chance level):
    below chance + two standard errors of a guesser's accuracy, and never less than 5 points above chance."""
    chance = 1 / classes
    margin = max(0.05, 2 * math.sqrt(chance * (1 - chance) / max(n_test, 1)))
    return acc < chance + margin, chance


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by whole pixels in [-max_shift, max_shift], repeating the border."""
    b, _, h, w = x.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (b, 2), generator=generator).to(x.device, x.dtype)
    theta = torch.zeros(b, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, 0, 2] = 2 * shifts[:, 0] / w
    theta[:, 1, 2] = 2 * shifts[:, 1] / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="border", align_corners=False)


@torch.no_grad()
def accuracy(net: EvaluatorNet, data: ArrayData, batch_size: int = 1000) -> float:
    """Top-1 accuracy of ``net`` on ``data``."""
    net.eval()
    device = next(net.parameters()).device
    correct = 0
    for start in range(0, len(data), batch_size):
        logits = net(data.x[start:start + batch_size].to(device))
        correct += int((logits.argmax(1).cpu() == data.y[start:start + batch_size]).sum())
    return correct / len(data)


def train_evaluator(data_cfg: DataConfig, out: str | Path, *, epochs: int = 4, batch_size: int = 128,
                    lr: float = 3e-3, width: int = 32, feature_dim: int = 128, seed: int = 0,
                    device: str = "cpu", progress: bool | None = None, min_steps: int = MIN_STEPS,
                    force: bool = False) -> dict:
    """Train an evaluator on ``data_cfg``'s train split (``epochs``, at least ``min_steps`` steps), score it on
    its test split, write it to ``out``; one near chance is refused unless ``force``. Returns the training record
    (test accuracy, chance, sizes, settings, file SHA-256). ``progress`` None: a bar on a terminal only."""
    if epochs < 1 or batch_size < 1 or lr <= 0 or min_steps < 0:
        raise GankitError("epochs and batch size must be positive integers and lr a positive number")
    train, test, test_from = load_splits(data_cfg)
    if not train.is_image:
        raise GankitError(f"evaluators classify images; data {data_cfg.name!r} holds points")
    c, h, w = train.sample_shape
    if h != w:
        raise GankitError(f"evaluators take square images, got {h}x{w}; set data.size")
    spec = EvaluatorSpec(in_channels=c, size=h, classes=train.class_names(), width=width, feature_dim=feature_dim,
                         dataset=data_cfg.name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = EvaluatorNet(spec).to(device)
    start = time.monotonic()
    steps = training_steps(len(train), epochs, batch_size, min_steps)
    print(f"training an evaluator on {len(train):,} {data_cfg.name} images of {train.num_classes} classes "
          f"({c}x{h}x{w}) for {steps:,} steps on {device}; scored on {len(test):,} images ({test_from})")
    # on stdout, as a training run's header: stderr keeps the bar and a refusal's one line
    _fit(net, train, steps, batch_size, lr, seed, progress)
    acc = accuracy(net, test)
    weak, chance = near_chance(acc, train.num_classes, len(test))
    if weak and not force:
        raise GankitError(f"not written: test accuracy {acc:.1%} on {len(test)} images ({test_from}) is near chance "
                          f"({chance:.1%} for {train.num_classes} classes), so its features would make every score "
                          f"noise; train longer (--epochs, now {steps} steps), on more images per class, or check "
                          "the labels (--force writes it anyway)")
    record = {"test_accuracy": round(acc, 5), "chance": round(chance, 5), "test_size": len(test),
              "test_split": test_from, "train_size": len(train), "epochs": epochs, "steps": steps,
              "batch_size": batch_size, "lr": lr, "seed": seed,
              "data": {"name": data_cfg.name, "size": data_cfg.size, "channels": data_cfg.channels},
              "device": str(device), "versions": {"gankit": __version__, "torch": torch.__version__}}
    if weak:
        record["near_chance"] = True  # kept with force: say so in the file itself
    spec.record = record  # no timings in the file: the same command gives a byte-identical file
    record = {**record, "seconds": round(time.monotonic() - start, 1), "sha256": save_evaluator(net.cpu(), spec, out)}
    card = Path(out).with_suffix(".json")
    card.write_text(json.dumps({"file": Path(out).name, "classes": spec.classes, **record}, indent=2) + "\n")
    return record


def training_steps(n_train: int, epochs: int, batch_size: int, min_steps: int = MIN_STEPS) -> int:
    """Optimizer steps: ``epochs`` passes of full batches over ``n_train`` images, at least ``min_steps``."""
    return max(epochs * max(1, n_train // batch_size), min_steps)


def _fit(net: EvaluatorNet, train: ArrayData, steps: int, batch_size: int, lr: float, seed: int,
         progress: bool | None) -> None:
    device = next(net.parameters()).device
    g = torch.Generator().manual_seed(seed + 1)
    steps_per_epoch = max(1, len(train) // batch_size)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    max_shift = max(1, train.sample_shape[-1] // 10)
    x_all, y_all = train.x.to(device), train.y.to(device)
    bar = tqdm(total=steps, disable=None if progress is None else not progress, desc="evaluator", unit="step",
               mininterval=0.5)
    for epoch in range(math.ceil(steps / steps_per_epoch)):
        net.train()
        order = torch.randperm(len(train), generator=g).to(device)
        for i in range(min(steps_per_epoch, steps - epoch * steps_per_epoch)):
            idx = order[i * batch_size:(i + 1) * batch_size]
            loss = F.cross_entropy(net(random_shift(x_all[idx], max_shift, g)), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
