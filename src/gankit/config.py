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
import math
import re
import reprlib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from yaml.nodes import ScalarNode

from .errors import ConfigError
from .registry import MODELS, RECIPES

# ----------------------------------------------------------------------------------------------------------------
# Bounds: every number in a config is finite and lies in a range. An upper bound keeps one value from asking for
# more than a machine has (memory, disk, years) while leaving room far above what the papers use, so a value past
# it is a typo (an extra zero, 1e9 for 1e-9) and is refused before anything is built or written. Limits that depend
# on the data (the bytes a dataset takes at data.size, a U-Net's depth for its images) are checked where the data is
# known, in gankit.data and the model builders.

MAX_STEPS = 10**9  # step counts and periods: a billion steps at 1,000 steps/s is 11 days of nothing but steps
MIN_SIDE = 4  # the smallest image side a convolutional model handles
MAX_SIDE = 4096  # image sides: StyleGAN's largest is 1024; one 4096 x 4096 RGB float32 image is 192 MiB
MAX_PAD = (MAX_SIDE - MIN_SIDE) // 2  # data.pad: even the smallest image stays within MAX_SIDE once padded
MAX_HALVINGS = 12  # log2(MAX_SIDE): no network halves an image more often (U-Net depth, PatchGAN layers)
MAX_SAMPLES = 10**7  # items a generated source draws per split: toy2d's 1e7 points are 160 MB with their labels
MAX_BATCH = 65_536  # BigGAN's largest batch is 2,048; 2-D point sets take bigger ones
MAX_GRID_ROWS = 32  # a 32 x 32 sample grid is 1,024 samples, more than a screen shows apart
MAX_SEED = 2**63 - 1  # generated sources seed torch with 2 * seed + 1, which must fit in 64 bits
MAX_MINUTES = 525_600.0  # a year
MAX_LR = 1.0  # Adam moves each weight by about lr per step: GANs use 1e-5..1e-3, and at 1 nothing trains
MAX_LATENT = 4096  # latent, code and style sizes: the papers use 2..512
MAX_UNITS = 8192  # MLP widths: an 8192 x 8192 layer is 256 MiB of float32, 768 MiB with Adam's two moments
MAX_CHANNELS = 2048  # conv channels: a 4x4 2048 -> 2048 kernel is 256 MiB (BigGAN's widest layer has 1,536)
MAX_LAYERS = 32  # hidden layers, blocks or mapping layers of one network (the papers use up to 9)
MAX_PACK = 16  # PacGAN packs 2..4 samples; D's input grows with each
MAX_CLUSTERS = 1000  # data.clusters: the self-conditioned GAN paper uses up to 100; each is a class embedding
MAX_WEIGHT = 1e4  # loss weights (lambda, gamma, beta, ...): the papers use 0.01..100


def check_range(key: str, value: Any, lo: float, hi: float, *, open_lo: bool = False, open_hi: bool = False,
                none_ok: bool = False, note: str = "") -> None:
    """Refuse, with one line naming ``key`` and the range, anything but a finite number in [lo, hi] (an end left
    out where ``open_lo``/``open_hi``), or None where ``none_ok``. Integer bounds describe an integer setting."""
    if value is None and none_ok:
        return
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if number and (isinstance(value, int) or math.isfinite(value)):
        if (lo < value if open_lo else lo <= value) and (value < hi if open_hi else value <= hi):
            return
    expected = _range_text(lo, hi, open_lo, open_hi) + (", or null" if none_ok else "")
    raise ConfigError(f"{key}={shown(value)} is out of range: expected {expected}{f' ({note})' if note else ''}")


def check_widths(key: str, values: Any, hi: int, *, empty_ok: bool = False, max_len: int = MAX_LAYERS) -> None:
    """Refuse a list of layer widths unless it holds up to ``max_len`` integers in 1..hi (at least one unless
    ``empty_ok``)."""
    ok = isinstance(values, list) and (empty_ok or values) and len(values) <= max_len
    if ok and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= hi for v in values):
        return
    count = f"at most {max_len}" if empty_ok else f"1 to {max_len}"
    raise ConfigError(f"{key}={shown(values)} is out of range: expected a list of {count} widths, each "
                      f"{_range_text(1, hi, False, False)}")


