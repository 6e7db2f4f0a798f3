"""``gankit report``: one self-contained HTML file about one or several runs, to open in any browser or send to a
colleague: no network, no server, every image inlined as a data URI.

For each run: a summary (status, steps, best evaluation, wall-clock time), the curves (:mod:`gankit.runs.plot`),
the preview grids through training as a timeline to step through (a slider, the arrow keys), the training-time
evaluations with how they were computed, the health events, and the config as a diff against the defaults of its
model and recipe (the whole config one click away). Several runs get a comparison table first. Every number in a
table carries its exact value in ``data-value``, so that a test can check the page against the run's files.
"""

from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path

import yaml

from ..errors import GankitError
from ..train.log import replace_text, why_unwritten
from ..version import __version__
from . import plot
from .listing import duration, number, summary
from .run import Run, numeric_keys

COMPARED = 6  # metrics per run in the comparison table
MAX_FRAMES = 40  # preview grids inlined per run: evenly spaced, the first and the last always among them

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1180px;padding:1rem 2rem;
color:#1d2330;background:#fff;line-height:1.4}
h1{font-size:1.6rem;margin:.4rem 0}h2{font-size:1.3rem;border-bottom:2px solid #d7dce5;padding-bottom:.2rem;
margin-top:2rem}h3{font-size:1.05rem;margin:1.2rem 0 .4rem}
.meta{color:#5b6472;font-size:.9rem}
table{border-collapse:collapse;font-size:.85rem;margin:.3rem 0}
th,td{border:1px solid #d7dce5;padding:.25rem .55rem;text-align:left;vertical-align:top}
th{background:#f1f3f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
.status-finished{color:#17653a;font-weight:600}.status-crashed{color:#a4161a;font-weight:600}
.status-stopped,.status-unknown,.status-empty{color:#8a5a00;font-weight:600}.status-running{color:#1f4fa8;font-weight:600}
img.curves{max-width:100%;border:1px solid #d7dce5}
.timeline{display:flex;flex-direction:column;align-items:flex-start;gap:.4rem}
.timeline img.frame{image-rendering:pixelated;width:min(100%,420px);border:1px solid #d7dce5}
.timeline img.frame[hidden]{display:none}
.controls{display:flex;align-items:center;gap:.6rem}.controls input{width:280px}
.step-label{font-variant-numeric:tabular-nums;min-width:9rem}
.none{color:#5b6472;font-style:italic}
details{margin:.4rem 0}summary{cursor:pointer;color:#1f4fa8}
.scroll{overflow-x:auto;max-width:100%}
pre{background:#f6f7f9;padding:.6rem;overflow:auto;font-size:.8rem}
"""

# steps through each timeline: the slider, the buttons and the arrow keys show one frame at a time
_SCRIPT = """
document.querySelectorAll('.timeline').forEach(function (timeline) {
  var frames = timeline.querySelectorAll('img.frame');
  var slider = timeline.querySelector('input[type=range]');
  var label = timeline.querySelector('.step-label');
  function show(i) {
    i = Math.max(0, Math.min(frames.length - 1, i));
    frames.forEach(function (f, j) { f.hidden = j !== i; });
    slider.value = i;
    label.textContent = 'step ' + frames[i].dataset.step + ' (' + (i + 1) + ' of ' + frames.length + ')';
  }
  slider.addEventListener('input', function () { show(+slider.value); });
  timeline.querySelector('.prev').addEventListener('click', function () { show(+slider.value - 1); });
  timeline.querySelector('.next').addEventListener('click', function () { show(+slider.value + 1); });
  timeline.addEventListener('keydown', function (e) {
    if (e.key === 'ArrowLeft') { show(+slider.value - 1); e.preventDefault(); }
    if (e.key === 'ArrowRight') { show(+slider.value + 1); e.preventDefault(); }
  });
  show(+slider.value);
});
"""


def write_report(runs: list[Run], out: str | Path, smooth: float = 0.0) -> Path:
    """Write the report on ``runs`` to ``out`` (an ``.html`` file) and return its path."""
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise GankitError(f"-o {out}: name an .html file")
    for run in runs:
        if not run.rows:
            raise GankitError(f"{run.path} has no metrics yet (metrics.jsonl is empty: the first row comes after "
                              "train.log_every steps): nothing to report")
    page = render(runs, smooth)
    try:
        replace_text(out, page)  # whole or not at all, as a run's own files
    except OSError as exc:
        raise GankitError(f"could not write {out}: {why_unwritten(exc)}") from None
    return out


def render(runs: list[Run], smooth: float = 0.0) -> str:
    """The report as one HTML string."""
    names = ", ".join(run.name for run in runs)
    parts = [f"<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
             f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<link rel=\"icon\" href=\"data:,\">\n"
             f"<title>gankit report: {_e(names)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n",
             f"<h1>gankit report: {_e(names)}</h1>\n<p class=\"meta\">written {time.strftime('%Y-%m-%d %H:%M')} "
             f"by gankit {_e(__version__)} from {len(runs)} run{'s' if len(runs) > 1 else ''}: "
             f"{_e(', '.join(str(run.path) for run in runs))}</p>\n"]
    if len(runs) > 1:
        parts.append(_comparison(runs))
    parts.append("<h2 id=\"curves\">Curves</h2>\n")
    parts.append(f"<img class=\"curves\" alt=\"training curves of {_e(names)}\" "
                 f"src=\"{_png_uri(plot.figure(runs, plot.standard_panels(runs), smooth))}\">\n")
    if smooth:
        parts.append(f"<p class=\"meta\">training scalars smoothed (weight {smooth}); evaluations raw</p>\n")
    for i, run in enumerate(runs):
        parts.append(_run_section(run, i))
    parts.append(f"<script>{_SCRIPT}</script>\n</body>\n</html>\n")
    return "".join(parts)


def _comparison(runs: list[Run]) -> str:
    keys = _compared_keys(runs)
    head = ["run", "config", "family", "status", "steps", "best", "at step", "time",
            *[f"last {k}" for k in keys]]
    rows = []
    for i, run in enumerate(runs):
        s = summary(run)
        last = run.evaluations[-1] if run.evaluations else {}
        cells = [f"<td><a href=\"#run-{i}\">{_e(run.name)}</a></td>", _td(s["config"]), _td(s["family"]),
                 _status_td(s["status"]), _td(_steps(s)),
                 _num_td(s["best_value"], run.name, s["best_step"], f"best/{s['best_metric']}",
                         prefix=f"{s['best_metric']} " if s["best_metric"] else ""),
                 _td(f"{s['best_step']:,}" if s["best_step"] is not None else "-"), _td(duration(s["wall_seconds"])),
                 *[_num_td(last.get(k), run.name, last.get("step"), k) for k in keys]]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<h2 id=\"comparison\">Comparison</h2>\n<div class=\"scroll\"><table class=\"comparison\">\n<tr>"
            + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>\n" + "\n".join(rows) + "\n</table></div>\n"
            + "<p class=\"meta\">last: each run's last training-time evaluation (all of them in its section)</p>\n")


def _run_section(run: Run, index: int) -> str:
    s = summary(run)
    out = [f"<section class=\"run\" id=\"run-{index}\">\n<h2>{_e(run.name)}</h2>\n<table class=\"summary\">\n"]
    best = "-" if not s["best_metric"] else \
        f"{s['best_metric']} {number(s['best_value'])} at step {s['best_step']:,}"
    facts = [("run directory", str(run.path)), ("config", s["config"]), ("family", s["family"]),
             ("steps", _steps(s)), ("best checkpoint", best), ("training time", duration(s["wall_seconds"])),
             ("last checkpoint", s["last_checkpoint"] or "-")]
    for label, value in facts[:3]:
        out.append(f"<tr><th>{_e(label)}</th>{_td(value)}</tr>\n")
    why = f" ({s['why']})" if s.get("why") else ""
    out.append(f"<tr><th>status</th><td class=\"status-{_e(s['status'])}\">{_e(s['status'] + why)}</td></tr>\n")
    for label, value in facts[3:]:
        out.append(f"<tr><th>{_e(label)}</th>{_td(value)}</tr>\n")
    out.append("</table>\n")
    out.append(_timeline(run, index))
    out.append(_evaluations(run))
    out.append(_health(run))
    out.append(_config(run))
    out.append("</section>\n")
    return "".join(out)


def _timeline(run: Run, index: int) -> str:
    if not run.samples:
        return "<h3>Samples through training</h3>\n<p class=\"none\">no preview grids yet</p>\n"
    frames = _spread(run.samples, MAX_FRAMES)
    shown = "" if len(frames) == len(run.samples) else \
        f" ({len(frames)} of {len(run.samples)} grids, evenly spaced)"
    imgs = "".join(f"<img class=\"frame\" data-step=\"{step}\" alt=\"samples at step {step:,}\" "
                   f"src=\"data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}\""
                   f"{'' if k == len(frames) - 1 else ' hidden'}>\n" for k, (step, path) in enumerate(frames))
    return (f"<h3>Samples through training{_e(shown)}</h3>\n<div class=\"timeline\" tabindex=\"0\" id=\"timeline-{index}\">"
            f"\n{imgs}<div class=\"controls\"><button class=\"prev\" type=\"button\">&larr;</button>"
            f"<input type=\"range\" min=\"0\" max=\"{len(frames) - 1}\" value=\"{len(frames) - 1}\" "
            f"aria-label=\"training step\"><button class=\"next\" type=\"button\">&rarr;</button>"
            f"<span class=\"step-label\">step {frames[-1][0]}</span></div>\n</div>\n")


def _evaluations(run: Run) -> str:
    if not run.evaluations:
        return "<h3>Evaluations</h3>\n<p class=\"none\">no training-time evaluation (train.eval_every = 0)</p>\n"
    keys = _eval_keys([run])
    rows = ["<tr><th>step</th>" + "".join(f"<th>{_e(k)}</th>" for k in keys) + "</tr>"]
    for result in run.evaluations:
        rows.append(f"<tr><td class=\"num\">{result['step']:,}</td>"
                    + "".join(_num_td(result.get(k), run.name, result["step"], k) for k in keys) + "</tr>")
    provenance = run.evaluations[-1].get("provenance")
    how = ""
    if isinstance(provenance, dict):
        items = "".join(f"<tr><th>{_e(k)}</th>{_td(_plain(v))}</tr>" for k, v in provenance.items())
        how = f"<details><summary>how these were computed</summary>\n<table>{items}</table>\n</details>\n"
    best = f" The best checkpoint is the lowest {run.best_key}." if run.best_key else ""
    return (f"<h3>Evaluations</h3>\n<p class=\"meta\">training-time evaluations (eval/step_*.json).{_e(best)}</p>\n"
            f"<div class=\"scroll\"><table class=\"evaluations\">\n" + "\n".join(rows) + "\n</table></div>\n" + how)


def _health(run: Run) -> str:
    events = run.warnings
    if not events:
        return "<h3>Health events</h3>\n<p class=\"none\">none: no warning during training</p>\n"
    items = "".join(f"<li>step {int(e.get('step', 0)):,}: {_e(_event_text(e))}</li>\n" for e in events)
    return f"<h3>Health events</h3>\n<ul class=\"health\">\n{items}</ul>\n"


def _event_text(event: dict) -> str:
    """A warning's message, or a rollback's or a stop's fields (``rollback: non-finite d_loss ..., retry 1``)."""
    if "warning" in event:
        return str(event["warning"])
    rest = ", ".join(f"{k} {v}" for k, v in event.items() if k not in ("step", "event", "reason", "time"))
    return f"{event['event']}: {event.get('reason', '')}" + (f" ({rest})" if rest else "")


def _config(run: Run) -> str:
    flat = _flatten(run.config)
    defaults = _defaults(run.config)
    full = f"<details><summary>the whole config</summary>\n<pre>{_e(yaml.safe_dump(run.config, sort_keys=False))}" \
           f"</pre>\n</details>\n"
    if defaults is None:
        return f"<h3>Config</h3>\n<p class=\"meta\">(the defaults of this model could not be built here)</p>\n{full}"
    changed = [(k, v, defaults.get(k, "(none)")) for k, v in flat.items() if defaults.get(k, object()) != v]
    if not changed:
        return f"<h3>Config</h3>\n<p class=\"none\">the defaults of {_e(run.family)}</p>\n{full}"
    rows = "".join(f"<tr><td>{_e(k)}</td>{_td(_plain(v))}{_td(_plain(d))}</tr>\n" for k, v, d in changed)
    return (f"<h3>Config</h3>\n<p class=\"meta\">what differs from the defaults of model.name={_e(run.family)}</p>\n"
            f"<table class=\"config\">\n<tr><th>key</th><th>this run</th><th>default</th></tr>\n{rows}</table>\n{full}")


def _defaults(config: dict) -> dict | None:
    """The flattened defaults of the run's model and recipe, or None (a family this version does not know)."""
    from ..config import from_dict, to_dict
    names = {s: {"name": config[s]["name"]} for s in ("model", "recipe")
             if isinstance(config.get(s), dict) and "name" in config[s]}
    try:
        return _flatten(to_dict(from_dict(names)))
    except GankitError:
        return None


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            flat.update(_flatten(v, f"{prefix}{k}."))
        else:
            flat[f"{prefix}{k}"] = v
    return flat


def _eval_keys(runs: list[Run]) -> list[str]:
    """The scalar metrics of the runs' evaluations, in first-seen order."""
    return numeric_keys(result for run in runs for result in run.evaluations)


def _compared_keys(runs: list[Run], most: int = COMPARED) -> list[str]:
    """The metrics of the comparison table: the one the best checkpoints are chosen by, then the first others
    (spreads such as ``kid_std`` left to each run's own table)."""
    keys = [k for k in _eval_keys(runs) if not k.endswith("_std")]
    first = [run.best_key for run in runs if run.best_key in keys][:1]
    return (first + [k for k in keys if k not in first])[:most]


def _spread(items: list, most: int) -> list:
    if len(items) <= most:
        return list(items)
    picks = sorted({round(i * (len(items) - 1) / (most - 1)) for i in range(most)})
    return [items[i] for i in picks]


def _png_uri(fig) -> str:
    import io
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _steps(s: dict) -> str:
    planned = f"{s['steps_planned']:,}" if s["steps_planned"] is not None else "?"
    return f"{s['steps_done']:,} of {planned}"


def _plain(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _td(value) -> str:
    return f"<td>{_e(value)}</td>"


def _status_td(status: str) -> str:
    return f"<td class=\"status-{_e(status)}\">{_e(status)}</td>"


def _num_td(value, run: str, step, key: str, prefix: str = "") -> str:
    """A number's cell: shown to 4 significant digits, its exact value in ``data-value``."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "<td class=\"num\">-</td>"
    return (f"<td class=\"num\" data-run=\"{_e(run)}\" data-step=\"{_e(step)}\" data-key=\"{_e(key)}\" "
            f"data-value=\"{_e(json.dumps(value))}\">{_e(prefix)}{_e(number(value))}</td>")
