"""The two halves of an hourglass network, shared by the autoencoder and VAE families.

``mlp``: flatten -> hidden layers -> a linear code; the decoder mirrors the hidden widths back to the sample's size.
``conv``: stride-2 4x4 convolutions halve the side n times (n as large as keeps it whole and >= 4, as in DCGAN:
28 -> 14 -> 7, 32 -> 16 -> 8 -> 4, 8 -> 4), channels doubling from ``width``; a linear layer maps the last feature map
to the code. The decoder mirrors it with transposed convolutions. Both decoders end in a linear layer; the family
decides what the output means (tanh image, Bernoulli logits, Gaussian mean).
"""

from __future__ import annotations

import math

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "leaky_relu": lambda: nn.LeakyReLU(0.2)}


def mlp_encoder(shape: tuple[int, ...], hidden: list[int], out: int, activation: str) -> nn.Sequential:
    """flatten(shape) -> hidden widths -> ``out`` linear units."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(shape)
    for h in hidden:
        layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
        width = h
    return nn.Sequential(*layers, nn.Linear(width, out))


def mlp_decoder(code: int, hidden: list[int], shape: tuple[int, ...], activation: str) -> nn.Sequential:
    """``code`` -> hidden widths (reversed) -> a linear layer of prod(shape) units, reshaped to ``shape``."""
    layers: list[nn.Module] = []
    width = code
    for h in reversed(hidden):
        layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
        width = h
    return nn.Sequential(*layers, nn.Linear(width, math.prod(shape)), nn.Unflatten(1, tuple(shape)))


def halvings(side: int) -> int:
    """How many times a stride-2 convolution can halve ``side`` keeping it whole and >= 4."""
    n = 0
    while side % 2 == 0 and side // 2 >= 4:
        side //= 2
        n += 1
    return n


def _conv_plan(shape: tuple[int, ...], width: int) -> tuple[list[int], int]:
    """Channels after each halving and the final side length."""
    side = shape[-1]
    n = halvings(side)
    if shape[-2] != side or n == 0:
        raise ValueError(f"conv autoencoders need square images whose side halves at least once to >= 4, got "
                         f"{tuple(shape)}")
    return [width * 2 ** i for i in range(n)], side // 2 ** n


def conv_encoder(shape: tuple[int, ...], width: int, out: int, activation: str) -> nn.Sequential:
    """(C, S, S) -> stride-2 convolutions -> a linear layer of ``out`` units."""
    channels, side = _conv_plan(shape, width)
    layers: list[nn.Module] = []
    c_in = shape[0]
    for c in channels:
        layers += [nn.Conv2d(c_in, c, 4, 2, 1), ACTIVATIONS[activation]()]
        c_in = c
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c_in * side * side, out))


def conv_decoder(code: int, width: int, shape: tuple[int, ...], activation: str) -> nn.Sequential:
    """``code`` -> a linear layer to the smallest feature map -> transposed convolutions -> (C, S, S), linear."""
    channels, side = _conv_plan(shape, width)
    layers: list[nn.Module] = [nn.Linear(code, channels[-1] * side * side), ACTIVATIONS[activation](),
                               nn.Unflatten(1, (channels[-1], side, side))]
    c_in = channels[-1]
    for c in reversed(channels[:-1]):
        layers += [nn.ConvTranspose2d(c_in, c, 4, 2, 1), ACTIVATIONS[activation]()]
        c_in = c
    return nn.Sequential(*layers, nn.ConvTranspose2d(c_in, shape[0], 4, 2, 1))


def build_halves(arch: str, shape: tuple[int, ...], hidden: list[int], width: int, enc_out: int, code: int,
                 activation: str) -> tuple[nn.Module, nn.Module]:
    """(encoder, decoder) of ``arch`` (mlp or conv); the encoder ends in ``enc_out`` units, the decoder takes
    ``code``."""
    if arch == "mlp":
        return mlp_encoder(shape, hidden, enc_out, activation), mlp_decoder(code, hidden, shape, activation)
    return conv_encoder(shape, width, enc_out, activation), conv_decoder(code, width, shape, activation)


def flat_dims(x: torch.Tensor) -> int:
    """Number of values in one sample of a batch."""
    return math.prod(x.shape[1:])
