"""Contracts over every registered model with the adversarial recipe: shapes, ranges, who a step changes."""

from __future__ import annotations


import pytest
import torch

from gankit.config import OptimConfig, from_dict
from gankit.data.base import ArrayData
from gankit.data.sampler import BatchSampler
from gankit.models import build_models
from gankit.models.r3gan import stage_sides
from gankit.recipes.adversarial import AdversarialConfig, AdversarialRecipe
from gankit.registry import MODELS

SHAPES = {"image": (1, 8, 8), "points": (2,)}
STEP_SHAPE = (1, 16, 16)  # two stride-2 layers: D's trunk has batch norm (or spectral norm) state to protect
TINY = {  # per family: the smallest widths worth testing
    "mlp_gan": {"g_hidden": [16, 16], "d_hidden": [16], "latent_dim": 4},
    "mlp_toy": {"g_hidden": [16, 16], "d_hidden": [16], "latent_dim": 4},
    "dcgan": {"g_width": 8, "d_width": 8, "latent_dim": 4},
    "r3gan": {"cardinality": 2, "expansion": 2, "embed_dim": 4, "latent_dim": 4},  # + one width per stage, below
}
KINDS = {"dcgan": ["image"], "r3gan": ["image"]}  # families that take images only
# the GAN families (the others, autoencoders and regressors, name their own recipe and have their own contract tests)
GANS = [n for n in MODELS.names() if MODELS.meta(n).get("recipe", "adversarial") == "adversarial"]
# (family, extra model keys, number of classes): every conditioning and stabiliser variant the families offer
VARIANTS = [("mlp_gan", {}, 0), ("mlp_toy", {}, 0), ("dcgan", {}, 0),
            ("mlp_gan", {"conditioning": "concat"}, 3), ("mlp_gan", {"pack": 2}, 0),
            ("dcgan", {"conditioning": "concat"}, 3), ("dcgan", {"conditioning": "projection"}, 3),
            ("dcgan", {"conditioning": "acgan"}, 3), ("dcgan", {"conditioning": "projection", "class_head": True}, 3),
            ("dcgan", {"spectral_norm": True}, 0),
            ("dcgan", {"pack": 2}, 0), ("r3gan", {}, 0), ("r3gan", {"conditioning": "projection"}, 3),
            ("r3gan", {"pack": 2}, 0)]
VARIANT_IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in extra.items()) or 'plain'}" for n, extra, _ in VARIANTS]


def tiny_model_cfg(name: str, shape=SHAPES["image"], **extra):
    sizes = {}
    if name == "r3gan":  # one width (and block count) per stage, from 4 px up to the images' side
        stages = len(stage_sides(shape[-1]))
        sizes = {"widths": [8] * stages, "blocks": [1] * stages}
    return from_dict({"model": {"name": name, **TINY[name], **sizes, **extra}}).model


def make_parts(name: str, shape, schedule="full", d_steps=1, loss="non_saturating", extra=None, classes=0,
               **recipe_keys):
    modules = build_models(tiny_model_cfg(name, shape, **(extra or {})), shape, classes, seed=0)
    recipe = AdversarialRecipe(AdversarialConfig(loss=loss, d_steps=d_steps, schedule=schedule, **recipe_keys),
                               modules, OptimConfig(lr_g=1e-2, lr_d=1e-2))
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, *shape, generator=g) * 2 - 1
    y = torch.randint(classes, (64,), generator=g) if classes else None
    return modules, recipe, BatchSampler(ArrayData(x, y, classes), seed=0)


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before, module):
    return {k for k, v in module.state_dict().items() if not torch.equal(before[k], v)}


@pytest.mark.parametrize("name", GANS)
@pytest.mark.parametrize("kind", list(SHAPES))
def test_shapes_and_ranges(name, kind):
    if kind not in KINDS.get(name, list(SHAPES)):
        pytest.skip(f"{name} takes {KINDS[name]} data only")
    shape = SHAPES[kind]
    cfg = tiny_model_cfg(name, shape)
    modules = build_models(cfg, shape, 0, seed=0)
    G, D = modules["generator"], modules["discriminator"]
    out = G.sample(5, generator=torch.Generator().manual_seed(0))
    assert out.shape == (5, *shape)
    if getattr(cfg, "output", "tanh") == "tanh":
        assert out.min() >= -1 and out.max() <= 1
    assert D(out).shape == (5,)
    with pytest.raises(AssertionError):
        G(torch.zeros(5, 3))


