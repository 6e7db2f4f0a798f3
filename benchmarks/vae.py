"""VAE figures of the autoencoder issue, on this machine's CPU: prints one JSON object per suite.

* ``example``: configs/vae_mnist.yaml (the PyTorch example's 784-400-20 VAE) for its 10 epochs; the test loss per
  image (negative ELBO, one z per image, binary cross-entropy on grey MNIST), as the example prints it (about 105.6).
* ``iwae``: configs/vae_mnist_large.yaml (the IWAE paper's 784-200-200-50 VAE on dynamically binarised MNIST) for
  --epochs (20); every --every epochs the IWAE bound with k = 500 on the first 1,000 test images (the curve), and at
  the end with k = 5,000 on --final-n (1,000) test images, binarised once with a fixed seed. Published after 3,280
  epochs, on all 10,000 test images: VAE 86.76 nats, IWAE 84.78.
* ``vs_gan``: the example VAE against a GAN run (--gan, default the dcgan_mnist run of benchmarks/gan_quality.py) on
  evaluator-FID with 10,000 samples against the MNIST test split, and on sharpness (the mean absolute response to a
  3x3 Laplacian, on [0, 1] intensities) of the samples next to real test images; writes the two grids side by side.

    python benchmarks/vae.py --suite all --mnist ../shared/data/mnist --out runs/bench_vae
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import gankit
from gankit.config import DataConfig
from gankit.data import load_dataset
from gankit.metrics.autoencoding import vae_scores

HERE = Path(__file__).resolve().parent
CONFIGS = HERE.parent / "configs"


def train(config: str, out: Path, overrides: list[str]) -> tuple[Path, float]:
    """Train a config to its own train.steps; returns the run and the seconds it took."""
    started = time.monotonic()
    run = gankit.train(CONFIGS / f"{config}.yaml", out=out, overwrite=True,
                       overrides=["train.progress=false", *overrides])
    return run, round(time.monotonic() - started, 1)


def test_images(mnist: str) -> torch.Tensor:
    """The 10,000 MNIST test images in [-1, 1]."""
    return load_dataset(DataConfig(name="mnist", root=mnist), "test").x


def suite_example(args) -> dict:
    run, seconds = train("vae_mnist", args.out / "vae_mnist", [f"data.root={args.mnist}"])
    scores = vae_scores(gankit.load(run).generator, test_images(args.mnist), k=1)
    return {"config": "vae_mnist", "epochs": 10, "steps": gankit.load(run).step, "seconds": seconds,
            "test_loss": scores["test_loss"], "test_images": scores["n"], "reference": "PyTorch example: ~105.6"}


def suite_iwae(args) -> dict:
    steps_per_epoch = 60_000 // 20
    test = test_images(args.mnist)
    run_dir, curve, seconds = args.out / "vae_mnist_large", [], 0.0
    for epoch in range(args.every, args.epochs + 1, args.every):
        resume = epoch > args.every
        started = time.monotonic()
        gankit.train(None if resume else CONFIGS / "vae_mnist_large.yaml", out=run_dir, resume=resume,
                     overwrite=not resume, overrides=[f"data.root={args.mnist}", "train.progress=false",
                                                      f"train.steps={epoch * steps_per_epoch}"])
        seconds += time.monotonic() - started
        scores = vae_scores(gankit.load(run_dir).generator, test[:1000], k=500, binarize=True)
        curve.append({"epoch": epoch, "train_seconds": round(seconds, 1), "nll_k500": scores["nll"],
                      "elbo_nll": scores["elbo_nll"]})
        print(json.dumps({"progress": curve[-1]}), flush=True)
    final = vae_scores(gankit.load(run_dir).generator, test[:args.final_n], k=5000, binarize=True)
    return {"config": "vae_mnist_large", "epochs": args.epochs, "train_seconds": round(seconds, 1), "curve": curve,
            "nll_k5000": final["nll"], "elbo_nll": final["elbo_nll"], "test_images": final["n"],
            "reference": "after 3,280 epochs on 10,000 test images: VAE 86.76, IWAE 84.78 nats"}


def sharpness(x: torch.Tensor) -> float:
    """Mean absolute 3x3 Laplacian response of images in [-1, 1], on [0, 1] intensities."""
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    return float(F.conv2d((x + 1) / 2, kernel).abs().mean())


def suite_vs_gan(args) -> dict:
    vae_run = args.out / "vae_mnist"
    if not (vae_run / "checkpoints").is_dir():
        vae_run, _ = train("vae_mnist", vae_run, [f"data.root={args.mnist}"])
    data = [f"data.root={args.mnist}"]
    rows, grids = {}, []
    for name, run in (("vae_mnist", vae_run), ("gan", Path(args.gan))):
        result = gankit.evaluate(run, overrides=data, n=10_000, seed=0, write=False)
        samples = gankit.load(run).sample(10_000, seed=0)
        rows[name] = {"run": str(run), "fid": result["fid"], "precision": result["precision"],
                      "recall": result["recall"], "sharpness": sharpness(samples)}
        grids.append(samples[:64])
    rows["real_test_sharpness"] = sharpness(test_images(args.mnist))
    path = gankit.save_samples(torch.cat([torch.cat([g[i * 8:(i + 1) * 8] for g in grids]) for i in range(8)]),
                               args.out / "vae_vs_gan.png", nrow=16)
    return {**rows, "grid": str(path), "samples": 10_000, "reference": "mnist test (10,000)"}


SUITES = {"example": suite_example, "iwae": suite_iwae, "vs_gan": suite_vs_gan}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=[*SUITES, "all"], default="all")
    parser.add_argument("--mnist", default=str(HERE.parent.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--out", type=Path, default=Path("runs/bench_vae"))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--final-n", type=int, default=1000)
    parser.add_argument("--gan", default="runs/bench/dcgan_mnist/checkpoints/best.safetensors")
    args = parser.parse_args()
    machine = {"cpu_threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version(),
               "gankit": gankit.__version__}
    for name in SUITES if args.suite == "all" else [args.suite]:
        print(json.dumps({"suite": name, "machine": machine, **SUITES[name](args)}), flush=True)


if __name__ == "__main__":
    main()
