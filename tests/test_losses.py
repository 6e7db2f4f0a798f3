"""Adversarial losses against closed forms, and the saturation property that motivates the non-saturating loss."""

from __future__ import annotations

import math

import pytest
import torch

from gankit.losses import d_bce, g_minimax, g_non_saturating
from gankit.registry import LOSSES


def logit(p: float) -> float:
    return math.log(p / (1 - p))


@pytest.mark.parametrize("p_real, p_fake", [(0.9, 0.2), (0.5, 0.5), (0.01, 0.99)])
def test_d_bce_matches_the_value_function(p_real, p_fake):
    real = torch.full((4,), logit(p_real))
    fake = torch.full((4,), logit(p_fake))
    expected = -(math.log(p_real) + math.log(1 - p_fake))
    assert abs(d_bce(real, fake).item() - expected) < 1e-5
    assert abs(d_bce(real, None).item() + math.log(p_real)) < 1e-5
    assert abs(d_bce(None, fake).item() + math.log(1 - p_fake)) < 1e-5


@pytest.mark.parametrize("p", [0.02, 0.5, 0.97])
def test_generator_losses_closed_form(p):
    fake = torch.full((3,), logit(p))
    assert abs(g_minimax(fake).item() - math.log(1 - p)) < 1e-5
    assert abs(g_non_saturating(fake).item() + math.log(p)) < 1e-5


def test_losses_are_finite_for_extreme_logits():
    extreme = torch.tensor([-200.0, 200.0])
    for value in (d_bce(extreme, extreme), g_minimax(extreme), g_non_saturating(extreme)):
        assert torch.isfinite(value)


def _grad_wrt_logit(loss_fn, p: float) -> float:
    l = torch.tensor([logit(p)], requires_grad=True)
    loss_fn(l).backward()
    return l.grad.item()


def test_minimax_saturates_when_d_rejects_the_fakes():
    # d/dl log(1 - sigmoid(l)) = -sigmoid(l): vanishes as D(G(z)) -> 0; d/dl -log sigmoid(l) = sigmoid(l) - 1 -> -1.
    p = 1e-4
    g_sat = _grad_wrt_logit(g_minimax, p)
    g_ns = _grad_wrt_logit(g_non_saturating, p)
    assert abs(g_sat - (-p)) < 1e-7
    assert abs(g_ns - (p - 1)) < 1e-6
    assert abs(g_ns) > 1000 * abs(g_sat)


def test_both_losses_push_the_same_way_and_agree_near_fixed_point():
    # At D(G(z)) = 1/2 both gradients equal -1/2: the two losses share their fixed points.
    assert abs(_grad_wrt_logit(g_minimax, 0.5) + 0.5) < 1e-6
    assert abs(_grad_wrt_logit(g_non_saturating, 0.5) + 0.5) < 1e-6


def test_registry_holds_the_pairs():
    assert {"minimax", "non_saturating"} <= set(LOSSES.names())
    assert LOSSES.get("minimax").g is g_minimax
    assert LOSSES.get("non_saturating").d is d_bce
