"""The Python API: everything the CLI does is one call here.

    >>> import gankit
    >>> run = gankit.train("configs/seed_gan_mnist.yaml", overrides=["train.steps=200"], out="runs/seed")
    >>> images = gankit.load(run).sample(16, seed=0)     # (16, 1, 28, 28) in [-1, 1]
    >>> gankit.evaluate(run)["fid"]                      # against the test split, 10,000 samples
"""

from __future__ import annotations

import copy
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import torch

from .config import Config, DataConfig, from_dict, load_config, read_yaml, apply_override, to_dict
from .errors import GankitError
from .images import save_grid, save_scatter, to_uint8
from .models import build_models
from .train import Trainer, latest_checkpoint
from .train import rundir
from .train.checkpoint import checkpoints_newest_first
from .train import checkpoint as ckpt


def train(config: Config | str | Path | None = None, *, overrides: list[str] | tuple[str, ...] = (),
          out: str | Path | None = None, resume: bool = False, overwrite: bool = False) -> Path:
    """Train a run and return its directory. ``config`` is a Config, a YAML path, or None for the defaults."""
    if resume:
        return _resume(config, overrides, out)
    if isinstance(config, Config) and overrides:
        raise GankitError("pass overrides with a YAML path, or apply them to the Config yourself")
    cfg = config if isinstance(config, Config) else load_config(config, overrides)
    if out is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise GankitError("under torchrun, name the run directory (--out RUN_DIR): every process must use the same")
    run_dir = Path(out) if out is not None else next_run_dir(Path("runs"), _config_name(config))
    rundir.check_target(run_dir, overwrite)  # refused before anything loads
    trainer = Trainer(cfg, run_dir)  # data, models and evaluator load before anything on disk is replaced
    # one writer per run; checked again under the lock, and only then are gankit's own files replaced
    held = trainer.dist.on_main(lambda: rundir.claim(run_dir, overwrite=overwrite))
    try:
        return trainer.fit()
    finally:
        if held is not None:
            held.release()


def _resume(config, overrides, out) -> Path:
    if out is None:
        raise GankitError("--resume needs the run directory: --out RUN_DIR")
    run_dir = Path(out)
    if config is None and not (run_dir / "config.yaml").is_file():
        raise GankitError(f"nothing to resume in {run_dir}: it has no config.yaml. To start a run there, name its "
                          f"config: gankit train CONFIG --out {run_dir}")
    if isinstance(config, Config):
        cfg = config
    else:
        raw = read_yaml(config if config is not None else run_dir / "config.yaml")
        for item in overrides:
            apply_override(raw, item)
        cfg = from_dict(raw)
    trainer = Trainer(cfg, run_dir)
    held = trainer.dist.on_main(lambda: rundir.claim(run_dir, resume=True))  # one writer per run
    try:
        if checkpoints_newest_first(run_dir):
            trainer.resume()
        else:  # killed before its first checkpoint: start it, so that a job script can always pass --resume
            print(f"note: no checkpoint in {run_dir} yet: starting from step 0", file=sys.stderr)
            trainer.log.truncate_after(0)
        return trainer.fit()
    finally:
        if held is not None:
            held.release()


def _config_name(config) -> str:
    return Path(config).stem if isinstance(config, (str, Path)) else "default"


def next_run_dir(root: Path, name: str) -> Path:
    """``root/NNNNN-name`` with the next free number, so runs never overwrite each other."""
    taken = [int(m.group(1)) for p in root.glob("*") if (m := re.match(r"(\d{5})-", p.name))]
    return root / f"{max(taken, default=0) + 1:05d}-{name}"


