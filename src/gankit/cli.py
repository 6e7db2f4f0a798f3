"""The command line: each subcommand is one call into :mod:`gankit.api`.

A user mistake (:class:`gankit.errors.GankitError`) ends with a one-line message and exit code 2, no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .version import __version__

EPILOG = """examples:
  gankit train                                   # the embedded default: MLP GAN on scikit-learn's digits
  gankit train configs/seed_gan_mnist.yaml --set data.root=../shared/data/mnist --out runs/seed
  gankit train --out runs/seed --resume --set train.steps=60000
  gankit sample runs/seed -n 10000 -o samples.npz
  gankit latent interpolate runs/seed -o walk.png     # also: traverse, arithmetic "7 thick - 7 thin + 3 thin"
  gankit eval runs/seed --json                   # FID, KID, precision/recall, modes... against the test split
  gankit eval samples.npz --data mnist --set data.root=../shared/data/mnist
  gankit train configs/vae_mnist.yaml --set data.root=../shared/data/mnist --out runs/vae
  gankit eval runs/vae --iwae-k 5000 --iwae-n 1000   # test loss, IWAE NLL bound, reconstructions, FID...
  gankit encode runs/vae -o codes.npz --set data.root=../shared/data/mnist   # test-split codes and labels
  gankit decode runs/vae codes.npz -o decoded.png
  gankit train configs/regression_diabetes.yaml --out runs/diabetes   # an MLP regressor, test RMSE/R^2
  gankit predict runs/diabetes features.csv -o predictions.csv
  gankit evaluator train --data folder --set data.root=my_images -o my_evaluator.safetensors
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for ``gankit``."""
    parser = argparse.ArgumentParser(prog="gankit", description="Train, sample and evaluate generative models.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"gankit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_train(sub)
    _add_sample(sub)
    _add_latent(sub)
    _add_translate(sub)
    _add_project(sub)
    _add_eval(sub)
    _add_encode(sub)
    _add_predict(sub)
    _add_evaluator(sub)
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
    p.add_argument("--label", type=int, default=None, help="class-conditional models: draw every sample of this class")
    p.add_argument("--by-class", action="store_true", help="class-conditional models: a grid with one row per class "
                                                          "(-n samples per row)")
    p.add_argument("--truncation", type=float, default=None, metavar="PSI",
                   help="the truncation trick: redraw latent coordinates above PSI in magnitude")
    p.add_argument("--psi", type=float, default=None,
                   help="StyleGAN: truncation in W, w_avg + PSI (w - w_avg) (1: none, 0: the mean image)")
    p.set_defaults(func=_sample)


def _add_translate(sub) -> None:
    p = sub.add_parser("translate", help="translation models: translate an image, a folder or an .npz",
                       description="Translate images with a pix2pix or CycleGAN run. INPUT is one image file, a folder "
                                   "of images (written to the folder OUTPUT under the same names) or an .npz whose "
                                   "arr_0 holds uint8 (N, H, W, C) images (written to OUTPUT.npz the same way; with "
                                   "--samples K, K consecutive rows per input). Images are converted to the input "
                                   "domain's channels and resized to the run's size.")
    p.add_argument("run", help="run directory or .safetensors checkpoint")
    p.add_argument("input", help="an image file, a folder of images, or an .npz")
    p.add_argument("-o", "--output", required=True, help="output image (for one input image), folder or .npz")
    p.add_argument("--direction", default="AB", choices=["AB", "BA"], help="CycleGAN: which generator (default AB)")
    p.add_argument("--samples", type=int, default=1, metavar="K", help="outputs per input (pix2pix's noise)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--grid", metavar="FILE.png", help="also write a grid: inputs, outputs (K rows) and, for "
                                                     "CycleGAN, the return trip")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (default cpu)")
    p.set_defaults(func=_translate)


def _translate(args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    from PIL import Image

    from .api import load, read_samples, save_samples
    from .data.folder import list_images, read_images
    from .errors import GankitError
    from .images import save_grid, to_channels, to_uint8

    run = load(args.run, device=args.device)
    c_in, _ = run.domain_channels(args.direction)
    side = run.data_info["sample_shape"][-1]
    source = Path(args.input)
    if not source.exists():
        raise GankitError(f"no input at {source}")
    if source.suffix == ".npz":
        x, names = read_samples(source), None
        if x.dim() != 4:
            raise GankitError(f"{source}: arr_0 must hold images (N, H, W, C)")
        x = _fit_images(x, c_in, side, source)
    else:
        files = list_images(source)[0] if source.is_dir() else [source]
        x = torch.from_numpy(read_images(files, side, c_in).astype(np.float32) / 127.5 - 1).permute(0, 3, 1, 2)
        names = [f.relative_to(source) if source.is_dir() else f.name for f in files]
    out = run.translate(x, direction=args.direction, samples=args.samples, seed=args.seed)
    k = args.samples
    flat = out if k == 1 else out.reshape(-1, *out.shape[2:])  # input-major: K rows per input
    target = Path(args.output)
    if source.suffix == ".npz":
        np.savez(target, arr_0=to_uint8(flat))
        written = f"{len(flat)} translations to {target}"
    elif source.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        for i, name in enumerate(names):
            for j in range(k):
                path = target / Path(name).with_suffix(".png" if k == 1 else f".{j}.png")
                path.parent.mkdir(parents=True, exist_ok=True)
                arr = to_uint8(flat[i * k + j:i * k + j + 1])[0]  # (H, W, C): the image itself, unpadded
                Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).save(path)
        written = f"{len(flat)} translations to {target}/"
    elif k == 1:  # one image in, the image itself out (any format Pillow writes)
        arr = to_uint8(flat)[0]
        Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).save(target)
        written = f"the translation to {target}"
    else:  # one image, K outputs: a row with the input first
        channels = max(x.shape[1], flat.shape[1])
        save_samples(torch.cat([to_channels(x, channels), to_channels(flat, channels)]), target, nrow=k + 1)
        written = f"the input and {k} translations to {target}"
    if args.grid:
        rows = [x[:16]] + [out[:16] if k == 1 else out[:16, j] for j in range(k)]
        if "generator_ba" in run.modules and k == 1:
            back = "BA" if args.direction == "AB" else "AB"
            rows.append(run.translate(out[:16], direction=back))
        channels = max(r.shape[1] for r in rows)
        save_grid(torch.cat([to_channels(r, channels) for r in rows]), args.grid, nrow=len(rows[0]))
        written += f"; grid in {args.grid}"
    print(f"wrote {written}")


def _add_project(sub) -> None:
    p = sub.add_parser("project", help="StyleGAN: find the styles of your own images, then edit them",
                       description="Project images into a StyleGAN run's W space by optimisation (pixel MSE plus "
                                   "the evaluator's features), then draw edits: each keeps the projection's --keep "
                                   "styles and takes the others from random codes. INPUT: image files or an .npz "
                                   "(arr_0 uint8 (N, H, W, C)); images are converted to the run's channels, resized "
                                   "to its size (without the border of data.pad, which is added back). The grid "
                                   "has one row per image: the input, its projection, then the edits.")
    p.add_argument("run", help="run directory or .safetensors checkpoint")
    p.add_argument("inputs", nargs="+", help="image files, or one .npz")
    p.add_argument("-o", "--output", required=True, metavar="FILE.png", help="the grid")
    p.add_argument("--steps", type=int, default=300, help="optimisation steps (default 300)")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--w-plus", action="store_true", help="one w per layer (closer fits, less editable)")
    p.add_argument("--feature-weight", type=float, default=1.0, help="weight of the evaluator's feature loss "
                                                                     "(0: pixels only)")
    p.add_argument("--evaluator", default=None, help="evaluator for the feature loss (default: the run's dataset's)")
    p.add_argument("--edits", type=int, default=6, help="edits per image (default 6)")
    p.add_argument("--keep", default="coarse", help="style groups each edit keeps: coarse, middle, fine, "
                                                    "comma-separated (default coarse: the digit's shape)")
    p.add_argument("--save", metavar="FILE.npz", help="also save the styles (ws), projections and their MSE")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_project)


def _project(args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    import torch.nn.functional as F

    from .api import load, read_samples, save_samples
    from .data.folder import read_images
    from .errors import GankitError
    from .latent import style

    run = load(args.run, device=args.device)
    G = run.generator
    style.require_stylegan(G)
    if args.edits > 0:
        style.parse_groups(args.keep)  # before the projection's minutes, not after
    channels, side = G.shape[0], G.shape[-1]
    pad = run.config.data.pad
    inner = side - 2 * pad
    sources = [Path(s) for s in args.inputs]
    for s in sources:
        if not s.exists():
            raise GankitError(f"no input at {s}")
    if len(sources) == 1 and sources[0].suffix == ".npz":
        x = read_samples(sources[0])
        if x.dim() != 4:
            raise GankitError(f"{sources[0]}: arr_0 must hold images (N, H, W, C)")
        if x.shape[-1] != side or x.shape[-2] != side:  # at the run's full size (its own samples): as they are
            x = F.pad(_fit_images(x, channels, inner, sources[0]), (pad,) * 4, value=-1.0)
        else:
            x = _fit_images(x, channels, side, sources[0])
    else:
        x = torch.from_numpy(read_images(sources, inner, channels).astype(np.float32) / 127.5 - 1).permute(0, 3, 1, 2)
        x = F.pad(x, (pad,) * 4, value=-1.0)
    evaluator = None
    if args.feature_weight > 0:
        try:
            evaluator = _evaluator_for(run, args.evaluator)
        except GankitError as err:
            print(f"note: pixels only ({err})")
    g = run.rng(args.seed)
    result = style.project(G, x, steps=args.steps, lr=args.lr, evaluator=evaluator,
                           feature_weight=args.feature_weight, w_plus=args.w_plus, crop=pad, generator=g)
    rows = [torch.cat([x[i:i + 1], result.images[i:i + 1]]) for i in range(len(x))]
    if args.edits > 0:
        edits = style.edit_grid(G, result, args.edits, args.keep, generator=g)
        rows = [torch.cat([r, edits[i * args.edits:(i + 1) * args.edits]]) for i, r in enumerate(rows)]
    save_samples(torch.cat(rows), args.output, nrow=2 + max(0, args.edits))
    if args.save:
        np.savez(args.save, ws=result.ws.numpy(), images=result.images.numpy(), mse=result.mse.numpy())
    mse = ", ".join(f"{v:.4f}" for v in result.mse.tolist())
    print(f"projected {len(x)} image(s) in {args.steps} steps: pixel MSE {mse} (on [-1, 1]); grid in {args.output}"
          + (f"; styles in {args.save}" if args.save else ""))


def _fit_images(x, channels: int, side: int, source: Path):
    """.npz images to the input domain: grey <-> RGB (ITU-R 601 luma), a square resize by bilinear interpolation."""
    import torch.nn.functional as F

    if x.shape[1] != channels:
        if x.shape[1] == 3 and channels == 1:
            x = (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
        elif x.shape[1] == 1 and channels == 3:
            x = x.expand(-1, 3, -1, -1)
        else:
            from .errors import GankitError

            raise GankitError(f"{source}: images with {x.shape[1]} channels; the input domain has {channels}")
    if x.shape[-1] != side or x.shape[-2] != side:
        x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False, antialias=True)
    return x.contiguous()


def _add_latent(sub) -> None:
    p = sub.add_parser("latent", help="interpolation, traversal and arithmetic grids in a generator's latent space")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("run", help="run directory or .safetensors checkpoint")
    common.add_argument("-o", "--output", required=True, metavar="FILE.png")
    common.add_argument("--seed", type=int, default=0)
    common.add_argument("--device", default="cpu")
    common.add_argument("--label", type=int, default=None, help="class for a conditional generator (default 0)")
    i = verbs.add_parser("interpolate", parents=[common], help="rows that walk between random codes")
    i.add_argument("--rows", type=int, default=8)
    i.add_argument("--steps", type=int, default=10)
    i.add_argument("--linear", action="store_true", help="straight lines instead of spherical interpolation")
    i.add_argument("--space", choices=["z", "w"], default="z", help="StyleGAN: interpolate codes z (spherical) or "
                                                                    "styles w (straight lines); default z")
    mx = verbs.add_parser("mix", parents=[common], help="StyleGAN: style mixing grid",
                          description="Rows: codes A, codes B, then A taking B's coarse, middle and fine styles.")
    mx.add_argument("--cols", type=int, default=6)
    mx.add_argument("--psi", type=float, default=None, help="truncate both codes' styles in W first")
    tr = verbs.add_parser("truncation", parents=[common], help="StyleGAN: the same codes at several psi",
                          description="One row per psi: w_avg + psi (w - w_avg), psi 0 being the mean image.")
    tr.add_argument("--psi", default="1,0.8,0.6,0.4,0.2,0", help="comma-separated psi values, one row each")
    tr.add_argument("--cols", type=int, default=8)
    t = verbs.add_parser("traverse", parents=[common], help="one row per latent dimension, swept over [-r, r]")
    t.add_argument("--dims", default=None, help="comma-separated dimensions (default: the first 10)")
    t.add_argument("--steps", type=int, default=9)
    t.add_argument("--radius", type=float, default=3.0)
    m = verbs.add_parser("manifold", parents=[common], help="two latent dimensions over the prior's quantiles "
                                                            "(a VAE with a 2-D latent space: all of it)")
    m.add_argument("--steps", type=int, default=20)
    m.add_argument("--dims", default="0,1", help="the two dimensions (default 0,1)")
    a = verbs.add_parser("arithmetic", parents=[common], help="add and subtract mean codes of attributes",
                         description="Rows: samples around each term's mean code, then around the result. Terms "
                                     "are classes the evaluator recognises, optionally thick or thin: "
                                     "'7 thick - 7 thin + 3 thin'.")
    a.add_argument("expression")
    a.add_argument("-n", type=int, default=4000, help="codes drawn to find the attribute means (default 4000)")
    a.add_argument("--evaluator", default=None, help="evaluator (default: the run's dataset's own)")
    p.set_defaults(func=_latent)


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="score a run or a file of samples against the dataset's test split",
                       description="Evaluate a run directory or checkpoint (samples drawn from its generator), or an "
                                   ".npz of samples (arr_0: uint8 (N, H, W, C) images, or float (N, 2) points) with "
                                   "--data. Features come from an evaluator trained by gankit (see README). An autoencoder's "
                                   "run also gets its reconstruction scores; a regressor's gets its test RMSE, MAE "
                                   "and R^2.")
    p.add_argument("target", help="run directory, .safetensors checkpoint, or .npz of samples")
    p.add_argument("--data", metavar="NAME", help="the dataset the .npz samples imitate (mnist, digits, toy2d, ...)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="data.KEY=VALUE",
                   help="override a data setting, e.g. --set data.root=../shared/data/mnist (repeatable)")
    p.add_argument("-n", "--n", type=int, default=None, help="samples to draw from a run (default 10000; 2500 "
                                                           "for 2-D points)")
    p.add_argument("--seed", type=int, default=0, help="seed of the drawn samples and of KID's subsets (default 0)")
    p.add_argument("--evaluator", help="built-in evaluator name or .safetensors file (default: the dataset's own)")
    p.add_argument("--k", type=int, default=3, help="neighbours for precision/recall/density/coverage (default 3)")
    p.add_argument("--kid-subsets", type=int, default=100, help="KID subsets (default 100)")
    p.add_argument("--kid-subset-size", type=int, default=None, help="KID subset size (default min(1000, n))")
    p.add_argument("--force", action="store_true", help="compute despite a failed size guard (flagged)")
    p.add_argument("--no-cache", action="store_true", help="recompute the reference features")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (default cpu)")
    p.add_argument("--iwae-k", type=int, default=0, metavar="K",
                   help="VAE runs: also the importance-weighted bound with K samples per image (5000 as published)")
    p.add_argument("--iwae-n", type=int, default=None, metavar="N",
                   help="VAE runs: the bounds on the first N test images (default all)")
    p.add_argument("--psi", type=float, default=None, help="StyleGAN runs: score samples truncated in W with this psi")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_eval)


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="regressors: predictions for a table of features",
                       description="Predict with a regressor run: INPUTS is a .csv of numbers (one row per sample, no "
                                   "header) or an .npz with an 'x' array (N, D), in the features' own units; the "
                                   "predictions (N, T), in the targets' units, go to a .csv or to an .npz ('pred').")
    p.add_argument("run", help="run directory or .safetensors checkpoint")
    p.add_argument("inputs", metavar="INPUTS", help=".csv or .npz of features")
    p.add_argument("-o", "--output", required=True, metavar="FILE.csv|FILE.npz")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (default cpu)")
    p.set_defaults(func=_predict)


def _add_encode(sub) -> None:
    p = sub.add_parser("encode", help="autoencoders: codes of a dataset split or of an .npz of images",
                       description="Write the codes of an autoencoder or VAE (the posterior mean) to an .npz: "
                                   "'codes' float32 (N, d) and, for a labelled split, 'labels' int64 (N,).")
    p.add_argument("run", help="run directory or .safetensors checkpoint")
    p.add_argument("inputs", nargs="?", help=".npz of images (arr_0, uint8 (N, H, W, C)); default: a split of the "
                                            "run's own dataset")
    p.add_argument("-o", "--output", required=True, metavar="FILE.npz")
    p.add_argument("--split", default="test", choices=["train", "test"], help="which split (default test)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="data.KEY=VALUE",
                   help="override a data setting, e.g. --set data.root=../shared/data/mnist (repeatable)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (default cpu)")
    p.set_defaults(func=_encode)
    d = sub.add_parser("decode", help="autoencoders: images from an .npz of codes",
                       description="Decode the 'codes' array of an .npz (as gankit encode writes) into images.")
    d.add_argument("run", help="run directory or .safetensors checkpoint")
    d.add_argument("codes", help=".npz with a 'codes' array (N, d)")
    d.add_argument("-o", "--output", required=True, metavar="FILE", help="output .png (grid) or .npz")
    d.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (default cpu)")
    d.set_defaults(func=_decode)


def _add_evaluator(sub) -> None:
    p = sub.add_parser("evaluator", help="train an evaluator (feature network) on your own labelled images")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    t = verbs.add_parser("train", help="train a CNN classifier whose features the metrics use",
                         description="Train an evaluator on a labelled dataset (a folder with one sub-folder per "
                                     "class, optionally split into train/ and test/), score it on the test split "
                                     "(or a fixed 10%% hold-out) and write it as one .safetensors file.")
    t.add_argument("--data", required=True, metavar="NAME", help="data source (folder, mnist, digits, ...)")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="data.KEY=VALUE",
                   help="data settings, e.g. --set data.root=DIR --set data.size=32 (repeatable)")
    t.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write the .safetensors file")
    t.add_argument("--epochs", type=int, default=4)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--width", type=int, default=32, help="channels of the first convolution (default 32)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="cpu")
    t.set_defaults(func=_evaluator_train)


def _train(args: argparse.Namespace) -> None:
    from .api import train

    run_dir = train(args.config, overrides=args.overrides, out=args.out, resume=args.resume,
                    overwrite=args.overwrite)
    if int(os.environ.get("RANK", "0")) != 0:
        return  # under torchrun, rank 0 reports
    grids = sorted((run_dir / "samples").glob("*.png"))
    print(f"run directory: {run_dir}")
    if grids:
        print(f"latest samples: {grids[-1]}")


def _sample(args: argparse.Namespace) -> None:
    from .api import load, save_samples
    from .errors import GankitError

    if args.n < 1:
        raise GankitError(f"-n must be a positive number of samples, got {args.n}")
    run = load(args.run, device=args.device)
    labels, nrow = class_labels(run, args.n, args.label, args.by_class)
    images = run.sample(len(labels) if labels is not None else args.n, seed=args.seed, labels=labels,
                        truncation=args.truncation, psi=args.psi)
    print(f"wrote {len(images)} samples to {save_samples(images, args.output, nrow=nrow)}")


def class_labels(run, n: int, label: int | None, by_class: bool):
    """(labels or None, grid columns or None) for ``gankit sample``'s --label and --by-class."""
    import torch

    from .errors import GankitError

    k = getattr(run.generator, "num_classes", 0)
    if (label is not None or by_class) and not k:
        raise GankitError("--label and --by-class need a class-conditional model (model.conditioning)")
    if label is not None:
        if not 0 <= label < k:
            raise GankitError(f"--label {label} is not a class of this model: expected 0..{k - 1}")
        return torch.full((n,), label, dtype=torch.long, device=run.device), None
    if by_class:
        return torch.arange(k, device=run.device).repeat_interleave(n), n
    return None, None


