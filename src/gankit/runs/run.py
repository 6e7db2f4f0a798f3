"""Reading a run directory back: its config, metrics rows, evaluations, preview grids, checkpoints and training
sessions, and what they say about the run (its status, the steps done, its best evaluation, its wall-clock time).

Only the files are read (JSON, YAML): nothing here loads a model, so listing a hundred runs takes a moment. A run
that is training now is read as it stands; a half-written last line of ``metrics.jsonl`` is skipped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import GankitError
from ..train import rundir

_STEP_FILE = re.compile(r"step_(\d{7,})\.(png|json)")


@dataclass
class Run:
    """What a run directory holds, read from its files."""

    path: Path
    config: dict = field(default_factory=dict)  # config.yaml as written (the resolved config)
    rows: list[dict] = field(default_factory=list)  # metrics.jsonl: log rows, evaluation rows, warnings
    sessions: list[dict] = field(default_factory=list)  # sessions.jsonl: start and end records
    evaluations: list[dict] = field(default_factory=list)  # eval/step_*.json, by step (training-time evaluations)
    samples: list[tuple[int, Path]] = field(default_factory=list)  # samples/step_*.png, by step
    best: dict | None = None  # checkpoints/best.json
    latest: dict | None = None  # checkpoints/latest.json
    running: bool = False  # a process holds the run's lock now

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def family(self) -> str:
        model = self.config.get("model") or {}
        return str(model.get("name", "?")) if isinstance(model, dict) else "?"

    @property
    def planned(self) -> int | None:
        steps = (self.config.get("train") or {}).get("steps")
        return int(steps) if isinstance(steps, (int, float)) else None

    @property
    def config_name(self) -> str:
        """The config the run was started from (a shipped name or a file's stem), as its first session says."""
        for record in self.sessions:
            if record.get("event") == "start" and record.get("config"):
                return str(record["config"])
        return "?"

    @property
    def log_rows(self) -> list[dict]:
        """The training log rows (not evaluations, not warnings)."""
        return [r for r in self.rows if "steps_per_s" in r]

    @property
    def eval_rows(self) -> list[dict]:
        """The evaluation rows of ``metrics.jsonl`` (``eval/<metric>`` keys)."""
        return [r for r in self.rows if any(k.startswith("eval/") for k in r)]

    @property
    def warnings(self) -> list[dict]:
        """The health events: warnings (``{"step", "warning"}``), and rollbacks and stops after a NaN
        (``{"step", "event", "reason", ...}``)."""
        return [r for r in self.rows if "warning" in r or "event" in r]

    @property
    def scalar_rows(self) -> list[dict]:
        """The rows whose numbers are curves: log rows and evaluations (not the health events, whose numbers, a
        failed step or a retry count, are no curves)."""
        return [r for r in self.rows if "warning" not in r and "event" not in r]

    @property
    def best_key(self) -> str | None:
        """The metric the best checkpoint was chosen by (``fid`` for generators, the task's key otherwise)."""
        if not self.best:
            return None
        keys = [k for k, v in self.best.items() if k not in ("step", "file") and isinstance(v, (int, float))]
        return keys[0] if keys else None

    @property
    def steps_done(self) -> int:
        """The step a resume continues from (the latest checkpoint's); while it trains, the last logged step."""
        done = int(self.latest["step"]) if self.latest and isinstance(self.latest.get("step"), int) else 0
        if self.running and self.rows:
            done = max(done, max(int(r.get("step", 0)) for r in self.rows))
        return done

    @property
    def last_checkpoint(self) -> Path | None:
        if not self.latest or not isinstance(self.latest.get("file"), str):
            return None
        return self.path / "checkpoints" / self.latest["file"]

    def status(self) -> tuple[str, str]:
        """``(status, why)``: running (a process holds the lock), finished, stopped (a signal, a time budget),
        crashed (an error, or a session with no end record: killed), empty (claimed, nothing trained yet) or
        unknown (a run older than session records)."""
        if self.running:
            return "running", ""
        last = self.sessions[-1] if self.sessions else None
        if last is None and not self.rows and not self.latest:
            return "empty", "nothing trained yet"
        if last is None:
            planned = self.planned
            if planned is not None and self.steps_done >= planned:
                return "finished", ""
            return "unknown", "no sessions.jsonl (a run from before gankit recorded sessions)"
        if last.get("event") == "start":
            return "crashed", f"the session started at step {last.get('step', '?')} has no end record (killed?)"
        outcome = str(last.get("outcome", "unknown"))
        return outcome, str(last.get("reason", ""))

    def wall_seconds(self) -> float:
        """Seconds spent training over every session (a crashed session ends at its last metrics row)."""
        return sum(end - start for start, end in self._session_spans())

    def _session_spans(self) -> list[tuple[float, float]]:
        """``(start, end)`` wall-clock times of each session; without session records, the metrics' own span."""
        starts = [r for r in self.sessions if r.get("event") == "start" and isinstance(r.get("time"), (int, float))]
        times = sorted(float(r["time"]) for r in self.rows if isinstance(r.get("time"), (int, float)))
        if not starts:
            return [(times[0], times[-1])] if times else []
        spans = []
        for i, start in enumerate(starts):
            t0 = float(start["time"])
            t_next = float(starts[i + 1]["time"]) if i + 1 < len(starts) else float("inf")
            ends = [float(r["time"]) for r in self.sessions if r.get("event") == "end"
                    and isinstance(r.get("time"), (int, float)) and t0 <= float(r["time"]) < t_next]
            inside = [t for t in times if t0 <= t < t_next]
            t1 = ends[0] if ends else (inside[-1] if inside else t0)
            spans.append((t0, max(t0, t1)))
        return spans

    def minutes_at(self, time_stamp: float) -> float:
        """Training minutes at the wall-clock ``time_stamp`` of a row: the sessions before it, in full, and the
        part of its own session (time between a crash and its resume does not count)."""
        spent = 0.0
        for start, end in self._session_spans():
            if time_stamp < start:
                break
            spent += min(time_stamp, end) - start
        return spent / 60


def numeric_keys(rows) -> list[str]:
    """The keys of ``rows`` (dicts) that hold a number (not a bool), in first-seen order, ``step`` and ``time``
    left out."""
    keys: dict[str, None] = {}
    for row in rows:
        for k, v in row.items():
            if k not in ("step", "time") and isinstance(v, (int, float)) and not isinstance(v, bool):
                keys.setdefault(k, None)
    return list(keys)


def read_run(path: str | Path) -> Run:
    """Read the run directory ``path``; one line (:class:`GankitError`) when it is not one."""
    path = Path(path)
    if not path.exists():
        raise GankitError(f"{path} does not exist: name a run directory (gankit runs lists those under runs/)")
    if not path.is_dir():
        raise GankitError(f"{path} is a file, not a run directory: name the folder a run wrote")
    if not rundir.is_run(path):
        raise GankitError(f"{path} is not a gankit run directory (no {rundir.MARKER}, nor config.yaml beside step "
                          "checkpoints): name a folder `gankit train --out` wrote")
    run = Run(path=path, config=_yaml(path / "config.yaml"), rows=_jsonl(path / "metrics.jsonl"),
              sessions=_jsonl(path / rundir.SESSIONS), best=_json(path / "checkpoints" / "best.json"),
              latest=_json(path / "checkpoints" / "latest.json"), running=rundir.is_locked(path))
    for file in sorted((path / "eval").glob("step_*.json")):
        match = _STEP_FILE.fullmatch(file.name)
        result = _json(file) if match else None
        if result is not None:
            run.evaluations.append({**result, "step": int(match.group(1))})
    for file in sorted((path / "samples").glob("step_*.png")):
        if match := _STEP_FILE.fullmatch(file.name):
            run.samples.append((int(match.group(1)), file))
    return run


def find_runs(folder: str | Path, depth: int = 4) -> list[Path]:
    """The run directories in ``folder`` (itself, if it is one), down to ``depth`` levels, in name order; a run's
    own subfolders are not searched."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GankitError(f"{folder} is not a folder: name the folder that holds your runs (default: runs)")
    if rundir.is_run(folder):
        return [folder]
    found = []
    try:
        children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []
    for child in children:
        if rundir.is_run(child):
            found.append(child)
        elif depth > 1:
            found += find_runs(child, depth - 1)
    return found


def _json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _jsonl(path: Path) -> list[dict]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:  # a half-written last line of a run killed or training now
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _yaml(path: Path) -> dict:
    try:
        value = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return value if isinstance(value, dict) else {}
