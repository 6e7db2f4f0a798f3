"""R3GAN (Huang et al. 2024): the relativistic pairing loss and the zero-centred penalties against closed forms, the
penalty's schedule, and the architecture's defining properties (no normalisation, fix-up residual blocks that start
as the identity, the low-pass resampling, the learned basis, projection conditioning)."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import gankit
from gankit.config import OptimConfig, from_dict, load_config
from gankit.data.base import ArrayData
from gankit.data.sampler import BatchSampler
from gankit.errors import ConfigError
from gankit.losses import r1_penalty
from gankit.losses.adversarial import d_relativistic_pairing, g_relativistic_pairing
from gankit.losses.penalties import zero_centred_penalty
from gankit.models import build_models
from gankit.models.r3gan import LOW_PASS, Resample, ResidualBlock, low_pass_down, low_pass_up, stage_sides
from gankit.recipes.adversarial import AdversarialConfig, AdversarialRecipe
from gankit.registry import LOSSES
from gankit.train.schedule import schedule_learning_rates

REAL = torch.tensor([2.0, -0.5, 0.25])
FAKE = torch.tensor([-1.0, 0.5, 3.0])


# -- the loss ----------------------------------------------------------------------------------------------------


def test_relativistic_pairing_closed_form():
    # softplus(f - r) over the pairs: (-3, 1, 2.75); G's loss swaps the roles
    expected_d = (math.log1p(math.exp(-3.0)) + math.log1p(math.exp(1.0)) + math.log1p(math.exp(2.75))) / 3
    assert abs(d_relativistic_pairing(REAL, FAKE).item() - expected_d) < 1e-6
    expected_g = (math.log1p(math.exp(3.0)) + math.log1p(math.exp(-1.0)) + math.log1p(math.exp(-2.75))) / 3
    assert abs(g_relativistic_pairing(FAKE, REAL).item() - expected_g) < 1e-6
    assert LOSSES.get("relativistic_pairing").relativistic


def test_relativistic_pairing_pairs_samples_unlike_the_average_version():
    """Reordering the fakes changes RpGAN's loss (it compares pairs) but not RaGAN's (it compares with means)."""
    shuffled = FAKE[[2, 0, 1]]
    assert abs(d_relativistic_pairing(REAL, FAKE) - d_relativistic_pairing(REAL, shuffled)) > 1e-3
    ragan = LOSSES.get("relativistic_average").d
    assert abs(ragan(REAL, FAKE) - ragan(REAL, shuffled)) < 1e-6
    with pytest.raises(ValueError, match="as many real as fake"):
        d_relativistic_pairing(REAL, FAKE[:2])


def test_relativistic_pairing_is_shift_invariant_and_its_gradients_are_opposite():
    """Only differences of logits count: adding a constant to every logit changes nothing, and D's loss pushes each
    pair's gap exactly as hard as G's loss pulls it back (up to the sign)."""
    assert abs(d_relativistic_pairing(REAL + 7.0, FAKE + 7.0) - d_relativistic_pairing(REAL, FAKE)) < 1e-6
    real, fake = REAL.clone().requires_grad_(), FAKE.clone().requires_grad_()
    d_relativistic_pairing(real, fake).backward()
    assert torch.allclose(real.grad, -fake.grad)
    sig = torch.sigmoid(FAKE - REAL) / 3  # d/dr softplus(f - r) = -sigmoid(f - r), averaged over 3 pairs
    assert torch.allclose(real.grad, -sig, atol=1e-6)


# -- the penalties -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [0.5, 1.0, 3.0])
def test_zero_centred_penalty_of_a_linear_critic(scale):
    """D(x) = w . x has gradient w everywhere: 1/2 E||grad||^2 = scale^2 / 2, as R1 computes it."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(1, 2, 4, 4, generator=g)
    w = w / w.norm() * scale
    x = torch.randn(8, 2, 4, 4, generator=g).requires_grad_(True)
    logits = (x * w).flatten(1).sum(1)
    assert abs(zero_centred_penalty(logits, x).item() - 0.5 * scale ** 2) < 1e-5


