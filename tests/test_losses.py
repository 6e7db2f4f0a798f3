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


# ---------------------------------------------------------------------------------------------------------------
# Path length regularisation (StyleGAN2, eq. 4)

from gankit.losses.penalties import path_length_penalty  # noqa: E402


@pytest.mark.parametrize("per_layer", [False, True])
def test_path_length_of_a_linear_generator_is_the_norm_of_its_transpose_times_the_noise(per_layer):
    torch.manual_seed(0)
    b, layers, d, side = 6, 3, 5, 4
    A = torch.randn(layers, d, side * side, requires_grad=True)  # images = sum over layers of w_l @ A_l
    ws = torch.randn(b, layers, d, requires_grad=True) if per_layer else torch.randn(b, d, requires_grad=True)
    w3 = ws if per_layer else ws[:, None].expand(-1, layers, -1)
    images = torch.einsum("bld,ldp->bp", w3, A).reshape(b, 1, side, side)
    mean = torch.tensor(0.5)
    penalty, new_mean = path_length_penalty(images, ws, mean, 0.1, torch.Generator().manual_seed(4))
    y = torch.randn(b, 1, side, side, generator=torch.Generator().manual_seed(4)).reshape(b, -1) / side
    grads = torch.einsum("ldp,bp->bld", A.detach(), y)  # J_w^T y, one row per layer
    if per_layer:
        lengths = grads.square().sum(2).mean(1).sqrt()
    else:  # one w shared by every layer: its gradient is the sum of the layers'
        lengths = grads.sum(1).square().sum(1).sqrt()
    expected_mean = 0.5 + 0.1 * (lengths.mean() - 0.5)
    assert new_mean.item() == pytest.approx(expected_mean.item(), rel=1e-5)
    assert penalty.item() == pytest.approx((lengths - expected_mean).square().mean().item(), rel=1e-4)
    assert not new_mean.requires_grad and penalty.requires_grad
    (g,) = torch.autograd.grad(penalty, A)  # the graph reaches the generator's weights: its update follows it
    assert g.abs().sum() > 0


def test_path_length_penalty_is_zero_when_every_length_equals_the_mean():
    # images = c * w on a 1x1 image: J^T y = c y, y = N(0, 1); with the mean already at each |c y| ... only one
    # sample, decay 1: the mean becomes that sample's length and the penalty vanishes
    w = torch.randn(1, 1, requires_grad=True)
    penalty, mean = path_length_penalty((3.0 * w).reshape(1, 1, 1, 1), w, torch.tensor(0.0), 1.0,
                                        torch.Generator().manual_seed(1))
    y = torch.randn(1, 1, 1, 1, generator=torch.Generator().manual_seed(1))
    assert mean.item() == pytest.approx(3.0 * abs(y.item()), rel=1e-6) and penalty.item() == pytest.approx(0, abs=1e-9)
    with pytest.raises(ValueError, match="require gradients"):
        path_length_penalty(torch.zeros(1, 1, 1, 1), torch.zeros(1, 1), torch.tensor(0.0), 0.1)


def test_path_length_over_the_layers_in_use_leaves_the_others_out():
    torch.manual_seed(2)
    ws = torch.randn(4, 6, 3, requires_grad=True)
    A = torch.randn(6, 3, 4)
    images = torch.einsum("bld,ldp->bp", ws[:, :2], A[:2]).reshape(4, 1, 2, 2)  # layers 2-5 unused
    first, _ = path_length_penalty(images, ws, torch.tensor(0.0), 1.0, torch.Generator().manual_seed(0), layers=2)
    part = ws[:, :2]
    images2 = torch.einsum("bld,ldp->bp", part, A[:2]).reshape(4, 1, 2, 2)
    alone, mean2 = path_length_penalty(images2, part, torch.tensor(0.0), 1.0, torch.Generator().manual_seed(0))
    diluted, mean6 = path_length_penalty(images, ws, torch.tensor(0.0), 1.0, torch.Generator().manual_seed(0))
    assert first.item() == pytest.approx(alone.item(), rel=1e-5)
    assert mean6.item() == pytest.approx(mean2.item() * math.sqrt(2 / 6), rel=1e-5)  # what layers= corrects
