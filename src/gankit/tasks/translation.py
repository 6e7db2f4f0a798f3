"""Image-to-image translation: pix2pix (paired) and CycleGAN (unpaired).

The data holds A and B images stacked on the channel axis. Previews are rows of fixed A images, their translations,
and below them the B image of each pair (paired data) or the return trip G_BA(G_AB(A)) (CycleGAN). There is no
evaluation during training yet: ``gankit eval RUN`` scores a run per direction.
"""

from __future__ import annotations

from pathlib import Path

import dataclasses

import torch
from torch import nn

from ..data import load_dataset
from ..errors import ConfigError, GankitError
from ..metrics.evaluate import Evaluation
from ..metrics.translation import class_preservation, cycle_error, output_diversity, paired_scores
from ..images import save_grid, to_channels
from ..nn.graph import EXAMPLE_BATCH, Call, Graph, shape_doc, take_options
from ..registry import TASKS
from .base import Asked, Preview, Task, derive_seed


@TASKS.register("translation")
class TranslationTask(Task):
    """A translator ``modules["generator"]`` (G_AB; CycleGAN adds ``generator_ba``)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reals: torch.Tensor | None = None  # fixed (A, B) pairs, stacked on the channel axis
        self.channels_a = 0

    def describe(self, data) -> dict:
        """The data's record plus A's channel count, which the model takes from the data when left at 0."""
        if not data.is_translation:
            return super().describe(data)  # the recipe's validation says what is wrong
        model = self.cfg.model
        if model.channels_a not in (0, data.channels_a):
            raise ConfigError(f"model.channels_a={model.channels_a} but data {self.cfg.data.name!r} has A images of "
                              f"{data.channels_a} channel(s): leave model.channels_a at 0 (taken from the data)")
        model.channels_a = self.channels_a = data.channels_a  # recorded in the resolved config: the run rebuilds
        return {**super().describe(data), "channels_a": data.channels_a}

    def averaged(self) -> nn.Module:
        return self.modules["generator"]

    def setup(self, data, run_dir: Path) -> None:
        seed = derive_seed(self.cfg.train.seed, "recon")
        pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
        self.reals = data.x[pick[:2 * self.cfg.train.grid_rows]].to(self.device)
        if self.cfg.train.eval_every:
            self.say("note: no evaluation during training for a translation model yet (score a run with "
                     f"`gankit eval {run_dir}`); the grids are in {run_dir / 'samples'}")

    def reference_samples(self, data) -> torch.Tensor | None:
        return data.b[:64]

    def score(self, run, asked: Asked) -> tuple[dict, str | int]:
        """Per direction, on the test split: see :func:`translation_report`."""
        result = translation_report(run, asked.data, asked.opts, f"{asked.target} (step {run.step})")
        return result, result["provenance"]["num_samples"]

    def used_modules(self) -> tuple[str, ...]:
        return tuple(name for name in ("generator", "generator_ba") if name in self.modules)

    def export_graph(self, run, options: dict) -> Graph:
        """The generator of ``direction`` (AB, the default, or BA for CycleGAN) as ``gankit translate`` runs it:
        eval mode, so batch norm uses its running statistics and pix2pix's dropout is off (its ``--samples K``
        noise is not exported); an injected-vector generator takes its code ``z`` as a second input."""
        opts = take_options(options, {"direction": ("AB", ("AB", "BA"))}, self.cfg.model.name)
        d = opts["direction"]
        G = run.translator(d)
        c_in, c_out = run.domain_channels(d)
        side = tuple(run.data_info["sample_shape"][1:])
        g = run.rng(0)
        inputs = {"images": torch.rand((EXAMPLE_BATCH, c_in, *side), generator=g, device=run.device) * 2 - 1}
        docs = {"images": shape_doc((c_in, *side), "float32", f"domain {d[0]} images in [-1, 1]")}
        if G.noise_dim:
            inputs["z"] = G.sample_noise(EXAMPLE_BATCH, generator=g)
            docs["z"] = shape_doc((G.noise_dim,), "float32", "noise codes drawn from N(0, I), one per image")
        docs["translations"] = shape_doc((c_out, *side), "float32", f"domain {d[1]} images in [-1, 1]")
        return Graph(Call(G.eval(), "forward"), inputs, "translations", docs, options=opts)

    def usage(self, target: str, data: dict) -> list[str]:
        lines = [f"gankit translate {target} image.png -o translated.png"]
        if "generator_ba" in self.modules:
            lines.append(f"gankit translate {target} image.png -o back.png --direction BA")
        return lines

    @torch.no_grad()
    def preview(self, path: Path, averaged: nn.Module | None) -> Preview | None:
        c = self.channels_a
        a, b = self.reals[:, :c], self.reals[:, c:]
        G, G_ba = averaged or self.modules["generator"], self.modules.get("generator_ba")
        fake = G.translate(a, generator=torch.Generator(self.device).manual_seed(0))
        third = G_ba.translate(fake) if G_ba is not None else b
        rows = [to_channels(t, max(a.shape[1], b.shape[1])) for t in (a, fake, third)]
        return Preview(save_grid(torch.cat(rows), path, nrow=len(a)), fake)


DIVERSITY_INPUTS, DIVERSITY_SAMPLES = 200, 5  # output diversity: K outputs for each of the first inputs


def translation_report(run, data_cfg, opts, source: str) -> dict:
    """A translation run's scores on the test split, per direction (``AB/...``; CycleGAN also ``BA/...``): the
    target domain's evaluator-FID, KID, precision/recall and the share of translations it labels with their source's
    label (``class_preservation``), where the domain has an evaluator; L1, PSNR and SSIM against the ground truth
    (paired data); the return trip's L1 error (``cycle_l1``, CycleGAN); the mean pairwise L1 between
    ``DIVERSITY_SAMPLES`` outputs of each of the first ``DIVERSITY_INPUTS`` inputs (``diversity``)."""
    whole = dataclasses.replace(data_cfg, domain="")
    test = load_dataset(whole, "test", seed=0)
    if not test.is_translation or test.channels_a != run.data_info["channels_a"]:
        raise GankitError(f"data {data_cfg.name!r}: the test split is not the translation task this run learnt")
    n = min(len(test), opts.n or 10_000)
    out, warnings = {}, []
    prov: dict = {"samples": f"{run.config.model.name} translations of {data_cfg.name} test ({source})",
                  "num_samples": n, "reference": {"dataset": data_cfg.name, "split": "test", "size": len(test)},
                  "evaluator": {"name": "per direction: the target domain's (see directions)"}, "directions": {}}
    for d in (["AB", "BA"] if "generator_ba" in run.modules else ["AB"]):
        scores, info, warning = _direction_scores(run, test, whole, opts, d, n)
        out.update(scores)
        prov["directions"][d] = info
        warnings += [warning] if warning else []
    return {**out, "provenance": prov, "warnings": warnings}


def _direction_scores(run, test, whole, opts, d: str, n: int) -> tuple[dict, dict, str | None]:
    """One direction's scores, its provenance, and a warning when its domain could not be scored by features."""
    src, tgt = (test.a, test.b) if d == "AB" else (test.b, test.a)
    src_labels = test.y if d == "AB" else (test.y if test.paired else test.y_b)
    fakes = run.translate(src[:n], direction=d, seed=opts.seed)
    info: dict = {"source_domain": d[0], "target_domain": d[1]}
    out, warning = _feature_scores(fakes, src_labels, whole, opts, d, n, info)
    if test.paired:
        out.update({f"{d}/{k}": v for k, v in paired_scores(fakes, tgt[:n]).items()})
    if "generator_ba" in run.modules:
        back = run.translate(fakes, direction="BA" if d == "AB" else "AB", seed=opts.seed)
        out[f"{d}/cycle_l1"] = cycle_error(src[:n], back)
    k_inputs = src[:min(n, DIVERSITY_INPUTS)]
    out[f"{d}/diversity"] = output_diversity(run.translate(k_inputs, direction=d, samples=DIVERSITY_SAMPLES,
                                                           seed=opts.seed))
    info["diversity"] = f"{DIVERSITY_SAMPLES} outputs of each of the first {len(k_inputs)} inputs"
    return out, info, warning


def _feature_scores(fakes, src_labels, whole, opts, d: str, n: int, info: dict) -> tuple[dict, str | None]:
    """FID, KID, precision/recall and class preservation with the target domain's evaluator (a named evaluator,
    --evaluator or train.evaluator, is for domain B; domain A takes its built-in one); where there is none, or too
    few images for FID, pixel metrics only and a warning."""
    named = opts.evaluator if d[1] == "B" else None
    try:
        evaluation = Evaluation(dataclasses.replace(whole, domain=d[1]),
                                dataclasses.replace(opts, n=n, evaluator=named))
        scores = evaluation.score(fakes, source=f"{d} translations")
    except GankitError as exc:
        return {}, f"{d}: no FID or class preservation ({exc})"
    out = {f"{d}/{key}": scores[key] for key in ("fid", "kid", "precision", "recall", "density", "coverage")
           if key in scores}
    info["evaluator"] = scores["provenance"]["evaluator"]
    info["reference"] = scores["provenance"]["reference"]
    probs = evaluation.last_features.probs  # the features score() computed, not a second pass
    if src_labels is not None and probs is not None:
        out[f"{d}/class_preservation"] = class_preservation(torch.from_numpy(probs.argmax(1)), src_labels[:n].cpu())
    return out, None
