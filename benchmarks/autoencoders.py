"""Autoencoder figures of issue #5, on this machine's CPU: prints one JSON object per suite.

* ``patches``: configs/ae_patches.yaml (a 64-16-64 tanh network on random 8x8 grey patches of the two scikit-learn
  photographs) next to PCA with 16 components fitted on the same train patches, and the trivial baseline that
  replaces each patch by its own mean; reconstruction MSE and PSNR (pooled, range 2) on the 10,000 test patches
  (the right quarter of each photograph, which no train patch touches).
* ``dims``: configs/ae_mnist.yaml with model.bottleneck = 2, 8, 16, 32, each next to PCA with as many components
  fitted on the 60,000 MNIST train images: test reconstruction MSE/PSNR, and the accuracy of a 5-nearest-neighbour
  classifier (Euclidean, fitted on the codes of all 60,000 train images, scored on the 10,000 test codes); the same
  classifier on raw pixels once, for reference.
* ``pretrain``: the encoder of the bottleneck-32 run (784-512-256-32) with a head, a Linear(32, 10) (the linear
  probe) or a 32-128-ReLU-10 MLP, trained on 100 or 1,000 labelled train images (class-balanced, drawn with seeds
  0, 1, 2): frozen (head only, lr 1e-3), fine-tuned (encoder lr 1e-4, head lr 1e-3) and from scratch (the same layers
  freshly initialised from the same seed, lr 1e-3); Adam, batch 50, a fixed budget of 1,000 steps, no model
  selection; accuracy on the 10,000 test images, mean and std over the seeds. For reference, 5-NN on the same
  labelled images, on the frozen codes and on raw pixels.
* ``denoise``: configs/dae_mnist.yaml; on the test images corrupted as in training (Gaussian noise of std 0.5, a
  quarter of the pixels set to black, from a fixed seed), the MSE to the clean images of the noisy input itself, of
  the plain bottleneck-32 autoencoder's reconstruction and of the denoising autoencoder's.

The runs go under --out (the dims runs are reused by pretrain and denoise when they are complete). To reproduce
(about 8 minutes on two idle cores; --quick is a smoke run of under a minute whose figures mean nothing):

    mkdir -p runs/bench_ae
    OMP_NUM_THREADS=2 python benchmarks/autoencoders.py --suite all --mnist ../shared/data/mnist --out runs/bench_ae \\
        | tee runs/bench_ae/results.jsonl
    OMP_NUM_THREADS=2 python benchmarks/autoencoders.py --suite all --quick --out /tmp/bench_ae_quick
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

import gankit
from gankit.config import DataConfig
from gankit.data import load_dataset
from gankit.metrics.autoencoding import reconstruct_all, reconstruction_scores
from gankit.metrics.reconstruction import mse, psnr
from gankit.models import build_models
from gankit.recipes.autoencoding import corrupt

HERE = Path(__file__).resolve().parent
CONFIGS = HERE.parent / "configs"
KNN_K = 5
HEADS = ("linear", "mlp")
LABELLED = (100, 1000)
SEEDS = (0, 1, 2)
CORRUPTION_SEED = 0


# -- training and loading -------------------------------------------------------------------------------------------

def train(config: str, out: Path, overrides: list[str], args) -> tuple[Path, float]:
    """Train ``config`` to its train.steps (or the --quick budget); returns the run and the seconds it took."""
    started = time.monotonic()
    quick = ["train.steps=200"] if args.quick else []
    run = gankit.train(CONFIGS / f"{config}.yaml", out=out, overwrite=True,
                       overrides=["train.progress=false", *quick, *overrides])
    return run, round(time.monotonic() - started, 1)


def median_speed(run: Path) -> float:
    """Median training steps per second over the run's log rows (less sensitive than wall time to other load)."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return round(statistics.median(r["steps_per_s"] for r in rows if "steps_per_s" in r), 1)


