"""The trainer decides *when*: the loop, device, seeds, logging, sample grids and checkpoints.

It knows nothing of generators or discriminators: a recipe (see :mod:`gankit.recipes`) owns one training step and
the optimizers; the trainer sees only ``recipe.optimizers``, the modules it built and the logs a step returns.

Run directory::

    RUN/config.yaml                   the resolved config (a run can be rebuilt from it alone)
    RUN/metrics.jsonl                 one JSON row every train.log_every steps
    RUN/samples/step_0000500.png      grids from fixed noise (scatter plots for 2-D data)
    RUN/eval/step_0001000.json        an evaluation every train.eval_every steps (FID, KID, ... with provenance)
    RUN/checkpoints/step_0001000.safetensors, RUN/checkpoints/latest.json
    RUN/checkpoints/best.safetensors, RUN/checkpoints/best.json   the checkpoint with the lowest FID so far
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .. import __version__
from ..config import Config, save_config, to_dict
from ..data import load_dataset
from ..data.sampler import BatchSampler
from ..errors import ConfigError, GankitError
from ..images import save_grid, save_scatter
from ..models import build_models
from ..registry import RECIPES
from . import checkpoint as ckpt

TOY_POINTS = 1000  # generated points drawn in each 2-D scatter plot


def derive_seed(seed: int, purpose: str) -> int:
    """An independent 63-bit seed for one purpose (weights, data order, noise, grid) from the run's seed."""
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; anything else is taken as given (and checked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GankitError(f"train.device={name!r} but CUDA is not available here; use train.device=cpu or auto")
    return device


class Trainer:
    """Trains the registered model family ``cfg.model.name`` with the recipe ``cfg.recipe.name``."""

    def __init__(self, cfg: Config, run_dir: str | Path) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.device = resolve_device(cfg.train.device)
        seed = cfg.train.seed
        data = load_dataset(cfg.data, "train", seed=seed)
        self.data_info = {"sample_shape": list(data.sample_shape), "num_classes": data.num_classes,
                          "is_image": data.is_image, "dataset": cfg.data.name, "size": len(data)}
        self.modules = build_models(cfg.model, data.sample_shape, data.num_classes, derive_seed(seed, "weights"))
        for module in self.modules.values():
            module.to(self.device).train()
        self.recipe = RECIPES.get(cfg.recipe.name)(cfg.recipe, self.modules, cfg.optim)
        self.sampler = BatchSampler(data, derive_seed(seed, "data"), self.device)
        self.noise = torch.Generator(self.device).manual_seed(derive_seed(seed, "noise"))
        self.preview = self._preview_latents(data)
        self.real_preview = None if data.is_image else data.x[:TOY_POINTS * 2]  # grey dots behind 2-D plots
        self.step = 0
        self.log = MetricsLog(self.run_dir / "metrics.jsonl")
        self.evaluation = self._make_evaluation()
        self.best: dict | None = None  # {"step", "fid"} of the best checkpoint so far

    def _preview_latents(self, data) -> torch.Tensor:
        """Fixed noise for the sample grids, so successive grids show the same codes."""
        n = self.cfg.train.grid_rows ** 2 if data.is_image else TOY_POINTS
        g = torch.Generator(self.device).manual_seed(derive_seed(self.cfg.train.seed, "preview"))
        return self.modules["generator"].sample_latent(n, generator=g)

    def _make_evaluation(self):
        """The evaluator and reference features for periodic evaluation, or None when it is off or impossible."""
        from ..metrics.evaluate import EvalSettings, Evaluation
        from ..metrics.evaluator import default_evaluator

        tc = self.cfg.train
        if tc.eval_every == 0:
            return None
        if tc.evaluator is None and self.cfg.data.name != "toy2d" and default_evaluator(self.cfg.data.name) is None:
            tqdm.write(f"note: no evaluation during training: data {self.cfg.data.name!r} has no built-in "
                       "evaluator (train one with `gankit evaluator train` and set train.evaluator)")
            return None
        settings = EvalSettings(n=tc.eval_samples, evaluator=tc.evaluator, device=str(self.device))
        evaluation = Evaluation(self.cfg.data, settings)
        problems = evaluation.check_sizes(tc.eval_samples)
        if problems:
            raise ConfigError(f"train.eval_samples={tc.eval_samples}: {problems[0]}; raise train.eval_samples or "
                              "set train.eval_every=0")
        return evaluation

    # ------------------------------------------------------------------------------------------------------------
    # The loop

    def fit(self) -> Path:
        """Train until ``train.steps`` (or ``train.max_minutes``); returns the run directory."""
        tc = self.cfg.train
        self.run_dir.mkdir(parents=True, exist_ok=True)
        save_config(self.cfg, self.run_dir / "config.yaml")
        start, window = time.monotonic(), _Window()
        bar = tqdm(total=tc.steps, initial=self.step, disable=not tc.progress, dynamic_ncols=True,
                   desc="train", unit="step", mininterval=0.5)
        try:
            while self.step < tc.steps:
                window.add(self.recipe.step(self.sampler, self.noise, tc.batch_size))
                self.step += 1
                bar.update(1)
                self._periodic(window, bar)
                if tc.max_minutes is not None and time.monotonic() - start > 60 * tc.max_minutes:
                    tqdm.write(f"train.max_minutes={tc.max_minutes} reached at step {self.step}: stopping cleanly")
                    break
        except KeyboardInterrupt:
            self.save_checkpoint()
            bar.close()
            raise GankitError(f"interrupted at step {self.step}; checkpoint saved. Continue with: gankit train "
                              f"--out {self.run_dir} --resume") from None
        bar.close()
        self._finish(window)
        return self.run_dir

    def _periodic(self, window: "_Window", bar) -> None:
        tc = self.cfg.train
        if self.step % tc.log_every == 0:
            row = window.flush(self.step)
            self.log.write(row)
            bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k in ("d_loss", "g_loss", "d_real", "d_fake")})
        if self.step % tc.sample_every == 0:
            self.save_samples()
        if tc.eval_every and self.step % tc.eval_every == 0:
            self.evaluate()  # before the checkpoint, so that it records the best-so-far
        if self.step % tc.checkpoint_every == 0:
            self.save_checkpoint()

    def _finish(self, window: "_Window") -> None:
        tc = self.cfg.train
        if window.count:
            self.log.write(window.flush(self.step))
        if self.step % tc.sample_every != 0:
            self.save_samples()
        if tc.eval_every and self.step % tc.eval_every != 0:
            self.evaluate()
        if self.step % tc.checkpoint_every != 0:
            self.save_checkpoint()

    # ------------------------------------------------------------------------------------------------------------
    # Samples

    def samples_path(self, step: int | None = None) -> Path:
        """Where the grid of ``step`` (default: the current one) is written."""
        return self.run_dir / "samples" / f"step_{self.step if step is None else step:07d}.png"

    @torch.no_grad()
    def save_samples(self) -> Path:
        """Write a grid (or a scatter plot for 2-D data) of the generator's output on the fixed noise."""
        G = self.modules["generator"]
        was_training = G.training
        G.eval()
        out = G(self.preview)
        G.train(was_training)
        if self.real_preview is None:
            return save_grid(out, self.samples_path(), nrow=self.cfg.train.grid_rows)
        return save_scatter(self.real_preview, out, self.samples_path())

    # ------------------------------------------------------------------------------------------------------------
    # Evaluation

    @torch.no_grad()
    def evaluate(self) -> dict | None:
        """Score ``train.eval_samples`` samples (always from the same noise), log them, keep the best checkpoint."""
        if self.evaluation is None:
            return None
        G = self.modules["generator"]
        was_training = G.training
        G.eval()
        g = torch.Generator(self.device).manual_seed(derive_seed(self.cfg.train.seed, "eval"))
        n, chunk = self.cfg.train.eval_samples, 1000
        x = torch.cat([G.sample(min(chunk, n - i), generator=g) for i in range(0, n, chunk)])
        G.train(was_training)
        result = self.evaluation.score(x, source=f"{self.run_dir} (step {self.step}, training-time evaluation)")
        result["step"] = self.step
        _write_json_atomic(self.run_dir / "eval" / f"step_{self.step:07d}.json", result)
        scalars = {f"eval/{k}": v for k, v in result.items() if isinstance(v, (int, float)) and k != "step"}
        self.log.write({"step": self.step, **scalars})
        if self.best is None or result["fid"] < self.best["fid"]:
            self.best = {"step": self.step, "fid": result["fid"]}
            self.save_checkpoint(best=True)
        summary = ", ".join(f"{k}={result[k]:.4g}" for k in ("fid", "kid", "precision", "recall", "modes")
                            if k in result)
        tqdm.write(f"eval at step {self.step}: {summary} (best fid {self.best['fid']:.4g} at step "
                   f"{self.best['step']})")
        return result

    # ------------------------------------------------------------------------------------------------------------
    # Checkpoints

    def save_checkpoint(self, best: bool = False) -> Path:
        """Write everything the run depends on to a new step checkpoint and point ``latest.json`` at it; with
        ``best``, to ``best.safetensors`` (described by ``best.json``) instead."""
        tensors, optim_meta = {}, {}
        for name, module in self.modules.items():
            tensors.update(ckpt.pack(f"model.{name}", module.state_dict()))
        for name, opt in self.recipe.optimizers.items():
            t, optim_meta[name] = ckpt.optimizer_state(opt)
            tensors.update(ckpt.pack(f"optim.{name}", t))
        tensors.update(ckpt.pack("sampler", self.sampler.state_dict()))
        tensors["rng.noise"] = self.noise.get_state()
        meta = {"step": self.step, "config": to_dict(self.cfg), "data": self.data_info, "optim": optim_meta,
                "best": self.best, "versions": {"gankit": __version__, "torch": torch.__version__}}
        folder = self.run_dir / "checkpoints"
        if best:
            path = ckpt.save_checkpoint(folder / "best.safetensors", tensors, meta)
            _write_json_atomic(folder / "best.json", {**self.best, "file": path.name})
            return path
        path = ckpt.save_checkpoint(folder / f"step_{self.step:07d}.safetensors", tensors, meta)
        _write_json_atomic(folder / "latest.json", {"step": self.step, "file": path.name})
        self._prune_checkpoints()
        return path

    def _prune_checkpoints(self) -> None:
        files = sorted((self.run_dir / "checkpoints").glob("step_*.safetensors"))
        for old in files[:-self.cfg.train.keep_checkpoints]:
            old.unlink()

    def resume(self) -> None:
        """Restore models, optimizers, data position, noise RNG and step from the run's latest checkpoint."""
        tensors, meta = ckpt.load_checkpoint(latest_checkpoint(self.run_dir), self.device)
        for name, module in self.modules.items():
            ckpt.load_module_state(module, ckpt.unpack(f"model.{name}", tensors), f"{name} weights")
        for name, opt in self.recipe.optimizers.items():
            ckpt.load_optimizer_state(opt, ckpt.unpack(f"optim.{name}", tensors), meta["optim"][name])
        self.sampler.load_state_dict({k: v.cpu() for k, v in ckpt.unpack("sampler", tensors).items()})
        self.noise.set_state(tensors["rng.noise"].cpu())
        self.step = int(meta["step"])
        self.best = meta.get("best")
        self.log.truncate_after(self.step)
        if self.step >= self.cfg.train.steps:
            raise GankitError(f"{self.run_dir} is already at step {self.step} >= train.steps="
                              f"{self.cfg.train.steps}; raise it to continue, e.g. --set train.steps="
                              f"{self.step * 2}")


