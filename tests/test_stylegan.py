"""StyleGAN: the layers' equations, progressive growing, truncation, style mixing, projection, training and tools."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gankit
from gankit.cli import main
from gankit.data.sources import load_dataset
from gankit.config import DataConfig
from gankit.errors import ConfigError, GankitError
from gankit.latent import style
from gankit.models.stylegan import (EqualConv2d, EqualLinear, StyleGANConfig, StyleGANDiscriminator,
                                    StyleGANGenerator, StyleLayer, adain, minibatch_std, modulated_conv2d)
from gankit.recipes.stylegan import fade_images, mix_styles, progress_at
from gankit.train import checkpoint as ckpt
from gankit.train import latest_checkpoint

SMALL = StyleGANConfig(latent_dim=16, w_dim=16, mapping_layers=2, width=16, min_width=8)
QUIET = ["train.progress=false", "train.eval_every=0"]
TINY = [*QUIET, "model.name=stylegan", "recipe.name=stylegan", "data.size=16", "model.latent_dim=16",
        "model.w_dim=16", "model.mapping_layers=2", "model.width=16", "model.min_width=8", "train.batch_size=8",
        "recipe.start_size=8", "recipe.phase_steps=2", "recipe.penalty_every=2", "train.ema=0.9",
        "optim.lr_g=1e-3", "optim.lr_d=1e-3", "optim.beta1=0", "optim.beta2=0.99"]
# StyleGAN2: its layers and architectures, fixed resolution, path length regularisation every 2 generator steps
SG2 = ["model.conv=modulated", "model.g_arch=skip", "model.d_arch=residual", "recipe.progressive=false",
       "recipe.pl_weight=2", "recipe.pl_every=2"]


def _generator(side: int = 16, conv: str = "adain", seed: int = 0) -> StyleGANGenerator:
    torch.manual_seed(seed)
    cfg = StyleGANConfig(**{**SMALL.__dict__, "conv": conv})
    return StyleGANGenerator(cfg, (1, side, side)).eval()


# ---------------------------------------------------------------------------------------------------------------
# The layers


def test_adain_gives_each_channel_the_styles_mean_and_std():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 8, 8) * torch.rand(3, 5, 1, 1) * 4 + torch.randn(3, 5, 1, 1) * 3
    scale, bias = torch.rand(3, 5) * 2 + 0.1, torch.randn(3, 5)
    out = adain(x, scale, bias)
    assert torch.allclose(out.mean(dim=(2, 3)), bias, atol=1e-5)
    assert torch.allclose(out.std(dim=(2, 3), unbiased=False), scale, rtol=1e-4)
    assert not torch.allclose(x.mean(dim=(2, 3)), bias, atol=0.1)  # it was not so before


def test_a_style_layer_normalises_then_applies_the_affine_style_of_its_w():
    torch.manual_seed(1)
    layer = StyleLayer(SMALL, 8, 6, 8, up=False, conv=True)
    with torch.no_grad():
        layer.noise.strength.fill_(0.5)  # noise and bias come before the normalisation and do not leak through
        layer.bias.normal_()
    x, w = torch.randn(4, 8, 8, 8), torch.randn(4, SMALL.w_dim)
    out = layer(x, w, "random", None)
    ys, yb = layer.style(w).chunk(2, dim=1)
    assert torch.allclose(out.mean(dim=(2, 3)), yb, atol=1e-4)
    assert torch.allclose(out.std(dim=(2, 3), unbiased=False), ys.abs(), rtol=1e-3)
    assert torch.allclose(layer.style(torch.zeros(1, SMALL.w_dim))[0, :6], torch.ones(6))  # ys starts at 1


def test_equalised_learning_rate_stores_unit_weights_and_scales_them_by_hes_constant_at_run_time():
    torch.manual_seed(2)
    conv = EqualConv2d(32, 64, 3)
    assert 0.95 < conv.weight.std().item() < 1.05  # stored as N(0, 1), not He-initialised
    x = torch.randn(2, 32, 6, 6)
    he = math.sqrt(2 / (32 * 3 * 3))
    assert torch.allclose(conv(x), F.conv2d(x, conv.weight * he, conv.bias, padding=1), atol=1e-5)
    assert not torch.allclose(conv(x), F.conv2d(x, conv.weight, conv.bias, padding=1), atol=1e-2)
    lin = EqualLinear(128, 16, lr_mul=0.01)
    assert 95 < lin.weight.std().item() < 105  # N(0, 1) / lr_mul
    v = torch.randn(5, 128)
    expected = F.linear(v, lin.weight * 0.01 * math.sqrt(2 / 128), lin.bias * 0.01)
    assert torch.allclose(lin(v), expected, atol=1e-5)
    assert 0.5 < lin(v).std().item() < 2.0  # the run-time scale keeps activations at unit order


def test_demodulation_makes_the_convolution_blind_to_the_styles_scale_and_keeps_unit_variance():
    torch.manual_seed(3)
    x, weight, s = torch.randn(4, 32, 16, 16), torch.randn(24, 32, 3, 3), torch.rand(4, 32) + 0.5
    a, b = modulated_conv2d(x, weight, s), modulated_conv2d(x, weight, 10 * s)
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)
    assert 0.9 < a.std().item() < 1.1
    plain = modulated_conv2d(x, weight, s, demodulate=False)
    # outputs reach about 650 here: fp32 rounding of 288-term sums is a few 1e-4 in absolute terms
    assert torch.allclose(modulated_conv2d(x, weight, 10 * s, demodulate=False), 10 * plain, rtol=1e-4, atol=2e-3)
    one = F.conv2d(x[:1], weight * s[0][None, :, None, None], padding=1)  # sample 0's weights, modulated by its s
    assert torch.allclose(plain[:1], one, atol=1e-4)
    for i in range(4):  # every sample against its own explicitly modulated and demodulated weights w''
        w1 = weight * s[i][None, :, None, None]
        w2 = w1 / (w1.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8).sqrt()
        assert torch.allclose(a[i:i + 1], F.conv2d(x[i:i + 1], w2, padding=1), rtol=1e-4, atol=1e-4)


def test_a_modulated_layer_applies_the_activation_gain_after_demodulation():
    torch.manual_seed(7)
    layer = StyleLayer(StyleGANConfig(**{**SMALL.__dict__, "conv": "modulated"}), 8, 6, 8, up=False, conv=True)
    x, w = torch.randn(2, 8, 8, 8), torch.randn(2, 16)
    conv = modulated_conv2d(x, layer.weight * layer.scale, layer.style(w))
    assert torch.allclose(layer(x, w, "none", None), F.leaky_relu(conv, 0.2) * math.sqrt(2), atol=1e-5)


def test_minibatch_std_appends_the_groups_mean_feature_std():
    torch.manual_seed(4)
    same = torch.randn(1, 3, 4, 4).expand(8, -1, -1, -1)
    assert torch.allclose(minibatch_std(same, 4)[:, 3], torch.full((8, 4, 4), 1e-4), atol=1e-5)
    x = torch.randn(8, 3, 4, 4)
    out = minibatch_std(x, 4)
    assert out.shape == (8, 4, 4, 4) and torch.equal(out[:, :3], x)
    for j in range(2):  # samples 4j .. 4j + 3 form group j
        members = x[4 * j:4 * j + 4]
        expected = (members.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
        assert torch.allclose(out[4 * j:4 * j + 4, 3], expected.expand(4, 4, 4), atol=1e-6)
    assert not torch.allclose(out[0, 3], out[4, 3])
    # two ranks holding halves of the batch form the same groups as one process
    assert torch.allclose(torch.cat([minibatch_std(x[:4], 4), minibatch_std(x[4:], 4)]), out, atol=1e-6)
    with pytest.raises(ValueError, match="multiple"):
        minibatch_std(torch.randn(6, 3, 4, 4), 4)


# ---------------------------------------------------------------------------------------------------------------
# Progressive growing


def test_at_alpha_zero_the_faded_output_is_the_upsampled_lower_resolution_output():
    G = _generator(32)
    ws = G.styles(torch.randn(3, 16))
    for output in ("tanh", "linear"):  # the default tanh, and the papers' linear image; both blend images
        G.cfg.output = output
        low = G.synthesis(ws, progress=(2, 1.0))  # 16x16, upsampled to 32
        top = G.synthesis(ws, progress=(3, 1.0))
        assert torch.allclose(G.synthesis(ws, progress=(3, 0.0)), low, atol=1e-6)
        assert torch.allclose(G.synthesis(ws, progress=(3, 0.5)), 0.5 * (low + top), atol=1e-5)
        assert (top - low).abs().max() > 1e-3  # the new level does change the image
    assert torch.equal(low[..., ::2, ::2], low[..., 1::2, 1::2])  # a 16x16 image shown at 32x32
    D = StyleGANDiscriminator(SMALL, (1, 32, 32))
    x = torch.randn(4, 1, 32, 32)
    assert torch.allclose(D(x, progress=(3, 0.0)), D(x, progress=(2, 1.0)), atol=1e-5)
    assert not torch.allclose(D(x, progress=(3, 1.0)), D(x, progress=(2, 1.0)), atol=1e-3)


def test_the_growing_schedule_alternates_fade_in_and_stable_phases_and_reals_fade_alike():
    assert [progress_at(s, 1, 3, 10) for s in (0, 9, 10, 15, 20, 29, 30, 35, 40, 10_000)] == [
        (1, 1.0), (1, 1.0), (2, 0.0), (2, 0.5), (2, 1.0), (2, 1.0), (3, 0.0), (3, 0.5), (3, 1.0), (3, 1.0)]
    assert progress_at(0, 3, 3, 10) == (3, 1.0)
    x = torch.randn(2, 1, 32, 32)
    at16 = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2)
    at8 = F.interpolate(F.avg_pool2d(x, 4), scale_factor=4)
    assert torch.allclose(fade_images(x, 2, 1.0), at16, atol=1e-6)
    assert torch.allclose(fade_images(x, 2, 0.0), at8, atol=1e-6)
    assert torch.allclose(fade_images(x, 2, 0.25), 0.75 * at8 + 0.25 * at16, atol=1e-6)
    assert torch.equal(fade_images(x, 3, 1.0), x)


def test_a_side_that_is_not_four_times_a_power_of_two_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match="data.pad=2"):
        StyleGANGenerator(SMALL, (1, 28, 28))


# ---------------------------------------------------------------------------------------------------------------
# Truncation and style mixing


def test_psi_zero_gives_the_mean_w_for_every_code_and_psi_one_changes_nothing():
    G = _generator()
    G.w_avg.copy_(torch.randn(16))
    z = torch.randn(5, 16)
    ws0 = G.styles(z, psi=0.0)
    assert torch.allclose(ws0, G.w_avg.expand(5, G.num_ws, -1))
    assert torch.equal(G.styles(z, psi=1.0), G.styles(z))
    assert torch.allclose(G.styles(z, psi=0.5), 0.5 * (G.styles(z) + ws0), atol=1e-6)
    images = G(z, psi=0.0)
    # one image (fixed noise in eval); rows of one batch, so a tolerance: oneDNN's AVX-512 kernels make a row's
    # result depend on its position in the batch (1.4e-6 apart there, 0 on AVX2), while another w moves pixels by ~0.1
    assert torch.allclose(images, images[:1].expand_as(images), atol=1e-4)
    G.cfg.truncation_cutoff = 2
    try:
        cut = G.styles(z, psi=0.0)
        assert torch.allclose(cut[:, :2], ws0[:, :2]) and torch.equal(cut[:, 2:], G.styles(z)[:, 2:])
    finally:
        G.cfg.truncation_cutoff = None


def test_the_running_mean_of_w_follows_the_mapping():
    G = _generator().train()
    z = torch.randn(4096, 16)
    for _ in range(400):  # beta 0.995: 0.995^400 = 0.13 of the start is left
        G.styles(z[:256], update_w_avg=True)
    target = G.mapping(z).mean(0)
    assert (G.w_avg - target).norm() < 0.2 * target.norm()
    assert target.norm() > 0.1


def test_a_crossover_at_layer_i_takes_earlier_styles_from_the_first_code_and_the_rest_from_the_second():
    G = _generator(32)
    z1, z2 = torch.randn(2, 16), torch.randn(2, 16)
    w1, w2 = G.mapping(z1), G.mapping(z2)
    seen = {}
    hooks = [layer.register_forward_hook(lambda m, args, out, j=j: seen.__setitem__(j, args[1].clone()))
             for j, layer in enumerate(layer for block in G.blocks for layer in block)]
    try:
        for i in (1, 3, 5):
            G.synthesis(mix_styles(G.styles(z1), G.styles(z2), i))
            for j in range(G.num_ws):
                assert torch.allclose(seen[j], w1 if j < i else w2), (i, j)
    finally:
        for h in hooks:
            h.remove()
    per_sample = mix_styles(G.styles(z1), G.styles(z2), torch.tensor([2, 6]))
    assert torch.equal(per_sample[0, :2], G.styles(z1)[0, :2]) and torch.equal(per_sample[0, 2:], G.styles(z2)[0, 2:])
    assert torch.equal(per_sample[1, :6], G.styles(z1)[1, :6]) and torch.equal(per_sample[1, 6:], G.styles(z2)[1, 6:])


def test_the_recipe_mixes_most_fakes_at_a_crossover_among_the_layers_in_use(tmp_path):
    from gankit.config import load_config
    from gankit.train.trainer import Trainer

    cfg = load_config(None, [*TINY, "recipe.mixing_prob=0.75"])
    recipe = Trainer(cfg, tmp_path / "r").recipe
    recipe.progress = (1, 1.0)  # 8x8: style layers 0..3 run
    G = recipe.G
    captured = []
    original = G.synthesis
    G.synthesis = lambda ws, **kw: captured.append(ws) or original(ws, **kw)
    recipe._fakes(400, torch.Generator().manual_seed(0))
    ws = captured[0]
    changes = (ws[:, 1:] != ws[:, :-1]).any(dim=2)  # (B, L - 1): where consecutive layers' styles differ
    crossovers = changes.float().argmax(dim=1) + 1
    mixed = changes.any(dim=1)
    assert changes.sum(dim=1).max() <= 1  # one switch at most
    assert 0.65 < mixed.float().mean() < 0.85
    assert set(crossovers[mixed].tolist()) == {1, 2, 3}


# ---------------------------------------------------------------------------------------------------------------
# Projection


def test_projection_of_a_generated_image_recovers_it():
    G = _generator(16, seed=6)
    with torch.no_grad():
        for rgb in G.to_rgb:  # an untrained generator's images sit at tanh's ends; projection targets need not
            rgb.conv.weight.mul_(0.3)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        target = G.synthesis(G.styles(G.sample_latent(4, generator=g))).clamp(-1, 1)
        mean_image = G.synthesis(style.mean_w(G, generator=g)[0].expand(1, G.num_ws, -1)).clamp(-1, 1)
    baseline = (target - mean_image).square().mean(dim=(1, 2, 3))
    G.const.requires_grad_(False)  # a frozen parameter stays frozen, the others trainable
    result = style.project(G, target, steps=200, lr=0.1, generator=g)
    assert baseline.min() > 1e-2  # the targets are not the mean image already
    # gradient descent can stop in a local minimum: every image gets much closer, most are recovered
    assert (result.mse < 0.1 * baseline).all()
    assert result.mse.median() < 0.01 * baseline.median()
    assert result.losses[-1] < 0.1 * result.losses[0]
    assert result.ws.shape == (4, G.num_ws, 16) and torch.equal(result.ws[:, 0], result.ws[:, -1])
    assert not G.const.requires_grad and all(p.requires_grad for n, p in G.named_parameters() if n != "const")


def _image(G: StyleGANGenerator, w: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return G.synthesis(w[None, None].expand(1, G.num_ws, -1), noise_mode="const").clamp(-1, 1)


def test_projection_keeps_the_best_of_several_starts():
    G = _generator(16, seed=6)
    with torch.no_grad():
        for rgb in G.to_rgb:
            rgb.conv.weight.mul_(0.3)
    # the projector's draws: the mean w first, then one mapped code per image for each start after the first (start
    # k of image i at row (k - 1) * n + i); with lr 0 and no noise every start stays where it began
    g = torch.Generator().manual_seed(5)
    style.mean_w(G, generator=g)
    with torch.no_grad():
        codes = G.mapping(G.sample_latent(4, generator=g))
    targets = torch.cat([_image(G, codes[2]), _image(G, codes[1])])  # image 0: its start 2; image 1: its start 1
    still = {"steps": 2, "lr": 0.0, "initial_noise": 0.0}
    fit = style.project(G, targets, starts=3, generator=torch.Generator().manual_seed(5), **still)
    assert fit.mse.max() < 1e-8 and fit.images.shape == targets.shape and fit.ws.shape == (2, G.num_ws, 16)
    assert torch.allclose(fit.ws[0], codes[2].expand(G.num_ws, -1)) and torch.allclose(fit.ws[1], codes[1])
    assert fit.losses[-1] < 1e-8 and len(fit.losses) == 2  # the kept starts' losses
    alone = style.project(G, targets, generator=torch.Generator().manual_seed(5), **still)  # the mean w only
    assert alone.mse.min() > 1e-3
    with pytest.raises(GankitError, match="start"):
        style.project(G, targets, starts=0)


def _threshold_classifier(G: StyleGANGenerator):
    """Two classes: an image brighter or darker than the median of 400 of G's images."""
    with torch.no_grad():
        probe = style._render(G, G.styles(G.sample_latent(400, generator=torch.Generator().manual_seed(9))))
    threshold = probe.mean(dim=(1, 2, 3)).median()
    return lambda x: (x.mean(dim=(1, 2, 3)) > threshold).long()


