"""Autoencoding: autoencoders (MLP, convolutional, denoising) and VAEs.

Previews add rows of fixed real images, each above the row of their reconstructions (``recon_step_*.png`` beside a
VAE's prior samples; in place of them for a plain autoencoder, which has no prior to sample from and so is not
scored during training either: ``gankit eval RUN`` scores its reconstructions).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..images import save_grid
from ..metrics.autoencoding import reconstruction_scores, vae_scores
from ..metrics.evaluate import reference_split
from ..nn.graph import EXAMPLE_BATCH, Call, Graph, shape_doc, take_options
from ..nn.modes import eval_mode
from ..registry import TASKS
from .base import Asked, Preview, derive_seed
from .generation import GenerationTask


@TASKS.register("autoencoding")
class AutoencodingTask(GenerationTask):
    """An autoencoder or VAE (``modules["generator"]`` with ``encode``/``decode``)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reals: torch.Tensor | None = None  # fixed real images shown above their reconstructions

    @property
    def has_prior(self) -> bool:
        return bool(getattr(self.generator, "has_prior", True))

    def setup(self, data, run_dir: Path) -> None:
        super().setup(data, run_dir)
        pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(derive_seed(self.cfg.train.seed,
                                                                                             "recon")))
        self.reals = data.x[pick[:self.columns * (self.columns // 2)]].to(self.device)

    def module_label(self, name: str) -> str:
        """The autoencoder is one module (the family contract calls it the generator): named for what it holds."""
        return "autoencoder (encoder + decoder)" if name == "generator" else name

    def prepare_evaluation(self, data, run_dir: Path) -> None:
        if self.cfg.train.eval_every and not self.has_prior:
            self.say("note: no evaluation during training: a plain autoencoder has no prior to sample from (score "
                     "its reconstructions with `gankit eval RUN`)")
            return
        super().prepare_evaluation(data, run_dir)

    def score(self, run, asked: Asked) -> tuple[dict, str | int]:
        """Reconstruction scores on the test split (and a VAE's likelihood bounds); a VAE's samples are scored as a
        generator's, its reconstruction and likelihood scores added."""
        extra = reconstruction_report(run, asked.data, asked.iwae_k, asked.iwae_n, asked.opts.seed,
                                      asked.opts.progress)
        if not self.has_prior:
            return extra, "recon"
        result, n = super().score(run, asked)
        result.update({k: v for k, v in extra.items() if k not in ("provenance", "warnings")})
        result["provenance"]["autoencoder"] = extra["provenance"]["autoencoder"]
        return result, n

    def export_graph(self, run, options: dict) -> Graph:
        """The decoder (``part=decoder``, the default: codes ``z`` -> ``images``, what sampling a VAE computes) or
        the encoder (``part=encoder``: ``images`` -> ``codes``, the posterior mean for a VAE, as ``gankit encode``)."""
        opts = take_options(options, {"part": ("decoder", ("decoder", "encoder"))}, self.cfg.model.name)
        G = run.generator
        if opts["part"] == "decoder":
            graph = G.graph({}, generator=run.rng(0), name=self.cfg.model.name)
            graph.options = opts
            return graph
        shape = tuple(run.data_info["sample_shape"])
        name = "images" if len(shape) == 3 else "samples"
        with torch.no_grad():
            x = G.decode(G.sample_latent(EXAMPLE_BATCH, generator=run.rng(0)))  # inputs in the data's range
        x_doc = "images in [-1, 1]" if name == "images" else "samples in the data's units"
        z_doc = "codes (the posterior mean)" if self.has_prior else "codes"
        docs = {name: shape_doc(shape, "float32", x_doc), "codes": shape_doc((G.latent_dim,), "float32", z_doc)}
        return Graph(Call(G.eval(), "encode"), {name: x}, "codes", docs, options=opts)

    def usage(self, target: str, data: dict) -> list[str]:
        lines = super().usage(target, data) if self.has_prior else []
        return lines + [f"gankit encode {target} -o codes.npz", f"gankit decode {target} codes.npz -o decoded.png"]

    def card_samples(self, run) -> torch.Tensor | None:
        return super().card_samples(run) if self.has_prior else None  # a plain autoencoder has no prior

    @torch.no_grad()
    def preview(self, path: Path, averaged: nn.Module | None) -> Preview | None:
        if not self.drawable:
            return None
        G = averaged or self.generator
        with eval_mode(G):
            recon = G.reconstruct(self.reals)
        pairs = _interleave_rows(self.reals, recon, self.columns)
        if not self.has_prior:
            return Preview(save_grid(pairs, path, nrow=self.columns), None)
        save_grid(pairs, path.with_name("recon_" + path.name), nrow=self.columns)
        return super().preview(path, averaged)


def reconstruction_report(run, data_cfg, iwae_k: int, iwae_n: int | None, seed: int,
                          progress: bool | None = None) -> dict:
    """Reconstruction scores (and a VAE's likelihood bounds) on the test split, with their provenance
    (``progress``: a bar over the IWAE bound; None: on a terminal)."""
    split, name, notes = reference_split(data_cfg, run.config.train.seed)  # a folder without test/: the hold-out
    test = split.x
    G = run.generator
    out = reconstruction_scores(G, test)
    prov = {"autoencoder": {"split": name, "dataset": data_cfg.name, "n": len(test),
                            "recon": "decode(encode(x)) vs x in [-1, 1]; PSNR of the pooled MSE, range 2"}}
    if G.has_prior:
        binarize = bool(getattr(run.config.recipe, "binarize", False))
        scores = vae_scores(G, test[:iwae_n] if iwae_n else test, k=max(iwae_k, 1), binarize=binarize, seed=seed,
                            progress=progress)
        out.update({k: v for k, v in scores.items() if k in ("test_loss", "nll", "elbo_nll")})
        prov["autoencoder"].update({"likelihood_n": scores["n"], "iwae_k": scores.get("k", 1), "binarized": binarize,
                                    "units": "nats per image"})
    source = f"{run.config.model.name} reconstructions of {data_cfg.name} test"
    prov["samples"], prov["num_samples"] = source, len(test)
    prov.setdefault("reference", {"dataset": data_cfg.name, "split": name, "size": len(test)})
    prov.setdefault("method", "reconstruction scores in pixel space (no feature network)")
    return {**out, "provenance": prov, "warnings": notes}


def _interleave_rows(real: torch.Tensor, recon: torch.Tensor, cols: int) -> torch.Tensor:
    """Rows of ``cols`` real images, each followed by the row of their reconstructions."""
    rows = real.shape[0] // cols
    pair = torch.stack([real[:rows * cols].reshape(rows, cols, *real.shape[1:]),
                        recon[:rows * cols].reshape(rows, cols, *recon.shape[1:])], dim=1)  # (rows, 2, cols, ...)
    return pair.reshape(rows * 2 * cols, *real.shape[1:])
