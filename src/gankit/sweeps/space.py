"""The search space of a sweep: a YAML file that names config keys with a range or a list of choices.

::

    optim.lr_g: {low: 1.0e-4, high: 1.0e-2, log: true}   # a float, sampled on a log scale
    model.pack: {choices: [1, 2, 4]}                       # one of these values (any YAML value, lists too)
    train.batch_size: {low: 32, high: 256, step: 32}       # an integer, in steps of 32

The keys may also be nested by section (``optim: {lr_g: {...}}``). Everything is checked before a trial starts,
against the config the sweep trains: an unknown key is one line naming the nearest valid keys, a range that is
empty or a log scale that reaches 0 is refused, and every end of every range and every choice is applied to the
config and built, so that a value the config itself refuses (``optim.lr_g`` above 1, a loss that does not exist) is
said now, in the config's own words, rather than in a trial's log an hour later.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..config import Config, load_config, parse_yaml, shown, to_dict
from ..errors import ConfigError, GankitError

MAX_SPACE_BYTES = 1 << 20  # a space names a handful of keys
SPEC_KEYS = ("low", "high", "log", "step", "choices")
# Keys the sweep sets itself: each seed of a setting trains with the config's train.seed + 0, 1, ... (--seeds), and
# --trial-minutes is passed to every run as train.max_minutes.
SET_BY_THE_SWEEP = {"train.seed": "each setting's seeds are the config's train.seed + 0..S-1 (--seeds S)",
                    "train.max_minutes": "the per-trial budget is --trial-minutes"}


@dataclass(frozen=True)
class Param:
    """One searched config key: a float or integer range (``log``: sampled on a log scale; ``step``: a grid), or a
    list of ``choices`` (the values as the config takes them)."""

    key: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()
    integer: bool = False

    @property
    def encoded(self) -> list:
        """The choices as Optuna stores them: plain values as they are, lists and mappings as their YAML text."""
        return [c if _plain(c) else override_text(c) for c in self.choices]

    def suggest(self, trial) -> Any:
        """The value of this key for an Optuna trial (a fixed one when the trial was enqueued or is retried)."""
        if self.choices:
            picked = trial.suggest_categorical(self.key, self.encoded)
            return self.choices[self.encoded.index(picked)]
        if self.integer:
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.key, float(self.low), float(self.high), step=self.step, log=self.log)

    def record(self) -> dict:
        """The parameter as JSON, to compare the spaces of processes that share one study."""
        if self.choices:
            return {"choices": self.encoded, "values": list(self.choices)}
        return {"low": self.low, "high": self.high, "log": self.log, "step": self.step, "integer": self.integer}


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def decoded(record: dict, stored: Any) -> Any:
    """The config's value of a parameter for what Optuna stored, given the parameter's :meth:`Param.record`."""
    if "values" in record and stored in record["choices"]:
        return record["values"][record["choices"].index(stored)]
    return stored


def override_text(value: Any) -> str:
    """``value`` as the text of a ``--set key=TEXT`` override (YAML in one line: ``[64, 64]``, ``0.001``)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=math.inf, allow_unicode=True).strip()
    return text[: -len("...")].strip() if text.endswith("\n...") or text == "..." else text


def overrides_of(params: dict[str, Any]) -> list[str]:
    """``--set`` items that apply ``params`` (config key -> value) to a config."""
    return [f"{key}={override_text(value)}" for key, value in params.items()]


def read_space(path: str | Path, config: str | Path | None, overrides: list[str] | tuple[str, ...],
               base: Config) -> dict[str, Param]:
    """The parameters of the space file at ``path``, each checked against ``base`` (the config the sweep trains:
    ``config`` with ``overrides``); any problem is one :class:`GankitError` line naming the file and the key."""
    raw = _flat(plain(_read(Path(path))), Path(path).name)
    valid = [f"{section}.{key}" for section, values in to_dict(base).items() for key in values]
    space = {}
    for key, spec in raw.items():
        where = f"space file {Path(path).name}: {key}"
        _known(key, valid, where)
        if key in SET_BY_THE_SWEEP:
            raise GankitError(f"{where} is set by the sweep itself ({SET_BY_THE_SWEEP[key]}): leave it out")
        param = _param(key, spec, _current(base, key), where)
        for value in _ends(param):
            _applies(config, overrides, key, value, where)
        space[key] = param
    if not space:
        raise GankitError(f"space file {Path(path).name} names no config key: write e.g. "
                          "optim.lr_g: {low: 1.0e-4, high: 1.0e-2, log: true}")
    return space


def plain(value: Any) -> Any:
    """``value`` as read from YAML, with plain Python types (the config's reader gives numbers that keep their
    text, which neither Optuna nor a YAML writer takes)."""
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def _read(path: Path) -> dict:
    """The space file's YAML mapping (the config's strict YAML 1.2 reader); a problem is one line."""
    if not path.is_file():
        raise GankitError(f"space file not found: {path}" if not path.exists() else f"space file {path} is a folder")
    data = path.read_bytes()
    if len(data) > MAX_SPACE_BYTES:
        raise GankitError(f"space file {path} is larger than 1 MiB; a space names a handful of config keys")
    try:
        raw = parse_yaml(data.decode("utf-8"), f"space file {path}")
    except UnicodeDecodeError:
        raise GankitError(f"space file {path} is not UTF-8 text") from None
    if not isinstance(raw, dict):
        raise GankitError(f"space file {path} must hold a mapping of config keys (optim.lr_g: {{low: ..., "
                          f"high: ...}}), got {type(raw).__name__}")
    return raw