def latest_checkpoint(run_dir: str | Path) -> Path:
    """The newest checkpoint of a run: the one ``latest.json`` names, else the highest step on disk."""
    folder = Path(run_dir) / "checkpoints"
    pointer = folder / "latest.json"
    if pointer.is_file():
        path = folder / json.loads(pointer.read_text())["file"]
        if path.is_file():
            return path
    files = sorted(folder.glob("step_*.safetensors"))
    if not files:
        raise GankitError(f"no checkpoint in {folder}: train the run first (gankit train ... --out {run_dir})")
    return files[-1]


def _write_json_atomic(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


class _Window:
    """Sums of a step's logged tensors between two log rows; converted to floats only when a row is written."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.since = time.monotonic()

    def add(self, logs: dict[str, torch.Tensor]) -> None:
        for k, v in logs.items():
            self.sums[k] = self.sums[k] + v if k in self.sums else v.detach().clone()
        self.count += 1

    def flush(self, step: int) -> dict:
        now = time.monotonic()
        row = {"step": step, **{k: float(v) / self.count for k, v in self.sums.items()},
               "steps_per_s": self.count / max(now - self.since, 1e-9)}
        bad = [k for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)]
        if bad:
            tqdm.write(f"warning: non-finite {', '.join(bad)} at step {step}")
        self.sums, self.count, self.since = {}, 0, now
        return row


class MetricsLog:
    """Append-only ``metrics.jsonl``; on resume, rows written after the restored step are dropped."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, row: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as fh:
            fh.write(json.dumps({**row, "time": round(time.time(), 3)}) + "\n")

    def truncate_after(self, step: int) -> None:
        if not self.path.is_file():
            return
        rows = [line for line in self.path.read_text().splitlines() if line.strip()]
        kept = [line for line in rows if json.loads(line).get("step", 0) <= step]
        self.path.write_text("".join(line + "\n" for line in kept))
