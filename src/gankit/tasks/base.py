"""The family contract: what a model family does for the trainer (and, through a loaded run, for the API and CLI).

A :class:`Task` is the one object the trainer talks to. It builds the family's modules and its recipe (which owns
the optimizers and one training step), checks the config against the data, says which module the trainer's EMA
averages, draws the preview grid the trainer saves, and scores the model during training; for a loaded run it
scores the model (``gankit eval``) and says how the model is used outside gankit (the graph ``gankit export``
writes, the modules a model folder keeps). Every hook has a no-op default, so a family states only what it does,
and nobody above it asks which family it is.

A family is registered once, on its model's line: ``MODELS.register("vae", config=..., task="autoencoding")``; the
task names live in :data:`gankit.registry.TASKS`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..config import Config
from ..errors import ConfigError, GankitError
from ..models import build_models
from ..nn.generator import give_label_prior
from ..nn.graph import Graph
from ..recipes.base import Recipe
from ..registry import MODELS, RECIPES, TASKS


def derive_seed(seed: int, purpose: str) -> int:
    """An independent 63-bit seed for one purpose (weights, data order, noise, grid) from the run's seed."""
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass
class Scored:
    """A training-time evaluation: the scores (with provenance), the key that picks the best checkpoint (lower is
    better) and the keys worth printing."""

    result: dict
    key: str
    shown: tuple[str, ...]


@dataclass
class Preview:
    """A preview the trainer saved: where, and the samples the collapse monitor should look at (or None)."""

    path: Path
    samples: torch.Tensor | None


