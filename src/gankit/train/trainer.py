"""The trainer decides *when*: the loop, stopping, logging, health and rollback, checkpoints, EMA, precision and
the distributed plumbing (:mod:`gankit.train.distributed`). It knows no model family: a task (:mod:`gankit.tasks`)
builds the modules and the recipe, draws the previews and scores the model; the recipe owns the optimizers and one
step. A step-0 checkpoint is written before the first step, so there is always one to resume or roll back to; a NaN
or Inf in a log row or in the weights rolls the run back (:mod:`gankit.train.rollback`)."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import torch

from ..config import Config, save_config, to_dict
from ..data import load_dataset
from ..data.sampler import BatchSampler
from ..errors import ConfigError
from ..tasks import derive_seed, task_for
from ..version import __version__
from . import checkpoint as ckpt
from .checkpoint import latest_checkpoint
from .device import SlowdownWatch, resolve_device
from .distributed import Distributed, sharding
from .ema import EMA
from .health import CollapseMonitor, diversity, nonfinite_keys, nonfinite_parameters
from .log import LogWindow, MetricsLog, progress_bar, run_header, say, tell, write_errors
from .precision import autocast_factory, compile_modules
from .signals import StopRequests
from .rng import RunRNG
from .rollback import roll_back
from .schedule import apply_new_learning_rates, init_base_lr, schedule_learning_rates


def in_run_rng(method):
    """Run a Trainer method with torch's global generators holding the run's state (the caller's are put back)."""
    @functools.wraps(method)
    def wrapped(self, *args, **kwargs):
        with self.rng.active():
            return method(self, *args, **kwargs)
    return wrapped


class Trainer:
    """Trains the family ``cfg.model.name`` with the recipe ``cfg.recipe.name``."""

    def __init__(self, cfg: Config, run_dir: str | Path, dry_run: bool = False) -> None:
        self.cfg, self.run_dir = cfg, Path(run_dir)
        self.dry_run = dry_run  # a dry run checks the evaluation's set-up but never evaluates
        self.device = resolve_device(cfg.train.device)
        self.dist = Distributed.from_env(self.device)
        self.local_batch = self.dist.local_batch(cfg.train.batch_size)
        # ops that take no generator (dropout, say) draw from torch's global one: the run has its own stream of it
        self.rng = RunRNG(self.device, self._rank_seed(derive_seed(cfg.train.seed, "torch")))
        self._build()

    @in_run_rng
    def _build(self) -> None:
        cfg, seed = self.cfg, self.cfg.train.seed
        data = load_dataset(cfg.data, "train", seed=seed)
        self.task = task_for(cfg, self.device, say, tell)
        self.data_info = self.task.describe(data)
        built = self.task.build(data, derive_seed(seed, "weights"))
        self.modules = self.dist.place(built, self.device, cfg.train.sync_bn, cfg.train.channels_last)
        self.recipe = self.task.attach(self.modules)
        self._prepare_optimizers()
        self._check_batch(data)
        self.recipe.prepare(data)  # statistics of the training data (a regressor's standardisation, ...)
        self.ema = EMA.of(self.modules, self.task.averaged(), cfg.train.ema) if cfg.train.ema else None
        self.sampler = BatchSampler(data, derive_seed(seed, "data"), self.device)
        self.noise = torch.Generator(self.device).manual_seed(derive_seed(seed, "noise"))
        self.step, self.best, self.retries = 0, None, 0  # best: {"step", key} of the best checkpoint so far
        board = cfg.train.tensorboard and not self.dry_run  # (a dry run's folder is deleted when it ends)
        self.log = MetricsLog(self.run_dir / "metrics.jsonl", enabled=self.dist.is_main, tensorboard=board)
        self.window = LogWindow(SlowdownWatch(self.device))
        self.stops = StopRequests()  # SIGTERM/SIGINT: the loop stops after the current step
        self.task.setup(data, self.run_dir)
        reference = self.task.reference_samples(data)
        self.monitor = CollapseMonitor(cfg.health, 0.0 if reference is None else diversity(reference), cfg.train.steps)
        self.dist.on_main(lambda: self.task.prepare_evaluation(data, self.run_dir))
        if cfg.train.compile and (note := compile_modules(self.modules, *self.recipe.compile_skip(self.modules))):
            say(f"note: {note}")  # last: the EMA copy above must be taken of the uncompiled modules

    def _prepare_optimizers(self) -> None:
        for opt in self.recipe.optimizers.values():
            self.dist.average_gradients_before_steps(opt)
            init_base_lr(opt)
        self.autocast = autocast_factory(self.device, self.cfg.train.precision, warn=say)

    def _check_batch(self, data) -> None:
        """The one batch-size check, then the family's own checks (before anything is written)."""
        if self.cfg.train.batch_size > len(data):
            raise ConfigError(f"train.batch_size={self.cfg.train.batch_size} is larger than the dataset ({len(data)} "
                              "samples): lower train.batch_size")
        self.task.validate(data, self.local_batch, self.dist.world)

    def _rank_seed(self, seed: int) -> int:
        """``seed`` on rank 0; under torchrun every other rank gets its own stream (dropout masks differ between
        the ranks' samples), derived from it."""
        return seed if self.dist.is_main else derive_seed(seed, f"rank{self.dist.rank}")

    @property
    def averaged(self) -> torch.nn.Module | None:
        """The EMA copy that previews and evaluations use, when the run keeps one."""
        return self.ema.module if self.ema is not None else None

    def saved_modules(self) -> dict[str, torch.nn.Module]:
        """Every module a checkpoint holds (the EMA copy under its module's name + ``_ema``)."""
        return {**self.modules, **({self.ema.name: self.ema.module} if self.ema is not None else {})}

    @in_run_rng
    def fit(self) -> Path:
        """Train until ``train.steps`` (or ``train.max_minutes``, or a signal); returns the run directory."""
        tc = self.cfg.train
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(self.cfg, self.run_dir / "config.yaml")
            ckpt.remove_stale_temporaries(self.run_dir / "checkpoints")
        if self.step >= tc.steps:
            return self.run_dir  # resumed a finished run: nothing to do (resume() said so)
        tell(run_header(self.task.describe_run(), self.modules, self.data_info, self.device, tc,
                        "none (a dry run writes nothing)" if self.dry_run else self.run_dir, self.task.module_label))
        if self.step == 0:
            self.save_checkpoint()  # something to roll back or resume to, even if the first steps fail
        self.dist.barrier()
        deadline = None if tc.max_minutes is None else time.monotonic() + 60 * tc.max_minutes
        bar = progress_bar(tc.steps, self.step, tc.progress and self.dist.is_main)
        with self.stops.listening(), write_errors(self.run_dir):  # a full disk: one line
            self._loop(bar, deadline)
            while not self._finish(bar):  # a rollback at the very end: train the lost steps again
                self._loop(bar, deadline)
        bar.close()
        self.dist.barrier()  # rank 0's last files are written when any rank returns
        return self.run_dir

    def _loop(self, bar, deadline: float | None) -> None:
        tc = self.cfg.train
        while self.step < tc.steps:
            schedule_learning_rates(self.recipe.optimizers, self.cfg.optim, self.step, tc.steps)
            with self.autocast(), sharding(self.dist.shard), self.window.timed():
                logs = self.recipe.step(self.sampler, self.noise, self.local_batch)
            if self.dist.active:
                for module in self.modules.values():
                    self.dist.broadcast_module(module, buffers_only=True)
            self.window.add(logs)
            if self.ema is not None:
                self.ema.update(self.task.averaged(), self.step)
            self.step += 1
            self._periodic(bar)
            bar.update(self.step - bar.n)  # a rollback moves the step back
            signalled = self.stops.received is not None
            late = deadline is not None and time.monotonic() > deadline
            if self.dist.active:  # every rank stops at the same step (a CPU all-reduce: no GPU sync)
                signalled, late = self.dist.any_of([signalled, late])
            if signalled:
                self._stop_for_signal(bar)
            if late:
                say(f"train.max_minutes={tc.max_minutes} reached at step {self.step}: stopping cleanly")
                return

    def _stop_for_signal(self, bar) -> None:
        bar.close()
        if nonfinite_parameters(self.modules):  # never make a NaN checkpoint the latest one
            raise self.stops.interrupted(self.step, self.run_dir, None, latest_checkpoint(self.run_dir))
        path = self.save_checkpoint()
        self.dist.barrier()  # no rank exits (and makes torchrun stop the others) before the checkpoint is written
        raise self.stops.interrupted(self.step, self.run_dir, path)

    def _periodic(self, bar) -> None:
        tc = self.cfg.train
        if self.step % tc.log_every == 0 and not self._log_row(bar):
            return  # rolled back
        if self.step % tc.sample_every == 0:
            self.save_samples()
        if tc.eval_every and self.step % tc.eval_every == 0 and not self.dry_run:
            self.evaluate()  # before the checkpoint, so that it records the best-so-far
        if self.step % tc.checkpoint_every == 0:
            self._checked_checkpoint()

    def _log_row(self, bar) -> bool:
        """Write the window's log row; False when it held a NaN or Inf and the run was rolled back."""
        row = self.window.flush(self.step, self.dist)
        bad = nonfinite_keys(row)
        if bad:
            roll_back(self, f"non-finite {', '.join(bad)} in the losses")
            return False
        if self.cfg.optim.schedule != "constant":
            row.update({f"lr/{name}": opt.param_groups[0]["lr"] for name, opt in self.recipe.optimizers.items()})
        self.log.write(row)
        self.log.warn(self.step, self.monitor.observe_row(row))
        if self.dist.is_main and (note := self.window.slowdown_note()):
            tell(f"note: {note}")  # with the header on stdout, as the start-up note: stderr keeps errors one line
        shown = {k: f"{v:.3f}" for k, v in row.items() if k in self.recipe.shown}
        if self.monitor.active:
            shown["warn"] = "+".join(sorted(self.monitor.active))
        bar.set_postfix(shown, refresh=False)  # drawn with the next update (at most a frame a minute in a log)
        return True

    def _checked_checkpoint(self) -> bool:
        """A checkpoint, unless the weights hold a NaN or Inf: then the run rolls back instead (False)."""
        bad = nonfinite_parameters(self.modules)
        if bad:
            roll_back(self, f"non-finite weights ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''})")
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
        if tc.eval_every and self.step % tc.eval_every != 0 and not self.dry_run:
            self.evaluate()
        return self.step % tc.checkpoint_every == 0 or self._checked_checkpoint()

    @in_run_rng
    def save_samples(self) -> Path | None:
        """Save the task's preview (rank 0); the collapse monitor looks at the samples it shows."""
        if not self.dist.is_main:
            return None
        shown = self.task.preview(self.run_dir / "samples" / f"step_{self.step:07d}.png", self.averaged)
        if shown is None:
            return None
        self.log.image(self.step, shown.path)
        if shown.samples is not None:
            self.log.warn(self.step, self.monitor.observe_samples(shown.samples, self.step))
        return shown.path

    @torch.no_grad()
    @in_run_rng
    def evaluate(self) -> dict | None:
        """The task's training-time evaluation (rank 0): logged, written to ``RUN/eval/``, and the best checkpoint
        kept (the lowest value of the task's key: FID, or a regressor's standardised test RMSE)."""
        if nonfinite_parameters(self.saved_modules()):
            return None  # NaN weights: the next log row or checkpoint rolls the run back
        source = f"{self.run_dir} (step {self.step}, training-time evaluation)"
        scored = self.task.evaluate(self.averaged, self.step, source) if self.dist.is_main else None
        if scored is None:
            return None
        result, key = scored.result, scored.key
        self.log.record_evaluation(self.run_dir / "eval", self.step, result)
        if self.best is None or result[key] < self.best[key]:
            self.best = {"step": self.step, key: result[key]}
            self.save_checkpoint(best=True)
        summary = ", ".join(f"{k}={result[k]:.4g}" for k in scored.shown if k in result)
        say(f"eval at step {self.step}: {summary} (best {key} {self.best[key]:.4g} at step {self.best['step']})")
        return result

    @in_run_rng
    def save_checkpoint(self, best: bool = False) -> Path:
        """Write everything the run depends on to a new step checkpoint and point ``latest.json`` at it; with
        ``best``, to ``best.safetensors`` (described by ``best.json``) instead. Under torchrun only rank 0 writes
        (the others return the path it writes)."""
        folder = self.run_dir / "checkpoints"
        if not self.dist.is_main:
            return folder / ("best.safetensors" if best else ckpt.step_file(self.step))
        self.log.flush()  # TensorBoard's events too: every run ends with a checkpoint
        tensors, meta = ckpt.capture(self.saved_modules(), self.recipe.optimizers, self.recipe, self.sampler,
                                     self.noise, self.device)
        meta.update(step=self.step, config=to_dict(self.cfg), data=self.data_info, best=self.best,
                    health={"retries": self.retries}, world_size=self.dist.world,
                    versions={"gankit": __version__, "torch": torch.__version__})
        if best:
            return ckpt.write_best(folder, tensors, meta, self.best)
        return ckpt.write_step(folder, self.step, tensors, meta, self.cfg.train.keep_checkpoints)

    @in_run_rng
    def resume(self) -> None:
        """Continue from the newest readable checkpoint (an unreadable newer one is skipped with a warning)."""
        self.apply(*ckpt.read_newest(self.run_dir, say))  # one that reads but does not fit the config: an error
        tell(f"resumed from step {self.step} (checkpoint {self.run_dir / 'checkpoints' / ckpt.step_file(self.step)})")
        if self.step >= self.cfg.train.steps:
            say(f"note: {self.run_dir} is already at step {self.step} (train.steps={self.cfg.train.steps}): "
                f"nothing to do. To train longer: --resume --set train.steps={max(self.step * 2, 1)}")

    @in_run_rng
    def restore(self, path: Path) -> None:
        """Restore models, optimizers, data position, every RNG, step, best and retries from one checkpoint."""
        self.apply(*ckpt.load_checkpoint(path, "cpu"))  # CPU: load_state_dict moves tensors where they belong

    @in_run_rng
    def apply(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        """Restore the state that :meth:`save_checkpoint` wrote (tensors on the CPU)."""
        ckpt.restore(tensors, meta, self.saved_modules(), self.recipe.optimizers, self.recipe, self.sampler,
                     self.noise, self.device)
        for opt in self.recipe.optimizers.values():
            init_base_lr(opt)  # checkpoints from before schedules existed
        apply_new_learning_rates(self.recipe.optimizers, self.recipe.lr_keys, self.cfg.optim,
                                 meta["config"].get("optim", {}))
        self.step = int(meta["step"])
        if not self.dist.is_main:  # the checkpoint holds rank 0's global generator; the others take their own
            self.rng.reseed(self._rank_seed(derive_seed(self.cfg.train.seed, f"torch.step{self.step}")))
        self.best = meta.get("best")
        self.retries = int(meta.get("health", {}).get("retries", 0))
        self.log.truncate_after(self.step)
