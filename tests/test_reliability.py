"""Reliability: lossless resume for every recipe, SIGKILL at random moments, SIGTERM/SIGINT, a full disk, stale or
corrupt checkpoint files, NaN rollback with each remedy, and collapse warnings. The fault table in docs/reliability.md
quotes these tests."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

import gankit
import gankit.components  # noqa: F401  (fills the registries the tests are parametrized over)
from gankit.config import HealthConfig, load_config
from gankit.errors import GankitError
from gankit.registry import RECIPES
from gankit.train import Trainer, latest_checkpoint
from gankit.train import checkpoint as ckpt
from gankit.train.health import CollapseMonitor

TINY_MODEL = {"name": "mlp_gan", "g_hidden": [32, 32], "d_hidden": [32], "latent_dim": 8}


def write_config(path: Path, **train) -> Path:
    """A tiny digits config file; ``train`` overrides the train section."""
    section = {"batch_size": 16, "progress": False, "eval_every": 0, "log_every": 5, "sample_every": 1000,
               "checkpoint_every": 10, **train}
    path.write_text(yaml.safe_dump({"model": TINY_MODEL, "train": section}))
    return path


def final_tensors(run_dir: Path) -> dict[str, torch.Tensor]:
    return ckpt.load_checkpoint(latest_checkpoint(run_dir))[0]


def assert_same_state(a: Path, b: Path) -> None:
    ta, tb = final_tensors(a), final_tensors(b)
    assert set(ta) == set(tb)
    assert [k for k in ta if not torch.equal(ta[k], tb[k])] == []


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "gankit", *args]


# ---------------------------------------------------------------------------------------------------------------
# Lossless resume


# each recipe with a model it trains (a new recipe must add itself here: the test below checks)
RECIPE_MODELS = {"adversarial": [],
                 "autoencoding": ["model.name=vae", "model.hidden=[32]", "model.latent_dim=4"],
                 "regression": ["model.name=mlp_regressor", "model.hidden=[16]", "data.name=diabetes"],
                 "pix2pix": ["model.name=pix2pix", "data.name=test_mirrored_pairs", "model.width=4", "model.d_width=4",
                             "model.d_layers=1"],
                 "cyclegan": ["model.name=cyclegan", "data.name=test_mirrored_unpaired", "model.width=4",
                              "model.res_blocks=1", "model.d_width=4", "model.d_layers=1", "recipe.pool_size=4"],
                 "stylegan": ["model.name=stylegan", "data.size=16", "model.latent_dim=8", "model.w_dim=8",
                              "model.mapping_layers=2", "model.width=8", "model.min_width=4", "recipe.phase_steps=6",
                              "recipe.penalty_every=4", "train.ema=0.9"]}


def test_every_recipe_has_a_resume_case():
    assert set(RECIPE_MODELS) == set(RECIPES.names())


@pytest.mark.parametrize("recipe", sorted(RECIPE_MODELS))
def test_resume_is_bit_for_bit_for_every_recipe_with_evaluation_on(tmp_path, recipe):
    config = write_config(tmp_path / "c.yaml", eval_every=10, eval_samples=300, steps=30)
    model = RECIPE_MODELS[recipe]
    if model:  # replace the config's GAN section with the recipe's own model
        config.write_text(yaml.safe_dump({**yaml.safe_load(config.read_text()), "model": {}}))
    straight = gankit.train(config, overrides=[*model, f"recipe.name={recipe}"], out=tmp_path / "straight")
    split = gankit.train(config, overrides=[*model, f"recipe.name={recipe}", "train.steps=20"],
                         out=tmp_path / "split")
    gankit.train(None, overrides=["train.steps=30"], out=split, resume=True)
    assert_same_state(straight, split)
    assert {"rng.torch", "rng.noise", "sampler.perm"} <= set(final_tensors(split))
    if recipe == "cyclegan":  # its test data: unpaired, no evaluator for either domain, so nothing to score
        assert not (straight / "checkpoints" / "best.json").exists()
        return
    best = [json.loads((d / "checkpoints" / "best.json").read_text()) for d in (straight, split)]
    assert best[0] == best[1]


def test_resume_is_bit_for_bit_with_adaptive_augmentation(tmp_path):
    """ADA's p and the sums of its unfinished interval are in the checkpoint: a run stopped mid-interval (20 is no
    multiple of 3) resumes to the uninterrupted run's weights and p."""
    config = write_config(tmp_path / "c.yaml", steps=30)
    # target 0.1: this young D's r_t rises from about -0.4 to 0.25-0.6 over the second half, so p moves up several
    # times, with a margin that last-bit differences between CPUs cannot erase
    ada = ["recipe.augment=translation,color", "recipe.ada_target=0.1", "recipe.ada_interval=3", "recipe.ada_kimg=0.5"]
    straight = gankit.train(config, overrides=ada, out=tmp_path / "straight")
    split = gankit.train(config, overrides=[*ada, "train.steps=20"], out=tmp_path / "split")
    gankit.train(None, overrides=["train.steps=30"], out=split, resume=True)
    assert_same_state(straight, split)
    tensors = final_tensors(straight)
    moves = float(tensors["recipe.ada_p"]) / (16 * 3 / 500)  # p moves by 48 images' worth of 500 at a time
    assert 1 <= round(moves) <= 10 and moves == pytest.approx(round(moves), abs=1e-4)
    assert torch.equal(tensors["recipe.ada_sums"], torch.zeros(2))  # step 30 ended an interval


