"""The trainer and run directory: contents, lossless resume (bit for bit), budgets, checkpoints, loading."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import gankit
from gankit.errors import GankitError
from gankit.train import checkpoint as ckpt
from gankit.train import latest_checkpoint

SCHEDULE = ["train.log_every=5", "train.sample_every=10", "train.checkpoint_every=10"]


def run(tmp_path, name, overrides, **kw):
    return gankit.train(None, overrides=overrides, out=tmp_path / name, **kw)


def final_state(run_dir):
    tensors, meta = ckpt.load_checkpoint(latest_checkpoint(run_dir))
    return tensors, meta


def test_run_directory_holds_everything(tmp_path, tiny_overrides):
    run_dir = run(tmp_path, "r", tiny_overrides + SCHEDULE + ["train.steps=20"])
    assert (run_dir / "config.yaml").is_file()
    assert gankit.load_config(run_dir / "config.yaml").train.steps == 20
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [5, 10, 15, 20]
    assert {"d_loss", "g_loss", "d_real", "d_fake", "steps_per_s"} <= set(rows[0])
    assert sorted(p.name for p in (run_dir / "samples").glob("*.png")) == ["step_0000010.png", "step_0000020.png"]
    assert json.loads((run_dir / "checkpoints" / "latest.json").read_text())["step"] == 20
    tensors, meta = final_state(run_dir)
    assert meta["step"] == 20 and meta["data"]["sample_shape"] == [1, 8, 8]
    assert {"rng.noise", "sampler.perm", "sampler.rng"} <= set(tensors)
    assert any(k.startswith("optim.generator.") for k in tensors)


@pytest.mark.parametrize("schedule", ["full", "keras"])
def test_resume_is_bit_for_bit(tmp_path, tiny_overrides, schedule):
    base = tiny_overrides + SCHEDULE + [f"recipe.schedule={schedule}", "recipe.d_steps=2"]
    straight = run(tmp_path, "straight", base + ["train.steps=40"])
    split = run(tmp_path, "split", base + ["train.steps=20"])
    gankit.train(None, overrides=["train.steps=40"], out=split, resume=True)
    a, meta_a = final_state(straight)
    b, meta_b = final_state(split)
    assert meta_a["step"] == meta_b["step"] == 40
    assert set(a) == set(b)
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert different == []
    assert meta_a["optim"] == meta_b["optim"]
    steps = [json.loads(line)["step"] for line in (split / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(5, 41, 5))


def test_resume_drops_log_rows_after_the_checkpoint(tmp_path, tiny_overrides):
    run_dir = run(tmp_path, "r", tiny_overrides + ["train.steps=20", "train.log_every=5",
                                                    "train.checkpoint_every=10", "train.keep_checkpoints=5"])
    (run_dir / "checkpoints" / "step_0000020.safetensors").unlink()  # as if killed between step 10 and 20
    (run_dir / "checkpoints" / "latest.json").unlink()
    gankit.train(None, overrides=["train.steps=30"], out=run_dir, resume=True)
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == [5, 10, 15, 20, 25, 30]


def test_existing_run_is_never_overwritten_unless_asked(tmp_path, tiny_overrides):
    args = tiny_overrides + ["train.steps=2"]
    run_dir = run(tmp_path, "r", args)
    with pytest.raises(GankitError, match="--overwrite"):
        run(tmp_path, "r", args)
    run(tmp_path, "r", args + ["train.seed=1"], overwrite=True)
    assert gankit.load_config(run_dir / "config.yaml").train.seed == 1


def test_resume_errors_are_clear(tmp_path, tiny_overrides):
    with pytest.raises(GankitError, match="nothing to resume"):
        gankit.train(None, out=tmp_path / "nothing", resume=True)
    run_dir = run(tmp_path, "r", tiny_overrides + ["train.steps=4"])
    before = latest_checkpoint(run_dir).read_bytes()
    gankit.train(None, out=run_dir, resume=True)  # a finished run: a note, nothing retrained
    assert latest_checkpoint(run_dir).read_bytes() == before


def test_max_minutes_stops_cleanly_with_a_checkpoint(tmp_path, tiny_overrides):
    run_dir = run(tmp_path, "r", tiny_overrides + ["train.steps=100000", "train.max_minutes=0.0005"])
    _, meta = final_state(run_dir)
    assert 1 <= meta["step"] < 100000
    assert (run_dir / "samples" / f"step_{meta['step']:07d}.png").is_file()


def test_old_checkpoints_are_pruned(tmp_path, tiny_overrides):
    run_dir = run(tmp_path, "r", tiny_overrides + ["train.steps=50", "train.checkpoint_every=10",
                                                    "train.keep_checkpoints=2"])
    names = sorted(p.name for p in (run_dir / "checkpoints").glob("*.safetensors"))
    assert names == ["step_0000040.safetensors", "step_0000050.safetensors"]


def test_load_and_sample_from_run_or_checkpoint_alone(tmp_path, tiny_overrides):
    run_dir = run(tmp_path, "r", tiny_overrides + ["train.steps=5"])
    loaded = gankit.load(run_dir)
    assert loaded.step == 5 and not loaded.generator.training
    a = loaded.sample(7, seed=3)
    assert a.shape == (7, 1, 8, 8) and a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, loaded.sample(7, seed=3)) and not torch.equal(a, loaded.sample(7, seed=4))
    alone = tmp_path / "elsewhere" / "model.safetensors"
    alone.parent.mkdir()
    shutil.copy(latest_checkpoint(run_dir), alone)
    shutil.rmtree(run_dir)
    assert torch.equal(gankit.load(alone).sample(7, seed=3), a)
    assert gankit.load(alone).sample(2500, seed=0, batch_size=1000).shape == (2500, 1, 8, 8)


def test_checkpoint_loading_runs_no_code_and_rejects_foreign_files(tmp_path):
    bogus = tmp_path / "x.safetensors"
    bogus.write_bytes(b"\x80\x04not a safetensors file")
    with pytest.raises(GankitError, match="pickle"):
        gankit.load(bogus)
    bogus.write_bytes(b"\x00" * 7)
    with pytest.raises(GankitError, match="cannot read checkpoint"):
        gankit.load(bogus)


def test_same_seed_same_run(tmp_path, tiny_overrides):
    a = run(tmp_path, "a", tiny_overrides + ["train.steps=6"])
    b = run(tmp_path, "b", tiny_overrides + ["train.steps=6"])
    c = run(tmp_path, "c", tiny_overrides + ["train.steps=6", "train.seed=1"])
    ta, tb, tc = final_state(a)[0], final_state(b)[0], final_state(c)[0]
    key = "model.generator.net.0.weight"
    assert torch.equal(ta[key], tb[key]) and not torch.equal(ta[key], tc[key])


def test_toy2d_run_writes_scatter_plots(tmp_path):
    run_dir = run(tmp_path, "toy", ["data.name=toy2d", "data.num_samples=2000", "model.name=mlp_toy",
                                    "train.steps=10", "train.progress=false", "train.sample_every=10"])
    from PIL import Image

    img = Image.open(run_dir / "samples" / "step_0000010.png")
    assert img.size == (512, 512) and img.mode == "RGB"
    points = gankit.load(run_dir).sample(50, seed=0)
    assert points.shape == (50, 2)
    gankit.save_samples(points, tmp_path / "points.png")
    assert Image.open(tmp_path / "points.png").size == (512, 512)
    gankit.save_samples(points, tmp_path / "points.npz")
    import numpy as np

    saved = np.load(tmp_path / "points.npz")["arr_0"]
    assert saved.shape == (50, 2) and np.allclose(saved, points.numpy())


def test_training_leaves_the_callers_global_rng_as_it_found_it(tmp_path, tiny_overrides):
    """The run's dropout masks draw from torch's global generator, but from the run's own stream: a caller's
    global RNG comes out of training, resuming and sampling as it went in."""
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    overrides = [*tiny_overrides, "train.steps=4", "train.checkpoint_every=2"]
    run = gankit.train(None, overrides=overrides, out=tmp_path / "r")
    gankit.train(None, overrides=["train.steps=6"], out=run, resume=True)
    assert torch.equal(torch.get_rng_state(), before)
    gankit.load(run).sample(4, seed=0)
    assert torch.equal(torch.get_rng_state(), before)
