"""Learning-rate schedules, applied by the trainer before every step.

Each optimizer group keeps ``base_lr``: the rate the schedule scales. A rollback's ``health.lr_factor`` and a new rate
given on resume change ``base_lr`` (so that the schedule keeps its shape); ``lr`` is always ``base_lr`` times the
schedule's factor at the current step. ``linear`` holds the rate for the first ``optim.decay_start`` share of
``train.steps`` and then lowers it linearly to ``optim.final_factor`` of it at the last step (zero by default, as
CycleGAN does, Zhu et al. 2017, sec. 7); ``cosine`` lowers it along a half cosine instead, as R3GAN does (Huang et al.
2024, its code's schedule of the rate and of gamma).
"""

from __future__ import annotations

import math

import torch

from ..config import OptimConfig


def lr_factor(cfg: OptimConfig, step: int, total: int) -> float:
    """The schedule's multiplier for the update that takes the run from ``step`` to ``step + 1``."""
    if cfg.schedule == "constant":
        return 1.0
    start = cfg.decay_start * total
    if step < start:
        return 1.0
    left = max(0.0, (total - step) / max(total - start, 1.0))  # 1 when the fall starts, 0 at the last step
    if cfg.schedule == "cosine":
        left = 0.5 * (1.0 - math.cos(math.pi * left))
    return cfg.final_factor + (1.0 - cfg.final_factor) * left


def init_base_lr(opt: torch.optim.Optimizer) -> None:
    """Give each group a ``base_lr`` (its current rate) unless it has one already (a restored checkpoint)."""
    for group in opt.param_groups:
        group.setdefault("base_lr", group["lr"])


def scale_base_lr(opt: torch.optim.Optimizer, factor: float) -> None:
    """Multiply the rate the schedule works from (and the current rate) by ``factor``."""
    for group in opt.param_groups:
        group["base_lr"] = group.get("base_lr", group["lr"]) * factor
        group["lr"] *= factor


def set_base_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    """Make ``lr`` the rate the schedule works from."""
    for group in opt.param_groups:
        group["base_lr"] = group["lr"] = lr


def apply_schedule(opt: torch.optim.Optimizer, factor: float) -> None:
    """Set each group's rate to ``base_lr x factor``."""
    for group in opt.param_groups:
        group["lr"] = group["base_lr"] * factor


def schedule_learning_rates(optimizers: dict[str, torch.optim.Optimizer], cfg: OptimConfig, step: int,
                            total: int) -> None:
    """Set every optimizer's rates for ``step`` of ``total`` (nothing to do on the constant schedule)."""
    if cfg.schedule != "constant":
        factor = lr_factor(cfg, step, total)
        for opt in optimizers.values():
            apply_schedule(opt, factor)


def apply_new_learning_rates(optimizers: dict[str, torch.optim.Optimizer], lr_keys: dict[str, str],
                             cfg: OptimConfig, saved: dict) -> None:
    """A learning rate changed since a checkpoint (--resume --set optim.lr_g=...) wins over the saved one; otherwise
    the saved one stays (it may have been lowered by a rollback). ``lr_keys``: optimizer name -> optim key."""
    for name, key in lr_keys.items():
        new = getattr(cfg, key)
        if name in optimizers and key in saved and saved[key] != new:
            set_base_lr(optimizers[name], new)
