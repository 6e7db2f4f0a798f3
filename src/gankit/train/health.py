"""Health checks the trainer runs off the hot path: non-finite values, and signs of mode collapse.

* Non-finite values are looked for where the trainer already syncs with the host: in each log row (the window's
  summed losses are non-finite if any step's were) and in the weights before every checkpoint, so a checkpoint
  never holds a NaN. What happens then is the trainer's business (roll back and retry, see ``health.*``).
* Collapse is only *warned* about, never acted on: the discriminator's accuracy pinned at or above
  ``health.d_acc_threshold`` for ``health.d_acc_patience`` consecutive log rows (the generator no longer fools it at
  all), and the diversity of the preview samples (mean pairwise distance of the samples drawn from the fixed preview
  noise) falling below ``health.diversity_ratio`` of the same measure on real data.
* Both collapse warnings arm only after a warm-up (:func:`warmup_steps`): a generator a few steps old draws
  near-identical samples and is easily told apart, which says nothing about collapse.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import HealthConfig


def nonfinite_keys(row: dict) -> list[str]:
    """The keys of a log row whose float values are NaN or infinite."""
    return [k for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)]


def nonfinite_parameters(modules: dict[str, nn.Module]) -> list[str]:
    """Names of parameters or buffers holding a NaN or Inf (one host sync per module)."""
    bad = []
    for name, module in modules.items():
        tensors = [t for t in list(module.parameters()) + list(module.buffers()) if t.is_floating_point()]
        if tensors and not bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()):
            bad += [f"{name}.{k}" for k, t in module.state_dict().items()
                    if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    return bad


@torch.no_grad()
def diversity(x: torch.Tensor) -> float:
    """Mean pairwise Euclidean distance between the (flattened) samples of ``x``."""
    flat = x.reshape(len(x), -1).float()
    if len(flat) < 2:
        return 0.0
    d = torch.cdist(flat, flat)
    return float(d.sum() / (len(flat) * (len(flat) - 1)))


MIN_WARMUP = 100  # a run's length never shortens the warm-up below this (a dry run or a 50-step run never warns)


def warmup_steps(cfg: HealthConfig, total_steps: int | None) -> int:
    """Steps before the collapse warnings arm: ``health.warmup_steps``, or 10% of ``total_steps`` when sooner (a
    short run is watched for most of its length), but not below ``MIN_WARMUP`` unless ``health.warmup_steps`` itself
    is lower."""
    if total_steps is None:
        return cfg.warmup_steps
    return min(cfg.warmup_steps, max(total_steps // 10, MIN_WARMUP))


class CollapseMonitor:
    """Turns log rows and preview samples into warnings (each said once until the condition clears); silent during
    the warm-up (``total_steps``: the run's length, which caps it; None: ``health.warmup_steps`` alone)."""

    def __init__(self, cfg: HealthConfig, real_diversity: float, total_steps: int | None = None) -> None:
        self.cfg = cfg
        self.real_diversity = real_diversity
        self.warmup = warmup_steps(cfg, total_steps)
        self.pinned_rows = 0
        self.active: set[str] = set()

    def observe_row(self, row: dict) -> list[str]:
        """Warnings raised by one log row (D accuracy pinned)."""
        acc = row.get("d_acc")
        if not self.cfg.collapse_warnings or acc is None or not self._armed(row.get("step")):
            return []
        self.pinned_rows = self.pinned_rows + 1 if acc >= self.cfg.d_acc_threshold else 0
        if self.pinned_rows >= self.cfg.d_acc_patience:
            return self._raise("d_acc", f"the discriminator's accuracy has been >= {self.cfg.d_acc_threshold:.0%} "
                                        f"for {self.pinned_rows} log rows: the generator no longer fools it "
                                        "(collapse or vanishing gradients)")
        self.active.discard("d_acc")
        return []

    def observe_samples(self, samples: torch.Tensor, step: int | None = None) -> list[str]:
        """The warning (if any) raised by the preview samples' diversity (at ``step``) relative to the data's."""
        ratio = diversity(samples) / max(self.real_diversity, 1e-12)
        if self.cfg.collapse_warnings and self._armed(step) and ratio < self.cfg.diversity_ratio:
            return self._raise("diversity", f"sample diversity is {ratio:.0%} of the data's: the generator may have "
                                            "collapsed to a few outputs")
        self.active.discard("diversity")
        return []

    def _armed(self, step: int | None) -> bool:
        """Past the warm-up (a check without a step, as in a unit test of the thresholds, is always armed)."""
        return step is None or step >= self.warmup

    def _raise(self, key: str, message: str) -> list[str]:
        if key in self.active:
            return []
        self.active.add(key)
        return [message]