def ae_mnist(args, bottleneck: int, reuse: bool) -> tuple[Path, float | None]:
    """The ae_mnist run with this bottleneck: with ``reuse``, the finished one in --out if there is one (seconds
    None), else trained."""
    run = args.out / f"ae_mnist_d{bottleneck}"
    steps = 200 if args.quick else 4690
    try:
        loaded = gankit.load(run) if reuse else None
        if loaded is not None and loaded.step == steps and loaded.config.model.bottleneck == bottleneck:
            return run, None
    except gankit.GankitError:  # absent or unreadable: train it
        pass
    return train("ae_mnist", run, [f"data.root={args.mnist}", f"model.bottleneck={bottleneck}"], args)


def mnist(args, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, 1, 28, 28) in [-1, 1], labels (N,)) of an MNIST split."""
    data = load_dataset(DataConfig(name="mnist", root=args.mnist), split)
    return data.x, data.y


@torch.no_grad()
def encode_all(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """(N, d) codes of ``x``, in eval mode, batch by batch."""
    model.eval()
    return torch.cat([model.encode(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


# -- baselines ------------------------------------------------------------------------------------------------------

def fit_pca(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean (D,), principal axes (D, D) as rows, by decreasing variance) of flattened samples, from the SVD of the
    centred data in float64."""
    flat = x.flatten(1).double()
    mean = flat.mean(0)
    _, _, vh = torch.linalg.svd(flat - mean, full_matrices=False)
    return mean, vh


def pca_codes(pca: tuple[torch.Tensor, torch.Tensor], x: torch.Tensor, k: int) -> torch.Tensor:
    """(N, k) coordinates of ``x`` on the first ``k`` principal axes."""
    mean, vh = pca
    return (x.flatten(1).double() - mean) @ vh[:k].T


def pca_reconstruct(pca: tuple[torch.Tensor, torch.Tensor], x: torch.Tensor, k: int) -> torch.Tensor:
    """``x`` projected on the first ``k`` principal axes, back in its own shape and scale (float32)."""
    mean, vh = pca
    return (pca_codes(pca, x, k) @ vh[:k] + mean).float().view_as(x)


def scores(recon: torch.Tensor, x: torch.Tensor) -> dict:
    """Pooled MSE and PSNR (range 2) of reconstructions against ``x``."""
    return {"recon_mse": mse(recon, x), "recon_psnr": psnr(recon, x)}


def to_clean(x: torch.Tensor, clean: torch.Tensor) -> dict:
    """MSE and PSNR (range 2) of (denoised) images against the clean ones."""
    return {"mse_to_clean": mse(x, clean), "psnr_to_clean": psnr(x, clean)}


def knn_accuracy(train_codes: torch.Tensor, train_y: torch.Tensor, test_codes: torch.Tensor,
                 test_y: torch.Tensor) -> float:
    """Test accuracy of a KNN_K-nearest-neighbour classifier (Euclidean, brute force) fitted on the train codes."""
    from sklearn.neighbors import KNeighborsClassifier

    knn = KNeighborsClassifier(n_neighbors=KNN_K, algorithm="brute", n_jobs=2)
    knn.fit(train_codes.flatten(1).float().numpy(), train_y.numpy())
    return float((knn.predict(test_codes.flatten(1).float().numpy()) == test_y.numpy()).mean())


# -- suites ---------------------------------------------------------------------------------------------------------

def suite_patches(args) -> dict:
    run, seconds = train("ae_patches", args.out / "ae_patches", [], args)
    train_x = load_dataset(DataConfig(name="patches"), "train").x  # (50000, 1, 8, 8)
    test_x = load_dataset(DataConfig(name="patches"), "test").x  # (10000, 1, 8, 8)
    ae = reconstruction_scores(gankit.load(run).generator, test_x)
    pca = pca_reconstruct(fit_pca(train_x), test_x, 16)
    flat_mean = test_x.mean(dim=(1, 2, 3), keepdim=True).expand_as(test_x)
    return {"config": "ae_patches", "steps": gankit.load(run).step, "train_seconds": seconds,
            "median_steps_per_s": median_speed(run),
            "autoencoder": {k: ae[k] for k in ("recon_mse", "recon_psnr")}, "pca16": scores(pca, test_x),
            "patch_mean": scores(flat_mean, test_x), "train_patches": len(train_x), "test_patches": len(test_x),
            "protocol": "8x8 grey patches in [-1, 1]; pooled MSE, PSNR = 10 log10(4 / MSE)"}


