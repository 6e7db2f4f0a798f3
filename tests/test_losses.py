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


# ---------------------------------------------------------------------------------------------------------------
# The rest of the zoo, against closed forms


from gankit.losses import (d_hinge, d_least_squares, d_relativistic_average, d_wasserstein, g_critic,  # noqa: E402
                           g_least_squares, g_relativistic_average, gradient_penalty, r1_penalty)

REAL = torch.tensor([2.0, -0.5, 0.25])
FAKE = torch.tensor([-1.0, 0.5, 3.0])


def test_least_squares_closed_form():
    expected_d = 0.5 * ((REAL - 1) ** 2).mean() + 0.5 * (FAKE ** 2).mean()
    assert abs(d_least_squares(REAL, FAKE) - expected_d) < 1e-6
    assert abs(g_least_squares(FAKE) - 0.5 * ((FAKE - 1) ** 2).mean()) < 1e-6
    assert abs(d_least_squares(None, FAKE) - 0.5 * (FAKE ** 2).mean()) < 1e-6


def test_hinge_closed_form():
    # relu(1 - [2, -0.5, 0.25]) = [0, 1.5, 0.75]; relu(1 + [-1, 0.5, 3]) = [0, 1.5, 4]
    assert abs(d_hinge(REAL, FAKE) - (2.25 / 3 + 5.5 / 3)) < 1e-6
    assert abs(g_critic(FAKE) - (-2.5 / 3)) < 1e-6


def test_wasserstein_closed_form():
    assert abs(d_wasserstein(REAL, FAKE) - (FAKE.mean() - REAL.mean())) < 1e-6


def test_relativistic_average_closed_form_and_symmetry():
    sp = torch.nn.functional.softplus
    expected = sp(-(REAL - FAKE.mean())).mean() + sp(FAKE - REAL.mean()).mean()
    assert abs(d_relativistic_average(REAL, FAKE) - expected) < 1e-6
    assert abs(g_relativistic_average(FAKE, REAL) - d_relativistic_average(FAKE, REAL)) < 1e-6


def test_one_sided_label_smoothing():
    l = torch.tensor([logit(0.8)])
    expected = -(0.9 * math.log(0.8) + 0.1 * math.log(0.2))
    assert abs(d_bce(l, None, real_target=0.9).item() - expected) < 1e-5
    assert abs(d_bce(None, l, real_target=0.9).item() + math.log(0.2)) < 1e-5  # fakes keep target 0


@pytest.mark.parametrize("scale", [1.0, 0.5, 3.0])
def test_gradient_penalty_of_a_linear_critic(scale):
    """D(x) = w . x with ||w|| = scale has gradient norm `scale` everywhere: the penalty is (scale - 1)^2, ~0 for a
    1-Lipschitz critic with unit slope."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(1, 3, 4, 4, generator=g)
    w = w / w.norm() * scale
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    real, fake = torch.randn(16, 3, 4, 4, generator=g), torch.randn(16, 3, 4, 4, generator=g)
    assert abs(gradient_penalty(critic, real, fake, g).item() - (scale - 1) ** 2) < 1e-5
    assert abs(r1_penalty(critic, real).item() - 0.5 * scale ** 2) < 1e-5


def test_gradient_penalty_interpolates_per_sample_and_is_differentiable():
    w = torch.nn.Parameter(torch.ones(1, 2))
    critic = lambda x: ((x * w) ** 2).sum(1)  # noqa: E731  (a non-linear critic: the penalty depends on x_hat)
    real, fake = torch.zeros(64, 2), torch.ones(64, 2)
    gp = gradient_penalty(critic, real, fake, torch.Generator().manual_seed(0))
    gp.backward()
    assert w.grad is not None and torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0


def test_every_registered_loss_is_finite_and_differentiable():
    for name in LOSSES.names():
        loss = LOSSES.get(name)
        real, fake = REAL.clone().requires_grad_(), FAKE.clone().requires_grad_()
        d = loss.d(real, fake)
        g = loss.g(fake, real)
        (d + g).backward()
        assert torch.isfinite(d) and torch.isfinite(g) and torch.isfinite(fake.grad).all(), name