def _latent(args: argparse.Namespace) -> None:
    from . import latent
    from .api import load, save_samples
    from .latent import style

    run = load(args.run, device=args.device)
    G, g = run.generator, run.rng(args.seed)
    if args.verb == "interpolate" and args.space == "w":
        images, cols = style.w_interpolation_grid(G, args.rows, args.steps, generator=g), args.steps
    elif args.verb == "interpolate":
        images, cols = latent.interpolation_grid(G, args.rows, args.steps, not args.linear, generator=g,
                                                 label=args.label), args.steps
    elif args.verb == "mix":
        images, names = style.mixing_grid(G, args.cols, generator=g, psi=args.psi)
        cols = args.cols
        print("rows: " + "; ".join(names))
    elif args.verb == "truncation":
        psis = _float_list(args.psi, "--psi")
        images, cols = style.truncation_grid(G, psis, args.cols, generator=g), args.cols
        print("rows: psi = " + ", ".join(f"{p:g}" for p in psis))
    elif args.verb == "traverse":
        dims = None if args.dims is None else _int_list(args.dims, "--dims")
        images, cols = latent.traversal_grid(G, dims, args.steps, args.radius, generator=g, label=args.label), \
            args.steps
    elif args.verb == "manifold":
        dims = _int_list(args.dims, "--dims")
        images, cols = latent.manifold_grid(G, args.steps, dims, label=args.label), args.steps
    else:
        images, cols = latent.arithmetic(G, _evaluator_for(run, args.evaluator), args.expression, n=args.n,
                                         generator=g), 8
    print(f"wrote {save_samples(images, args.output, nrow=cols)}")


