"""Image-to-image translation: pix2pix (paired) and CycleGAN (unpaired).

The data holds A and B images stacked on the channel axis. Previews are rows of fixed A images, their translations,
and below them the B image of each pair (paired data) or the return trip G_BA(G_AB(A)) (CycleGAN). Every
``train.eval_every`` steps the first ``train.eval_samples`` test images are translated in each direction and scored
as ``gankit eval`` scores a run (:func:`translation_report`: the target domain's evaluator, pixel errors against the
ground truth, colour, the return trip), but without the output-diversity pass; the best checkpoint has the lowest
FID, averaged over the directions that have an evaluator (KID where too few test images leave FID out), or, where
none has, the lowest L1 error against the ground truth (paired data).
"""

from __future__ import annotations

from pathlib import Path

import dataclasses

import torch
from torch import nn

from ..data import load_dataset
from ..errors import ConfigError, GankitError
from ..metrics.evaluate import EvalSettings, Evaluation
from ..metrics.evaluator import default_evaluator
from ..metrics.translation import class_preservation, colour_scores, cycle_error, output_diversity, paired_scores
from ..images import save_grid, to_channels
from ..nn.graph import EXAMPLE_BATCH, Call, Graph, shape_doc, take_options
from ..registry import TASKS
from .base import Asked, Preview, Scored, Task, derive_seed

EVAL_CHUNK = 500  # images translated at once during a training-time evaluation


