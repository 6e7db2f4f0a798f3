"""What a run says: ``metrics.jsonl`` rows, the window of step logs they average, and notes on stderr."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .distributed import Distributed


def say(message: str) -> None:
    """A warning or note on stderr, printed above the progress bar (by rank 0 alone under torchrun)."""
    if int(os.environ.get("RANK", "0")) == 0:
        tqdm.write(message, file=sys.stderr)


class LogWindow:
    """Sums of a step's logged tensors between two log rows; converted to floats only when a row is written."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.since = time.monotonic()

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
        self.sums, self.count, self.since = {}, 0, now
        return row


class MetricsLog:
    """Append-only ``metrics.jsonl``; on resume, rows written after the restored step are dropped."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled  # False on the ranks other than 0, which write nothing

    def write(self, row: dict) -> None:
        """Append one row, stamped with the time."""
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as fh:
            fh.write(json.dumps({**row, "time": round(time.time(), 3)}) + "\n")

    def warn(self, step: int, warnings: list[str]) -> None:
        """Each warning on stderr and as a row."""
        for message in warnings:
            say(f"warning at step {step}: {message}")
            self.write({"step": step, "warning": message})

    def record_evaluation(self, folder: Path, step: int, result: dict) -> None:
        """An evaluation: ``folder/step_XXXXXXX.json`` (written whole or not at all) and its numbers as a row."""
        result["step"] = step
        if self.enabled:
            path = folder / f"step_{step:07d}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps(result))
            os.replace(tmp, path)
        self.write({"step": step, **{f"eval/{k}": v for k, v in result.items()
                                     if isinstance(v, (int, float)) and k != "step"}})

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
