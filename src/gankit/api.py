"""The Python API: everything the CLI does is one call here.

    >>> import gankit
    >>> run = gankit.train("configs/seed_gan_mnist.yaml", overrides=["train.steps=200"], out="runs/seed")
    >>> images = gankit.load(run).sample(16, seed=0)     # (16, 1, 28, 28) in [-1, 1]
    >>> gankit.evaluate(run)["fid"]                      # against the test split, 10,000 samples
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .config import Config, DataConfig, from_dict, load_config, apply_override, to_dict
from .errors import GankitError
from .files import (IMAGE_SUFFIXES, read_codes, read_inputs, read_samples, read_table,  # noqa: F401  (re-exported)
                    save_samples, writable)
from .files import fit_images, save_image, save_images, write_codes, write_table
from .images import save_grid, to_channels, to_uint8
from .interop.folder import is_model_folder, read_model_folder
from . import latent
from .latent import style
from .metrics.evaluate import EvalSettings, Evaluation
from .models import build_models
from .nn.generator import give_label_prior
from .progress import progress as progress_bar
from .tasks import Asked, task_for
from .train import Trainer, latest_checkpoint
from .train.device import resolve_device
from .train import rundir
from .train.checkpoint import checkpoints_newest_first
from .train import checkpoint as ckpt
from .version import __version__


def train(config: Config | str | Path | None = None, *, overrides: list[str] | tuple[str, ...] = (),
          out: str | Path | None = None, resume: bool = False, overwrite: bool = False) -> Path:
    """Train a run and return its directory. ``config`` is a Config, a YAML path, a shipped config's name
    (``seed_gan_mnist``), or None for the defaults."""
    if resume:
        return _resume(config, overrides, out)
    cfg = anchored(resolved_config(config, overrides=overrides))
    if out is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise GankitError("under torchrun, name the run directory (--out RUN_DIR): every process must use the same")
    run_dir = Path(out) if out is not None else next_run_dir(Path("runs"), _config_name(config))
    rundir.check_target(run_dir, overwrite)  # refused before anything loads
    trainer = Trainer(cfg, run_dir)  # data, models and evaluator load before anything on disk is replaced
    # one writer per run; checked again under the lock, and only then are gankit's own files replaced
    held = trainer.dist.on_main(lambda: rundir.claim(run_dir, overwrite=overwrite))
    return _fit(trainer, run_dir, held, _config_name(config))


def resolved_config(config: Config | str | Path | None = None, *, overrides: list[str] | tuple[str, ...] = (),
                    out: str | Path | None = None, resume: bool = False) -> Config:
    """The config :func:`train` would use: the defaults, then the YAML file (a path or a shipped config's name,
    e.g. ``seed_gan_mnist``; with ``resume`` and no config, OUT/config.yaml), then the overrides."""
    if isinstance(config, Config):
        if overrides:
            raise GankitError("pass overrides with a YAML path, or apply them to the Config yourself")
        return config
    if resume:
        if out is None:
            raise GankitError("--resume needs the run directory: --out RUN_DIR")
        if config is None and not (Path(out) / "config.yaml").is_file():
            raise GankitError(f"nothing to resume in {out}: it has no config.yaml. To start a run there, name its "
                              f"config: gankit train CONFIG --out {out}")
        config = config if config is not None else Path(out) / "config.yaml"
    return load_config(config, overrides)


def anchored(cfg: Config) -> Config:
    """``cfg`` with its relative paths (data.root, and train.evaluator when it names a file) made absolute, as
    they resolve from here: the run's config.yaml and checkpoints then work from any folder."""
    data, tc = cfg.data, cfg.train
    root = data.root
    if root and not root.startswith("~") and not Path(root).is_absolute() and Path(root).exists():
        data = dataclasses.replace(data, root=str(Path(root).resolve()))  # (~: absolute once expanded, or an error)
    ev = tc.evaluator
    from .metrics.evaluator import BUILTIN
    if ev and ev not in BUILTIN and not ev.startswith("~") and not Path(ev).is_absolute() and Path(ev).is_file():
        tc = dataclasses.replace(tc, evaluator=str(Path(ev).resolve()))
    return dataclasses.replace(cfg, data=data, train=tc)


def _resume(config, overrides, out) -> Path:
    cfg = anchored(resolved_config(config, overrides=overrides, out=out, resume=True))
    run_dir = Path(out)
    trainer = Trainer(cfg, run_dir)
    held = trainer.dist.on_main(lambda: rundir.claim(run_dir, resume=True))  # one writer per run
    try:
        if checkpoints_newest_first(run_dir):
            trainer.resume()
        else:  # killed before its first checkpoint: start it, so that a job script can always pass --resume
            print(f"note: no checkpoint in {run_dir} yet: starting from step 0", file=sys.stderr)
            trainer.log.truncate_after(0)
    except BaseException:
        if held is not None:
            held.release()
        raise
    return _fit(trainer, run_dir, held, _config_name(config) if config is not None else None)


def _fit(trainer: Trainer, run_dir: Path, held, config_name: str | None) -> Path:
    """Train under the run's lock (``held``, rank 0's; None on the other ranks), the session recorded in
    ``RUN/sessions.jsonl`` (how ``gankit runs`` tells finished, stopped and crashed runs apart)."""
    try:
        if held is None:
            return trainer.fit()
        with rundir.session(run_dir, lambda: trainer.step, trainer.cfg.train.steps, config_name):
            return trainer.fit()
    finally:
        trainer.log.close()  # the TensorBoard writer's last events
        if held is not None:
            held.release()


def _config_name(config) -> str:
    return Path(config).stem if isinstance(config, (str, Path)) else "default"


def next_run_dir(root: Path, name: str) -> Path:
    """``root/NNNNN-name`` with the next free number, so runs never overwrite each other."""
    taken = [int(m.group(1)) for p in root.glob("*") if (m := re.match(r"(\d{5})-", p.name))]
    return root / f"{max(taken, default=0) + 1:05d}-{name}"


