"""Learning-rate schedules: the factor's shape, what the trainer applies, and resume/rollback keeping the shape."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import gankit
from gankit.config import OptimConfig
from gankit.errors import ConfigError
from gankit.train import checkpoint as ckpt
from gankit.train import latest_checkpoint
from gankit.train.schedule import apply_schedule, init_base_lr, lr_factor, scale_base_lr, set_base_lr


def test_linear_factor_holds_then_falls_to_zero():
    cfg = OptimConfig(schedule="linear", decay_start=0.5)
    factors = [lr_factor(cfg, s, 100) for s in range(100)]
    assert factors[:50] == [1.0] * 50
    assert abs(factors[75] - 0.5) < 1e-12 and abs(factors[99] - 0.02) < 1e-12
    assert all(a > b for a, b in zip(factors[50:], factors[51:]))  # strictly falling after the start
    assert lr_factor(OptimConfig(), 99, 100) == 1.0
    assert abs(lr_factor(OptimConfig(schedule="linear", decay_start=0.0), 0, 10) - 1.0) < 1e-12


def test_bad_schedule_settings_are_config_errors():
    with pytest.raises(ConfigError, match="optim.decay_start"):
        OptimConfig(schedule="linear", decay_start=1.0)
    with pytest.raises(ConfigError, match="constant"):
        gankit.load_config(None, overrides=["optim.schedule=exponential"])
    with pytest.raises(ConfigError, match="optim.final_factor"):
        OptimConfig(schedule="cosine", final_factor=1.5)


def test_cosine_factor_falls_along_a_half_cosine_to_the_final_share():
    cfg = OptimConfig(schedule="cosine", decay_start=0.0, final_factor=0.25)
    factors = [lr_factor(cfg, s, 100) for s in range(101)]
    assert abs(factors[0] - 1.0) < 1e-12 and abs(factors[100] - 0.25) < 1e-12
    assert abs(factors[50] - 0.625) < 1e-12  # half way down the cosine: the mean of start and end
    # slow at both ends, fastest in the middle (a straight line would fall 0.0075 per step everywhere)
    assert factors[0] - factors[1] < 0.001 and 0.011 < factors[50] - factors[51] < 0.013
    assert all(a > b for a, b in zip(factors, factors[1:]))
    linear = OptimConfig(schedule="linear", decay_start=0.0, final_factor=0.25)
    assert abs(lr_factor(linear, 50, 100) - 0.625) < 1e-12 and abs(lr_factor(linear, 100, 100) - 0.25) < 1e-12
    held = OptimConfig(schedule="cosine", decay_start=0.2, final_factor=0.25)  # holds, then falls over the rest
    assert lr_factor(held, 0, 100) == 1.0 and lr_factor(held, 20, 100) == 1.0
    assert abs(lr_factor(held, 60, 100) - 0.625) < 1e-12  # halfway through the fall: half the way down
    assert lr_factor(OptimConfig(schedule="linear", decay_start=0.0), 100, 100) == 0.0  # CycleGAN's: down to 0


def test_base_lr_helpers():
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    init_base_lr(opt)
    apply_schedule(opt, 0.5)
    assert abs(opt.param_groups[0]["lr"] - 0.05) < 1e-12
    scale_base_lr(opt, 0.5)  # a rollback halves the rate the schedule works from
    apply_schedule(opt, 1.0)
    assert abs(opt.param_groups[0]["lr"] - 0.05) < 1e-12
    set_base_lr(opt, 0.2)
    apply_schedule(opt, 0.25)
    assert abs(opt.param_groups[0]["lr"] - 0.05) < 1e-12


def test_trainer_applies_the_schedule_and_resume_keeps_it(tmp_path, tiny_overrides):
    base = tiny_overrides + ["optim.schedule=linear", "optim.decay_start=0.5", "optim.lr_g=1e-3", "optim.lr_d=2e-3",
                             "train.log_every=5", "train.checkpoint_every=10", "train.keep_checkpoints=10",
                             "train.steps=40"]
    straight = gankit.train(None, overrides=base, out=tmp_path / "straight")
    rows = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    lr = {r["step"]: r["lr/generator"] for r in rows}
    # the row at step s shows the rate of the update s-1 -> s: 1e-3 until step 20, then (40 - (s-1)) / 20 x 1e-3
    assert abs(lr[20] - 1e-3) < 1e-12 and abs(lr[40] - 1e-3 / 20) < 1e-12
    assert abs(lr[30] - 1e-3 * 11 / 20) < 1e-12
    assert abs(rows[-1]["lr/discriminator"] - 2e-3 / 20) < 1e-12
    # resume from the step-20 checkpoint (as after a crash there) gives the same final state
    split = tmp_path / "split"
    shutil.copytree(straight, split)
    for p in (split / "checkpoints").glob("step_*.safetensors"):
        if int(p.stem.split("_")[1]) > 20:
            p.unlink()
    (split / "checkpoints" / "latest.json").write_text(json.dumps({"step": 20, "file": "step_0000020.safetensors"}))
    gankit.train(None, out=split, resume=True)
    a, _ = ckpt.load_checkpoint(latest_checkpoint(straight))
    b, meta = ckpt.load_checkpoint(latest_checkpoint(split))
    assert meta["step"] == 40
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
