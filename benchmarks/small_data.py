"""Adaptive discriminator augmentation on a small training set: a config trained on the first --images MNIST
training images for --minutes of wall-clock time per run, once as it is and once per variant, each for --seeds
seeds; prints one JSON object.

A small set seen for many epochs is where a discriminator memorises its training images (Karras et al. 2020b,
"Training generative adversarial networks with limited data"), and where ADA is meant to help. Each run's last
weights (the EMA generator where the config keeps one) are scored with 10,000 samples against the 10,000 MNIST
test images, which the runs never saw, with gankit's MNIST evaluator; the log adds ADA's overfitting heuristic
r_t = E[sign D(x_real)] (``d_sign_real``) averaged over the last quarter of the run, and where ADA runs its final
augmentation probability p. Variants (``--variant NAME OVERRIDES...``, repeatable) are compared with the plain
config on the same images and seeds; by default ADA with the paper's target 0.6 (docs/stylegan.md has the figures):

    python benchmarks/small_data.py --config stylegan2_mnist --images 100 --minutes 10 --seeds 1
    python benchmarks/small_data.py --images 1000 --seeds 3 \\
        --variant ada recipe.augment=translation,color recipe.ada_target=0.6 recipe.ada_kimg=100 \\
        --variant diffaugment recipe.augment=translation,color

Runs go one after the other; nothing else should share the cores (the budget is wall-clock time).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

import gankit
from gankit.data.mnist import read_mnist

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gan_quality import machine, over_seeds, scores, train  # noqa: E402  (same folder)

DEFAULT_VARIANT = ["ada", "recipe.augment=translation,color", "recipe.ada_target=0.6", "recipe.ada_kimg=100"]


def write_subset(mnist: str, n: int, path: Path) -> Path:
    """The first ``n`` MNIST training images and labels as an ``.npz`` the ``arrays`` source reads."""
    images, labels = read_mnist(mnist, "train")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=images[:n], y=labels[:n].astype(np.int64))
    return path


def log_summary(run: Path) -> dict:
    """Mean r_t over the last quarter of the logged rows, and the last augmentation probability logged."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "d_sign_real" in r]
    tail = rows[len(rows) * 3 // 4:]
    out = {"r_t_last_quarter": statistics.mean(r["d_sign_real"] for r in tail) if tail else None,
           "r_t_max": max((r["d_sign_real"] for r in rows), default=None)}
    if rows and "augment_p" in rows[-1]:
        out["augment_p_last"] = rows[-1]["augment_p"]
        out["augment_p_max"] = max(r.get("augment_p", 0.0) for r in rows)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="stylegan2_mnist")
    parser.add_argument("--mnist", default="../shared/data/mnist")
    parser.add_argument("--images", type=int, default=1000, help="first N training images (default 1,000)")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--variant", nargs="+", action="append", metavar=("NAME", "OVERRIDE"),
                        help="a name and its overrides (repeatable); default: " + " ".join(DEFAULT_VARIANT))
    parser.add_argument("--out", type=Path, default=Path("runs/small_data"))
    args = parser.parse_args()
    subset = write_subset(args.mnist, args.images, args.out / f"mnist_first{args.images}.npz")
    data = ["data.name=arrays", f"data.root={subset}", "train.eval_every=0"]
    test = ["data.name=mnist", f"data.root={args.mnist}"]
    variants = [("plain", [])] + [(v[0], v[1:]) for v in (args.variant or [DEFAULT_VARIANT])]
    result = {"config": args.config, "images": args.images, "minutes": args.minutes, "samples": args.samples,
              "machine": machine(), "variants": {}}
    for name, overrides in variants:
        runs = []
        for seed in range(args.seeds):
            run, info = train(args.config, args.out / f"{name}_seed{seed}", args.minutes,
                              [*data, f"train.seed={seed}", *overrides])
            scored = gankit.evaluate(run, overrides=test, n=args.samples, seed=0)
            runs.append({**info, "seed": seed, **scores(scored), **log_summary(run)})  # modes: classes > 1%
            print(json.dumps({"variant": name, **runs[-1]}), file=sys.stderr, flush=True)
        keys = ("fid", "precision", "recall", "coverage", "modes", "steps", "r_t_last_quarter", "augment_p_last")
        result["variants"][name] = {"overrides": overrides, "runs": runs, "over_seeds": over_seeds(runs, keys)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
