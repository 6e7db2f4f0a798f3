"""Sanity figures for gankit's metrics on real data: the numbers in the table of docs/evaluation.md come from here.

Scores three sample sets against the MNIST test split (10,000 images) with the built-in MNIST evaluator:
real training images, training images of the digits 0-4 only, and uniform noise; and optionally trained runs.
Prints one JSON object (name -> the metrics gankit eval reports, without provenance) and, with --markdown,
that table.

    python scripts/eval_sanity.py --mnist ../shared/data/mnist [--n 10000] [--seed 0] [--run runs/seed] [--markdown]
"""

from __future__ import annotations

import argparse
import html
import json

import torch

import gankit
from gankit.config import DataConfig
from gankit.data import load_dataset
from gankit.metrics.evaluate import EvalSettings, Evaluation

COLUMNS = ["fid", "kid", "precision", "recall", "density", "coverage", "classifier_score", "modes", "mode_kl"]


def sample_sets(mnist: str, n: int, seed: int) -> dict[str, torch.Tensor]:
    """Real train images, the digits 0-4 only, and uniform noise: n of each, drawn with ``seed``."""
    train = load_dataset(DataConfig(name="mnist", root=mnist), "train")
    g = torch.Generator().manual_seed(seed)
    real = train.x[torch.randperm(len(train), generator=g)[:n]]
    low = torch.nonzero(train.y < 5).squeeze(1)
    half = train.x[low[torch.randperm(len(low), generator=g)[:n]]]
    noise = torch.rand(n, 1, 28, 28, generator=g) * 2 - 1
    return {"real train images": real, "train images of 0-4 only": half, "uniform noise": noise}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", required=True, help="folder with the MNIST IDX files")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run", action="append", default=[], help="also score a trained run (repeatable)")
    parser.add_argument("--markdown", action="store_true", help="print the table of docs/evaluation.md too")
    args = parser.parse_args()
    evaluation = Evaluation(DataConfig(name="mnist", root=args.mnist), EvalSettings(seed=args.seed))
    results = {}
    for name, x in sample_sets(args.mnist, args.n, args.seed).items():
        results[name] = _strip(evaluation.score(x, source=name))
    for run in args.run:
        loaded = gankit.load(run)
        results[f"{run} (step {loaded.step})"] = _strip(evaluation.score(loaded.sample(args.n, seed=args.seed)))
    print(json.dumps({"n": args.n, "seed": args.seed, "reference": "mnist test (10,000)",
                      "evaluator": evaluation.evaluator.describe(), "results": results}, indent=2))
    if args.markdown:
        print("\n| samples | " + " | ".join(COLUMNS) + " |")
        print("|---" * (len(COLUMNS) + 1) + "|")
        for name, r in results.items():
            print(f"| {_cell(name)} | " + " | ".join(_fmt(r[c]) for c in COLUMNS) + " |")


def _strip(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in ("provenance", "class_histogram")}


def _cell(text: str) -> str:
    """A user string (a run path) made safe inside a Markdown table cell."""
    return html.escape(text).replace("|", "\\|")


def _fmt(value) -> str:
    return str(value) if isinstance(value, int) else f"{value:.4g}"


if __name__ == "__main__":
    main()