def _only_these_styles_matter(G: StyleGANGenerator, layers: list[int]) -> None:
    """Every other style layer's affine map is zeroed: its style is its bias, the same for every w."""
    style_layers = [layer for block in G.blocks for layer in block]
    with torch.no_grad():
        for i, layer in enumerate(style_layers):
            if i not in layers:
                layer.style.weight.zero_()


def test_mixing_classes_says_which_style_group_carries_the_class():
    def scores(G):
        return style.mixing_classes(G, _threshold_classifier(G), 300, batch=128,
                                    generator=torch.Generator().manual_seed(1))

    G = _generator(16, seed=3)
    groups = style.style_groups(G)  # 16 px: coarse layers 0-1, middle 2-3, fine 4-5
    out = scores(G)
    assert out["pairs"] == 300 and 0.3 < out["differ"] < 0.7 and out["drawn"] >= 300
    for name in groups:  # two classes and pairs that differ: a mix takes one of the two labels
        assert out[f"{name}_takes_b"] + out[f"{name}_keeps_a"] == pytest.approx(1.0, abs=1e-3)
    coarse = _generator(16, seed=3)
    _only_these_styles_matter(coarse, list(groups["coarse"]))
    out = scores(coarse)  # A with B's coarse styles is B's image; with B's middle or fine ones, A's
    assert out["coarse_takes_b"] >= 0.99 and out["middle_keeps_a"] >= 0.99 and out["fine_keeps_a"] >= 0.99
    fine = _generator(16, seed=3)
    _only_these_styles_matter(fine, list(groups["fine"]))
    out = scores(fine)
    assert out["coarse_keeps_a"] >= 0.99 and out["middle_keeps_a"] >= 0.99 and out["fine_takes_b"] >= 0.99
    flat = _generator(16, seed=3)
    _only_these_styles_matter(flat, [])  # one image for every code: no pair differs
    with pytest.raises(GankitError, match="one class"):
        style.mixing_classes(flat, lambda x: (x.mean(dim=(1, 2, 3)) > 0).long(), 10, max_draws=50)