def _evaluator_for(run, name: str | None):
    from .errors import GankitError
    from .metrics.evaluator import default_evaluator, load_evaluator

    name = name or run.config.train.evaluator or default_evaluator(run.config.data.name, run.config.data.domain)
    if name is None:
        raise GankitError("this run's data has no built-in evaluator: pass --evaluator FILE.safetensors")
    return load_evaluator(name, run.device)


def _eval(args: argparse.Namespace) -> None:
    import json

    from .api import evaluate

    result = evaluate(args.target, data=args.data, overrides=args.overrides, n=args.n, seed=args.seed,
                      iwae_k=args.iwae_k, iwae_n=args.iwae_n, psi=args.psi,
                      evaluator=args.evaluator, k=args.k, kid_subsets=args.kid_subsets,
                      kid_subset_size=args.kid_subset_size, force=args.force, cache=not args.no_cache,
                      device=args.device)
    print(json.dumps(result) if args.json else format_result(result))


def _float_list(text: str, flag: str) -> list[float]:
    from .errors import GankitError

    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise GankitError(f"{flag} {text!r}: expected comma-separated numbers, e.g. 1,0.7,0.5") from None
    if not values:
        raise GankitError(f"{flag} is empty: expected comma-separated numbers")
    return values


def _int_list(text: str, flag: str) -> list[int]:
    """Comma-separated integers, or a one-line error that names the flag."""
    from .errors import GankitError

    try:
        return [int(item) for item in text.split(",")]
    except ValueError:
        raise GankitError(f"{flag} {text!r}: expected comma-separated integers, e.g. 0,1") from None


