"""Data-parallel training under torchrun (2 CPU processes, gloo): 2 ranks x batch B/2 make the update 1 process
makes with batch B, with and without batch norm (synchronised), for GAN and VAE steps, and a run resumes across a
change in the number of processes."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

import gankit
from gankit.train import checkpoint as ckpt
from gankit.train import latest_checkpoint

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")

COMMON = ["train.progress=false", "train.eval_every=0", "train.batch_size=16", "train.log_every=2",
          "train.checkpoint_every=1000", "train.sample_every=1000"]
# the digits MLP GAN without batch norm, with every random draw a step makes: noise, labels-free latents, DiffAugment
# and WGAN-GP's interpolation weights (each drawn for the global batch and split between the ranks)
MLP = ["model.g_hidden=[32, 32]", "model.d_hidden=[32]", "model.latent_dim=8", "model.batch_norm=false",
       "recipe.loss=hinge", "recipe.penalty=gp", "recipe.augment=translation,cutout,color"]
# ADA on top: r_t summed over the ranks before p moves (every 2 D updates, by 32 images of 200), from 0.5 (this
# young D is unsure of the reals, r_t < 0.6: p falls)
ADA = ["recipe.ada_target=0.6", "recipe.ada_interval=2", "recipe.ada_kimg=0.2", "recipe.augment_p=0.5"]
DCGAN = ["model.name=dcgan", "model.latent_dim=8", "model.g_width=8", "model.d_width=8"]  # batch norm in G and D
VAE = ["model.name=vae", "model.hidden=[32]", "model.latent_dim=4", "recipe.name=autoencoding"]


def torchrun(*args: str, nproc: int = 2) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def state(run: Path) -> dict[str, torch.Tensor]:
    return ckpt.load_checkpoint(latest_checkpoint(run))[0]


def relative_errors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], prefix: str) -> dict[str, float]:
    return {k: float((a[k] - b[k]).norm() / a[k].norm().clamp_min(1e-12))
            for k in a if k.startswith(prefix) and a[k].is_floating_point() and a[k].numel()}


def assert_same_training(one: Path, two: Path, steps: int) -> None:
    """The same weights, optimizer moments (the averaged gradients) and logged losses, up to float rounding."""
    a, b = state(one), state(two)
    assert set(a) == set(b)
    assert int(json.loads((two / "checkpoints" / "latest.json").read_text())["step"]) == steps
    grads = relative_errors(a, b, "optim.")  # Adam's moments: the gradients, averaged over the ranks
    assert max(grads.values()) < 1e-3, grads
    # Adam moves each weight by about lr per step whatever the gradient's size, so a gradient within rounding of 0
    # can move a weight either way: no weight may differ by lr (2e-4), and all of them together by 2% at most
    weights = relative_errors(a, b, "model.")
    assert max(weights.values()) < 2e-2, weights
    assert max(float((a[k] - b[k]).abs().max()) for k in weights) < 2e-4
    for k in ("sampler.perm", "sampler.pos", "rng.noise"):  # the shared data order and noise stream
        assert torch.equal(a[k], b[k]), k
    # the logged losses (averaged over the ranks) of every row that covers the same steps in both (a run that
    # stopped and resumed has one row more, where it stopped, and the row after covers fewer steps)
    windows = [{(prev["step"], r["step"]): r for prev, r in zip([{"step": 0}] + rows, rows)}
               for rows in ([json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
                            for run in (one, two))]
    shared = set(windows[0]) & set(windows[1])
    assert (steps - 2, steps) in shared
    for window in shared:
        for key in ("d_loss", "g_loss", "loss"):
            if key in windows[0][window]:
                assert windows[1][window][key] == pytest.approx(windows[0][window][key], rel=1e-4, abs=1e-5), window


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """One torchrun launch of the CLI and one of a worker that trains the other runs in the same process group;
    the single-process references are trained in this process."""
    root = tmp_path_factory.mktemp("ddp")
    steps = ["train.steps=6"]
    torchrun("-m", "gankit", "train", "--out", str(root / "mlp2"), *[a for o in COMMON + MLP + steps
                                                                     for a in ("--set", o)])
    jobs = [{"overrides": COMMON + DCGAN + steps + ["train.sync_bn=true"], "out": str(root / "dcgan2")},
            {"overrides": COMMON + DCGAN + steps, "out": str(root / "dcgan2_local_bn")},
            {"overrides": COMMON + VAE + steps, "out": str(root / "vae2")},
            {"overrides": COMMON + MLP + ["train.steps=3"], "out": str(root / "mlp_resumed")},
            {"overrides": COMMON + MLP + ADA + steps, "out": str(root / "mlp_ada2")}]
    (root / "jobs.json").write_text(json.dumps(jobs))
    torchrun(str(Path(__file__).with_name("ddp_worker.py")), str(root / "jobs.json"))
    for name, model in (("mlp1", MLP), ("dcgan1", DCGAN), ("vae1", VAE), ("mlp_ada1", MLP + ADA)):
        gankit.train(None, overrides=COMMON + model + steps, out=root / name)
    # the run that 2 processes took to step 3 goes on in 1 process to step 6
    gankit.train(None, overrides=["train.steps=6"], out=root / "mlp_resumed", resume=True)
    return root


def test_two_ranks_with_half_batches_make_the_one_process_update_of_a_gan_step(runs):
    assert_same_training(runs / "mlp1", runs / "mlp2", 6)


def test_synchronised_batch_norm_makes_two_ranks_compute_the_global_batch(runs):
    assert_same_training(runs / "dcgan1", runs / "dcgan2", 6)
    # with each rank's own batch statistics (the default), the update is not the same: the test can fail
    local = relative_errors(state(runs / "dcgan1"), state(runs / "dcgan2_local_bn"), "model.")
    assert max(local.values()) > 1e-2, local


def test_two_ranks_make_the_one_process_update_of_a_vae_step(runs):
    assert_same_training(runs / "vae1", runs / "vae2", 6)


def test_a_run_saved_by_two_processes_resumes_in_one(runs):
    assert_same_training(runs / "mlp1", runs / "mlp_resumed", 6)


def test_two_ranks_steer_adas_probability_as_one_process_does(runs):
    """Each rank sees half the reals; their signs are added over the ranks, so p moves as for the whole batch."""
    assert_same_training(runs / "mlp_ada1", runs / "mlp_ada2", 6)
    p1, p2 = (float(state(runs / name)["recipe.ada_p"]) for name in ("mlp_ada1", "mlp_ada2"))
    moves = (0.5 - p1) / 0.16
    assert p1 == p2 and round(moves) in (1, 2, 3) and moves == pytest.approx(round(moves), abs=1e-5)


def _files(run: Path) -> list[str]:
    """The files of ``run``, a TensorBoard event file's name (time.host.pid.counter) cut to its kind."""
    names = (p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file())
    return sorted(re.sub(r"events\.out\.tfevents\..*", "events.out.tfevents", name) for name in names)


