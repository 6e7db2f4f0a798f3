"""Quality of the GAN families under a wall-clock budget, on this machine's CPU: prints one JSON object per suite.

Suites (each trains from a config in configs/ with a fixed seed, then scores with gankit's evaluators):

* ``mnist``: a config (default dcgan_mnist) trained for --minutes (10), its best checkpoint (by training-time FID on
  2,000 samples) scored with 10,000 samples against the MNIST test split, next to the real-data floor (10,000 real
  training images against the same split).
* ``cgan``: cgan_mnist for --minutes (10); the evaluator's accuracy on 1,000 samples drawn for each label.
* ``grid``: toy2d_grid for --grid-steps (20,000, about 2 minutes here) per seed, seeds 0-4; the published 2-D protocol on 2,500 samples
  (modes captured of 25, share of high-quality samples), mean and spread over the seeds.
* ``stacked``: stacked_mnist for --stacked-minutes (15); modes covered of 1,000 and KL to uniform on 10,000 samples.

    python benchmarks/gan_quality.py --suite all --mnist ../shared/data/mnist --out runs/bench
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

import gankit
from gankit.metrics.evaluator import load_evaluator

HERE = Path(__file__).resolve().parent
CONFIGS = HERE.parent / "configs"
KEEP = ("fid", "kid", "precision", "recall", "density", "coverage", "classifier_score", "modes", "mode_kl",
        "hq_fraction")


def train(config: str, out: Path, minutes: float | None, overrides: list[str]) -> tuple[Path, dict]:
    """Train ``config`` for ``minutes`` of wall-clock time (None: for the config's own train.steps); returns the run
    and what the budget bought."""
    started = time.monotonic()
    budget = [] if minutes is None else [f"train.max_minutes={minutes}", "train.steps=100000000"]
    run = gankit.train(CONFIGS / f"{config}.yaml", out=out, overwrite=True,
                       overrides=[*budget, "train.progress=false", *overrides])
    step = gankit.load(run).step
    return run, {"config": config, "minutes": minutes, "steps": step, "seconds": round(time.monotonic() - started, 1)}


def scores(result: dict) -> dict:
    return {k: result[k] for k in KEEP if k in result}


def suite_mnist(args) -> dict:
    run, info = train(args.config, args.out / args.config, args.minutes, [f"data.root={args.mnist}"])
    data = [f"data.root={args.mnist}"]
    best = gankit.evaluate(run / "checkpoints" / "best.safetensors", overrides=data, n=10_000, seed=0)
    last = gankit.evaluate(run, overrides=data, n=10_000, seed=0)
    best_step = json.loads((run / "checkpoints" / "best.json").read_text())["step"]
    return {**info, "best_step": best_step, "best": scores(best), "last": scores(last),
            "real_data_floor": _real_floor(args.mnist), "samples": 10_000, "reference": "mnist test (10,000)"}


def _real_floor(mnist: str) -> dict:
    from gankit.config import DataConfig
    from gankit.data import load_dataset
    from gankit.metrics.evaluate import Evaluation

    train_x = load_dataset(DataConfig(name="mnist", root=mnist), "train").x
    pick = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(0))[:10_000]
    return scores(Evaluation(DataConfig(name="mnist", root=mnist)).score(train_x[pick]))


def suite_cgan(args) -> dict:
    run, info = train("cgan_mnist", args.out / "cgan_mnist", args.minutes, [f"data.root={args.mnist}"])
    loaded = gankit.load(run / "checkpoints" / "best.safetensors")
    evaluator = load_evaluator("mnist")
    per_label = {}
    for label in range(10):
        x = loaded.sample(1000, seed=label, labels=torch.full((1000,), label, dtype=torch.long))
        _, probs = evaluator(x)
        per_label[label] = float((probs.argmax(1) == label).mean())
    overall = gankit.evaluate(run, overrides=[f"data.root={args.mnist}"], n=10_000, seed=0)
    return {**info, "label_accuracy": per_label, "mean_label_accuracy": statistics.mean(per_label.values()),
            "samples_per_label": 1000, "unconditional_scores": scores(overall)}


def suite_grid(args) -> dict:
    runs = []
    for seed in range(5):
        # a fixed step count rather than a clock: the config's linear learning-rate decay needs to know the end
        run, info = train("toy2d_grid", args.out / f"toy2d_grid_seed{seed}", None,
                          [f"train.seed={seed}", f"train.steps={args.grid_steps}"])
        result = gankit.evaluate(run, n=2500, seed=seed)
        runs.append({**info, "seed": seed, "modes": result["modes"], "hq_fraction": result["hq_fraction"],
                     "mode_kl": result["mode_kl"]})
    modes, hq = [r["modes"] for r in runs], [r["hq_fraction"] for r in runs]
    return {"runs": runs, "modes_mean": statistics.mean(modes), "modes_std": statistics.pstdev(modes),
            "hq_percent_mean": 100 * statistics.mean(hq), "hq_percent_std": 100 * statistics.pstdev(hq),
            "num_modes": 25, "protocol": "2,500 samples; high quality within 3 std of the nearest mean"}


def suite_stacked(args) -> dict:
    run, info = train("stacked_mnist", args.out / "stacked_mnist", args.stacked_minutes, [f"data.root={args.mnist}"])
    result = gankit.evaluate(run, overrides=[f"data.root={args.mnist}"], n=10_000, seed=0)
    return {**info, **scores(result), "num_modes": 1000, "samples": 10_000}


SUITES = {"mnist": suite_mnist, "cgan": suite_cgan, "grid": suite_grid, "stacked": suite_stacked}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=[*SUITES, "all"], default="all")
    parser.add_argument("--mnist", default="../shared/data/mnist")
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    parser.add_argument("--config", default="dcgan_mnist", help="config of the mnist suite")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--grid-steps", type=int, default=20_000)
    parser.add_argument("--stacked-minutes", type=float, default=15.0)
    args = parser.parse_args()
    machine = {"cpu_threads": torch.get_num_threads(), "cores": os.cpu_count(), "torch": torch.__version__,
               "python": platform.python_version(), "gankit": gankit.__version__}
    for name in SUITES if args.suite == "all" else [args.suite]:
        print(json.dumps({"suite": name, "machine": machine, **SUITES[name](args)}), flush=True)


if __name__ == "__main__":
    main()
