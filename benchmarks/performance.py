"""Training speed of gankit's trainer against a plain PyTorch loop, measured side by side: prints one JSON object.

For each workload the same model (the same config, built with the same seed, so the same initial weights), the same
optimiser and the same update schedule are trained two ways, in one process, in interleaved rounds:

* ``gankit``: the :class:`gankit.train.Trainer` loop as ``gankit train`` runs it (batches drawn from the dataset held
  as one tensor, logs every ``train.log_every`` steps), with no sample grids, checkpoints or evaluation inside the
  timed rounds; ``--set`` applies config overrides to this side only (e.g. ``train.precision=bf16``);
* ``plain``: the loop a user writes from the usual PyTorch tutorials: torchvision's MNIST dataset with
  ``ToTensor()`` and ``Normalize`` (each uint8 image through PIL to a normalised float tensor, one at a time), a
  shuffling ``DataLoader``, the default ``torch.optim.Adam``, and ``loss.item()`` after every update to keep running
  averages.

Workloads: ``seed_mlp`` (the Keras example's MLP GAN, batch 32, two half-batch D updates then one G update),
``dcgan64`` and ``dcgan128`` (DCGAN on MNIST, one D and one G update per step), ``vae`` (the 784-400-20 VAE, batch
128). Each round runs ``--steps`` steps of each side; the figures are medians over ``--rounds`` rounds after one
warm-up round. ``gflops`` is the model's floating-point work per step (counted once with
``torch.utils.flop_counter`` on gankit's step: matrix products and convolutions, forward and backward; the plain loop
also computes D's weight gradients in its G update, which gankit skips by freezing D, so its own work is a little
larger than counted) times steps per second, next to the machine's matrix-product rate measured in the same run
(2048 x 2048 products, fp32 and bf16; 512 x 512 for bf16 where the CPU has no bf16 support, ``bf16_supported``
false, since the generic code takes minutes for the larger size): a reference rate, not a bound, since convolutions
can exceed it.
With ``--profile``, one more round of each side runs under ``torch.profiler``: ``profile`` gives its milliseconds
per step and those spent in matrix products and convolutions (the ops' self time; on a GPU their kernels' device
time), and ``speedup_bound`` is the plain loop's median time per step in the timed rounds over gankit's time in those
ops: the speed-up gankit would reach if everything else it does took no time, i.e. about the most any loop that
computes the same products in the same precision can reach (one profiled round: as noisy as the machine is).
``peak_rss_mb`` is the process's peak resident memory after the workload (it only grows: read the increments);
on CUDA ``peak_cuda_mb`` is the allocator's peak for the workload.

    python benchmarks/performance.py --mnist ../shared/data/mnist                       # all workloads, 2 threads
    python benchmarks/performance.py --workloads dcgan64 --set train.precision=bf16     # one setting of gankit's
    python benchmarks/performance.py --profile                                          # + the speed-up bound
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

import gankit
from gankit.config import load_config
from gankit.data import load_dataset
from gankit.models import build_models
from gankit.train import Trainer
from gankit.train.precision import bf16_note
from gankit.tasks import derive_seed

HERE = Path(__file__).resolve().parent
CONFIGS = HERE.parent / "configs"
WORKLOADS = {  # name: (config, overrides)
    "seed_mlp": ("seed_gan_mnist", []),
    "dcgan64": ("dcgan_mnist", ["train.batch_size=64"]),
    "dcgan128": ("dcgan_mnist", ["train.batch_size=128"]),
    "vae": ("vae_mnist", []),
}
QUIET = ["train.progress=false", "train.eval_every=0", f"train.sample_every={10**9}",
         f"train.checkpoint_every={10**9}"]


# ---------------------------------------------------------------------------------------------------------------
# The plain loop, as the tutorials write it

class TutorialMNIST(Dataset):
    """What ``torchvision.datasets.MNIST(transform=Compose([ToTensor(), Normalize((0.5,), (0.5,))]))`` does per
    item (torchvision has no CPU build here, so its steps are written out): a PIL image from the uint8 array, then
    ToTensor (a copy to a uint8 tensor, HWC -> CHW, float, / 255), then Normalize (subtract the mean, divide by the
    std, on a copy)."""

    def __init__(self, images: np.ndarray) -> None:
        self.data = torch.from_numpy(images)  # (N, 28, 28) uint8, as torchvision holds it
        self.targets = torch.zeros(len(images), dtype=torch.long)
        self.mean, self.std = torch.tensor([0.5]), torch.tensor([0.5])

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int):
        img, target = self.data[i], int(self.targets[i])
        img = Image.fromarray(img.numpy(), mode="L")
        x = torch.from_numpy(np.array(img, np.uint8, copy=True)).view(img.size[1], img.size[0], 1)
        x = x.permute(2, 0, 1).contiguous().to(torch.get_default_dtype()).div(255)  # ToTensor
        x = x.clone().sub_(self.mean[:, None, None]).div_(self.std[:, None, None])  # Normalize
        return x, target


class PlainLoop:
    """A hand-written training loop over fresh copies of the workload's models (same initial weights)."""

    def __init__(self, cfg, images: np.ndarray, device: torch.device) -> None:
        self.cfg, self.device = cfg, device
        shape = (1, 28, 28)
        self.modules = build_models(cfg.model, shape, 0, derive_seed(cfg.train.seed, "weights"))
        for m in self.modules.values():
            m.to(device).train()
        o = cfg.optim
        self.schedule = cfg.recipe.schedule if cfg.recipe.name == "adversarial" else "vae"
        batch = cfg.train.batch_size // 2 if self.schedule == "keras" else cfg.train.batch_size
        self.loader = DataLoader(TutorialMNIST(images), batch_size=batch, shuffle=True, drop_last=True)
        self.batches = iter(self.loader)
        if self.schedule == "vae":
            self.opt = torch.optim.Adam(self.modules["generator"].parameters(), lr=o.lr_g, betas=(o.beta1, o.beta2),
                                        eps=o.eps)
        else:
            self.G, self.D = self.modules["generator"], self.modules["discriminator"]
            self.opt_g = torch.optim.Adam(self.G.parameters(), lr=o.lr_g, betas=(o.beta1, o.beta2), eps=o.eps)
            self.opt_d = torch.optim.Adam(self.D.parameters(), lr=o.lr_d, betas=(o.beta1, o.beta2), eps=o.eps)
        self.running: dict[str, float] = {}

    def _next(self) -> torch.Tensor:
        try:
            x, _ = next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            x, _ = next(self.batches)
        return x.to(self.device)

    def _log(self, **losses: torch.Tensor) -> None:
        for k, v in losses.items():  # the tutorials' running averages: one host sync per loss per step
            self.running[k] = 0.98 * self.running.get(k, 0.0) + 0.02 * v.item()

    def step(self) -> None:
        {"keras": self._keras, "full": self._full, "vae": self._vae}[self.schedule]()

    def _z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.G.latent_dim, device=self.device)

    def _bce(self, logits: torch.Tensor, target: float) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))

    def _keras(self) -> None:
        real = self._next()
        self.G.eval()
        with torch.no_grad():
            fake = self.G(self._z(len(real)))
        self.G.train()
        self.opt_d.zero_grad()
        d_real = self._bce(self.D(real), 1.0)
        d_real.backward()
        self.opt_d.step()
        self.opt_d.zero_grad()
        d_fake = self._bce(self.D(fake), 0.0)
        d_fake.backward()
        self.opt_d.step()
        self.opt_g.zero_grad()
        g = self._bce(self.D(self.G(self._z(2 * len(real)))), 1.0)
        g.backward()
        self.opt_g.step()
        self._log(d_loss=0.5 * (d_real + d_fake), g_loss=g)

    def _full(self) -> None:
        real = self._next()
        with torch.no_grad():
            fake = self.G(self._z(len(real)))
        self.opt_d.zero_grad()
        d = self._bce(self.D(real), 1.0) + self._bce(self.D(fake), 0.0)
        d.backward()
        self.opt_d.step()
        self.opt_g.zero_grad()
        g = self._bce(self.D(self.G(self._z(len(real)))), 1.0)
        g.backward()
        self.opt_g.step()
        self._log(d_loss=d, g_loss=g)

    def _vae(self) -> None:
        model = self.modules["generator"]
        x = self._next()
        mu, logvar = model.posterior(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = model.decoder_output(z)
        recon = F.binary_cross_entropy_with_logits(logits, (x + 1) / 2, reduction="sum") / len(x)
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / len(x)
        loss = recon + kl
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self._log(loss=loss)


# ---------------------------------------------------------------------------------------------------------------
# Measurement

class _NoBar:
    n = 0

    def update(self, k: int) -> None:
        self.n += k

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass


def gankit_steps(trainer: Trainer, n: int) -> None:
    """``n`` steps of the trainer's own loop (logging included; the end-of-run grid and checkpoint are not)."""
    trainer.cfg.train.steps = trainer.step + n
    trainer._loop(_NoBar(), None)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    synchronize(device)
    started = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - started


def flops_per_step(trainer: Trainer) -> int:
    """Floating-point operations of one gankit step (matmuls and convolutions, forward and backward)."""
    counter = FlopCounterMode(display=False)
    with counter:
        trainer.recipe.step(trainer.sampler, trainer.noise, trainer.cfg.train.batch_size)
    return counter.get_total_flops()


def matmul_peak(dtype: torch.dtype, device: torch.device, n: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of the best of ``repeats`` n x n matrix products."""
    a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
    a @ b  # warm-up
    best = min(timed(lambda: a @ b, device) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


KERNEL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")  # and every op with "conv" in its name


def kernel_profile(fn, steps: int, device: torch.device) -> dict:
    """Wall-clock milliseconds per step of ``fn`` (``steps`` steps) under ``torch.profiler``, and how many of them
    the matrix-product and convolution ops take: the operators' self time on a CPU (so nested ops are not counted
    twice), the device time of the kernels they launch on a GPU (the operator rows only: kernels also get rows of
    their own)."""
    from torch.profiler import ProfilerActivity, profile
    from torch.autograd import DeviceType

    on_gpu = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    with profile(activities=activities) as prof:
        wall = timed(fn, device)
    kernel = sum(e.self_device_time_total if on_gpu else e.self_cpu_time_total for e in prof.key_averages()
                 if e.device_type == DeviceType.CPU and (e.key in KERNEL_OPS or "conv" in e.key)) / 1e6
    return {"ms_per_step": round(1e3 * wall / steps, 2), "kernel_ms_per_step": round(1e3 * kernel / steps, 2),
            "kernel_share": round(kernel / wall, 3)}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_workload(name: str, args, images: np.ndarray, device: torch.device) -> dict:
    config, extra = WORKLOADS[name]
    overrides = [f"data.root={args.mnist}", f"train.device={device.type}", *QUIET, *extra]
    plain_cfg = load_config(CONFIGS / f"{config}.yaml", overrides)
    gankit_cfg = load_config(CONFIGS / f"{config}.yaml", [*overrides, *args.overrides])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(gankit_cfg, Path(tmp) / "run")
        plain = PlainLoop(plain_cfg, images, device)
        flops = flops_per_step(trainer)
        sides = {"gankit": lambda: gankit_steps(trainer, args.steps),
                 "plain": lambda: [plain.step() for _ in range(args.steps)]}
        seconds: dict[str, list[float]] = {"gankit": [], "plain": []}
        for round_ in range(args.rounds + 1):  # round 0 warms up (allocations, thread pools, compilation)
            order = ("gankit", "plain") if round_ % 2 == 0 else ("plain", "gankit")  # neither always goes first
            for side in order:
                elapsed = timed(sides[side], device)
                if round_:
                    seconds[side].append(elapsed)
        profiled = {side: kernel_profile(sides[side], args.steps, device) for side in sides} if args.profile else None
    batch = gankit_cfg.train.batch_size
    out = {"config": config, "batch_size": batch, "steps_per_round": args.steps, "rounds": args.rounds,
           "gflop_per_step": round(flops / 1e9, 4), "overrides": args.overrides}
    for side, times in seconds.items():
        rate = args.steps / statistics.median(times)
        out[side] = {"steps_per_s": round(rate, 2), "images_per_s": round(rate * batch, 1),
                     "gflops": round(rate * flops / 1e9, 2), "round_seconds": [round(t, 3) for t in times]}
    out["speedup"] = round(out["gankit"]["steps_per_s"] / out["plain"]["steps_per_s"], 3)
    if profiled:
        for side in profiled:
            out[side]["profile"] = profiled[side]
        # what gankit would reach if everything but its products and convolutions took no time at all: the plain
        # loop's median timed step (the profiled round is one noisy sample) over gankit's time in those ops
        plain_ms = 1e3 / out["plain"]["steps_per_s"]
        out["speedup_bound"] = round(plain_ms / profiled["gankit"]["kernel_ms_per_step"], 3)
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    if device.type == "cuda":
        out["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", default=str(HERE.parent.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help=f"comma-separated: {', '.join(WORKLOADS)}")
    parser.add_argument("--steps", type=int, default=100, help="steps per side per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    parser.add_argument("--profile", action="store_true",
                        help="after the timed rounds, one profiled round of each side: the time in matrix products "
                             "and convolutions, and the speed-up bound it implies")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for the gankit side only, e.g. train.precision=bf16 (repeatable)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    images = load_dataset(load_config(None, ["data.name=mnist", f"data.root={args.mnist}"]).data, "train").x
    images = ((images[:, 0] + 1) * 127.5).round().to(torch.uint8).numpy()  # the uint8 files, as a tutorial reads
    started = time.monotonic()
    bf16_native = bf16_note(device) is None
    result = {"machine": {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else
                          platform.processor() or platform.machine(),
                          "threads": torch.get_num_threads(), "cores": os.cpu_count(), "torch": torch.__version__,
                          "python": platform.python_version(), "gankit": gankit.__version__},
              "matmul_peak_gflops": {"fp32": round(matmul_peak(torch.float32, device), 1),
                                     # generic code on CPUs without bf16 support: 2048^3 would take minutes
                                     "bf16": round(matmul_peak(torch.bfloat16, device, *(
                                         (2048, 10) if bf16_native else (512, 2))), 1)},
              "bf16_supported": bf16_native,
              "workloads": {}}
    gankit_precision = "bf16" if "train.precision=bf16" in args.overrides else "fp32"
    for name in args.workloads.split(","):
        result["workloads"][name] = run_workload(name, args, images, device)
        for side, precision in (("gankit", gankit_precision), ("plain", "fp32")):
            w = result["workloads"][name][side]  # a rate, not a bound: oneDNN's convolutions can beat it
            w[f"relative_to_{precision}_matmul_rate"] = round(w["gflops"] / result["matmul_peak_gflops"][precision], 4)
    result["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
