"""The trainer decides *when*: the loop, device, seeds, logging, sample grids and checkpoints.

It knows nothing of generators or discriminators: a recipe (see :mod:`gankit.recipes`) owns one training step and
the optimizers; the trainer sees only ``recipe.optimizers``, the modules it built and the logs a step returns.

Run directory::

    RUN/config.yaml                   the resolved config (a run can be rebuilt from it alone)
    RUN/metrics.jsonl                 one JSON row every train.log_every steps
    RUN/samples/step_0000500.png      grids from fixed noise (scatter plots for 2-D data)
    RUN/eval/step_0001000.json        an evaluation every train.eval_every steps (FID, KID, ... with provenance;
                                      a regressor's test RMSE, MAE and R^2)
    RUN/checkpoints/step_0001000.safetensors, RUN/checkpoints/latest.json
    RUN/checkpoints/best.safetensors, RUN/checkpoints/best.json   the checkpoint with the lowest FID so far (a
                                      regressor's: the lowest test RMSE in standardised units)

Under ``torchrun`` the run is data-parallel (see :mod:`gankit.train.distributed`): ``train.batch_size`` is the
global batch, gradients are averaged before every update, and rank 0 alone writes the run directory.

Reliability: a step-0 checkpoint is written before the first step, so there is always one to resume or roll back
to; SIGTERM and SIGINT stop the loop after the current step, save a checkpoint and exit with a message; a NaN or Inf
in a log row or in the weights (checked before every checkpoint) rolls the run back to its latest checkpoint and
retries with ``health.remedy`` (see :mod:`gankit.train.health`).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .. import __version__
from ..config import Config, save_config, to_dict
from ..data import load_dataset
from ..data.base import ArrayData
from ..data.sampler import BatchSampler
from ..errors import ConfigError, DataError, GankitError, Interrupted, MissingSplitError
from ..images import save_grid, save_scatter, to_channels
from ..metrics.evaluate import EvalSettings, Evaluation
from ..metrics.evaluator import default_evaluator
from ..models import build_models
from ..registry import RECIPES
from . import checkpoint as ckpt
from .distributed import Distributed, convert_sync_batchnorm, sharding
from .ema import EMA
from .health import CollapseMonitor, diversity, nonfinite_keys, nonfinite_parameters
from .precision import autocast_factory, bf16_note, compile_modules, use_channels_last
from .schedule import apply_schedule, init_base_lr, lr_factor, scale_base_lr, set_base_lr
from .checkpoint import checkpoints_newest_first, latest_checkpoint  # noqa: F401  (re-exported: their old home)

TOY_POINTS = 1000  # generated points drawn in each 2-D scatter plot
SHOWN = ("d_loss", "g_loss", "d_real", "d_fake", "loss", "recon", "kl", "rmse")  # log keys on the progress bar


def derive_seed(seed: int, purpose: str) -> int:
    """An independent 63-bit seed for one purpose (weights, data order, noise, grid) from the run's seed."""
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; anything else is taken as given (and checked). Under torchrun, ``cuda``
    means the GPU of this process's LOCAL_RANK."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GankitError(f"train.device={name!r} but CUDA is not available here; use train.device=cpu or auto")
    if device.type == "cuda" and device.index is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)
    return device


