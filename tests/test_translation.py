"""pix2pix and CycleGAN: the models' contracts, the recipes' update discipline, the cycle loss, the history buffer,
and end-to-end runs on a small paired / unpaired task made from scikit-learn's digits (A: a digit, B: the digit
mirrored and inverted)."""

from __future__ import annotations

import json

import numpy as np

import pytest
import torch

import gankit
from gankit.config import OptimConfig
from gankit.errors import ConfigError, GankitError
from gankit.models.translation import (CycleGANConfig, PatchDiscriminator, Pix2PixConfig, ResNetGenerator,
                                       UNetGenerator, build_cyclegan, build_pix2pix, unet_depth)
from gankit.recipes.translation import (CycleGANRecipe, CycleGANRecipeConfig, HistoryBuffer, Pix2PixRecipe,
                                        Pix2PixRecipeConfig, cycle_terms)
from gankit.train import checkpoint as ckpt
from gankit.train import latest_checkpoint


QUIET = ["train.progress=false", "train.eval_every=0", "train.batch_size=8", "train.log_every=2"]
PIX2PIX = [*QUIET, "data.name=test_mirrored_pairs", "model.name=pix2pix", "model.width=8",
           "model.d_width=8", "model.d_layers=1", "data.size=16"]
CYCLE = [*QUIET, "data.name=test_mirrored_unpaired", "model.name=cyclegan", "model.width=4",
         "model.d_width=8", "model.d_layers=1", "model.res_blocks=1", "data.size=16", "recipe.pool_size=4"]


# ---------------------------------------------------------------------------------------------------------------
# Models

@pytest.mark.parametrize("side, c_in, c_out", [(28, 1, 1), (28, 1, 3), (32, 3, 3), (16, 3, 1)])
def test_generators_map_a_images_to_b_shaped_images_in_range(side, c_in, c_out):
    x = torch.rand(2, c_in, side, side) * 2 - 1
    for G in (UNetGenerator(c_in, c_out, side, 8, 64, 0, "batch", dropout=0.5),
              ResNetGenerator(c_in, c_out, 8, 64, 2, "instance")):
        y = G(x)
        assert y.shape == (2, c_out, side, side)
        assert y.min() >= -1 and y.max() <= 1 and y.std() > 0


def test_unet_depth_reaches_a_small_bottleneck_and_pads_odd_sides():
    assert [unet_depth(s) for s in (8, 16, 28, 32, 256)] == [2, 2, 3, 3, 6]
    G = UNetGenerator(1, 1, 28, 4, 64, 0, "batch")
    assert G.depth == 3 and len(G.downs) == len(G.ups) == 3
    assert G(torch.zeros(1, 1, 28, 28)).shape == (1, 1, 28, 28)  # padded to 32 inside, cropped back


def test_patch_discriminator_gives_one_logit_per_patch():
    D = PatchDiscriminator(2, 8, 64, 2, "batch")
    out = D(torch.randn(3, 2, 28, 28))
    assert out.shape[:2] == (3, 1) and out.shape[2] == out.shape[3] and 2 <= out.shape[2] <= 7


def test_noise_gives_several_outputs_per_input():
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    drop = UNetGenerator(1, 1, 16, 8, 64, 0, "batch", dropout=0.5)
    assert torch.equal(drop.translate(x), drop.translate(x))  # deterministic unless asked
    one, two = drop.translate(x, stochastic=True), drop.translate(x, stochastic=True)
    # dropout sits in the innermost layers, behind the skips: at initialisation it moves the output by ~2%,
    # far above rounding (1e-7)
    assert (one - two).abs().mean() > 1e-3 * one.abs().mean()
    kept = UNetGenerator(1, 1, 16, 8, 64, 0, "batch", dropout=0.5, test_dropout=True)  # pix2pix's test-time noise
    kept.load_state_dict(drop.state_dict())
    state = torch.get_rng_state()
    seeded = [kept.translate(x, generator=torch.Generator().manual_seed(s)) for s in (3, 3, 4)]
    assert torch.equal(torch.get_rng_state(), state)  # masks from the generator: the global stream never moves
    assert torch.equal(seeded[0], seeded[1])
    assert (seeded[0] - seeded[2]).abs().mean() > 1e-3 * seeded[0].abs().mean()
    assert (seeded[0] - drop.translate(x)).abs().mean() > 1e-3 * seeded[0].abs().mean()
    vec = UNetGenerator(1, 1, 16, 8, 64, 0, "batch", noise_dim=4)
    g = torch.Generator().manual_seed(0)
    one, two = vec.translate(x, generator=g), vec.translate(x, generator=g)
    assert (one - two).abs().mean() > 0.02 * one.abs().mean()


