"""DiffAugment, latent-space tools, the EMA generator and class-conditional sampling end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import gankit
from gankit.api import sample_to_file
from gankit.cli import main
from gankit.errors import GankitError
from gankit.images import to_uint8
from gankit.latent import (interpolation_grid, lerp, parse_expression, slerp, traversal_grid, truncated_normal)
from gankit.models import build_models
from gankit.nn.diffaugment import AdaptiveProbability, diff_augment, parse_policy
from gankit.train import checkpoint as ckpt
from gankit.train import latest_checkpoint
from gankit.train.ema import EMA

from test_models_recipe import tiny_model_cfg

# ---------------------------------------------------------------------------------------------------------------
# DiffAugment


def test_diffaugment_shapes_randomness_and_gradients():
    x = torch.rand(8, 3, 16, 16, requires_grad=True)
    policy = parse_policy("translation,cutout,color")
    a = diff_augment(x, policy, torch.Generator().manual_seed(0))
    b = diff_augment(x, policy, torch.Generator().manual_seed(0))
    c = diff_augment(x, policy, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # differentiable: G learns through it
    with pytest.raises(ValueError, match="flip"):
        parse_policy("translation,flip")


def test_translation_moves_whole_pixels_and_cutout_blanks_a_square():
    x = torch.zeros(200, 1, 16, 16)
    x[:, :, 8, 8] = 1.0
    moved = diff_augment(x, ("translation",), torch.Generator().manual_seed(0))
    assert torch.allclose(moved.sum(dim=(1, 2, 3)), torch.ones(200))  # the dot moves (2 px at most), never lost
    pos = moved[:, 0].flatten(1).argmax(1)
    assert ((pos // 16 - 8).abs() <= 2).all() and ((pos % 16 - 8).abs() <= 2).all()
    ones = torch.ones(200, 1, 16, 16)
    cut = diff_augment(ones, ("cutout",), torch.Generator().manual_seed(0))
    zeros = (cut == 0).flatten(1).sum(1).float()
    assert zeros.max() == 64 and zeros.min() >= 16  # an 8x8 square, clipped at the border at worst to 4x4
    assert abs(zeros.mean().item() - 64 * 0.75) < 12


def test_augmentation_with_a_probability_transforms_that_share_of_the_images():
    x = torch.rand(4000, 1, 8, 8, requires_grad=True)
    same = diff_augment(x, ("color",), torch.Generator().manual_seed(0), p=0.0)
    assert torch.equal(same, x)  # p = 0: no image touched
    for p in (0.25, torch.tensor(0.7)):
        out = diff_augment(x, ("color",), torch.Generator().manual_seed(0), p=p)
        touched = (out != x).flatten(1).any(1).float().mean().item()  # colour moves every pixel it is applied to
        assert abs(touched - float(p)) < 0.03, (p, touched)
    both = diff_augment(x, ("color", "cutout"), torch.Generator().manual_seed(1), p=0.5)
    cut = (both == 0).flatten(1).any(1).float().mean().item()  # drawn per transform: cutout on about half
    assert 0.45 < cut < 0.55
    both.sum().backward()
    assert x.grad is not None and (x.grad != 0).flatten(1).any(1).all()  # every image, augmented or not


def test_ada_moves_p_by_the_sign_of_d_on_reals_once_per_interval():
    ada = AdaptiveProbability(target=0.6, interval=4, kimg=1.0, start=0.0, device=torch.device("cpu"))
    sure = torch.tensor([2.0, 1.0, 0.5, 3.0])  # r_t = 1 > 0.6: D is sure of the reals, p rises
    for update in range(1, 4):
        ada.observe(sure, update, images=16)
        assert float(ada.p) == 0.0  # only every 4th update moves p
    ada.observe(sure, 4, images=16)
    assert float(ada.p) == pytest.approx(16 * 4 / 1000, abs=1e-7)  # 64 images of the 1,000 that take p to 1
    unsure = torch.tensor([1.0, -1.0, 1.0, -1.0])  # r_t = 0 < 0.6: p falls, not below 0
    for update in range(5, 13):
        ada.observe(unsure, update, images=16)
    assert float(ada.p) == 0.0
    mixed = torch.tensor([1.0, 1.0, 1.0, -1.0])  # r_t = 0.5 over the interval, though one update alone had 1
    ada.observe(sure, 13, 16)
    for update in range(14, 17):
        ada.observe(torch.tensor([1.0, 1.0, -1.0, -1.0]) if update < 16 else mixed, update, 16)
    assert float(ada.p) == 0.0  # (4 + 0 + 0 + 2) / 16 = 0.375 < 0.6
    for update in range(17, 17 + 4 * 20):
        ada.observe(sure, update, 16)
    assert float(ada.p) == 1.0  # clamped
    state = {k: v.clone() for k, v in ada.state().items()}
    other = AdaptiveProbability(0.6, 4, 1.0, 0.0, torch.device("cpu"))
    other.load_state(state)
    assert float(other.p) == 1.0 and torch.equal(other.sums, ada.sums)


# ---------------------------------------------------------------------------------------------------------------
# Latent tools


def test_lerp_and_slerp():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    t = torch.linspace(0, 1, 5)
    assert torch.allclose(lerp(a, b, t)[[0, -1]], torch.stack([a, b]))
    s = slerp(a, b, t)
    assert torch.allclose(s[[0, -1]], torch.stack([a, b]), atol=1e-6)
    assert torch.allclose(s.norm(dim=1), torch.ones(5), atol=1e-6)  # stays on the sphere
    assert lerp(a, b, t)[2].norm() < 0.75  # a straight line cuts inside it
    assert torch.allclose(slerp(a, 2 * a, t), lerp(a, 2 * a, t))  # parallel codes fall back to lerp


def test_truncated_normal_respects_the_threshold():
    z = truncated_normal(2000, 8, 0.5, generator=torch.Generator().manual_seed(0))
    assert z.shape == (2000, 8) and z.abs().max() <= 0.5 and z.std() > 0.2
    with pytest.raises(GankitError):
        truncated_normal(2, 2, 0.0)


def test_traversal_rows_change_one_dimension():
    G = build_models(tiny_model_cfg("mlp_gan"), (1, 8, 8), 0, seed=0)["generator"]
    grid = traversal_grid(G, dims=[0, 3], steps=5, generator=torch.Generator().manual_seed(0))
    assert grid.shape == (10, 1, 8, 8)
    assert not torch.equal(grid[0], grid[4]) and not torch.equal(grid[5], grid[9])
    with pytest.raises(GankitError, match="dimension 9"):
        traversal_grid(G, dims=[9])
    walk = interpolation_grid(G, rows=2, steps=4, generator=torch.Generator().manual_seed(0))
    assert walk.shape == (8, 1, 8, 8)


def test_arithmetic_expressions_parse():
    assert parse_expression("7 thick - 7 thin + 3 thin") == [(1, 7, "thick"), (-1, 7, "thin"), (1, 3, "thin")]
    assert parse_expression("4") == [(1, 4, None)]
    with pytest.raises(GankitError, match="cannot read"):
        parse_expression("7 bold")


# ---------------------------------------------------------------------------------------------------------------
# EMA and conditional runs end to end


def test_ema_follows_the_formula():
    G = torch.nn.Linear(2, 2)
    ema = EMA(G, decay=0.9)
    before = ema.module.weight.detach().clone()
    with torch.no_grad():
        G.weight.add_(1.0)
    ema.update(G, step=1000)
    assert torch.allclose(ema.module.weight, 0.9 * before + 0.1 * G.weight)
    assert abs(ema.beta(0) - 0.1) < 1e-12 and abs(ema.beta(10) - 11 / 20) < 1e-12  # warm-up
    assert not any(p.requires_grad for p in ema.module.parameters())


CGAN = ["model.name=dcgan", "model.g_width=8", "model.d_width=8", "model.latent_dim=8",
        "model.conditioning=projection", "train.batch_size=16", "train.progress=false", "train.eval_every=0",
        "train.ema=0.9", "train.checkpoint_every=10", "train.sample_every=10"]


def test_conditional_run_with_ema_samples_by_label_and_resumes_exactly(tmp_path, capsys):
    straight = gankit.train(None, overrides=CGAN + ["train.steps=20"], out=tmp_path / "a")
    split = gankit.train(None, overrides=CGAN + ["train.steps=10"], out=tmp_path / "b")
    gankit.train(None, overrides=["train.steps=20"], out=split, resume=True)
    ta = ckpt.load_checkpoint(latest_checkpoint(straight))[0]
    tb = ckpt.load_checkpoint(latest_checkpoint(split))[0]
    assert any(k.startswith("model.generator_ema.") for k in ta)
    assert [k for k in ta if not torch.equal(ta[k], tb[k])] == []
    run = gankit.load(straight)
    assert run.generator is run.modules["generator_ema"]
    assert main(["sample", str(straight), "-n", "6", "--label", "3", "-o", str(tmp_path / "three.npz")]) == 0
    assert main(["sample", str(straight), "-n", "4", "--by-class", "-o", str(tmp_path / "rows.png")]) == 0
    assert "wrote 40 samples" in capsys.readouterr().out
    assert main(["sample", str(straight), "--label", "12", "-o", str(tmp_path / "x.png")]) == 2
    assert "0..9" in capsys.readouterr().err
    from PIL import Image

    grid = Image.open(straight / "samples" / "step_0000020.png")
    assert grid.size[0] == grid.size[1]  # 10 x 10: one row per class


def test_no_ema_samples_and_scores_the_trained_weights_and_says_so(tmp_path, capsys):
    run = gankit.train(None, overrides=["train.steps=10", "train.ema=0.9", "train.progress=false",
                                        "train.eval_every=0", "train.batch_size=16"], out=tmp_path / "r")
    averaged, trained = gankit.load(run), gankit.load(run, ema=False)
    assert averaged.averaged and not trained.averaged and "generator_ema" not in trained.modules
    assert trained.generator is trained.modules["generator"]
    own = trained.generator.state_dict()
    assert all(torch.equal(own[k], v) for k, v in averaged.modules["generator"].state_dict().items())
    assert not all(torch.equal(own[k], v) for k, v in averaged.modules["generator_ema"].state_dict().items())

    def scores(*flags):
        assert main(["eval", str(run), "-n", "300", "--seed", "0", "--json", *flags]) == 0
        return json.loads(capsys.readouterr().out)

    capsys.readouterr()  # training's header
    ema, raw = scores(), scores("--no-ema")
    assert ema["provenance"]["weights"] == "ema" and raw["provenance"]["weights"] == "trained"
    assert ema["fid"] != raw["fid"] and ema["fid"] > 0 and raw["fid"] > 0
    assert json.loads((run / "eval" / "step_0000010-n300-raw.json").read_text())["fid"] == raw["fid"]
    assert json.loads((run / "eval" / "step_0000010-n300.json").read_text())["fid"] == ema["fid"]  # not overwritten
    assert main(["eval", str(run), "-n", "300", "--no-ema"]) == 0
    assert "weights: as trained (no moving average)" in capsys.readouterr().out
    assert main(["eval", str(run), "-n", "300"]) == 0
    assert "weights: the moving average of the trained ones" in capsys.readouterr().out

    for name, flags in (("ema", []), ("raw", ["--no-ema"])):
        assert main(["sample", str(run), "-n", "8", "--seed", "0", "-o", str(tmp_path / f"{name}.npz"), *flags]) == 0
    drawn = {name: np.load(tmp_path / f"{name}.npz")["arr_0"] for name in ("ema", "raw")}
    assert not np.array_equal(drawn["ema"], drawn["raw"])
    assert np.array_equal(drawn["raw"], to_uint8(trained.sample(8, seed=0)))
    assert np.array_equal(drawn["ema"], to_uint8(averaged.sample(8, seed=0)))

    folder = tmp_path / "folder"
    gankit.export(run, folder, format="hub")
    assert "-raw" not in (folder / "README.md").read_text()  # the card shows the scores of the weights it ships
    with pytest.raises(GankitError, match="averaged \\(EMA\\) weights alone"):
        gankit.load(folder, ema=False)
    with pytest.raises(GankitError, match="pass the path"):
        sample_to_file(averaged, 4, tmp_path / "x.png", ema=False)


def test_latent_cli_end_to_end(tmp_path, capsys):
    run = gankit.train(None, overrides=["model.g_hidden=[16]", "model.d_hidden=[16]", "model.latent_dim=4",
                                        "train.steps=5", "train.progress=false", "train.eval_every=0",
                                        "train.batch_size=16"], out=tmp_path / "r")
    for verb in (["interpolate", "--rows", "2"], ["traverse", "--dims", "0,1"],
                 ["arithmetic", "1 - 1 + 1", "-n", "300"]):
        code = main(["latent", verb[0], str(run), *verb[1:], "-o", str(tmp_path / f"{verb[0]}.png")])
        err = capsys.readouterr().err
        assert code == 0 or (verb[0] == "arithmetic" and "look like a 1" in err), err
    assert (tmp_path / "interpolate.png").is_file() and (tmp_path / "traverse.png").is_file()
