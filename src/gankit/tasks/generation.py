"""Generation: families that draw samples from a prior (the MLP and DCGAN families, conditional GANs, StyleGAN).

Previews are grids of the generator's output on fixed codes (one row per class for a conditional generator with up
to 16 classes), or scatter plots over the data for 2-D points; training-time evaluation scores
``train.eval_samples`` samples, always from the same noise, with the data's evaluator (FID, KID, precision/recall,
...; the 2-D mixture protocol for points), and the best checkpoint has the lowest FID (KID when the
reference is too small for FID, as a user's folder can be).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError
from ..images import save_grid, save_scatter
from ..metrics.evaluate import EvalSettings, Evaluation
from ..metrics.evaluator import default_evaluator
from ..nn.modes import eval_mode
from ..nn.graph import Graph
from ..registry import TASKS
from .base import Asked, Preview, Scored, Task, derive_seed

TOY_POINTS = 1000  # generated points drawn in each 2-D scatter plot
EVAL_CHUNK = 1000  # samples drawn at once for an evaluation


@TASKS.register("generation")
class GenerationTask(Task):
    """A generator (``modules["generator"]``) trained by the model's recipe, previewed and scored by its samples."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.codes = self.labels = None  # the fixed codes (and labels) of every preview
        self.columns = self.cfg.train.grid_rows
        self.real_points = None  # grey dots behind 2-D scatter plots
        self.drawable = False
        self.evaluation: Evaluation | None = None

    @property
    def generator(self) -> nn.Module:
        return self.modules["generator"]

    def validate(self, data, batch_size: int, world: int) -> None:
        """The recipe's checks, and the Keras schedule's halved batches under torchrun."""
        if world > 1 and getattr(self.cfg.recipe, "schedule", "") == "keras" and batch_size % 2:
            raise ConfigError(f"recipe.schedule=keras halves each rank's batch: train.batch_size="
                              f"{self.cfg.train.batch_size} over {world} processes gives an odd {batch_size}; use a "
                              f"batch size divisible by {2 * world}")
        super().validate(data, batch_size, world)

    def averaged(self) -> nn.Module:
        return self.generator

    def describe_run(self) -> list[str]:
        """The model, its latent size and classes, and what training-time evaluation will cost (rank 0 knows)."""
        G, tc = self.generator, self.cfg.train
        k = getattr(G, "num_classes", 0)
        latent = getattr(G, "latent_dim", None)
        lines = [super().describe_run()[0] + (f"; latent size {latent}" if latent else "")
                 + (f", {k} classes (class-conditional)" if k and not self.cfg.data.clusters else "")
                 + (f", conditioned on {k} clusters found in the data (data.clusters)" if k and self.cfg.data.clusters
                    else "")]
        if self.evaluation is not None:  # prepared before the header is printed
            lines.append(f"evaluation: {tc.eval_samples:,} samples every {tc.eval_every:,} steps, against "
                         f"{self.evaluation.reference_info['size']:,} {self.evaluation.reference_info['split']} items")
        return lines

    def setup(self, data, run_dir: Path) -> None:
        """Fixed codes for the previews; 2-D data keeps some real points to draw behind the samples."""
        # images are drawn as grids and 2-D points as scatter plots; other vectors (a table's rows) are not drawn
        self.drawable = data.is_image or tuple(data.sample_shape) == (2,)
        if not self.drawable:
            self.say(f"note: no sample grids: data {self.cfg.data.name!r} holds {data.sample_shape[0]}-d vectors, "
                     "which are neither images nor 2-D points")
        self.codes, self.labels, self.columns = self._preview_codes(data)
        self.real_points = None if data.is_image else data.x[:TOY_POINTS * 2]

    def _preview_codes(self, data) -> tuple[torch.Tensor, torch.Tensor | None, int]:
        """Fixed noise (and labels) for the grids, so successive grids show the same codes; a conditional
        generator's grid has one row per class (up to 16 classes). Returns (codes, labels, columns)."""
        G, rows = self.generator, self.cfg.train.grid_rows
        g = torch.Generator(self.device).manual_seed(derive_seed(self.cfg.train.seed, "preview"))
        k = getattr(G, "num_classes", 0)
        if data.is_image and 2 <= k <= 16:
            labels = torch.arange(k, device=self.device).repeat_interleave(k)  # row i: class i
            return G.sample_latent(k * k, generator=g), labels, k
        n = rows ** 2 if data.is_image else TOY_POINTS
        return G.sample_latent(n, generator=g), G.sample_labels(n, generator=g), rows

    def reference_samples(self, data) -> torch.Tensor | None:
        return data.x[:len(self.codes)]

    def prepare_evaluation(self, data, run_dir: Path) -> None:
        """The evaluator and reference features, or a note saying why there is no evaluation during training."""
        tc = self.cfg.train
        if tc.eval_every == 0 or not self._evaluable():
            return
        settings = EvalSettings(n=tc.eval_samples, evaluator=tc.evaluator, device=str(self.device), partial=True)
        evaluation = Evaluation(self.cfg.data, settings)
        problems = evaluation.size_problems(tc.eval_samples)
        n_ref, split = evaluation.reference_info["size"], evaluation.reference_info["split"]
        if "prdc" in problems:  # nothing worth computing: say which side is too small
            fix = ("raise train.eval_samples" if tc.eval_samples <= n_ref else
                   f"give the data more test items (its reference, {split}, holds {n_ref})")
            raise ConfigError(f"train.eval_samples={tc.eval_samples}: {problems['prdc']}; {fix}, or set "
                              "train.eval_every=0")
        if "fid" in problems and n_ref > tc.eval_samples:  # the setting is what falls short: the user can fix it
            raise ConfigError(f"train.eval_samples={tc.eval_samples}: {problems['fid']}; raise train.eval_samples "
                              "or set train.eval_every=0")
        for note in evaluation.notes:  # a hold-out standing in for test/, an evaluator trained on other data
            self.say(f"note: {note}")
        if "fid" in problems:  # a small reference (a user's folder): the rest is still worth watching
            self.say(f"note: evaluation during training leaves FID out: the reference, {split}, holds only "
                     f"{n_ref} items, and {problems['fid']}; the best checkpoint is picked by KID instead")
        self.evaluation = evaluation

    def _evaluable(self) -> bool:
        data = self.cfg.data
        builtin = data.name == "toy2d" or default_evaluator(data.name, data.domain) is not None
        if self.cfg.train.evaluator is None and not builtin:
            self.say(f"note: no evaluation during training: data {data.name!r} has no built-in evaluator (train one "
                     "with `gankit evaluator train` and set train.evaluator)")
            return False
        return True

    @torch.no_grad()
    def preview(self, path: Path, averaged: nn.Module | None) -> Preview | None:
        """A grid (a scatter plot for 2-D data) of the generator's output on the fixed codes."""
        if not self.drawable:
            return None
        G = averaged or self.generator
        with eval_mode(G):
            out = G(self.codes, self.labels)
        if self.real_points is None:
            return Preview(save_grid(out, path, nrow=self.columns), out)
        return Preview(save_scatter(self.real_points, out, path), out)

    @torch.no_grad()
    def evaluate(self, averaged: nn.Module | None, step: int, source: str) -> Scored | None:
        """``train.eval_samples`` samples from the same noise every time, scored against the test split."""
        if self.evaluation is None:
            return None
        G = averaged or self.generator
        g = torch.Generator(self.device).manual_seed(derive_seed(self.cfg.train.seed, "eval"))
        n = self.cfg.train.eval_samples
        fid = "fid" not in self.evaluation.size_problems(n)
        self.tell(f"evaluating {n:,} samples at step {step} ({'FID, ' if fid else ''}KID, precision/recall, "
                  "modes)...")
        x = torch.cat([G.sample(min(EVAL_CHUNK, n - i), generator=g) for i in range(0, n, EVAL_CHUNK)])  # eval mode
        result = self.evaluation.score(x, source=source)
        return Scored(result, "fid" if "fid" in result else "kid", ("fid", "kid", "precision", "recall", "modes"))

    def score(self, run, asked: Asked) -> tuple[dict, str | int]:
        """The run's samples (truncated in W with ``psi``) scored against the test split; a conditional generator's
        labels (uniform, or by the data's label prior) are drawn here and passed on, so that its samples also get an
        intra-class FID."""
        evaluation = Evaluation(asked.data, asked.opts)
        n = evaluation.default_n()
        suffix = "" if asked.psi is None else f", truncation psi={asked.psi:g}"
        labels = run.generator.sample_labels(n, generator=run.rng(derive_seed(asked.opts.seed, "labels")))
        samples = run.sample(n, seed=asked.opts.seed, labels=labels, psi=asked.psi, progress=asked.opts.progress)
        result = evaluation.score(samples, source=f"{asked.target} (step {run.step}{suffix})", labels=labels)
        if asked.psi is not None:
            result["provenance"]["psi"] = asked.psi
        return result, n

    def used_modules(self) -> tuple[str, ...]:
        return ("generator",)

    def export_graph(self, run, options: dict) -> Graph:
        """The generator's samples from given codes (the generator's own :meth:`~gankit.nn.generator.Generator.graph`:
        StyleGAN adds psi and its noise maps)."""
        return run.generator.graph(options, generator=run.rng(0), name=self.cfg.model.name)

    def usage(self, target: str, data: dict) -> list[str]:
        return [f"gankit sample {target} -n 64 --seed 0 -o samples.{'png' if _drawable(data) else 'npz'}"]

    def card_samples(self, run) -> torch.Tensor | None:
        """64 samples, seed 0 (what the first usage line draws), where they can be drawn."""
        return run.sample(64, seed=0) if _drawable(run.data_info) else None


def _drawable(data: dict) -> bool:
    """Images are drawn as grids and 2-D points as scatter plots; other vectors (a table's rows) are not drawn."""
    return bool(data.get("is_image")) or list(data.get("sample_shape", [])) == [2]