def dims_row(args, d: int, pca, data) -> dict:
    """One bottleneck: the autoencoder and PCA with d components, reconstruction and k-NN on the codes."""
    (train_x, train_y), (test_x, test_y) = data
    run, seconds = ae_mnist(args, d, reuse=False)
    model = gankit.load(run).generator
    started = time.monotonic()
    ae = {**reconstruction_scores(model, test_x),
          "knn_accuracy": knn_accuracy(encode_all(model, train_x), train_y, encode_all(model, test_x), test_y)}
    ae.pop("recon_psnr_per_image")
    pc = {**scores(pca_reconstruct(pca, test_x, d), test_x),
          "knn_accuracy": knn_accuracy(pca_codes(pca, train_x, d), train_y, pca_codes(pca, test_x, d), test_y)}
    return {"bottleneck": d, "steps": gankit.load(run).step, "train_seconds": seconds,
            "median_steps_per_s": median_speed(run),
            "score_seconds": round(time.monotonic() - started, 1), "autoencoder": ae, "pca": pc}


def suite_dims(args) -> dict:
    data = mnist(args, "train"), mnist(args, "test")
    started = time.monotonic()
    pca = fit_pca(data[0][0])
    pca_seconds = round(time.monotonic() - started, 1)
    rows = [dims_row(args, d, pca, data) for d in ((2, 32) if args.quick else (2, 8, 16, 32))]
    started = time.monotonic()
    raw = knn_accuracy(data[0][0], data[0][1], data[1][0], data[1][1])
    return {"config": "ae_mnist", "rows": rows, "raw_pixel_knn_accuracy": raw,
            "raw_knn_seconds": round(time.monotonic() - started, 1), "pca_fit_seconds": pca_seconds,
            "knn": f"k={KNN_K}, Euclidean, fitted on all {len(data[0][0])} train codes, scored on "
                   f"{len(data[1][0])} test codes", "pca": "SVD of the centred 60,000 train images (float64)"}


