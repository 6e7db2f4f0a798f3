"""The command line: each subcommand is one call into :mod:`gankit.api`.

A user mistake (:class:`gankit.errors.GankitError`) ends with a one-line message and exit code 2, no traceback.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__

EPILOG = """examples:
  gankit train                                   # the embedded default: MLP GAN on scikit-learn's digits
  gankit train configs/seed_gan_mnist.yaml --set data.root=../shared/data/mnist --out runs/seed
  gankit train --out runs/seed --resume --set train.steps=60000
  gankit sample runs/seed -n 10000 -o samples.npz
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for ``gankit``."""
    parser = argparse.ArgumentParser(prog="gankit", description="Train, sample and evaluate generative models.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"gankit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_train(sub)
    _add_sample(sub)
    return parser


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model from a YAML config (or the defaults)",
                       description="Train a model. The config is the defaults, then CONFIG, then --set overrides; "
                                   "the resolved config is saved in the run directory.")
    p.add_argument("config", nargs="?", help="YAML config (a short diff over the defaults); with --resume, "
                                             "defaults to RUN_DIR/config.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value, e.g. --set train.steps=1000 (repeatable)")
    p.add_argument("--out", metavar="RUN_DIR", help="run directory (default: runs/NNNNN-CONFIGNAME)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p.set_defaults(func=_train)


def _add_sample(sub) -> None:
    p = sub.add_parser("sample", help="draw samples from a trained run or checkpoint",
                       description="Draw samples from a run directory (its latest checkpoint) or a checkpoint "
                                   "file. FILE.png writes a grid; FILE.npz writes arr_0, uint8 (N, H, W, C).")
    p.add_argument("run", help="run directory or .safetensors checkpoint")
    p.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: fresh randomness)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="output .png or .npz")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (default cpu)")
    p.set_defaults(func=_sample)


def _train(args: argparse.Namespace) -> None:
    from .api import train

    run_dir = train(args.config, overrides=args.overrides, out=args.out, resume=args.resume,
                    overwrite=args.overwrite)
    grids = sorted((run_dir / "samples").glob("*.png"))
    print(f"run directory: {run_dir}")
    if grids:
        print(f"latest samples: {grids[-1]}")


def _sample(args: argparse.Namespace) -> None:
    from .api import load, save_samples
    from .errors import GankitError

    if args.n < 1:
        raise GankitError(f"-n must be a positive number of samples, got {args.n}")
    images = load(args.run, device=args.device).sample(args.n, seed=args.seed)
    print(f"wrote {args.n} samples to {save_samples(images, args.output)}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gankit`` command; returns the exit code."""
    from .errors import GankitError

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except GankitError as exc:
        print(f"gankit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gankit: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