def test_translation_models_need_translation_data():
    cfg = Pix2PixConfig()
    with pytest.raises(ConfigError, match="translation dataset"):
        build_pix2pix(cfg, (1, 28, 28), 10)
    cfg.channels_a = 1
    modules = build_pix2pix(cfg, (4, 28, 28), 10)
    assert modules["generator"].channels_in == 1 and modules["generator"].channels_out == 3
    assert modules["discriminator"].net[0].in_channels == 4  # pix2pix's D sees A and B together
    cyc = build_cyclegan(CycleGANConfig(channels_a=1, width=4, res_blocks=1), (4, 28, 28), 10)
    assert cyc["generator_ba"].channels_in == 3 and cyc["discriminator_a"].net[0].in_channels == 1


# ---------------------------------------------------------------------------------------------------------------
# Recipes

class _Batches:
    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def next(self, n: int):
        return self.x[:n], None


def _snapshot(module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _same(module, snapshot) -> bool:
    return all(torch.equal(p, q) for p, q in zip(module.parameters(), snapshot))


def test_a_cyclegan_d_update_leaves_both_generators_untouched_and_the_g_update_both_discriminators():
    torch.manual_seed(0)
    modules = build_cyclegan(CycleGANConfig(channels_a=1, width=4, res_blocks=1, d_layers=1, d_width=8),
                             (2, 16, 16), 0)
    recipe = CycleGANRecipe(CycleGANRecipeConfig(pool_size=2), modules, OptimConfig())
    seen = {}

    def after_g(opt, args, kwargs):  # the state between the G update and the D update
        seen["G_ab"], seen["G_ba"] = _snapshot(modules["generator"]), _snapshot(modules["generator_ba"])
        seen["D_a_moved"] = not _same(modules["discriminator_a"], before_d_a)
        seen["D_b_moved"] = not _same(modules["discriminator"], before_d_b)

    recipe.optimizers["generator"].register_step_post_hook(after_g)
    before_d_a, before_d_b = _snapshot(modules["discriminator_a"]), _snapshot(modules["discriminator"])
    before_g = _snapshot(modules["generator"])
    logs = recipe.step(_Batches(torch.rand(4, 2, 16, 16) * 2 - 1), torch.Generator().manual_seed(0), 4)
    assert not seen["D_a_moved"] and not seen["D_b_moved"]  # the G update did not touch D_A or D_B
    assert _same(modules["generator"], seen["G_ab"]) and _same(modules["generator_ba"], seen["G_ba"])
    assert not _same(modules["generator"], before_g)  # G did learn, in its own update
    assert not _same(modules["discriminator"], before_d_b) and not _same(modules["discriminator_a"], before_d_a)
    assert {"g_loss", "d_loss", "cycle", "identity"} <= set(logs)


def test_the_cycle_loss_is_zero_for_inverse_maps_and_positive_otherwise():
    a, b = torch.rand(3, 1, 8, 8) * 2 - 1, torch.rand(3, 1, 8, 8) * 2 - 1
    negate = lambda x: -x  # noqa: E731  (its own inverse)
    _, _, cycle = cycle_terms(a, b, negate, negate)
    assert float(cycle) == 0.0
    half = lambda x: 0.5 * x  # noqa: E731
    _, _, cycle = cycle_terms(a, b, half, half)  # returns x / 4: the loss is 3/4 of E|a| + E|b|
    expected = 0.75 * (a.abs().mean() + b.abs().mean())
    assert float(cycle) == pytest.approx(float(expected), rel=1e-6)


def test_identity_loss_needs_equal_channels():
    modules = build_cyclegan(CycleGANConfig(channels_a=1, width=4, res_blocks=1), (4, 16, 16), 0)
    with pytest.raises(ConfigError, match="identity_weight=0"):
        CycleGANRecipe(CycleGANRecipeConfig(), modules, OptimConfig())
    CycleGANRecipe(CycleGANRecipeConfig(identity_weight=0), modules, OptimConfig())


def test_the_history_buffer_fills_then_swaps_about_half_of_the_new_fakes():
    pool = HistoryBuffer(4)
    g = torch.Generator().manual_seed(0)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first, g), first)  # filling: the new fakes are shown
    assert torch.equal(pool.images, first)
    shown_old, total = 0, 0
    inserted = set(range(4))
    for step in range(1, 200):
        new = (100 * step + torch.arange(2.0)).view(2, 1, 1, 1)
        shown = pool.query(new, g)
        assert len(pool.images) == 4 and shown.shape == new.shape
        for value in shown.flatten().tolist():
            assert value in inserted or value in new.flatten().tolist()  # only fakes it has been given
            shown_old += value not in new.flatten().tolist()
            total += 1
        inserted |= set(new.flatten().tolist())
    assert 0.4 < shown_old / total < 0.6  # a stored fake half of the time
    assert torch.equal(HistoryBuffer(0).query(first, g), first)  # size 0: no buffer