class LoadedRun:
    """A trained run rebuilt from one checkpoint (or model folder, ``source``): its config, modules and the uniform
    ``sample`` verb (``predict`` for a regressor)."""

    def __init__(self, config: Config, modules: dict[str, torch.nn.Module], step: int, data_info: dict,
                 source: Path | None = None, averaged: bool | None = None) -> None:
        self.config = config
        self.modules = modules
        self.step = step
        self.data_info = data_info
        self.source = source
        # whether it samples with an exponential moving average of the weights (a model folder's generator may be one)
        self.averaged = any(n.endswith("_ema") for n in modules) if averaged is None else averaged
        self.task = task_for(config, self.device)  # the family's contract: how its runs are scored
        self.task.modules = modules

    @property
    def device(self) -> torch.device:
        """Where the modules live."""
        return next(next(iter(self.modules.values())).parameters()).device

    @property
    def generator(self) -> torch.nn.Module:
        """The generator module that samples (in eval mode): the EMA copy when the run kept one."""
        if "generator" not in self.modules:
            raise GankitError(f"this run's model ({self.config.model.name}) has no generator: it draws no samples "
                              "and has no latent space" + ("; a regressor predicts: gankit.load(RUN).predict(x)"
                                                           if "regressor" in self.modules else ""))
        return self.modules.get("generator_ema", self.modules["generator"])

    @torch.no_grad()
    def rng(self, seed: int | None = None) -> torch.Generator:
        """A generator on the model's device: seeded, or from fresh entropy when ``seed`` is None."""
        generator = torch.Generator(self.device)
        if seed is None:
            generator.seed()
        elif not 0 <= seed < 2 ** 64:
            raise GankitError(f"--seed must be in 0 .. 2**64 - 1 (a torch.Generator seed), got {seed}")
        else:
            generator.manual_seed(seed)
        return generator

    @torch.no_grad()
    def sample(self, n: int, *, seed: int | None = None, labels: torch.Tensor | None = None,
               generator: torch.Generator | None = None, batch_size: int = 1000,
               truncation: float | None = None, psi: float | None = None,
               progress: bool | None = None) -> torch.Tensor:
        """n samples on the CPU: images (n, C, H, W) in [-1, 1], or points (n, D). ``seed`` makes them repeatable;
        ``truncation`` draws the codes from a normal truncated at that threshold (the truncation trick); ``psi``
        (StyleGAN) truncates in W instead: w_avg + psi (w - w_avg). ``progress``: a bar on stderr when there is more
        than one batch (None: on a terminal only; False: never)."""
        generator = generator or self.rng(seed)
        G, chunks = self.generator, []
        if psi is not None and not hasattr(G, "truncate"):
            raise GankitError(f"psi truncates a StyleGAN's styles in W; this run's model ({self.config.model.name}) "
                              "has none: use truncation (codes z) instead")
        if psi is not None and truncation is not None:
            raise GankitError("give psi (truncation in W) or truncation (in z), not both")
        for start in progress_bar(range(0, n, batch_size), desc="sample", unit="batch",
                                  enabled=progress if n > batch_size else False):
            m = min(batch_size, n - start)
            part = None if labels is None else labels[start:start + m]
            if psi is not None:
                chunks.append(G.sample(m, labels=part, generator=generator, psi=psi).cpu())
                continue
            if truncation is None:
                chunks.append(G.sample(m, labels=part, generator=generator).cpu())
                continue
            z = latent.truncated_normal(m, G.latent_dim, truncation, generator=generator, device=self.device)
            part = part if part is not None else G.sample_labels(m, generator=generator)
            chunks.append(G(z, part).cpu())
        return torch.cat(chunks)

    def class_labels(self, n: int, label: int | None = None, by_class: bool = False
                     ) -> tuple[torch.Tensor | None, int | None]:
        """(labels, grid columns) for n samples of class ``label``, or n of each class with ``by_class`` (one row
        per class); (None, None) for neither."""
        k = getattr(self.generator, "num_classes", 0)
        if (label is not None or by_class) and not k:
            raise GankitError("--label and --by-class need a class-conditional model (model.conditioning)")
        if label is not None:
            if not 0 <= label < k:
                raise GankitError(f"--label {label} is not a class of this model: expected 0..{k - 1}")
            return torch.full((n,), label, dtype=torch.long, device=self.device), None
        if by_class:
            return torch.arange(k, device=self.device).repeat_interleave(n), n
        return None, None

    def evaluator(self, name: str | None = None):
        """The evaluator (feature network) ``name``, else the one the run was trained with, else its dataset's."""
        from .metrics.evaluator import default_evaluator, load_evaluator

        data = self.config.data
        name = name or self.config.train.evaluator or default_evaluator(data.name, data.domain)
        if name is None:
            raise GankitError("this run's data has no built-in evaluator: pass --evaluator FILE.safetensors")
        return load_evaluator(name, self.device)

    # -- regressors: predict --------------------------------------------------------------------------------------

    def predict(self, x: np.ndarray | torch.Tensor, batch_size: int = 4096) -> np.ndarray:
        """A regressor's predictions, float32 (N, T) in the targets' units, for inputs (N, D) in the features' units
        (always 2-D, even for one target)."""
        model = self.modules.get("regressor")
        if model is None:
            raise GankitError(f"this run's model ({self.config.model.name}) is not a regressor: predict needs "
                              "model.name=mlp_regressor")
        x = x.float() if torch.is_tensor(x) else torch.from_numpy(np.asarray(x, dtype=np.float32))
        expected = tuple(self.data_info["sample_shape"])
        if x.dim() != len(expected) + 1 or tuple(x.shape[1:]) != expected:
            raise GankitError(f"inputs must have shape (N, {', '.join(map(str, expected))}), got {tuple(x.shape)}")
        return self._batched(model.predict, x, batch_size).numpy()

    # -- translation: translate ----------------------------------------------------------------------------------

    def domain_channels(self, direction: str = "AB") -> tuple[int, int]:
        """(channels of the input, channels of the output) of a translation run in ``direction`` (AB or BA)."""
        c_a = self.data_info.get("channels_a")
        if not c_a:
            raise GankitError(f"this run's model ({self.config.model.name}) does not translate images: translate "
                              "needs model.name=pix2pix or cyclegan")
        c_b = self.data_info["sample_shape"][0] - c_a
        return (c_a, c_b) if direction == "AB" else (c_b, c_a)

    def translator(self, direction: str = "AB") -> torch.nn.Module:
        """The generator that maps ``direction``: G_AB (the EMA copy when kept) or, for CycleGAN, G_BA."""
        if direction not in ("AB", "BA"):
            raise GankitError(f"direction must be AB or BA, not {direction!r}")
        self.domain_channels(direction)
        if direction == "AB":
            return self.generator
        if "generator_ba" not in self.modules:
            raise GankitError(f"a {self.config.model.name} run translates A to B only; BA needs model.name=cyclegan")
        return self.modules["generator_ba"]

    @torch.no_grad()
    def translate(self, x: torch.Tensor, *, direction: str = "AB", samples: int = 1, seed: int | None = 0,
                  batch_size: int = 256) -> torch.Tensor:
        """Translations of images ``x`` (N, C_in, H, W) in [-1, 1], on the CPU: (N, C_out, H, W), or with
        ``samples`` = K > 1, (N, K, C_out, H, W), K outputs per input (pix2pix's noise: dropout, or fresh vectors
        z; a CycleGAN generator is deterministic, so its K outputs are equal). ``seed`` fixes the noise, so a seed
        repeats its outputs. The generator runs in eval mode, where pix2pix's dropout is off unless K > 1 or
        ``model.test_dropout`` keeps it on as the paper does at test time; batch norm uses its running
        statistics, where the paper normalises each test batch by its own (with its batch size of 1, instance
        normalisation), which would make an image's translation depend on the images translated with it."""
        G = self.translator(direction)
        c_in, _ = self.domain_channels(direction)
        side = self.data_info["sample_shape"][1:]
        if x.dim() != 4 or x.shape[1] != c_in or list(x.shape[2:]) != list(side):
            raise GankitError(f"inputs for direction {direction} must have shape (N, {c_in}, {side[0]}, {side[1]}), "
                              f"got {tuple(x.shape)}")
        if samples < 1:
            raise GankitError(f"samples must be >= 1, got {samples}")
        generator = self.rng(seed)
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # the caller's global stream is left as it was, and seeded here
            if seed is not None:
                torch.manual_seed(seed)
            outs = [self._batched(lambda part: G.translate(part, stochastic=samples > 1, generator=generator),
                                  x.float(), batch_size, f"translate {k + 1}/{samples}" if samples > 1 else "translate")
                    for k in range(samples)]
        return outs[0] if samples == 1 else torch.stack(outs, dim=1)

    # -- autoencoders: encode, decode, reconstruct ----------------------------------------------------------------

    def _autoencoder(self) -> torch.nn.Module:
        G = self.modules.get("generator")
        if G is None or not hasattr(G, "encode"):
            raise GankitError(f"this run's model ({self.config.model.name}) is not an autoencoder: encode and decode "
                              "need mlp_ae, conv_ae or vae")
        return self.generator

    @torch.no_grad()
    def _batched(self, fn, x: torch.Tensor, batch_size: int, desc: str | None = None,
                 progress: bool | None = None) -> torch.Tensor:
        """``fn`` over ``x`` batch by batch on the model's device, the results on the CPU; with ``desc``, a
        progress bar over more than one batch (``progress`` None: on a terminal only)."""
        shown = progress if desc is not None and len(x) > batch_size else False
        starts = progress_bar(range(0, len(x), batch_size), desc=desc or "", unit="batch", enabled=shown)
        return torch.cat([fn(x[i:i + batch_size].to(self.device)).cpu() for i in starts])

    def encode(self, x: torch.Tensor, batch_size: int = 500, progress: bool | None = None) -> torch.Tensor:
        """Codes (N, d) of samples shaped like the run's data (the posterior mean for a VAE), on the CPU
        (``progress``: a bar over the batches; None: on a terminal only)."""
        model = self._autoencoder()
        expected = tuple(self.data_info["sample_shape"])
        if tuple(x.shape[1:]) != expected:
            raise GankitError(f"these inputs have shape {tuple(x.shape[1:])}, the run was trained on {expected}")
        return self._batched(model.encode, x.float(), batch_size, "encode", progress)

    def decode(self, z: torch.Tensor, batch_size: int = 500, progress: bool | None = None) -> torch.Tensor:
        """Samples (N, ...) from codes (N, d), on the CPU (images in [-1, 1]; ``progress`` as :meth:`encode`)."""
        model = self._autoencoder()
        if z.dim() != 2 or z.shape[1] != model.latent_dim:
            raise GankitError(f"codes must have shape (N, {model.latent_dim}), got {tuple(z.shape)}")
        return self._batched(model.decode, z.float(), batch_size, "decode", progress)

    def reconstruct(self, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """decode(encode(x)), on the CPU."""
        return self.decode(self.encode(x, batch_size), batch_size)


def _device(device: str | torch.device) -> torch.device:
    """A device name checked (``auto``: CUDA when present, else CPU) in the one place that checks them all."""
    return resolve_device(device, key="--device") if isinstance(device, str) else device


def load(path: str | Path, device: str | torch.device = "auto", *, ema: bool = True) -> LoadedRun:
    """Rebuild a run from a run directory (its latest checkpoint), a checkpoint file alone, a model folder that
    :func:`export` wrote (``format="hub"``), or a model on the Hugging Face Hub, ``hf://USER/NAME[@REVISION]``
    (read from the local cache, or downloaded into it), on ``device`` (``auto``: CUDA when present, else CPU).
    A run that kept an exponential moving average of its weights (``train.ema``) samples with the average; with
    ``ema=False`` it samples with the trained weights themselves (a checkpoint holds both; a model folder holds the
    average alone)."""
    if isinstance(path, str) and path.startswith("hf://"):
        path = _hub().download(path)
    path = Path(path)
    if not path.exists():
        hint = "; a model on the Hugging Face Hub is named hf://USER/NAME" if re.fullmatch(
            r"[\w.-]+/[\w.-]+", str(path)) else ""
        raise GankitError(f"no run or checkpoint at {path}{hint}")
    device = _device(device)
    if is_model_folder(path):
        file, (tensors, meta) = path, read_model_folder(path)
        if not ema and meta.get("source", {}).get("ema"):
            raise GankitError(f"{path} holds the averaged (EMA) weights alone, as export writes them: the trained "
                              "weights are in the run's checkpoints (load the run directory or a checkpoint)")
    else:
        file = latest_checkpoint(path) if path.is_dir() else path
        tensors, meta = ckpt.load_checkpoint(file, device)
    cfg = from_dict(meta["config"])
    data = meta["data"]
    modules = build_models(cfg.model, tuple(data["sample_shape"]), data["num_classes"], seed=0)
    give_label_prior(modules, data.get("label_prior"))
    modules = _kept(modules, meta, file)
    if ema and any(k.startswith("model.generator_ema.") for k in tensors):
        modules["generator_ema"] = copy.deepcopy(modules["generator"])
    for name, module in modules.items():
        ckpt.load_module_state(module, ckpt.unpack(f"model.{name}", tensors), f"{name} weights")
        module.to(device).eval()
    averaged = bool(meta.get("source", {}).get("ema")) if is_model_folder(path) else None
    return LoadedRun(cfg, modules, int(meta["step"]), data, source=file, averaged=averaged)


def _kept(modules: dict[str, torch.nn.Module], meta: dict, file: Path) -> dict[str, torch.nn.Module]:
    """The modules a model folder keeps (its ``modules``; a checkpoint keeps them all)."""
    if "modules" not in meta:
        return modules
    missing = [name for name in meta["modules"] if name not in modules]
    if missing:
        raise GankitError(f"{file}: it holds a module {missing[0]!r}, which model {meta['config']['model']['name']!r} "
                          f"does not have ({', '.join(modules)})")
    return {name: modules[name] for name in meta["modules"]}


def evaluate(target: str | Path, *, data: str | None = None, overrides: list[str] | tuple[str, ...] = (),
             write: bool = True, iwae_k: int = 0, iwae_n: int | None = None, psi: float | None = None,
             ema: bool = True, **settings) -> dict:
    """Evaluate a run directory or checkpoint (samples drawn from its generator) or an ``.npz`` of samples
    (``data`` names their dataset) against the dataset's test split. ``settings`` are
    :class:`gankit.metrics.EvalSettings` fields (n, seed, k, evaluator, force, ...). An autoencoder's run also gets
    its reconstruction error on the test split (a plain autoencoder only that), and a VAE's its test loss and, with
    ``iwae_k`` > 1, the IWAE bound on the first ``iwae_n`` test items (default all); a regressor's is its test
    RMSE, MAE and R^2 in the targets' units. ``psi`` scores a StyleGAN's samples truncated in W (recorded in the
    provenance). A run that kept an EMA of its generator is scored with the average, unless ``ema`` is false
    (the trained weights; see :func:`load`); the provenance's ``weights`` says which. A run's result is also
    written to ``RUN/eval/step_XXXXXXX-nN.json`` (``-psiP``, ``-raw`` added for those choices) unless ``write`` is
    false (a model folder is not written to)."""
    source, target = target, Path(target)  # source: as given (an hf:// id is no path)
    # partial: a failed FID (or KID) size guard drops that metric, with a warning, instead of the whole evaluation
    opts = EvalSettings(**{"partial": True, **settings, "device": str(_device(settings.get("device", "auto")))})
    if psi is not None and target.suffix == ".npz":
        raise GankitError("psi truncates a StyleGAN run's samples; an .npz holds samples already drawn")
    if target.suffix == ".npz":
        if data is None:
            raise GankitError(f"{target} holds bare samples: say which dataset they imitate with --data NAME")
        evaluation = Evaluation(_data_config({"name": data}, overrides), opts)
        return evaluation.score(read_samples(target), source=str(target))
    if data is not None:
        raise GankitError("data (--data) is for .npz samples; a run evaluates against its own dataset (change "
                          "its settings with data.KEY=VALUE overrides)")
    run = load(source, device=opts.device, ema=ema)
    if opts.evaluator is None:
        opts.evaluator = run.config.train.evaluator  # the one the run was evaluated with while training
    if psi is not None and not hasattr(run.modules.get("generator"), "truncate"):
        raise GankitError(f"psi truncates a StyleGAN's styles in W; this run's model ({run.config.model.name}) has "
                          "none")
    asked = Asked(_data_config(to_dict(run.config)["data"], overrides), opts, str(source), psi, iwae_k, iwae_n,
                  selected=target.name.startswith("best"))
    result, n = run.task.score(run, asked)
    result["step"] = run.step
    result.setdefault("provenance", {})["weights"] = "ema" if run.averaged else "trained"
    if write and target.is_dir() and not is_model_folder(target):
        tags = ("" if psi is None else f"-psi{psi:g}") + ("" if ema else "-raw")
        _write_evaluation(target / "eval" / f"step_{run.step:07d}-n{n}{tags}.json", result)  # beside, not over
    return result


def _write_evaluation(path: Path, result: dict) -> None:
    """The result beside the run's other evaluations; a folder that cannot be written (read-only, full) costs the
    file, not the scores: they are returned (and printed) with a warning saying where they could not go."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(exist_ok=True)
        tmp.write_text(json.dumps(result, indent=2) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        if tmp.is_file():
            tmp.unlink()
        result["warnings"].append(f"the result was not written to {path}: {exc.strerror or exc}")
        print(f"warning: could not write {path}: {exc.strerror or exc}; the scores follow", file=sys.stderr)


def encode(target: str | Path, inputs: str | Path | None = None, *, split: str = "test",
           overrides: list[str] | tuple[str, ...] = (),
           device: str | torch.device = "auto") -> tuple[torch.Tensor, torch.Tensor | None]:
    """(codes, labels or None) of an autoencoder run: for an ``.npz`` of images (``arr_0``, as ``gankit sample``
    writes), or for a ``split`` of the run's own dataset (``data.key=value`` overrides apply, e.g. data.root)."""
    from .data import load_dataset

    run = load(target, device=device)
    if inputs is not None:
        return run.encode(read_samples(inputs)), None
    data = load_dataset(_data_config(to_dict(run.config)["data"], overrides), split, seed=run.config.train.seed)
    return run.encode(data.x), data.y


def _data_config(base: dict, overrides) -> DataConfig:
    """A data section with ``data.key=value`` overrides applied (other sections are refused)."""
    raw = {"data": dict(base)}
    for item in overrides:
        if not item.strip().startswith("data."):
            raise GankitError(f"evaluation takes only data.* overrides, got {item!r}")
        apply_override(raw, item)
    return from_dict(raw).data


# ---------------------------------------------------------------------------------------------------------------
# The file verbs: what the CLI does with files, as calls (a run is a LoadedRun, or a path to load on ``device``)


def _run(run: LoadedRun | str | Path, device: str | torch.device, ema: bool = True) -> LoadedRun:
    """A loaded run as given, or loaded from its path (``ema``: see :func:`load`, which makes that choice)."""
    if isinstance(run, LoadedRun):
        if not ema:
            raise GankitError("ema=False chooses the weights a run is loaded with: pass the path, or "
                              "gankit.load(path, ema=False)")
        return run
    return load(run, device=device, ema=ema)


def sample_to_file(run: LoadedRun | str | Path, n: int, output: str | Path, *, seed: int | None = None,
                   label: int | None = None, by_class: bool = False, truncation: float | None = None,
                   psi: float | None = None, device: str | torch.device = "auto",
                   ema: bool = True) -> tuple[torch.Tensor, Path]:
    """Draw n samples (n of each class with ``by_class``) and write them: a ``.png`` grid or an ``.npz``; ``ema``
    false draws them with the trained weights rather than their moving average (see :func:`load`)."""
    if n < 1:
        raise GankitError(f"-n must be a positive number of samples, got {n}")
    writable(output, (".png", ".npz"), "samples")
    run = _run(run, device, ema)
    labels, nrow = run.class_labels(n, label, by_class)
    images = run.sample(len(labels) if labels is not None else n, seed=seed, labels=labels, truncation=truncation,
                        psi=psi)
    return images, save_samples(images, output, nrow=nrow)


@dataclass
class Translated:
    """What :func:`translate_files` read and wrote: the inputs (N, C_in, H, W), the outputs ((N, C_out, H, W), or
    (N, K, C_out, H, W) with K samples per input), and the files written."""

    inputs: torch.Tensor
    outputs: torch.Tensor
    paths: list[Path]


def translate_files(run: LoadedRun | str | Path, source: str | Path, output: str | Path, *, direction: str = "AB",
                    samples: int = 1, seed: int | None = 0, grid: str | Path | None = None,
                    device: str | torch.device = "auto") -> Translated:
    """Translate one image file, a folder of images (written to the folder ``output`` under the same names, as
    .png) or an .npz (``arr_0``, written to the .npz ``output``); images are converted to the input domain's
    channels and resized to the run's size. With ``samples`` = K > 1, K outputs per input (K consecutive rows of an
    .npz, ``name.j.png`` in a folder, a row after the input for one image). ``grid``: also a grid of the inputs,
    the outputs and, for CycleGAN, the return trip."""
    source, output = Path(source), Path(output)
    if source.suffix == ".npz":
        writable(output, (".npz",), "translations")
    elif not source.is_dir():
        writable(output, (*IMAGE_SUFFIXES,), "translations")
    run = _run(run, device)
    c_in, _ = run.domain_channels(direction)
    x, names = read_inputs([source], c_in, run.data_info["sample_shape"][-1])
    out = run.translate(x, direction=direction, samples=samples, seed=seed)
    paths = _write_translations(x, out, names, source, output, samples)
    if grid is not None:
        paths.append(_translation_grid(run, x, out, direction, samples, grid))
    return Translated(x, out, paths)


def _write_translations(x: torch.Tensor, out: torch.Tensor, names, source: Path, target: Path, k: int) -> list[Path]:
    flat = out if k == 1 else out.reshape(-1, *out.shape[2:])  # input-major: K rows per input
    if names is None:
        np.savez(target, arr_0=to_uint8(flat))
        return [target]
    if source.is_dir():
        return save_images(flat, target, names, k)
    if k == 1:  # one image in, the image itself out (any format Pillow writes)
        return [save_image(flat[0], target)]
    channels = max(x.shape[1], flat.shape[1])  # one image, K outputs: a row with the input first
    return [save_samples(torch.cat([to_channels(x, channels), to_channels(flat, channels)]), target, nrow=k + 1)]


def _translation_grid(run: LoadedRun, x: torch.Tensor, out: torch.Tensor, direction: str, k: int,
                      path: str | Path) -> Path:
    """Inputs, outputs (K rows) and, for CycleGAN, the return trip: 16 columns."""
    rows = [x[:16]] + [out[:16] if k == 1 else out[:16, j] for j in range(k)]
    if "generator_ba" in run.modules and k == 1:
        rows.append(run.translate(out[:16], direction="BA" if direction == "AB" else "AB"))
    channels = max(r.shape[1] for r in rows)
    return save_grid(torch.cat([to_channels(r, channels) for r in rows]), writable(path, (".png",), "grids"),
                     nrow=len(rows[0]))


def project_files(run: LoadedRun | str | Path, sources: list[str | Path], output: str | Path, *, steps: int = 300,
                  lr: float = 0.1, w_plus: bool = False, feature_weight: float = 1.0, evaluator: str | None = None,
                  edits: int = 6, keep: str = "coarse", save: str | Path | None = None, seed: int = 0,
                  device: str | torch.device = "auto", starts: int = 1):
    """StyleGAN: project images (files, or one .npz) into W by optimisation and write a grid with one row per
    image: the input, its projection, then ``edits`` edits that keep its ``keep`` styles and draw the rest; ``save``
    also writes the styles (ws), projections and their MSE to an .npz; ``starts`` > 1 also starts from random codes
    and keeps each image's best. Returns the projection
    (:class:`gankit.latent.style.Projection`); the feature loss falls back to pixels only, with a note, where the
    run's data has no evaluator."""
    writable(output, (".png",), "projection grids")
    run = _run(run, device)
    G = run.generator
    style.require_stylegan(G)
    if edits > 0:
        style.parse_groups(keep)  # before the projection's minutes, not after
    x = _projection_inputs(run, G, sources)
    features = None
    if feature_weight > 0:
        try:
            features = run.evaluator(evaluator)
        except GankitError as err:
            print(f"note: pixels only ({err})", file=sys.stderr)
    g, pad = run.rng(seed), run.config.data.pad
    result = style.project(G, x, steps=steps, lr=lr, evaluator=features, feature_weight=feature_weight,
                           w_plus=w_plus, crop=pad, starts=starts, generator=g)
    rows = [torch.cat([x[i:i + 1], result.images[i:i + 1]]) for i in range(len(x))]
    if edits > 0:
        more = style.edit_grid(G, result, edits, keep, generator=g)
        rows = [torch.cat([r, more[i * edits:(i + 1) * edits]]) for i, r in enumerate(rows)]
    save_samples(torch.cat(rows), output, nrow=2 + max(0, edits))
    if save is not None:
        np.savez(writable(save, (".npz",), "styles"), ws=result.ws.numpy(), images=result.images.numpy(),
                 mse=result.mse.numpy())
    return result


def _projection_inputs(run: LoadedRun, G, sources: list[str | Path]) -> torch.Tensor:
    """The images to project, at the run's size: resized to the inner size and padded back with data.pad's black
    border (an .npz already at the run's full size, as its own samples are, is taken as it is)."""
    channels, side, pad = G.shape[0], G.shape[-1], run.config.data.pad
    if len(sources) == 1 and Path(sources[0]).suffix == ".npz":
        raw = read_samples(sources[0]) if Path(sources[0]).exists() else None
        if raw is not None and raw.dim() == 4 and raw.shape[-2:] == (side, side):
            return fit_images(raw, channels, side, sources[0])
    x, _ = read_inputs(sources, channels, side - 2 * pad)
    return F.pad(x, (pad,) * 4, value=-1.0)


def predict_file(run: LoadedRun | str | Path, features: str | Path, output: str | Path,
                 device: str | torch.device = "auto") -> tuple[np.ndarray, Path]:
    """A regressor's predictions for a table of features (.csv or .npz ``x``), written to a .csv or .npz."""
    writable(output, (".csv", ".npz"), "predictions")
    preds = _run(run, device).predict(read_table(features))
    return preds, write_table(output, preds)


def encode_to_file(target: str | Path, output: str | Path, inputs: str | Path | None = None, *, split: str = "test",
                   overrides: list[str] | tuple[str, ...] = (),
                   device: str | torch.device = "auto") -> tuple[torch.Tensor, Path]:
    """An autoencoder's codes (with the labels, for a split of its dataset) written to an .npz."""
    writable(output, (".npz",), "codes")
    codes, labels = encode(target, inputs, split=split, overrides=overrides, device=device)
    return codes, write_codes(output, codes, labels)


def decode_file(run: LoadedRun | str | Path, codes: str | Path, output: str | Path, *, n: int | None = None,
                device: str | torch.device = "auto") -> tuple[torch.Tensor, Path]:
    """Samples decoded from the first ``n`` codes of an .npz (as ``gankit encode`` writes), written as a grid or
    an .npz; ``n`` defaults to 64 for a .png grid and to all the codes for an .npz."""
    target = writable(output, (".png", ".npz"), "decoded samples")
    if n is not None and n < 1:
        raise GankitError(f"-n must be a positive number of codes, got {n}")
    z = read_codes(codes)
    grid = target.suffix.lower() == ".png"
    images = _run(run, device).decode(z[:n or (64 if grid else len(z))])
    if n is None and len(images) < len(z):
        print(f"note: the grid shows the first {len(images)} of {len(z)} codes (-n N for more; an .npz output "
              "takes all)", file=sys.stderr)
    return images, save_samples(images, output)


def latent_to_file(run: LoadedRun | str | Path, verb: str, output: str | Path, *, seed: int = 0,
                   label: int | None = None, device: str | torch.device = "auto", **options) -> tuple[str, Path]:
    """A latent-space grid written as a .png: ``verb`` is interpolate (``rows``, ``steps``, ``linear``, ``space``),
    mix (``cols``, ``psi``), truncation (``psi`` list, ``cols``), traverse (``dims``, ``steps``, ``radius``),
    manifold (``steps``, ``dims``) or arithmetic (``expression``, ``n``, ``evaluator``). Returns (a description
    of the rows, or "", the file)."""
    writable(output, (".png",), "latent grids")
    grid = _LATENT_GRIDS.get(verb)
    if grid is None:
        raise GankitError(f"unknown latent verb {verb!r}; valid choices: {', '.join(sorted(_LATENT_GRIDS))}")
    for key in ("rows", "steps", "cols", "n"):
        if key in options and options[key] < 1:
            raise GankitError(f"--{key} must be a positive integer, got {options[key]}" if key != "n" else
                              f"-n must be a positive number of codes, got {options[key]}")
    if not math.isfinite(options.get("radius", 1.0)) or options.get("radius", 1.0) <= 0:
        raise GankitError(f"--radius must be a positive number, got {options['radius']}")
    run = _run(run, device)
    images, cols, rows = grid(run, run.generator, run.rng(seed), label, **options)
    return rows, save_samples(images, output, nrow=cols)


def _numbers(value, kind: type, flag: str) -> list:
    """Comma-separated numbers (or a list of them) as a list of ``kind``; a one-line error names the flag."""
    if not isinstance(value, str):
        return [kind(v) for v in value]
    try:
        values = [kind(v) for v in value.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values:
        raise GankitError(f"{flag} {value!r}: expected comma-separated {kind.__name__}s, e.g. 1,0.5")
    return values


# each: (run, its generator, a torch.Generator, a class label or None, the verb's options) -> (images, columns,
# a description of the rows)


def _interpolate(run, G, g, label, rows=8, steps=10, linear=False, space="z"):
    if space == "w":
        return style.w_interpolation_grid(G, rows, steps, generator=g), steps, ""
    return latent.interpolation_grid(G, rows, steps, not linear, generator=g, label=label), steps, ""


def _mix(run, G, g, label, cols=6, psi=None):
    images, names = style.mixing_grid(G, cols, generator=g, psi=psi)
    return images, cols, "; ".join(names)


def _truncation(run, G, g, label, psi="1,0.8,0.6,0.4,0.2,0", cols=8):
    psis = _numbers(psi, float, "--psi")
    return style.truncation_grid(G, psis, cols, generator=g), cols, "psi = " + ", ".join(f"{p:g}" for p in psis)


def _traverse(run, G, g, label, dims=None, steps=9, radius=3.0):
    dims = None if dims is None else _numbers(dims, int, "--dims")
    return latent.traversal_grid(G, dims, steps, radius, generator=g, label=label), steps, ""


def _manifold(run, G, g, label, steps=20, dims="0,1"):
    return latent.manifold_grid(G, steps, _numbers(dims, int, "--dims"), label=label), steps, ""


def _arithmetic(run, G, g, label, expression="", n=4000, evaluator=None):
    return latent.arithmetic(G, run.evaluator(evaluator), expression, n=n, generator=g), 8, ""


_LATENT_GRIDS = {"interpolate": _interpolate, "mix": _mix, "truncation": _truncation, "traverse": _traverse,
                 "manifold": _manifold, "arithmetic": _arithmetic}


def train_evaluator(data: str, output: str | Path, *, overrides: list[str] | tuple[str, ...] = (), **settings) -> dict:
    """Train an evaluator (a CNN classifier whose features the metrics use) on the labelled dataset ``data``
    (``data.key=value`` overrides apply) and write it to ``output``; ``settings``: epochs, batch_size, lr, width,
    seed, device. Returns its record (test accuracy, split, sha256, ...)."""
    from .metrics.train_evaluator import train_evaluator as train_one

    writable(output, (".safetensors",), "evaluators")
    for key in ("epochs", "batch_size", "width"):
        if key in settings and settings[key] < 1:
            raise GankitError(f"--{key.replace('_', '-')} must be a positive integer, got {settings[key]}")
    if "lr" in settings and not (math.isfinite(settings["lr"]) and settings["lr"] > 0):
        raise GankitError(f"--lr must be a positive number, got {settings['lr']}")
    settings["device"] = str(_device(settings.get("device", "auto")))
    return train_one(_data_config({"name": data}, overrides), output, **settings)


def dry_run(config: Config | str | Path | None = None, *, overrides: list[str] | tuple[str, ...] = (),
            out: str | Path | None = None, resume: bool = False) -> dict[str, int]:
    """What ``train`` would build, tried: the data and the models of :func:`resolved_config`, the training-time
    evaluation's set-up (its evaluator and reference, and their size guards), then one training step on one batch,
    in a temporary directory deleted afterwards (``out`` is not touched). Returns each module's number of
    parameters."""
    import tempfile

    raw = to_dict(resolved_config(config, overrides=overrides, out=out, resume=resume))
    raw["train"].update(steps=1, progress=False)
    with tempfile.TemporaryDirectory(prefix="gankit-dry-run-") as tmp:
        trainer = Trainer(from_dict(raw), Path(tmp) / "run", dry_run=True)
        try:
            trainer.fit()
        finally:
            trainer.log.close()
        return {name: sum(p.numel() for p in module.parameters()) for name, module in trainer.modules.items()}


# ----------------------------------------------------------------------------------------------------------------
# Taking a model out of gankit: an ONNX file, or a model folder in the Hugging Face Hub's layout

EXPORT_FORMATS = ("onnx", "hub")


@dataclass
class Exported:
    """What :func:`export` wrote: the ONNX file or model folder, a one-line description (the graph's inputs and
    output, or the folder's files), the largest difference onnxruntime showed against PyTorch on example inputs
    (None: not run), and the address of the upload (``push``)."""

    path: Path
    summary: str
    max_diff: float | None = None
    url: str | None = None


def export(run: LoadedRun | str | Path, output: str | Path, *, format: str = "onnx", push: str | None = None,
           device: str | torch.device = "auto", **options) -> Exported:
    """Take a trained model out of gankit (``gankit export``). ``format="onnx"`` writes the family's verb as one
    ONNX graph with a dynamic batch axis: a generator's samples from given codes, a translator, an autoencoder's
    decoder (``part="encoder"``: its encoder), a regressor's predictions; ``direction`` picks CycleGAN's generator,
    ``psi`` and ``noise`` StyleGAN's inputs (docs/export.md lists each family's inputs and outputs).
    ``format="hub"`` writes a model folder in the Hugging Face Hub's layout (config.json, model.safetensors, a
    README.md model card, samples.png) that :func:`load` and every verb read back; ``push`` ("USER/NAME") also
    uploads it."""
    if format not in EXPORT_FORMATS:
        raise GankitError(f"unknown export format {format!r}; valid choices: {', '.join(EXPORT_FORMATS)}")
    options = {k: v for k, v in options.items() if v is not None}
    if format == "onnx":
        if push is not None:
            raise GankitError("--push uploads a model folder: use it with --format hub")
        return _export_onnx(run, writable(output, (".onnx",), "ONNX models"), device, options)
    if options:
        raise GankitError(f"--{next(iter(options))} shapes an ONNX graph; a model folder keeps the whole model: "
                          "drop it, or use --format onnx")
    return _export_folder(run, Path(output), device, push)


def _export_onnx(run: LoadedRun | str | Path, target: Path, device, options: dict) -> Exported:
    from .interop.onnx_file import OPSET, write_onnx  # torch.onnx's exporter loads only when asked for

    run = _run(run, device)
    graph = run.task.export_graph(run, options)
    meta = {"gankit.version": __version__, "gankit.model": run.config.model.name, "gankit.step": str(run.step),
            "gankit.source": run.source.name if run.source else ""}
    diff = write_onnx(graph, target, meta)
    shown = [f"{name} {graph.docs[name][:graph.docs[name].find(')') + 1]}" for name in [*graph.inputs, graph.output]]
    summary = f"{', '.join(shown[:-1])} -> {shown[-1]}; opset {OPSET}, dynamic batch B"
    return Exported(target, summary, diff)


def _export_folder(run: LoadedRun | str | Path, folder: Path, device, push: str | None) -> Exported:
    from .interop.card import CardFacts, model_card
    from .interop.folder import check_target, model_files
    from .registry import MODELS

    hub = _hub()
    folder = check_target(folder)
    if push is not None:
        hub.check_repo_id(push)
    run = _run(run, device)
    used = run.task.used_modules()
    modules = {name: run.modules.get(f"{name}_ema", run.modules[name]) for name in used}
    ema = any(f"{name}_ema" in run.modules for name in used)
    run_dir = _run_dir_of(run.source)
    target = f"hf://{push}" if push else str(folder)
    grid, caption = _card_grid(run, run_dir)
    config = to_dict(run.config)
    facts = CardFacts(name=push.split("/")[1] if push else folder.resolve().name, model=run.config.model.name,
                      task=MODELS.meta(run.config.model.name).get("task", "?"), data=run.data_info, step=run.step,
                      ema=ema, usage=run.task.usage(target, run.data_info), grid=caption, config=config,
                      run_dir=run_dir)
    source = {"run": run_dir.name if run_dir else None, "file": run.source.name if run.source else None, "ema": ema}
    files = model_files(modules, config, run.data_info, run.step, source, model_card(facts), grid)
    url = hub.save(files, folder, push)
    names = [n for n in ("config.json", "model.safetensors", "README.md", "samples.png") if (folder / n).is_file()]
    return Exported(folder, ", ".join(names), url=url)


def _run_dir_of(source: Path | None) -> Path | None:
    """The run directory a checkpoint (or run directory) belongs to, or None (a model folder, a lone file)."""
    if source is None:
        return None
    for candidate in (source, source.parent.parent):
        if candidate.is_dir() and rundir.is_run(candidate):
            return candidate
    return None


def _card_grid(run: LoadedRun, run_dir: Path | None) -> tuple[torch.Tensor | Path | None, str | None]:
    """What a model card shows: samples the family draws from these weights, else the run's last preview up to
    their step, else nothing; with its caption."""
    samples = run.task.card_samples(run)
    if samples is not None:
        return samples, f"{len(samples)} samples from these weights, seed 0"
    found = (run_dir / "samples").glob("step_*.png") if run_dir is not None else []
    previews = sorted(p for p in found if _step_of(p) <= run.step)
    if previews:
        return previews[-1], f"The run's preview at step {_step_of(previews[-1]):,} (samples/{previews[-1].name})"
    return None, None


def _step_of(preview: Path) -> int:
    match = re.fullmatch(r"step_(\d{7,})\.png", preview.name)
    return int(match.group(1)) if match else 1 << 62


def _hub():
    """:mod:`gankit.interop.hub`, or one line saying how to install huggingface_hub."""
    try:
        from .interop import hub
    except ImportError as exc:
        if not (exc.name or "").startswith("huggingface_hub"):
            raise
        raise GankitError("model folders need huggingface_hub: pip install 'gankit[export]'") from None
    return hub


# ----------------------------------------------------------------------------------------------------------------
# Looking at runs: read from their files alone (gankit.runs), nothing loads a model


def list_runs(folder: str | Path = "runs", *, sort: str = "name", reverse: bool = False) -> list[dict]:
    """One dict per run directory under ``folder`` (``gankit runs``): name, config, family, steps done and
    planned, status (finished, stopped, crashed, running), best evaluation and its step, wall-clock seconds, last
    checkpoint."""
    from .runs.listing import SORT_KEYS, list_runs as listed
    if sort not in SORT_KEYS:
        raise GankitError(f"sort by {sort!r}: expected one of {', '.join(SORT_KEYS)}")
    return listed(folder, sort, reverse)


def plot_runs(runs: str | Path | list[str | Path], output: str | Path, *, metrics: list[str] | None = None,
              smooth: float = 0.0, x: str = "step") -> Path:
    """Draw the curves of one or several runs into ``output`` (``gankit plot``; PNG, SVG or PDF): the standard
    panels, or one per ``metrics`` key; needs matplotlib (``pip install 'gankit[plot]'``)."""
    from .runs.plot import plot_runs as plotted
    from .runs.run import read_run
    return plotted([read_run(r) for r in _as_list(runs)], output, metrics, smooth, x)


def report(runs: str | Path | list[str | Path], output: str | Path, *, smooth: float = 0.0) -> Path:
    """Write one self-contained HTML report on one or several runs (``gankit report``): summary, curves, the
    preview grids through training, evaluations with their provenance, health events, config diff, and a
    comparison table for several runs; needs matplotlib for the curves."""
    from .runs.html import write_report
    from .runs.run import read_run
    return write_report([read_run(r) for r in _as_list(runs)], output, smooth)


def _as_list(runs) -> list:
    return [runs] if isinstance(runs, (str, Path)) else list(runs)


def serve(run: str | Path, *, host: str = "127.0.0.1", port: int = 8000, device: str | torch.device = "auto",
          max_images: int = 64, max_upload_mb: float = 4.0, rate: float = 20.0) -> None:
    """Serve a local web page to play with a trained run until Ctrl-C (``gankit serve``): seeds, batches,
    truncation, classes, walks between seeds, style mixing, uploads to translate. Bound to 127.0.0.1 unless
    ``host`` says otherwise; ``max_images`` per request, ``max_upload_mb`` per upload and ``rate`` requests a
    second per client bound what the page may ask. Needs FastAPI and uvicorn (``pip install 'gankit[serve]'``)."""
    from .web.app import Limits, serve as run_server
    if not 1 <= max_images <= 1024:
        raise GankitError(f"--max-images {max_images}: expected 1..1024")
    if not 0 < max_upload_mb <= 64:
        raise GankitError(f"--max-upload-mb {max_upload_mb:g}: expected a size in (0, 64]")
    if not 0 < rate <= 1000:
        raise GankitError(f"--rate {rate:g}: expected requests a second in (0, 1000]")
    if not 1 <= port <= 65535:
        raise GankitError(f"--port {port}: expected 1..65535")
    limits = Limits(max_images=max_images, max_upload_bytes=int(max_upload_mb * 2 ** 20), rate=rate,
                    burst=max(1, int(2 * rate)))
    from .web.app import FastAPI
    if FastAPI is None:  # said before the model loads
        raise GankitError("gankit serve needs FastAPI and uvicorn, an optional extra: pip install 'gankit[serve]'")
    run_server(load(run, device=device), Path(run).name, host=host, port=port, limits=limits)


# ----------------------------------------------------------------------------------------------------------------
# Sweeps: Optuna studies whose trials are ordinary runs (gankit.sweeps), each trained by its own `gankit train`

from typing import TYPE_CHECKING  # noqa: E402  (the imports below are for the annotations alone)

if TYPE_CHECKING:  # the sweep's modules load when a sweep runs (Optuna is an optional extra)
    from .sweeps.show import SweepReport
    from .sweeps.study import SweepResult


def sweep(config: str | Path | None = None, space: str | Path | None = None, *, trials: int,
          overrides: list[str] | tuple[str, ...] = (), out: str | Path | None = None, storage: str | None = None,
          study: str | None = None, objective: str = "fid", maximize: bool = False, take: str = "best",
          seeds: int = 1, workers: int = 1, threads: int | None = None, minutes: float | None = None,
          trial_minutes: float | None = None, pruner: str = "median", startup_trials: int = 5) -> SweepResult:
    """Search the config keys named in the ``space`` file (``gankit sweep``) until the study holds ``trials``
    finished trials, and return a :class:`gankit.sweeps.study.SweepResult`. Each trial trains one setting for
    ``seeds`` seeds (train.seed + 0, 1, ...), each an ordinary run directory under ``out`` (default
    sweeps/CONFIG-SPACE), ``workers`` trials at a time with ``threads`` CPU threads per run (default: the cores
    shared out); its value is the mean over the seeds of each run's ``take`` (best or last) training-time evaluation
    of ``objective`` (minimised unless ``maximize``). ``pruner`` (median, hyperband, none) stops hopeless trials
    from their evaluations once ``startup_trials`` are complete; ``minutes`` bounds the time in which trials start,
    ``trial_minutes`` each trial's runs (train.max_minutes). The study is Optuna's, in ``storage`` (a database URL;
    default OUT/study.db) under the name ``study`` (default: the folder's name): run again, or on other machines
    pointed at one database, the command shares and continues it. Needs Optuna (``pip install 'gankit[sweep]'``)."""
    from .sweeps.study import plan_sweep, run_sweep
    return run_sweep(plan_sweep(config, space, trials=trials, overrides=overrides, out=out, storage=storage,
                                study=study, objective=objective, maximize=maximize, take=take, seeds=seeds,
                                workers=workers, threads=threads, minutes=minutes, trial_minutes=trial_minutes,
                                pruner=pruner, startup_trials=startup_trials))


def show_sweep(folder: str | Path, *, storage: str | None = None, study: str | None = None) -> SweepReport:
    """What the sweep in ``folder`` found (``gankit sweep --show``), as a :class:`gankit.sweeps.show.SweepReport`:
    the best setting and a table of the trials as text, the best setting written to ``folder/best.yaml`` (ready for
    ``gankit train``), and the optimisation history and parameter importances as PNG in ``folder`` (needs
    matplotlib). ``storage`` and ``study`` as given to :func:`sweep` when not the defaults."""
    from .sweeps.show import show
    return show(folder, storage=storage, study=study)
