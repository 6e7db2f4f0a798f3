"""What a run says: ``metrics.jsonl`` rows, the window of step logs they average, and notes on stderr; and how a
write into the run directory that fails (a full disk, a read-only folder) is worded: one line, no temporary left."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
import time
from pathlib import Path
from typing import Iterator

import torch
from tqdm.auto import tqdm

from ..errors import GankitError
from ..progress import is_quiet
from .board import FOLDER, Board
from .distributed import Distributed

# why a write failed, in words, for the errno values a user can act on
_WRITE_FAILURES = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file would be larger than this process may write (ulimit -f) or the file system allows",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}
_DISK_FAILURES = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)  # only a write fails so
RESUME_ADVICE = "free space (or fix the folder) and continue with --resume"


def why_unwritten(exc: OSError) -> str:
    """The reason a write failed, in words (``the disk is full``) rather than as an errno."""
    return _WRITE_FAILURES.get(exc.errno) or " ".join(str(exc.strerror or exc).split())


def write_failed(path: Path, exc: OSError, after: str) -> GankitError:
    """The one-line error of a failed write of ``path``; ``after`` says what is intact and what to do."""
    return GankitError(f"could not write {path}: {why_unwritten(exc)}; {after}")


def replace_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through ``path.tmp`` and a rename: a reader sees the old file or the new one, and
    a failed write (``OSError``, raised) removes its temporary."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def write_errors(run_dir: Path) -> Iterator[None]:
    """Turn a write that failed for want of space (or on a read-only disk) where no narrower handler words it (a
    sample grid, say) into one line."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _DISK_FAILURES:
            raise
        where = exc.filename or f"a file in {run_dir}"  # Pillow's errors name no file
        raise GankitError(f"could not write {where}: {why_unwritten(exc)}; the checkpoints in "
                          f"{Path(run_dir) / 'checkpoints'} are intact: {RESUME_ADVICE}") from None


def say(message: str) -> None:
    """A warning or note on stderr, printed above the progress bar (by rank 0 alone under torchrun)."""
    if int(os.environ.get("RANK", "0")) == 0:
        tqdm.write(message, file=sys.stderr)


def run_header(family: list[str], modules: dict[str, torch.nn.Module], data_info: dict, device: torch.device,
               train_cfg, run_dir: Path | str, label=lambda name: name) -> str:
    """The lines a run prints before its first step: what trains (``family``: the task's own lines), its
    parameters per module (named by ``label``), the data, where and how it runs, and where it writes."""
    counts = ", ".join(f"{label(name)} {sum(p.numel() for p in m.parameters()):,}" for name, m in modules.items())
    data = f"{data_info.get('dataset', '?')}, {data_info.get('size', '?'):,} samples of shape " \
           f"{tuple(data_info.get('sample_shape', ()))}"
    lines = [*family, f"parameters: {counts}", f"data: {data}",
             f"device: {device}, precision {train_cfg.precision}, batch size {train_cfg.batch_size}, "
             f"{train_cfg.steps:,} step{'' if train_cfg.steps == 1 else 's'}", f"run directory: {run_dir}"]
    return "\n".join(lines)


def tell(message: str) -> None:
    """What a run is and where it stands (its header, where it resumed) on stdout, above the progress bar (by rank
    0 alone under torchrun); stderr keeps the bar, the warnings and the notes."""
    if int(os.environ.get("RANK", "0")) == 0:
        tqdm.write(message, file=sys.stdout)


def progress_bar(total: int, initial: int, enabled: bool) -> tqdm:
    """The training bar on stderr: redrawn twice a second on a terminal, at most once a minute in a log file; none
    with ``--quiet``."""
    terminal = sys.stderr.isatty()
    return tqdm(total=total, initial=initial, disable=not enabled or is_quiet(), dynamic_ncols=True, desc="train",
                unit="step", mininterval=0.5 if terminal else 60)