def _flat(raw: dict, name: str) -> dict[str, Any]:
    """``{'optim.lr_g': spec}`` from the flat form or from sections (``optim: {lr_g: spec}``)."""
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        key = str(key)
        nested = "." not in key and isinstance(value, dict) and not set(value) & set(SPEC_KEYS)
        items = {f"{key}.{k}": v for k, v in value.items()} if nested else {key: value}
        for full, spec in items.items():
            if full in flat:
                raise GankitError(f"space file {name}: {full} is given twice")
            flat[full] = spec
    return flat


def _known(key: str, valid: list[str], where: str) -> None:
    """Refuse a key the config does not have, naming the nearest valid ones."""
    if key in valid:
        return
    near = difflib.get_close_matches(key, valid, n=3, cutoff=0.6)
    section = key.split(".")[0]
    if not near:
        near = [k for k in valid if k.split(".")[0] == section] or sorted({k.split(".")[0] for k in valid})
    raise GankitError(f"{where}: unknown config key; nearest valid keys: {', '.join(near)}")


def _current(base: Config, key: str) -> Any:
    section, name = key.split(".", 1)
    return to_dict(base)[section][name]


def _param(key: str, spec: Any, current: Any, where: str) -> Param:
    """The :class:`Param` a spec describes, its own consistency checked (the config's checks come after)."""
    if isinstance(spec, list):
        spec = {"choices": spec}
    if not isinstance(spec, dict):
        raise GankitError(f"{where}: expected {{low: ..., high: ...}} or {{choices: [...]}}, got {shown(spec)}")
    unknown = [str(k) for k in spec if k not in SPEC_KEYS]
    if unknown:
        raise GankitError(f"{where}: unknown field {unknown[0]!r}; valid fields: {', '.join(SPEC_KEYS)}")
    if "choices" in spec:
        return _categorical(key, spec, where)
    return _range(key, spec, current, where)


def _categorical(key: str, spec: dict, where: str) -> Param:
    if set(spec) != {"choices"}:
        raise GankitError(f"{where}: give either choices or low/high, not both")
    choices = spec["choices"]
    if not isinstance(choices, list) or not choices:
        raise GankitError(f"{where}: choices must be a non-empty list, got {shown(choices)}")
    param = Param(key, choices=tuple(choices))
    if len(set(map(repr, param.encoded))) != len(choices):
        raise GankitError(f"{where}: choices {shown(choices)} name a value twice")
    return param


def _range(key: str, spec: dict, current: Any, where: str) -> Param:
    missing = [end for end in ("low", "high") if end not in spec]
    if missing:
        raise GankitError(f"{where}: a range needs low and high ({' and '.join(missing)} missing), or give choices")
    low, high, log, step = spec["low"], spec["high"], spec.get("log", False), spec.get("step")
    for name, value in (("low", low), ("high", high), ("step", step)):
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if (value is not None or name != "step") and not (number and math.isfinite(value)):
            raise GankitError(f"{where}: {name}={shown(value)} is not a finite number")
    if not isinstance(log, bool):
        raise GankitError(f"{where}: log={shown(log)} must be true or false")
    if isinstance(current, bool) or not (current is None or isinstance(current, (int, float))):
        raise GankitError(f"{where} is not a number in the config ({shown(current)}): give choices instead")
    if low >= high:
        raise GankitError(f"{where}: low={low:g} must be below high={high:g} (for one value, set it with --set)")
    if log and low <= 0:
        raise GankitError(f"{where}: a log scale needs low > 0, got low={low:g}")
    if step is not None and step <= 0:
        raise GankitError(f"{where}: step={step:g} must be positive")
    if step is not None and log:
        raise GankitError(f"{where}: give step or log, not both (Optuna samples a log scale without steps)")
    integer = all(isinstance(v, int) for v in (low, high)) and not isinstance(current, float) \
        and (step is None or isinstance(step, int))
    if integer and step is not None and (high - low) % step:
        raise GankitError(f"{where}: high - low = {high - low} is not a multiple of step={step}")
    return Param(key, low=low, high=high, log=log, step=step, integer=integer)


def _ends(param: Param) -> list:
    """The values that bound the space of ``param``: its choices, or both ends of its range."""
    if param.choices:
        return list(param.choices)
    kind = int if param.integer else float
    return [kind(param.low), kind(param.high)]


def _applies(config, overrides, key: str, value: Any, where: str) -> None:
    """Build the config with ``key`` set to ``value``: the config's own refusal, as one line."""
    try:
        load_config(config, [*overrides, f"{key}={override_text(value)}"])
    except ConfigError as exc:
        raise GankitError(f"{where}: the config refuses {shown(value)}: {exc}") from None
