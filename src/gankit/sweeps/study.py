"""``gankit sweep``: search a config's hyperparameters with Optuna, on one machine or on many sharing one study.

Each trial trains one setting of the space (:mod:`gankit.sweeps.space`) for ``seeds`` seeds, each seed an ordinary
run directory under the sweep's folder (:mod:`gankit.sweeps.runner`). The mean over the seeds of each run's
training-time evaluations is reported to Optuna as it comes, so its pruner (median or Hyperband) can stop a hopeless
setting early; the trial's value is the mean of the seeds' best (or last) evaluation of the objective.

The study lives in Optuna's storage (SQLite in the sweep's folder by default; PostgreSQL or MySQL to share it
between machines). The number of trials is counted over the study, not per process, so that running the command
again goes on where it stopped and several processes on one storage make one study of that size between them. A
trial whose sweep process died is failed and queued again with the same setting (Optuna's heartbeat and its retry
callback; at once when the dead process ran on this machine), and its retry continues the run directories from their
checkpoints (``gankit train --resume``) when they are here.
"""

from __future__ import annotations

import inspect
import json
import os
import random
import signal
import socket
import statistics
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..config import apply_override, load_config, read_yaml
from ..errors import GankitError, Interrupted
from ..train import rundir
from .runner import (TERM_WAIT_S, ObjectiveMissing, Run, common_means, end, launch, resumable, resume_command,
                     train_command)
from .space import Param, decoded, override_text, overrides_of, plain, read_space

POLL_S = 0.5  # how often a trial's runs are looked at
WAIT_S = 2.0  # how often a worker with nothing to start looks at the study again
HEARTBEAT_S = 20  # a running trial's heartbeat in the storage (Optuna's heartbeat_interval)
STALE_S = 120  # a trial without a heartbeat for this long belongs to a dead process (Optuna's grace_period)
TRIAL_GRACE_S = 120  # past --trial-minutes (train.max_minutes: the run stops itself), a run gets this long to finish
MAX_RETRY = 2  # times a trial whose process died is queued again
MAX_FAILURES_IN_A_ROW = 3  # this process's trials failing one after the other: the sweep stops
ATTR = "gankit"  # the study's user attribute holding what the processes sharing it must agree on
HOST = socket.gethostname()
TAKES = ("best", "last")
PRUNERS = ("median", "hyperband", "none")