def _range_text(lo: float, hi: float, open_lo: bool, open_hi: bool) -> str:
    if isinstance(lo, int) and isinstance(hi, int):
        return f"an integer >= {lo:,} and <= {hi:,}"
    top = f"{'<' if open_hi else '<='} {hi:g}"
    if lo == 0 and open_lo:
        return f"a positive number {top}"
    return f"a number {'>' if open_lo else '>='} {lo:g} and {top}"


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60


def shown(value: Any) -> str:
    """``value`` for a one-line message: cut short, and never failing (Python gives no repr of a 5,000-digit
    integer)."""
    try:
        return _SHORT.repr(value)
    except ValueError:
        if isinstance(value, int):
            return f"<an integer of about {int(value.bit_length() * math.log10(2)) + 1:,} digits>"
        return f"<a {type(value).__name__}>"


# ----------------------------------------------------------------------------------------------------------------
# The sections


@dataclass
class DataConfig:
    """Where the training data comes from and how it is shaped."""

    # a registered dataset: mnist, digits, folder, arrays, toy2d, stacked_mnist, patches, diabetes; for translation
    # models paired, unpaired, mnist_edges, mnist_colourize, mnist_colour
    name: str = "digits"
    root: str | None = None  # folder (mnist, folder) or file (arrays); mnist also reads $GANKIT_DATA
    size: int | None = None  # side length to resize to; None keeps the source's own size
    pad: int = 0  # black (-1) border of this many pixels added on every side after resizing (MNIST 28 + 2 x 2 = 32)
    channels: int | None = None  # 1 (grey) or 3 (RGB) for image folders/arrays; None keeps the source's
    mixture: str = "ring"  # toy2d only: which 2-D mixture
    num_samples: int | None = None  # generated sources: items drawn per split (toy2d 100,000; stacked_mnist 25,600)
    download: bool = False  # mnist only: fetch missing files from the usual mirrors (needs network)
    domain: str = ""  # translation data: "A" or "B" keeps that domain's images (and labels) as a plain dataset
    # labels from the data alone: k-means clusters of the training items (principal components of the pixels)
    # replace any labels, and generators draw them by the clusters' sizes (self-conditioned GAN); 0 = off
    clusters: int = 0

    def __post_init__(self) -> None:
        check_range("data.size", self.size, MIN_SIDE, MAX_SIDE, none_ok=True)
        check_range("data.pad", self.pad, 0, MAX_PAD, note="pixels of border on each side")
        _check(self.channels in (None, 1, 3), "data.channels", self.channels, "1, 3 or null")
        check_range("data.num_samples", self.num_samples, 1, MAX_SAMPLES, none_ok=True, note="the source's default")
        _check(self.domain in ("", "A", "B"), "data.domain", self.domain, "A, B, or empty (both, stacked)")
        if self.clusters != 0:
            check_range("data.clusters", self.clusters, 2, MAX_CLUSTERS, note="0 keeps the data's own labels")