@TASKS.register("translation")
class TranslationTask(Task):
    """A translator ``modules["generator"]`` (G_AB; CycleGAN adds ``generator_ba``)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reals: torch.Tensor | None = None  # fixed (A, B) pairs, stacked on the channel axis
        self.channels_a = 0
        self.test = None  # the first train.eval_samples test items, when evaluated during training
        self.evaluations: dict[str, Evaluation | None] = {}  # per direction: its target domain's, or None

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

    def directions(self) -> list[str]:
        return ["AB", "BA"] if "generator_ba" in self.modules else ["AB"]

    def prepare_evaluation(self, data, run_dir: Path) -> None:
        """The test split's first ``train.eval_samples`` items and each direction's target-domain evaluation, or a
        note saying why there is no evaluation during training."""
        tc = self.cfg.train
        if tc.eval_every == 0:
            return
        whole = dataclasses.replace(self.cfg.data, domain="")
        test = load_dataset(whole, "test", seed=0)
        n = min(len(test), tc.eval_samples)
        settings = EvalSettings(n=n, evaluator=tc.evaluator, device=str(self.device), partial=True, progress=False)
        evaluations = {d: _target_evaluation(whole, settings, d)[0] for d in self.directions()}
        if not any(evaluations.values()) and not test.paired:
            self.say(f"note: no evaluation during training: neither domain of data {whole.name!r} has a built-in "
                     "evaluator, and unpaired data has no ground truth (set train.evaluator to an evaluator of "
                     f"domain B, trained with `gankit evaluator train`); the grids are in {run_dir / 'samples'}")
            return
        self.test, self.evaluations = _first(test, n), evaluations

    def describe_run(self) -> list[str]:
        lines = super().describe_run()
        if self.test is not None:  # prepared before the header is printed
            scored = [d for d, e in self.evaluations.items() if e is not None]
            metric = "KID" if any("fid" in self.evaluations[d].size_problems(len(self.test)) for d in scored) else "FID"
            lines.append(f"evaluation: {len(self.test):,} test images per direction every "
                         f"{self.cfg.train.eval_every:,} steps ({', '.join(self.evaluations)}); best checkpoint by "
                         + (f"{' + '.join(scored)} {metric}" + (" (mean)" if len(scored) > 1 else "") if scored
                            else "AB's L1 against the ground truth"))
        return lines

    @torch.no_grad()
    def evaluate(self, averaged: nn.Module | None, step: int, source: str) -> Scored | None:
        """Each direction's translations of the same test images, scored as :func:`translation_report` scores them
        (no output-diversity pass); the key is ``fid`` (the mean over the directions scored by features) or
        ``AB/l1``."""
        if self.test is None:
            return None
        modules = {"AB": averaged or self.modules["generator"], "BA": self.modules.get("generator_ba")}
        g = torch.Generator(self.device).manual_seed(derive_seed(self.cfg.train.seed, "eval"))

        def translate(x: torch.Tensor, d: str) -> torch.Tensor:
            G = modules[d]
            return torch.cat([G.translate(x[i:i + EVAL_CHUNK].to(self.device), generator=g).float().cpu()
                              for i in range(0, len(x), EVAL_CHUNK)])

        n = len(self.test)
        self.tell(f"evaluating {n:,} translations per direction at step {step}...")
        out, prov = {}, {"samples": f"translations of {self.cfg.data.name} test ({source})", "num_samples": n,
                         "reference": {"dataset": self.cfg.data.name, "split": "test"}, "directions": {}}
        warnings = []
        for d in self.directions():
            scores, info, warning = _direction_scores(translate, self.test, d, n, self.evaluations[d],
                                                      cycle=modules["BA"] is not None)
            out.update(scores)
            prov["directions"][d] = info
            warnings += [warning] if warning else []
        for metric in ("fid", "kid"):  # KID where FID's size guard left FID out (as for the generators)
            scored = [d for d in self.directions() if f"{d}/{metric}" in out]
            if scored:
                break
        if len(scored) > 1:
            out[metric] = sum(out[f"{d}/{metric}"] for d in scored) / len(scored)
            prov[metric] = f"mean of the {metric.upper()}s of {', '.join(scored)}"
        key = metric if len(scored) > 1 else f"{scored[0]}/{metric}" if scored else "AB/l1"
        if key not in out:  # every evaluation refused these translations, and no ground truth
            self.say(f"warning: no score at step {step}: {'; '.join(warnings)}")
            return None
        shown = tuple(k for k in out if k == key or k.endswith(("/fid", "/class_preservation", "/l1",
                                                                  "/colourfulness_ratio")))
        return Scored({**out, "provenance": prov, "warnings": warnings}, key, shown)

    def reference_samples(self, data) -> torch.Tensor | None:
        return data.b[:64]

    def score(self, run, asked: Asked) -> tuple[dict, str | int]:
        """Per direction, on the test split: see :func:`translation_report`."""
        result = translation_report(run, asked.data, asked.opts, f"{asked.target} (step {run.step})")
        return result, result["provenance"]["num_samples"]

    def used_modules(self) -> tuple[str, ...]:
        return tuple(name for name in ("generator", "generator_ba") if name in self.modules)

    def export_graph(self, run, options: dict) -> Graph:
        """The generator of ``direction`` (AB, the default, or BA for CycleGAN) in eval mode: batch norm uses its
        running statistics and pix2pix's dropout is off, as ``gankit translate`` runs it by default (the noise of
        ``--samples K`` and ``model.test_dropout`` is not exported); an injected-vector generator takes its code
        ``z`` as a second input."""
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
    cycle = "generator_ba" in run.modules

    def translate(x: torch.Tensor, d: str, samples: int = 1) -> torch.Tensor:
        return run.translate(x, direction=d, samples=samples, seed=opts.seed)

    for d in (["AB", "BA"] if cycle else ["AB"]):
        evaluation, warning = _target_evaluation(whole, dataclasses.replace(opts, n=n), d)
        scores, info, more = _direction_scores(translate, test, d, n, evaluation, cycle, diversity=True)
        out.update(scores)
        prov["directions"][d] = info
        warnings += [w for w in (warning, more) if w]
    return {**out, "provenance": prov, "warnings": warnings}


def _first(data, n: int):
    """The first ``n`` items of a translation dataset, as the fields :func:`_direction_scores` reads."""
    cut = lambda t: None if t is None else t[:n]  # noqa: E731
    return dataclasses.replace(data, x=data.x[:n], y=cut(data.y), y_b=cut(data.y_b))


def _target_evaluation(whole, opts, d: str) -> tuple[Evaluation | None, str | None]:
    """The evaluation with the target domain's evaluator (a named one, --evaluator or train.evaluator, is for
    domain B; domain A takes its built-in one), or None and why, where there is none or too few images for FID."""
    named = opts.evaluator if d[1] == "B" else None
    if named is None and default_evaluator(whole.name, d[1]) is None:
        return None, f"{d}: no FID or class preservation (domain {d[1]} of {whole.name!r} has no built-in evaluator)"
    try:
        return Evaluation(dataclasses.replace(whole, domain=d[1]), dataclasses.replace(opts, evaluator=named)), None
    except GankitError as exc:
        return None, f"{d}: no FID or class preservation ({exc})"


def _direction_scores(translate, test, d: str, n: int, evaluation: Evaluation | None, cycle: bool,
                      diversity: bool = False) -> tuple[dict, dict, str | None]:
    """One direction's scores and their provenance (``translate(x, direction[, samples])`` runs the translator):
    features of the target domain where ``evaluation`` is given, pixel errors against the ground truth (paired),
    colour against the target domain's real images (RGB targets), the return trip (``cycle``) and, with
    ``diversity``, the spread of several outputs of one input."""
    src, tgt = (test.a, test.b) if d == "AB" else (test.b, test.a)
    src_labels = test.y if d == "AB" else (test.y if test.paired else test.y_b)
    fakes = translate(src[:n], d)
    info: dict = {"source_domain": d[0], "target_domain": d[1]}
    out, warning = _feature_scores(fakes, src_labels, evaluation, d, n, info) if evaluation else ({}, None)
    if test.paired:
        out.update({f"{d}/{k}": v for k, v in paired_scores(fakes, tgt[:n]).items()})
    if fakes.shape[1] == 3:
        out.update({f"{d}/{k}": v for k, v in colour_scores(fakes, tgt[:n]).items()})
        info["colour"] = f"against {min(n, len(tgt))} real {d[1]} test images"
    if cycle:
        out[f"{d}/cycle_l1"] = cycle_error(src[:n], translate(fakes, "BA" if d == "AB" else "AB"))
    if diversity:
        k_inputs = src[:min(n, DIVERSITY_INPUTS)]
        out[f"{d}/diversity"] = output_diversity(translate(k_inputs, d, DIVERSITY_SAMPLES))
        info["diversity"] = f"{DIVERSITY_SAMPLES} outputs of each of the first {len(k_inputs)} inputs"
    return out, info, warning


def _feature_scores(fakes, src_labels, evaluation: Evaluation, d: str, n: int, info: dict) -> tuple[dict, str | None]:
    """FID, KID, precision/recall and class preservation with the target domain's evaluator (none, and why, when
    the evaluation refuses these translations)."""
    try:
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
    said = scores.get("warnings") or []  # a metric its size guard left out, and why
    return out, "; ".join(f"{d}: {w}" for w in said) or None