def require_optuna():
    """The optuna module, or one line saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise GankitError("gankit sweep needs Optuna, an optional extra: pip install 'gankit[sweep]' "
                          "(or pip install optuna)") from None
    return optuna


@dataclass
class Plan:
    """A checked sweep: what it trains, what it searches, how it scores, where it keeps its runs and its study."""

    config: str | None  # a config file or shipped config's name, as every trial's `gankit train` gets it
    overrides: list[str]
    space: dict[str, Param]
    folder: Path  # absolute
    trials: int
    storage: str
    study: str
    objective: str = "fid"
    maximize: bool = False
    take: str = "best"
    seeds: int = 1
    workers: int = 1
    threads: int = 1
    minutes: float | None = None
    trial_minutes: float | None = None
    pruner: str = "median"
    startup_trials: int = 5
    base: dict = field(default_factory=dict)  # the config file's YAML with the overrides: where best.yaml starts
    base_seed: int = 0
    eval_every: int = 0
    steps: int = 1

    def record(self) -> dict:
        """What every process sharing the study must agree on, as JSON reads it back."""
        return json.loads(json.dumps({"space": {k: p.record() for k, p in self.space.items()},
                                      "objective": self.objective, "maximize": self.maximize, "take": self.take,
                                      "seeds": self.seeds}))


def plan_sweep(config: str | Path | None, space: str | Path | None, *, trials: int | None,
               overrides: list[str] | tuple[str, ...] = (), out: str | Path | None = None,
               storage: str | None = None, study: str | None = None, objective: str = "fid",
               maximize: bool = False, take: str = "best", seeds: int = 1, workers: int = 1,
               threads: int | None = None, minutes: float | None = None, trial_minutes: float | None = None,
               pruner: str = "median", startup_trials: int = 5) -> Plan:
    """Check everything a sweep is given, before anything trains; a problem is one :class:`GankitError` line."""
    if space is None:
        raise GankitError("a sweep needs a search space: --space SPACE.yaml (see docs/sweeps.md)")
    _check_numbers(trials=trials, seeds=seeds, workers=workers, threads=threads, startup_trials=startup_trials,
                   minutes=minutes, trial_minutes=trial_minutes)
    if take not in TAKES or pruner not in PRUNERS:
        raise GankitError(f"--take {take}: expected best or last" if take not in TAKES else
                          f"--pruner {pruner}: expected one of {', '.join(PRUNERS)}")
    config = None if config is None else str(config)
    overrides = list(overrides)
    cfg = load_config(config, overrides)
    params = read_space(space, config, overrides, cfg)
    if not cfg.train.eval_every and "train.eval_every" not in params:
        raise GankitError("a sweep scores its trials by their training-time evaluations, and this config has none "
                          "(train.eval_every is 0): --set train.eval_every=STEPS")
    base = read_yaml(config) if config is not None else {}
    for item in overrides:
        apply_override(base, item)
    base = plain(base)
    folder = Path(out) if out is not None else Path("sweeps") / f"{_stem(config)}-{Path(space).stem}"
    if rundir.is_run(folder):
        raise GankitError(f"{folder} is a run directory; a sweep needs a folder of its own (--out DIR)")
    folder = folder.resolve()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return Plan(config, overrides, params, folder, trials, storage or f"sqlite:///{folder / 'study.db'}",
                study or folder.name, objective, maximize, take, seeds, workers,
                threads or max(1, cores // (workers * seeds)), minutes, trial_minutes, pruner, startup_trials, base,
                cfg.train.seed, cfg.train.eval_every, cfg.train.steps)


def _check_numbers(**numbers) -> None:
    for name, value in numbers.items():
        flag = f"--{name.replace('_', '-')}"
        if value is None and name in ("threads", "minutes", "trial_minutes"):
            continue
        if name == "trials" and value is None:
            raise GankitError("how many trials should the study hold? --trials N")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value == float("inf"):
            raise GankitError(f"{flag} {value}: expected a positive number")
        if "minutes" not in name and not isinstance(value, int):
            raise GankitError(f"{flag} {value}: expected a whole number")


def _stem(config: str | None) -> str:
    return Path(config).stem if config is not None else "default"


@dataclass
class SweepResult:
    """What a sweep command left: its folder and study, how many trials ended how, the best so far, and why it
    ended."""

    folder: Path
    study: str
    storage: str  # the URL, any password hidden
    objective: str
    counts: dict[str, int]
    best: dict | None  # number, value, std, params
    why: str

    def summary(self) -> str:
        """A few lines for the command line."""
        counts = ", ".join(f"{n} {state}" for state, n in self.counts.items() if n) or "no trials"
        lines = [f"study {self.study!r} ({self.storage}): {counts}; {self.why}"]
        if self.best is not None:
            lines.append(f"best: trial {self.best['number']}, {self.objective} {_value(self.best)}: "
                         + ", ".join(f"{k}={_shown(v)}" for k, v in self.best["params"].items()))
        where = "" if self.storage.endswith(f"{self.folder / 'study.db'}") else f" --storage URL --study {self.study}"
        lines.append(f"trials table, plots and best.yaml: gankit sweep --show {self.folder}{where}")
        return "\n".join(lines)


def _shown(value: Any) -> str:
    """A parameter's value as the tables show it: floats to 4 significant digits, anything else as YAML."""
    return f"{value:.4g}" if isinstance(value, float) else override_text(value)


def _value(best: dict) -> str:
    std = best.get("std")
    return f"{best['value']:.4g}" + (f" +- {std:.2g}" if std else "")


def run_sweep(plan: Plan) -> SweepResult:
    """Run the sweep ``plan`` until its study holds ``plan.trials`` finished trials, its budget is spent, or it is
    stopped (SIGTERM, Ctrl-C: the running trials stop with a checkpoint and are resumed by the next command)."""
    optuna = require_optuna()
    plan.folder.mkdir(parents=True, exist_ok=True)
    with quiet_optuna(optuna):
        study, storage = open_study(optuna, plan.storage, plan.study, create=plan)
        _agree(optuna, study, storage, plan)
        sweep = _Sweep(plan, optuna, study, storage)
        done, _ = sweep.tally()
        print(f"sweep: study {plan.study!r} in {masked(plan.storage)}: {done} of {plan.trials} trials done; "
              f"{plan.workers} worker(s) x {plan.seeds} seed(s), {plan.threads} thread(s) per run; runs in "
              f"{plan.folder}", flush=True)
        with _stop_on_sigterm(sweep.stop) as received:
            _work(sweep, received)
        if sweep.crash is not None:
            raise sweep.crash
        if sweep.error is not None:
            raise sweep.error
        if received:
            name = signal.Signals(received[0]).name
            raise Interrupted(f"sweep stopped by {name}: its running trials stopped with a checkpoint and are "
                              f"resumed when the same command runs again", exit_code=128 + received[0])
        return _result(sweep)