@dataclass
class OptimConfig:
    """Adam for both players; separate learning rates allow the two time-scale update rule; an optional schedule."""

    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    eps: float = 1e-8
    # linear: hold, then fall in a straight line to final_factor x the rate at train.steps; cosine: fall along a
    # half cosine instead (R3GAN); both start falling after decay_start x train.steps
    schedule: Literal["constant", "linear", "cosine"] = "constant"
    decay_start: float = 0.5  # the share of train.steps after which the rate starts to fall
    final_factor: float = 0.0  # the rate at the last step, as a share of the starting rate

    def __post_init__(self) -> None:
        check_range("optim.decay_start", self.decay_start, 0.0, 1.0, open_hi=True, note="a share of train.steps")
        check_range("optim.final_factor", self.final_factor, 0.0, 1.0, note="a share of the starting rate")
        for key in ("lr_g", "lr_d"):
            check_range(f"optim.{key}", getattr(self, key), 0.0, MAX_LR, open_lo=True)
        for key in ("beta1", "beta2"):
            check_range(f"optim.{key}", getattr(self, key), 0.0, 1.0, open_hi=True)
        # Adam divides by sqrt(v) + eps: 1e-8 usually, 1 already drowns gradients of images in [-1, 1]
        check_range("optim.eps", self.eps, 0.0, 1.0, open_lo=True)


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
    device: str = "auto"  # auto (CUDA when every process gets a GPU, else CPU), cpu, cuda, cuda:N
    progress: bool = True  # show a progress bar
    eval_every: int = 1000  # steps between evaluations (FID, KID, ... logged; best checkpoint kept); 0 = off
    eval_samples: int = 2000  # samples per evaluation during training (gankit eval: 10,000, Stacked MNIST 26,000)
    evaluator: str | None = None  # feature network: a built-in name or .safetensors file; None = the dataset's own
    ema: float = 0.0  # decay of an EMA copy of the generator used for samples and evaluation; 0 = off (0.999)
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: autocast of the training step, fp32 weights and optimizer
    sync_bn: bool = False  # under torchrun: batch-norm statistics over the global batch, not each rank's share
    channels_last: bool = False  # NHWC memory layout for convolutional models (faster convolutions with bf16)
    compile: bool = False  # torch.compile each network's layers; falls back to eager where compilation fails
    tensorboard: bool = True  # TensorBoard event files in RUN/tensorboard when `tensorboard` is installed; false = off

    def __post_init__(self) -> None:
        for key in ("steps", "sample_every", "checkpoint_every", "log_every"):
            check_range(f"train.{key}", getattr(self, key), 1, MAX_STEPS)
        check_range("train.batch_size", self.batch_size, 1, MAX_BATCH)
        check_range("train.grid_rows", self.grid_rows, 1, MAX_GRID_ROWS)
        check_range("train.seed", self.seed, 0, MAX_SEED)
        check_range("train.eval_every", self.eval_every, 0, MAX_STEPS, note="0 turns it off")
        check_range("train.ema", self.ema, 0.0, 1.0, open_hi=True, note="a decay, 0 for none")
        _check(1 <= self.eval_samples <= MAX_EVAL_SAMPLES, "train.eval_samples", self.eval_samples,
               f"an integer in 1..{MAX_EVAL_SAMPLES} (all are held in memory at once; 50,000 is FID's usual count)")
        check_range("train.keep_checkpoints", self.keep_checkpoints, 1, 10_000)
        check_range("train.max_minutes", self.max_minutes, 0.0, MAX_MINUTES, open_lo=True, none_ok=True)


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
    # the collapse warnings arm after this many steps, or after 10% of train.steps when that is sooner: an
    # untrained generator's samples are alike and its D easy to please, which is no collapse
    warmup_steps: int = 250

    def __post_init__(self) -> None:
        check_range("health.retries", self.retries, 0, 1000)  # each retry reloads a checkpoint
        check_range("health.lr_factor", self.lr_factor, 0.0, 1.0, open_lo=True, open_hi=True)
        check_range("health.d_acc_threshold", self.d_acc_threshold, 0.0, 1.0, open_lo=True)
        check_range("health.d_acc_patience", self.d_acc_patience, 1, MAX_STEPS)
        check_range("health.diversity_ratio", self.diversity_ratio, 0.0, 1.0, open_hi=True)
        check_range("health.warmup_steps", self.warmup_steps, 0, MAX_STEPS)


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
        raise ConfigError(f"{key}={shown(value)} is out of range: expected {expected}")


def _section_class(section: str, name: str) -> type:
    """The config dataclass registered with the model or recipe called ``name``."""
    registry = MODELS if section == "model" else RECIPES
    return registry.meta(name)["config"]


# ----------------------------------------------------------------------------------------------------------------
# Building a config from nested dicts (YAML) with strict checking