def balanced_subset(y: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Indices of ``n`` items, n / 10 of each class, drawn with ``seed``."""
    g = torch.Generator().manual_seed(seed)
    picks = [idx[torch.randperm(len(idx), generator=g)[:n // 10]] for idx in (torch.nonzero(y == c).flatten()
                                                                              for c in range(10))]
    return torch.cat(picks)


def classifier(encoder: nn.Module, head: str, seed: int) -> nn.Sequential:
    """``encoder`` followed by a head (``linear``: Linear(32, 10); ``mlp``: 32-128-ReLU-10) drawn from ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        top = nn.Linear(32, 10) if head == "linear" else nn.Sequential(nn.Linear(32, 128), nn.ReLU(),
                                                                         nn.Linear(128, 10))
    return nn.Sequential(encoder, top)


def fit_classifier(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, mode: str, args, seed: int) -> None:
    """Adam on cross-entropy for a fixed budget; ``frozen`` trains the head only, ``finetune`` the encoder at a tenth
    of the head's rate, ``scratch`` everything at the head's rate."""
    encoder, head = model
    encoder.requires_grad_(mode != "frozen")
    groups = [{"params": head.parameters(), "lr": 1e-3}]
    if mode != "frozen":
        groups.append({"params": encoder.parameters(), "lr": 1e-4 if mode == "finetune" else 1e-3})
    opt = torch.optim.Adam(groups)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(args.clf_steps):
        idx = torch.randint(len(x), (50,), generator=g)
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of ``x`` classified as ``y``, in eval mode."""
    model.eval()
    pred = torch.cat([model(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
    return float((pred == y).double().mean())


def pretrain_trial(args, pretrained: nn.Module, n: int, seed: int, data) -> dict:
    """Test accuracies on one labelled subset: each head in the three modes, and k-NN on codes and on pixels."""
    (train_x, train_y), (test_x, test_y), model_cfg = data
    idx = balanced_subset(train_y, n, seed)
    out = {}
    for head in HEADS:
        fresh = build_models(model_cfg, (1, 28, 28), 10, seed=seed)["generator"].encoder
        for mode, encoder in (("frozen", copy.deepcopy(pretrained)), ("finetune", copy.deepcopy(pretrained)),
                              ("scratch", fresh)):
            model = classifier(encoder, head, seed)
            fit_classifier(model, train_x[idx], train_y[idx], mode, args, seed)
            out[f"{head}_{mode}"] = accuracy(model, test_x, test_y)
    with torch.no_grad():
        out["knn_codes"] = knn_accuracy(pretrained(train_x[idx]), train_y[idx], pretrained(test_x), test_y)
    out["knn_pixels"] = knn_accuracy(train_x[idx], train_y[idx], test_x, test_y)
    return out


def suite_pretrain(args) -> dict:
    run, seconds = ae_mnist(args, 32, reuse=True)
    loaded = gankit.load(run)
    data = mnist(args, "train"), mnist(args, "test"), loaded.config.model
    seeds = SEEDS[:1] if args.quick else SEEDS
    started, results = time.monotonic(), {}
    for n in LABELLED:
        trials = [pretrain_trial(args, loaded.generator.encoder, n, s, data) for s in seeds]
        results[str(n)] = {mode: {"mean": statistics.mean(t[mode] for t in trials),
                                  "std": statistics.pstdev(t[mode] for t in trials),
                                  "runs": [t[mode] for t in trials]} for mode in trials[0]}
    return {"encoder_run": str(run), "encoder_steps": loaded.step, "encoder_train_seconds": seconds,
            "accuracy": results, "seeds": list(seeds), "classifier_seconds": round(time.monotonic() - started, 1),
            "protocol": f"784-512-256-32 encoder + a Linear(32, 10) or a 32-128-ReLU-10 head; Adam, batch 50, "
                        f"{args.clf_steps} steps, no model selection; k-NN (k={KNN_K}) fitted on the same labelled "
                        "images; subsets class-balanced from the train split, drawn with the seed that also "
                        "draws the head, the scratch encoder and the batches; accuracy on the 10,000 test images; "
                        "std over seeds (population)"}


def suite_denoise(args) -> dict:
    dae, seconds = train("dae_mnist", args.out / "dae_mnist", [f"data.root={args.mnist}"], args)
    ae, _ = ae_mnist(args, 32, reuse=True)
    clean, _ = mnist(args, "test")
    recipe = gankit.load(dae).config.recipe  # the corruption the dae was trained with (noise 0.5, mask 0.25)
    noisy = corrupt(clean, recipe.noise, recipe.mask, torch.Generator().manual_seed(CORRUPTION_SEED))
    out = {"noisy_input": to_clean(noisy, clean)}
    for name, run in (("ae_mnist_d32", ae), ("dae_mnist", dae)):
        model = gankit.load(run).generator
        out[name] = {**to_clean(reconstruct_all(model, noisy), clean),
                     "clean_input_mse": reconstruction_scores(model, clean)["recon_mse"]}
    return {"config": "dae_mnist", "dae_steps": gankit.load(dae).step, "dae_train_seconds": seconds,
            "dae_median_steps_per_s": median_speed(dae), "mse": out,
            "corruption": f"Gaussian std {recipe.noise} then clip, a share {recipe.mask} of pixels set to -1; seed "
                          f"{CORRUPTION_SEED}; MSE to the clean test images in [-1, 1]"}


SUITES = {"patches": suite_patches, "dims": suite_dims, "pretrain": suite_pretrain, "denoise": suite_denoise}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=[*SUITES, "all"], default="all")
    parser.add_argument("--mnist", default=str(HERE.parent.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--out", type=Path, default=Path("runs/bench_ae"))
    parser.add_argument("--quick", action="store_true", help="a smoke run: 200 training steps, 2 bottlenecks, 1 seed")
    args = parser.parse_args()
    args.clf_steps = 100 if args.quick else 1000
    machine = {"cpu_threads": torch.get_num_threads(), "cores": os.cpu_count(), "torch": torch.__version__,
               "python": platform.python_version(), "gankit": gankit.__version__}
    for name in SUITES if args.suite == "all" else [args.suite]:
        started, load = time.monotonic(), os.getloadavg()[0]
        result = SUITES[name](args)
        print(json.dumps({"suite": name, "quick": args.quick, "machine": machine, "load_avg_1min_at_start": load,
                          **result,
                          "seconds": round(time.monotonic() - started, 1)}), flush=True)


if __name__ == "__main__":
    main()
