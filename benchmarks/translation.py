"""Image-to-image translation on the two offline MNIST tasks, on this machine's CPU: prints one JSON object.

* ``paired`` (sketch -> digit, ``configs/pix2pix_edges.yaml``): pix2pix (adversarial + 100 x L1) against the
  pure-regression baseline (the same U-Net, ``recipe.gan_weight=0``: L1 only), each trained for --paired-steps
  steps with seed 0, then scored on the 10,000 test pairs: L1, PSNR, SSIM against the true digit, the MNIST
  evaluator's FID of the translations against the test digits, class preservation (the evaluator's label of the
  translation equals the source digit's) and output diversity (5 outputs of each of 200 inputs).
* ``unpaired`` (MNIST <-> colour digits, ``configs/cyclegan_mnist_colour.yaml``): CycleGAN trained for
  --unpaired-minutes minutes (its linear decay spread over the steps that budget allows, measured first), then
  scored in both directions on the 5,000 test images of each domain: class preservation with each target domain's
  evaluator (aim >= 90%), target-domain FID and the cycle's L1 error.

    python benchmarks/translation.py --mnist ../shared/data/mnist --out runs/bench_translation
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import gankit

HERE = Path(__file__).resolve().parent
CONFIGS = HERE.parent / "configs"
COMMON = ["train.progress=false", "train.eval_every=0"]


def _scores(run: Path, n: int) -> dict:
    result = gankit.evaluate(run, n=n, write=False)
    return {k: round(v, 4) for k, v in result.items() if isinstance(v, float)}


def paired(args) -> dict:
    out = {"config": "pix2pix_edges", "steps": args.paired_steps, "seed": 0}
    for name, extra in (("pix2pix", []), ("l1_only", ["recipe.gan_weight=0"])):
        run = Path(args.out) / f"edges_{name}"
        started = time.monotonic()
        gankit.train(CONFIGS / "pix2pix_edges.yaml", out=run, overwrite=True,
                     overrides=[f"data.root={args.mnist}", f"train.steps={args.paired_steps}",
                                f"train.sample_every={args.paired_steps}", *COMMON, *extra])
        out[name] = {"train_seconds": round(time.monotonic() - started, 1), **_scores(run, 10_000)}
    return out


def unpaired(args) -> dict:
    cfg = CONFIGS / "cyclegan_mnist_colour.yaml"
    probe = Path(args.out) / "colour_probe"  # the rate decides how many steps fit the budget
    started = time.monotonic()
    gankit.train(cfg, out=probe, overwrite=True, overrides=[f"data.root={args.mnist}", "train.steps=60", *COMMON])
    rate = 60 / (time.monotonic() - started)
    steps = max(100, int(rate * 60 * args.unpaired_minutes * 0.95))
    run = Path(args.out) / "colour"
    started = time.monotonic()
    gankit.train(cfg, out=run, overwrite=True, overrides=[f"data.root={args.mnist}", f"train.steps={steps}",
                                                          f"train.sample_every={max(1, steps // 4)}", *COMMON])
    return {"config": "cyclegan_mnist_colour", "steps": steps, "seed": 0,
            "train_seconds": round(time.monotonic() - started, 1), **_scores(run, 5_000)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", default=str(HERE.parent.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--suite", default="all", choices=["all", "paired", "unpaired"])
    parser.add_argument("--paired-steps", type=int, default=3000)
    parser.add_argument("--unpaired-minutes", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="runs/bench_translation")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = {"threads": args.threads, "torch": torch.__version__}
    if args.suite in ("all", "paired"):
        result["paired"] = paired(args)
    if args.suite in ("all", "unpaired"):
        result["unpaired"] = unpaired(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