def from_dict(raw: dict | None) -> Config:
    """Build a :class:`Config` from a nested dict, checking every key and type."""
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"a config must be a mapping of sections (data, model, recipe, optim, train, health), "
                          f"got {type(raw).__name__}")
    raw = dict(raw or {})
    _reject_unknown(raw, [f.name for f in dataclasses.fields(Config)], "")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(Config):
        section = raw.get(f.name)
        section = {} if section is None else section  # `train:` with nothing under it
        if not isinstance(section, dict):
            raise ConfigError(f"config section {f.name!r} must be a mapping, got {type(section).__name__}")
        section = _renamed(section, f.name)
        if f.name in _POLYMORPHIC:
            name = section.get("name", _default_name(f.name, kwargs))
            if not isinstance(name, str):
                raise ConfigError(f"{f.name}.name must be a string, got {shown(name)}")
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
            name = key if isinstance(key, str) and len(key) <= 60 else shown(key)  # a key of 1 MB stays short
            where = f"{prefix}.{name}" if prefix else name
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
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}={shown(value)} has the wrong type: expected "
                          f"{_type_name(tp)}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{key}={shown(value)} is not valid; valid choices: {', '.join(map(str, choices))}")
        return value
    if origin in (list, tuple):
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}={shown(value)} has the wrong type: expected a list")
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
            return int(value)
    elif tp is float:
        try:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            if isinstance(value, str):  # '2e-4' from a dict or JSON written by hand
                return float(value)
        except OverflowError:  # an integer past 1.8e308
            raise ConfigError(f"{key}={shown(value)} is out of range: expected a finite number") from None
        except ValueError:
            pass
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool) and _fits_text(value):
            # e.g. --set data.root=2024, which YAML reads as a number: the text as written (010 stays 010)
            return getattr(value, "text", None) or repr(value)
    raise ConfigError(f"{key}={shown(value)} has the wrong type: expected {_type_name(tp)}{_hint(value, tp)}")


def _fits_text(value: int | float) -> bool:
    """False for an integer longer than the 4,300 digits Python turns into text."""
    return not isinstance(value, int) or value.bit_length() < 14_000


_SEXAGESIMAL = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")


def _hint(value: Any, tp: Any) -> str:
    """Why a value that looks right is not: YAML 1.2 reads `1:00` as text, and `1e9` or `5.0` as a float."""
    if isinstance(value, str) and _SEXAGESIMAL.fullmatch(value.strip()):
        return " (gankit reads YAML 1.2, which has no base-60 numbers: write 60, not 1:00)"
    if tp is int and isinstance(value, float) and not isinstance(value, bool):
        return " (a whole number written without a decimal point or exponent: 1000000, not 1e6)"
    return ""


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
#
# Configs are read by YAML 1.2's core schema, not by PyYAML's default YAML 1.1: 1.1 reads `1:00` as 60
# (sexagesimal), `010` as 8, `off` as false and `2024-01-02` as a date, so a typo or a folder's name silently
# becomes another value. Under 1.2 they stay strings, and a string where a number belongs is a type error naming the
# key; 1.2 also reads `1e-4` as a number (1.1 wants `1.0e-4`). The same reader parses `--set` values, and the
# writer quotes every string that 1.2 would read as something else, so a saved config reads back as it was.
#
# The reader also refuses, in one line with the line number, what a config never needs: a key given twice in one
# mapping (1.1 keeps the last one silently), nesting deeper than MAX_YAML_DEPTH (a 50,000-deep `[[[...` would
# exhaust Python's stack), an alias of a whole list or mapping (ten lines of `&a [*b, *b, ...]` hold billions of
# items), and tags beyond the plain types (`!!python/...`, `!!binary`, `!!timestamp`).

MAX_YAML_BYTES = 1 << 20  # a config is a short diff over the defaults: 1 MiB is tens of thousands of lines
MAX_YAML_DEPTH = 32  # a config nests three levels (section, key, list)

_CORE_SCHEMA = [  # YAML 1.2.2, sec. 10.3.2: tag, regular expression, first characters (int before float: "10")
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    ("float", r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)"
              r"|\.(?:nan|NaN|NAN))$", list("-+.0123456789")),
]


def _use_core_schema(cls: type) -> type:
    """Give a PyYAML loader or dumper class YAML 1.2's core-schema resolvers instead of 1.1's."""
    cls.yaml_implicit_resolvers = {}
    for tag, pattern, first in _CORE_SCHEMA:
        cls.add_implicit_resolver(f"tag:yaml.org,2002:{tag}", re.compile(pattern), first)
    return cls


class _Refused(yaml.MarkedYAMLError):
    """YAML that parses but that no config may hold (a key twice, deep nesting, an alias of a collection, ...)."""