class Trainer:
    """Trains the registered model family ``cfg.model.name`` with the recipe ``cfg.recipe.name``."""

    def __init__(self, cfg: Config, run_dir: str | Path) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.device = resolve_device(cfg.train.device)
        self.dist = Distributed.from_env(self.device)
        self.local_batch = self.dist.local_batch(cfg.train.batch_size)
        if self.dist.active and getattr(cfg.recipe, "schedule", "") == "keras" and self.local_batch % 2:
            raise ConfigError(f"recipe.schedule=keras halves each rank's batch: train.batch_size={cfg.train.batch_size}"
                              f" over {self.dist.world} processes gives an odd {self.local_batch}; use a batch size "
                              f"divisible by {2 * self.dist.world}")
        seed = cfg.train.seed
        # ops that take no generator (dropout, say) draw from torch's global one: seed it for the run, and save it
        self._seed_torch(derive_seed(seed, "torch"))
        data = load_dataset(cfg.data, "train", seed=seed)
        self.data_info = {"sample_shape": list(data.sample_shape), "num_classes": data.num_classes,
                          "is_image": data.is_image, "dataset": cfg.data.name, "size": len(data)}
        if data.is_translation:
            self.data_info["channels_a"] = data.channels_a
        if hasattr(cfg.model, "channels_a") and data.is_translation:  # a translation model takes A's channels
            if cfg.model.channels_a not in (0, data.channels_a):
                raise ConfigError(f"model.channels_a={cfg.model.channels_a} but data {cfg.data.name!r} has A images of "
                                  f"{data.channels_a} channel(s): leave model.channels_a at 0 (taken from the data)")
            cfg.model.channels_a = data.channels_a  # recorded in the resolved config: the run rebuilds from it
        self.modules = build_models(cfg.model, data.sample_shape, data.num_classes, derive_seed(seed, "weights"))
        if cfg.train.sync_bn and self.dist.active:
            self.modules = {k: convert_sync_batchnorm(m, self.device) for k, m in self.modules.items()}
        for module in self.modules.values():
            module.to(self.device).train()
            self.dist.broadcast_module(module)  # identical already (same seed); made certain, as DDP does
        if cfg.train.channels_last:
            use_channels_last(self.modules)
        self.recipe = RECIPES.get(cfg.recipe.name)(cfg.recipe, self.modules, cfg.optim)
        for opt in self.recipe.optimizers.values():
            self.dist.average_gradients_before_steps(opt)
        self.autocast = autocast_factory(self.device, cfg.train.precision)
        if cfg.train.precision == "bf16" and (note := bf16_note(self.device)):
            _say(f"warning: {note}")
        for opt in self.recipe.optimizers.values():
            init_base_lr(opt)
        if cfg.train.batch_size > len(data):
            raise ConfigError(f"train.batch_size={cfg.train.batch_size} is larger than the dataset ({len(data)} "
                              "samples): lower train.batch_size")
        if hasattr(self.recipe, "validate"):
            self.recipe.validate(data, self.local_batch)  # before anything is written (each rank's share)
        if hasattr(self.recipe, "prepare"):
            self.recipe.prepare(data)  # statistics of the training data (a regressor's standardisation, ...)
        # the module that draws samples; a model without one (a regressor) gets no grids, evaluation or EMA
        self.G = self.modules.get("generator")
        if self.G is None and cfg.train.ema:
            raise ConfigError(f"train.ema={cfg.train.ema}: model {cfg.model.name!r} has no generator to average; "
                              "set train.ema=0")
        self.ema = EMA(self.G, cfg.train.ema) if cfg.train.ema else None
        self.sampler = BatchSampler(data, derive_seed(seed, "data"), self.device)
        self.noise = torch.Generator(self.device).manual_seed(derive_seed(seed, "noise"))
        self.step = 0
        self.log = MetricsLog(self.run_dir / "metrics.jsonl", enabled=self.dist.is_main)
        self.best: dict | None = None  # {"step", "fid"} (a regressor: {"step", "rmse"}) of the best checkpoint so far
        self.retries = 0  # rollbacks after non-finite values, over the whole run
        self.window = _Window()
        self.signal: int | None = None  # set by the SIGTERM/SIGINT handler; the loop stops after the current step
        self.preview = self.preview_labels = self.preview_real = self.real_preview = None
        self.grid_cols = cfg.train.grid_rows
        self.evaluation = None
        self.monitor = CollapseMonitor(cfg.health, 0.0)
        # images are drawn as grids and 2-D points as scatter plots; other vectors (a table's rows) are not drawn
        self.drawable = data.is_image or tuple(data.sample_shape) == (2,)
        if self.G is not None and not self.drawable:
            _say(f"note: no sample grids: data {cfg.data.name!r} holds {data.sample_shape[0]}-d vectors, which are "
                 "neither images nor 2-D points")
        if self.G is not None and data.is_translation:
            # translation: grids of fixed A images, their translations, and B (paired) or the cycle's return
            pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(derive_seed(seed, "recon")))
            self.grid_cols = 2 * cfg.train.grid_rows
            self.preview_real = data.x[pick[:self.grid_cols]].to(self.device)
            self.preview = self.preview_real
            self.real_preview = None
            self.monitor = CollapseMonitor(cfg.health, diversity(data.b[:64]))
            if cfg.train.eval_every:
                _say("note: no evaluation during training for a translation model yet (score a run with "
                     f"`gankit eval {self.run_dir}`); the grids are in {self.run_dir / 'samples'}")
        elif self.G is not None:
            self.preview, self.preview_labels, self.grid_cols = self._preview_codes(data)
            if hasattr(self.G, "encode"):  # autoencoders: grids of fixed real images and their reconstructions
                pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(derive_seed(seed, "recon")))
                self.preview_real = data.x[pick[:self.grid_cols * (self.grid_cols // 2)]].to(self.device)
            self.real_preview = None if data.is_image else data.x[:TOY_POINTS * 2]  # grey dots behind 2-D plots
            self.evaluation = self.dist.on_main(self._make_evaluation)
            self.monitor = CollapseMonitor(cfg.health, diversity(data.x[:len(self.preview)]))
        self.test_data = self.dist.on_main(lambda: self._recipe_test_split(data)) if self.G is None else None
        if cfg.train.compile and cfg.model.name == "stylegan":
            _say("note: train.compile=true is not applied to StyleGAN yet (its step calls the mapping and synthesis "
                 "networks directly, and a fade-in changes alpha every step): it runs eagerly")
        elif cfg.train.compile:  # last: the EMA copy above must be taken of the uncompiled generator
            # compiled code has no double backward, which WGAN-GP and R1 take through D
            double_backward = getattr(cfg.recipe, "penalty", "none") != "none"
            skip = {"discriminator"} if double_backward else set()
            note = compile_modules({k: m for k, m in self.modules.items() if k not in skip})
            if skip and not note:
                note = (f"train.compile=true: the discriminator runs uncompiled (recipe.penalty={cfg.recipe.penalty} "
                        "differentiates through it twice, which compiled code does not support)")
            if note:
                _say(f"note: {note}")

    def _seed_torch(self, seed: int) -> None:
        """Seed torch's global generators; under torchrun every rank other than 0 gets its own stream (dropout masks
        differ between the ranks' samples), derived from ``seed``."""
        torch.manual_seed(seed if self.dist.is_main else derive_seed(seed, f"rank{self.dist.rank}"))

    def _preview_codes(self, data) -> tuple[torch.Tensor, torch.Tensor | None, int]:
        """Fixed noise (and labels) for the sample grids, so successive grids show the same codes; a conditional
        generator's grid has one row per class (up to 16 classes). Returns (codes, labels, columns)."""
        G = self.G
        g = torch.Generator(self.device).manual_seed(derive_seed(self.cfg.train.seed, "preview"))
        k = getattr(G, "num_classes", 0)
        if data.is_image and 2 <= k <= 16:
            labels = torch.arange(k, device=self.device).repeat_interleave(k)  # row i: class i
            return G.sample_latent(k * k, generator=g), labels, k
        n = self.cfg.train.grid_rows ** 2 if data.is_image else TOY_POINTS
        return G.sample_latent(n, generator=g), G.sample_labels(n, generator=g), self.cfg.train.grid_rows

    @property
    def sampling_generator(self) -> torch.nn.Module:
        """The generator that draws grids and evaluation samples: the EMA copy when there is one."""
        return self.ema.module if self.ema is not None else self.G

    def saved_modules(self) -> dict[str, torch.nn.Module]:
        """Every module a checkpoint holds (the EMA generator as ``generator_ema``)."""
        extra = {"generator_ema": self.ema.module} if self.ema is not None else {}
        return {**self.modules, **extra}

    def _make_evaluation(self) -> Evaluation | None:
        """The evaluator and reference features for periodic evaluation, or None when it is off or impossible."""
        tc = self.cfg.train
        if tc.eval_every == 0:
            return None
        if not getattr(self.G, "has_prior", True):
            _say("note: no evaluation during training: a plain autoencoder has no prior to sample from (score its "
                 "reconstructions with `gankit eval RUN`)")
            return None
        if tc.evaluator is None and self.cfg.data.name != "toy2d" and default_evaluator(self.cfg.data.name, self.cfg.data.domain) is None:
            _say(f"note: no evaluation during training: data {self.cfg.data.name!r} has no built-in "
                       "evaluator (train one with `gankit evaluator train` and set train.evaluator)")
            return None
        settings = EvalSettings(n=tc.eval_samples, evaluator=tc.evaluator, device=str(self.device))
        evaluation = Evaluation(self.cfg.data, settings)
        problems = evaluation.check_sizes(tc.eval_samples)
        if problems:
            raise ConfigError(f"train.eval_samples={tc.eval_samples}: {problems[0]}; raise train.eval_samples or "
                              "set train.eval_every=0")
        return evaluation

    def _recipe_test_split(self, train) -> ArrayData | None:
        """For a model without a generator whose recipe scores itself (a regressor): the test split it is scored on
        every ``train.eval_every`` steps, on the device; None when evaluation is off or there is no test split."""
        if self.cfg.train.eval_every == 0 or not hasattr(self.recipe, "score"):
            return None
        try:
            test = load_dataset(self.cfg.data, "test", seed=self.cfg.train.seed)
        except MissingSplitError as err:  # a corrupt test split is an error like any other
            _say(f"note: no evaluation during training: {err}")
            return None
        where = f"data {self.cfg.data.name!r}" + (f" ({self.cfg.data.root})" if self.cfg.data.root else "")
        if test.sample_shape != train.sample_shape:
            raise DataError(f"{where}: test rows have shape {test.sample_shape}, train rows {train.sample_shape}; "
                            "save x_test with the same columns as x")
        if not test.is_regression:
            raise DataError(f"{where}: the test split has no regression targets; save float y_test beside x_test")
        if test.y.shape[1] != train.y.shape[1]:
            raise DataError(f"{where}: the test split has {test.y.shape[1]} target column(s), the train split "
                            f"{train.y.shape[1]}; save y_test with the same columns as y")
        return test.to(self.device)

    # ------------------------------------------------------------------------------------------------------------
    # The loop

    def fit(self) -> Path:
        """Train until ``train.steps`` (or ``train.max_minutes``, or a signal); returns the run directory."""
        tc = self.cfg.train
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(self.cfg, self.run_dir / "config.yaml")
            ckpt.remove_stale_temporaries(self.run_dir / "checkpoints")
        if self.step >= tc.steps:
            return self.run_dir  # resumed a finished run: nothing to do (resume() said so)
        if self.step == 0:
            self.save_checkpoint()  # something to roll back or resume to, even if the first steps fail
        self.dist.barrier()
        deadline = None if tc.max_minutes is None else time.monotonic() + 60 * tc.max_minutes
        bar = tqdm(total=tc.steps, initial=self.step, disable=not (tc.progress and self.dist.is_main),
                   dynamic_ncols=True, desc="train", unit="step", mininterval=0.5)
        with self._stop_on_signals():
            self._loop(bar, deadline)
            while not self._finish(bar):  # a rollback at the very end: train the lost steps again
                self._loop(bar, deadline)
        bar.close()
        self.dist.barrier()  # rank 0's last files are written when any rank returns
        return self.run_dir

    def _loop(self, bar, deadline: float | None) -> None:
        tc = self.cfg.train
        while self.step < tc.steps:
            if self.cfg.optim.schedule != "constant":
                factor = lr_factor(self.cfg.optim, self.step, tc.steps)
                for opt in self.recipe.optimizers.values():
                    apply_schedule(opt, factor)
            with self.autocast(), sharding(self.dist.shard):
                logs = self.recipe.step(self.sampler, self.noise, self.local_batch)
            if self.dist.active:
                for module in self.modules.values():
                    self.dist.broadcast_module(module, buffers_only=True)
            self.window.add(logs)
            if self.ema is not None:
                self.ema.update(self.G, self.step)
            self.step += 1
            self._periodic(bar)
            bar.update(self.step - bar.n)  # a rollback moves the step back
            signalled = self.signal is not None
            late = deadline is not None and time.monotonic() > deadline
            if self.dist.active:  # every rank stops at the same step (a CPU all-reduce: no GPU sync)
                signalled, late = self.dist.any_of([signalled, late])
            if signalled:
                self._stop_for_signal(bar)
            if late:
                _say(f"train.max_minutes={tc.max_minutes} reached at step {self.step}: stopping cleanly")
                return

    @contextmanager
    def _stop_on_signals(self):
        """While training, SIGTERM and SIGINT ask the loop to stop after the current step (a second SIGINT
        interrupts at once)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def ask_to_stop(signum, frame):
            if self.signal is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.signal = signum

        previous = {sig: signal.signal(sig, ask_to_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop_for_signal(self, bar) -> None:
        if self.signal is None:  # another rank was signalled
            self.signal = signal.SIGTERM
        name = signal.Signals(self.signal).name
        bar.close()
        if nonfinite_parameters(self.modules):  # never make a NaN checkpoint the latest one
            raise Interrupted(f"{name} received at step {self.step}; the weights hold NaN or Inf, so no checkpoint "
                              f"was saved: --resume continues from {latest_checkpoint(self.run_dir)}",
                              exit_code=128 + self.signal)
        path = self.save_checkpoint()
        self.dist.barrier()  # no rank exits (and makes torchrun stop the others) before the checkpoint is written
        raise Interrupted(f"{name} received: stopped at step {self.step}, checkpoint saved to {path}. Continue "
                          f"with: gankit train --out {self.run_dir} --resume", exit_code=128 + self.signal)

    def _periodic(self, bar) -> None:
        tc = self.cfg.train
        if self.step % tc.log_every == 0 and not self._log_row(bar):
            return  # rolled back
        if self.step % tc.sample_every == 0:
            self.save_samples()
        if tc.eval_every and self.step % tc.eval_every == 0:
            self.evaluate()  # before the checkpoint, so that it records the best-so-far
        if self.step % tc.checkpoint_every == 0:
            self._checked_checkpoint()

    def _log_row(self, bar) -> bool:
        """Write the window's log row; False when it held a NaN or Inf and the run was rolled back."""
        row = self.window.flush(self.step, self.dist)
        bad = nonfinite_keys(row)
        if bad:
            self._recover(f"non-finite {', '.join(bad)} in the losses")
            return False
        if self.cfg.optim.schedule != "constant":
            row.update({f"lr/{name}": opt.param_groups[0]["lr"] for name, opt in self.recipe.optimizers.items()})
        self.log.write(row)
        self._warn(self.monitor.observe_row(row))
        shown = {k: f"{v:.3f}" for k, v in row.items() if k in SHOWN}
        if self.monitor.active:
            shown["warn"] = "+".join(sorted(self.monitor.active))
        bar.set_postfix(shown)
        return True

    def _checked_checkpoint(self) -> bool:
        """A checkpoint, unless the weights hold a NaN or Inf: then the run rolls back instead (False)."""
        bad = nonfinite_parameters(self.modules)
        if bad:
            self._recover(f"non-finite weights ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''})")
            return False
        self.save_checkpoint()
        return True

    def _finish(self, bar) -> bool:
        """The last log row, grid, evaluation and checkpoint; False when a NaN forced a rollback instead."""
        tc = self.cfg.train
        if self.window.count and not self._log_row(bar):
            return False
        if self.step % tc.sample_every != 0:
            self.save_samples()
        if tc.eval_every and self.step % tc.eval_every != 0:
            self.evaluate()
        if self.step % tc.checkpoint_every != 0:
            return self._checked_checkpoint()
        return True

    def _warn(self, warnings: list[str]) -> None:
        for message in warnings:
            _say(f"warning at step {self.step}: {message}")
            self.log.write({"step": self.step, "warning": message})

    # ------------------------------------------------------------------------------------------------------------
    # Health: rolling back after a NaN or Inf

    def _recover(self, reason: str) -> None:
        """Roll back to the latest checkpoint and retry with ``health.remedy``, or stop with a report."""
        hc, failed_step = self.cfg.health, self.step
        self.retries += 1
        if hc.on_nonfinite == "stop" or self.retries > hc.retries:
            self.log.write({"step": failed_step, "event": "stopped", "reason": reason, "rollbacks": self.retries - 1})
            self.dist.barrier()  # rank 0 has written the row before any rank exits
            good = latest_checkpoint(self.run_dir)
            raise GankitError(f"{reason} at step {failed_step}; stopped after {self.retries - 1} rollback(s) "
                              f"(health.retries={hc.retries}). The last good checkpoint is {good}: lower optim.lr_g "
                              "and optim.lr_d, try another recipe.loss, or raise health.retries, then --resume")
        skipped = (self.sampler.state_dict(), self.noise.get_state()) if hc.remedy == "skip" else None
        retries = self.retries
        self.dist.barrier()  # rank 0 has finished writing the checkpoint every rank now reads
        self.restore(latest_checkpoint(self.run_dir))
        self.retries = retries  # the count covers the whole run, not only up to the restored checkpoint
        if skipped is not None:  # go on from where the failed attempt was: its batches and noise are skipped
            self.sampler.load_state_dict({k: v.clone() for k, v in skipped[0].items()})
            self.noise.set_state(skipped[1])
        else:
            for opt in self.recipe.optimizers.values():
                scale_base_lr(opt, hc.lr_factor)
        self.window = _Window()
        lrs = {name: opt.param_groups[0]["base_lr"] for name, opt in self.recipe.optimizers.items()}
        self.log.write({"step": self.step, "event": "rollback", "reason": reason, "failed_step": failed_step,
                        "remedy": hc.remedy, "retry": self.retries, "lr": lrs})
        _say(f"warning: {reason} at step {failed_step}: rolled back to step {self.step}, retry "
             f"{self.retries}/{hc.retries} with remedy {hc.remedy} (learning rates {lrs})")

    # ------------------------------------------------------------------------------------------------------------
    # Samples

    def samples_path(self, step: int | None = None) -> Path:
        """Where the grid of ``step`` (default: the current one) is written."""
        return self.run_dir / "samples" / f"step_{self.step if step is None else step:07d}.png"

    @torch.no_grad()
    def save_samples(self) -> Path | None:
        """Write a grid (or a scatter plot for 2-D data) of the generator's output on the fixed noise; for an
        autoencoder, fixed real images above their reconstructions (``recon_step_*.png`` beside the prior samples of
        a VAE; in place of them for a plain autoencoder, which has no prior)."""
        if self.G is None or not self.drawable or not self.dist.is_main:
            return None
        if self.data_info.get("channels_a"):
            return self._save_translations()
        G = self.sampling_generator
        was_training = G.training
        G.eval()
        try:
            out = G(self.preview, self.preview_labels)
            recon = None if self.preview_real is None else G.reconstruct(self.preview_real)
        finally:
            G.train(was_training)
        if recon is not None:
            pairs = _interleave_rows(self.preview_real, recon, self.grid_cols)
            recon_path = self.samples_path()
            if getattr(G, "has_prior", True):
                recon_path = recon_path.with_name("recon_" + recon_path.name)
            else:
                return save_grid(pairs, recon_path, nrow=self.grid_cols)
            save_grid(pairs, recon_path, nrow=self.grid_cols)
        self._warn(self.monitor.observe_samples(out))
        if self.real_preview is None:
            return save_grid(out, self.samples_path(), nrow=self.grid_cols)
        return save_scatter(self.real_preview, out, self.samples_path())

    def _save_translations(self) -> Path:
        """Rows of fixed A images, their translations, and below each the B image of the pair (paired data) or
        the return trip G_BA(G_AB(A)) (CycleGAN)."""
        c = self.data_info["channels_a"]
        a, b = self.preview_real[:, :c], self.preview_real[:, c:]
        G, G_ba = self.sampling_generator, self.modules.get("generator_ba")
        fake = G.translate(a, generator=torch.Generator(self.device).manual_seed(0))
        third = G_ba.translate(fake) if G_ba is not None else b
        rows = [to_channels(t, max(a.shape[1], b.shape[1])) for t in (a, fake, third)]
        self._warn(self.monitor.observe_samples(fake))
        return save_grid(torch.cat(rows), self.samples_path(), nrow=len(a))

    # ------------------------------------------------------------------------------------------------------------
    # Evaluation

    @torch.no_grad()
    def evaluate(self) -> dict | None:
        """Score ``train.eval_samples`` samples (always from the same noise), log them, keep the best checkpoint (the
        lowest FID). A model without a generator whose recipe scores itself is scored on the test split instead (a
        regressor: the best checkpoint has the lowest test RMSE)."""
        if (self.evaluation is None and self.test_data is None) or nonfinite_parameters(self.saved_modules()):
            # (None on every rank but 0, which alone evaluates)
            return None  # NaN weights: the next log row or checkpoint rolls the run back
        if self.test_data is not None:
            result, key = self.recipe.score(self.test_data), self.recipe.select
            result["provenance"] = {"split": "test", "dataset": self.cfg.data.name, "n": len(self.test_data)}
            shown = ("rmse", "mae", "r2")
        else:
            G = self.sampling_generator
            g = torch.Generator(self.device).manual_seed(derive_seed(self.cfg.train.seed, "eval"))
            n, chunk = self.cfg.train.eval_samples, 1000
            x = torch.cat([G.sample(min(chunk, n - i), generator=g) for i in range(0, n, chunk)])  # eval mode
            result = self.evaluation.score(x, source=f"{self.run_dir} (step {self.step}, training-time evaluation)")
            key, shown = "fid", ("fid", "kid", "precision", "recall", "modes")
        result["step"] = self.step
        _write_json_atomic(self.run_dir / "eval" / f"step_{self.step:07d}.json", result)
        scalars = {f"eval/{k}": v for k, v in result.items() if isinstance(v, (int, float)) and k != "step"}
        self.log.write({"step": self.step, **scalars})
        if self.best is None or result[key] < self.best[key]:
            self.best = {"step": self.step, key: result[key]}
            self.save_checkpoint(best=True)
        summary = ", ".join(f"{k}={result[k]:.4g}" for k in shown if k in result)
        _say(f"eval at step {self.step}: {summary} (best {key} {self.best[key]:.4g} at step {self.best['step']})")
        return result

    # ------------------------------------------------------------------------------------------------------------
    # Checkpoints

    def save_checkpoint(self, best: bool = False) -> Path:
        """Write everything the run depends on to a new step checkpoint and point ``latest.json`` at it; with
        ``best``, to ``best.safetensors`` (described by ``best.json``) instead. Under torchrun only rank 0 writes
        (the others return the path it writes)."""
        folder = self.run_dir / "checkpoints"
        if not self.dist.is_main:
            return folder / ("best.safetensors" if best else ckpt.step_file(self.step))
        tensors, optim_meta = {}, {}
        for name, module in self.saved_modules().items():
            tensors.update(ckpt.pack(f"model.{name}", module.state_dict()))
        for name, opt in self.recipe.optimizers.items():
            t, optim_meta[name] = ckpt.optimizer_state(opt)
            tensors.update(ckpt.pack(f"optim.{name}", t))
        tensors.update(ckpt.pack("sampler", self.sampler.state_dict()))
        if hasattr(self.recipe, "tensor_state"):  # a CycleGAN's history buffers
            tensors.update(ckpt.pack("recipe", self.recipe.tensor_state()))
        tensors.update(_rng_states(self.noise, self.device))
        meta = {"step": self.step, "config": to_dict(self.cfg), "data": self.data_info, "optim": optim_meta,
                "best": self.best, "health": {"retries": self.retries},
                "recipe": self.recipe.state_dict() if hasattr(self.recipe, "state_dict") else {},
                "versions": {"gankit": __version__, "torch": torch.__version__}, "world_size": self.dist.world}
        if best:
            path = ckpt.save_checkpoint(folder / "best.safetensors", tensors, meta)
            _write_json_atomic(folder / "best.json", {**self.best, "file": path.name})
            return path
        path = ckpt.save_checkpoint(folder / ckpt.step_file(self.step), tensors, meta)
        _write_json_atomic(folder / "latest.json", {"step": self.step, "file": path.name})
        ckpt.prune(folder, self.cfg.train.keep_checkpoints)
        return path

    def resume(self) -> None:
        """Continue from the newest readable checkpoint (an unreadable newer one is skipped with a warning)."""
        for path in checkpoints_newest_first(self.run_dir):
            try:
                state = ckpt.load_checkpoint(path, "cpu")
            except GankitError as exc:
                _say(f"warning: skipping an unreadable checkpoint: {exc}")
                continue
            self.apply(*state)  # a checkpoint that reads but does not fit the config is an error, not skipped
            break
        else:
            raise GankitError(f"no readable checkpoint in {self.run_dir / 'checkpoints'}")
        if self.step >= self.cfg.train.steps:
            _say(f"note: {self.run_dir} is already at step {self.step} (train.steps={self.cfg.train.steps}): "
                       f"nothing to do. To train longer: --resume --set train.steps={max(self.step * 2, 1)}")

    def restore(self, path: Path) -> None:
        """Restore models, optimizers, data position, every RNG, step, best and retries from one checkpoint."""
        self.apply(*ckpt.load_checkpoint(path, "cpu"))  # CPU: load_state_dict moves tensors where they belong

    def apply(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        """Restore the state that :meth:`save_checkpoint` wrote (tensors on the CPU)."""
        for name, module in self.saved_modules().items():
            ckpt.load_module_state(module, ckpt.unpack(f"model.{name}", tensors), f"{name} weights")
        for name, opt in self.recipe.optimizers.items():
            ckpt.load_optimizer_state(opt, ckpt.unpack(f"optim.{name}", tensors), meta["optim"][name])
        for opt in self.recipe.optimizers.values():
            init_base_lr(opt)  # checkpoints from before schedules existed
        self._apply_new_learning_rates(meta["config"].get("optim", {}))
        if hasattr(self.recipe, "load_state_dict"):
            self.recipe.load_state_dict(meta.get("recipe", {}))
        if hasattr(self.recipe, "load_tensor_state"):
            self.recipe.load_tensor_state(ckpt.unpack("recipe", tensors), self.device)
        self.sampler.load_state_dict(ckpt.unpack("sampler", tensors))
        _set_rng_states(self.noise, tensors, self.device)
        self.step = int(meta["step"])
        if not self.dist.is_main:  # the checkpoint holds rank 0's global generator; the others take their own
            self._seed_torch(derive_seed(self.cfg.train.seed, f"torch.step{self.step}"))
        self.best = meta.get("best")
        self.retries = int(meta.get("health", {}).get("retries", 0))
        self.log.truncate_after(self.step)

    def _apply_new_learning_rates(self, saved: dict) -> None:
        """A learning rate changed since the checkpoint (--resume --set optim.lr_g=...) wins over the saved one;
        otherwise the saved one stays (it may have been lowered by a rollback)."""
        for name, key in (("generator", "lr_g"), ("regressor", "lr_g"), ("discriminator", "lr_d")):
            new = getattr(self.cfg.optim, key)
            if name in self.recipe.optimizers and key in saved and saved[key] != new:
                set_base_lr(self.recipe.optimizers[name], new)


def _interleave_rows(real: torch.Tensor, recon: torch.Tensor, cols: int) -> torch.Tensor:
    """Rows of ``cols`` real images, each followed by the row of their reconstructions."""
    rows = real.shape[0] // cols
    pair = torch.stack([real[:rows * cols].reshape(rows, cols, *real.shape[1:]),
                        recon[:rows * cols].reshape(rows, cols, *recon.shape[1:])], dim=1)  # (rows, 2, cols, ...)
    return pair.reshape(rows * 2 * cols, *real.shape[1:])


def _rng_states(noise: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
    """The trainer's noise generator and torch's global generators (CPU; every CUDA device for a CUDA run)."""
    states = {"rng.noise": noise.get_state(), "rng.torch": torch.get_rng_state()}
    if device.type == "cuda":
        states.update({f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    return states


def _set_rng_states(noise: torch.Generator, tensors: dict[str, torch.Tensor], device: torch.device) -> None:
    noise.set_state(tensors["rng.noise"].cpu())
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors["rng.torch"].cpu())
    cuda = [tensors[k].cpu() for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda and device.type == "cuda" and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def _say(message: str) -> None:
    """A warning or note on stderr, printed above the progress bar (by rank 0 alone under torchrun)."""
    if int(os.environ.get("RANK", "0")) == 0:
        tqdm.write(message, file=sys.stderr)


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

    def flush(self, step: int, dist: Distributed | None = None) -> dict:
        """The row of means since the last flush (averaged over the ranks under torchrun)."""
        now = time.monotonic()
        sums = dist.mean(self.sums) if dist is not None else self.sums
        row = {"step": step, **{k: float(v) / self.count for k, v in sums.items()},
               "steps_per_s": self.count / max(now - self.since, 1e-9)}
        self.sums, self.count, self.since = {}, 0, now
        return row


class MetricsLog:
    """Append-only ``metrics.jsonl``; on resume, rows written after the restored step are dropped."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled  # False on the ranks other than 0, which write nothing

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as fh:
            fh.write(json.dumps({**row, "time": round(time.time(), 3)}) + "\n")

    def truncate_after(self, step: int) -> None:
        """Keep the rows up to ``step``; a half-written last line (a killed process) is dropped too."""
        if not self.enabled or not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    kept.append(line)
            except json.JSONDecodeError:
                continue
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        os.replace(tmp, self.path)