def _predict(args: argparse.Namespace) -> None:
    import numpy as np

    from .api import load
    from .errors import GankitError

    out = Path(args.output)
    if out.suffix.lower() not in (".csv", ".npz"):
        raise GankitError(f"-o {out}: predictions are written to a .csv or an .npz file")
    preds = load(args.run, device=args.device).predict(read_table(args.inputs))
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npz":
        np.savez(out, pred=preds)
    else:
        np.savetxt(out, preds, delimiter=",", fmt="%.8g")
    print(f"wrote {preds.shape[0]} predictions of {preds.shape[1]} target(s) to {out}")


def read_table(path: str | Path):
    """Features (N, D) float32 from a headerless .csv or from the 'x' array of an .npz; errors name the file."""
    import numpy as np

    from .data.npyfile import load_npz
    from .errors import GankitError

    path = Path(path)
    if path.suffix.lower() not in (".csv", ".npz"):
        raise GankitError(f"{path}: features come in a .csv (numbers only, one row per sample) or an .npz with 'x'")
    try:
        if path.suffix.lower() == ".csv":
            x = np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2)
        else:
            with load_npz(path) as npz:
                if "x" not in npz.files:
                    raise GankitError(f"{path} has no 'x' array (it holds {', '.join(npz.files) or 'nothing'}); save "
                                      "features as np.savez(path, x=features)")
                x = np.asarray(npz["x"], dtype=np.float32)
    except (OSError, ValueError) as exc:
        hint = "; the .csv must hold numbers only, with no header row" if path.suffix.lower() == ".csv" else ""
        raise GankitError(f"cannot read features from {path}: {exc}{hint}") from None
    if x.ndim != 2 or not np.isfinite(x).all():
        raise GankitError(f"{path}: expected a finite (N, D) table of features, got shape {x.shape}"
                          + ("" if np.isfinite(x).all() else " with NaN or Inf"))
    return x