def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_it(tmp_path):
    config = write_config(tmp_path / "c.yaml", steps=10)
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(config.read_text())
    gankit.train(None, out=run_dir, resume=True)
    assert json.loads((run_dir / "checkpoints" / "latest.json").read_text())["step"] == 10


# ---------------------------------------------------------------------------------------------------------------
# Crash safety


def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_weights(tmp_path):
    """Five SIGKILLs at random moments (start-up, steps, checkpoint writes every 2 steps), each followed by
    `--resume`, end with the same bits as a run that was never interrupted.

    The first kill lands at a random time during start-up; the others wait until the run has checkpointed past
    the step the previous kill reached, then strike a random few milliseconds later, so they land mid-training
    however slow the machine is (a fixed sleep missed training altogether on a loaded CI machine)."""
    config = write_config(tmp_path / "c.yaml", steps=1200, checkpoint_every=2, keep_checkpoints=2, log_every=2)
    straight = gankit.train(config, out=tmp_path / "straight")
    run_dir = tmp_path / "killed"
    rng = random.Random(1234)
    kills = []
    for attempt in range(5):
        before = max(_reached_step(run_dir), 0)
        proc = subprocess.Popen(cli("train", str(config), "--out", str(run_dir), "--resume"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if attempt == 0:
            time.sleep(rng.uniform(0.2, 1.5))  # start-up: imports, config, run directory
        else:
            deadline = time.monotonic() + 120
            while _reached_step(run_dir) <= before and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.25))  # somewhere in the steps or checkpoint writes that follow
        proc.kill()
        proc.wait(timeout=30)
        kills.append(_reached_step(run_dir))
    done = subprocess.run(cli("train", str(config), "--out", str(run_dir), "--resume"), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert all(0 < step < 1200 for step in kills[1:]), kills  # the last four landed mid-training
    assert_same_state(straight, run_dir)
    assert not [p for p in (run_dir / "checkpoints").iterdir() if "tmp" in p.name]  # safetensors' .tmpXXXXXX too


def _reached_step(run_dir: Path) -> int:
    try:
        return json.loads((run_dir / "checkpoints" / "latest.json").read_text())["step"]
    except (OSError, ValueError):
        return -1


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_save_a_checkpoint_and_exit_with_a_message(tmp_path, sig, code):
    config = write_config(tmp_path / "c.yaml", steps=10**6, checkpoint_every=50)
    run_dir = tmp_path / "r"
    proc = subprocess.Popen(cli("train", str(config), "--out", str(run_dir)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while _reached_step(run_dir) < 50 and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err
    assert signal.Signals(sig).name in lines[0] and "checkpoint saved" in lines[0] and "--resume" in lines[0]
    step = _reached_step(run_dir)
    assert step > 50 and f"step {step}," in lines[0]
    gankit.train(None, overrides=[f"train.steps={step + 5}"], out=run_dir, resume=True)
    assert _reached_step(run_dir) == step + 5


def test_a_full_disk_keeps_the_previous_checkpoint_and_ends_with_a_clear_error(tmp_path, monkeypatch):
    config = write_config(tmp_path / "c.yaml", steps=10, checkpoint_every=5)
    run_dir = gankit.train(config, out=tmp_path / "r")
    before = latest_checkpoint(run_dir).read_bytes()

    def full_disk(path, data):
        Path(path).write_bytes(data[:100])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt, "_write_new", full_disk)
    with pytest.raises(GankitError, match="disk is full.*intact"):
        gankit.train(None, overrides=["train.steps=20"], out=run_dir, resume=True)
    monkeypatch.undo()
    assert latest_checkpoint(run_dir).name == "step_0000010.safetensors"
    assert latest_checkpoint(run_dir).read_bytes() == before
    assert not list((run_dir / "checkpoints").glob("*.tmp"))
    gankit.train(None, overrides=["train.steps=20"], out=run_dir, resume=True)  # and it goes on once freed
    assert _reached_step(run_dir) == 20


def test_stale_temporaries_and_a_corrupt_latest_checkpoint_are_survived(tmp_path, capsys):
    config = write_config(tmp_path / "c.yaml", steps=20, checkpoint_every=5, keep_checkpoints=5)
    run_dir = gankit.train(config, out=tmp_path / "r")
    folder = run_dir / "checkpoints"
    (folder / "step_0000025.safetensors.tmp").write_bytes(b"half a checkpoint")
    latest = folder / "step_0000020.safetensors"
    latest.write_bytes(latest.read_bytes()[:1000])  # truncated, as by a disk that lied about fsync
    gankit.train(None, overrides=["train.steps=25"], out=run_dir, resume=True)
    assert "skipping an unreadable checkpoint" in capsys.readouterr().err
    assert _reached_step(run_dir) == 25 and not list(folder.glob("*.tmp"))
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "d_loss" in r] == [5, 10, 15, 20, 25]  # 20 was redone from 15


def test_latest_json_cannot_point_outside_the_run(tmp_path):
    config = write_config(tmp_path / "c.yaml", steps=10, checkpoint_every=5)
    run_dir = gankit.train(config, out=tmp_path / "r")
    outside = tmp_path / "evil.safetensors"
    outside.write_bytes(latest_checkpoint(run_dir).read_bytes())
    (run_dir / "checkpoints" / "latest.json").write_text(json.dumps({"file": "../../evil.safetensors"}))
    assert latest_checkpoint(run_dir) == run_dir / "checkpoints" / "step_0000010.safetensors"


# ---------------------------------------------------------------------------------------------------------------
# Health: NaN rollback and collapse warnings


def _trainer_with_nan(tmp_path, overrides, at_step=23, times=1):
    """A trainer whose generator weights turn to NaN after step ``at_step`` (the first ``times`` times)."""
    cfg = load_config(write_config(tmp_path / "c.yaml", steps=40), overrides)
    trainer = Trainer(cfg, tmp_path / "r")
    step, fired = trainer.recipe.step, []

    def poisoned(*args, **kwargs):
        logs = step(*args, **kwargs)
        if trainer.step + 1 == at_step and len(fired) < times:
            fired.append(trainer.step + 1)
            with torch.no_grad():
                next(trainer.modules["generator"].parameters()).fill_(float("nan"))
        return logs

    trainer.recipe.step = poisoned
    return trainer


def _events(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "event" in r]


def test_nan_rolls_back_and_retries_with_a_lower_learning_rate(tmp_path):
    trainer = _trainer_with_nan(tmp_path, [])
    run_dir = trainer.fit()
    events = _events(run_dir)
    assert len(events) == 1 and events[0]["event"] == "rollback" and events[0]["step"] == 20
    assert events[0]["failed_step"] == 25 and events[0]["remedy"] == "lower_lr"
    tensors, meta = ckpt.load_checkpoint(latest_checkpoint(run_dir))
    assert meta["step"] == 40 and meta["health"]["retries"] == 1
    assert abs(meta["optim"]["generator"]["param_groups"][0]["lr"] - 1e-4) < 1e-12  # 2e-4 x 0.5
    assert all(torch.isfinite(t).all() for k, t in tensors.items() if t.is_floating_point())


def test_nan_with_the_skip_remedy_keeps_the_learning_rate(tmp_path):
    trainer = _trainer_with_nan(tmp_path, ["health.remedy=skip"])
    run_dir = trainer.fit()
    assert [e["remedy"] for e in _events(run_dir)] == ["skip"]
    meta = ckpt.load_checkpoint(latest_checkpoint(run_dir))[1]
    assert meta["step"] == 40 and abs(meta["optim"]["generator"]["param_groups"][0]["lr"] - 2e-4) < 1e-12


def test_persistent_nan_stops_with_a_report_after_the_retries(tmp_path):
    trainer = _trainer_with_nan(tmp_path, ["health.retries=2"], times=100)
    with pytest.raises(GankitError, match=r"stopped after 2 rollback\(s\).*step_0000020"):
        trainer.fit()
    events = _events(tmp_path / "r")
    assert [e["event"] for e in events] == ["rollback", "rollback", "stopped"]


def test_on_nonfinite_stop_stops_at_once(tmp_path):
    trainer = _trainer_with_nan(tmp_path, ["health.on_nonfinite=stop"])
    with pytest.raises(GankitError, match=r"stopped after 0 rollback"):
        trainer.fit()


def test_a_collapsed_generator_is_warned_about(tmp_path, capsys):
    cfg = load_config(write_config(tmp_path / "c.yaml", steps=10, sample_every=5),
                      ["optim.lr_g=1e-12", "health.warmup_steps=0"])  # armed from the start: the check itself
    trainer = Trainer(cfg, tmp_path / "r")
    with torch.no_grad():
        last = [m for m in trainer.modules["generator"].modules() if isinstance(m, torch.nn.Linear)][-1]
        last.weight.zero_()  # every z gives the same image
    trainer.fit()
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    warnings = [r for r in rows if "warning" in r]
    assert len(warnings) == 1 and "diversity" in warnings[0]["warning"] and warnings[0]["step"] == 5
    assert "may have collapsed" in capsys.readouterr().err


def test_discriminator_accuracy_pinned_at_100_percent_is_warned_once_per_episode():
    monitor = CollapseMonitor(HealthConfig(d_acc_patience=3), real_diversity=1.0)
    said = [monitor.observe_row({"d_acc": acc}) for acc in [1.0, 1.0, 1.0, 1.0, 0.7, 1.0, 1.0, 1.0]]
    assert [len(s) for s in said] == [0, 0, 1, 0, 0, 0, 0, 1]
    assert "accuracy" in said[2][0]
    quiet = CollapseMonitor(HealthConfig(collapse_warnings=False), 1.0)
    assert all(quiet.observe_row({"d_acc": 1.0}) == [] for _ in range(20))


class _Died(BaseException):
    """Stands for the process dying: nothing in gankit catches it."""


def test_dying_in_the_middle_of_a_checkpoint_write_loses_nothing(tmp_path, monkeypatch):
    config = write_config(tmp_path / "c.yaml", steps=30, checkpoint_every=5)
    straight = gankit.train(config, out=tmp_path / "straight")
    rename, calls = ckpt._fsync_and_rename, []

    def die_on_the_fourth(tmp, path):
        calls.append(path.name)
        if len(calls) == 4:  # the temporary file is written, the rename never happens
            raise _Died
        rename(tmp, path)

    monkeypatch.setattr(ckpt, "_fsync_and_rename", die_on_the_fourth)
    with pytest.raises(_Died):
        gankit.train(config, out=tmp_path / "r")
    monkeypatch.undo()
    assert calls[-1] == "step_0000015.safetensors" and list((tmp_path / "r" / "checkpoints").glob("*.tmp"))
    gankit.train(None, out=tmp_path / "r", resume=True)
    assert_same_state(straight, tmp_path / "r")


def test_a_new_learning_rate_on_resume_wins_and_a_mismatched_model_is_an_error(tmp_path):
    config = write_config(tmp_path / "c.yaml", steps=10, checkpoint_every=5)
    run_dir = gankit.train(config, out=tmp_path / "r")
    gankit.train(None, overrides=["train.steps=15", "optim.lr_g=5e-5"], out=run_dir, resume=True)
    meta = ckpt.load_checkpoint(latest_checkpoint(run_dir))[1]
    assert abs(meta["optim"]["generator"]["param_groups"][0]["lr"] - 5e-5) < 1e-15
    with pytest.raises(GankitError, match="does not match the model"):
        gankit.train(None, overrides=["train.steps=20", "model.g_hidden=[64, 64]"], out=run_dir, resume=True)


def test_a_half_written_log_line_does_not_stop_a_resume(tmp_path):
    config = write_config(tmp_path / "c.yaml", steps=10, checkpoint_every=5)
    run_dir = gankit.train(config, out=tmp_path / "r")
    with open(run_dir / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 11, "d_lo')  # killed mid-write
    gankit.train(None, overrides=["train.steps=15"], out=run_dir, resume=True)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [5, 10, 15]
