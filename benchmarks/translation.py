"""Image-to-image translation on the offline MNIST tasks, on this machine's CPU: prints one JSON object.

* ``paired`` (sketch -> digit, ``configs/pix2pix_edges.yaml``): pix2pix (adversarial + 100 x L1) against the
  pure-regression baseline (the same U-Net, ``recipe.gan_weight=0``: L1 only), each trained for --paired-steps
  steps with seed 0, then scored on the 10,000 test pairs: L1, PSNR, SSIM against the true digit, the MNIST
  evaluator's FID of the translations against the test digits, class preservation (the evaluator's label of the
  translation equals the source digit's) and output diversity (5 outputs of each of 200 inputs).
* ``colourize`` (grey -> colour, ``configs/pix2pix_colourize.yaml``): pix2pix against the L1-only baseline, the
  same number of steps (--colourize-steps, the config's 3,000) for each of --seeds seeds, scored on the 10,000 test
  pairs as ``gankit translate RUN`` uses the run (its last weights): colourfulness (Hasler & Suesstrunk 2003) of
  the outputs against the real colour digits', the earth mover's distance between their pixel-saturation
  distributions, FID with the colour digits' evaluator, class preservation, L1, PSNR, SSIM; per seed and as mean
  and spread; the best checkpoint (by training-time FID on 2,000 test pairs) is scored too. With --pictures DIR,
  a grid of 10 test inputs, pix2pix's outputs, L1-only's and the targets (seed 0) as DIR/colourize.png.
  --colourize-set applies overrides to both models (``model.test_dropout=false``: deterministic translations).
* ``unpaired`` (MNIST <-> colour digits, --unpaired-config: ``configs/cyclegan_mnist_colour.yaml`` or
  ``cyclegan_semantic_mnist_colour.yaml``, with --set overrides): CycleGAN
  trained for --unpaired-minutes minutes (its linear decay spread over the steps that budget allows, measured
  first by probes of 20 and 200 steps, start-up excluded), evaluated five times during training on 2,000 test
  images per direction (the best checkpoint: lowest mean FID), for each of --unpaired-seeds seeds; the last
  weights and the best checkpoint scored in both directions on the 5,000 test images of each domain: class
  preservation with each target domain's evaluator (aim >= 90%), target-domain FID and the cycle's L1 error.
* ``check`` (--check RUN..., default every OUT/colour*_seed*): class preservation of those runs (last weights and
  best checkpoint, the first 5,000 test images each way) read by two classifiers trained here apart from the
  built-in evaluators (seed 7, half their width; cached in OUT), since the semantic loss trains against the
  built-in ones, which also score class preservation in ``unpaired``.

    python benchmarks/translation.py --mnist ../shared/data/mnist --out runs/bench_translation
    python benchmarks/translation.py --suite unpaired --unpaired-seeds 3 --unpaired-config \
        cyclegan_semantic_mnist_colour --tag _sem
    python benchmarks/translation.py --suite check   # every OUT/colour*_seed* read by classifiers trained here
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

import torch

import gankit
from gan_quality import machine  # same folder: the CPU and its flags

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


COLOUR_KEYS = ("AB/colourfulness", "AB/colourfulness_real", "AB/colourfulness_ratio", "AB/saturation",
               "AB/saturation_real", "AB/saturation_emd", "AB/fid", "AB/class_preservation", "AB/l1", "AB/psnr",
               "AB/ssim", "AB/diversity")


def _spread(rows: list[dict], keys: tuple[str, ...]) -> dict:
    return {k: {"mean": round(statistics.mean(r[k] for r in rows), 4), "std": round(statistics.pstdev(
        r[k] for r in rows), 4)} for k in keys if all(k in r for r in rows)}


def colourize(args) -> dict:
    common = args.colourize_set or []
    out = {"config": "pix2pix_colourize", "overrides": common, "steps": args.colourize_steps, "seeds": args.seeds,
           "samples": 10_000}
    runs = {}
    for name, extra in (("pix2pix", common), ("l1_only", [*common, "recipe.gan_weight=0"])):
        rows = []
        for seed in range(args.seeds):
            run = Path(args.out) / f"colourize_{name}{args.tag}_seed{seed}"
            started = time.monotonic()
            gankit.train(CONFIGS / "pix2pix_colourize.yaml", out=run, overwrite=True,
                         overrides=[f"data.root={args.mnist}", f"train.steps={args.colourize_steps}",
                                    f"train.seed={seed}", "train.progress=false", *extra])
            seconds = round(time.monotonic() - started, 1)
            best = gankit.evaluate(run / "checkpoints" / "best.safetensors", n=10_000, write=False)
            rows.append({"seed": seed, "train_seconds": seconds, **_scores(run, 10_000),
                         "best": {k: round(best[k], 4) for k in COLOUR_KEYS if k in best},
                         "best_step": json.loads((run / "checkpoints" / "best.json").read_text())["step"]})
            runs.setdefault(name, run)
        out[name] = {"runs": rows, "over_seeds": _spread(rows, COLOUR_KEYS + ("train_seconds",))}
    c = {name: out[name]["over_seeds"]["AB/colourfulness"]["mean"] for name in ("pix2pix", "l1_only")}
    out["pix2pix_over_l1_colourfulness"] = round(c["pix2pix"] / c["l1_only"], 3)
    if args.pictures:
        out["picture"] = str(_colourize_picture(runs, Path(args.pictures) / "colourize.png", args.mnist))
    return out


def _colourize_picture(runs: dict, path: Path, mnist: str) -> Path:
    """Rows: 10 grey test inputs, pix2pix's colourings, L1-only's, the true colour digits."""
    from gankit.config import DataConfig
    from gankit.data import load_dataset
    from gankit.images import save_grid, to_channels

    test = load_dataset(DataConfig(name="mnist_colourize", root=mnist), "test")
    a, b = test.a[:10], test.b[:10]
    outs = [gankit.load(runs[name]).translate(a, seed=0) for name in ("pix2pix", "l1_only")]
    return save_grid(torch.cat([to_channels(a, 3), *outs, b]), path, nrow=10)


PROBE_STEPS = (20, 200)


def _step_rate(cfg: Path, probe: Path, overrides: list[str]) -> float:
    """Training steps per second, without the start-up (data, evaluators, first-step allocations): the time of a
    20-step run subtracted from that of a 200-step one. (A 20/80-step probe put the semantic config at 2.39 steps/s
    where its 25-minute run kept 1.9, evaluations included: a short burst runs faster than a sustained load.)"""
    took = {}
    for steps in PROBE_STEPS:
        started = time.monotonic()
        gankit.train(cfg, out=probe, overwrite=True, overrides=[*overrides, f"train.steps={steps}"])
        took[steps] = time.monotonic() - started
    return (PROBE_STEPS[1] - PROBE_STEPS[0]) / max(took[PROBE_STEPS[1]] - took[PROBE_STEPS[0]], 1e-3)


def unpaired(args) -> dict:
    cfg, extra = CONFIGS / f"{args.unpaired_config}.yaml", list(args.set or [])
    rate = _step_rate(cfg, Path(args.out) / "colour_probe", [f"data.root={args.mnist}", *COMMON, *extra])
    steps = max(100, int(rate * 60 * args.unpaired_minutes * 0.95))
    rows = []
    for seed in range(args.unpaired_seeds):
        run = Path(args.out) / f"colour{args.tag}_seed{seed}"
        started = time.monotonic()
        gankit.train(cfg, out=run, overwrite=True,
                     overrides=[f"data.root={args.mnist}", f"train.steps={steps}", f"train.seed={seed}",
                                f"train.sample_every={max(1, steps // 4)}", "train.progress=false",
                                f"train.eval_every={-(-steps // 5)}", "train.eval_samples=2000", *extra])
        seconds = round(time.monotonic() - started, 1)
        best = gankit.evaluate(run / "checkpoints" / "best.safetensors", n=5_000, write=False)
        rows.append({"seed": seed, "train_seconds": seconds, **_scores(run, 5_000),
                     "best": {k: round(v, 4) for k, v in best.items() if isinstance(v, float)},
                     "best_step": json.loads((run / "checkpoints" / "best.json").read_text())["step"]})
    keys = tuple(f"{d}/{k}" for d in ("AB", "BA") for k in ("class_preservation", "fid", "cycle_l1"))
    return {"config": args.unpaired_config, "overrides": extra, "steps": steps, "minutes": args.unpaired_minutes,
            "runs": rows, "last_over_seeds": _spread(rows, keys),
            "best_over_seeds": _spread([r["best"] for r in rows], keys), "samples": 5_000}


def _check_classifier(args, domain: str) -> Path:
    """A classifier of one domain of ``mnist_colour``, trained here apart from the built-in evaluators (another
    seed, half their width), once per output folder."""
    path = Path(args.out) / f"check_classifier_{domain}.safetensors"
    if not path.exists():
        gankit.train_evaluator("mnist_colour", path, overrides=[f"data.root={args.mnist}", f"data.domain={domain}"],
                               seed=7, width=16, progress=False)
    return path


def check(args) -> dict:
    """Class preservation of unpaired runs read by classifiers that neither trained nor scored them: the semantic
    loss trains against the built-in evaluators, which also score class preservation, so its figure may flatter."""
    from gankit.config import DataConfig
    from gankit.data import load_dataset
    from gankit.metrics.evaluator import load_evaluator

    test = load_dataset(DataConfig(name="mnist_colour", root=args.mnist), "test")
    n = min(5_000, len(test))
    readers = {d: load_evaluator(str(_check_classifier(args, d))) for d in ("A", "B")}
    sources = {"AB": (test.a[:n], test.y[:n], readers["B"]), "BA": (test.b[:n], test.y_b[:n], readers["A"])}
    runs = [Path(r) for r in args.check] if args.check else sorted(Path(args.out).glob("colour*_seed*"))
    out = {"classifiers": {d: {"seed": 7, "width": 16, **readers[d].describe()} for d in readers}, "samples": n,
           "runs": {}}
    for run in runs:
        row = {}
        for which, target in (("last", run), ("best", run / "checkpoints" / "best.safetensors")):
            if not target.exists():
                continue
            model = gankit.load(target)
            for d, (x, labels, reader) in sources.items():
                _, probs = reader(model.translate(x, direction=d))
                row[f"{which}/{d}/class_preservation"] = round(float((probs.argmax(1) == labels.numpy()).mean()), 4)
        out["runs"][str(run)] = row
    keys = sorted({k for row in out["runs"].values() for k in row})
    out["over_runs"] = _spread(list(out["runs"].values()), tuple(keys))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", default=str(HERE.parent.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--suite", default="all", choices=["all", "paired", "colourize", "unpaired", "check"])
    parser.add_argument("--paired-steps", type=int, default=3000)
    parser.add_argument("--colourize-steps", type=int, default=3000)
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 of the colourize suite")
    parser.add_argument("--pictures", default=None, help="a folder for the colourize suite's picture")
    parser.add_argument("--unpaired-minutes", type=float, default=10.0)
    parser.add_argument("--unpaired-seeds", type=int, default=1)
    parser.add_argument("--unpaired-config", default="cyclegan_mnist_colour", help="a config in configs/, no .yaml")
    parser.add_argument("--set", action="append", help="a config override of the unpaired runs (repeatable)")
    parser.add_argument("--colourize-set", action="append", help="a config override of both colourize models' runs, "
                        "e.g. model.test_dropout=false (repeatable)")
    parser.add_argument("--tag", default="", help="a suffix of the unpaired and colourize runs' folder names")
    parser.add_argument("--check", nargs="*", default=None, help="unpaired runs for the check suite (default: "
                        "every OUT/colour*_seed*)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="runs/bench_translation")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = {"threads": args.threads, "torch": torch.__version__, "machine": machine()}
    with contextlib.redirect_stdout(sys.stderr):  # the runs' headers: stdout carries the JSON line alone
        _run_suites(args, result)
    print(json.dumps(result))


def _run_suites(args, result: dict) -> None:
    if args.suite in ("all", "paired"):
        result["paired"] = paired(args)
    if args.suite in ("all", "colourize"):
        result["colourize"] = colourize(args)
    if args.suite in ("all", "unpaired"):
        result["unpaired"] = unpaired(args)
    if args.suite in ("all", "check"):
        result["check"] = check(args)


if __name__ == "__main__":
    main()
