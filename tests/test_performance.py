"""The trainer's speed settings: the fused Adam every recipe builds, and bf16 autocast with fp32 master weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import gankit
from gankit.config import OptimConfig, from_dict, load_config
from gankit.errors import ConfigError
from gankit.models import build_models
from gankit.recipes.optim import adam
from gankit.train import checkpoint as ckpt
from gankit.train import latest_checkpoint
from gankit.train.precision import autocast_factory

QUIET = ["train.progress=false", "train.eval_every=0"]


def test_fused_adam_makes_the_for_loop_update():
    g = torch.Generator().manual_seed(0)
    params = [torch.randn(64, 32, generator=g), torch.randn(32, generator=g)]
    cfg = OptimConfig(beta1=0.5, beta2=0.999, eps=1e-8)
    fused_params = [torch.nn.Parameter(p.clone()) for p in params]
    loop_params = [torch.nn.Parameter(p.clone()) for p in params]
    fused = adam(fused_params, 1e-2, cfg)
    loop = torch.optim.Adam(loop_params, lr=1e-2, betas=(0.5, 0.999), eps=1e-8, foreach=False)
    assert fused.defaults["fused"] and not loop.defaults["fused"]
    for _ in range(20):
        grads = [torch.randn(p.shape, generator=g) for p in params]
        for ps, opt in ((fused_params, fused), (loop_params, loop)):
            for p, grad in zip(ps, grads):
                p.grad = grad.clone()
            opt.step()
    moved = max(float((a.detach() - p).abs().max()) for a, p in zip(loop_params, params))
    assert moved > 0.05  # the parameters did move
    assert max(float((a - b).detach().abs().max()) for a, b in zip(fused_params, loop_params)) < 1e-6


def test_fused_adam_falls_back_where_it_cannot_fuse():
    assert adam([torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))], 1e-3, OptimConfig()).defaults["fused"]
    on_meta = adam([torch.nn.Parameter(torch.zeros(3, device="meta"))], 1e-3, OptimConfig())
    assert not on_meta.defaults["fused"]  # another device: PyTorch's default implementation


def test_precision_choices_are_checked():
    with pytest.raises(ConfigError, match="train.precision='fp16' is not valid; valid choices: fp32, bf16"):
        load_config(None, ["train.precision=fp16"])
    assert autocast_factory(torch.device("cpu"), "fp32")().__class__.__name__ == "nullcontext"
    with autocast_factory(torch.device("cpu"), "bf16")():
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16


@pytest.mark.parametrize("name, shape", [("mlp_gan", (1, 8, 8)), ("dcgan", (1, 16, 16))])
def test_bf16_gradients_agree_with_fp32_and_losses_stay_fp32(name, shape):
    """One discriminator loss, its gradient in fp32 and under bf16 autocast from the same weights and batch."""
    from gankit.recipes.adversarial import AdversarialConfig, AdversarialRecipe

    cfg = from_dict({"model": {"name": name, "latent_dim": 16}}).model
    modules = build_models(cfg, shape, 0, seed=0)
    recipe = AdversarialRecipe(AdversarialConfig(), modules, OptimConfig())
    g = torch.Generator().manual_seed(1)
    real = torch.rand(32, *shape, generator=g) * 2 - 1
    fake = modules["generator"](torch.randn(32, 16, generator=g)).detach()

    def grads(context):
        D = modules["discriminator"]
        D.zero_grad(set_to_none=True)
        with context():
            real_logits, fake_logits = recipe._judge(real, None)[0], recipe._judge(fake, None)[0]
            loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        assert real_logits.dtype == torch.float32 and loss.dtype == torch.float32
        loss.backward()
        return torch.cat([p.grad.flatten() for p in D.parameters()]), float(loss.detach())

    full, loss32 = grads(autocast_factory(torch.device("cpu"), "fp32"))
    half, loss16 = grads(autocast_factory(torch.device("cpu"), "bf16"))
    assert not torch.equal(full, half)  # bf16 really ran
    assert abs(loss16 - loss32) < 0.02 * abs(loss32)
    assert F.cosine_similarity(full, half, dim=0) > 0.99


def test_a_bf16_run_keeps_fp32_weights_and_resumes_exactly(tmp_path):
    overrides = [*QUIET, "train.precision=bf16", "train.checkpoint_every=10", "model.g_hidden=[32]",
                 "model.d_hidden=[32]"]
    straight = gankit.train(None, overrides=[*overrides, "train.steps=20"], out=tmp_path / "a")
    split = gankit.train(None, overrides=[*overrides, "train.steps=10"], out=tmp_path / "b")
    gankit.train(None, overrides=["train.steps=20"], out=split, resume=True)
    a, meta = ckpt.load_checkpoint(latest_checkpoint(straight))
    b, _ = ckpt.load_checkpoint(latest_checkpoint(split))
    assert meta["config"]["train"]["precision"] == "bf16"
    assert all(t.dtype == torch.float32 for k, t in a.items() if k.startswith(("model.", "optim.")) and
               t.is_floating_point())
    assert [k for k in a if not torch.equal(a[k], b[k])] == []


@pytest.mark.parametrize("schedule, d_steps", [("keras", 1), ("full", 3)])
def test_a_bf16_step_with_several_updates_follows_the_fp32_step(schedule, d_steps):
    """Three steps of several updates each under bf16 move the parameters the way the fp32 steps do."""
    from gankit.data.base import ArrayData
    from gankit.data.sampler import BatchSampler
    from gankit.recipes.adversarial import AdversarialConfig, AdversarialRecipe

    def moved(precision):
        cfg = from_dict({"model": {"name": "mlp_gan", "latent_dim": 16, "g_hidden": [64], "d_hidden": [64]}}).model
        modules = build_models(cfg, (1, 8, 8), 0, seed=0)
        before = {k: torch.cat([p.detach().flatten().clone() for p in m.parameters()]) for k, m in modules.items()}
        recipe = AdversarialRecipe(AdversarialConfig(schedule=schedule, d_steps=d_steps), modules,
                                   OptimConfig(lr_g=1e-3, lr_d=1e-3))
        x = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(2)) * 2 - 1
        batches, noise = BatchSampler(ArrayData(x), seed=0), torch.Generator().manual_seed(3)
        for _ in range(3):
            with autocast_factory(torch.device("cpu"), precision)():
                recipe.step(batches, noise, 32)
        return {k: torch.cat([p.detach().flatten() for p in m.parameters()]) - before[k] for k, m in modules.items()}

    full, half = moved("fp32"), moved("bf16")
    for name in ("generator", "discriminator"):
        assert not torch.equal(full[name], half[name])
        assert F.cosine_similarity(full[name], half[name], dim=0) > 0.9, name


def test_an_update_inside_the_bf16_context_is_seen_by_the_next_forward():
    """autocast's cache of bf16 weight copies would hand the second forward the weights from before the update."""
    torch.manual_seed(0)
    layer, x = torch.nn.Linear(8, 8), torch.randn(4, 8)
    opt = torch.optim.Adam(layer.parameters(), lr=1.0)
    with autocast_factory(torch.device("cpu"), "bf16")():
        layer(x).float().sum().backward()
        opt.step()
        inside = layer(x).float()
    with autocast_factory(torch.device("cpu"), "bf16")():
        fresh = layer(x).float()
    assert torch.equal(inside, fresh)  # with the cache on, they differed by 11 here


