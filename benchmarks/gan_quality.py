"""Quality of the GAN families under a wall-clock budget, on this machine's CPU: prints one JSON object per suite.

Suites (each trains from a config in configs/ for each of --seeds seeds, then scores with gankit's evaluators; the
figures that vary are reported per seed and as mean and spread over the seeds):

* ``mnist``: a config (--config, default dcgan_mnist) trained for --minutes (10; or the config's own train.steps if
  they run out first, so that a decaying schedule ends where the config says), its best checkpoint (by training-time
  FID on 2,000 samples) scored with 10,000 samples against the MNIST test split, next to the real-data floor (10,000
  real training images against the same split).
* ``cgan``: --cgan-config (cgan_mnist) for --minutes; the evaluator's accuracy on 1,000 samples drawn for each
  label (a data.pad border cropped off first, as gankit eval crops it), and the scores of 10,000 samples with
  uniform labels (intra-class FID where the evaluation reports it). --reuse scores the runs already in --out again.
* ``grid`` / ``ring``: --grid-config (toy2d_grid) / --ring-config (toy2d_ring) for their own train.steps per seed,
  seeds 0-4; the published 2-D protocol on 2,500 samples (modes captured, share of high-quality samples) and the
  seconds each run took, next to the real-data floor: 2,500 draws from the mixture itself for each seed (an exact
  sampler puts 1 - exp(-9/2) = 98.9% of its samples within 3 std of a mode, not 100%).
* ``stacked``: --stacked-config (stacked_mnist) for --stacked-minutes (15); modes covered of 1,000 and KL to uniform
  on --stacked-samples samples (26,000, the protocol of Srivastava et al. 2017 and Lin et al. 2018), next to the
  real-data floor: as many real triplets through the same evaluator. The floor is not 0: a histogram of N draws
  from 1,000 equal modes is off uniform by KL ~ 999 / 2N (0.019 at 26,000, 0.05 at 10,000), and the evaluator's
  misread digits add to it.
* ``ablation``: R3GAN's ablation point on the small cases: the relativistic pairing loss with R1 alone against R1 +
  R2 on the 2-D grid (5 seeds) and on 8x8 digits (``r3gan_digits``, --seeds seeds): final scores, the largest
  gradient norms seen (the logged R1 and R2), the largest gap between D's real and fake outputs, and the health
  monitor's rollbacks (a non-finite loss), so that a diverging run says when and how.

    python benchmarks/gan_quality.py --suite all --mnist ../shared/data/mnist --out runs/bench --seeds 3
    python benchmarks/gan_quality.py --suite mnist --config r3gan_mnist --seeds 3
    python benchmarks/gan_quality.py --suite mnist --config rpgan_mnist --seeds 2      # R3GAN's loss, DCGAN's net
    python benchmarks/gan_quality.py --suite cgan --cgan-config rpgan_cgan_mnist
    python benchmarks/gan_quality.py --suite cgan --cgan-config stylegan_cgan_mnist --seeds 3
    python benchmarks/gan_quality.py --suite stacked --stacked-config rpgan_stacked_mnist --stacked-minutes 30 --seeds 2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

import gankit
from gankit.config import DataConfig
from gankit.data import load_dataset
from gankit.data.toy2d import mixture_means, sample_mixture
from gankit.metrics.evaluate import Evaluation
from gankit.metrics.evaluator import load_evaluator
from gankit.metrics.mixture import mixture_scores

HERE = Path(__file__).resolve().parent
CONFIGS = HERE.parent / "configs"
KEEP = ("fid", "kid", "precision", "recall", "density", "coverage", "classifier_score", "modes", "mode_kl",
        "hq_fraction", "vendi", "intra_fid")


def train(config: str, out: Path, minutes: float | None, overrides: list[str], reuse: bool = False
          ) -> tuple[Path, dict]:
    """Train ``config`` for at most ``minutes`` of wall-clock time (None: no clock) and at most its own train.steps;
    returns the run and what the budget bought. ``reuse``: a finished run already at ``out`` is scored again
    instead (its seconds are then not known)."""
    if reuse and (out / "checkpoints" / "best.safetensors").exists():
        return out, {"config": config, "minutes": minutes, "steps": gankit.load(out).step, "seconds": None,
                     "reused": True}
    started = time.monotonic()
    budget = [] if minutes is None else [f"train.max_minutes={minutes}"]
    run = gankit.train(CONFIGS / f"{config}.yaml", out=out, overwrite=True,
                       overrides=[*budget, "train.progress=false", *overrides])
    step = gankit.load(run).step
    return run, {"config": config, "minutes": minutes, "steps": step, "seconds": round(time.monotonic() - started, 1)}


def scores(result: dict) -> dict:
    return {k: result[k] for k in KEEP if k in result}


def over_seeds(runs: list[dict], keys: tuple[str, ...], where: str | None = None) -> dict:
    """Mean and population spread over the runs of each numeric key (read from ``run[where]`` when given)."""
    summary = {}
    for key in keys:
        values = [(r[where] if where else r).get(key) for r in runs]
        if values and all(isinstance(v, (int, float)) for v in values):
            summary[key] = {"mean": statistics.mean(values), "std": statistics.pstdev(values),
                            "min": min(values), "max": max(values)}
    return summary


def suite_mnist(args) -> dict:
    data, runs = [f"data.root={args.mnist}"], []
    for seed in range(args.seeds):
        run, info = train(args.config, args.out / f"{args.config}_seed{seed}", args.minutes,
                          [*data, f"train.seed={seed}"])
        best = gankit.evaluate(run / "checkpoints" / "best.safetensors", overrides=data, n=10_000, seed=0)
        last = gankit.evaluate(run, overrides=data, n=10_000, seed=0)
        best_step = json.loads((run / "checkpoints" / "best.json").read_text())["step"]
        runs.append({**info, "seed": seed, "best_step": best_step, "best": scores(best), "last": scores(last)})
    return {"runs": runs, "best_over_seeds": over_seeds(runs, KEEP, "best"),
            "last_over_seeds": over_seeds(runs, KEEP, "last"), "real_data_floor": _real_floor(args.mnist),
            "samples": 10_000, "reference": "mnist test (10,000)"}


def _real_floor(mnist: str) -> dict:
    train_x = load_dataset(DataConfig(name="mnist", root=mnist), "train").x
    pick = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(0))[:10_000]
    return scores(Evaluation(DataConfig(name="mnist", root=mnist)).score(train_x[pick]))


def suite_cgan(args) -> dict:
    data, evaluator, runs = [f"data.root={args.mnist}"], load_evaluator("mnist"), []
    for seed in range(args.seeds):
        run, info = train(args.cgan_config, args.out / f"{args.cgan_config}_seed{seed}", args.minutes,
                          [*data, f"train.seed={seed}"], reuse=args.reuse)
        loaded = gankit.load(run / "checkpoints" / "best.safetensors")
        pad, per_label = loaded.config.data.pad, {}
        for label in range(10):
            x = loaded.sample(1000, seed=label, labels=torch.full((1000,), label, dtype=torch.long))
            if pad:  # the border data.pad added is cropped off, as gankit eval crops it
                x = x[..., pad:-pad, pad:-pad]
            _, probs = evaluator(x)
            per_label[label] = float((probs.argmax(1) == label).mean())
        overall = gankit.evaluate(run / "checkpoints" / "best.safetensors", overrides=data, n=10_000, seed=0)
        runs.append({**info, "seed": seed, "label_accuracy": per_label,
                     "mean_label_accuracy": statistics.mean(per_label.values()), "scores": scores(overall)})
    return {"runs": runs, "over_seeds": {**over_seeds(runs, ("mean_label_accuracy",)),
                                         **over_seeds(runs, KEEP, "scores")}, "samples_per_label": 1000}


def _mixture(config: str, args, seeds: int, extra: list[str] = (), tag: str = "") -> dict:
    runs, floor = [], []
    for seed in range(seeds):
        run, info = train(config, args.out / f"{config}{tag}_seed{seed}", None, [f"train.seed={seed}", *extra])
        result = gankit.evaluate(run, n=2500, seed=seed)
        runs.append({**info, "seed": seed, "modes": result["modes"], "hq_fraction": result["hq_fraction"],
                     "mode_kl": result["mode_kl"], **_health(run)})
        floor.append(_mixture_floor(gankit.load(run).config.data.mixture, 2500, seed))
    modes, hq = [r["modes"] for r in runs], [r["hq_fraction"] for r in runs]
    return {"runs": runs, "modes_mean": statistics.mean(modes), "modes_std": statistics.pstdev(modes),
            "modes_min": min(modes), "hq_percent_mean": 100 * statistics.mean(hq),
            "hq_percent_std": 100 * statistics.pstdev(hq), "hq_percent_min": 100 * min(hq),
            "seconds_max": max(r["seconds"] for r in runs), "real_data_floor": floor,
            "protocol": "2,500 samples; high quality within 3 std of the nearest mean"}


def _mixture_floor(mixture: str, n: int, seed: int) -> dict:
    """``n`` draws from the mixture itself, scored as a generator's samples are. In 2-D, 1 - exp(-9/2) = 98.9% of
    a Gaussian lies within 3 std of its mean: an exact sampler's high-quality share is that, not 100%."""
    means, std = mixture_means(mixture)
    points, _ = sample_mixture(mixture, n, torch.Generator().manual_seed(seed))
    return {"seed": seed, **mixture_scores(points.double().numpy(), means.double().numpy(), std)}


