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

bf16 is only fast where the hardware does it: on a CPU, PyTorch sends bf16 matrix products and convolutions to
oneDNN when the CPU has AVX-512 (or ARM's BF16 extension), and natively fast only with AVX-512 BF16 or AMX; on an
AVX2-only CPU they fall back to generic code: on one such machine bf16 matrix products ran at about 1 GFLOP/s
against 45-160 in fp32 (256- to 2048-wide), and training steps were 7x (the seed MLP GAN) and 25x (DCGAN) slower
than in fp32. :func:`bf16_note` says so before such a run starts.

Also here: the memory-layout and compilation switches (:func:`use_channels_last`, :func:`compile_modules`).
"""

from __future__ import annotations

import shutil
from contextlib import nullcontext
from functools import partial
from typing import Callable, ContextManager

import torch
from torch import nn

from ..errors import ConfigError


def use_channels_last(modules: dict[str, nn.Module]) -> None:
    """``train.channels_last``: convolutional networks keep their weights (and so their activations) in NHWC
    layout, which oneDNN's and cuDNN's bf16 convolutions prefer (parameters keep their identity)."""
    for module in modules.values():
        if any(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) for m in module.modules()):
            module.to(memory_format=torch.channels_last)


HOT_METHODS = ("forward", "forward_all", "posterior", "decoder_output")  # what the recipes call in a step


def compile_modules(modules: dict[str, nn.Module], skip: set[str] = frozenset(), note: str = "") -> str | None:
    """``train.compile``: the methods a training step calls on each network (``forward``, a discriminator's
    ``forward_all``, a VAE's ``posterior`` and ``decoder_output``) are replaced, on the instance, by compiled versions
    (``torch.compile``): the state dict keeps its names (no ``_orig_mod.`` prefix), and compiling gankit's
    own methods rather than torch's ``nn.Sequential`` lets dynamo trace them (it skips torch's own modules as top
    frames). A graph that fails to compile runs eagerly (dynamo's ``suppress_errors``) rather than stop the run.
    Returns a note when compilation is not possible here at all (training then runs uncompiled).

    The compiled methods live on the instances: a ``copy.deepcopy`` of a compiled network would call the original's
    weights, so copies (the EMA generator) must be taken before this is called. ``suppress_errors`` is set for the
    whole process."""
    modules = {k: m for k, m in modules.items() if k not in skip}  # those the recipe keeps eager (``note`` says why)
    if not modules:
        return note or None
    if not _compiler_available():
        return ("train.compile=true: torch.compile is not usable here (no C++ compiler on PATH, or an unsupported "
                "platform): training runs uncompiled")
    import torch._dynamo

    torch._dynamo.config.suppress_errors = True
    for module in modules.values():
        for name in HOT_METHODS:
            if callable(getattr(type(module), name, None)):
                setattr(module, name, torch.compile(getattr(module, name)))
    return note or None


def _compiler_available() -> bool:
    try:
        import torch._dynamo

        if not torch._dynamo.is_dynamo_supported():
            return False
    except Exception:  # noqa: BLE001  (an import error or an unsupported Python: no compilation)
        return False
    return any(shutil.which(c) for c in ("g++", "c++", "clang++")) or torch.cuda.is_available()


def bf16_note(device: torch.device) -> str | None:
    """A warning for ``train.precision=bf16`` on a CPU without bfloat16 support in oneDNN (``None`` elsewhere)."""
    if device.type != "cpu" or _cpu_bf16_supported():
        return None
    capability = torch.backends.cpu.get_cpu_capability()
    return (f"train.precision=bf16: this CPU ({capability}) has no bfloat16 support that PyTorch can use (oneDNN "
            "needs AVX-512 or ARM's BF16 extension): bf16 matrix products and convolutions run through generic "
            "code, several to tens of times slower than fp32; use train.precision=fp32 here")


def _cpu_bf16_supported() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


def autocast_factory(device: torch.device, precision: str, warn: Callable[[str], None] | None = None
                     ) -> Callable[[], ContextManager]:
    """A zero-argument factory of the context a training step runs in; ``warn`` is told when bf16 will be slow."""
    if precision == "fp32":
        return nullcontext
    if warn is not None and (slow := bf16_note(device)):
        warn(f"warning: {slow}")
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"train.precision=bf16: {torch.cuda.get_device_name(device)} has no bfloat16 support; "
                          "use train.precision=fp32")
    return partial(torch.autocast, device_type=device.type, dtype=torch.bfloat16, cache_enabled=False)
