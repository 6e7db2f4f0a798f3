"""Contracts over every registered model with the adversarial recipe: shapes, ranges, who a step changes."""

from __future__ import annotations


import pytest
import torch

from gankit.config import OptimConfig, from_dict
from gankit.data.base import ArrayData
from gankit.data.sampler import BatchSampler
from gankit.models import build_models
from gankit.recipes.adversarial import AdversarialConfig, AdversarialRecipe
from gankit.registry import MODELS

SHAPES = {"image": (1, 8, 8), "points": (2,)}


def tiny_model_cfg(name: str):
    return from_dict({"model": {"name": name, "g_hidden": [16, 16], "d_hidden": [16], "latent_dim": 4}}).model


def make_parts(name: str, shape, schedule="full", d_steps=1, loss="non_saturating"):
    modules = build_models(tiny_model_cfg(name), shape, 0, seed=0)
    recipe = AdversarialRecipe(AdversarialConfig(loss=loss, d_steps=d_steps, schedule=schedule), modules,
                               OptimConfig(lr_g=1e-2, lr_d=1e-2))
    x = torch.rand(64, *shape) * 2 - 1
    return modules, recipe, BatchSampler(ArrayData(x), seed=0)


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before, module):
    return {k for k, v in module.state_dict().items() if not torch.equal(before[k], v)}


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("kind", list(SHAPES))
def test_shapes_and_ranges(name, kind):
    shape = SHAPES[kind]
    modules = build_models(tiny_model_cfg(name), shape, 0, seed=0)
    G, D = modules["generator"], modules["discriminator"]
    out = G.sample(5, generator=torch.Generator().manual_seed(0))
    assert out.shape == (5, *shape)
    if tiny_model_cfg(name).output == "tanh":
        assert out.min() >= -1 and out.max() <= 1
    assert D(out).shape == (5,)
    with pytest.raises(AssertionError):
        G(torch.zeros(5, 3))


@pytest.mark.parametrize("name", MODELS.names())
def test_sampling_is_reproducible_and_uses_the_generator(name):
    G = build_models(tiny_model_cfg(name), (1, 8, 8), 0, seed=0)["generator"]
    a = G.sample(4, generator=torch.Generator().manual_seed(1))
    b = G.sample(4, generator=torch.Generator().manual_seed(1))
    c = G.sample(4, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_same_seed_same_weights_without_touching_global_rng():
    state = torch.get_rng_state()
    a = build_models(tiny_model_cfg("mlp_gan"), (1, 8, 8), 0, seed=3)["generator"]
    b = build_models(tiny_model_cfg("mlp_gan"), (1, 8, 8), 0, seed=3)["generator"]
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_seed_gan_architecture_is_exact():
    modules = build_models(from_dict({}).model, (1, 28, 28), 0, seed=0)
    G, D = modules["generator"], modules["discriminator"]
    linears = [m for m in G.modules() if isinstance(m, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(100, 256), (256, 512), (512, 1024), (1024, 784)]
    bns = [m for m in G.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(bns) == 3 and all(abs(b.momentum - 0.2) < 1e-12 for b in bns)
    d_linears = [m for m in D.modules() if isinstance(m, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in d_linears] == [(784, 512), (512, 256), (256, 1)]
    assert all(torch.count_nonzero(l.bias) == 0 for l in linears + d_linears)  # Keras zero bias init
    slopes = {m.negative_slope for m in list(G.modules()) + list(D.modules()) if isinstance(m, torch.nn.LeakyReLU)}
    assert slopes == {0.2}


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("schedule", ["full", "keras"])
def test_generator_step_changes_g_and_leaves_d_untouched(name, schedule):
    modules, recipe, _ = make_parts(name, SHAPES["image"], schedule)
    G, D = modules["generator"], modules["discriminator"]
    d_before, g_before = snapshot(D), snapshot(G)
    recipe._g_step(torch.Generator().manual_seed(0), 16)
    assert changed(d_before, D) == set()
    assert changed(g_before, G)  # G moved
    assert all(p.grad is None for p in D.parameters())
    assert all(p.requires_grad for p in D.parameters())  # unfrozen again afterwards


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("schedule", ["full", "keras"])
def test_discriminator_step_changes_d_and_leaves_g_weights_untouched(name, schedule):
    modules, recipe, batches = make_parts(name, SHAPES["image"], schedule)
    G, D = modules["generator"], modules["discriminator"]
    d_before = snapshot(D)
    g_params = [p.detach().clone() for p in G.parameters()]
    step = recipe._d_step_keras if schedule == "keras" else recipe._d_step_full
    logs = step(batches, torch.Generator().manual_seed(0), 16)
    assert changed(d_before, D)
    assert all(torch.equal(a, b) for a, b in zip(g_params, G.parameters()))
    assert all(p.grad is None for p in G.parameters())
    assert set(logs) == {"d_loss", "d_real", "d_fake", "d_acc"}
    assert 0 <= float(logs["d_acc"]) <= 1


@pytest.mark.parametrize("d_steps", [1, 3])
@pytest.mark.parametrize("schedule, updates_per_d_step, draws_per_d_step", [("full", 1, 16), ("keras", 2, 8)])
def test_k_discriminator_steps_per_generator_step(d_steps, schedule, updates_per_d_step, draws_per_d_step):
    _, recipe, batches = make_parts("mlp_gan", SHAPES["image"], schedule, d_steps)
    logs = recipe.step(batches, torch.Generator().manual_seed(0), 16)
    d_opt, g_opt = recipe.optimizers["discriminator"], recipe.optimizers["generator"]
    d_count = int(next(iter(d_opt.state.values()))["step"])
    g_count = int(next(iter(g_opt.state.values()))["step"])
    assert d_count == d_steps * updates_per_d_step and g_count == 1
    assert batches.pos == d_steps * draws_per_d_step  # real images drawn by the discriminator only
    assert set(logs) == {"d_loss", "d_real", "d_fake", "d_acc", "g_loss"}
    assert all(v.dim() == 0 and not v.requires_grad for v in logs.values())


def test_gan_learns_a_shifted_gaussian():
    # A smoke test of the whole step: after some steps the generated mean moves to the data's mean (3, -2).
    torch.manual_seed(0)
    shape = (2,)
    modules = build_models(tiny_model_cfg("mlp_toy"), shape, 0, seed=0)
    recipe = AdversarialRecipe(AdversarialConfig(), modules, OptimConfig(lr_g=2e-3, lr_d=2e-3))
    x = torch.randn(4096, 2, generator=torch.Generator().manual_seed(0)) * 0.3 + torch.tensor([3.0, -2.0])
    batches, noise = BatchSampler(ArrayData(x), seed=0), torch.Generator().manual_seed(0)
    for _ in range(600):
        recipe.step(batches, noise, 64)
    mean = modules["generator"].sample(2000, generator=torch.Generator().manual_seed(1)).mean(0)
    assert torch.allclose(mean, torch.tensor([3.0, -2.0]), atol=0.3), mean