def test_zero_centred_penalty_equals_r1_and_is_differentiable():
    torch.manual_seed(0)
    critic = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    x = torch.randn(16, 3)
    inputs = x.clone().requires_grad_(True)
    fused = zero_centred_penalty(critic(inputs).flatten(), inputs)
    separate = r1_penalty(lambda v: critic(v).flatten(), x)
    assert abs(fused.item() - separate.item()) < 1e-6 and fused.item() > 1e-4
    fused.backward()
    weights = [critic[0].weight, critic[0].bias, critic[2].weight]  # the output bias does not move the gradient
    assert all(p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0 for p in weights)
    with pytest.raises(ValueError, match="require gradients"):
        zero_centred_penalty(critic(x).flatten(), x)


# -- the recipe: R1 + R2 from the loss's own forward pass, and gamma's schedule --------------------------------------


def tiny(shape=(1, 8, 8), classes=0, **extra):
    stages = len(stage_sides(shape[-1]))
    cfg = from_dict({"model": {"name": "r3gan", "widths": [8] * stages, "blocks": [1] * stages, "cardinality": 2,
                               "latent_dim": 4, "embed_dim": 4, **extra}}).model
    return build_models(cfg, shape, classes, seed=0)


def test_r1_r2_is_gamma_times_both_penalties_at_the_weights_before_the_update():
    modules = tiny()
    G, D = modules["generator"], modules["discriminator"]
    D_before = copy.deepcopy(D)
    x = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    cfg = AdversarialConfig(loss="relativistic_pairing", penalty="r1_r2", penalty_weight=0.7)
    recipe = AdversarialRecipe(cfg, modules, OptimConfig())
    logs = recipe._d_step_full(BatchSampler(ArrayData(x), seed=0), torch.Generator().manual_seed(5), 8)

    real, _ = BatchSampler(ArrayData(x), seed=0).next(8)  # the same draws again, judged by D as it was
    noise = torch.Generator().manual_seed(5)
    with torch.no_grad():
        fake = G(G.sample_latent(8, generator=noise))
    critic = lambda v: D_before(v)  # noqa: E731
    r1, r2 = r1_penalty(critic, real), r1_penalty(critic, fake)
    assert abs(logs["r1"].item() - r1.item()) < 1e-5 and abs(logs["r2"].item() - r2.item()) < 1e-5
    with torch.no_grad():
        rp = d_relativistic_pairing(D_before(real), D_before(fake))
    assert abs(logs["d_loss"].item() - (rp + 0.7 * (r1 + r2)).item()) < 1e-5


def test_penalty_weight_moves_with_the_learning_rate_schedule():
    optim = OptimConfig(schedule="cosine", decay_start=0.0, final_factor=0.25)
    cfg = AdversarialConfig(loss="relativistic_pairing", penalty="r1_r2", penalty_weight=1.0, penalty_final=0.1)
    recipe = AdversarialRecipe(cfg, tiny(), optim)
    for opt in recipe.optimizers.values():
        for group in opt.param_groups:
            group["base_lr"] = group["lr"]
    seen = []
    for step in (0, 50, 100):
        schedule_learning_rates(recipe.optimizers, optim, step, 100)
        seen.append(recipe.penalty_weight())
    assert abs(seen[0] - 1.0) < 1e-9 and abs(seen[1] - 0.55) < 1e-9 and abs(seen[2] - 0.1) < 1e-9
    with pytest.raises(ConfigError, match="penalty_final"):
        AdversarialRecipe(cfg, tiny(), OptimConfig())  # a constant rate: nothing for the weight to follow


# -- the architecture ----------------------------------------------------------------------------------------------


def test_no_normalisation_and_residual_blocks_start_as_the_identity():
    modules = tiny((1, 16, 16), cardinality=4)
    norms = (torch.nn.BatchNorm2d, torch.nn.InstanceNorm2d, torch.nn.GroupNorm, torch.nn.LayerNorm)
    assert not any(isinstance(m, norms) for net in modules.values() for m in net.modules())
    blocks = [m for net in modules.values() for m in net.modules() if isinstance(m, ResidualBlock)]
    assert len(blocks) == 6  # one per stage (4, 8, 16 px) in each network
    x = torch.randn(2, 8, 5, 5)
    for block in blocks:
        assert block.grouped.groups == 4 and torch.count_nonzero(block.project.weight) == 0
        assert torch.equal(block(x), x)