def _work(sweep: "_Sweep", received: list[int]) -> None:
    """Run the workers until they end; Ctrl-C stops them (their runs save a checkpoint first)."""
    workers = [threading.Thread(target=sweep.work, name=f"sweep-worker-{i}", daemon=True)
               for i in range(sweep.plan.workers)]
    for worker in workers:
        worker.start()
    try:
        while any(w.is_alive() for w in workers):
            for worker in workers:
                worker.join(timeout=POLL_S)
    except KeyboardInterrupt:
        received.append(signal.SIGINT)
        sweep.stop.set()
        for worker in workers:
            worker.join()


@contextmanager
def _stop_on_sigterm(stop: threading.Event) -> Iterator[list[int]]:
    """SIGTERM sets ``stop`` (and is recorded in the yielded list) while the sweep runs; main thread only."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def ask(signum, frame) -> None:
        received.append(signum)
        stop.set()
    previous = signal.signal(signal.SIGTERM, ask)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def quiet_optuna(optuna) -> Iterator[None]:
    """Optuna without its INFO lines and the warnings that ask/tell with a heartbeat raises by design."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with")
        try:
            yield
        finally:
            optuna.logging.set_verbosity(level)


def masked(url: str) -> str:
    """A storage URL with its password hidden."""
    try:
        from sqlalchemy.engine import make_url
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy reads: open_study says so
        return url


def open_study(optuna, url: str, name: str | None, create: Plan | None = None):
    """``(study, storage)``: the study ``name`` in the storage at ``url`` (created when ``create`` is a plan),
    with the heartbeat that tells dead workers' trials apart and the retry of their trials. SQLite waits for its
    lock rather than failing when several processes write; a storage being created by another process at the same
    moment is retried."""
    from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
    for attempt in range(6):
        try:
            storage = _storage(optuna, url)
            if create is None:
                return optuna.load_study(study_name=name, storage=storage), storage
            study = optuna.create_study(storage=storage, study_name=name, load_if_exists=True,
                                        direction="maximize" if create.maximize else "minimize",
                                        sampler=_sampler(optuna, create), pruner=_pruner(optuna, create))
            return study, storage
        except (OperationalError, IntegrityError) as exc:  # two processes creating one file's tables at once
            if attempt == 5:
                raise GankitError(f"cannot open the study storage {masked(url)}: {_first_line(exc)}") from None
            time.sleep(0.2 + random.random())
        except KeyError:
            raise GankitError(f"no study named {name!r} in {masked(url)}") from None
        except (ImportError, ValueError, SQLAlchemyError) as exc:
            raise GankitError(f"cannot open the study storage {masked(url)}: {_first_line(exc)}") from None
    raise AssertionError("unreachable")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _storage(optuna, url: str):
    """Optuna's RDB storage with a heartbeat, and the retry of trials whose heartbeat stopped."""
    RDBStorage = optuna.storages.RDBStorage
    retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or \
        optuna.storages.RetryFailedTrialCallback  # (renamed in Optuna 4.9)
    callback = "heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in \
        inspect.signature(RDBStorage).parameters else "failed_trial_callback"
    engine = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else None
    return RDBStorage(url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_S, grace_period=STALE_S,
                      **{callback: retry(max_retry=MAX_RETRY)})


