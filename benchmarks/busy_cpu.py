"""How much a busy CPU slows training, with PyTorch's default threads and with one (``--threads 1``).

Starts ``--busy`` processes that spin on a core each (as a second run or a browser would), then trains the same short
run with each thread setting, in alternating rounds, in fresh ``gankit train`` processes. Prints one JSON object:
the median steps/s of each setting (from the run's own ``metrics.jsonl`` log rows, so start-up is left out) per
round, and the machine. Run it on an otherwise idle machine; ``--busy 0`` measures the quiet case.

    python benchmarks/busy_cpu.py --busy 3 --rounds 3
    python benchmarks/busy_cpu.py --busy 3 --config dcgan_mnist --set data.root=../shared/data/mnist --steps 60
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gan_quality import machine  # noqa: E402  (the benchmarks' one description of the hardware)


def spin() -> None:
    """Keep one core busy until killed."""
    while True:
        pass


def steps_per_second(config: str | None, overrides: list[str], steps: int, threads: int | None, out: Path) -> float:
    """The median steps/s over the log rows of one short run (its first row left out: warm-up)."""
    argv = [sys.executable, "-m", "gankit", "train", *([config] if config else []), "--out", str(out),
            "--overwrite", *(["--threads", str(threads)] if threads else [])]
    for item in [*overrides, f"train.steps={steps}", f"train.log_every={max(steps // 10, 1)}", "train.eval_every=0",
                 "train.progress=false", "train.sample_every=100000", "train.checkpoint_every=100000"]:
        argv += ["--set", item]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [r["steps_per_s"] for r in rows if "steps_per_s" in r][1:]
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--busy", type=int, default=3, help="spinning processes (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--config", default=None, help="config to train (default: the embedded default)")
    parser.add_argument("--steps", type=int, default=400, help="steps per run (default 400)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    spinners = [multiprocessing.Process(target=spin, daemon=True) for _ in range(args.busy)]
    for p in spinners:
        p.start()
    rates: dict[str, list[float]] = {"default": [], "1": []}
    try:
        with tempfile.TemporaryDirectory(prefix="gankit-busy-") as tmp:
            for _ in range(args.rounds):
                for name, threads in (("default", None), ("1", 1)):
                    rates[name].append(steps_per_second(args.config, args.overrides, args.steps, threads,
                                                        Path(tmp) / "run"))
    finally:
        for p in spinners:
            p.kill()
    default, one = statistics.median(rates["default"]), statistics.median(rates["1"])
    print(json.dumps({"config": args.config or "default", "overrides": args.overrides, "steps": args.steps,
                      "busy_processes": args.busy, "rounds": args.rounds,
                      "steps_per_s": {"default_threads": rates["default"], "one_thread": rates["1"]},
                      "median_steps_per_s": {"default_threads": round(default, 2), "one_thread": round(one, 2)},
                      "one_thread_speedup": round(one / default, 2), "machine": machine()}, indent=1))


if __name__ == "__main__":
    main()