def test_pix2pix_baseline_trains_g_on_the_pixel_loss_and_never_touches_d():
    torch.manual_seed(0)
    modules = build_pix2pix(Pix2PixConfig(channels_a=1, width=8, d_width=8, d_layers=1), (2, 16, 16), 0)
    recipe = Pix2PixRecipe(Pix2PixRecipeConfig(gan_weight=0), modules, OptimConfig(lr_g=1e-3))
    x = torch.rand(8, 1, 16, 16) * 2 - 1
    batch = _Batches(torch.cat([x, -x], 1))
    d_before = _snapshot(modules["discriminator"])
    first = recipe.step(batch, torch.Generator(), 8)["pixel"]
    for _ in range(80):
        last = recipe.step(batch, torch.Generator(), 8)["pixel"]
    assert _same(modules["discriminator"], d_before)
    assert float(last) < 0.8 * float(first)


# ---------------------------------------------------------------------------------------------------------------
# Through the trainer

def test_pix2pix_trains_with_the_trainer_and_draws_input_output_target_grids(tmp_path):
    run = gankit.train(None, overrides=[*PIX2PIX, "train.steps=40", "train.sample_every=40",
                                        "optim.lr_g=1e-3", "optim.lr_d=1e-3"], out=tmp_path / "p")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"pixel"' in line]
    assert rows[-1]["pixel"] < 0.8 * rows[0]["pixel"]
    assert {"d_loss", "g_adv", "d_real", "d_fake"} <= set(rows[-1])
    from PIL import Image

    grid = Image.open(run / "samples" / "step_0000040.png")
    assert grid.width > 2 * grid.height  # three rows of ten images: input, output, target
    assert "channels_a: 1" in (run / "config.yaml").read_text()  # the resolved config records A's channels


def test_cyclegan_resumes_bit_for_bit_with_its_history_buffers(tmp_path):
    straight = gankit.train(None, overrides=[*CYCLE, "train.steps=6"], out=tmp_path / "straight")
    split = gankit.train(None, overrides=[*CYCLE, "train.steps=3"], out=tmp_path / "split")
    gankit.train(None, overrides=["train.steps=6"], out=split, resume=True)
    a, b = (ckpt.load_checkpoint(latest_checkpoint(r))[0] for r in (straight, split))
    assert {"recipe.pool_a", "recipe.pool_b"} <= set(a)
    assert set(a) == set(b) and [k for k in a if not torch.equal(a[k], b[k])] == []


