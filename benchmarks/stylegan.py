"""StyleGAN against the best DCGAN config at the same wall-clock budget, on this machine's CPU; prints one JSON object.

Both configs (default stylegan_mnist and dcgan_mnist) train one after the other with seed 0 for --minutes each, with
the same training-time evaluation (every 500 steps on 2,000 samples; the best checkpoint is kept). Then each run's
best and last checkpoints are scored with --samples (10,000) samples against the MNIST test split: evaluator-FID,
KID, precision, recall, density, coverage. StyleGAN's samples come from its EMA generator, with fresh noise maps;
the 2-pixel border of data.pad is cropped before scoring, so both are scored on 28x28 images. The truncation curve
scores the best StyleGAN checkpoint at each psi of --psi (truncation in W).

    python benchmarks/stylegan.py --mnist ../shared/data/mnist --minutes 10 --out runs/bench_stylegan
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

import gankit

HERE = Path(__file__).resolve().parent
CONFIGS = HERE.parent / "configs"
KEEP = ("fid", "kid", "precision", "recall", "density", "coverage", "modes")


def train(config: str, out: Path, minutes: float, mnist: str) -> tuple[Path, dict]:
    """``config`` for ``minutes`` of wall-clock time (training-time evaluation included)."""
    started = time.monotonic()
    run = gankit.train(CONFIGS / f"{config}.yaml", out=out, overwrite=True,
                       overrides=[f"train.max_minutes={minutes}", "train.steps=100000000", "train.progress=false",
                                  "train.eval_every=500", "train.eval_samples=2000", "train.seed=0",
                                  f"data.root={mnist}"])
    last = gankit.load(run)
    info = {"config": config, "minutes": minutes, "steps": last.step,
            "seconds": round(time.monotonic() - started, 1)}
    if hasattr(last.generator, "current_progress"):
        level, alpha = last.generator.current_progress()
        info["final_resolution"], info["final_alpha"] = 4 * 2 ** level, alpha
    return run, info


def score(target: Path, mnist: str, n: int, psi: float | None = None) -> dict:
    result = gankit.evaluate(target, overrides=[f"data.root={mnist}"], n=n, seed=0, psi=psi)
    return {k: round(float(result[k]), 4) for k in KEEP if k in result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist", default=os.environ.get("GANKIT_DATA", "../shared/data/mnist"))
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--configs", default="stylegan_mnist,dcgan_mnist")
    parser.add_argument("--psi", default="1,0.9,0.8,0.7,0.6,0.5")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/bench_stylegan"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report = {"machine": {"cpu_threads": args.threads, "platform": platform.platform(), "torch": torch.__version__},
              "samples": args.samples, "reference": "mnist test (10,000)", "seed": 0, "runs": {}}
    for config in args.configs.split(","):
        run, info = train(config, args.out / config, args.minutes, args.mnist)
        best = run / "checkpoints" / "best.safetensors"
        info["best_step"] = json.loads((run / "checkpoints" / "best.json").read_text())["step"]
        info["best"], info["last"] = score(best, args.mnist, args.samples), score(run, args.mnist, args.samples)
        if config.startswith("stylegan"):
            info["truncation"] = [{"psi": float(p), **score(best, args.mnist, args.samples, float(p))}
                                  for p in args.psi.split(",")]
        report["runs"][config] = info
        print(json.dumps({config: info}), flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