@pytest.mark.parametrize("name, extra, classes", VARIANTS, ids=VARIANT_IDS)
def test_every_variant_samples_and_judges(name, extra, classes):
    modules = build_models(tiny_model_cfg(name, **extra), SHAPES["image"], classes, seed=0)
    G, D = modules["generator"], modules["discriminator"]
    labels = torch.tensor([0, 1, 2, 0]) if classes else None
    out = G.sample(4, labels=labels, generator=torch.Generator().manual_seed(0))
    assert out.shape == (4, 1, 8, 8) and out.min() >= -1 and out.max() <= 1
    pack = extra.get("pack", 1)
    logits, cls = D.forward_all(out.reshape(4 // pack, pack, 8, 8), labels if D.conditioning != "acgan" else None)
    assert logits.shape == (4 // pack,)
    assert (cls is None) == (extra.get("conditioning") != "acgan" and not extra.get("class_head"))
    if cls is not None:
        assert cls.shape == (4, classes)


@pytest.mark.parametrize("side, start, doublings", [(8, 4, 1), (16, 4, 2), (28, 7, 2), (32, 4, 3), (64, 4, 4)])
def test_dcgan_resolution_is_an_argument(side, start, doublings):
    from gankit.models.dcgan import plan

    assert plan(side) == (start, doublings)
    G = build_models(tiny_model_cfg("dcgan"), (3, side, side), 0, seed=0)["generator"]
    assert G.sample(2).shape == (2, 3, side, side)


def test_dcgan_follows_the_paper():
    modules = build_models(tiny_model_cfg("dcgan"), (1, 32, 32), 0, seed=0)
    G, D = modules["generator"], modules["discriminator"]
    kinds = {type(m) for m in G.modules()} | {type(m) for m in D.modules()}
    assert torch.nn.Linear not in kinds and torch.nn.MaxPool2d not in kinds  # no FC hidden layers, no pooling
    assert all(m.stride == (2, 2) for m in D.trunk if isinstance(m, torch.nn.Conv2d))  # strided, no pooling
    assert isinstance(list(G.net)[-1], torch.nn.Tanh) and any(isinstance(m, torch.nn.ReLU) for m in G.modules())
    assert {m.negative_slope for m in D.modules() if isinstance(m, torch.nn.LeakyReLU)} == {0.2}
    assert not isinstance(list(D.trunk)[1], torch.nn.BatchNorm2d)  # no batch norm on D's input layer
    sn = build_models(tiny_model_cfg("dcgan", spectral_norm=True), (1, 32, 32), 0, seed=0)["discriminator"]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in sn.modules())
    assert all(hasattr(m, "parametrizations") for m in sn.modules() if isinstance(m, torch.nn.Conv2d))


def test_conditioning_needs_labelled_data():
    from gankit.errors import ConfigError

    with pytest.raises(ConfigError, match="labelled data"):
        build_models(tiny_model_cfg("dcgan", conditioning="projection"), (1, 8, 8), 0, seed=0)
    with pytest.raises(ConfigError, match="unconditional"):
        tiny_model_cfg("dcgan", conditioning="concat", pack=2)


@pytest.mark.parametrize("name", GANS)
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


STEP_CASES = [(n, e, k, "full", {}) for n, e, k in VARIANTS] + [
    ("mlp_gan", {}, 0, "keras", {}), ("dcgan", {}, 0, "keras", {}),
    ("dcgan", {"d_batch_norm": False}, 0, "full", {"loss": "wasserstein", "penalty": "gp"}),
    ("dcgan", {}, 0, "full", {"loss": "wasserstein", "weight_clip": 0.01}),
    ("dcgan", {"spectral_norm": True}, 0, "full", {"loss": "hinge", "augment": "translation,cutout,color"}),
    ("dcgan", {}, 0, "full", {"augment": "translation,color", "ada_target": 0.6, "ada_interval": 1}),
    ("mlp_gan", {}, 0, "full", {"loss": "least_squares", "penalty": "r1"}),
    ("mlp_gan", {}, 0, "full", {"loss": "relativistic_average"}),
    ("mlp_gan", {}, 0, "full", {"label_smoothing": 0.1}),
    ("r3gan", {}, 0, "full", {"loss": "relativistic_pairing", "penalty": "r1_r2"}),
    ("r3gan", {"conditioning": "projection"}, 3, "full", {"loss": "relativistic_pairing", "penalty": "r1_r2"}),
    ("mlp_gan", {}, 0, "full", {"loss": "relativistic_pairing", "penalty": "r1_r2", "penalty_every": 2}),
]
STEP_IDS = [f"{n}-{s}-{'-'.join(f'{k}={v}' for k, v in {**e, **r}.items()) or 'plain'}" for n, e, _, s, r in STEP_CASES]


@pytest.mark.parametrize("name, extra, classes, schedule, recipe_keys", STEP_CASES, ids=STEP_IDS)
def test_generator_step_changes_g_and_leaves_d_untouched(name, extra, classes, schedule, recipe_keys):
    modules, recipe, batches = make_parts(name, STEP_SHAPE, schedule, extra=extra, classes=classes, **recipe_keys)
    G, D = modules["generator"], modules["discriminator"]
    recipe._d_step_full(batches, torch.Generator().manual_seed(0), 16)  # also fills last_real for RaGAN
    recipe.optimizers["discriminator"].zero_grad(set_to_none=True)
    d_before, g_before = snapshot(D), snapshot(G)
    recipe._g_step(torch.Generator().manual_seed(0), 16)
    assert changed(d_before, D) == set()
    assert changed(g_before, G)  # G moved
    assert all(p.grad is None for p in D.parameters())
    assert all(p.requires_grad for p in D.parameters())  # unfrozen again afterwards


@pytest.mark.parametrize("name, extra, classes, schedule, recipe_keys", STEP_CASES, ids=STEP_IDS)
def test_discriminator_step_changes_d_and_leaves_g_weights_untouched(name, extra, classes, schedule, recipe_keys):
    modules, recipe, batches = make_parts(name, STEP_SHAPE, schedule, extra=extra, classes=classes, **recipe_keys)
    G, D = modules["generator"], modules["discriminator"]
    d_before = snapshot(D)
    g_params = [p.detach().clone() for p in G.parameters()]
    step = recipe._d_step_keras if schedule == "keras" else recipe._d_step_full
    logs = step(batches, torch.Generator().manual_seed(0), 16)
    assert changed(d_before, D)
    assert all(torch.equal(a, b) for a, b in zip(g_params, G.parameters()))
    assert all(p.grad is None for p in G.parameters())
    has_boundary = recipe.loss.boundary is not None
    penalties = {"r1", "r2"} if recipe_keys.get("penalty") == "r1_r2" and recipe.penalty_values else set()
    boundary_keys = {"d_acc", "d_sign_real"} if has_boundary else set()
    ada = {"augment_p"} if recipe_keys.get("ada_target") else set()
    assert set(logs) == {"d_loss", "d_real", "d_fake"} | boundary_keys | penalties | ada
    if ada:  # one D update (the interval) moved p from 0 by 16 images' worth of ADA's 500,000, or kept it at 0
        assert float(logs["augment_p"]) in (0.0, pytest.approx(16 / 500_000, rel=1e-5))
    assert torch.isfinite(logs["d_loss"]) and (not has_boundary or 0 <= float(logs["d_acc"]) <= 1)
    assert not has_boundary or -1 <= float(logs["d_sign_real"]) <= 1
    if "weight_clip" in recipe_keys:
        assert max(p.abs().max() for p in D.parameters()) <= recipe_keys["weight_clip"] + 1e-7


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
    assert set(logs) == {"d_loss", "d_real", "d_fake", "d_acc", "d_sign_real", "g_loss"}
    assert all(v.dim() == 0 and not v.requires_grad for v in logs.values())


@pytest.mark.parametrize("loss, boundary", [("non_saturating", 0.0), ("least_squares", 0.5)])
def test_ada_overfitting_heuristic_is_the_mean_sign_of_d_on_reals(loss, boundary):
    """d_sign_real is ADA's r_t = E[sign(D(x_real))], taken about the loss's decision boundary."""
    from gankit.registry import LOSSES
    from gankit.recipes.adversarial import _d_logs
    real = boundary + torch.tensor([2.0, -1.0, 3.0, 0.5, -0.25, 1.0])  # 4 above the boundary, 2 below
    logs = _d_logs(torch.tensor(0.3), real, torch.zeros(6), LOSSES.get(loss))
    assert float(logs["d_sign_real"]) == pytest.approx(2 / 6, abs=1e-6)
    sure = _d_logs(torch.tensor(0.3), real.abs() + boundary + 1, torch.zeros(6), LOSSES.get(loss))
    assert float(sure["d_sign_real"]) == pytest.approx(1.0, abs=1e-6)


def test_recipe_settings_are_checked():
    from gankit.errors import ConfigError

    for bad, words in [({"label_smoothing": 0.1, "loss": "hinge"}, "BCE"), ({"augment": "flip"}, "flip"),
                       ({"schedule": "keras", "loss": "hinge"}, "keras"), ({"weight_clip": -1.0}, "weight_clip"),
                       ({"ada_target": 0.6}, "recipe.augment to be set"), ({"augment_p": 0.5}, "e.g. recipe.augment="),
                       ({"augment": "color", "ada_target": 0.6, "loss": "wasserstein"}, "decision boundary"),
                       ({"augment": "color", "ada_target": 1.0}, "ada_target"),
                       ({"augment": "color", "augment_p": 1.5}, "augment_p")]:
        with pytest.raises(ConfigError, match=words):
            AdversarialConfig(**bad)


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


def test_recipe_validation_runs_before_training():
    from gankit.errors import ConfigError

    _, recipe, batches = make_parts("dcgan", (1, 8, 8), extra={"pack": 4})
    with pytest.raises(ConfigError, match="multiple of model.pack"):
        recipe.validate(batches.data, 10)
    _, recipe, _ = make_parts("mlp_toy", (2,), augment="translation")
    with pytest.raises(ConfigError, match="holds points"):
        recipe.validate(ArrayData(torch.zeros(4, 2)), 4)
    _, recipe, batches = make_parts("dcgan", (1, 8, 8), schedule="keras", extra={"conditioning": "acgan"}, classes=3)
    with pytest.raises(ConfigError, match="acgan"):
        recipe.validate(batches.data, 4)


def test_class_head_loss_on_fakes_is_optional():
    """A projection D with a class head: D's loss holds aux_weight x the class cross-entropy of the fakes with
    recipe.aux_fakes (ACGAN) and not without it; the rest of the loss is the same."""
    import copy

    import torch.nn.functional as F

    head = {"conditioning": "projection", "class_head": True}
    modules, with_fakes, batches = make_parts("dcgan", (1, 8, 8), extra=head, classes=3, aux_weight=2.0)
    _, real_only, batches_again = make_parts("dcgan", (1, 8, 8), extra=head, classes=3, aux_weight=2.0,
                                             aux_fakes=False)
    before = copy.deepcopy(modules)
    loss_with = with_fakes._d_step_full(batches, torch.Generator().manual_seed(5), 8)["d_loss"]
    loss_without = real_only._d_step_full(batches_again, torch.Generator().manual_seed(5), 8)["d_loss"]
    G, D, noise = before["generator"], before["discriminator"], torch.Generator().manual_seed(5)
    with torch.no_grad():
        labels = G.sample_labels(8, generator=noise)
        fakes = G(G.sample_latent(8, generator=noise), labels)
        expected = 2.0 * F.cross_entropy(D.forward_all(fakes, labels)[1], labels)
    assert expected > 0.5  # untrained: about 2 log 3
    assert float(loss_with - loss_without) == pytest.approx(float(expected), rel=1e-4, abs=1e-5)


def test_class_head_needs_a_conditional_discriminator():
    from gankit.errors import ConfigError

    for conditioning in ("none", "acgan"):
        with pytest.raises(ConfigError, match="class_head"):
            tiny_model_cfg("dcgan", conditioning=conditioning, class_head=True)


def test_lazy_penalty_phase_is_part_of_the_recipe_state():
    _, recipe, batches = make_parts("mlp_gan", (1, 8, 8), penalty="r1", penalty_every=4)
    for _ in range(3):
        recipe._d_step_full(batches, torch.Generator().manual_seed(0), 8)
    assert recipe.state_dict() == {"d_updates": 3}
    _, other, _ = make_parts("mlp_gan", (1, 8, 8), penalty="r1", penalty_every=4)
    other.load_state_dict(recipe.state_dict())
    assert other.d_updates == 3
