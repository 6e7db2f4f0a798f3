"""Time to quality: FID against wall-clock minutes for several configs, one after the other; prints one JSON object.

Each ``--run LABEL CONFIG [KEY=VALUE ...]`` trains CONFIG (with the overrides) for ``--minutes`` of wall-clock time
with seed ``--seed``, evaluated on ``--eval-samples`` (2,000) samples about every ``--eval-minutes`` (1): the step
rate is first measured by two short probe runs (``--probe`` steps and ten times as many; the difference leaves the
start-up out; where the long probe is not clearly the longer, as when the first one paid CUDA's start, the long
probe's own rate), and ``train.eval_every`` is that rate times the interval. The curve's x is the wall-clock time since
the run's start, its evaluations included, so every config pays for its own. After training, the last weights and
the best checkpoint (lowest training-time FID) are scored on ``--samples`` (10,000) samples against the test split
with the dataset's built-in evaluator. ``images_per_s`` is the median over the log rows of steps/s times the batch
size (a row whose window held an evaluation is slower; the median leaves those out). ``--device cuda`` runs the
training and the scoring on a GPU; ``--plot`` draws the curves (matplotlib), and with ``--from`` draws them from
the ``--json`` reports of earlier invocations instead of training (runs made one command at a time, one plot). An
override written ``probe:KEY=VALUE`` applies to the probe runs only: a progressively grown StyleGAN probed as
configured would be timed at its first, smallest resolution and evaluated too rarely, so its runs add
``probe:recipe.progressive=false`` to be probed at the full size.

    python benchmarks/time_to_quality.py --minutes 30 --plot docs/images/time_to_quality.png \\
        --run dcgan dcgan_mnist --run hinge_sn hinge_sn_mnist --run r3gan r3gan_mnist
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

import gankit

HERE = Path(__file__).resolve().parent
CONFIGS = HERE.parent / "configs"
KEEP = ("fid", "kid", "precision", "recall", "density", "coverage", "modes")


def _config(name: str) -> str:
    """A shipped config's file, or the path as given."""
    shipped = CONFIGS / f"{name}.yaml"
    return str(shipped) if shipped.exists() else name


def _common(args: argparse.Namespace) -> list[str]:
    return [f"data.root={args.mnist}", f"train.seed={args.seed}", f"train.device={args.device}",
            "train.progress=false", "train.tensorboard=false"]


def probe_rate(config: str, overrides: list[str], args: argparse.Namespace, out: Path) -> float:
    """Training steps per second, start-up excluded: a run of 10 x ``probe`` steps less one of ``probe`` steps."""
    seconds = []
    for steps in (args.probe, 10 * args.probe):
        started = time.monotonic()
        gankit.train(config, out=out, overwrite=True,
                     overrides=[*_common(args), *overrides, f"train.steps={steps}", "train.eval_every=0",
                                f"train.sample_every={steps}", f"train.checkpoint_every={steps}"])
        seconds.append(time.monotonic() - started)
    short, long = seconds
    if long < 1.5 * short:  # the first run paid a one-off start (CUDA's, say) that the difference would not cancel
        return 10 * args.probe / long
    return 9 * args.probe / (long - short)


def read_rows(run: Path) -> list[dict]:
    with open(run / "metrics.jsonl") as fh:
        return [json.loads(line) for line in fh if line.strip()]


PROBE = "probe:"