def test_the_semantic_consistency_loss_reads_each_translation_as_its_source_and_trains_only_the_generators():
    cfg = CycleGANRecipeConfig(semantic_weight=2.0, identity_weight=0.0, pool_size=0)
    torch.manual_seed(0)
    modules = build_cyclegan(CycleGANConfig(width=4, d_width=8, d_layers=1, res_blocks=1, channels_a=1), (4, 16, 16),
                             0)
    recipe = CycleGANRecipe(cfg, modules, OptimConfig())
    torch.manual_seed(0)
    c_a, c_b = torch.nn.Conv2d(1, 10, 16), torch.nn.Conv2d(3, 10, 16)  # stand-ins for the two frozen evaluators
    for c in (c_a, c_b):
        c.requires_grad_(False)
    recipe.classifiers = {"A": lambda x: c_a(x).flatten(1), "B": lambda x: c_b(x).flatten(1)}
    a, b = torch.rand(6, 1, 16, 16) * 2 - 1, torch.rand(6, 3, 16, 16) * 2 - 1
    fake_b, fake_a = modules["generator"](a), modules["generator_ba"](b)
    expected = (torch.nn.functional.cross_entropy(c_b(fake_b).flatten(1), c_a(a).flatten(1).argmax(1))
                + torch.nn.functional.cross_entropy(c_a(fake_a).flatten(1), c_b(b).flatten(1).argmax(1)))
    got = recipe.semantic(a, b, fake_b, fake_a)
    assert torch.allclose(got, expected) and got > 0
    got.backward()
    assert all(p.grad is not None for p in modules["generator"].parameters() if p.requires_grad)
    assert c_a.weight.grad is None and c_b.weight.grad is None


def test_the_semantic_loss_trains_with_the_built_in_evaluators_and_needs_a_classifier(tmp_path, mnist_root):
    run = gankit.train(None, overrides=["data.name=mnist_colour", f"data.root={mnist_root}", "data.num_samples=64",
                                        "model.name=cyclegan", "model.width=4", "model.res_blocks=1",
                                        "model.d_width=8", "model.d_layers=2", "recipe.identity_weight=0",
                                        "recipe.semantic_weight=1", *QUIET, "train.steps=2"], out=tmp_path / "s")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if "semantic" in line]
    assert rows and all(0 < r["semantic"] < 100 for r in rows)  # untrained: read confidently as another class
    with pytest.raises(ConfigError, match="recipe.classifier_a"):
        gankit.train(None, overrides=[*CYCLE, "recipe.semantic_weight=1", "train.steps=1"], out=tmp_path / "n")


def test_a_gan_recipe_on_translation_data_or_pix2pix_on_plain_data_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="translation dataset"):
        gankit.train(None, overrides=[*QUIET, "model.name=pix2pix", "recipe.name=pix2pix", "train.steps=1"],
                     out=tmp_path / "a")


# ---------------------------------------------------------------------------------------------------------------
# gankit translate and LoadedRun.translate

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("translate")
    pix = gankit.train(None, overrides=[*PIX2PIX, "train.steps=4"], out=root / "pix")
    cyc = gankit.train(None, overrides=[*CYCLE, "train.steps=4"], out=root / "cyc")
    return pix, cyc


