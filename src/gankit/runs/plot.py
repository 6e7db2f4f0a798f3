"""``gankit plot``: the standard panels of one or several runs on shared axes, drawn with matplotlib (an optional
extra: ``pip install 'gankit[plot]'``), no server needed.

The panels are chosen from the keys the runs logged, by name, so that every family gets its own without the plot
knowing any: the loss terms (keys holding ``loss``), the discriminator's outputs (``d_real`` = D(x), ``d_fake`` =
D(G(z)), ``d_acc``, ``d_sign_real``), the metric the best checkpoint is chosen by (FID for generators) over steps
and over training minutes, recall, the learning rates (``lr/<optimizer>``), and each other logged term (a VAE's
``kl``, CycleGAN's ``cycle``, StyleGAN's ``resolution``) in a panel of its own. ``--metric`` picks panels by key
(``eval/kid``, ``steps_per_s``, or a pattern such as ``eval/*``). Values are raw unless ``--smooth`` asks for
TensorBoard's debiased exponential moving average; evaluations are never smoothed.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import GankitError
from .run import Run, numeric_keys

MAX_OTHER_PANELS = 4  # logged terms beyond the standard panels drawn by default (the rest by --metric)
_NOT_STANDARD = {"steps_per_s"}  # a host's speed: on request (--metric steps_per_s), not among the standard panels


@dataclass
class Panel:
    """One set of axes: ``keys`` against steps (``x="step"``) or training minutes (``x="minutes"``)."""

    title: str
    keys: list[str] = field(default_factory=list)
    x: str = "step"


def require_matplotlib():
    """matplotlib's Figure, or one line saying how to install it."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise GankitError("plots need matplotlib, an optional extra: pip install 'gankit[plot]' "
                          "(or pip install matplotlib)") from None
    return Figure


def logged_keys(runs: list[Run]) -> list[str]:
    """Every numeric key the runs logged (training rows, then evaluations), in first-seen order."""
    return numeric_keys(r for run in runs for r in run.scalar_rows)


def standard_panels(runs: list[Run]) -> list[Panel]:
    """The default panels for what these runs logged (see the module docstring)."""
    keys = [k for k in logged_keys(runs) if k not in _NOT_STANDARD]
    train_keys = [k for k in keys if not k.startswith(("eval/", "lr/"))]
    losses = [k for k in train_keys if "loss" in k]
    outputs = [k for k in train_keys if k in ("d_real", "d_fake", "d_acc", "d_sign_real")]
    panels = []
    if losses:
        panels.append(Panel("losses", losses))
    if outputs:
        panels.append(Panel("discriminator: D(x) = d_real, D(G(z)) = d_fake", outputs))
    chosen = [f"eval/{run.best_key}" for run in runs if run.best_key]
    best = next((k for k in chosen if k in keys), None) or next((k for k in keys if k.startswith("eval/")), None)
    if best is not None:
        panels += [Panel(f"{best[5:]} over steps", [best]), Panel(f"{best[5:]} over training minutes", [best],
                                                                   "minutes")]
    if "eval/recall" in keys and best != "eval/recall":
        panels.append(Panel("recall over steps", ["eval/recall"]))
    rates = [k for k in keys if k.startswith("lr/")]
    if rates:
        panels.append(Panel("learning rate", rates))
    others = [k for k in train_keys if k not in losses and k not in outputs]
    panels += [Panel(k, [k]) for k in others[:MAX_OTHER_PANELS]]
    return panels


def picked_panels(runs: list[Run], metrics: list[str], x: str = "step") -> list[Panel]:
    """One panel per ``--metric`` (a key or a pattern: every key it matches); an unknown one is an error that
    lists the keys there are."""
    keys = logged_keys(runs)
    panels = []
    for metric in metrics:
        matched = [k for k in keys if fnmatch.fnmatchcase(k, metric)] or \
                  [k for k in keys if k == f"eval/{metric}"]  # `--metric fid` for eval/fid
        if not matched:
            raise GankitError(f"--metric {metric}: no run logged it; the keys logged are: {', '.join(keys)}")
        panels.append(Panel(metric if len(matched) > 1 else matched[0], matched, x))
    return panels