def test_path_length_is_a_squared_derivative_in_w():
    G = _generator(16, seed=4)
    with torch.no_grad():
        for rgb in G.to_rgb:
            rgb.conv.weight.mul_(0.3)

    def pixels(x):
        return x.flatten(1)

    runs = {eps: style.path_length(G, pixels, 200, eps=eps, batch=64, generator=torch.Generator().manual_seed(2))
            for eps in (1e-4, 1e-3)}
    small, large = runs[1e-4], runs[1e-3]
    assert small["ppl"] > 1e-3 and small["samples"] == 200
    assert 0.8 < large["ppl"] / small["ppl"] < 1.25  # distance ~ eps^2: dividing by eps^2 leaves the derivative
    _only_these_styles_matter(G, [])  # the images no longer depend on w: paths of length 0
    assert style.path_length(G, pixels, 50, generator=torch.Generator().manual_seed(2))["ppl"] < 1e-6


# ---------------------------------------------------------------------------------------------------------------
# Training, checkpoints and tools


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return gankit.train(None, overrides=[*TINY, "train.steps=8"], out=tmp_path_factory.mktemp("sg") / "r")


def test_training_grows_logs_resolution_and_alpha_and_the_checkpoint_remembers_its_level(tmp_path):
    run = gankit.train(None, overrides=[*TINY, "train.steps=4", "train.log_every=1"], out=tmp_path / "g")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"d_loss"' in line]
    # 2 steps stable at 8 px, then the fade-in to 16 px over 2 steps: alpha 0, 0.5
    assert [(r["resolution"], r["alpha"]) for r in rows] == [(8, 1), (8, 1), (16, 0), (16, 0.5)]
    loaded = gankit.load(run)
    assert loaded.generator.current_progress() == (2, 0.5)  # the buffers' initial value is (2, 1.0)
    assert loaded.modules["discriminator"].progress.tolist() == [2, 0.5]
    assert loaded.generator.w_avg.norm() > 0  # the running mean moved
    assert loaded.sample(4, seed=0).shape == (4, 1, 16, 16)


