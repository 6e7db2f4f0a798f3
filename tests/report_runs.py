"""The runs the run-list, plot and report tests look at, made once per session: a finished GAN run with
evaluations and preview grids, one stopped by its time budget, one killed with SIGKILL (crashed), and a pix2pix
translation run (no training-time evaluation)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gankit

GAN = ["model.g_hidden=[32, 32]", "model.d_hidden=[32]", "model.latent_dim=8", "train.batch_size=32",
       "train.progress=false", "train.log_every=10", "train.sample_every=20", "train.eval_every=40",
       "train.eval_samples=300", "train.checkpoint_every=40"]
PIX2PIX = ["data.name=test_mirrored_pairs", "model.name=pix2pix", "model.width=8", "model.d_width=8",
           "model.d_layers=1", "data.size=16", "train.progress=false", "train.eval_every=0", "train.batch_size=8",
           "train.log_every=2", "train.sample_every=4", "train.steps=8"]


def make_runs(root: Path) -> dict[str, Path]:
    """The four runs under ``root``, by status."""
    runs = {"finished": gankit.train(None, overrides=[*GAN, "train.steps=120"], out=root / "finished"),
            "stopped": gankit.train(None, overrides=[*GAN, "train.steps=100000", "train.max_minutes=0.0001"],
                                    out=root / "stopped"),
            "translation": gankit.train(None, overrides=PIX2PIX, out=root / "translation")}
    runs["crashed"] = killed_run(root / "crashed")
    return runs


def killed_run(out: Path) -> Path:
    """A run killed with SIGKILL once it has logged a few rows and evaluated once (no end record)."""
    args = [sys.executable, "-m", "gankit", "train", "--threads", "1", "--out", str(out)]
    for item in [*GAN, "train.steps=100000", "train.checkpoint_every=100000"]:
        args += ["--set", item]
    env = {**os.environ, "PYTHONPATH": str(Path(gankit.__file__).parents[1])}
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    metrics = out / "metrics.jsonl"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if metrics.is_file() and '"eval/fid"' in metrics.read_text(errors="replace"):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the run to kill never evaluated")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return out
