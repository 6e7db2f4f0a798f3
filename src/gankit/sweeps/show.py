"""``gankit sweep --show DIR``: what a sweep found, read from its study alone.

The best setting and a table of every trial (state, the objective's mean and spread over the seeds, the setting,
the run directories, why a trial failed); the best setting written as a config file (``DIR/best.yaml``: the sweep's
config with the best setting applied, for ``gankit train DIR/best.yaml``); and Optuna's optimisation history and
parameter importances drawn as PNG (matplotlib, the ``plot`` extra) into the folder.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..config import apply_override, dump_config, from_dict, load_config, to_dict
from ..errors import GankitError
from ..runs.listing import number
from .space import decoded, override_text, plain
from .study import ATTR, HOST, _shown, _storage, masked, quiet_optuna, require_optuna


@dataclass
class SweepReport:
    """What :func:`show` found and wrote: the text to print, the best trial (None before one completes), the best
    setting's config file and the plots (each None or missing when it could not be made: ``notes`` says why)."""

    text: str
    best: dict | None
    best_config: Path | None
    plots: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def show(folder: str | Path, storage: str | None = None, study: str | None = None) -> SweepReport:
    """Read the sweep in ``folder`` (its study in ``storage``, by default ``folder/study.db``), print-ready, and
    write ``best.yaml``, ``history.png`` and ``importance.png`` into ``folder``."""
    optuna = require_optuna()
    folder = Path(folder)
    if not folder.is_dir():
        raise GankitError(f"{folder} is not a folder: name a sweep's folder (gankit sweep --show DIR)")
    if storage is None and not (folder / "study.db").is_file():
        raise GankitError(f"no study in {folder} (no study.db): a sweep run with --storage URL needs the same "
                          "--storage (and --study) here")
    url = storage or f"sqlite:///{(folder / 'study.db').resolve()}"
    with quiet_optuna(optuna):
        found = _load(optuna, url, study or folder.resolve().name)
        attrs = found.user_attrs.get(ATTR)
        if not isinstance(attrs, dict):
            raise GankitError(f"study {found.study_name!r} in {masked(url)} was not made by gankit sweep")
        trials = found.get_trials(deepcopy=False)
        best = _best(found, attrs)
        seeds = attrs["seeds"]
        lines = [f"study {found.study_name!r} in {masked(url)}: {len(trials)} trials",
                 f"objective: {attrs['objective']}, {'maximised' if attrs['maximize'] else 'minimised'}, each run's "
                 f"{attrs['take']} evaluation" + (f" (the mean over {seeds} seeds)" if seeds > 1 else "")]
        report = SweepReport("", best, None)
        if best is not None:
            report.best_config = write_best_config(folder / "best.yaml", attrs["base"], best["params"],
                                                   f"trial {best['number']}, {attrs['objective']} "
                                                   f"{number(best['value'])}, study {found.study_name!r}")
            lines += [_best_line(best, attrs["objective"]), f"best config: {report.best_config} "
                      f"(gankit train {report.best_config})"]
            report.plots, report.notes = write_plots(optuna, found, folder, attrs["objective"])
        else:
            report.notes.append("no trial is complete yet: no best setting, no plots")
        lines += [f"plot: {p}" for p in report.plots] + [f"note: {n}" for n in report.notes]
        report.text = "\n".join([*lines, "", trials_table(trials, attrs)])
        return report


def _load(optuna, url: str, name: str):
    """The study ``name`` in ``url``, or the only study there."""
    from sqlalchemy.exc import SQLAlchemyError
    try:
        storage = _storage(optuna, url)
        names = optuna.study.get_all_study_names(storage)
    except (ImportError, ValueError, SQLAlchemyError) as exc:
        raise GankitError(f"cannot open the study storage {masked(url)}: {exc}") from None
    if name not in names:
        if len(names) != 1:
            raise GankitError(f"no study named {name!r} in {masked(url)}; its studies: {', '.join(names) or 'none'}"
                              " (--study NAME)")
        name = names[0]
    return optuna.load_study(study_name=name, storage=storage)


def _best(study, attrs: dict) -> dict | None:
    """The best complete trial as a dict (number, value, std over seeds, the setting as config values)."""
    if not any(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False)):
        return None
    t = study.best_trial
    space = attrs.get("space", {})
    params = {k: decoded(space.get(k, {}), v) for k, v in t.params.items()}
    return {"number": t.number, "value": t.value, "std": t.user_attrs.get("std"), "params": params,
            "seed_values": t.user_attrs.get("seed_values"), "runs": t.user_attrs.get("runs", [])}


