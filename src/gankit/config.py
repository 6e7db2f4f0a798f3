"""Typed, nested dataclass configs.

A YAML file is a short diff over the defaults below; ``--set section.key=value`` overrides on top of it. An unknown
key, a wrong type or an out-of-range value raises :class:`ConfigError` naming the key and the valid choices. The
``model`` and ``recipe`` sections are polymorphic: their ``name`` picks a registered component, and the rest of the
section is checked against that component's own config dataclass.

Cross-field checks live in ``__post_init__``; the resolved config round-trips through :func:`to_dict` /
:func:`from_dict`, so a run can be rebuilt from its saved ``config.yaml`` alone.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from .errors import ConfigError
from .registry import MODELS, RECIPES

# ----------------------------------------------------------------------------------------------------------------
# The sections


@dataclass
class DataConfig:
    """Where the training data comes from and how it is shaped."""

    # a registered dataset: mnist, digits, folder, arrays, toy2d, stacked_mnist, patches, diabetes; for translation
    # models paired, unpaired, mnist_edges, mnist_colour
    name: str = "digits"
    root: str | None = None  # folder (mnist, folder) or file (arrays); mnist also reads $GANKIT_DATA
    size: int | None = None  # side length to resize to; None keeps the source's own size
    pad: int = 0  # black (-1) border of this many pixels added on every side after resizing (MNIST 28 + 2 x 2 = 32)
    channels: int | None = None  # 1 (grey) or 3 (RGB) for image folders/arrays; None keeps the source's
    mixture: str = "ring"  # toy2d only: which 2-D mixture
    num_samples: int | None = None  # generated sources: items drawn per split (toy2d 100,000; stacked_mnist 25,600)
    download: bool = False  # mnist only: fetch missing files from the usual mirrors (needs network)
    domain: str = ""  # translation data: "A" or "B" keeps that domain's images (and labels) as a plain dataset

    def __post_init__(self) -> None:
        _check(self.size is None or self.size >= 4, "data.size", self.size, "an integer >= 4, or null")
        _check(self.pad >= 0, "data.pad", self.pad, "a number of pixels >= 0")
        _check(self.channels in (None, 1, 3), "data.channels", self.channels, "1, 3 or null")
        _check(self.num_samples is None or self.num_samples >= 1, "data.num_samples", self.num_samples,
               "a positive integer, or null for the source's default")
        _check(self.domain in ("", "A", "B"), "data.domain", self.domain, "A, B, or empty (both, stacked)")


@dataclass
class OptimConfig:
    """Adam for both players; separate learning rates allow the two time-scale update rule; an optional schedule."""

    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    eps: float = 1e-8
    schedule: Literal["constant", "linear"] = "constant"  # linear: hold, then fall linearly to 0 at train.steps
    decay_start: float = 0.5  # linear: the share of train.steps after which the rate starts to fall

    def __post_init__(self) -> None:
        _check(0 <= self.decay_start < 1, "optim.decay_start", self.decay_start, "a share of train.steps in [0, 1)")
        for key in ("lr_g", "lr_d"):
            _check(getattr(self, key) > 0, f"optim.{key}", getattr(self, key), "a positive number")
        for key in ("beta1", "beta2"):
            _check(0 <= getattr(self, key) < 1, f"optim.{key}", getattr(self, key), "a number in [0, 1)")
        _check(self.eps > 0, "optim.eps", self.eps, "a positive number")


MAX_EVAL_SAMPLES = 50_000  # train.eval_samples: FID's customary count (Heusel et al. 2017); samples are held at once


@dataclass
class TrainConfig:
    """When things happen: the trainer's schedule."""

    steps: int = 3000  # generator steps (each with recipe.d_steps discriminator steps)
    batch_size: int = 64
    seed: int = 0
    max_minutes: float | None = None  # stop cleanly (checkpoint, samples) after this wall-clock budget
    sample_every: int = 500
    checkpoint_every: int = 1000
    log_every: int = 50  # steps between metrics.jsonl rows (and the only host syncs on the hot path)
    keep_checkpoints: int = 3  # most recent step checkpoints kept on disk
    grid_rows: int = 5  # sample grids are grid_rows x grid_rows, from fixed noise
    device: str = "cpu"  # cpu, cuda, cuda:N, or auto
    progress: bool = True  # show a progress bar
    eval_every: int = 1000  # steps between evaluations (FID, KID, ... logged; best checkpoint kept); 0 = off
    eval_samples: int = 2000  # samples per evaluation during training (gankit eval defaults to 10,000)
    evaluator: str | None = None  # feature network: a built-in name or .safetensors file; None = the dataset's own
    ema: float = 0.0  # decay of an EMA copy of the generator used for samples and evaluation; 0 = off (0.999)
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: autocast of the training step, fp32 weights and optimizer
    sync_bn: bool = False  # under torchrun: batch-norm statistics over the global batch, not each rank's share
    channels_last: bool = False  # NHWC memory layout for convolutional models (faster convolutions with bf16)
    compile: bool = False  # torch.compile each network's layers; falls back to eager where compilation fails

    def __post_init__(self) -> None:
        for key in ("steps", "batch_size", "sample_every", "checkpoint_every", "log_every", "grid_rows"):
            _check(getattr(self, key) >= 1, f"train.{key}", getattr(self, key), "a positive integer")
        _check(self.eval_every >= 0, "train.eval_every", self.eval_every, "an integer >= 0 (0 turns it off)")
        _check(0 <= self.ema < 1, "train.ema", self.ema, "a decay in [0, 1), 0 for none")
        _check(1 <= self.eval_samples <= MAX_EVAL_SAMPLES, "train.eval_samples", self.eval_samples,
               f"an integer in 1..{MAX_EVAL_SAMPLES} (all are held in memory at once; 50,000 is FID's usual count)")
        _check(self.keep_checkpoints >= 1, "train.keep_checkpoints", self.keep_checkpoints, "an integer >= 1")
        _check(self.max_minutes is None or self.max_minutes > 0, "train.max_minutes", self.max_minutes,
               "a positive number of minutes, or null")