def test_only_rank_zero_writes_the_run_directory(runs):
    files = _files(runs / "mlp2")
    assert files == _files(runs / "mlp1")
    assert files.count("tensorboard/events.out.tfevents") == (importlib.util.find_spec("tensorboard") is not None)
    assert ckpt.load_checkpoint(latest_checkpoint(runs / "mlp2"))[1]["world_size"] == 2


def test_a_batch_that_does_not_split_between_the_ranks_is_refused(tmp_path):
    with pytest.raises(AssertionError, match="divisible"):
        torchrun("-m", "gankit", "train", "--out", str(tmp_path / "r"), "--set", "train.batch_size=15",
                 *[a for o in ["train.progress=false", "train.eval_every=0", "train.steps=1"] for a in ("--set", o)])


def _launch(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                             "-m", "gankit", "train", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_sigterm_to_torchrun_stops_every_rank_at_one_step_with_a_checkpoint_that_resumes(tmp_path):
    import signal
    import time

    run = tmp_path / "r"
    overrides = [*COMMON, *MLP, "train.steps=1000000", "train.log_every=5"]
    proc = _launch("--out", str(run), *[a for o in overrides for a in ("--set", o)])
    deadline = time.monotonic() + 120
    while not (run / "metrics.jsonl").is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert err.count("SIGTERM received: stopped at step") == 1, err[-3000:]  # rank 0 reports for both
    step = json.loads((run / "checkpoints" / "latest.json").read_text())["step"]
    assert step > 0 and f"stopped at step {step}," in err
    gankit.train(None, overrides=[f"train.steps={step + 2}"], out=run, resume=True)  # resumes in one process
    assert json.loads((run / "checkpoints" / "latest.json").read_text())["step"] == step + 2


def test_an_error_on_rank_zero_alone_stops_every_rank_with_its_message(tmp_path):
    # only rank 0 builds the evaluation, which refuses too few samples to fit FID's covariance
    overrides = ["train.progress=false", "train.steps=5", "train.eval_every=5", "train.eval_samples=3"]
    proc = _launch("--out", str(tmp_path / "r"), *[a for o in overrides for a in ("--set", o)])
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "train.eval_samples=3" in err and "rank 0 failed" in err, err[-3000:]
