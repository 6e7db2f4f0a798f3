"""Does a faster setting train the same model? Evaluator-FID after a fixed number of steps, per setting and seed:
prints one JSON object.

Each setting (fp32 by default; bf16 autocast with channels-last; anything given with --setting) trains ``dcgan_mnist``
(or --config) for --steps steps from seeds 0..--seeds-1, then the final generator is scored with --samples samples
against the MNIST test split (gankit's evaluator-FID). The seed-to-seed spread of the fp32 runs is the noise the
other settings' FIDs are read against; their wall-clock seconds are reported too.

    python benchmarks/precision_parity.py --mnist ../shared/data/mnist --steps 1500 --seeds 2 --out runs/parity
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

import gankit

HERE = Path(__file__).resolve().parent
SETTINGS = {"fp32": [], "bf16_channels_last": ["train.precision=bf16", "train.channels_last=true"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", default=str(HERE.parent.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--config", default="dcgan_mnist")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--setting", action="append", default=[], metavar="NAME:KEY=VALUE,KEY=VALUE",
                        help="an extra setting to compare, e.g. compiled:train.compile=true")
    parser.add_argument("--out", default="runs/parity")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = dict(SETTINGS)
    for item in args.setting:
        name, _, overrides = item.partition(":")
        settings[name] = overrides.split(",")
    result = {"config": args.config, "steps": args.steps, "samples": args.samples, "threads": args.threads,
              "torch": torch.__version__, "settings": {}}
    for name, overrides in settings.items():
        runs = []
        for seed in range(args.seeds):
            out = Path(args.out) / f"{name}-seed{seed}"
            started = time.monotonic()
            gankit.train(HERE.parent / "configs" / f"{args.config}.yaml", out=out, overwrite=True,
                         overrides=[f"data.root={args.mnist}", f"train.steps={args.steps}", f"train.seed={seed}",
                                    "train.eval_every=0", "train.progress=false", f"train.sample_every={args.steps}",
                                    f"train.checkpoint_every={args.steps}", *overrides])
            seconds = time.monotonic() - started
            scores = gankit.evaluate(out, n=args.samples, write=False)
            runs.append({"seed": seed, "fid": round(scores["fid"], 3), "train_seconds": round(seconds, 1)})
        fids = [r["fid"] for r in runs]
        result["settings"][name] = {"overrides": overrides, "runs": runs, "fid_mean": round(statistics.mean(fids), 3),
                                    "fid_spread": round(max(fids) - min(fids), 3)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