@dataclass
class HealthConfig:
    """What the trainer does about a run going wrong: non-finite values and signs of mode collapse."""

    on_nonfinite: Literal["rollback", "stop"] = "rollback"  # a NaN/Inf loss or weight: roll back and retry, or stop
    remedy: Literal["lower_lr", "skip"] = "lower_lr"  # on retry: scale learning rates, or skip the bad batches
    retries: int = 3  # rollbacks allowed before the run stops with a report
    lr_factor: float = 0.5  # lower_lr multiplies every learning rate by this
    collapse_warnings: bool = True  # warn when D's accuracy is pinned at 100% or sample diversity collapses
    d_acc_threshold: float = 0.99  # D accuracy at or above this ...
    d_acc_patience: int = 10  # ... for this many consecutive log rows gives a warning
    diversity_ratio: float = 0.2  # preview-sample diversity below this fraction of the data's gives a warning

    def __post_init__(self) -> None:
        _check(self.retries >= 0, "health.retries", self.retries, "an integer >= 0")
        _check(0 < self.lr_factor < 1, "health.lr_factor", self.lr_factor, "a number in (0, 1)")
        _check(0 < self.d_acc_threshold <= 1, "health.d_acc_threshold", self.d_acc_threshold, "a number in (0, 1]")
        _check(self.d_acc_patience >= 1, "health.d_acc_patience", self.d_acc_patience, "a positive integer")
        _check(0 <= self.diversity_ratio < 1, "health.diversity_ratio", self.diversity_ratio, "a number in [0, 1)")


@dataclass
class Config:
    """The whole run. ``model`` and ``recipe`` hold the registered component's own config dataclass."""

    data: DataConfig = field(default_factory=DataConfig)
    model: Any = None
    recipe: Any = None
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    health: HealthConfig = field(default_factory=HealthConfig)

    def __post_init__(self) -> None:
        if self.model is None:
            self.model = _section_class("model", DEFAULT_MODEL)()
        if self.recipe is None:
            self.recipe = _section_class("recipe", DEFAULT_RECIPE)()


DEFAULT_MODEL = "mlp_gan"
DEFAULT_RECIPE = "adversarial"
_POLYMORPHIC = {"model": DEFAULT_MODEL, "recipe": DEFAULT_RECIPE}


def _default_name(section: str, built: dict) -> str:
    """The component a section gets when it names none: a model family may name its own recipe (an autoencoder
    trains with ``autoencoding``)."""
    if section == "recipe" and "model" in built:
        return MODELS.meta(built["model"].name).get("recipe", DEFAULT_RECIPE)
    return _POLYMORPHIC[section]


def _check(ok: bool, key: str, value: Any, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r} is out of range: expected {expected}")


