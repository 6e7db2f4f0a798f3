"""The Python API: everything the CLI does is one call here.

    >>> import gankit
    >>> run = gankit.train("configs/seed_gan_mnist.yaml", overrides=["train.steps=200"], out="runs/seed")
    >>> images = gankit.load(run).sample(16, seed=0)     # (16, 1, 28, 28) in [-1, 1]
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import torch

from .config import Config, from_dict, load_config, read_yaml, apply_override
from .errors import GankitError
from .images import save_grid, save_scatter, to_uint8
from .models import build_models
from .train import Trainer, latest_checkpoint
from .train import checkpoint as ckpt


def train(config: Config | str | Path | None = None, *, overrides: list[str] | tuple[str, ...] = (),
          out: str | Path | None = None, resume: bool = False, overwrite: bool = False) -> Path:
    """Train a run and return its directory. ``config`` is a Config, a YAML path, or None for the defaults."""
    if resume:
        return _resume(config, overrides, out)
    if isinstance(config, Config) and overrides:
        raise GankitError("pass overrides with a YAML path, or apply them to the Config yourself")
    cfg = config if isinstance(config, Config) else load_config(config, overrides)
    run_dir = Path(out) if out is not None else next_run_dir(Path("runs"), _config_name(config))
    _claim_run_dir(run_dir, overwrite)
    return Trainer(cfg, run_dir).fit()


def _resume(config, overrides, out) -> Path:
    if out is None:
        raise GankitError("--resume needs the run directory: --out RUN_DIR")
    run_dir = Path(out)
    if isinstance(config, Config):
        cfg = config
    else:
        raw = read_yaml(config if config is not None else run_dir / "config.yaml")
        for item in overrides:
            apply_override(raw, item)
        cfg = from_dict(raw)
    latest_checkpoint(run_dir)  # fail early, with a clear message, when there is nothing to resume
    trainer = Trainer(cfg, run_dir)
    trainer.resume()
    return trainer.fit()


def _config_name(config) -> str:
    return Path(config).stem if isinstance(config, (str, Path)) else "default"


def next_run_dir(root: Path, name: str) -> Path:
    """``root/NNNNN-name`` with the next free number, so runs never overwrite each other."""
    taken = [int(m.group(1)) for p in root.glob("*") if (m := re.match(r"(\d{5})-", p.name))]
    return root / f"{max(taken, default=0) + 1:05d}-{name}"


def _claim_run_dir(run_dir: Path, overwrite: bool) -> None:
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise GankitError(f"run directory {run_dir} already exists; pass --resume to continue it or "
                              "--overwrite to replace it")
        shutil.rmtree(run_dir)


class LoadedRun:
    """A trained run rebuilt from one checkpoint: its config, modules and the uniform ``sample`` verb."""

    def __init__(self, config: Config, modules: dict[str, torch.nn.Module], step: int, data_info: dict) -> None:
        self.config = config
        self.modules = modules
        self.step = step
        self.data_info = data_info

    @property
    def generator(self) -> torch.nn.Module:
        """The generator module (in eval mode)."""
        return self.modules["generator"]

    @torch.no_grad()
    def sample(self, n: int, *, seed: int | None = None, labels: torch.Tensor | None = None,
               generator: torch.Generator | None = None, batch_size: int = 1000) -> torch.Tensor:
        """n samples on the CPU: images (n, C, H, W) in [-1, 1], or points (n, D). ``seed`` makes them repeatable."""
        if generator is None:
            device = next(self.generator.parameters()).device
            generator = torch.Generator(device)
            if seed is None:
                generator.seed()  # fresh entropy
            else:
                generator.manual_seed(seed)
        chunks = []
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            part = None if labels is None else labels[start:start + m]
            chunks.append(self.generator.sample(m, labels=part, generator=generator).cpu())
        return torch.cat(chunks)


def load(path: str | Path, device: str | torch.device = "cpu") -> LoadedRun:
    """Rebuild a run from a run directory (its latest checkpoint) or from a checkpoint file alone."""
    path = Path(path)
    if not path.exists():
        raise GankitError(f"no run or checkpoint at {path}")
    file = latest_checkpoint(path) if path.is_dir() else path
    tensors, meta = ckpt.load_checkpoint(file, device)
    cfg = from_dict(meta["config"])
    data = meta["data"]
    modules = build_models(cfg.model, tuple(data["sample_shape"]), data["num_classes"], seed=0)
    for name, module in modules.items():
        ckpt.load_module_state(module, ckpt.unpack(f"model.{name}", tensors), f"{name} weights")
        module.to(device).eval()
    return LoadedRun(cfg, modules, int(meta["step"]), data)


def save_samples(samples: torch.Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """``.png``: a grid (a scatter plot for 2-D points); ``.npz``: ``arr_0`` as uint8 (N, H, W, C) for images,
    float32 (N, D) for points."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".png":
        if samples.dim() == 2 and samples.shape[1] == 2:
            return save_scatter(None, samples, path)
        if samples.dim() != 4:
            raise GankitError(f"cannot draw samples of shape {tuple(samples.shape[1:])} as a .png; use .npz")
        return save_grid(samples, path, nrow=nrow)
    if path.suffix == ".npz":
        arr = to_uint8(samples) if samples.dim() == 4 else samples.float().cpu().numpy()
        np.savez(path, arr_0=arr)
        return path
    raise GankitError(f"cannot write samples to {path}: use a .png (grid) or .npz (arrays) file name")