def suite_grid(args) -> dict:
    return {**_mixture(args.grid_config, args, 5), "num_modes": 25}


def suite_ring(args) -> dict:
    return {**_mixture(args.ring_config, args, 5), "num_modes": 8}


def suite_stacked(args) -> dict:
    data, runs, n = [f"data.root={args.mnist}"], [], args.stacked_samples
    for seed in range(args.seeds):
        run, info = train(args.stacked_config, args.out / f"{args.stacked_config}_seed{seed}", args.stacked_minutes,
                          [*data, f"train.seed={seed}"])
        result = gankit.evaluate(run, overrides=data, n=n, seed=0)
        runs.append({**info, "seed": seed, **scores(result)})
    return {"runs": runs, "over_seeds": over_seeds(runs, KEEP), "num_modes": 1000, "samples": n,
            "real_data_floor": _stacked_floor(args.mnist, n)}


def _stacked_floor(mnist: str, n: int) -> dict:
    """``n`` real Stacked MNIST triplets (the train split's draw for seed 0) scored as a generator's samples are."""
    cfg = DataConfig(name="stacked_mnist", root=mnist, num_samples=n)
    return scores(Evaluation(cfg).score(load_dataset(cfg, "train").x))


def _health(run: Path) -> dict:
    """What the log says about stability: the largest R1/R2 and D gap logged, the rollbacks the monitor made."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    train_rows = [r for r in rows if "d_loss" in r]
    out = {"rollbacks": sum(1 for r in rows if r.get("event") == "rollback"),
           "stopped": any(r.get("event") == "stopped" for r in rows)}
    for key in ("r1", "r2"):
        if any(key in r for r in train_rows):
            out[f"max_{key}"] = max(r.get(key, 0.0) for r in train_rows)
    if train_rows and "d_real" in train_rows[0]:
        out["max_d_gap"] = max(abs(r["d_real"] - r["d_fake"]) for r in train_rows)
    return out


def suite_ablation(args) -> dict:
    """RpGAN with R1 alone against R1 + R2 (Huang et al. 2024, sec. 2.2): same configs, only recipe.penalty differs."""
    result = {}
    for penalty in ("r1", "r1_r2"):
        rpgan = ["recipe.loss=relativistic_pairing", f"recipe.penalty={penalty}", "recipe.penalty_weight=1",
                 "model.pack=1", "optim.beta1=0", "optim.beta2=0.99", "train.steps=10000"]
        grid = _mixture(args.grid_config, args, 5, rpgan, f"_{penalty}")
        digits = []
        for seed in range(args.seeds):
            run, info = train("r3gan_digits", args.out / f"r3gan_digits_{penalty}_seed{seed}", None,
                              [f"train.seed={seed}", f"recipe.penalty={penalty}"])
            digits.append({**info, "seed": seed, **scores(gankit.evaluate(run, n=2000, seed=0)), **_health(run)})
        result[penalty] = {"grid": grid, "digits": digits}
    return result


SUITES = {"mnist": suite_mnist, "cgan": suite_cgan, "grid": suite_grid, "ring": suite_ring, "stacked": suite_stacked,
          "ablation": suite_ablation}


def machine() -> dict:
    """The hardware and versions the figures were measured on."""
    cpu, flags = platform.processor(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {"cpu": cpu, "avx512_bf16": "avx512_bf16" in flags, "avx2": "avx2" in flags,
            "cpu_threads": torch.get_num_threads(), "cores": os.cpu_count(), "torch": torch.__version__,
            "python": platform.python_version(), "gankit": gankit.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=[*SUITES, "all"], default="all")
    parser.add_argument("--mnist", default="../shared/data/mnist")
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    parser.add_argument("--config", default="dcgan_mnist", help="config of the mnist suite")
    parser.add_argument("--cgan-config", default="cgan_mnist")
    parser.add_argument("--grid-config", default="toy2d_grid")
    parser.add_argument("--ring-config", default="toy2d_ring")
    parser.add_argument("--stacked-config", default="stacked_mnist")
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 of the mnist, cgan, stacked suites")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--stacked-minutes", type=float, default=15.0)
    parser.add_argument("--stacked-samples", type=int, default=26_000, help="samples the stacked suite scores")
    parser.add_argument("--reuse", action="store_true", help="cgan suite: score the runs already in --out again "
                        "instead of training them")
    args = parser.parse_args()
    for name in SUITES if args.suite == "all" else [args.suite]:
        with contextlib.redirect_stdout(sys.stderr):  # the runs' headers: stdout carries the JSON lines alone
            result = SUITES[name](args)
        print(json.dumps({"suite": name, "machine": machine(), **result}), flush=True)


if __name__ == "__main__":
    main()
