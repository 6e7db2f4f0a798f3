"""``gankit runs``: one row per run directory (name, config, family, steps done of planned, status, best
evaluation and its step, wall-clock time, last checkpoint), as an aligned table or as JSON."""

from __future__ import annotations

from pathlib import Path

from .run import Run, find_runs, read_run

SORT_KEYS = ("name", "status", "steps", "best", "time", "family")


def summary(run: Run, root: Path | None = None) -> dict:
    """The row of ``run`` as a dict (what ``--json`` prints)."""
    status, why = run.status()
    key = run.best_key
    checkpoint = run.last_checkpoint
    return {"run": str(run.path.relative_to(root)) if root is not None and run.path != root else str(run.path),
            "config": run.config_name, "family": run.family, "steps_done": run.steps_done,
            "steps_logged": max((int(r["step"]) for r in run.rows if isinstance(r.get("step"), int)), default=0),
            "steps_planned": run.planned, "status": status, **({"why": why} if why else {}),
            "best_metric": key, "best_value": run.best[key] if key else None,
            "best_step": run.best.get("step") if key else None,
            "wall_seconds": round(run.wall_seconds(), 1),
            "last_checkpoint": str(checkpoint) if checkpoint is not None else None}


def list_runs(folder: str | Path = "runs", sort: str = "name", reverse: bool = False) -> list[dict]:
    """The rows of every run under ``folder``, sorted by ``sort`` (see :data:`SORT_KEYS`); runs without a best
    evaluation sort last by ``best``."""
    root = Path(folder)
    rows = [summary(read_run(path), root) for path in find_runs(root)]
    order = {
        "name": lambda r: (r["run"],),
        "status": lambda r: (r["status"], r["run"]),
        "steps": lambda r: (r["steps_done"], r["run"]),
        "best": lambda r: (r["best_value"] is None, r["best_value"] if r["best_value"] is not None else 0.0),
        "time": lambda r: (r["wall_seconds"], r["run"]),
        "family": lambda r: (r["family"], r["run"]),
    }[sort]
    return sorted(rows, key=order, reverse=reverse)


def duration(seconds: float) -> str:
    """``1 h 02 min``, ``12 min 05 s`` or ``41 s``."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def number(value: float | int | None) -> str:
    """A metric as the tables show it: integers in full, other numbers to 4 significant digits."""
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4g}"


def format_table(rows: list[dict]) -> str:
    """The rows as an aligned text table, one run per line."""
    head = ["run", "config", "family", "steps", "status", "best", "at step", "time", "last checkpoint"]
    lines = []
    for r in rows:
        planned = f"{r['steps_planned']:,}" if r["steps_planned"] is not None else "?"
        best = f"{r['best_metric']} {number(r['best_value'])}" if r["best_metric"] else "-"
        checkpoint = Path(r["last_checkpoint"]).name if r["last_checkpoint"] else "-"
        steps = f"{r['steps_done']:,}/{planned}"
        if r["steps_logged"] > r["steps_done"]:  # a crash or a stop after the last checkpoint: resume goes back
            steps += f" ({r['steps_logged']:,} logged)"
        lines.append([r["run"], r["config"], r["family"], steps, r["status"], best,
                      f"{r['best_step']:,}" if r["best_step"] is not None else "-", duration(r["wall_seconds"]),
                      checkpoint])
    widths = [max(len(str(x)) for x in column) for column in zip(head, *lines)]
    return "\n".join("  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip() for line in [head, *lines])