class LoadedRun:
    """A trained run rebuilt from one checkpoint: its config, modules and the uniform ``sample`` verb (``predict``
    for a regressor)."""

    def __init__(self, config: Config, modules: dict[str, torch.nn.Module], step: int, data_info: dict) -> None:
        self.config = config
        self.modules = modules
        self.step = step
        self.data_info = data_info

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
        else:
            generator.manual_seed(seed)
        return generator

    @torch.no_grad()
    def sample(self, n: int, *, seed: int | None = None, labels: torch.Tensor | None = None,
               generator: torch.Generator | None = None, batch_size: int = 1000,
               truncation: float | None = None, psi: float | None = None) -> torch.Tensor:
        """n samples on the CPU: images (n, C, H, W) in [-1, 1], or points (n, D). ``seed`` makes them repeatable;
        ``truncation`` draws the codes from a normal truncated at that threshold (the truncation trick); ``psi``
        (StyleGAN) truncates in W instead: w_avg + psi (w - w_avg)."""
        from .latent import truncated_normal

        generator = generator or self.rng(seed)
        G, chunks = self.generator, []
        if psi is not None and not hasattr(G, "truncate"):
            raise GankitError(f"psi truncates a StyleGAN's styles in W; this run's model ({self.config.model.name}) "
                              "has none: use truncation (codes z) instead")
        if psi is not None and truncation is not None:
            raise GankitError("give psi (truncation in W) or truncation (in z), not both")
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            part = None if labels is None else labels[start:start + m]
            if psi is not None:
                chunks.append(G.sample(m, generator=generator, psi=psi).cpu())
                continue
            if truncation is None:
                chunks.append(G.sample(m, labels=part, generator=generator).cpu())
                continue
            z = truncated_normal(m, G.latent_dim, truncation, generator=generator, device=self.device)
            part = part if part is not None else G.sample_labels(m, generator=generator)
            chunks.append(G(z, part).cpu())
        return torch.cat(chunks)

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
        ``samples`` = K > 1, (N, K, C_out, H, W), K outputs per input (pix2pix's noise: dropout kept on, or fresh
        vectors z; a CycleGAN generator is deterministic, so its K outputs are equal). The generator runs in eval
        mode: batch norm uses its running statistics, where the pix2pix paper normalises each test batch by its
        own statistics (with its batch size of 1, instance normalisation)."""
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
        with torch.random.fork_rng(devices=devices):  # dropout draws from torch's global generator: seed it too
            if seed is not None:
                torch.manual_seed(seed)
            outs = [self._batched(lambda part: G.translate(part, stochastic=samples > 1, generator=generator),
                                  x.float(), batch_size) for _ in range(samples)]
        return outs[0] if samples == 1 else torch.stack(outs, dim=1)

    # -- autoencoders: encode, decode, reconstruct ----------------------------------------------------------------

    def _autoencoder(self) -> torch.nn.Module:
        G = self.modules.get("generator")
        if G is None or not hasattr(G, "encode"):
            raise GankitError(f"this run's model ({self.config.model.name}) is not an autoencoder: encode and decode "
                              "need mlp_ae, conv_ae or vae")
        return self.generator

    @torch.no_grad()
    def _batched(self, fn, x: torch.Tensor, batch_size: int) -> torch.Tensor:
        return torch.cat([fn(x[i:i + batch_size].to(self.device)).cpu() for i in range(0, len(x), batch_size)])

    def encode(self, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Codes (N, d) of samples shaped like the run's data (the posterior mean for a VAE), on the CPU."""
        model = self._autoencoder()
        expected = tuple(self.data_info["sample_shape"])
        if tuple(x.shape[1:]) != expected:
            raise GankitError(f"these inputs have shape {tuple(x.shape[1:])}, the run was trained on {expected}")
        return self._batched(model.encode, x.float(), batch_size)

    def decode(self, z: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Samples (N, ...) from codes (N, d), on the CPU (images in [-1, 1])."""
        model = self._autoencoder()
        if z.dim() != 2 or z.shape[1] != model.latent_dim:
            raise GankitError(f"codes must have shape (N, {model.latent_dim}), got {tuple(z.shape)}")
        return self._batched(model.decode, z.float(), batch_size)

    def reconstruct(self, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """decode(encode(x)), on the CPU."""
        return self.decode(self.encode(x, batch_size), batch_size)


def load(path: str | Path, device: str | torch.device = "cpu") -> LoadedRun:
    """Rebuild a run from a run directory (its latest checkpoint) or from a checkpoint file alone."""
    path = Path(path)
    if not path.exists():
        raise GankitError(f"no run or checkpoint at {path}")
    file = latest_checkpoint(path) if path.is_dir() else path
    tensors, meta = ckpt.load_checkpoint(file, device)
    cfg = from_dict(meta["config"])
    data = meta["data"]
    modules = build_models(cfg.model, tuple(data["sample_shape"]), data["num_classes"], seed=0)
    if any(k.startswith("model.generator_ema.") for k in tensors):
        modules["generator_ema"] = copy.deepcopy(modules["generator"])
    for name, module in modules.items():
        ckpt.load_module_state(module, ckpt.unpack(f"model.{name}", tensors), f"{name} weights")
        module.to(device).eval()
    return LoadedRun(cfg, modules, int(meta["step"]), data)


def save_samples(samples: torch.Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """``.png``: a grid (a scatter plot for 2-D points); ``.npz``: ``arr_0`` as uint8 (N, H, W, C) for images,
    float32 (N, D) for points."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".png":
        if samples.dim() == 2 and samples.shape[1] == 2:
            return save_scatter(None, samples, path)
        if samples.dim() != 4:
            raise GankitError(f"cannot draw samples of shape {tuple(samples.shape[1:])} as a .png; use .npz")
        return save_grid(samples, path, nrow=nrow)
    if path.suffix == ".npz":
        arr = to_uint8(samples) if samples.dim() == 4 else samples.float().cpu().numpy()
        np.savez(path, arr_0=arr)
        return path
    raise GankitError(f"cannot write samples to {path}: use a .png (grid) or .npz (arrays) file name")


def read_samples(path: str | Path) -> torch.Tensor:
    """Samples from an ``.npz``: ``arr_0`` as uint8 (N, H, W, C) images -> (N, C, H, W) in [-1, 1], or float
    (N, D) points."""
    from .data.npyfile import load_npz  # sizes the file claims are checked before anything is allocated

    path = Path(path)
    try:
        with load_npz(path) as npz:
            if "arr_0" not in npz.files:
                raise GankitError(f"{path} has no arr_0 (it holds {', '.join(npz.files) or 'nothing'}); save samples "
                                  "as np.savez(path, arr_0=images) with uint8 (N, H, W, C) images")
            arr = npz["arr_0"]
    except (OSError, ValueError) as exc:
        raise GankitError(f"cannot read samples from {path}: {exc}") from None
    if arr.dtype == np.uint8 and arr.ndim == 4:
        return torch.from_numpy(arr.astype(np.float32) / 127.5 - 1.0).permute(0, 3, 1, 2).contiguous()
    if arr.ndim == 2 and np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise GankitError(f"{path}: arr_0 holds NaN or infinite values")
        return torch.from_numpy(arr.astype(np.float32))
    raise GankitError(f"{path}: arr_0 is {arr.dtype} {arr.shape}; expected uint8 images (N, H, W, C) or float "
                      "points (N, D)")


def evaluate(target: str | Path, *, data: str | None = None, overrides: list[str] | tuple[str, ...] = (),
             write: bool = True, iwae_k: int = 0, iwae_n: int | None = None, psi: float | None = None,
             **settings) -> dict:
    """Evaluate a run directory or checkpoint (samples drawn from its generator) or an ``.npz`` of samples
    (``data`` names their dataset) against the dataset's test split. ``settings`` are
    :class:`gankit.metrics.EvalSettings` fields (n, seed, k, evaluator, force, ...). An autoencoder's run also gets
    its reconstruction error on the test split (a plain autoencoder only that), and a VAE's its test loss and, with
    ``iwae_k`` > 1, the IWAE bound on the first ``iwae_n`` test items (default all); a regressor's is its test
    RMSE, MAE and R^2 in the targets' units. ``psi`` scores a StyleGAN's samples truncated in W (recorded in the
    provenance). A run's result is also
    written to ``RUN/eval/step_XXXXXXX-nN.json`` unless ``write`` is false."""
    from .metrics.evaluate import EvalSettings, Evaluation

    target = Path(target)
    opts = EvalSettings(**settings)
    if psi is not None and target.suffix == ".npz":
        raise GankitError("psi truncates a StyleGAN run's samples; an .npz holds samples already drawn")
    if target.suffix == ".npz":
        if data is None:
            raise GankitError(f"{target} holds bare samples: say which dataset they imitate with --data NAME")
        evaluation = Evaluation(_data_config({"name": data}, overrides), opts)
        return evaluation.score(read_samples(target), source=str(target))
    if data is not None:
        raise GankitError("--data is for .npz samples; a run evaluates against its own dataset (change it with "
                          "--set data.key=value)")
    run = load(target, device=opts.device)
    if opts.evaluator is None:
        opts.evaluator = run.config.train.evaluator  # the one the run was evaluated with while training
    data_cfg = _data_config(to_dict(run.config)["data"], overrides)
    G = run.modules.get("generator")
    if G is None and "regressor" not in run.modules:
        raise GankitError(f"this run's model ({run.config.model.name}) draws no samples and encodes nothing: "
                          "gankit eval scores generators, autoencoders and regressors")
    if psi is not None and not hasattr(G, "truncate"):
        raise GankitError(f"psi truncates a StyleGAN's styles in W; this run's model ({run.config.model.name}) has none")
    extra = _autoencoder_scores(run, data_cfg, iwae_k, iwae_n, opts.seed) if hasattr(G, "encode") else None
    if run.data_info.get("channels_a"):
        result = _translation_scores(run, data_cfg, opts, f"{target} (step {run.step})")
        n = result["provenance"]["num_samples"]
    elif G is None:
        result, n = _regressor_scores(run, data_cfg, selected=target.name.startswith("best")), "test"
    elif extra is not None and not G.has_prior:
        result, n = extra, "recon"
    else:
        evaluation = Evaluation(data_cfg, opts)
        n = opts.default_n(evaluation.points)
        suffix = "" if psi is None else f", truncation psi={psi:g}"
        result = evaluation.score(run.sample(n, seed=opts.seed, psi=psi), source=f"{target} (step {run.step}{suffix})")
        if psi is not None:
            result["provenance"]["psi"] = psi
        if extra is not None:  # a VAE: its sample scores, then its reconstruction and likelihood scores
            result.update({k: v for k, v in extra.items() if k not in ("provenance", "warnings")})
            result["provenance"]["autoencoder"] = extra["provenance"]["autoencoder"]
    result["step"] = run.step
    if write and target.is_dir():
        psi_tag = "" if psi is None else f"-psi{psi:g}"
        out = target / "eval" / f"step_{run.step:07d}-n{n}{psi_tag}.json"  # beside, not over, the training-time ones
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def encode(target: str | Path, inputs: str | Path | None = None, *, split: str = "test",
           overrides: list[str] | tuple[str, ...] = (),
           device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor | None]:
    """(codes, labels or None) of an autoencoder run: for an ``.npz`` of images (``arr_0``, as ``gankit sample``
    writes), or for a ``split`` of the run's own dataset (``data.key=value`` overrides apply, e.g. data.root)."""
    from .data import load_dataset

    run = load(target, device=device)
    if inputs is not None:
        return run.encode(read_samples(inputs)), None
    data = load_dataset(_data_config(to_dict(run.config)["data"], overrides), split, seed=run.config.train.seed)
    return run.encode(data.x), data.y


def _autoencoder_scores(run: LoadedRun, data_cfg: DataConfig, iwae_k: int, iwae_n: int | None, seed: int) -> dict:
    """Reconstruction scores (and a VAE's likelihood bounds) on the test split, with their provenance."""
    from .data import load_dataset
    from .metrics.autoencoding import reconstruction_scores, vae_scores

    test = load_dataset(data_cfg, "test", seed=run.config.train.seed).x
    G = run.generator
    out = reconstruction_scores(G, test)
    prov = {"autoencoder": {"split": "test", "dataset": data_cfg.name, "n": len(test),
                            "recon": "decode(encode(x)) vs x in [-1, 1]; PSNR of the pooled MSE, range 2"}}
    if G.has_prior:
        binarize = bool(getattr(run.config.recipe, "binarize", False))
        scores = vae_scores(G, test[:iwae_n] if iwae_n else test, k=max(iwae_k, 1), binarize=binarize, seed=seed)
        out.update({k: v for k, v in scores.items() if k in ("test_loss", "nll", "elbo_nll")})
        prov["autoencoder"].update({"likelihood_n": scores["n"], "iwae_k": scores.get("k", 1), "binarized": binarize,
                                    "units": "nats per image"})
    source = f"{run.config.model.name} reconstructions of {data_cfg.name} test"
    prov["samples"], prov["num_samples"] = source, len(test)
    prov.setdefault("reference", {"dataset": data_cfg.name, "split": "test", "size": len(test)})
    prov.setdefault("evaluator", {"name": "none (pixel-space reconstruction metrics)"})
    return {**out, "provenance": prov, "warnings": []}


DIVERSITY_INPUTS, DIVERSITY_SAMPLES = 200, 5  # output diversity: K outputs for each of the first inputs


def _translation_scores(run: LoadedRun, data_cfg: DataConfig, opts, source: str) -> dict:
    """A translation run's scores on the test split, per direction (``AB/...``; CycleGAN also ``BA/...``): the
    target domain's evaluator-FID, KID, precision/recall and the share of translations it labels with their source's
    label (``class_preservation``), where the domain has an evaluator; L1, PSNR and SSIM against the ground truth
    (paired data); the return trip's L1 error (``cycle_l1``, CycleGAN); the mean pairwise L1 between
    ``DIVERSITY_SAMPLES`` outputs of each of the first ``DIVERSITY_INPUTS`` inputs (``diversity``)."""
    import dataclasses

    from .data import load_dataset
    from .metrics.evaluate import Evaluation
    from .metrics.translation import class_preservation, cycle_error, output_diversity, paired_scores

    whole = dataclasses.replace(data_cfg, domain="")
    test = load_dataset(whole, "test", seed=0)
    if not test.is_translation or test.channels_a != run.data_info["channels_a"]:
        raise GankitError(f"data {data_cfg.name!r}: the test split is not the translation task this run learnt")
    n = min(len(test), opts.n or 10_000)
    paired = test.paired
    out: dict = {}
    prov: dict = {"samples": f"{run.config.model.name} translations of {data_cfg.name} test ({source})",
                  "num_samples": n, "reference": {"dataset": data_cfg.name, "split": "test", "size": len(test)},
                  "evaluator": {"name": "per direction: the target domain's (see directions)"}, "directions": {}}
    warnings: list[str] = []
    directions = ["AB", "BA"] if "generator_ba" in run.modules else ["AB"]
    for d in directions:
        src, tgt = (test.a, test.b) if d == "AB" else (test.b, test.a)
        src_labels = test.y if d == "AB" else (test.y if paired else test.y_b)
        fakes = run.translate(src[:n], direction=d, seed=opts.seed)
        info: dict = {"source_domain": d[0], "target_domain": d[1]}
        target_cfg = dataclasses.replace(whole, domain=d[1])
        # a named evaluator (--evaluator, train.evaluator) is for domain B; domain A takes its built-in one
        named = opts.evaluator if d[1] == "B" else None
        scores = None
        try:
            evaluation = Evaluation(target_cfg, dataclasses.replace(opts, n=n, evaluator=named))
            scores = evaluation.score(fakes, source=f"{d} translations")
        except GankitError as exc:  # no evaluator for this domain, or too few images for FID: pixel metrics only
            warnings.append(f"{d}: no FID or class preservation ({exc})")
        if scores is not None:
            for key in ("fid", "kid", "precision", "recall", "density", "coverage"):
                if key in scores:
                    out[f"{d}/{key}"] = scores[key]
            info["evaluator"] = scores["provenance"]["evaluator"]
            info["reference"] = scores["provenance"]["reference"]
            probs = evaluation.last_features.probs  # the features score() computed, not a second pass
            if src_labels is not None and probs is not None:
                out[f"{d}/class_preservation"] = class_preservation(torch.from_numpy(probs.argmax(1)),
                                                                    src_labels[:n].cpu())
        if paired:
            out.update({f"{d}/{k}": v for k, v in paired_scores(fakes, tgt[:n]).items()})
        if "generator_ba" in run.modules:
            back = run.translate(fakes, direction="BA" if d == "AB" else "AB", seed=opts.seed)
            out[f"{d}/cycle_l1"] = cycle_error(src[:n], back)
        k_inputs = src[:min(n, DIVERSITY_INPUTS)]
        out[f"{d}/diversity"] = output_diversity(run.translate(k_inputs, direction=d, samples=DIVERSITY_SAMPLES,
                                                               seed=opts.seed))
        info["diversity"] = f"{DIVERSITY_SAMPLES} outputs of each of the first {len(k_inputs)} inputs"
        prov["directions"][d] = info
    return {**out, "provenance": prov, "warnings": warnings}


def _regressor_scores(run: LoadedRun, data_cfg: DataConfig, selected: bool = False) -> dict:
    """A regressor's RMSE, MAE and R^2 on the test split, in the targets' units, with their provenance; ``selected``
    (the run's best checkpoint, picked by these very scores) adds a warning."""
    from .data import load_dataset
    from .metrics.regression import score_regressor

    test = load_dataset(data_cfg, "test", seed=run.config.train.seed)
    if not test.is_regression:
        raise GankitError(f"data {data_cfg.name!r} has no regression targets to score a regressor against")
    expected = tuple(run.data_info["sample_shape"])
    where = f"data {data_cfg.name!r}" + (f" ({data_cfg.root})" if data_cfg.root else "")
    if test.sample_shape != expected:
        raise GankitError(f"{where}: test rows have shape {test.sample_shape}, the regressor takes {expected}")
    model = run.modules["regressor"]
    if test.y.shape[1] != model.targets:
        raise GankitError(f"{where}: the test split has {test.y.shape[1]} target column(s), the regressor predicts "
                          f"{model.targets}")
    scores = score_regressor(model, test.x, test.y)
    prov = {"samples": f"{run.config.model.name} predictions of {data_cfg.name} test", "num_samples": len(test),
            "reference": {"dataset": data_cfg.name, "split": "test", "size": len(test), "targets": test.y.shape[1]},
            "evaluator": {"name": "none (rmse and mae pooled over rows and targets, in the targets' units; r2 = "
                                  "1 - SSE/SST per target about the test mean, averaged over targets)"}}
    warnings = ["this is the checkpoint with the best test score during training: selected on the test split, its "
                "test scores are optimistic (quote the last checkpoint's, or score rows held out from training)"] \
        if selected else []
    return {**scores, "provenance": prov, "warnings": warnings}


def _data_config(base: dict, overrides) -> DataConfig:
    """A data section with ``data.key=value`` overrides applied (other sections are refused)."""
    raw = {"data": dict(base)}
    for item in overrides:
        if not item.strip().startswith("data."):
            raise GankitError(f"evaluation takes only data.* overrides, got {item!r}")
        apply_override(raw, item)
    return from_dict(raw).data