def test_fix_up_scales_the_branch_by_the_number_of_blocks():
    """He initialisation times L^(-1/4): the spread of a block's first layer falls with the number of blocks."""
    def expand_std(blocks: int) -> float:
        block = ResidualBlock(64, 4, 2, blocks)
        return block.expand.weight.std().item()

    he = math.sqrt(2 / (1 + 0.2 ** 2)) / math.sqrt(64)
    for total in (1, 16):
        assert abs(expand_std(total) / (he * total ** -0.25) - 1) < 0.05


def test_low_pass_resampling_keeps_constants_and_interpolates():
    up, down = Resample(2, 2, up=True), Resample(2, 2, up=False)
    ones = torch.ones(1, 2, 6, 6)
    assert torch.allclose(up(ones)[..., 1:-1, 1:-1], torch.ones(1, 2, 10, 10))  # the border sees the zero padding
    assert torch.allclose(down(ones)[..., 1:, 1:], torch.ones(1, 2, 2, 2))
    ramp = torch.arange(4.0).expand(1, 2, 4, 4)
    row = up(ramp)[0, 0, 2, :7]  # zero insertion + [1, 2, 1] filter: linear interpolation between the pixels
    assert torch.allclose(row, torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]))
    checker = (torch.arange(8)[:, None] + torch.arange(8)).remainder(2).float().expand(1, 2, 8, 8)
    assert down(checker)[..., 1:, 1:].std() < 1e-6  # the highest frequency is filtered out, not aliased


def _depthwise_kernel(channels: int, gain: float) -> torch.Tensor:
    taps = torch.tensor(LOW_PASS, dtype=torch.float64)
    kernel = torch.outer(taps, taps)
    return (kernel / kernel.sum() * gain).expand(channels, 1, 3, 3)


@pytest.mark.parametrize("side", [4, 6, 8])
def test_low_pass_shifted_sums_equal_the_depthwise_convolutions(side):
    x = torch.randn(2, 3, side, side, dtype=torch.float64, generator=torch.Generator().manual_seed(side))
    down = F.conv2d(x, _depthwise_kernel(3, 1.0), stride=2, padding=1, groups=3)
    up = F.conv_transpose2d(x, _depthwise_kernel(3, 4.0), stride=2, padding=1, output_padding=1, groups=3)
    assert low_pass_down(x).shape == (2, 3, side // 2, side // 2) and low_pass_up(x).shape == (2, 3, 2 * side, 2 * side)
    assert torch.allclose(low_pass_down(x), down, atol=1e-12) and torch.allclose(low_pass_up(x), up, atol=1e-12)


def test_low_pass_resampling_has_second_derivatives_for_the_penalties():
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda t: low_pass_up(low_pass_down(t.square())), (x,))
    D = tiny((1, 16, 16))["discriminator"].double()  # the collapse as a weighted sum, differentiated twice too
    real = torch.randn(2, 1, 16, 16, dtype=torch.float64, requires_grad=True)
    for p in D.parameters():  # fix-up zeroed the branches' last layers: move them off zero
        p.data.add_(torch.randn_like(p) * 0.05)
    assert torch.autograd.gradgradcheck(lambda t: D(t).sum(), (real,))


def test_generator_starts_from_a_learned_basis_and_clamps_samples():
    G = tiny((1, 16, 16))["generator"]
    assert G.basis.shape == (8, 4, 4) and G.basis.requires_grad
    z = torch.randn(3, 4)
    with torch.no_grad():
        G.to_image.bias.fill_(5.0)
        assert G(z).max() > 1.0  # the output is linear
    samples = G.sample(3, generator=torch.Generator().manual_seed(0))
    assert samples.max() <= 1.0 and samples.min() >= -1.0


def test_projection_discriminator_uses_the_label():
    D = tiny((1, 8, 8), classes=3, conditioning="projection")["discriminator"]
    torch.nn.init.normal_(D.out.weight)
    x = torch.randn(4, 1, 8, 8)
    a, _ = D.forward_all(x, torch.tensor([0, 0, 0, 0]))
    b, _ = D.forward_all(x, torch.tensor([1, 1, 1, 1]))
    assert a.shape == (4,) and (a - b).abs().max() > 1e-4


@pytest.mark.parametrize("overrides, words", [({"widths": [8, 8, 8]}, "stages at 4, 8 px"),
                                               ({"blocks": [1]}, "give 2"),
                                               ({"cardinality": 3}, "cardinality=3")])