def _best_line(best: dict, objective: str) -> str:
    spread = f" +- {best['std']:.2g} over {len(best['seed_values'])} seeds" if best.get("std") else ""
    setting = ", ".join(f"{k}={_shown(v)}" for k, v in best["params"].items())
    return f"best: trial {best['number']}, {objective} {number(best['value'])}{spread}: {setting}"


class _Dumper(yaml.SafeDumper):
    """Block mappings with lists on one line (``g_hidden: [64, 64]``), as the shipped configs write them."""


_Dumper.add_representer(list, lambda dumper, value: dumper.represent_sequence("tag:yaml.org,2002:seq", value,
                                                                              flow_style=True))


def write_best_config(path: Path, base: dict, params: dict, about: str) -> Path:
    """Write the sweep's config (``base``: its YAML with the sweep's --set overrides) with ``params`` applied, as a
    short YAML diff over the defaults; the whole resolved config instead where the diff would not read back the
    same."""
    raw = copy.deepcopy(base)
    for key, value in params.items():
        apply_override(raw, f"{key}={override_text(value)}")
    raw = plain(raw)
    cfg = from_dict(copy.deepcopy(raw))
    header = (f"# The best setting of a gankit sweep ({about}): the sweep's config with the setting applied.\n"
              f"# Train it again with: gankit train {path}\n")
    path.write_text(header + yaml.dump(raw, Dumper=_Dumper, sort_keys=False, allow_unicode=True))
    if to_dict(load_config(path)) != to_dict(cfg):
        path.write_text(header + dump_config(cfg))
    return path


def write_plots(optuna, study, folder: Path, objective: str) -> tuple[list[Path], list[str]]:
    """Optuna's optimisation history and parameter importances as PNG files in ``folder``; a plot that cannot be
    drawn (no matplotlib, too few trials) is a note instead."""
    try:
        import matplotlib.pyplot as plt
        from optuna.visualization import matplotlib as drawings
    except ImportError:
        return [], ["plots need matplotlib, an optional extra: pip install 'gankit[plot]'"]
    written, notes = [], []
    complete = sum(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False))
    for name, draw in (("history.png", drawings.plot_optimization_history),
                       ("importance.png", drawings.plot_param_importances)):
        if name == "importance.png" and complete < 2:
            notes.append(f"{name} not drawn: parameter importances need at least 2 complete trials")
            continue
        with warnings.catch_warnings(record=True) as said:  # Optuna's doubts about few trials: notes, not noise
            warnings.simplefilter("always")
            try:
                axes = draw(study, target_name=objective)
            except (ValueError, RuntimeError, ZeroDivisionError) as exc:
                notes.append(f"{name} not drawn: {exc}")
                continue
        notes += [f"{name}: {w.message}" for w in said if issubclass(w.category, UserWarning)]
        figure = axes.figure
        try:
            figure.set_size_inches(8, 5)
            figure.tight_layout()
            figure.savefig(folder / name, dpi=100)
        finally:
            plt.close(figure)
        written.append(folder / name)
    return written, notes


def trials_table(trials: list, attrs: dict) -> str:
    """One row per trial: number, state, the objective (mean +- s.d. over seeds), the setting, runs and notes."""
    keys = list(attrs.get("space", {}))
    head = ["trial", "state", attrs.get("objective", "value"), *keys, "runs", "note"]
    retried_as = {t.system_attrs.get("retry_history", [None])[-1]: t.number for t in trials
                  if t.system_attrs.get("retry_history")}
    rows = [_row(t, keys, attrs, retried_as) for t in trials]
    widths = [max(len(str(x)) for x in column) for column in zip(head, *rows)]
    return "\n".join("  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip() for line in [head, *rows])


def _row(t, keys: list[str], attrs: dict, retried_as: dict) -> list[str]:
    std = t.user_attrs.get("std")
    value = "-" if t.value is None else number(t.value) + (f" +- {std:.2g}" if std else "")
    space = attrs.get("space", {})
    setting = [_shown(decoded(space.get(k, {}), t.params[k])) if k in t.params else "-" for k in keys]
    host = t.user_attrs.get("host")
    runs = ",".join((f"{host}:" if host and host != HOST else "") + Path(r).name for r in t.user_attrs.get("runs", []))
    note = t.user_attrs.get("error") or t.user_attrs.get("sweep_error") or ""
    if t.state.name == "FAIL" and not note:
        note = "no result: its sweep was stopped or died" + (f"; retried as trial {retried_as[t.number]}"
                                                              if t.number in retried_as else "")
    if t.system_attrs.get("failed_trial") is not None:
        note = (note + "; " if note else "") + f"retry of trial {t.system_attrs['failed_trial']}"
    return [str(t.number), t.state.name.lower(), value, *setting, runs or "-", note[:100]]