def test_stylegan_resumes_bit_for_bit_mid_fade(tmp_path):
    base = [*TINY, "recipe.phase_steps=3"]
    straight = gankit.train(None, overrides=[*base, "train.steps=7"], out=tmp_path / "straight")
    split = gankit.train(None, overrides=[*base, "train.steps=4"], out=tmp_path / "split")  # in the fade-in
    gankit.train(None, overrides=["train.steps=7"], out=split, resume=True)
    a, b = (ckpt.load_checkpoint(latest_checkpoint(r))[0] for r in (straight, split))
    assert set(a) == set(b) and [k for k in a if not torch.equal(a[k], b[k])] == []


def test_psi_samples_shrink_towards_one_image(run):
    loaded = gankit.load(run)
    spread = {psi: loaded.sample(64, seed=1, psi=psi).std(dim=0).mean().item() for psi in (1.0, 0.0)}
    assert 0 < spread[0.0] < 0.75 * spread[1.0]  # at psi 0 only the noise inputs still vary
    with pytest.raises(GankitError, match="not both"):
        loaded.sample(2, psi=0.5, truncation=1.0)


def test_psi_on_a_model_without_w_is_refused(tmp_path, tiny_overrides):
    other = gankit.train(None, overrides=[*tiny_overrides, "train.steps=1"], out=tmp_path / "mlp")
    with pytest.raises(GankitError, match="W"):
        gankit.load(other).sample(2, psi=0.5)
    with pytest.raises(GankitError, match="StyleGAN"):
        style.mixing_grid(gankit.load(other).generator)
    with pytest.raises(GankitError, match="W"):
        gankit.evaluate(other, psi=0.5)
    with pytest.raises(GankitError, match="already drawn"):
        gankit.evaluate(tmp_path / "samples.npz", data="digits", psi=0.5)


def test_style_groups_split_the_resolutions_into_thirds():
    assert {k: list(v) for k, v in style.style_groups(_generator(32)).items()} == {
        "coarse": [0, 1, 2, 3], "middle": [4, 5], "fine": [6, 7]}
    assert {k: list(v) for k, v in style.style_groups(_generator(16)).items()} == {
        "coarse": [0, 1], "middle": [2, 3], "fine": [4, 5]}


def test_latent_cli_draws_mixing_truncation_and_w_interpolation_grids(run, tmp_path, capsys):
    from PIL import Image

    assert main(["latent", "mix", str(run), "-o", str(tmp_path / "mix.png"), "--cols", "4"]) == 0
    assert "coarse" in capsys.readouterr().out
    assert main(["latent", "truncation", str(run), "-o", str(tmp_path / "t.png"), "--psi", "1,0.5,0",
                 "--cols", "5"]) == 0
    assert main(["latent", "interpolate", str(run), "--space", "w", "--rows", "2", "--steps", "4",
                 "-o", str(tmp_path / "w.png")]) == 0
    mix, trunc = Image.open(tmp_path / "mix.png"), Image.open(tmp_path / "t.png")
    assert mix.width / mix.height == pytest.approx(4 / 5, rel=0.05)  # A, B and three groups
    assert trunc.width / trunc.height == pytest.approx(5 / 3, rel=0.05)
    assert main(["sample", str(run), "-n", "4", "--psi", "0.5", "-o", str(tmp_path / "s.npz")]) == 0
    assert np.load(tmp_path / "s.npz")["arr_0"].shape == (4, 16, 16, 1)