def _sampler(optuna, plan: Plan):
    """TPE (Optuna's default), with random settings for the first third of the trials (at most 10, its default)
    and the constant liar, which keeps parallel workers from drawing the same setting."""
    return optuna.samplers.TPESampler(n_startup_trials=min(10, max(1, plan.trials // 3)), constant_liar=True)


def _pruner(optuna, plan: Plan):
    if plan.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=plan.startup_trials)
    if plan.pruner == "hyperband":  # a run's resource is its steps, first evaluated at train.eval_every
        return optuna.pruners.HyperbandPruner(min_resource=max(1, plan.eval_every), max_resource=plan.steps)
    return optuna.pruners.NopPruner()


def _agree(optuna, study, storage, plan: Plan) -> None:
    """Record the plan's space and objective in a new study (or in one with no result yet); refuse a plan that
    differs from a study's."""
    stored = study.user_attrs.get(ATTR)
    if (study.direction.name == "MAXIMIZE") != plan.maximize:
        raise GankitError(f"study {plan.study!r} {study.direction.name.lower()}s its objective: "
                          f"{'add' if not plan.maximize else 'drop'} --maximize, or name another study (--study)")
    record = plan.record()
    differs = [key for key, value in record.items() if stored is not None and stored.get(key) != value]
    if stored is not None and differs and _has_results(study):
        raise GankitError(f"study {plan.study!r} was started with another {differs[0]} "
                          f"({_short(stored.get(differs[0]))}); give the same, or name another study (--study, or "
                          "--out for a new folder)")
    if differs:  # nothing finished under the old plan (a typo in --objective, say): its queued settings go
        study_id = storage.get_study_id_from_name(study.study_name)
        for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)):
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)
    if stored is None or differs:  # a new study (or one made with Optuna, settings queued), or the above
        study.set_user_attr(ATTR, {**record, "base": plan.base, "config": plan.config})


def _has_results(study) -> bool:
    return any(t.state.name in ("COMPLETE", "PRUNED") for t in study.get_trials(deepcopy=False))


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _counts(trial, optuna) -> bool:
    """A trial that counts towards --trials: complete, pruned, or failed by its own run (not by a dead worker)."""
    states = optuna.trial.TrialState
    return trial.state in (states.COMPLETE, states.PRUNED) or (trial.state == states.FAIL and "error" in
                                                                trial.user_attrs)


def _result(sweep: "_Sweep") -> SweepResult:
    trials = sweep.study.get_trials(deepcopy=False)
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.state.name.lower()] = counts.get(trial.state.name.lower(), 0) + 1
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    best = None
    if complete:
        t = sweep.study.best_trial
        best = {"number": t.number, "value": t.value, "std": t.user_attrs.get("std"),
                "params": {k: decoded(sweep.plan.space[k].record(), v) if k in sweep.plan.space else v
                           for k, v in t.params.items()}}
    plan = sweep.plan
    return SweepResult(plan.folder, plan.study, masked(plan.storage), plan.objective, counts, best, sweep.why)