def _refuse(problem: str, node_or_event: Any) -> _Refused:
    return _Refused(None, None, problem, node_or_event.start_mark)


@_use_core_schema
class _ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader reading YAML 1.2's core schema, strict about keys, depth, aliases and tags."""

    yaml_constructors: dict = {}
    yaml_multi_constructors: dict = {}

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) and not isinstance(self.anchors.get(event.anchor, ScalarNode("", "")),
                                                                   ScalarNode):
            raise _refuse(f"the alias *{event.anchor} repeats a whole list or mapping; write it out (aliases of "
                          "single values are fine)", event)
        self.depth += 1
        try:
            if self.depth > MAX_YAML_DEPTH:
                raise _refuse(f"nested more than {MAX_YAML_DEPTH} levels deep (a config has three: section, key, "
                              "list)", event)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node, deep=False):
        lines: dict = {}
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode):
                key, line = self.construct_object(key_node), key_node.start_mark.line + 1
                if key in lines:
                    raise _refuse(f"the key {shown(key)} is given twice in one mapping (lines {lines[key]} and "
                                  f"{line}); keep one", key_node)
                lines[key] = line
        return super().construct_mapping(node, deep)


class _Int(int):
    """An integer read from YAML that keeps its text, for a string setting (``data.root: 010`` stays ``010``)."""

    text = ""


class _Float(float):
    """A float read from YAML that keeps its text (``data.root: 1e9`` stays ``1e9``)."""

    text = ""


def _construct_int(loader: _ConfigLoader, node: ScalarNode) -> int:
    text = loader.construct_scalar(node)
    try:
        out = _Int(int(text[2:], 8 if text[1] == "o" else 16) if text[:2] in ("0o", "0x") else int(text))
    except ValueError:  # `!!int abc`, or more than the 4,300 digits Python reads
        raise _refuse(f"{shown(text)} cannot be read as an integer", node) from None
    out.text = text
    return out


def _construct_float(loader: _ConfigLoader, node: ScalarNode) -> float:
    text = loader.construct_scalar(node)
    special = {".inf": math.inf, "+.inf": math.inf, "-.inf": -math.inf, ".nan": math.nan}
    try:
        out = _Float(special[text.lower()] if text.lower() in special else float(text))
    except ValueError:
        raise _refuse(f"{shown(text)} cannot be read as a number", node) from None
    out.text = text
    return out


def _construct_bool(loader: _ConfigLoader, node: ScalarNode) -> bool:
    text = loader.construct_scalar(node)
    if text.lower() not in ("true", "false"):
        raise _refuse(f"{shown(text)} is not a boolean: write true or false", node)
    return text.lower() == "true"


def _construct_other(loader: _ConfigLoader, node: Any) -> None:
    tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
    raise _refuse(f"the tag {tag} has no place in a config: write plain strings, numbers, true/false, null, "
                  "lists and mappings", node)


for _tag, _make in (("null", yaml.SafeLoader.construct_yaml_null), ("bool", _construct_bool),
                    ("int", _construct_int), ("float", _construct_float), ("str", yaml.SafeLoader.construct_yaml_str),
                    ("seq", yaml.SafeLoader.construct_yaml_seq), ("map", yaml.SafeLoader.construct_yaml_map)):
    _ConfigLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _make)
_ConfigLoader.add_constructor(None, _construct_other)


@_use_core_schema
class _ConfigDumper(yaml.SafeDumper):
    """PyYAML's safe dumper quoting every string that YAML 1.2's core schema would read as something else."""