def test_project_cli_fits_an_image_file_and_draws_edits(run, tmp_path, capsys):
    from PIL import Image

    loaded = gankit.load(run)
    G = loaded.generator
    with torch.no_grad():
        image = G(G.sample_latent(1, generator=torch.Generator().manual_seed(3))).clamp(-1, 1)[0, 0]
        mean_image = G.synthesis(style.mean_w(G)[0].expand(1, G.num_ws, -1)).clamp(-1, 1)[0, 0]
    baseline = (image - mean_image).square().mean().item()
    Image.fromarray(((image + 1) * 127.5).round().clamp(0, 255).byte().numpy()).save(tmp_path / "mine.png")
    assert main(["project", str(run), str(tmp_path / "mine.png"), "-o", str(tmp_path / "p.png"), "--steps", "100",
                 "--edits", "3", "--save", str(tmp_path / "w.npz"), "--feature-weight", "0"]) == 0
    out = capsys.readouterr().out
    assert "pixel MSE" in out
    saved = np.load(tmp_path / "w.npz")
    # the plumbing (file in, pad, styles and grid out); recovery itself is tested on a generator above
    assert saved["ws"].shape == (1, G.num_ws, 16) and float(saved["mse"][0]) < 0.9 * baseline
    grid = Image.open(tmp_path / "p.png")
    assert grid.width == pytest.approx(5 * grid.height, rel=0.05)  # input, projection, three edits
    assert main(["project", str(run), str(tmp_path / "mine.png"), "-o", str(tmp_path / "q.png"), "--steps", "1",
                 "--keep", "everything"]) == 2
    assert "--keep" in capsys.readouterr().err and not (tmp_path / "q.png").exists()
    assert main(["project", str(run), str(tmp_path / "mine.png"), "-o", str(tmp_path / "s.png"), "--steps", "100",
                 "--edits", "0", "--starts", "3", "--feature-weight", "0", "--save", str(tmp_path / "s.npz")]) == 0
    several = np.load(tmp_path / "s.npz")  # one projection kept of the three starts
    assert several["ws"].shape == (1, G.num_ws, 16) and float(several["mse"][0]) < 0.9 * baseline


def test_project_cli_takes_an_npz_at_the_runs_size_or_resizes_a_smaller_one(run, tmp_path, capsys):
    G = gankit.load(run).generator
    assert main(["sample", str(run), "-n", "2", "-o", str(tmp_path / "s.npz"), "--seed", "1"]) == 0
    samples = np.load(tmp_path / "s.npz")["arr_0"]
    assert samples.shape == (2, 16, 16, 1)  # the run's full size: projected as they are
    assert main(["project", str(run), str(tmp_path / "s.npz"), "-o", str(tmp_path / "p.png"), "--steps", "60",
                 "--save", str(tmp_path / "w.npz"), "--feature-weight", "0"]) == 0
    saved = np.load(tmp_path / "w.npz")
    assert saved["ws"].shape == (2, G.num_ws, 16) and saved["images"].shape == (2, 1, 16, 16)
    with torch.no_grad():
        mean_image = G.synthesis(style.mean_w(G)[0].expand(1, G.num_ws, -1)).clamp(-1, 1)
    targets = torch.from_numpy(samples.astype(np.float32) / 127.5 - 1).permute(0, 3, 1, 2)
    baseline = (targets - mean_image).square().mean(dim=(1, 2, 3))
    assert (torch.from_numpy(saved["mse"]) < baseline).all()  # closer to each sample than where it started
    small = np.zeros((1, 8, 8, 1), np.uint8)
    small[:, 2:6, 3:5] = 255  # a bar: resized to 16 x 16 before the fit
    np.savez(tmp_path / "small.npz", small)
    assert main(["project", str(run), str(tmp_path / "small.npz"), "-o", str(tmp_path / "q.png"), "--steps", "5",
                 "--save", str(tmp_path / "v.npz"), "--feature-weight", "0"]) == 0
    assert np.load(tmp_path / "v.npz")["images"].shape == (1, 1, 16, 16)
    np.savez(tmp_path / "points.npz", np.zeros((3, 2), np.float32))
    assert main(["project", str(run), str(tmp_path / "points.npz"), "-o", str(tmp_path / "r.png")]) == 2
    assert "must hold images" in capsys.readouterr().err


def test_a_restore_rewrites_the_progress_buffers_even_when_the_schedule_has_not_moved(tmp_path):
    """A rollback restores the networks' buffers from a checkpoint; the recipe must write its progress again even
    when the schedule's (level, alpha) equals what it last wrote (in the stable phase)."""
    from gankit.config import load_config
    from gankit.train import Trainer

    trainer = Trainer(load_config(None, [*TINY, "train.steps=4"]), tmp_path / "r")
    recipe, G, D = trainer.recipe, trainer.modules["generator"], trainer.modules["discriminator"]
    recipe.step(trainer.sampler, trainer.noise, 8)
    assert recipe.progress == (1, 1.0) == recipe.current_progress()  # stable at 8 px: the next step is the same
    for net in (G, D):
        net.set_progress(0, 0.25)  # what restored buffers can hold
    recipe.load_state_dict(recipe.state_dict())
    recipe.step(trainer.sampler, trainer.noise, 8)
    assert G.current_progress() == (1, 1.0) and D.progress.tolist() == [1, 1.0]


def test_pad_adds_a_black_border_that_evaluation_crops_off_again():
    plain = load_dataset(DataConfig(name="digits"), "test")
    padded = load_dataset(DataConfig(name="digits", pad=4), "test")
    assert padded.sample_shape == (1, 16, 16)
    assert torch.equal(padded.x[:, :, 4:12, 4:12], plain.x) and (padded.x[:, :, :4] == -1).all()
    from gankit.metrics.evaluate import EvalSettings, Evaluation

    settings = EvalSettings(n=359, cache=False)
    a = Evaluation(DataConfig(name="digits"), settings).score(plain.x)
    b = Evaluation(DataConfig(name="digits", pad=4), settings).score(padded.x)
    assert a["fid"] == pytest.approx(b["fid"], abs=1e-6) and abs(a["fid"]) < 1e-3
    assert "data.pad" in b["provenance"]["crop"]
    with pytest.raises(ConfigError, match="data.pad"):
        load_dataset(DataConfig(name="toy2d", pad=2, num_samples=100), "train")


@pytest.mark.parametrize("conv", ["adain", "modulated"])
@pytest.mark.parametrize("side", [8, 32])
def test_both_layer_kinds_map_codes_to_images_of_the_datas_shape_at_every_level(conv, side):
    G = _generator(side, conv)
    D = StyleGANDiscriminator(StyleGANConfig(**{**SMALL.__dict__, "conv": conv}), (1, side, side))
    z = torch.randn(4, 16)
    for level in range(G.levels):
        for alpha in (0.5, 1.0):
            x = G(z, progress=(level, alpha))
            assert x.shape == (4, 1, side, side) and torch.isfinite(x).all()
            assert D(x, progress=(level, alpha)).shape == (4,)
    assert G.num_ws == 2 * G.levels