class _Sweep:
    """The workers' shared state and their loop: take the next trial, train it, tell the study how it ended."""

    def __init__(self, plan: Plan, optuna, study, storage) -> None:
        self.plan, self.optuna, self.study, self.storage = plan, optuna, study, storage
        self.states = optuna.trial.TrialState
        self.study_id = storage.get_study_id_from_name(study.study_name)
        self.retry = storage.get_heartbeat_stale_trial_callback() if hasattr(
            storage, "get_heartbeat_stale_trial_callback") else storage.get_failed_trial_callback()
        self.stop = threading.Event()
        self.lock = threading.Lock()  # printing and the failure count
        self.asking = threading.Lock()  # counting the study and asking it for a trial
        self.worker = f"{HOST}:{os.getpid()}:{time.time():.3f}"  # which process runs a trial
        self.deadline = None if plan.minutes is None else time.monotonic() + 60 * plan.minutes
        self.failures = 0  # this process's trials failed one after the other
        self.error: GankitError | None = None  # a user's mistake that ends the sweep (the objective, failures)
        self.crash: BaseException | None = None  # a bug: re-raised with its traceback
        self.why = f"the study holds {plan.trials} trials"

    def say(self, message: str) -> None:
        with self.lock:
            print(message, flush=True)

    def work(self) -> None:
        """One worker: trials until the study is done, the budget spent, or the sweep stopped."""
        try:
            while not self.stop.is_set():
                trial = self.next_trial()
                if trial is None:
                    return
                self.run(trial)
        except GankitError as exc:
            self.error = self.error or exc
            self.stop.set()
        except BaseException as exc:
            self.crash = self.crash or exc
            self.stop.set()

    def tally(self) -> tuple[int, int]:
        """``(trials that count, trials running now)`` over the whole study."""
        trials = self.study.get_trials(deepcopy=False)
        running = sum(t.state == self.states.RUNNING for t in trials)
        return sum(_counts(t, self.optuna) for t in trials), running

    def next_trial(self):
        """A trial to run (a queued retry first), or None when there is nothing left to start. Waits while other
        processes' trials hold the rest of the study: if one of them dies, its retry is run here."""
        while not self.stop.is_set():
            with self.asking:  # this process's workers take their turns; other processes may still race
                self.recover()
                done, running = self.tally()
                if done >= self.plan.trials:
                    return None
                if self.deadline is not None and time.monotonic() > self.deadline:
                    self.why = f"the sweep's budget of {self.plan.minutes:g} minutes is spent"
                    return None
                if done + running < self.plan.trials:
                    trial = self.study.ask()
                    if not self.surplus(trial.number):
                        return trial
                    self.hand_back(trial.number)  # another process took the last place first
            self.stop.wait(WAIT_S)
        return None

    def trial_id(self, number: int) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)

    def surplus(self, number: int) -> bool:
        """True when the trials before ``number`` already fill the study (two processes asked at once)."""
        trials = self.study.get_trials(deepcopy=False)
        ahead = sum(t.number < number and (t.state == self.states.RUNNING or _counts(t, self.optuna))
                    for t in trials)
        return ahead >= self.plan.trials

    def hand_back(self, number: int) -> None:
        """Put a trial this process will not run back in the queue (waiting), for a later command to take."""
        self.storage.set_trial_state_values(self.trial_id(number), self.states.WAITING)

    def recover(self) -> None:
        """Fail the trials whose process died, which queues each for a retry: at once for a process of this
        machine that is gone, after Optuna's grace period without a heartbeat for any other."""
        self.optuna.storages.fail_stale_trials(self.study)
        for trial in self.study.get_trials(deepcopy=False, states=(self.states.RUNNING,)):
            if _dead(trial.user_attrs.get("worker"), self.worker):
                self.fail_for_retry(trial.number, "its sweep process is gone")

    def fail_for_retry(self, number: int, why: str) -> None:
        """Mark a trial failed and queue it again with the same setting (its retry resumes its runs)."""
        trial_id = self.trial_id(number)
        try:
            if not self.storage.set_trial_state_values(trial_id, self.states.FAIL):
                return
        except self.optuna.exceptions.UpdateFinishedTrialError:
            return  # another process got there first
        frozen = self.storage.get_trial(trial_id)
        retries = len(frozen.system_attrs.get("retry_history", []))
        self.retry(self.study, frozen)
        again = "queued again" if retries < MAX_RETRY else f"not queued again (retried {retries} times)"
        self.say(f"trial {number}: {why}; {again}")

    def run(self, trial) -> None:
        """Train ``trial``'s setting for every seed, report its evaluations, and tell the study how it ended."""
        number, trial_id = trial.number, self.trial_id(trial.number)
        self.storage.set_trial_user_attr(trial_id, "worker", self.worker)
        self.storage.record_heartbeat(trial_id)  # from now on, a silent trial is a dead one
        params = {key: param.suggest(trial) for key, param in self.plan.space.items()}
        runs = self.start(number, trial_id, params)
        started = time.monotonic()
        try:
            outcome = self.watch(trial, trial_id, runs)
            end(runs)
            self.conclude(trial, trial_id, runs, outcome, time.monotonic() - started)
        except ObjectiveMissing as exc:  # the sweep's mistake, not the setting's: the trial does not count
            self.storage.set_trial_user_attr(trial_id, "sweep_error", str(exc))
            self.study.tell(trial, state=self.states.FAIL)
            raise
        except self.optuna.exceptions.UpdateFinishedTrialError:  # failed meanwhile by another process
            self.say(f"trial {number}: failed by another process that heard no heartbeat; its retry takes over")
        finally:
            end(runs)  # none left training, whatever happened

    def start(self, number: int, trial_id: int, params: dict) -> list[Run]:
        """Start the trial's runs: the run directories of the trial it retries where they are here to resume,
        new ones otherwise."""
        plan = self.plan
        before = self.storage.get_trial(trial_id)
        retried = "failed_trial" in before.system_attrs and before.user_attrs.get("host") == HOST
        old = [Path(p) for p in before.user_attrs.get("runs", [])] if retried else []
        budget = [f"train.max_minutes={plan.trial_minutes:g}"] if plan.trial_minutes else []
        chosen = []
        for seed in range(plan.seeds):
            if seed < len(old) and resumable(old[seed]):
                chosen.append((old[seed], resume_command(old[seed], plan.threads)))
                continue
            run_dir = plan.folder / (f"trial_{number:05d}" + (f"_seed{seed}" if plan.seeds > 1 else ""))
            sets = [*plan.overrides, *overrides_of(params), f"train.seed={plan.base_seed + seed}", *budget]
            chosen.append((run_dir, train_command(plan.config, run_dir, sets, plan.threads)))
        self.storage.set_trial_user_attr(trial_id, "host", HOST)
        self.storage.set_trial_user_attr(trial_id, "runs", [str(d) for d, _ in chosen])
        resumed = [d.name for d, args in chosen if "--resume" in args]
        self.say(f"trial {number}: " + ", ".join(f"{k}={_shown(v)}" for k, v in params.items())
                 + (f" (resuming {', '.join(resumed)})" if resumed else ""))
        return [launch(args, d, plan.folder / "logs" / f"{d.name}.log", plan.objective) for d, args in chosen]

    def watch(self, trial, trial_id: int, runs: list[Run]) -> str:
        """Follow the runs until they end: ``ended``, ``pruned``, ``failed`` (a run's error) or ``stopped``."""
        reported, beat = -1, 0.0
        limit = None if self.plan.trial_minutes is None else 60 * self.plan.trial_minutes + TRIAL_GRACE_S
        while any(run.running for run in runs):
            if self.stop.wait(POLL_S):
                return "stopped"
            if time.monotonic() - beat > HEARTBEAT_S:
                self.storage.record_heartbeat(trial_id)
                beat = time.monotonic()
            for run in runs:
                run.evals.poll()
                if limit is not None and time.monotonic() - run.started > limit:
                    run.stop()  # past its budget and grace: stop it (its evaluations so far still count) ...
                if run.signalled is not None and time.monotonic() - run.signalled > TERM_WAIT_S:
                    run.kill()  # ... and end it if it does not stop
            if any(not run.running and run.error() for run in runs):
                return "failed"
            for step, mean in common_means(runs, reported):
                trial.report(mean, step)
                reported = step
                if trial.should_prune():
                    return "pruned"
        for run in runs:
            run.evals.poll()  # the rows written last
        for step, mean in common_means(runs, reported):
            trial.report(mean, step)
        return "ended"

    def conclude(self, trial, trial_id: int, runs: list[Run], outcome: str, seconds: float) -> None:
        """Tell the study how the trial ended: pruned, complete with the seeds' mean, failed (its run's error), or
        failed and queued again when the sweep was stopped or a run was interrupted."""
        number, plan = trial.number, self.plan
        if outcome == "stopped" or any(run.interrupted for run in runs):
            return self.fail_for_retry(number, "stopped before it ended")
        if outcome == "pruned":
            self.study.tell(trial, state=self.states.PRUNED)
            step = max(self.storage.get_trial(trial_id).intermediate_values, default=0)
            self.say(f"trial {number}: pruned at step {step} ({_took(seconds)})")
            return self.succeeded()
        scores = [run.evals.pick(plan.take, plan.maximize) for run in runs]
        errors = [e for run in runs if (e := run.error())]
        if not errors and None in scores:
            errors = [f"{runs[scores.index(None)].run_dir.name} made no evaluation of {plan.objective}"]
        if errors:
            return self.failed(trial, trial_id, errors[0])
        value = statistics.fmean(scores)
        std = statistics.stdev(scores) if len(scores) > 1 else 0.0
        self.storage.set_trial_user_attr(trial_id, "seed_values", scores)
        self.storage.set_trial_user_attr(trial_id, "std", std)
        self.study.tell(trial, value)
        spread = f" +- {std:.2g} (sample s.d. over {len(scores)} seeds)" if len(scores) > 1 else ""
        self.say(f"trial {number}: {plan.objective} {value:.4g}{spread}, the {plan.take} evaluation "
                 f"({_took(seconds)})")
        self.succeeded()

    def succeeded(self) -> None:
        with self.lock:
            self.failures = 0

    def failed(self, trial, trial_id: int, error: str) -> None:
        """A trial whose run failed: it counts (the setting is the cause), and too many in a row end the sweep."""
        self.storage.set_trial_user_attr(trial_id, "error", error)
        self.study.tell(trial, state=self.states.FAIL)
        self.say(f"trial {trial.number}: failed: {error}")
        with self.lock:
            self.failures += 1
            if self.failures >= MAX_FAILURES_IN_A_ROW:
                raise GankitError(f"{self.failures} trials failed in a row; the last: {error}")


def _took(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _dead(worker: str | None, me: str) -> bool:
    """True when ``worker`` (host:pid:start) names a process of this machine that is gone (or whose pid this
    process has taken over)."""
    if not worker or worker == me or sys.platform == "win32":  # (Windows has no signal 0: the heartbeat tells)
        return False
    host, pid, _ = worker.rsplit(":", 2)
    if host != HOST:
        return False
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # another user's process: alive
        return False
    return False

