"""Mixed precision for the training step (``train.precision``).

``bf16`` runs each training step under ``torch.autocast`` with bfloat16: matrix products and convolutions take
bf16 inputs (on CPUs with AVX-512 BF16 or AMX, and on recent GPUs, several times faster than fp32), while the
weights, their gradients and the optimizer's moments stay fp32 (the "master weights"), and losses are computed in
fp32 (the recipes cast logits and decoder outputs up before a loss). bfloat16 has fp32's exponent range, so no loss
scaling is needed. The whole step, backward and optimizer updates included, runs in the context, with autocast's
cache of bf16 weight copies turned off: a step that updates a network and then runs it again (the Keras schedule's
two discriminator updates, ``d_steps`` > 1, weight clipping) must see the updated weights, which a cached copy from
before the update would hide. Backward ops take the precision autocast gave the matching forward ops, and the
optimizer's elementwise ops are not autocast. Output activations (a generator's tanh) run in bf16, whose tanh
saturates at about |x| > 3.4 a little earlier than fp32's. Sampling, evaluation and checkpoints stay fp32.
"""

from __future__ import annotations

from contextlib import nullcontext
from functools import partial
from typing import Callable, ContextManager

import torch

from ..errors import ConfigError


def autocast_factory(device: torch.device, precision: str) -> Callable[[], ContextManager]:
    """A zero-argument factory of the context a training step runs in."""
    if precision == "fp32":
        return nullcontext
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"train.precision=bf16: {torch.cuda.get_device_name(device)} has no bfloat16 support; "
                          "use train.precision=fp32")
    return partial(torch.autocast, device_type=device.type, dtype=torch.bfloat16, cache_enabled=False)