def test_the_shipped_digits_config_and_the_modulated_option_train_under_bf16(tmp_path):
    from gankit.config import load_config
    from pathlib import Path

    config = Path(__file__).resolve().parents[1] / "configs" / "stylegan_digits.yaml"
    run = gankit.train(config, overrides=[*QUIET, "train.steps=2"], out=tmp_path / "shipped")
    assert gankit.load(run).sample(2, seed=0).shape == (2, 1, 16, 16)
    assert load_config(config).recipe.progressive
    run = gankit.train(None, overrides=[*TINY, *SG2, "recipe.progressive=true", "train.precision=bf16",
                                        "train.steps=5"], out=tmp_path / "bf16")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"d_loss"' in line]
    assert all(math.isfinite(r["d_loss"]) and math.isfinite(r["g_loss"]) for r in rows)
    samples = gankit.load(run).sample(8, seed=0)
    assert torch.isfinite(samples).all() and samples.std(dim=0).mean() > 1e-3


def test_the_stylegan_recipe_refuses_another_model_and_a_batch_the_group_does_not_divide(tmp_path):
    from gankit.config import load_config

    assert load_config(None, ["model.name=stylegan"]).recipe.name == "stylegan"  # the model's own recipe
    with pytest.raises(ConfigError, match="model.name=stylegan"):
        gankit.train(None, overrides=[*QUIET, "recipe.name=stylegan", "model.name=dcgan", "data.size=16",
                                      "train.steps=1"], out=tmp_path / "a")
    with pytest.raises(ConfigError, match="mbstd_group"):
        gankit.train(None, overrides=[*TINY, "train.batch_size=10", "train.steps=1"], out=tmp_path / "b")
    with pytest.raises(ConfigError, match="start_size"):
        gankit.train(None, overrides=[*TINY, "recipe.start_size=32", "train.steps=1"], out=tmp_path / "c")


# ---------------------------------------------------------------------------------------------------------------
# StyleGAN2's architectures and path length regularisation



def test_the_skip_generator_adds_each_levels_rgb_to_the_smoothly_upsampled_image_below():
    from gankit.models.stylegan import up2_smooth

    torch.manual_seed(0)
    cfg = StyleGANConfig(**{**SMALL.__dict__, "conv": "modulated", "g_arch": "skip", "output": "linear"})
    G = StyleGANGenerator(cfg, (1, 8, 8)).eval()
    ws = G.styles(torch.randn(3, 16))
    low = G.synthesis(ws, progress=(0, 1.0))[..., ::2, ::2]  # the 4x4 image (shown at 8x8, nearest)
    top = G.synthesis(ws, progress=(1, 1.0))
    rgb1 = top - up2_smooth(low)  # what level 1 adds
    assert torch.allclose(G.synthesis(ws, progress=(1, 0.0)), up2_smooth(low), atol=1e-6)
    assert torch.allclose(G.synthesis(ws, progress=(1, 0.5)), up2_smooth(low) + 0.5 * rgb1, atol=1e-5)
    assert rgb1.abs().max() > 1e-3
    # the 4x4 toRGB has a direct path to the full-resolution image in the skip generator, none in the original one
    with torch.no_grad():
        G.to_rgb[0].bias += 1.0
    assert torch.allclose(G.synthesis(ws, progress=(1, 1.0)), top + 1.0, atol=1e-5)
    torch.manual_seed(0)
    orig = StyleGANGenerator(StyleGANConfig(**{**cfg.__dict__, "g_arch": "original"}), (1, 8, 8)).eval()
    before = orig.synthesis(ws)
    with torch.no_grad():
        orig.to_rgb[0].bias += 1.0
    assert torch.equal(orig.synthesis(ws), before)


def test_a_residual_d_block_adds_the_pooled_input_through_a_1x1_conv_and_scales_by_root_two():
    from gankit.models.stylegan import DBlock, ResidualDBlock

    torch.manual_seed(1)
    block, x = ResidualDBlock(6, 4), torch.randn(2, 6, 8, 8)
    plain = DBlock(6, 4)
    plain.load_state_dict({k: v for k, v in block.state_dict().items() if not k.startswith("skip.")})
    skip = F.conv2d(F.avg_pool2d(x, 2), block.skip.weight / math.sqrt(6))  # gain 1, fan-in 6, no bias
    assert block.skip.bias is None
    assert torch.allclose(block(x), (plain(x) + skip) / math.sqrt(2), rtol=1e-5, atol=1e-5)  # kernels differ by CPU
    D = StyleGANDiscriminator(StyleGANConfig(**{**SMALL.__dict__, "d_arch": "residual"}), (1, 16, 16))
    assert all(isinstance(b, ResidualDBlock) for b in D.blocks[1:]) and D(torch.randn(4, 1, 16, 16)).shape == (4,)


def test_architecture_names_are_checked_and_the_valid_ones_listed():
    with pytest.raises(ConfigError, match="model.g_arch='resnet': expected original or skip"):
        StyleGANConfig(g_arch="resnet")
    with pytest.raises(ConfigError, match="expected original or residual"):
        StyleGANConfig(d_arch="skip")


def test_stylegan2_training_logs_path_lengths_and_resumes_bit_for_bit(tmp_path):
    base = [*TINY, *SG2, "train.log_every=1"]
    straight = gankit.train(None, overrides=[*base, "train.steps=5"], out=tmp_path / "straight")
    split = gankit.train(None, overrides=[*base, "train.steps=3"], out=tmp_path / "split")  # the mean is 1 step old
    gankit.train(None, overrides=["train.steps=5"], out=split, resume=True)
    a, b = (ckpt.load_checkpoint(latest_checkpoint(r)) for r in (straight, split))
    assert [k for k in a[0] if not torch.equal(a[0][k], b[0][k])] == []
    assert a[1]["recipe"]["pl_mean"] == b[1]["recipe"]["pl_mean"]
    rows = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines() if '"d_loss"' in line]
    assert "pl_mean" not in rows[0]  # the first update is the second generator step (pl_every=2)
    means = [r["pl_mean"] for r in rows[1:]]
    assert means[0] > 0 and means[0] == means[1] and means[2] != means[1]  # moves on steps 2 and 4 only
    assert all(r["resolution"] == 16 for r in rows)  # no growing
    # from 0, one update with decay 0.01 puts the mean at 1% of the batch's mean length: small and positive
    assert 0 < means[0] < 1 and math.isfinite(rows[-1]["pl_penalty"]) and rows[-1]["pl_penalty"] >= 0