def test_translate_api_gives_k_outputs_per_input_and_checks_shapes(trained, tmp_path):
    pix, cyc = trained
    run = gankit.load(pix)
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    one = run.translate(x)
    assert one.shape == (3, 1, 16, 16) and torch.equal(one, run.translate(x))
    many = run.translate(x, samples=4, seed=1)
    assert many.shape == (3, 4, 1, 16, 16)
    assert (many[:, 0] - many[:, 1]).abs().max() > 0  # dropout noise: different outputs of one input
    assert torch.equal(one, run.translate(x, seed=1))  # one output: dropout off, whatever the seed
    # model.test_dropout keeps it on for one output too (the paper's test time): another seed, another output
    kept = gankit.load(gankit.train(None, overrides=[*PIX2PIX, "train.steps=4", "model.test_dropout=true"],
                                    out=tmp_path / "kept"))
    noisy = kept.translate(x)
    assert torch.equal(noisy, kept.translate(x)) and not torch.equal(noisy, kept.translate(x, seed=1))
    kept.generator.test_dropout = False  # the same weights (both runs: the same seed and steps), dropout off
    off = kept.translate(x)
    assert torch.allclose(off, one, atol=1e-5) and (noisy - off).abs().mean() > 1e-3 * off.abs().mean()
    with pytest.raises(GankitError, match="shape"):
        run.translate(torch.rand(3, 3, 16, 16))
    with pytest.raises(GankitError, match="A to B only"):
        run.translate(x, direction="BA")
    back = gankit.load(cyc).translate(x, direction="BA")
    assert back.shape == (3, 1, 16, 16)