DCGAN_TINY = [*QUIET, "model.name=dcgan", "model.latent_dim=8", "model.g_width=8", "model.d_width=8",
              "train.batch_size=16", "train.steps=4"]


def _weights(run) -> dict[str, torch.Tensor]:
    return {k: v for k, v in ckpt.load_checkpoint(latest_checkpoint(run))[0].items() if k.startswith("model.")}


def test_channels_last_changes_the_layout_not_the_training(tmp_path):
    from gankit.train import Trainer

    cfg = load_config(None, [*DCGAN_TINY, "train.channels_last=true"])
    trainer = Trainer(cfg, tmp_path / "t")
    convs = [m.weight for m in trainer.modules["generator"].modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert any(not w.is_contiguous() for w in convs)  # NHWC, not NCHW (a 1-channel kernel is both)
    nhwc = gankit.train(None, overrides=[*DCGAN_TINY, "train.channels_last=true"], out=tmp_path / "nhwc")
    nchw = gankit.train(None, overrides=DCGAN_TINY, out=tmp_path / "nchw")
    a, b = _weights(nchw), _weights(nhwc)
    assert set(a) == set(b)
    moved = max(float((a[k] - v).abs().max()) for k, v in _weights_at_start(tmp_path / "nchw").items())
    assert moved > 1e-4
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-4  # other kernels, other rounding
    assert gankit.load(nhwc).sample(4, seed=0).shape == (4, 1, 8, 8)  # a checkpoint like any other


def _weights_at_start(run) -> dict[str, torch.Tensor]:
    path = run / "checkpoints" / "step_0000000.safetensors"
    return {k: v for k, v in ckpt.load_checkpoint(path)[0].items() if k.startswith("model.")}


def test_compile_trains_like_eager_with_the_same_checkpoint_keys(tmp_path):
    pytest.importorskip("torch._dynamo")
    from gankit.train.precision import _compiler_available

    if not _compiler_available():
        pytest.skip("no C++ compiler for torch.compile here")
    tiny = [*QUIET, "model.g_hidden=[16]", "model.d_hidden=[16]", "model.latent_dim=4", "train.batch_size=8",
            "train.steps=3"]
    from torch._dynamo.utils import counters

    graphs = counters["stats"]["unique_graphs"]
    compiled = gankit.train(None, overrides=[*tiny, "train.compile=true"], out=tmp_path / "compiled")
    assert counters["stats"]["unique_graphs"] > graphs  # dynamo did capture the step's methods
    eager = gankit.train(None, overrides=tiny, out=tmp_path / "eager")
    a, b = _weights(eager), _weights(compiled)
    assert set(a) == set(b)  # no _orig_mod. prefixes: checkpoints load anywhere
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-4


def test_compile_falls_back_to_eager_where_it_is_not_available(tmp_path, monkeypatch, capsys):
    from gankit.train import precision

    monkeypatch.setattr(precision, "_compiler_available", lambda: False)
    tiny = [*QUIET, "model.g_hidden=[16]", "model.d_hidden=[16]", "model.latent_dim=4", "train.batch_size=8",
            "train.steps=2", "train.compile=true"]
    run = gankit.train(None, overrides=tiny, out=tmp_path / "r")
    assert "training runs uncompiled" in capsys.readouterr().err
    assert json_step(run) == 2


def json_step(run) -> int:
    import json

    return json.loads((run / "checkpoints" / "latest.json").read_text())["step"]


def test_compile_leaves_a_penalised_discriminator_uncompiled(tmp_path, capsys):
    from gankit.train import precision

    if not precision._compiler_available():
        pytest.skip("no C++ compiler for torch.compile here")
    tiny = [*QUIET, "model.g_hidden=[16]", "model.d_hidden=[16]", "model.latent_dim=4", "train.batch_size=8",
            "train.steps=2", "train.compile=true", "recipe.loss=wasserstein", "recipe.penalty=gp"]
    run = gankit.train(None, overrides=tiny, out=tmp_path / "r")  # double backward through D: would raise
    assert "discriminator runs uncompiled" in capsys.readouterr().err
    assert json_step(run) == 2


@pytest.mark.parametrize("supported", [True, False])
def test_bf16_on_a_cpu_without_bf16_support_warns_before_training(tmp_path, monkeypatch, capsys, supported):
    """On an AVX2-only CPU bf16 products run through generic code (tens of times slower than fp32): say so."""
    from gankit.train import precision

    monkeypatch.setattr(precision, "_cpu_bf16_supported", lambda: supported)
    tiny = [*QUIET, "model.g_hidden=[16]", "model.d_hidden=[16]", "model.latent_dim=4", "train.batch_size=8",
            "train.steps=2"]
    gankit.train(None, overrides=[*tiny, "train.precision=bf16"], out=tmp_path / "bf16")
    err = capsys.readouterr().err
    assert ("warning: train.precision=bf16" in err and "use train.precision=fp32" in err) == (not supported)
    gankit.train(None, overrides=tiny, out=tmp_path / "fp32")  # fp32 never warns
    assert "train.precision" not in capsys.readouterr().err