def test_lazy_penalties_logged_after_a_resume_are_those_of_the_uninterrupted_run(tmp_path):
    # R1 + R2 every 2 D steps, path lengths every 2 G steps; split after 2 steps, so step 3 updates neither and logs
    # the values step 2 left (a resume that forgot them would leave r1, r2 and pl_penalty out of that row)
    base = [*TINY, *SG2, "recipe.penalty=r1_r2", "train.log_every=1"]
    straight = gankit.train(None, overrides=[*base, "train.steps=6"], out=tmp_path / "straight")
    split = gankit.train(None, overrides=[*base, "train.steps=2"], out=tmp_path / "split")
    gankit.train(None, overrides=["train.steps=6"], out=split, resume=True)
    keys = ("r1", "r2", "pl_penalty", "pl_mean")

    def lazy(run):
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"d_loss"' in line]
        return {r["step"]: {k: r.get(k) for k in keys} for r in rows}

    a, b = lazy(straight), lazy(split)
    assert sorted(a) == sorted(b) == [1, 2, 3, 4, 5, 6]
    assert all(a[s][k] is not None for s in (3, 4, 5, 6) for k in keys)
    assert a[3] == a[2] and a[4] != a[3]  # step 3 repeats step 2's values; step 4 updates both
    assert [b[s] for s in (3, 4, 5, 6)] == [a[s] for s in (3, 4, 5, 6)]


def test_the_shipped_stylegan2_config_trains_on_the_embedded_digits(tmp_path):
    from gankit.config import load_config
    from pathlib import Path

    config = Path(__file__).resolve().parents[1] / "configs" / "stylegan2_mnist.yaml"
    cfg = load_config(config)
    assert (cfg.model.conv, cfg.model.g_arch, cfg.model.d_arch) == ("modulated", "skip", "residual")
    assert not cfg.recipe.progressive and cfg.recipe.pl_weight == 0  # off: measured worse at 32 px
    run = gankit.train(config, overrides=[*QUIET, "data.name=digits", "data.pad=0", "data.size=16", "train.steps=4",
                                          "recipe.pl_weight=2", "recipe.pl_every=2"], out=tmp_path / "sg2")
    samples = gankit.load(run).sample(4, seed=0)
    assert samples.shape == (4, 1, 16, 16) and torch.isfinite(samples).all()


def test_the_path_length_update_moves_the_generator_by_its_own_gradient(tmp_path):
    runs = {w: gankit.train(None, overrides=[*TINY, *SG2, f"recipe.pl_weight={w}", "recipe.pl_every=1",
                                              "train.steps=1", "train.ema=0"], out=tmp_path / f"pl{w}")
            for w in (0, 2)}
    (off, _), (on, meta) = (ckpt.load_checkpoint(latest_checkpoint(runs[w])) for w in (0, 2))
    moved = [k for k in off if k.startswith("model.generator.") and not torch.equal(off[k], on[k])]
    assert any(".mapping." in k for k in moved) and any(".blocks." in k for k in moved)
    assert all(torch.equal(off[k], on[k]) for k in off if k.startswith("model.discriminator."))  # D's step came first
    assert meta["recipe"]["pl_mean"] > 0


def test_with_the_skip_generator_growing_fades_the_reals_bilinearly_as_the_generator_does():
    from gankit.models.stylegan import up2_smooth

    x = torch.rand(2, 1, 16, 16) * 2 - 1
    low = F.avg_pool2d(x, 2)
    assert torch.allclose(fade_images(x, 1, 0.0, smooth=True)[..., ::2, ::2], up2_smooth(F.avg_pool2d(low, 2)),
                          atol=1e-6)
    assert torch.allclose(fade_images(x, 1, 0.0)[..., ::2, ::2], F.interpolate(F.avg_pool2d(low, 2), scale_factor=2),
                          atol=1e-6)
    assert torch.equal(fade_images(x, 2, 1.0, smooth=True), x)  # the top level, faded in: the images themselves


# ---------------------------------------------------------------------------------------------------------------
# Class conditioning


def _conditional(seed: int = 0, side: int = 16) -> tuple[StyleGANGenerator, StyleGANDiscriminator]:
    torch.manual_seed(seed)
    cfg = StyleGANConfig(**{**SMALL.__dict__, "conditioning": "projection"})
    return StyleGANGenerator(cfg, (1, side, side), 10).eval(), StyleGANDiscriminator(cfg, (1, side, side), 10)


def test_a_conditional_mapping_joins_the_labels_embedding_so_the_label_changes_w_and_the_image():
    G, _ = _conditional()
    assert G.num_classes == 10 and G.mapping.layers[0].weight.shape[1] == 16 + 16  # z and the embedding
    assert G.mapping.embed.lr_mul == SMALL.mapping_lr_mul  # the embedding learns at the mapping's rate ...
    fast = StyleGANGenerator(StyleGANConfig(**{**SMALL.__dict__, "conditioning": "projection", "embed_lr_mul": 1.0}),
                             (1, 16, 16), 10)
    assert fast.mapping.embed.lr_mul == 1.0  # ... unless model.embed_lr_mul says otherwise
    z = G.sample_latent(4, generator=torch.Generator().manual_seed(0))
    threes, sevens = torch.full((4,), 3), torch.full((4,), 7)
    w3, w7 = G.styles(z, labels=threes)[:, 0], G.styles(z, labels=sevens)[:, 0]
    assert torch.equal(w3, G.styles(z, labels=threes)[:, 0])  # a function of (z, y)
    assert ((w3 - w7).norm(dim=1) > 0.01 * w3.norm(dim=1)).all()
    # the mapping reads pixel_norm(z) next to pixel_norm(embed(onehot(y))), as StyleGAN2-ADA's does
    x = torch.cat([z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8),
                   G.mapping.embed(F.one_hot(threes, 10).float())], dim=1)
    x[:, 16:] = x[:, 16:] * torch.rsqrt(x[:, 16:].square().mean(1, keepdim=True) + 1e-8)
    for layer in G.mapping.layers:
        x = F.leaky_relu(layer(x), 0.2)
    assert torch.allclose(x, w3, atol=1e-5)
    images = G.generate(z, threes), G.generate(z, sevens)
    assert (images[0] - images[1]).abs().mean() > 1e-3
    with pytest.raises(ValueError, match="needs labels"):
        G.styles(z)
    with pytest.raises(GankitError, match="label"):
        style.mix_pair(G, z, z)
    uncond = _generator(16)
    assert torch.equal(uncond(z, threes), uncond(z))  # an unconditional model ignores labels