def parse_yaml(text: str, where: str) -> Any:
    """``text`` read as YAML 1.2 by the strict reader above; any failure is a one-line :class:`ConfigError`."""
    try:
        return yaml.load(text, Loader=_ConfigLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse {where}{_yaml_problem(exc, text)}") from None


def _yaml_problem(exc: yaml.YAMLError, text: str) -> str:
    """`` (line N): what is wrong`` on one line, for any error PyYAML raises."""
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        return f" (line {line}): character #x{exc.character:04x} is not allowed in YAML ({exc.reason})"
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1})" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc)
    return f"{where}: {' '.join(str(problem).split())}"


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Defaults, then the YAML file at ``path`` (if any), then ``section.key=value`` overrides."""
    raw: dict = {}
    if path is not None:
        raw = read_yaml(path)
    for item in overrides:
        apply_override(raw, item)
    return from_dict(raw)


def config_dirs() -> list[Path]:
    """Where shipped configs are looked up by name: ./configs, then the source checkout's configs/ beside src/
    (the YAML files are not installed with the package)."""
    return [Path("configs"), Path(__file__).resolve().parents[2] / "configs"]


def shipped_configs() -> list[str]:
    """The names of the shipped configs (``seed_gan_mnist``, ...), from :func:`config_dirs`."""
    return sorted({p.stem for d in config_dirs() if d.is_dir() for p in d.glob("*.yaml")})


def find_config(path: str | Path) -> Path:
    """``path`` itself, or for a bare name (no folder, no suffix) that is not a file here, the shipped config of
    that name; a name that is neither is a one-line error listing the shipped names."""
    path = Path(path)
    if path.exists() or path.parent != Path(".") or path.suffix:
        return path
    for folder in config_dirs():
        if (folder / f"{path.name}.yaml").is_file():
            return folder / f"{path.name}.yaml"
    raise ConfigError(f"no config file or shipped config named {str(path)!r}; shipped configs: "
                      f"{', '.join(shipped_configs()) or 'none found (no configs/ folder here)'}")


def read_yaml(path: str | Path) -> dict:
    """Read a YAML mapping (a path, or the name of a shipped config: :func:`find_config`); a missing, oversized or
    non-UTF-8 file or a parse error is a one-line :class:`ConfigError`."""
    path = find_config(path)
    if path.is_dir() and (path / "config.yaml").is_file():  # a run directory where a config belongs
        raise ConfigError(f"{path} is a run directory, not a config: to continue it, gankit train --out {path} "
                          f"--resume; to train its config again, gankit train {path / 'config.yaml'}")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}" if not path.exists() else
                          f"config file {path} is {'a folder' if path.is_dir() else 'not a regular file'}")
    raw = parse_yaml(_read_text(path), str(path))
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of sections (data, model, recipe, optim, train)")
    return raw


def _read_text(path: Path) -> str:
    """The UTF-8 text of a config file of at most MAX_YAML_BYTES."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_YAML_BYTES:
        raise ConfigError(f"config file {path} is larger than {MAX_YAML_BYTES >> 20} MiB; a config is a short diff "
                          "over the defaults")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"cannot parse {path} (line {line}): byte 0x{data[exc.start]:02x} is not UTF-8; save the "
                          "file as UTF-8") from None


def apply_override(raw: dict, item: str) -> None:
    """Apply one ``section.key=value`` override to the nested dict ``raw`` (value parsed as YAML 1.2; text that
    is not YAML, a path with ``: `` in it say, is taken as the string it is)."""
    if "=" not in item:
        raise ConfigError(f"--set expects section.key=value, got {shown(item)}")
    dotted, text = item.split("=", 1)
    parts = dotted.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"--set expects section.key=value (e.g. train.steps=100), got {shown(item)}")
    section, key = parts
    try:
        value = yaml.load(text, Loader=_ConfigLoader) if text.strip() else None
    except _Refused as exc:
        raise ConfigError(f"--set {dotted.strip()}: {exc.problem}") from None
    except yaml.YAMLError:
        value = text
    node = raw.get(section)
    if node is None:
        node = raw[section] = {}
    if not isinstance(node, dict):
        raise ConfigError(f"config section {section!r} must be a mapping")
    node[key] = value


def to_dict(cfg: Config) -> dict:
    """The resolved config as plain nested dicts (with each polymorphic section's ``name`` first)."""
    out = {}
    for f in dataclasses.fields(cfg):
        out[f.name] = dataclasses.asdict(getattr(cfg, f.name))
    return out


def dump_config(cfg: Config) -> str:
    """The resolved config as YAML text (what ``save_config`` writes)."""
    return yaml.dump(to_dict(cfg), Dumper=_ConfigDumper, sort_keys=False)


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as YAML."""
    Path(path).write_text(dump_config(cfg))
