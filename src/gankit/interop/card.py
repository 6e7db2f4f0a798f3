"""The model card of a model folder (``README.md``), as the Hugging Face Hub reads one: YAML front matter
(``library_name``, ``tags``, the data's ``license`` where gankit knows it), then what the model is, how to use it,
a grid of its samples, the scores of the run's evaluations with how they were computed, and the command and
config that trained it. Everything comes from the run directory's own files (read, never run)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..registry import DATASETS
from ..runs.run import read_run
from ..train import rundir
from ..version import __version__

_EVAL_FILE = rundir.EVAL_FILE
MAX_EVAL_BYTES = 1 << 20  # an evaluation's JSON holds a few kilobytes


@dataclass
class CardFacts:
    """What a model card says about a model: its name, family and task, data record, step, whether the weights are
    the EMA copy, the command lines that use it, the caption of its grid (None: no grid) and the run directory it
    came from (None: a checkpoint or folder without one)."""

    name: str
    model: str
    task: str
    data: dict
    step: int
    ema: bool
    usage: list[str]
    grid: str | None
    config: dict
    run_dir: Path | None = None
    tags: list[str] = field(default_factory=list)


def model_card(facts: CardFacts) -> str:
    """The card's text: front matter, then the sections described in the module docstring."""
    parts = [_front_matter(facts), f"# {facts.name}\n", _about(facts), _usage(facts)]
    if facts.grid is not None:
        parts.append(f"## Samples\n\n![{facts.grid}](samples.png)\n\n{facts.grid}.\n")
    parts += [_evaluations(facts), _training(facts)]
    return "\n".join(parts)


def _front_matter(facts: CardFacts) -> str:
    meta: dict = {"library_name": "gankit"}
    license_ = _license(facts.data.get("dataset"))
    if license_:
        meta["license"] = license_
    meta["tags"] = ["gankit", "pytorch", facts.model, facts.task, *facts.tags]
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


def _license(dataset: str | None) -> str | None:
    """The license of a built-in data source, where its registry line records one."""
    if not dataset or dataset not in DATASETS:
        return None
    return DATASETS.meta(dataset).get("license")


def _about(facts: CardFacts) -> str:
    data = facts.data
    shape = " x ".join(map(str, data.get("sample_shape", [])))
    classes = f", {data['num_classes']} classes" if data.get("num_classes") else ""
    size = f"{data['size']:,} " if isinstance(data.get("size"), int) else ""
    weights = "the exponential moving average of its generator's weights" if facts.ema else "its weights"
    license_ = _license(data.get("dataset"))
    licensed = (f" The data's license is {license_}." if license_ else
                " gankit does not know the data's license: add one to the front matter above before sharing.")
    dataset = data.get("dataset", "?")
    return (f"Model family `{facts.model}` (task: {facts.task}), trained with "
            f"[gankit](https://pypi.org/project/gankit/) {__version__} for {facts.step:,} steps on `{dataset}` "
            f"({size}samples of {shape}{classes}). This folder holds {weights} at step {facts.step:,} "
            f"(`model.safetensors`) and the resolved config that rebuilds the model (`config.json`).{licensed}\n")


def _usage(facts: CardFacts) -> str:
    lines = ["pip install gankit", *facts.usage]
    return ("## Use it\n\n```bash\n" + "\n".join(lines) + "\n```\n\nor from Python: `gankit.load(...)` with this "
            "folder (or `hf://` and the repository's id) gives the same model; `gankit export --format onnx` "
            "takes it out of PyTorch.\n")


def _evaluations(facts: CardFacts) -> str:
    found = evaluations(facts.run_dir, facts.step) if facts.run_dir is not None else []
    if not found:
        return "## Evaluation\n\nThis run has no evaluation on file: score it with `gankit eval`.\n"
    out = ["## Evaluation\n"]
    for heading, result in found:
        out.append(f"### {heading}\n\n{_table(result)}\n")
        prov = result.get("provenance")
        if prov:
            out.append("<details><summary>How these were computed</summary>\n\n```json\n"
                       + json.dumps(prov, indent=2, sort_keys=True) + "\n```\n\n</details>\n")
        out += [f"> warning: {w}\n" for w in result.get("warnings", []) if isinstance(w, str)]
    return "\n".join(out)


def _table(result: dict) -> str:
    rows = ["| metric | value |", "| --- | --- |"]
    for key, value in result.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or key == "step" or key.endswith("_std"):
            continue
        std = result.get(f"{key}_std")
        text = f"{value:.4g}" + (f" ± {std:.2g}" if isinstance(std, (int, float)) else "")
        rows.append(f"| {key} | {text} |")
    return "\n".join(rows)


def evaluations(run_dir: Path, step: int) -> list[tuple[str, dict]]:
    """(heading, result) of the run's evaluations that describe these weights: every one of ``step`` (training's
    and ``gankit eval``'s), else the best and the last evaluation of the run, said to be of other steps."""
    files = []
    for path in sorted((run_dir / "eval").glob("step_*.json")):
        match = _EVAL_FILE.fullmatch(path.name)
        # -raw: gankit eval --no-ema scored the trained weights, which an export of an EMA run does not ship
        result = _read_json(path) if match and not match.group(4) else None
        if result is not None:
            files.append((int(match.group(1)), path.name, result))
    here = [(_heading(s, name), r) for s, name, r in files if s == step]
    if here or not files:
        return here
    best_step = (read_run(run_dir).best or {}).get("step")
    chosen = [("the best", f) for f in files if f[0] == best_step][:1]
    if not chosen or chosen[0][1] is not files[-1]:
        chosen.append(("the last", files[-1]))
    return [(f"{_heading(s, name)}: {which} evaluation of the run, not of these weights (step {step:,})", r)
            for which, (s, name, r) in chosen]


def _heading(step: int, name: str) -> str:
    """``Step 1,000, by gankit eval (eval/step_0001000-n10000.json)``; training's own files have no ``-n``."""
    by = "by gankit eval" if "-n" in name else "during training"
    return f"Step {step:,}, {by} (eval/{name})"


def _training(facts: CardFacts) -> str:
    run = read_run(facts.run_dir) if facts.run_dir is not None else None
    commands = [r["command"] for r in (run.sessions if run else []) if r.get("event") == "start"
                and isinstance(r.get("command"), str)]
    text = ["## Training\n"]
    if any(c.strip() != "gankit" for c in commands):  # `gankit` alone: a session started from Python
        text.append("Trained by" + (" (then resumed)" if len(commands) > 1 else "") + ":\n\n```bash\n"
                    + "\n".join(commands) + "\n```\n")
    elif commands:
        text.append("Trained from Python (`gankit.train`), with the config below.\n")
    text.append("The resolved config, as the checkpoint recorded it (also in `config.json`):\n\n```yaml\n"
                + yaml.safe_dump(facts.config, sort_keys=False) + "```\n")
    return "\n".join(text)


def _read_json(path: Path) -> dict | None:
    try:
        if path.stat().st_size > MAX_EVAL_BYTES:
            return None
        value = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