def one(label: str, config: str, overrides: list[str], args: argparse.Namespace) -> dict:
    out = args.out / label
    probe_only = [o.removeprefix(PROBE) for o in overrides if o.startswith(PROBE)]
    overrides = [o for o in overrides if not o.startswith(PROBE)]
    rate = probe_rate(config, [*overrides, *probe_only], args, args.out / f"{label}_probe")
    every = max(1, round(rate * 60 * args.eval_minutes))
    on_gpu = args.device.startswith("cuda")
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    started = time.time()
    run = gankit.train(config, out=out, overwrite=True,
                       overrides=[*_common(args), *overrides, f"train.max_minutes={args.minutes}",
                                  "train.steps=100000000", f"train.eval_every={every}",
                                  f"train.eval_samples={args.eval_samples}"])
    seconds = time.time() - started
    rows = read_rows(run)
    curve = [{"minutes": round((r["time"] - started) / 60, 3), "step": r["step"], "fid": round(r["eval/fid"], 3),
              "recall": round(r.get("eval/recall", float("nan")), 4), "modes": r.get("eval/modes")}
             for r in rows if "eval/fid" in r]
    rates = [r["steps_per_s"] for r in rows if "steps_per_s" in r]
    last = gankit.load(run, device=args.device)
    cfg = last.config
    result = {"label": label, "config": Path(config).stem, "overrides": overrides, "probe_overrides": probe_only,
              "probe_steps_per_s": round(rate, 3),
              "eval_every": every, "steps": last.step, "seconds": round(seconds, 1),
              "batch_size": cfg.train.batch_size,
              "images_per_s": round(statistics.median(rates) * cfg.train.batch_size, 1) if rates else None,
              "parameters_g": sum(p.numel() for p in last.generator.parameters()), "curve": curve}
    if on_gpu:
        result["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    del last
    scoring = {"n": args.samples, "seed": 0, "device": args.device, "overrides": [f"data.root={args.mnist}"]}
    result["last"] = _keep(gankit.evaluate(run, **scoring))
    best = run / "checkpoints" / "best.safetensors"
    if best.exists():
        result["best_step"] = json.loads((run / "checkpoints" / "best.json").read_text())["step"]
        result["best"] = _keep(gankit.evaluate(best, **scoring))
    return result


def _keep(scores: dict) -> dict:
    return {k: round(float(scores[k]), 4) for k in KEEP if k in scores}


def machine(device: str) -> dict:
    info = {"cpu": _cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version()}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _seeds(args: argparse.Namespace) -> str:
    """The plot title's seed: ``--seed``, unless a run sets its own ``train.seed``."""
    own = any(o.startswith("train.seed=") for _, _, *overrides in args.run for o in overrides)
    return "seeds as in the labels" if own else f"seed {args.seed}"


def plot(results: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    for r in (r for r in results if "curve" in r):
        xs, ys = [p["minutes"] for p in r["curve"]], [p["fid"] for p in r["curve"]]
        ax.plot(xs, ys, marker="o", markersize=3, label=f"{r['label']} ({r['images_per_s']:.0f} img/s)")
    ax.set_yscale("log")
    ax.set_xlabel("wall-clock minutes (evaluations included)")
    ax.set_ylabel("FID (gankit's evaluator, 2,000 samples)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1, frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def _where(machine: dict) -> str:
    """A plot title's machine: the GPU, else the CPU and its threads."""
    return machine.get("gpu") or f"{machine['cpu']}, {machine['threads']} threads"


def replot(reports: list[Path], path: Path) -> None:
    """One plot of the runs of several ``--json`` reports, titled with their machines and seeds."""
    loaded = [json.loads(p.read_text()) for p in reports]
    machines = {_where(r["machine"]) for r in loaded}
    seeds = sorted({r["seed"] for r in loaded})
    runs = [run for r in loaded for run in r["runs"]]
    plot(runs, path, f"seed{'s' * (len(seeds) > 1)} {', '.join(map(str, seeds))}, {'; '.join(sorted(machines))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", nargs="+", action="append", default=[], metavar="LABEL CONFIG [KEY=VALUE]",
                        help="a curve: its label, a config (shipped name or path), then overrides "
                        "(probe:KEY=VALUE: for the step-rate probe only)")
    parser.add_argument("--mnist", default=os.environ.get("GANKIT_DATA", "../shared/data/mnist"))
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--eval-minutes", type=float, default=1.0)
    parser.add_argument("--eval-samples", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--probe", type=int, default=20, help="steps of the short probe run (the long one: 10x)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--plot", type=Path, default=None, help="PNG of the curves")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here, after every run")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_time_to_quality"))
    parser.add_argument("--from", dest="reports", type=Path, nargs="+", default=None, metavar="JSON",
                        help="with --plot: draw the runs of these --json reports (in this order), train nothing")
    args = parser.parse_args()
    if args.reports:
        if args.run or not args.plot:
            parser.error("--from draws earlier reports: give --plot, and no --run")
        replot(args.reports, args.plot)
        return
    if not args.run:
        parser.error("give at least one --run LABEL CONFIG (or --from JSON... --plot PNG)")
    if any(len(r) < 2 for r in args.run):
        parser.error("--run needs a label and a config")
    torch.set_num_threads(args.threads)
    report = {"machine": machine(args.device), "device": args.device, "minutes": args.minutes, "seed": args.seed,
              "eval_samples": args.eval_samples, "samples": args.samples, "runs": []}
    for label, config, *overrides in args.run:
        try:
            report["runs"].append(one(label, _config(config), overrides, args))
        except Exception as exc:  # one failed config (out of memory, say) leaves the others' curves
            report["runs"].append({"label": label, "config": config, "overrides": overrides,
                                   "error": f"{type(exc).__name__}: {exc}"})
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=1))
        print(json.dumps(report["runs"][-1]), file=sys.stderr, flush=True)
    if args.plot:
        plot(report["runs"], args.plot, f"{_seeds(args)}, {_where(report['machine'])}")
    print(json.dumps(report, indent=1))
    failed = [run["label"] for run in report["runs"] if "error" in run]
    if failed:  # the report above keeps the other runs; a script driving this one must still see the failure
        sys.exit(f"time_to_quality: {len(failed)} of {len(report['runs'])} runs failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
