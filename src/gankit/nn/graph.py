"""What an exported graph computes: one function of named tensors, described for the people who call it.

A family says how its trained model is used outside gankit (the task's ``export_graph``; a generator's ``graph``):
the module whose forward is the family's verb (sampling from given codes, translating, encoding or decoding,
predicting), example inputs, and what each input and the output hold. ``gankit export --format onnx`` traces it
with a dynamic batch axis; the tests run the file with onnxruntime against the same module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import GankitError

EXAMPLE_BATCH = 3  # rows of the example inputs: not 1, which torch.export would take for a fixed size


@dataclass
class Graph:
    """``module(*inputs.values())`` -> one tensor named ``output`` (the module's forward takes the inputs as
    ``*inputs``, in this order); ``docs`` says what each name holds (shape, dtype, range), ``fixed`` names the inputs
    without a batch axis, ``options`` the choices the graph was built with (recorded in the exported file)."""

    module: nn.Module
    inputs: dict[str, torch.Tensor]
    output: str
    docs: dict[str, str]
    fixed: tuple[str, ...] = ()
    options: dict = field(default_factory=dict)


class Call(nn.Module):
    """``owner.method(*inputs, **fixed)`` as a module's forward: the one function an exported graph computes."""

    def __init__(self, owner: nn.Module, method: str, **fixed) -> None:
        super().__init__()
        self.owner, self.method, self.fixed = owner, method, fixed

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return getattr(self.owner, self.method)(*inputs, **self.fixed)


def take_options(options: dict, allowed: dict[str, tuple], model: str) -> dict:
    """``options`` checked against what a family's export takes, ``allowed`` = {name: (default, valid values or
    None for a finite number)}; the defaults filled in. A name the family does not take, or a value not among its
    choices, is one line."""
    extra = sorted(set(options) - set(allowed))
    if extra:
        takes = ", ".join(f"--{k}" for k in allowed) or "none"
        raise GankitError(f"export option --{extra[0]} does not apply to this run's model ({model}); it takes: "
                          f"{takes}")
    out = {}
    for name, (default, choices) in allowed.items():
        value = options.get(name, default)
        if value is not None and choices is not None and value not in choices:
            raise GankitError(f"--{name} {value}: expected {' or '.join(map(str, choices))}")
        if value is not None and choices is None and not (isinstance(value, (int, float)) and math.isfinite(value)):
            raise GankitError(f"--{name} {value}: expected a finite number")
        out[name] = value
    return out


def shape_doc(shape: tuple[int, ...], dtype: str, what: str) -> str:
    """``(B, 1, 28, 28) float32, what`` for an input's or output's description."""
    return f"({', '.join(['B', *map(str, shape)])}) {dtype}, {what}"
