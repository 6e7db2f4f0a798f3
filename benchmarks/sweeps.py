"""Does ``gankit sweep`` find settings as good as the hand-tuned configs, in 15 minutes on this machine's CPU?

Prints one JSON object per suite. Each suite runs one sweep (``gankit.sweep``, Optuna's TPE sampler, the median
pruner, ``--workers`` trials at once with one CPU thread per run), reads its best setting back as ``best.yaml``
(what ``gankit sweep --show`` writes), then trains the shipped config and ``best.yaml`` side by side for each of
``--check-seeds`` seeds, two runs at a time with one thread each, as the sweep's trials ran, and scores both the way
the quality benchmark (gan_quality.py) does. So it answers: is the sweep's best at least as good as the shipped
config under the same budget, and does its config file train to that figure again (seed 0 is the sweep's own seed;
the others say whether the setting holds on seeds it was not chosen on)?

* ``grid``: ``toy2d_grid`` with its steps cut to --grid-steps (10,000 of 30,000, so that a sweep can try ~20
  settings), searching both learning rates, the generator's depth and width, and PacGAN's packing; the objective is
  the high-quality share of the training-time evaluation (maximised; the table also keeps the modes captured, since
  a setting can buy quality by dropping modes); scored on 2,500 samples with the published protocol.
* ``mnist``: ``dcgan_mnist`` with a wall-clock budget of --mnist-trial-minutes per run, evaluated every 250 steps on
  2,000 samples, searching both learning rates, Adam's beta1 and the batch size; FID minimised; the best checkpoint
  scored on 10,000 samples against the MNIST test split.

    python benchmarks/sweeps.py --suite all --mnist ../shared/data/mnist --out runs/bench-sweeps

Run it on an otherwise idle machine: the MNIST suite's budgets are wall-clock minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

import gankit
from gan_quality import machine  # same folder: the CPU and its flags, as in the other GAN benchmark

HERE = Path(__file__).resolve().parent
CONFIGS = HERE.parent / "configs"

GRID_SPACE = {
    "optim.lr_g": {"low": 2.0e-4, "high": 5.0e-3, "log": True},
    "optim.lr_d": {"low": 2.0e-4, "high": 5.0e-3, "log": True},
    "model.g_hidden": [[128, 128, 128], [128, 128, 128, 128, 128], [256, 256, 256]],
    "model.pack": [1, 2, 4],
}
MNIST_SPACE = {
    "optim.lr_g": {"low": 5.0e-5, "high": 2.0e-3, "log": True},
    "optim.lr_d": {"low": 5.0e-5, "high": 2.0e-3, "log": True},
    "optim.beta1": [0.0, 0.5],
    "train.batch_size": [32, 64, 128],
}


def run_sweep(name: str, config: str, space: dict, overrides: list[str], objective: str, maximize: bool,
              args, trial_minutes: float | None) -> dict:
    """One sweep of at most ``args.minutes`` minutes in all: trials start until ``minutes - trial budget``."""
    out = args.out / f"{name}-sweep"
    space_file = args.out / f"{name}-space.yaml"
    space_file.parent.mkdir(parents=True, exist_ok=True)
    space_file.write_text(yaml.safe_dump(space, sort_keys=False))
    started = time.monotonic()
    gankit.sweep(CONFIGS / f"{config}.yaml", space_file, trials=args.trials, overrides=overrides, out=out,
                 objective=objective, maximize=maximize, workers=args.workers, threads=1,
                 minutes=args.minutes - args.trial_cap, trial_minutes=trial_minutes)
    seconds = time.monotonic() - started
    report = gankit.show_sweep(out)
    return {"folder": str(out), "seconds": round(seconds, 1), "text": report.text,
            "best_config": str(out / "best.yaml")}


def train_pair(configs: dict[str, Path], folder: Path, seed: int, overrides: list[str]) -> dict[str, Path]:
    """Train each config (at most two) at once, one CPU thread each, as the sweep's trials ran."""
    procs, runs = [], {}
    for tag, config in configs.items():
        run = folder / f"{tag}_seed{seed}"
        cmd = [sys.executable, "-m", "gankit", "train", str(config), "--out", str(run), "--overwrite", "--quiet",
               "--threads", "1", "--set", f"train.seed={seed}", *[a for o in overrides for a in ("--set", o)]]
        log = open(folder / f"{tag}_seed{seed}.log", "w")  # noqa: SIM115 (closed below)
        procs.append((subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log, run))
        runs[tag] = run
    for proc, log, run in procs:
        if proc.wait() != 0:
            raise SystemExit(f"training {run} failed: see {log.name}")
        log.close()
    return runs