def _section_class(section: str, name: str) -> type:
    """The config dataclass registered with the model or recipe called ``name``."""
    registry = MODELS if section == "model" else RECIPES
    return registry.meta(name)["config"]


# ----------------------------------------------------------------------------------------------------------------
# Building a config from nested dicts (YAML) with strict checking


def from_dict(raw: dict | None) -> Config:
    """Build a :class:`Config` from a nested dict, checking every key and type."""
    raw = dict(raw or {})
    _reject_unknown(raw, [f.name for f in dataclasses.fields(Config)], "")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(Config):
        section = raw.get(f.name) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"config section {f.name!r} must be a mapping, got {type(section).__name__}")
        section = _renamed(section, f.name)
        if f.name in _POLYMORPHIC:
            name = section.get("name", _default_name(f.name, kwargs))
            if not isinstance(name, str):
                raise ConfigError(f"{f.name}.name must be a string, got {name!r}")
            cls = _section_class(f.name, name)
        else:
            cls = typing.get_type_hints(Config)[f.name]
        kwargs[f.name] = _build(cls, section, f.name)
    return Config(**kwargs)


# Keys renamed since a release, so that older configs and checkpoints still load: old -> new
RENAMED = {"data.toy_samples": "data.num_samples"}


def _renamed(section: dict, prefix: str) -> dict:
    """``section`` with renamed keys given their current names (the value is kept unless both are set)."""
    out = dict(section)
    for old, new in RENAMED.items():
        old_section, old_key = old.split(".")
        if old_section == prefix and old_key in out:
            value = out.pop(old_key)
            out.setdefault(new.split(".")[1], value)
    return out


def _build(cls: type, values: dict, prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    _reject_unknown(values, names, prefix)
    kwargs = {k: _coerce(v, hints[k], f"{prefix}.{k}") for k, v in values.items()}
    return cls(**kwargs)


def _reject_unknown(values: dict, valid: list[str], prefix: str) -> None:
    for key in values:
        if key not in valid:
            where = f"{prefix}.{key}" if prefix else str(key)
            raise ConfigError(f"unknown config key {where!r}; valid keys{' in ' + prefix if prefix else ''}: "
                              f"{', '.join(valid)}")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert where lossless (int -> float, '2e-4' -> float)."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}={value!r} has the wrong type: expected "
                          f"{_type_name(tp)}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{key}={value!r} is not valid; valid choices: {', '.join(map(str, choices))}")
        return value
    if origin in (list, tuple):
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}={value!r} has the wrong type: expected a list")
        items = [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    return _coerce_scalar(value, tp, key)


def _coerce_scalar(value: Any, tp: Any, key: str) -> Any:
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:  # YAML 1.1 reads '2e-4' as a string
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # e.g. --set data.root=2024, which YAML reads as a number
    raise ConfigError(f"{key}={value!r} has the wrong type: expected {_type_name(tp)}")


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(t) for t in typing.get_args(tp))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


# ----------------------------------------------------------------------------------------------------------------
# YAML files, --set overrides, and saving


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Defaults, then the YAML file at ``path`` (if any), then ``section.key=value`` overrides."""
    raw: dict = {}
    if path is not None:
        raw = read_yaml(path)
    for item in overrides:
        apply_override(raw, item)
    return from_dict(raw)


def read_yaml(path: str | Path) -> dict:
    """Read a YAML mapping; a missing file or a parse error is a one-line :class:`ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"cannot parse {path}{where}: {getattr(exc, 'problem', exc)}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of sections (data, model, recipe, optim, train)")
    return raw


def apply_override(raw: dict, item: str) -> None:
    """Apply one ``section.key=value`` override to the nested dict ``raw`` (value parsed as YAML)."""
    if "=" not in item:
        raise ConfigError(f"--set expects section.key=value, got {item!r}")
    dotted, text = item.split("=", 1)
    parts = dotted.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"--set expects section.key=value (e.g. train.steps=100), got {item!r}")
    section, key = parts
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    node = raw.setdefault(section, {})
    if not isinstance(node, dict):
        raise ConfigError(f"config section {section!r} must be a mapping")
    node[key] = value


def to_dict(cfg: Config) -> dict:
    """The resolved config as plain nested dicts (with each polymorphic section's ``name`` first)."""
    out = {}
    for f in dataclasses.fields(cfg):
        out[f.name] = dataclasses.asdict(getattr(cfg, f.name))
    return out


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as YAML."""
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
