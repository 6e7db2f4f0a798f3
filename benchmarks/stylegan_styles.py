"""What a trained StyleGAN's styles mean, and what its projector finds; prints one JSON object.

For a StyleGAN run (its EMA generator, the last checkpoint or the file given), with the run's evaluator (the MNIST
one for MNIST runs; data.pad's border cropped before it reads an image, as evaluation does):

* mixing: over --pairs (2,000) pairs of codes (A, B) whose images the evaluator labels differently, how often A with
  B's coarse styles is labelled B's class, and how often A with B's fine styles keeps A's class (middle both ways
  too); ``gankit.latent.style.mixing_classes``.
* perceptual path length in W over --ppl-samples (10,000) full paths, eps 1e-4, with the evaluator's penultimate
  features (unit-normalised, squared distance) in place of the paper's LPIPS on VGG; the mean between the 1st and
  99th percentiles; ``gankit.latent.style.path_length``.
* projection: the first --per-class (100) test digits of every class, projected for --steps (300) steps with the
  evaluator's features in the loss (as ``gankit project`` does), from --starts (1: the mean w; more: also mapped
  random codes, the best kept per digit); per class, the pixel MSE (on [-1, 1]) and the agreement: the share of
  projections the evaluator labels with their target's test label (and, for comparison, the evaluator's accuracy
  on the targets themselves). ``--w-plus`` projects into W+.

    python benchmarks/stylegan_styles.py runs/bench_stylegan/stylegan_mnist --mnist ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

import gankit
from gankit.data.sources import load_dataset
from gankit.latent import style


def _classifier(evaluator, pad: int):
    """(labels, features) functions of (N, C, H, W) images in [-1, 1], the border of ``pad`` cropped first."""
    def crop(x: torch.Tensor) -> torch.Tensor:
        return x[..., pad:x.shape[-2] - pad, pad:x.shape[-1] - pad] if pad else x

    def labels(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(evaluator(crop(x))[1]).argmax(dim=1)

    def features(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(evaluator(crop(x))[0])

    return labels, features


def _targets(run, mnist: str, per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``per_class`` test images of every class, at the run's size (its pad added), and their labels: the
    data's own, also for a run trained on clusters (data.clusters), since the evaluator reads digits."""
    data = load_dataset(dataclasses.replace(run.config.data, root=mnist, clusters=0), "test")
    if data.y is None or data.y.dtype != torch.int64:
        raise SystemExit(f"{run.config.data.name}'s test split has no class labels to project by")
    rows = torch.cat([(data.y == c).nonzero().flatten()[:per_class] for c in data.y.unique()])
    return data.x[rows], data.y[rows]


def projection(run, G, evaluator, labels, mnist: str, args) -> dict:
    x, y = _targets(run, mnist, args.per_class)
    started = time.monotonic()
    fits = [style.project(G, x[i:i + args.batch], steps=args.steps, evaluator=evaluator, w_plus=args.w_plus,
                          crop=run.config.data.pad, starts=args.starts, generator=run.rng(args.seed),
                          progress=False) for i in range(0, len(x), args.batch)]
    images, mse = torch.cat([f.images for f in fits]), torch.cat([f.mse for f in fits])
    found, read = labels(images), labels(x)
    per_class = {}
    for c in y.unique().tolist():
        rows = y == c
        per_class[str(c)] = {"n": int(rows.sum()), "mse": round(float(mse[rows].mean()), 4),
                             "agreement": round(float((found[rows] == c).double().mean()), 4),
                             "evaluator_on_targets": round(float((read[rows] == c).double().mean()), 4)}
    agreement = [v["agreement"] for v in per_class.values()]
    return {"steps": args.steps, "starts": args.starts, "w_plus": args.w_plus, "images": len(x),
            "seconds": round(time.monotonic() - started, 1), "mse": round(float(mse.mean()), 4),
            "agreement": round(float((found == y).double().mean()), 4), "worst_class_agreement": min(agreement),
            "evaluator_on_targets": round(float((read == y).double().mean()), 4), "per_class": per_class}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a StyleGAN run folder or checkpoint (e.g. its checkpoints/best.safetensors)")
    parser.add_argument("--mnist", default=os.environ.get("GANKIT_DATA", "../shared/data/mnist"))
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--psi", type=float, default=None, help="truncation of the mixing pairs' codes (default none)")
    parser.add_argument("--ppl-samples", type=int, default=10_000)
    parser.add_argument("--per-class", type=int, default=100, help="test digits of each class to project (0: none)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--starts", type=int, default=1)
    parser.add_argument("--w-plus", action="store_true")
    parser.add_argument("--batch", type=int, default=250, help="digits projected side by side")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    run = gankit.load(args.run)
    G = run.generator
    style.require_stylegan(G)
    evaluator = run.evaluator()
    labels, features = _classifier(evaluator, run.config.data.pad)
    report = {"run": str(args.run), "step": run.step, "seed": args.seed, "evaluator": evaluator.describe(),
              "machine": {"cpu_threads": args.threads, "platform": platform.platform(), "torch": torch.__version__,
                          "cpu": platform.processor() or platform.machine()},
              "groups": {k: [v.start, v.stop - 1] for k, v in style.style_groups(G).items() if len(v)}}
    started = time.monotonic()
    report["mixing"] = style.mixing_classes(G, labels, args.pairs, psi=args.psi, generator=run.rng(args.seed))
    report["mixing"]["seconds"] = round(time.monotonic() - started, 1)
    started = time.monotonic()
    report["path_length"] = style.path_length(G, features, args.ppl_samples, generator=run.rng(args.seed))
    report["path_length"]["seconds"] = round(time.monotonic() - started, 1)
    if args.per_class > 0:
        report["projection"] = projection(run, G, evaluator, labels, args.mnist, args)
        report["projection"]["median_class_mse"] = statistics.median(
            v["mse"] for v in report["projection"]["per_class"].values())
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