def test_the_projection_discriminator_adds_the_labels_embedding_dotted_with_its_last_features():
    _, D = _conditional(seed=1)
    assert D.conditioning == "projection" and D.num_classes == 10
    x, y = torch.rand(4, 1, 16, 16) * 2 - 1, torch.tensor([0, 3, 3, 9])
    seen = {}
    D.final_fc.register_forward_hook(lambda m, i, out: seen.update(h=F.leaky_relu(out, 0.2)))
    logits = D(x, y)
    h = seen["h"]
    unconditional = D.out(h).flatten()
    projection = (D.embed(F.one_hot(y, 10).float()) * h).sum(dim=1) / math.sqrt(h.shape[1])
    assert torch.allclose(logits, unconditional + projection, atol=1e-5)
    assert (projection.abs() > 1e-4).all()  # the label does move the logit
    with pytest.raises(ValueError, match="needs labels"):
        D(x)
    with pytest.raises(ConfigError, match="labelled data"):
        from gankit.models.stylegan import _build
        _build(StyleGANConfig(conditioning="projection"), (1, 16, 16), 0)


def test_the_recipe_shows_d_each_fakes_label_and_mixes_two_codes_of_one_class(tmp_path):
    from gankit.config import load_config
    from gankit.train.trainer import Trainer

    cfg = load_config(None, [*TINY, "model.conditioning=projection", "recipe.mixing_prob=1"])
    recipe = Trainer(cfg, tmp_path / "r").recipe
    G, D = recipe.G, recipe.D
    calls, mapped = [], []
    judge, mapping = D.forward_all, G.mapping.forward
    D.forward_all = lambda x, labels=None, **kw: calls.append(labels) or judge(x, labels, **kw)
    G.mapping.forward = lambda z, labels=None: mapped.append(labels) or mapping(z, labels)
    images, labels = recipe._fakes(300, torch.Generator().manual_seed(0))
    assert labels.shape == (300,) and set(labels.tolist()) == set(range(10))  # uniform classes
    assert len(mapped) == 2 and torch.equal(mapped[0], labels) and torch.equal(mapped[1], labels)
    recipe.step(_Batches(tmp_path), torch.Generator().manual_seed(1), 8)
    assert calls and all(c is not None and c.shape == (8,) for c in calls)  # reals and fakes, D and G steps


class _Batches:
    """Eight labelled 16x16 images per call."""

    def __init__(self, _):
        self.g = torch.Generator().manual_seed(2)

    def next(self, n):
        return torch.rand(n, 1, 16, 16, generator=self.g) * 2 - 1, torch.randint(10, (n,), generator=self.g)


def test_a_conditional_stylegan_trains_samples_a_chosen_digit_and_draws_style_grids(tmp_path, capsys):
    run = gankit.train(None, overrides=[*TINY, "model.conditioning=projection", "train.steps=4"], out=tmp_path / "c")
    loaded = gankit.load(run)
    assert loaded.generator.num_classes == 10
    fives = torch.full((6,), 5)
    a, b = loaded.sample(6, seed=0, labels=fives), loaded.sample(6, seed=0, labels=torch.full((6,), 2))
    assert a.shape == (6, 1, 16, 16) and not torch.equal(a, b)
    assert torch.equal(loaded.sample(6, seed=0, labels=fives, psi=0.5), loaded.sample(6, seed=0, labels=fives,
                                                                                       psi=0.5))
    assert not torch.equal(loaded.sample(6, seed=0, labels=fives, psi=0.5),
                           loaded.sample(6, seed=0, labels=torch.full((6,), 2), psi=0.5))  # psi keeps the label
    assert main(["sample", str(run), "-n", "3", "--label", "4", "-o", str(tmp_path / "s.npz")]) == 0
    assert np.load(tmp_path / "s.npz")["arr_0"].shape == (3, 16, 16, 1)
    assert main(["latent", "mix", str(run), "-o", str(tmp_path / "mix.png"), "--cols", "3"]) == 0
    assert main(["latent", "truncation", str(run), "-o", str(tmp_path / "t.png"), "--psi", "1,0"]) == 0
    G = loaded.generator
    mean, spread = style.mean_w(G, 500, generator=torch.Generator().manual_seed(0))
    assert mean.shape == (16,) and spread > 0
    assert style.path_length(G, lambda x: x.flatten(1), 8, generator=torch.Generator().manual_seed(0))["ppl"] > 0


def test_transitional_conditioning_trains_unconditionally_then_ramps_the_classes_weight_in(tmp_path):
    from gankit.config import load_config
    from gankit.train.trainer import Trainer

    cfg = load_config(None, [*TINY, "model.conditioning=projection", "recipe.cond_start=2", "recipe.cond_ramp=4"])
    recipe = Trainer(cfg, tmp_path / "r").recipe
    weights = []
    for steps in range(8):
        recipe.g_steps = steps
        weights.append(recipe.condition_weight())
    assert weights == [0, 0, 0, 0.25, 0.5, 0.75, 1, 1]
    G, D = _conditional(seed=2)
    G.mapping.cond_scale.fill_(0.0)
    D.cond_scale.fill_(0.0)
    z, x = G.sample_latent(3, generator=torch.Generator().manual_seed(0)), torch.rand(3, 1, 16, 16)
    assert torch.equal(G.generate(z, torch.full((3,), 1)), G.generate(z, torch.full((3,), 8)))  # no class at 0
    assert torch.equal(D(x, torch.full((3,), 1)), D(x, torch.full((3,), 8)))
    G.mapping.cond_scale.fill_(0.5)
    assert not torch.equal(G.generate(z, torch.full((3,), 1)), G.generate(z, torch.full((3,), 8)))
    run = gankit.train(None, overrides=[*TINY, "model.conditioning=projection", "recipe.cond_start=2",
                                        "recipe.cond_ramp=4", "train.steps=5"], out=tmp_path / "t")
    loaded = gankit.load(run)  # the checkpoint keeps the weight its last step trained with: step 5's, 0.5
    assert float(loaded.generator.mapping.cond_scale) == 0.5
    assert float(loaded.modules["discriminator"].cond_scale) == 0.5
    with pytest.raises(ConfigError, match="class-conditional"):
        gankit.train(None, overrides=[*TINY, "recipe.cond_start=2", "train.steps=1"], out=tmp_path / "u")