def test_translate_cli_on_a_folder_an_npz_and_one_image(trained, tmp_path):
    import subprocess
    import sys

    from PIL import Image

    pix, cyc = trained
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(folder / name)
    np.savez(tmp_path / "in.npz", arr_0=rng.integers(0, 255, (5, 16, 16, 1), dtype=np.uint8))

    def cli(*args):
        done = subprocess.run([sys.executable, "-m", "gankit", "translate", *map(str, args)], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    cli(pix, folder, "-o", tmp_path / "out", "--grid", tmp_path / "grid.png")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    assert Image.open(tmp_path / "out" / "a.png").size == (16, 16)  # resized to the run's size
    assert (tmp_path / "grid.png").is_file()
    cli(cyc, tmp_path / "in.npz", "-o", tmp_path / "out.npz", "--direction", "BA")
    with np.load(tmp_path / "out.npz") as npz:
        assert npz["arr_0"].shape == (5, 16, 16, 1) and npz["arr_0"].dtype == np.uint8
    cli(pix, folder / "a.png", "-o", tmp_path / "k.png", "--samples", "3")
    assert Image.open(tmp_path / "k.png").width > 3 * Image.open(tmp_path / "k.png").height


# ---------------------------------------------------------------------------------------------------------------
# Metrics

def test_ssim_is_one_for_identical_images_and_matches_its_closed_form_on_constant_ones():
    from gankit.metrics.translation import ssim_per_image

    x = torch.rand(3, 2, 16, 16) * 2 - 1
    assert torch.allclose(ssim_per_image(x, x), torch.ones(3, dtype=torch.float64))
    a, b = torch.full((1, 1, 16, 16), 0.2), torch.full((1, 1, 16, 16), -0.4)
    c1 = (0.01 * 2) ** 2  # constant images: only the luminance term is left
    expected = (2 * 0.2 * -0.4 + c1) / (0.2 ** 2 + 0.4 ** 2 + c1)
    assert float(ssim_per_image(a, b)) == pytest.approx(expected, rel=1e-9)
    noisy = [float(ssim_per_image(x, (x + s * torch.randn_like(x)).clamp(-1, 1)).mean()) for s in (0.05, 0.2, 0.8)]
    assert 1 > noisy[0] > noisy[1] > noisy[2] > -1  # falls as the noise grows
    assert torch.allclose(ssim_per_image(x, x.flip(0)), ssim_per_image(x.flip(0), x))  # symmetric


def test_translation_scores_on_known_cases():
    from gankit.metrics.translation import class_preservation, cycle_error, output_diversity, paired_scores

    x = torch.zeros(4, 1, 8, 8)
    scores = paired_scores(x + 0.5, x)
    assert scores["l1"] == pytest.approx(0.5) and scores["psnr"] == pytest.approx(10 * np.log10(4 / 0.25))
    assert class_preservation(torch.tensor([1, 2, 3, 3]), torch.tensor([1, 2, 3, 4])) == 0.75
    assert cycle_error(x, x - 0.25) == pytest.approx(0.25)
    same = torch.zeros(2, 3, 1, 4, 4)
    assert output_diversity(same) == 0.0
    spread = torch.stack([torch.zeros(1, 4, 4), torch.ones(1, 4, 4), -torch.ones(1, 4, 4)])[None].repeat(2, 1, 1, 1, 1)
    assert output_diversity(spread) == pytest.approx((1 + 1 + 2) / 3)  # pairs (0,1), (0,-1), (1,-1)


def test_colourfulness_and_saturation_on_closed_forms():
    from gankit.metrics.translation import colour_scores, colourfulness_per_image, histogram_emd, saturation

    grey = torch.rand(3, 1, 6, 6).repeat(1, 3, 1, 1) * 2 - 1  # R = G = B
    assert torch.allclose(colourfulness_per_image(grey), torch.zeros(3, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(saturation(grey), torch.zeros(3, 6, 6, dtype=torch.float64), atol=1e-9)
    red = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1).expand(1, 3, 4, 4)  # (255, 0, 0): rg 255, yb 127.5
    assert float(colourfulness_per_image(red)) == pytest.approx(0.3 * np.hypot(255, 127.5))
    assert float(saturation(red).mean()) == pytest.approx(1.0) and float(saturation(-torch.ones(1, 3, 2, 2)).max()) == 0
    half = torch.zeros(1, 3, 2, 2)  # (127.5, 127.5, 127.5) grey, then half the pixels turned to (255, 0, 127.5)
    half[0, :, 0, :] = torch.tensor([1.0, -1.0, 0.0]).view(3, 1)
    rg, yb = np.array([255, 255, 0, 0]), np.array([0, 0, 0, 0])  # yb = (255 + 0) / 2 - 127.5 = 0
    assert float(colourfulness_per_image(half)) == pytest.approx(np.hypot(rg.std(), yb.std()) + 0.3 * rg.mean())
    low, high = torch.full((1000,), 0.2), torch.full((1000,), 0.7)
    assert histogram_emd(low, low) == 0.0 and histogram_emd(low, high) == pytest.approx(0.5, abs=0.011)
    scores = colour_scores(red.repeat(2, 1, 1, 1) * 0.5, red.repeat(2, 1, 1, 1))  # a washed-out red
    assert 0.4 < scores["colourfulness_ratio"] < 0.6 and scores["saturation"] < scores["saturation_real"]
    assert 0 < scores["saturation_emd"] <= 1
    with pytest.raises(ValueError, match="RGB"):
        colourfulness_per_image(torch.zeros(1, 1, 4, 4))


# ---------------------------------------------------------------------------------------------------------------
# Evaluation during training

def _evals(run) -> dict:
    return {int(p.stem.split("_")[1]): json.loads(p.read_text()) for p in sorted((run / "eval").glob("step_*.json"))}


def test_a_paired_run_without_an_evaluator_keeps_its_best_checkpoint_by_l1_and_resumes_bit_for_bit(tmp_path):
    train = [*PIX2PIX, "train.eval_every=3", "train.eval_samples=16", "train.checkpoint_every=3"]
    straight = gankit.train(None, overrides=[*train, "train.steps=9"], out=tmp_path / "straight")
    evals = _evals(straight)
    assert sorted(evals) == [3, 6, 9] and all("AB/l1" in e and "AB/ssim" in e and "AB/fid" not in e
                                              for e in evals.values())
    best = json.loads((straight / "checkpoints" / "best.json").read_text())
    assert best["AB/l1"] == min(e["AB/l1"] for e in evals.values()) and best["step"] in evals
    split = gankit.train(None, overrides=[*train, "train.steps=5"], out=tmp_path / "split")
    gankit.train(None, overrides=["train.steps=9"], out=split, resume=True)
    a, b = (ckpt.load_checkpoint(latest_checkpoint(r))[0] for r in (straight, split))
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    assert json.loads((split / "checkpoints" / "best.json").read_text()) == best
    assert _evals(split)[9]["AB/l1"] == evals[9]["AB/l1"]


@pytest.mark.parametrize("n, key", [(300, "fid"), (200, "kid")])  # 200 < 2 x 128 features: FID's guard, KID
def test_an_unpaired_mnist_run_is_scored_both_ways_during_training_and_keeps_the_mean_fid_best(tmp_path, mnist_root,
                                                                                             capsys, n, key):
    run = gankit.train(None, overrides=["data.name=mnist_colour", f"data.root={mnist_root}", "data.num_samples=300",
                                        "model.name=cyclegan", "model.width=4", "model.res_blocks=1",
                                        "model.d_width=8", "model.d_layers=2", "recipe.identity_weight=0",
                                        *QUIET, "train.eval_every=2", f"train.eval_samples={n}", "train.steps=4"],
                       out=tmp_path / "colour")
    assert f"best checkpoint by AB + BA {key.upper()} (mean)" in capsys.readouterr().out
    evals = _evals(run)
    assert sorted(evals) == [2, 4]
    for e in evals.values():
        assert {f"AB/{key}", f"BA/{key}", "AB/class_preservation", "BA/class_preservation", "AB/cycle_l1",
                "AB/colourfulness_ratio"} <= set(e) and "BA/colourfulness" not in e  # A is grey
        assert e[key] == pytest.approx((e[f"AB/{key}"] + e[f"BA/{key}"]) / 2)
        assert e["provenance"]["num_samples"] == n and "AB/diversity" not in e
        assert ("AB/fid" in e) == (key == "fid") and (key == "fid" or any("FID" in w for w in e["warnings"]))
    best = json.loads((run / "checkpoints" / "best.json").read_text())
    assert best[key] == min(e[key] for e in evals.values())
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("eval/BA/class_preservation" in r for r in rows)  # curves, TensorBoard and sweeps read these


def test_unpaired_data_without_evaluators_is_not_evaluated_and_says_why(tmp_path, capsys):
    run = gankit.train(None, overrides=[*CYCLE, "train.eval_every=2", "train.steps=2"], out=tmp_path / "c")
    assert not (run / "eval").exists() or not list((run / "eval").glob("step_*.json"))
    assert "no evaluation during training" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------------
# gankit eval of a translation run

def test_eval_of_a_paired_run_scores_pixels_and_diversity_and_says_what_it_cannot_score(trained):
    pix, cyc = trained
    result = gankit.evaluate(pix, n=100, write=False)
    assert {"AB/l1", "AB/psnr", "AB/ssim", "AB/diversity"} <= set(result)
    assert 0 < result["AB/l1"] < 2 and -1 <= result["AB/ssim"] <= 1 and result["AB/diversity"] > 0
    assert "AB/fid" not in result and any("no FID" in w for w in result["warnings"])  # no evaluator for the task
    both = gankit.evaluate(cyc, n=100, write=False)
    assert {"AB/cycle_l1", "BA/cycle_l1"} <= set(both) and "AB/l1" not in both  # unpaired: no ground truth
    assert both["AB/diversity"] == 0.0  # a CycleGAN generator is deterministic


def test_eval_of_mnist_translation_scores_fid_and_class_preservation(tmp_path, mnist_root):
    run = gankit.train(None, overrides=["data.name=mnist_edges", f"data.root={mnist_root}", "data.num_samples=256",
                                        "model.name=pix2pix", "model.width=8", "model.d_width=8", "model.d_layers=2",
                                        *QUIET, "train.steps=2"], out=tmp_path / "edges")
    result = gankit.evaluate(run, n=500, write=False)
    assert {"AB/fid", "AB/class_preservation", "AB/l1", "AB/ssim"} <= set(result)
    assert 0 <= result["AB/class_preservation"] <= 1 and result["AB/fid"] > 0
    assert result["provenance"]["directions"]["AB"]["evaluator"]["name"] == "mnist"


def test_one_domain_of_a_translation_task_is_a_plain_dataset():
    from gankit.config import DataConfig
    from gankit.data import load_dataset

    b = load_dataset(DataConfig(name="test_mirrored_unpaired", domain="B"), "train")
    whole = load_dataset(DataConfig(name="test_mirrored_unpaired"), "train")
    assert not b.is_translation and torch.equal(b.x, whole.b) and torch.equal(b.y, whole.y_b)
    with pytest.raises(ConfigError, match="not a translation dataset"):
        load_dataset(DataConfig(name="digits", domain="A"), "train")


def test_eval_of_an_unpaired_mnist_task_scores_both_directions_with_each_domains_evaluator(tmp_path, mnist_root,
                                                                                          monkeypatch):
    from gankit.metrics.evaluate import Evaluation

    run = gankit.train(None, overrides=["data.name=mnist_colour", f"data.root={mnist_root}", "data.num_samples=300",
                                        "model.name=cyclegan", "model.width=4", "model.res_blocks=1",
                                        "model.d_width=8", "model.d_layers=2", "recipe.identity_weight=0",
                                        *QUIET, "train.steps=2"], out=tmp_path / "colour")
    featurize, passes = Evaluation.featurize, []
    # a pass after the reference's (made while the evaluation is built) is over samples
    monkeypatch.setattr(Evaluation, "featurize",
                        lambda self, x: passes.append(hasattr(self, "reference")) or featurize(self, x))
    result = gankit.evaluate(run, n=300, write=False)
    assert passes.count(True) == 2  # one pass over each direction's translations: scores and class probabilities
    for d, evaluator in (("AB", "mnist_colour"), ("BA", "mnist")):
        assert {f"{d}/fid", f"{d}/class_preservation", f"{d}/cycle_l1"} <= set(result)
        assert result["provenance"]["directions"][d]["evaluator"]["name"] == evaluator


def test_pix2pix_refuses_unpaired_data_and_domain_b_of_a_paired_task_takes_a_labels(tmp_path):
    from gankit.config import DataConfig
    from gankit.data import load_dataset

    with pytest.raises(ConfigError, match="unpaired"):
        gankit.train(None, overrides=[*QUIET, "data.name=test_mirrored_unpaired", "model.name=pix2pix",
                                      "train.steps=1"], out=tmp_path / "r")
    b = load_dataset(DataConfig(name="test_mirrored_pairs", domain="B"), "train")
    whole = load_dataset(DataConfig(name="test_mirrored_pairs"), "train")
    assert whole.paired and torch.equal(b.y, whole.y)


def test_seeded_translations_repeat_with_dropout_noise(trained):
    run = gankit.load(trained[0])
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    assert torch.equal(run.translate(x, samples=3, seed=5), run.translate(x, samples=3, seed=5))
    assert not torch.equal(run.translate(x, samples=3, seed=5), run.translate(x, samples=3, seed=6))


def test_cyclegan_least_squares_terms_are_the_papers_mean_squared_errors():
    from gankit.losses.adversarial import d_least_squares, g_least_squares
    from gankit.recipes.translation import _adversarial_scale

    logits = torch.tensor([0.2, 0.9, -0.3])
    assert float(_adversarial_scale("least_squares") * g_least_squares(logits)) == \
        pytest.approx(float(((logits - 1) ** 2).mean()))
    real, fake = torch.tensor([0.8, 1.1]), torch.tensor([0.1, -0.2])
    d_paper = 0.5 * (((real - 1) ** 2).mean() + (fake ** 2).mean())  # the reference code's D objective
    assert float(0.5 * _adversarial_scale("least_squares") * d_least_squares(real, fake)) == \
        pytest.approx(float(d_paper))
    assert _adversarial_scale("non_saturating") == 1.0