def series(run: Run, key: str, x: str = "step", smooth: float = 0.0) -> tuple[list[float], list[float]]:
    """``(xs, ys)`` of ``key`` in ``run``: steps or training minutes; ``smooth`` in [0, 1) smooths training
    scalars with a debiased exponential moving average (0: raw)."""
    xs, ys = [], []
    for row in run.scalar_rows:
        value = row.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or "step" not in row:
            continue
        if x == "minutes":
            if not isinstance(row.get("time"), (int, float)):
                continue
            xs.append(run.minutes_at(float(row["time"])))
        else:
            xs.append(float(row["step"]))
        ys.append(float(value))
    if smooth > 0 and not key.startswith("eval/"):
        ys = _smoothed(ys, smooth)
    return xs, ys


def _smoothed(values: list[float], weight: float) -> list[float]:
    """TensorBoard's smoothing: an exponential moving average, divided by the weight its start lacks."""
    out, mean = [], 0.0
    for i, v in enumerate(values, 1):
        mean = weight * mean + (1 - weight) * v
        out.append(mean / (1 - weight ** i))
    return out


def figure(runs: list[Run], panels: list[Panel], smooth: float = 0.0, columns: int = 3):
    """A matplotlib Figure with ``panels`` (one set of axes each), every run in its own colour."""
    if not panels:
        raise GankitError("nothing to plot: the runs logged no numbers yet")
    Figure = require_matplotlib()
    columns = min(columns, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig = Figure(figsize=(4.6 * columns, 3.1 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    colours = [f"C{i % 10}" for i in range(len(runs))]
    styles = ["-", "--", ":", "-."]
    for ax, panel in zip(axes, panels):
        drawn = []
        for run, colour in zip(runs, colours):
            for i, key in enumerate(panel.keys):
                xs, ys = series(run, key, panel.x, smooth)
                if not xs:
                    continue
                label = key if len(runs) == 1 else (run.name if len(panel.keys) == 1 else f"{run.name}: {key}")
                marker = "o" if key.startswith("eval/") else None
                ax.plot(xs, ys, styles[i % len(styles)], color=colour if len(runs) > 1 else f"C{i % 10}",
                        label=label, marker=marker, markersize=3, linewidth=1.2)
                drawn += ys
        ax.set_title(panel.title, fontsize=10)
        ax.set_xlabel("training minutes" if panel.x == "minutes" else "step", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if drawn and min(drawn) > 0 and max(drawn) / min(drawn) > 20 and all(k.startswith("eval/")
                                                                           for k in panel.keys):
            ax.set_yscale("log")  # FID falls over orders of magnitude
        if drawn and (len(runs) > 1 or len(panel.keys) > 1):
            ax.legend(fontsize=7)
        if not drawn:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="grey")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    return fig


def plot_runs(runs: list[Run], out: str | Path, metrics: list[str] | None = None, smooth: float = 0.0,
              x: str = "step") -> Path:
    """Draw the standard panels (or one per ``metrics`` entry) of ``runs`` into ``out`` (PNG, SVG or PDF, by its
    suffix) and return its path."""
    for run in runs:
        if not run.rows:
            raise GankitError(f"{run.path} has no metrics yet (metrics.jsonl is empty: the first row comes after "
                              "train.log_every steps)")
    if not 0.0 <= smooth < 1.0:
        raise GankitError(f"--smooth {smooth}: expected a weight in [0, 1) (0 = raw, 0.6 = TensorBoard's default)")
    panels = picked_panels(runs, metrics, x) if metrics else standard_panels(runs)
    out = Path(out)
    if out.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise GankitError(f"-o {out}: name a .png, .svg or .pdf file")
    fig = figure(runs, panels, smooth)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=110)
    except OSError as exc:
        from ..train.log import why_unwritten
        raise GankitError(f"could not write {out}: {why_unwritten(exc)}") from None
    return out