def _encode(args: argparse.Namespace) -> None:
    import numpy as np

    from .api import encode
    from .errors import GankitError

    if not args.output.endswith(".npz"):
        raise GankitError(f"-o {args.output}: codes are written to an .npz file")
    codes, labels = encode(args.run, args.inputs, split=args.split, overrides=args.overrides, device=args.device)
    arrays = {"codes": codes.numpy()} | ({} if labels is None else {"labels": labels.numpy()})
    np.savez(args.output, **arrays)
    print(f"wrote {codes.shape[0]} codes of {codes.shape[1]} dimensions to {args.output}")


def _decode(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from .api import load, save_samples
    from .data.npyfile import load_npz
    from .errors import GankitError

    if not args.codes.endswith(".npz"):
        raise GankitError(f"{args.codes}: codes come in an .npz file with a 'codes' array, as gankit encode writes")
    try:
        with load_npz(args.codes) as npz:
            codes = torch.from_numpy(np.asarray(npz["codes"], dtype=np.float32))
    except (OSError, ValueError, KeyError) as exc:
        raise GankitError(f"cannot read codes from {args.codes}: {exc} (expected an .npz with a 'codes' array, as "
                          "gankit encode writes)") from None
    images = load(args.run, device=args.device).decode(codes)
    print(f"wrote {len(images)} decoded samples to {save_samples(images, args.output)}")


def format_result(result: dict) -> str:
    """A readable table of an evaluation result and how it was computed."""
    prov = result["provenance"]
    lines = [f"{prov['samples']}: {prov['num_samples']} samples vs {prov['reference']['dataset']} "
             f"{prov['reference']['split']} ({prov['reference']['size']})"]
    for key, value in result.items():
        if key.endswith("_std"):
            continue
        if isinstance(value, float):
            std = result.get(f"{key}_std")
            lines.append(f"  {key:<18} {value:.4f}" + (f" ± {std:.4f}" if std is not None else ""))
        elif isinstance(value, int) and not isinstance(value, bool) and key != "step":
            lines.append(f"  {key:<18} {value}")
    ev = prov["evaluator"]
    lines.append(f"features: {ev['name']}" + (f" (sha256 {ev['sha256'][:12]}, {prov['feature_dim']}-d)"
                                              if "sha256" in ev else ""))
    lines += [f"warning: {w}" for w in result["warnings"]]
    return "\n".join(lines)


def _evaluator_train(args: argparse.Namespace) -> None:
    from .api import _data_config
    from .metrics.train_evaluator import train_evaluator

    data_cfg = _data_config({"name": args.data}, args.overrides)
    record = train_evaluator(data_cfg, args.output, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                             width=args.width, seed=args.seed, device=args.device)
    print(f"wrote {args.output}: test accuracy {record['test_accuracy']:.4f} on {record['test_size']} images "
          f"({record['test_split']}), sha256 {record['sha256']}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gankit`` command; returns the exit code."""
    from .errors import GankitError, Interrupted

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except GankitError as exc:
        rank = int(os.environ.get("RANK", "0"))
        if rank == 0 or not isinstance(exc, Interrupted):  # under torchrun, rank 0 reports a stop for all
            print(f"gankit: error: {'' if rank == 0 else f'[rank {rank}] '}{exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        print("gankit: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