def test_sizes_that_do_not_fit_are_refused_by_name(overrides, words):
    cfg = from_dict({"model": {"name": "r3gan", "widths": [8, 8], "blocks": [1, 1], "cardinality": 2,
                               **overrides}}).model
    with pytest.raises(ConfigError, match=words):
        build_models(cfg, (1, 8, 8), 0, seed=0)


def test_stage_sides_follow_the_image_side():
    assert stage_sides(32) == [4, 8, 16, 32] and stage_sides(28) == [7, 14, 28] and stage_sides(8) == [4, 8]


def test_a_tiny_r3gan_learns_under_the_recipe():
    """A few hundred R3GAN steps on two-tone images: D's pairwise gap opens, then G closes it; the generated images'
    mean brightness moves to the data's (a smoke test of loss, penalty and architecture together)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.where(torch.rand(256, 1, 1, 1, generator=g) < 0.5, -0.6, 0.6).expand(256, 1, 8, 8).contiguous()
    modules = tiny()
    cfg = AdversarialConfig(loss="relativistic_pairing", penalty="r1_r2", penalty_weight=0.1)
    recipe = AdversarialRecipe(cfg, modules, OptimConfig(lr_g=2e-3, lr_d=2e-3, beta1=0.0, beta2=0.99))
    batches, noise = BatchSampler(ArrayData(x), seed=0), torch.Generator().manual_seed(0)
    for _ in range(300):
        logs = recipe.step(batches, noise, 32)
    assert all(torch.isfinite(v) for v in logs.values())
    samples = modules["generator"].sample(512, generator=torch.Generator().manual_seed(1))
    brightness = samples.mean(dim=(1, 2, 3))
    assert (brightness.abs() - 0.6).abs().mean() < 0.25, brightness[:8]
    assert 0.2 < (brightness > 0).float().mean() < 0.8  # both tones, not one
    assert F.mse_loss(samples.mean(), torch.tensor(0.0)) < 0.1


@pytest.mark.parametrize("name", ["rpgan_mnist", "rpgan_cgan_mnist", "rpgan_stacked_mnist"])
def test_the_cpu_configs_put_the_loss_on_dcgan_with_a_lazy_penalty_and_no_batch_norm_in_d(tmp_path, request, name):
    """rpgan_mnist / rpgan_cgan_mnist / rpgan_stacked_mnist: R3GAN's loss and penalties on the DCGAN network. D holds
    no batch norm (the penalty would couple a batch's samples), and R1 and R2 are taken on every 4th D step only:
    the logged values change at steps 4 and 8 and repeat in between. The Stacked MNIST one trains on real MNIST
    triplets (skipped without it), unpacked, and draws three-channel images."""
    config = Path(__file__).resolve().parents[1] / "configs" / f"{name}.yaml"
    cfg = load_config(config)
    assert (cfg.model.name, cfg.recipe.loss, cfg.recipe.penalty) == ("dcgan", "relativistic_pairing", "r1_r2")
    assert cfg.recipe.penalty_every == 4 and cfg.optim.beta1 == 0.0
    assert not cfg.model.d_batch_norm and cfg.model.pack == 1
    stacked = cfg.data.name == "stacked_mnist"
    data = ([f"data.root={request.getfixturevalue('mnist_root')}", "data.num_samples=256", "data.size=16"] if stacked
            else ["data.name=digits", "data.root=null"])
    run = gankit.train(config, out=tmp_path / name, overrides=[
        *data, "train.steps=8", "train.log_every=1", "train.batch_size=16", "train.progress=false",
        "train.eval_every=0"])
    loaded = gankit.load(run)
    D = loaded.modules["discriminator"]
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in D.modules())
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    r1 = {row["step"]: row["r1"] for row in rows if "r1" in row}
    assert sorted(r1) == list(range(4, 9)) and all(v > 0 for v in r1.values())
    assert r1[5] == r1[6] == r1[7] == r1[4] and r1[8] != r1[4]
    labels = torch.arange(4) if cfg.model.conditioning != "none" else None
    samples = loaded.sample(4, seed=0, labels=labels)
    assert samples.shape == ((4, 3, 16, 16) if stacked else (4, 1, 8, 8)) and torch.isfinite(samples).all()
    assert -1.0 <= samples.min() and samples.max() <= 1.0
    if name == "rpgan_cgan_mnist":  # a projection D with a class head learnt on real digits only
        assert cfg.model.class_head and not cfg.recipe.aux_fakes
        assert D.forward_all(samples, labels)[1].shape == (4, 10)