def compare(name: str, sweep: dict, shipped: str, overrides: list[str], score, keys: tuple[str, ...],
            args) -> dict:
    folder = args.out / f"{name}-check"
    folder.mkdir(parents=True, exist_ok=True)
    configs = {"shipped": CONFIGS / f"{shipped}.yaml", "best": Path(sweep["best_config"])}
    rows = {tag: [] for tag in configs}
    for seed in range(args.check_seeds):
        runs = train_pair(configs, folder, seed, overrides)
        for tag, run in runs.items():
            rows[tag].append({"seed": seed, "steps": gankit.load(run).step, **score(run, seed)})
    summary = {}
    for tag, runs in rows.items():
        summary[tag] = {"runs": runs}
        for key in keys:
            values = [r[key] for r in runs]
            summary[tag][key] = {"mean": statistics.mean(values), "std": statistics.pstdev(values),
                                 "min": min(values), "max": max(values)}
    return summary


def suite_grid(args) -> dict:
    overrides = [f"train.steps={args.grid_steps}", f"train.eval_every={args.grid_steps // 4}",
                 f"train.checkpoint_every={args.grid_steps // 4}", f"train.sample_every={args.grid_steps // 2}",
                 "train.eval_samples=2500"]
    sweep = run_sweep("grid", "toy2d_grid", GRID_SPACE, overrides, "hq_fraction", True, args, None)

    def score(run: Path, seed: int) -> dict:
        result = gankit.evaluate(run, n=2500, seed=seed)
        return {"modes": result["modes"], "hq_percent": 100 * result["hq_fraction"]}

    check = compare("grid", sweep, "toy2d_grid", overrides, score, ("modes", "hq_percent"), args)
    return {"sweep": sweep, "check": check, "overrides": overrides, "space": GRID_SPACE,
            "protocol": "2,500 samples; high quality within 3 std of the nearest mean; 25 modes"}


def suite_mnist(args) -> dict:
    data = f"data.root={args.mnist}"
    minutes = args.mnist_trial_minutes
    overrides = [data, f"train.max_minutes={minutes}", "train.eval_every=250", "train.eval_samples=2000"]
    sweep = run_sweep("mnist", "dcgan_mnist", MNIST_SPACE, [data, "train.eval_every=250", "train.eval_samples=2000"],
                      "fid", False, args, minutes)

    def score(run: Path, seed: int) -> dict:
        best = gankit.evaluate(run / "checkpoints" / "best.safetensors", overrides=[data], n=10_000, seed=0)
        return {"fid": best["fid"], "recall": best["recall"], "precision": best["precision"]}

    check = compare("mnist", sweep, "dcgan_mnist", overrides, score, ("fid", "recall", "precision"), args)
    return {"sweep": sweep, "check": check, "overrides": overrides, "space": MNIST_SPACE,
            "protocol": "best checkpoint (training-time FID on 2,000 samples), scored on 10,000 samples against "
                        "the MNIST test split with gankit's evaluator"}


SUITES = {"grid": suite_grid, "mnist": suite_mnist}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=[*SUITES, "all"], default="all")
    parser.add_argument("--mnist", default="../shared/data/mnist")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-sweeps"))
    parser.add_argument("--minutes", type=float, default=15.0, help="each sweep's whole budget")
    parser.add_argument("--trial-cap", type=float, default=3.0,
                        help="the longest a trial may take: no trial starts in a sweep's last this many minutes")
    parser.add_argument("--trials", type=int, default=200, help="at most this many trials (the clock ends sooner)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--grid-steps", type=int, default=10_000)
    parser.add_argument("--mnist-trial-minutes", type=float, default=2.0)
    parser.add_argument("--check-seeds", type=int, default=3)
    args = parser.parse_args()
    for name in SUITES if args.suite == "all" else [args.suite]:
        with contextlib.redirect_stdout(sys.stderr):
            result = SUITES[name](args)
        print(json.dumps({"suite": name, "machine": machine(), **result}), flush=True)


if __name__ == "__main__":
    main()
