"""The runs of a trial: each one an ordinary ``gankit train`` in its own process and run directory.

A process per run keeps a trial's crash out of the sweep and gives every trial the trainer's own clean stop: SIGTERM
makes the run finish its step, save a checkpoint and exit, which is how a pruned trial, a trial past its time and a
stopped sweep end their runs. The sweep reads a run's evaluations from its ``metrics.jsonl`` as it writes them (one
row per training-time evaluation, keys ``eval/<metric>``), never from its memory.

On Linux each run also gets SIGTERM when the sweep process dies (``PR_SET_PDEATHSIG``, set by a few lines of
Python that then ``exec`` gankit): a killed sweep leaves stopped runs with a checkpoint to resume, not orphans
training on.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import GankitError
from ..train import rundir

# Run by the new process before gankit itself: ask Linux for SIGTERM when the sweep dies (prctl option 1,
# PR_SET_PDEATHSIG), then check that the sweep did not die before that (argv[1] is its pid), then exec gankit.
LAUNCHER = """\
import os, signal, sys
if sys.platform.startswith("linux"):
    import ctypes
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)
    if os.getppid() != int(sys.argv[1]):
        sys.exit(128 + signal.SIGTERM)
os.execv(sys.executable, [sys.executable, "-m", "gankit", *sys.argv[2:]])
"""
TERM_WAIT_S = 60.0  # after SIGTERM, the seconds a run gets to save its checkpoint before SIGKILL
STOPPED_CODES = (0, 128 + signal.SIGTERM, 128 + signal.SIGINT)  # finished, or stopped cleanly by a signal


class ObjectiveMissing(GankitError):
    """The runs' evaluations have no value of the sweep's objective: no trial can be scored."""


@dataclass
class Evaluations:
    """The objective's value at each evaluated step of one run, read from its ``metrics.jsonl`` as it grows (a
    resumed run rewrites the file: then it is read again from the start)."""

    path: Path
    objective: str
    values: dict[int, float] = field(default_factory=dict)
    offset: int = 0

    def poll(self) -> None:
        """Read the rows written since the last call (whole lines only: the last may be half-written)."""
        try:
            size = self.path.stat().st_size
            if size < self.offset:
                self.offset, self.values = 0, {}
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        for line in complete.splitlines():
            self._row(line)

    def _row(self, line: bytes) -> None:
        try:
            row = json.loads(line)
        except ValueError:
            return
        if not isinstance(row, dict) or not any(str(k).startswith("eval/") for k in row):
            return
        value, step = row.get(f"eval/{self.objective}"), row.get("step")
        if value is None:
            keys = ", ".join(sorted(k[len("eval/"):] for k in row if str(k).startswith("eval/")))
            raise ObjectiveMissing(f"the runs' evaluations have no {self.objective!r} (--objective); they hold: "
                                   f"{keys}")
        if isinstance(step, int) and isinstance(value, (int, float)) and math.isfinite(value):
            self.values[step] = float(value)

    def pick(self, take: str, maximize: bool) -> float | None:
        """The run's score: its best evaluation (``take='best'``) or its last one; None without any."""
        if not self.values:
            return None
        if take == "last":
            return self.values[max(self.values)]
        return max(self.values.values()) if maximize else min(self.values.values())


@dataclass
class Run:
    """One ``gankit train`` process of a trial: its run directory, log file and evaluations so far."""

    run_dir: Path
    log: Path
    process: subprocess.Popen
    evals: Evaluations
    started: float
    signalled: float | None = None  # when the sweep asked it to stop (pruned, past its time, sweep stopped)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Ask the run to stop cleanly (SIGTERM: it saves a checkpoint and exits)."""
        if self.running and self.signalled is None:
            self.signalled = time.monotonic()
            self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.running:
            self.process.kill()

    @property
    def interrupted(self) -> bool:
        """Stopped by a signal the sweep did not send (a shutdown, a user): no fault of the setting."""
        return self.signalled is None and self.process.returncode in STOPPED_CODES[1:]

    def error(self) -> str | None:
        """Why the run failed, from its log (its ``gankit:`` line, else its last line); None when it finished,
        was stopped by the sweep, or was :attr:`interrupted`."""
        code = self.process.returncode
        if code == 0 or self.signalled is not None or self.interrupted:
            return None
        lines = [line for line in _tail(self.log).splitlines() if line.strip()]
        said = [line for line in lines if line.startswith("gankit:")] or lines[-1:]
        why = said[-1].strip() if said else "no output"
        return f"{self.run_dir.name} exited with code {code}: {why} (log: {self.log})"


def _tail(path: Path, size: int = 8192) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - size))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def train_command(config: str | None, run_dir: Path, overrides: list[str], threads: int) -> list[str]:
    """The arguments of ``gankit train`` for a new run in ``run_dir``."""
    sets = [arg for item in overrides for arg in ("--set", item)]
    return ["train", *([str(config)] if config is not None else []), "--out", str(run_dir), *sets,
            "--threads", str(threads), "--quiet"]


def resume_command(run_dir: Path, threads: int) -> list[str]:
    """The arguments of ``gankit train --resume`` that continue the run in ``run_dir``."""
    return ["train", "--out", str(run_dir), "--resume", "--threads", str(threads), "--quiet"]


def resumable(run_dir: Path, wait_s: float = TERM_WAIT_S) -> bool:
    """True when ``run_dir`` holds a run to continue; waits up to ``wait_s`` for a process still holding it (a
    run that was told to stop and is saving its checkpoint)."""
    if not (run_dir / "config.yaml").is_file():
        return False
    deadline = time.monotonic() + wait_s
    while rundir.is_locked(run_dir):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def launch(args: list[str], run_dir: Path, log: Path, objective: str) -> Run:
    """Start ``gankit ARGS`` (a :func:`train_command` or :func:`resume_command`), its output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(os.getpid()), *args], stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return Run(run_dir, log, process, Evaluations(run_dir / "metrics.jsonl", objective), time.monotonic())


def end(runs: list[Run], wait_s: float = TERM_WAIT_S) -> None:
    """Stop every run that still trains (SIGTERM, then SIGKILL after ``wait_s``) and wait for all of them."""
    for run in runs:
        run.stop()
    deadline = time.monotonic() + wait_s
    for run in runs:
        try:
            run.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            run.kill()
            run.process.wait()


def common_means(runs: list[Run], after: int) -> list[tuple[int, float]]:
    """``(step, mean over the runs)`` for each step past ``after`` that every run has evaluated, in order."""
    steps = set.intersection(*(set(run.evals.values) for run in runs)) if runs else set()
    return [(s, sum(run.evals.values[s] for run in runs) / len(runs)) for s in sorted(steps) if s > after]