class Task:
    """Base of every family: the trainer's only view of the model. Subclasses override what their family does."""

    def __init__(self, cfg: Config, device: torch.device, say: Callable[[str], None] = print,
                 tell: Callable[[str], None] = print) -> None:
        self.cfg = cfg
        self.device = device
        self.say = say  # notes and warnings for the user (stderr, rank 0)
        self.tell = tell  # what the run is doing (stdout, rank 0, with the header)
        self.modules: dict[str, nn.Module] = {}
        self.recipe: Recipe | None = None

    # -- building -------------------------------------------------------------------------------------------------

    def describe(self, data) -> dict:
        """What a checkpoint records of the training data (its shape, classes and source); a family may also
        complete the config from the data here (recorded in the resolved config)."""
        info = {"sample_shape": list(data.sample_shape), "num_classes": data.num_classes, "is_image": data.is_image,
                "dataset": self.cfg.data.name, "size": len(data)}
        if getattr(data, "label_prior", None) is not None:  # data.clusters: labels are drawn by the clusters' sizes
            info["label_prior"] = [float(p) for p in data.label_prior]
        return info

    def build(self, data, seed: int) -> dict[str, nn.Module]:
        """The family's modules, weights drawn from ``seed``; a generator draws labels by the data's prior."""
        self.modules = build_models(self.cfg.model, data.sample_shape, data.num_classes, seed)
        give_label_prior(self.modules, getattr(data, "label_prior", None))
        return self.modules

    def attach(self, modules: dict[str, nn.Module]) -> Recipe:
        """The recipe over the (placed, possibly converted) modules: it builds the optimizers."""
        self.modules = modules
        self.recipe = RECIPES.get(self.cfg.recipe.name)(self.cfg.recipe, modules, self.cfg.optim)
        return self.recipe

    def validate(self, data, batch_size: int, world: int) -> None:
        """Refuse settings that cannot work with ``data`` (``batch_size``: each of ``world`` processes' share)."""
        self._check_labels_read()
        self.recipe.validate(data, batch_size)

    def _check_labels_read(self) -> None:
        """``data.clusters`` relabels the data for a model that reads labels; refuse it where none does, since the
        clusters (seconds of k-means) would change nothing the user sees."""
        k = self.cfg.data.clusters
        if not k or any(getattr(m, "num_classes", 0) for m in self.modules.values()):
            return
        hints = typing.get_type_hints(type(self.cfg.model)) if dataclasses.is_dataclass(self.cfg.model) else {}
        choices = [c for c in typing.get_args(hints.get("conditioning")) if c != "none"]
        fix = (f"set model.conditioning to one of {', '.join(choices)}" if choices
               else "use a model that reads labels")
        now = f" (model.conditioning={self.cfg.model.conditioning})" if choices else ""
        raise ConfigError(f"data.clusters={k}: model {self.cfg.model.name!r} reads no labels{now}, so the clusters "
                          f"would change nothing; {fix} to draw them, or set data.clusters=0")

    def averaged(self) -> nn.Module:
        """The module the trainer keeps an exponential moving average of (``train.ema``); a family without a
        generator refuses."""
        raise ConfigError(f"train.ema={self.cfg.train.ema}: model {self.cfg.model.name!r} has no generator to "
                          "average; set train.ema=0")

    def describe_run(self) -> list[str]:
        """The family's lines of the header a run prints before its first step (the trainer adds the parameter
        counts, data, device and run directory)."""
        return [f"model: {self.cfg.model.name}, trained by the {self.cfg.recipe.name} recipe"]

    def module_label(self, name: str) -> str:
        """How the header names the module ``name`` when it counts its parameters (default: the name itself)."""
        return name

    # -- while training -------------------------------------------------------------------------------------------

    def setup(self, data, run_dir: Path) -> None:
        """Fix what the previews show (every rank; cheap)."""

    def reference_samples(self, data) -> torch.Tensor | None:
        """Data samples whose diversity the collapse monitor compares previews against (None: no check)."""
        return None

    def prepare_evaluation(self, data, run_dir: Path) -> None:
        """Load what training-time evaluation needs (rank 0 only: an evaluator, reference features, a test split)."""

    def preview(self, path: Path, averaged: nn.Module | None) -> Preview | None:
        """Save a preview grid at ``path`` (``averaged``: the EMA copy, when kept); None when there is none."""
        return None

    def evaluate(self, averaged: nn.Module | None, step: int, source: str) -> Scored | None:
        """Score the model now, or None when this family is not evaluated during training."""
        return None

    # -- a loaded run -------------------------------------------------------------------------------------------

    def score(self, run, asked: Asked) -> tuple[dict, str | int]:
        """``gankit eval`` of a loaded run (:class:`gankit.LoadedRun`): (the result with its provenance, the tag of
        its file name: a sample count, ``test`` or ``recon``)."""
        raise GankitError(f"this run's model ({self.cfg.model.name}) draws no samples and encodes nothing: gankit "
                          "eval scores generators, autoencoders and regressors")

    # -- taking a model out of gankit ----------------------------------------------------------------------------

    def used_modules(self) -> tuple[str, ...]:
        """The modules a trained model is used through: all that a Hub model folder keeps (by default every module;
        a family leaves its discriminators out). Where the run kept an EMA copy of one (``NAME_ema``), the copy
        stands in for it."""
        return tuple(name for name in self.modules if not name.endswith("_ema"))

    def export_graph(self, run, options: dict) -> Graph:
        """What ``gankit export --format onnx`` writes for a loaded run (:class:`gankit.LoadedRun`): the family's
        verb (sampling from given codes, translating, encoding or decoding, predicting) as one module, with example
        inputs and what each input and the output hold. ``options`` are the family's choices (a direction, a part,
        psi), each refused in one line by a family that has no such choice."""
        raise GankitError(f"this run's model ({self.cfg.model.name}) has no graph to export: gankit export takes "
                          "generators, autoencoders, translators and regressors")

    def usage(self, target: str, data: dict) -> list[str]:
        """Command lines that use a trained model of this family named ``target`` (shown in its model card;
        ``data``: the run's record of its data, as :meth:`describe` wrote it)."""
        return []

    def card_samples(self, run) -> torch.Tensor | None:
        """Samples a loaded run draws for its model card's grid (None: the family draws none; the card then shows
        the run's last preview)."""
        return None


@dataclass
class Asked:
    """What ``gankit eval`` asks of a loaded run: the data section to score against, the evaluation settings
    (:class:`gankit.metrics.EvalSettings`), the run or checkpoint it was loaded from, StyleGAN's ``psi``, the VAE's
    IWAE settings, and whether the checkpoint is the best one (selected on these very scores)."""

    data: object
    opts: object
    target: str
    psi: float | None = None
    iwae_k: int = 0
    iwae_n: int | None = None
    selected: bool = False


def task_for(cfg: Config, device: torch.device, say: Callable[[str], None] = print,
             tell: Callable[[str], None] = print) -> Task:
    """The task of the family ``cfg.model.name`` (named on its model's registry line)."""
    name = MODELS.meta(cfg.model.name).get("task")
    if name is None:
        raise ConfigError(f"model {cfg.model.name!r} names no task in its registry line")
    return TASKS.get(name)(cfg, device, say, tell)