class LogWindow:
    """Sums of a step's logged tensors between two log rows; converted to floats only when a row is written. With
    a ``watch`` (:class:`gankit.train.device.SlowdownWatch`) it also times the training steps alone, to notice a
    run that slows down (evaluations and checkpoints are left out)."""

    def __init__(self, watch=None) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.since = time.monotonic()
        self.watch = watch
        self.step_seconds = 0.0  # time in the training steps themselves
        self.step_rate = 0.0  # steps/s of the last flushed window's training steps (not logged: a host clock)

    @contextlib.contextmanager
    def timed(self) -> Iterator[None]:
        """Time one training step."""
        started = time.perf_counter()
        yield
        self.step_seconds += time.perf_counter() - started

    def slowdown_note(self) -> str | None:
        """The watch's note on the last flushed window, if any."""
        return self.watch.observe(self.step_rate) if self.watch is not None else None

    def add(self, logs: dict[str, torch.Tensor]) -> None:
        """Add one step's logs."""
        for k, v in logs.items():
            self.sums[k] = self.sums[k] + v if k in self.sums else v.detach().clone()
        self.count += 1

    def flush(self, step: int, dist: Distributed | None = None) -> dict:
        """The row of means since the last flush (averaged over the ranks under torchrun)."""
        now = time.monotonic()
        sums = dist.mean(self.sums) if dist is not None else self.sums
        row = {"step": step, **{k: float(v) / self.count for k, v in sums.items()},
               "steps_per_s": self.count / max(now - self.since, 1e-9)}
        self.step_rate = self.count / self.step_seconds if self.step_seconds > 0 else 0.0
        self.sums, self.count, self.since, self.step_seconds = {}, 0, now, 0.0
        return row


class MetricsLog:
    """Append-only ``metrics.jsonl``; on resume, rows written after the restored step are dropped. Its rows, the
    warnings and the preview grids are mirrored to TensorBoard (:mod:`gankit.train.board`) with ``tensorboard``."""

    def __init__(self, path: Path, enabled: bool = True, tensorboard: bool = True) -> None:
        self.path = path
        self.enabled = enabled  # False on the ranks other than 0, which write nothing
        self.board = Board(path.parent / FOLDER, enabled=enabled and tensorboard)

    def write(self, row: dict) -> None:
        """Append one row, stamped with the time; in TensorBoard, its numbers as scalars at its step, or a warning
        or an event (a rollback, a stop) as text under ``health``."""
        if not self.enabled:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as fh:
                fh.write(json.dumps({**row, "time": round(time.time(), 3)}) + "\n")
        except OSError as exc:  # a half-written row is dropped by truncate_after on --resume
            raise write_failed(self.path, exc, f"the checkpoints beside it are intact: {RESUME_ADVICE}") from None
        if "warning" in row:
            self.board.text(row["step"], row["warning"])
        elif "event" in row:  # a rollback or a stop: its numbers (the failed step, the retry) are no curves
            self.board.text(row["step"], ", ".join(f"{k}: {v}" for k, v in row.items() if k != "step"))
        else:
            self.board.scalars(row)

    def warn(self, step: int, warnings: list[str]) -> None:
        """Each warning on stderr and as a row."""
        for message in warnings:
            say(f"warning at step {step}: {message}")
            self.write({"step": step, "warning": message})

    def image(self, step: int, path: Path) -> None:
        """A preview grid (a PNG already written) in TensorBoard."""
        self.board.image(step, path)

    def flush(self) -> None:
        """Put the TensorBoard events on disk (``metrics.jsonl`` is written row by row)."""
        self.board.flush()

    def close(self) -> None:
        """Flush and close the TensorBoard writer, at the end of a run however it ended. A write that fails here (a
        full disk) is passed over in silence, so that it never hides why the run ended: every checkpoint flushed the
        events before it, and those past the last one are marked stale by ``--resume`` anyway."""
        with contextlib.suppress(OSError):
            self.board.close()

    def record_evaluation(self, folder: Path, step: int, result: dict) -> None:
        """An evaluation: ``folder/step_XXXXXXX.json`` (written whole or not at all) and its numbers as a row."""
        result["step"] = step
        if self.enabled:
            path = folder / f"step_{step:07d}.json"
            try:
                replace_text(path, json.dumps(result))
            except OSError as exc:
                raise write_failed(path, exc, f"the run's checkpoints are intact: {RESUME_ADVICE}") from None
        self.write({"step": step, **{f"eval/{k}": v for k, v in result.items()
                                     if isinstance(v, (int, float)) and k != "step"}})

    def truncate_after(self, step: int) -> None:
        """Keep the rows up to ``step``; a half-written last line (a killed process) is dropped too. TensorBoard's
        events past ``step`` are marked stale."""
        if not self.enabled:
            return
        self.board.purge_after(step)
        if not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text(errors="replace").splitlines():
            try:
                row = json.loads(line)
            except ValueError:  # a half-written line, or bytes that are not text
                continue
            if isinstance(row, dict) and isinstance(row.get("step", 0), (int, float)) and row.get("step", 0) <= step:
                kept.append(line)
        try:
            replace_text(self.path, "".join(line + "\n" for line in kept))
        except OSError as exc:
            raise write_failed(self.path, exc, f"it is as it was: {RESUME_ADVICE}") from None
