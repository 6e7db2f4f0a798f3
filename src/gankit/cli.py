"""The command line: each subcommand is one call into :mod:`gankit.api`.

A user mistake (:class:`gankit.errors.GankitError`) ends with a one-line message and exit code 2, no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from .version import __version__

EPILOG = """examples (more in docs/):
  gankit train                                   # the embedded default: MLP GAN on scikit-learn's digits
  gankit train seed_gan_mnist --set data.root=../shared/data/mnist --out runs/seed   # a shipped config, by name
  gankit train dcgan_mnist --print-config        # the resolved config; --dry-run: one step, nothing written
  gankit sample runs/seed -n 10000 -o samples.npz
  gankit latent interpolate runs/seed -o walk.png     # also: traverse, arithmetic "7 thick - 7 thin + 3 thin"
  gankit eval runs/seed --json                   # FID, KID, precision/recall, modes... against the test split
  gankit predict runs/diabetes features.csv -o predictions.csv
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for ``gankit``."""
    parser = argparse.ArgumentParser(prog="gankit", description="Train, sample and evaluate generative models.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"gankit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    threads = argparse.ArgumentParser(add_help=False)  # every verb that computes takes --threads
    threads.add_argument("--quiet", action="store_true",
                         help="no progress bars (they show on a terminal only, and training's at most once a "
                              "minute in a log file)")
    threads.add_argument("--threads", type=_positive, default=None, metavar="N",
                         help="CPU threads for PyTorch (default: one per core); on a CPU other programs keep busy, "
                              "--threads 1 is often several times faster")
    dev = argparse.ArgumentParser(add_help=False, parents=[threads])  # ... and --device
    dev.add_argument("--device", default="auto", help="auto (default: CUDA when present, else CPU), cpu, cuda, cuda:N")
    run = argparse.ArgumentParser(add_help=False, parents=[dev])  # what every verb on a trained run takes
    run.add_argument("run", help="run directory, .safetensors checkpoint, model folder (gankit export --format hub) or "
                                 "hf://USER/NAME")
    data = argparse.ArgumentParser(add_help=False)
    data.add_argument("--set", dest="overrides", action="append", default=[], metavar="data.KEY=VALUE",
                      help="override a data setting, e.g. --set data.root=../shared/data/mnist (repeatable)")
    _add_train(sub, threads)  # train's --device is a shortcut for train.device: no default of its own
    for add in (_add_sample, _add_latent, _add_translate, _add_project, _add_eval, _add_encode, _add_predict,
                _add_export, _add_evaluator, _add_serve):
        add(sub, run, data, dev)
    _add_looking(sub)
    _add_sweep(sub, threads)
    return parser


def _positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _add_train(sub, threads) -> None:
    p = sub.add_parser("train", parents=[threads], help="train a model from a YAML config (or the defaults)",
                       description="Train a model. The config is the defaults, then CONFIG, then --set overrides; "
                                   "the resolved config is saved in the run directory.")
    p.add_argument("config", nargs="?", help="YAML config (a short diff over the defaults) or a shipped config's "
                                             "name (seed_gan_mnist, ...); with --resume, RUN_DIR/config.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value, e.g. --set train.steps=1000 (repeatable)")
    p.add_argument("--out", metavar="RUN_DIR", help="run directory (default: runs/NNNNN-CONFIGNAME)")
    p.add_argument("--device", default=None, help="shortcut for --set train.device=DEVICE: auto (the default: CUDA "
                                                  "when present, else CPU), cpu, cuda, cuda:N")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory (a gankit run only)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
    p.add_argument("--dry-run", action="store_true", help="build data and models, train one step, write nothing")
    p.set_defaults(func=_train, parser=p)


NO_EMA = ("runs with train.ema: use the trained generator weights, not their moving average (the default), from "
          "a run directory or checkpoint")


def _add_sample(sub, run, data, dev) -> None:
    p = sub.add_parser("sample", parents=[run], help="draw samples from a trained run or checkpoint",
                       description="Draw samples from a run directory (its latest checkpoint) or a checkpoint "
                                   "file. FILE.png writes a grid; FILE.npz writes arr_0, uint8 (N, H, W, C).")
    p.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: fresh randomness)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="output .png or .npz")
    p.add_argument("--label", type=int, default=None, help="class-conditional models: draw every sample of this class")
    p.add_argument("--by-class", action="store_true", help="class-conditional models: one row of -n per class")
    p.add_argument("--truncation", type=float, default=None, metavar="THRESHOLD",
                   help="truncation in z (any generator): redraw latent coordinates above THRESHOLD in magnitude "
                        "(smaller: more typical, less varied samples)")
    p.add_argument("--psi", type=float, default=None,
                   help="truncation in W (StyleGAN only): w_avg + PSI (w - w_avg) (1: none, 0: the mean image)")
    p.add_argument("--no-ema", dest="ema", action="store_false", help=NO_EMA)
    p.set_defaults(func=_sample, parser=p)


def _add_translate(sub, run, data, dev) -> None:
    p = sub.add_parser("translate", parents=[run], help="translation models: translate an image, a folder or an .npz",
                       description="Translate images with a pix2pix or CycleGAN run. INPUT is one image file, a folder "
                                   "of images (written to the folder OUTPUT under the same names) or an .npz whose "
                                   "arr_0 holds uint8 (N, H, W, C) images (written to OUTPUT.npz; --samples K: K rows "
                                   "per input). Images get the input domain's channels and the run's size.")
    p.add_argument("input", help="an image file, a folder of images, or an .npz")
    p.add_argument("-o", "--output", required=True, help="output image (for one input image), folder or .npz")
    p.add_argument("--direction", default="AB", choices=["AB", "BA"], help="CycleGAN: which generator (default AB)")
    p.add_argument("--samples", type=int, default=1, metavar="K", help="outputs per input (pix2pix's noise)")
    p.add_argument("--seed", type=int, default=0, help="seed of pix2pix's noise (default %(default)s)")
    p.add_argument("--grid", metavar="FILE.png", help="also a grid of the first 16 inputs, their outputs (K rows) "
                                                     "and, for CycleGAN, the return trip")
    p.set_defaults(func=_translate, parser=p)


def _add_project(sub, run, data, dev) -> None:
    p = sub.add_parser("project", parents=[run], help="StyleGAN: find the styles of your own images, then edit them",
                       description="Project images into a StyleGAN run's W space by optimisation (pixel MSE plus "
                                   "the evaluator's features), then draw edits that keep the projection's --keep "
                                   "styles and take the others from random codes. INPUT: image files or an .npz "
                                   "(arr_0 uint8 (N, H, W, C)), converted to the run's channels and size (data.pad's "
                                   "border added back). One row per image: input, projection, edits.")
    p.add_argument("inputs", nargs="+", help="image files, or one .npz")
    p.add_argument("-o", "--output", required=True, metavar="FILE.png", help="the grid")
    p.add_argument("--steps", type=int, default=300, help="optimisation steps (default 300)")
    p.add_argument("--lr", type=float, default=0.1, help="the optimiser's learning rate (default %(default)s)")
    p.add_argument("--w-plus", action="store_true", help="one w per layer (closer fits, less editable)")
    p.add_argument("--starts", type=int, default=1, help="starting points per image, the best kept: the mean w, "
                                                         "then random codes (default 1: the mean w only)")
    p.add_argument("--feature-weight", type=float, default=1.0, help="weight of the evaluator's feature loss "
                                                                     "(0: pixels only)")
    p.add_argument("--evaluator", default=None, help="evaluator for the feature loss (default: the run's dataset's)")
    p.add_argument("--edits", type=int, default=6, help="edits per image (default 6)")
    p.add_argument("--keep", default="coarse", help="style groups each edit keeps: coarse, middle, fine, "
                                                    "comma-separated (default coarse: the digit's shape)")
    p.add_argument("--save", metavar="FILE.npz", help="also save the styles (ws), projections and their MSE")
    p.add_argument("--seed", type=int, default=0, help="seed of the start and of the edits' codes (default "
                                                       "%(default)s)")
    p.set_defaults(func=_project, parser=p)


def _add_latent(sub, run, data, dev) -> None:
    p = sub.add_parser("latent", help="interpolation, traversal and arithmetic grids in a generator's latent space",
                       description="Grids that show what a trained generator's latent space holds: walks between "
                                   "codes, one dimension at a time, a 2-D manifold, attribute arithmetic and, for "
                                   "StyleGAN, style mixing and truncation. `gankit latent VERB --help` for each.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True, help="the grid to draw")
    common = argparse.ArgumentParser(add_help=False, parents=[run])
    common.add_argument("-o", "--output", required=True, metavar="FILE.png", help="the grid")
    common.add_argument("--seed", type=int, default=0, help="seed of the random codes (default %(default)s)")
    common.add_argument("--label", type=int, default=None, help="class for a conditional generator (default 0)")
    i = verbs.add_parser("interpolate", parents=[common], help="rows that walk between random codes",
                         description="Each row walks between two random codes (spherically; --linear: straight).")
    i.add_argument("--rows", type=int, default=8, help="walks, one per row (default %(default)s)")
    i.add_argument("--steps", type=int, default=10, help="images per walk, ends included (default %(default)s)")
    i.add_argument("--linear", action="store_true", help="straight lines instead of spherical interpolation")
    i.add_argument("--space", choices=["z", "w"], default="z", help="StyleGAN: interpolate codes z (spherical) or "
                                                                    "styles w (straight lines); default z")
    mx = verbs.add_parser("mix", parents=[common], help="StyleGAN: style mixing grid",
                          description="Rows: codes A, codes B, then A taking B's coarse, middle and fine styles.")
    mx.add_argument("--cols", type=int, default=6, help="code pairs, one per column (default %(default)s)")
    mx.add_argument("--psi", type=float, default=None, help="truncate both codes' styles in W first")
    tr = verbs.add_parser("truncation", parents=[common], help="StyleGAN: the same codes at several psi",
                          description="One row per psi: w_avg + psi (w - w_avg), psi 0 being the mean image.")
    tr.add_argument("--psi", default="1,0.8,0.6,0.4,0.2,0", help="psi values, one row each (default %(default)s)")
    tr.add_argument("--cols", type=int, default=8, help="codes, one per column (default %(default)s)")
    t = verbs.add_parser("traverse", parents=[common], help="one row per latent dimension, swept over [-r, r]",
                         description="One random code; each row moves one latent dimension from -RADIUS to +RADIUS "
                                     "in --steps images, the others held: what each dimension controls.")
    t.add_argument("--dims", default=None, help="comma-separated dimensions, one row each (default: the first 10)")
    t.add_argument("--steps", type=int, default=9, help="images per row (default %(default)s)")
    t.add_argument("--radius", type=float, default=3.0, help="the sweep's end in prior s.d. (default %(default)s)")
    m = verbs.add_parser("manifold", parents=[common], help="two latent dimensions over the prior's quantiles "
                                                            "(a VAE with a 2-D latent space: all of it)",
                         description="A STEPS x STEPS grid: two latent dimensions set to evenly spaced quantiles of "
                                     "the standard normal prior (the other dimensions 0), as in Kingma and Welling's "
                                     "figure; for a VAE with a 2-D latent space it shows the whole learned manifold.")
    m.add_argument("--steps", type=int, default=20, help="a STEPS x STEPS grid (default %(default)s)")
    m.add_argument("--dims", default="0,1", help="the two dimensions (default %(default)s)")
    a = verbs.add_parser("arithmetic", parents=[common], help="add and subtract mean codes of attributes",
                         description="Rows: samples around each term's mean code, then around the result. Terms "
                                     "are classes the evaluator recognises, optionally thick or thin: "
                                     "'7 thick - 7 thin + 3 thin'.")
    a.add_argument("expression", help="e.g. '7 thick - 7 thin + 3 thin'")
    a.add_argument("-n", type=int, default=4000, help="codes drawn to find the attribute means (default %(default)s)")
    a.add_argument("--evaluator", default=None, help="evaluator (default: the run's dataset's own)")
    p.set_defaults(func=_latent)
    for leaf in (i, mx, tr, t, m, a):
        leaf.set_defaults(parser=leaf)  # the verb's own usage line on a bad argument


def _add_eval(sub, run, data, dev) -> None:
    p = sub.add_parser("eval", parents=[data, dev], help="score a run or an .npz of samples against the test split",
                       description="Evaluate a run directory or checkpoint (samples drawn from its generator), or an "
                                   ".npz of samples (arr_0: uint8 (N, H, W, C) images, or float (N, 2) points) with "
                                   "--data. Features come from an evaluator trained by gankit (see docs/evaluation.md)."
                                   " An autoencoder's run also gets its reconstruction scores; a regressor's gets its "
                                   "test RMSE, MAE and R^2.")
    p.add_argument("target", help="run directory, .safetensors checkpoint, model folder, hf://USER/NAME, or .npz of "
                                  "samples")
    p.add_argument("--data", metavar="NAME", help="the dataset the .npz samples imitate (mnist, digits, toy2d, ...)")
    p.add_argument("-n", type=int, default=None, help="samples to draw from a run (default 10000; 2500 "
                                                           "for 2-D points, 26000 for stacked_mnist)")
    p.add_argument("--seed", type=int, default=0, help="seed of the drawn samples and of KID's subsets (default 0)")
    p.add_argument("--evaluator", help="built-in evaluator name or .safetensors file (default: the dataset's own)")
    p.add_argument("--k", type=int, default=3, help="neighbours for precision/recall/density/coverage (default 3)")
    p.add_argument("--kid-subsets", type=int, default=100, help="KID subsets (default 100)")
    p.add_argument("--kid-subset-size", type=int, default=None, help="KID subset size (default min(1000, n))")
    p.add_argument("--force", action="store_true", help="compute despite a failed size guard (flagged)")
    p.add_argument("--no-cache", action="store_true", help="recompute the reference features")
    p.add_argument("--iwae-k", type=int, default=0, metavar="K",
                   help="VAE runs: also the importance-weighted bound with K samples per image (5000 as published)")
    p.add_argument("--iwae-n", type=int, default=None, metavar="N",
                   help="VAE runs: the bounds on the first N test images (default all)")
    p.add_argument("--psi", type=float, default=None, help="StyleGAN runs: score samples truncated in W with this psi")
    p.add_argument("--no-ema", dest="ema", action="store_false", help=NO_EMA + " (written to ...-raw.json)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_eval, parser=p)


def _add_predict(sub, run, data, dev) -> None:
    p = sub.add_parser("predict", parents=[run], help="regressors: predictions for a table of features",
                       description="Predict with a regressor run: INPUTS is a .csv of numbers (one row per sample, no "
                                   "header) or an .npz with an 'x' array (N, D), in the features' own units; the "
                                   "predictions (N, T), in the targets' units, go to a .csv or to an .npz ('pred').")
    p.add_argument("inputs", metavar="INPUTS", help=".csv or .npz of features")
    p.add_argument("-o", "--output", required=True, metavar="FILE.csv|FILE.npz",
                   help="where the predictions go: a headerless .csv, or an .npz ('pred')")
    p.set_defaults(func=_predict, parser=p)


def _add_encode(sub, run, data, dev) -> None:
    p = sub.add_parser("encode", parents=[run, data], help="autoencoders: codes of a dataset split or of an .npz",
                       description="Write the codes of an autoencoder or VAE (the posterior mean) to an .npz: "
                                   "'codes' float32 (N, d) and, for a labelled split, 'labels' int64 (N,).")
    p.add_argument("inputs", nargs="?", help=".npz of images (arr_0, uint8 (N, H, W, C)); default: a split of the "
                                            "run's own dataset")
    p.add_argument("-o", "--output", required=True, metavar="FILE.npz", help="where the codes go")
    p.add_argument("--split", default="test", choices=["train", "test"], help="which split (default test)")
    p.set_defaults(func=_encode, parser=p)
    d = sub.add_parser("decode", parents=[run], help="autoencoders: images from an .npz of codes",
                       description="Decode the 'codes' array of an .npz (as gankit encode writes) into images.")
    d.add_argument("codes", help=".npz with a 'codes' array (N, d)")
    d.add_argument("-o", "--output", required=True, metavar="FILE", help="output .png (grid) or .npz")
    d.add_argument("-n", type=int, default=None, help="the first N codes (default: 64 for a .png, all for an .npz)")
    d.set_defaults(func=_decode, parser=d)


def _add_export(sub, run, data, dev) -> None:
    p = sub.add_parser("export", parents=[run], help="take a model out of gankit: an ONNX file or a Hugging Face "
                                                     "model folder",
                       description="Export a trained model. --format onnx (the default) writes the model's verb as "
                                   "one ONNX graph with a dynamic batch (a generator: codes z [, label] -> images; a "
                                   "translator: images -> translations; an autoencoder's decoder or encoder; a "
                                   "regressor: features -> predictions), checked with onnxruntime. --format hub "
                                   "writes a folder in the Hugging Face Hub's layout (config.json, model.safetensors, "
                                   "a README.md model card, samples.png) that every verb reads as a run. See "
                                   "docs/export.md.")
    p.add_argument("-o", "--output", required=True, metavar="FILE.onnx|DIR", help="the ONNX file, or the folder")
    p.add_argument("--format", default="onnx", help="onnx (default) or hub")
    p.add_argument("--part", default=None, help="autoencoders and VAEs: decoder (default: codes -> images) or encoder")
    p.add_argument("--direction", default=None, help="CycleGAN: which generator, AB (default) or BA")
    p.add_argument("--psi", type=float, default=None, help="StyleGAN: fix the truncation psi in the graph (default: "
                                                           "psi is an input)")
    p.add_argument("--noise", default=None, help="StyleGAN: input (default: the noise maps are inputs, as gankit "
                                                 "sample draws them) or const (the fixed maps)")
    p.add_argument("--push", metavar="USER/NAME", help="--format hub: also upload the folder to the Hugging Face "
                                                       "Hub (needs a token and a network)")
    p.set_defaults(func=_export, parser=p)


def _add_evaluator(sub, run, data, dev) -> None:
    p = sub.add_parser("evaluator", help="train an evaluator (feature network) on your own labelled images",
                       description="The metrics (FID, KID, precision/recall, modes) compare features of an "
                                   "evaluator, a classifier trained by gankit. Built-in ones cover digits, mnist and "
                                   "mnist_colour; for your own images train one (docs/evaluation.md).")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True, help="what to do (train)")
    t = verbs.add_parser("train", parents=[dev], help="train a CNN classifier whose features the metrics use",
                         description="Train an evaluator on a labelled dataset (a folder with one sub-folder per "
                                     "class, optionally split into train/ and test/), score it on the test split "
                                     "(or a fixed 10% hold-out) and write it as one .safetensors file.")
    t.add_argument("--data", required=True, metavar="NAME", help="data source (folder, mnist, digits, ...)")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="data.KEY=VALUE",
                   help="data settings, e.g. --set data.root=DIR --set data.size=32 (repeatable)")
    t.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write the .safetensors file")
    t.add_argument("--epochs", type=int, default=4, help="passes over the train split (default %(default)s), but "
                                                          "never fewer than 200 steps: a small folder gets more")
    t.add_argument("--batch-size", type=int, default=128, help="images per step (default %(default)s)")
    t.add_argument("--lr", type=float, default=3e-3, help="Adam's learning rate (default %(default)s)")
    t.add_argument("--width", type=int, default=32, help="channels of the first convolution (default 32)")
    t.add_argument("--seed", type=int, default=0, help="seed of the weights and the batches (default %(default)s)")
    t.add_argument("--force", action="store_true", help="write the evaluator even when its test accuracy is near "
                                                        "chance (refused otherwise; the file records it)")
    t.set_defaults(func=_evaluator_train, parser=t)


def _add_serve(sub, run, data, dev) -> None:
    p = sub.add_parser("serve", parents=[run], help="a local web page to play with a trained model",
                       description="Serve a page (FastAPI + uvicorn; pip install 'gankit[serve]') where you move a "
                                   "seed, a batch size, the truncation and the class, walk between two seeds, mix "
                                   "StyleGAN styles, or upload an image to translate; every image downloadable. "
                                   "Bound to 127.0.0.1 (this machine only) unless --host says otherwise.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine "
                                                       "only; 0.0.0.0 opens it to the network, with no password)")
    p.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    p.add_argument("--max-images", type=int, default=64, metavar="N",
                   help="images one request may ask for (default %(default)s)")
    p.add_argument("--max-upload-mb", type=float, default=4.0, metavar="MB",
                   help="largest image upload, in MiB (default %(default)s)")
    p.add_argument("--rate", type=float, default=20.0, metavar="R",
                   help="requests a second per client, on average (default %(default)s; bursts of twice that)")
    p.set_defaults(func=_serve, parser=p)


def _add_sweep(sub, threads) -> None:
    p = sub.add_parser("sweep", parents=[threads], help="search a config's hyperparameters with Optuna (pip install "
                                                         "'gankit[sweep]')",
                       description="Search the config keys that SPACE.yaml names (ranges, log scales, choices) with "
                                   "Optuna: each trial trains one setting for --seeds seeds, each an ordinary run "
                                   "directory under --out, scored by its training-time evaluations (the mean over "
                                   "the seeds; hopeless trials pruned). The study is counted and kept in --storage: "
                                   "run the command again to go on, or on several machines to share it. "
                                   "--show DIR: the trials table, the best setting as DIR/best.yaml and plots. See "
                                   "docs/sweeps.md.")
    p.add_argument("config", nargs="?", help="YAML config or shipped config's name (default: the defaults)")
    p.add_argument("--space", metavar="SPACE.yaml", help="the config keys to search: optim.lr_g: {low: 1.0e-4, "
                                                         "high: 1.0e-2, log: true}, model.pack: {choices: [1, 2]}")
    p.add_argument("--trials", type=_positive, metavar="N", help="finished trials the study should hold, counted "
                                                                  "over every process sharing it")
    p.add_argument("--out", metavar="DIR", help="the sweep's folder: its runs, logs and (by default) study.db "
                                                "(default: sweeps/CONFIG-SPACE)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value for every trial, e.g. --set train.steps=2000 (repeatable)")
    p.add_argument("--objective", default="fid", metavar="KEY",
                   help="the evaluation key to optimise (default fid; recall, kid, modes, ...)")
    p.add_argument("--maximize", action="store_true", help="maximise the objective (default: minimise)")
    p.add_argument("--take", default="best", choices=["best", "last"],
                   help="a run's score: its best evaluation (default) or its last")
    p.add_argument("--seeds", type=_positive, default=1, metavar="S", help="seeds per setting; the objective is "
                                                                           "their mean (default 1)")
    p.add_argument("--workers", type=_positive, default=1, metavar="K", help="trials at once on this machine "
                                                                             "(default 1)")
    p.add_argument("--minutes", type=float, metavar="M", help="start no trial after M minutes (default: no limit)")
    p.add_argument("--trial-minutes", type=float, metavar="M",
                   help="each run's wall-clock budget (train.max_minutes; the run stops cleanly)")
    p.add_argument("--pruner", default="median", choices=["median", "hyperband", "none"],
                   help="how hopeless trials are stopped early (default median)")
    p.add_argument("--startup-trials", type=_positive, default=5, metavar="N",
                   help="median pruner: complete trials before any is pruned (default %(default)s)")
    p.add_argument("--storage", metavar="URL", help="Optuna storage: sqlite:///FILE, postgresql://..., "
                                                    "mysql://... (default: sqlite in --out)")
    p.add_argument("--study", metavar="NAME", help="the study's name in the storage (default: the folder's name)")
    p.add_argument("--show", metavar="DIR", help="print the trials of the sweep in DIR, write DIR/best.yaml and "
                                                 "its plots")
    p.set_defaults(func=_sweep, parser=p)


def _add_looking(sub) -> None:
    """The verbs that look at runs: read from the files, they load no model (no --device, no --threads)."""
    p = sub.add_parser("runs", help="list the runs in a folder: status, steps, best FID, time",
                       description="One row per run directory under DIR (default: runs): its config, model family, "
                                   "steps done of planned, status (finished, stopped, crashed, running), best "
                                   "evaluation and its step, training time and last checkpoint.")
    p.add_argument("folder", nargs="?", default="runs", metavar="DIR", help="where the runs are (default: runs)")
    p.add_argument("--sort", default="name", choices=["name", "status", "steps", "best", "time", "family"],
                   help="order of the rows (default: name; best: lowest first)")
    p.add_argument("--reverse", action="store_true", help="the other way round")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=_runs, parser=p)

    p = sub.add_parser("plot", help="curves of one or several runs on shared axes, as a PNG (matplotlib)",
                       description="The standard panels (losses, D(x) and D(G(z)), FID over steps and over "
                                   "training minutes, recall, learning rates, other logged terms) of one or several "
                                   "runs, or the keys named by --metric. Needs matplotlib: pip install "
                                   "'gankit[plot]'.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories")
    p.add_argument("-o", "--output", default="curves.png", metavar="FILE",
                   help="the image to write (.png, .svg or .pdf; default curves.png)")
    p.add_argument("--metric", action="append", default=[], metavar="KEY",
                   help="plot this key instead of the standard panels (eval/kid, steps_per_s, a pattern such as "
                        "'eval/*'); repeatable, one panel each")
    p.add_argument("--time", action="store_true", help="--metric panels over training minutes instead of steps")
    p.add_argument("--smooth", type=float, default=0.0, metavar="W",
                   help="smooth training scalars with an exponential moving average of weight W in [0, 1) "
                        "(default 0: raw; TensorBoard's default is 0.6); evaluations stay raw")
    p.set_defaults(func=_plot, parser=p)

    p = sub.add_parser("report", help="one self-contained HTML page about one or several runs",
                       description="Write an HTML report (no network needed to view it, images inlined): summary, "
                                   "curves, preview grids through training, evaluations and how they were computed, "
                                   "health events, the config against its defaults, and a comparison table for "
                                   "several runs.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories")
    p.add_argument("-o", "--output", default="report.html", metavar="FILE", help="default report.html")
    p.add_argument("--smooth", type=float, default=0.0, metavar="W", help="as for gankit plot")
    p.set_defaults(func=_report, parser=p)


# ---------------------------------------------------------------------------------------------------------------
# Each verb: one API call, then what it did, on one line


def _train(args: argparse.Namespace) -> None:
    from . import api
    from .config import dump_config
    overrides = args.overrides + ([f"train.device={args.device}"] if args.device else [])
    how = dict(overrides=overrides, out=args.out, resume=args.resume)
    if args.print_config:
        return print(dump_config(api.resolved_config(args.config, **how)), end="")
    if args.dry_run:
        api.dry_run(args.config, **how)  # the header above gave the parameter counts
        return print("dry run passed: data, models and evaluation set up, one step trained on one batch; "
                     "nothing written")
    run_dir = api.train(args.config, overwrite=args.overwrite, **how)
    if int(os.environ.get("RANK", "0")) != 0:
        return  # under torchrun, rank 0 reports
    grids = sorted((run_dir / "samples").glob("*.png"))
    print(f"run directory: {run_dir}" + (f"\nlatest samples: {grids[-1]}" if grids else ""))


def _serve(args: argparse.Namespace) -> None:
    from .api import serve
    serve(args.run, host=args.host, port=args.port, device=args.device, max_images=args.max_images,
          max_upload_mb=args.max_upload_mb, rate=args.rate)


def _runs(args: argparse.Namespace) -> None:
    import json

    from .api import list_runs
    from .runs.listing import format_table
    rows = list_runs(args.folder, sort=args.sort, reverse=args.reverse)
    if args.json:
        return print(json.dumps(rows, indent=2))
    print(format_table(rows) if rows else f"no runs in {args.folder}")


def _plot(args: argparse.Namespace) -> None:
    from .api import plot_runs
    path = plot_runs(args.runs, args.output, metrics=args.metric, smooth=args.smooth,
                     x="minutes" if args.time else "step")
    print(f"wrote {path}")


def _report(args: argparse.Namespace) -> None:
    from .api import report
    print(f"wrote {report(args.runs, args.output, smooth=args.smooth)}")


def _sweep(args: argparse.Namespace) -> None:
    from . import api
    from .errors import GankitError
    if args.show:
        if args.config or args.space:
            raise GankitError("--show DIR reads a sweep: give it no CONFIG or --space")
        return print(api.show_sweep(args.show, storage=args.storage, study=args.study).text)
    done = api.sweep(args.config, args.space, trials=args.trials, overrides=args.overrides, out=args.out,
                     storage=args.storage, study=args.study, objective=args.objective, maximize=args.maximize,
                     take=args.take, seeds=args.seeds, workers=args.workers, threads=args.threads,
                     minutes=args.minutes, trial_minutes=args.trial_minutes, pruner=args.pruner,
                     startup_trials=args.startup_trials)
    print(done.summary())


def _sample(args: argparse.Namespace) -> None:
    from .api import sample_to_file
    images, path = sample_to_file(args.run, args.n, args.output, seed=args.seed, label=args.label,
                                  by_class=args.by_class, truncation=args.truncation, psi=args.psi, device=args.device,
                                  ema=args.ema)
    print(f"wrote {len(images)} samples to {path}")


def _translate(args: argparse.Namespace) -> None:
    from .api import translate_files
    done = translate_files(args.run, args.input, args.output, direction=args.direction, samples=args.samples,
                           seed=args.seed, grid=args.grid, device=args.device)
    print(f"wrote {len(done.inputs) * args.samples} translation(s) of {len(done.inputs)} input(s) to {args.output}"
          + (f"; grid in {args.grid}" if args.grid else ""))


def _project(args: argparse.Namespace) -> None:
    from .api import project_files
    fit = project_files(args.run, args.inputs, args.output, steps=args.steps, lr=args.lr, w_plus=args.w_plus,
                        starts=args.starts, feature_weight=args.feature_weight, evaluator=args.evaluator,
                        edits=args.edits, keep=args.keep, save=args.save, seed=args.seed, device=args.device)
    mse = ", ".join(f"{v:.4f}" for v in fit.mse.tolist())
    print(f"projected {len(fit.mse)} image(s) in {args.steps} steps: pixel MSE {mse} (on [-1, 1]); grid in "
          f"{args.output}" + (f"; styles in {args.save}" if args.save else ""))


def _latent(args: argparse.Namespace) -> None:
    from .api import latent_to_file
    options = {k: v for k, v in vars(args).items()
               if k not in ("command", "verb", "run", "output", "device", "threads", "quiet", "func", "parser")}
    rows, path = latent_to_file(args.run, args.verb, args.output, device=args.device, **options)
    if rows:
        print(f"rows: {rows}")
    print(f"wrote {path}")


def _eval(args: argparse.Namespace) -> None:
    import json

    from .api import evaluate
    from .metrics.evaluate import format_result
    result = evaluate(args.target, data=args.data, overrides=args.overrides, n=args.n, seed=args.seed,
                      iwae_k=args.iwae_k, iwae_n=args.iwae_n, psi=args.psi, evaluator=args.evaluator, k=args.k,
                      kid_subsets=args.kid_subsets, kid_subset_size=args.kid_subset_size, force=args.force,
                      cache=not args.no_cache, device=args.device, ema=args.ema)
    print(json.dumps(result) if args.json else format_result(result))


def _predict(args: argparse.Namespace) -> None:
    from .api import predict_file
    preds, path = predict_file(args.run, args.inputs, args.output, device=args.device)
    print(f"wrote {preds.shape[0]} predictions of {preds.shape[1]} target(s) to {path}")


def _encode(args: argparse.Namespace) -> None:
    from .api import encode_to_file
    codes, path = encode_to_file(args.run, args.output, args.inputs, split=args.split, overrides=args.overrides,
                                 device=args.device)
    print(f"wrote {codes.shape[0]} codes of {codes.shape[1]} dimensions to {path}")


def _decode(args: argparse.Namespace) -> None:
    from .api import decode_file
    images, path = decode_file(args.run, args.codes, args.output, n=args.n, device=args.device)
    print(f"wrote {len(images)} decoded samples to {path}")


def _export(args: argparse.Namespace) -> None:
    from .api import export
    done = export(args.run, args.output, format=args.format, push=args.push, device=args.device, part=args.part,
                  direction=args.direction, psi=args.psi, noise=args.noise)
    checked = "" if done.max_diff is None else f"; onnxruntime matches PyTorch to {done.max_diff:.1e}"
    print(f"wrote {done.path}: {done.summary}{checked}" + (f"\nuploaded: {done.url}" if done.url else ""))


def _evaluator_train(args: argparse.Namespace) -> None:
    from .api import train_evaluator
    record = train_evaluator(args.data, args.output, overrides=args.overrides, epochs=args.epochs,
                             batch_size=args.batch_size, lr=args.lr, width=args.width, seed=args.seed,
                             device=args.device, force=args.force)
    print(f"wrote {args.output}: test accuracy {record['test_accuracy']:.4f} on {record['test_size']} images "
          f"({record['test_split']}; chance {record['chance']:.4f}), sha256 {record['sha256']}")


def _set_threads(args: argparse.Namespace) -> None:
    """``--threads N``, or a note when the CPU is busy with other programs and PyTorch would use several threads
    (they then wait for each other: often several times slower than one). Training (a run, an evaluator) says it
    on stdout with its header, logged or not; the other verbs on a terminal only (their stdout is their result)."""
    import torch

    from .train.device import busy_cpu_note
    if getattr(args, "threads", None) is not None:
        return torch.set_num_threads(args.threads)
    trains = args.command in ("train", "evaluator") and not getattr(args, "print_config", False)
    if int(os.environ.get("RANK", "0")) != 0 or not (trains or sys.stderr.isatty()):
        return None
    if note := busy_cpu_note():
        print(f"note: {note}", file=sys.stdout if trains else sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gankit`` command; returns the exit code."""
    from .errors import GankitError, Interrupted
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):  # `gankit` alone: the help, not a usage error
        parser.print_help()
        return 2
    args, extra = parser.parse_known_args(argv)
    if extra:  # said by the verb's own parser, so that the usage line shown is the verb's
        args.parser.error(f"unrecognized arguments: {' '.join(extra)}")
    # which device `auto` picked: on a terminal before the work (a long eval says where it runs), otherwise after
    # the result, so that a script reading stderr of a failed verb gets its one-line error alone
    early = getattr(args, "device", None) == "auto" and args.command != "train" and sys.stderr.isatty()
    try:
        from .progress import set_quiet
        set_quiet(getattr(args, "quiet", False))  # per call: main() runs many times in one test process
        _set_threads(args)
        if early:
            from .train.device import auto_note
            print(auto_note(), file=sys.stderr)
        args.func(args)
    except GankitError as exc:
        rank = int(os.environ.get("RANK", "0"))
        if rank == 0 or not isinstance(exc, Interrupted):  # under torchrun, rank 0 reports a stop for all
            kind = "" if isinstance(exc, Interrupted) else "error: "  # a clean stop is no error
            print(f"gankit: {kind}{'' if rank == 0 else f'[rank {rank}] '}{exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        print("gankit: interrupted", file=sys.stderr)
        return 130
    if getattr(args, "device", None) == "auto" and not early:
        from .train.device import auto_note
        print(auto_note(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
