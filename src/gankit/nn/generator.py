"""What every generator shares: the Gaussian prior, uniform labels for class-conditional models, the one-hot
label joined to the code (Mirza & Osindero 2014), and the uniform ``sample`` verb (eval mode, explicit generator).
A family subclasses :class:`Generator`, sets ``latent_dim`` and ``num_classes`` (0: unconditional) and defines
``forward(z, labels=None)``; one whose samples are more than ``forward`` (a clamp) overrides ``generate``, which
``sample`` and an exported graph (``graph``) both compute."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..shard import sharded
from .graph import EXAMPLE_BATCH, Graph, Call, shape_doc, take_options


class Generator(nn.Module):
    """Base class of the generators: codes z (B, latent_dim) [+ labels (B,)] -> samples."""

    latent_dim: int
    num_classes: int = 0

    @property
    def device(self) -> torch.device:
        """Where the weights live."""
        return next(self.parameters()).device

    def join_labels(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """[z, onehot(labels)] for a conditional generator; z itself for an unconditional one."""
        assert z.dim() == 2 and z.shape[1] == self.latent_dim, f"expected (B, {self.latent_dim}), got {z.shape}"
        if not self.num_classes:
            return z
        if labels is None:
            raise ValueError("a conditional generator needs labels")
        return torch.cat([z, F.one_hot(labels, self.num_classes).to(z.dtype)], dim=1)

    def sample_latent(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw n codes from the prior N(0, I)."""
        return sharded(torch.randn, size=(n, self.latent_dim), generator=generator, device=self.device)

    def sample_labels(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor | None:
        """Labels for a conditional generator, uniform or drawn by its label prior (None for an unconditional
        one)."""
        if not self.num_classes:
            return None
        prior = getattr(self, "label_prior", None)
        if prior is None:
            return sharded(torch.randint, self.num_classes, size=(n,), generator=generator, device=self.device)
        u = sharded(torch.rand, size=(n,), generator=generator, device=self.device)  # inverse of the prior's CDF
        return torch.searchsorted(prior.cumsum(0), u, right=True).clamp_(max=self.num_classes - 1)

    def set_label_prior(self, prior: torch.Tensor | list[float] | None) -> None:
        """Draw labels by these shares (``data.clusters``: the clusters' sizes) instead of uniformly; None: uniform.
        The prior is no weight: checkpoints keep it with the data's description, and :func:`give_label_prior`
        restores it."""
        if prior is None:
            self._buffers.pop("label_prior", None)
            return
        prior = torch.as_tensor(prior, dtype=torch.float32)
        if prior.shape != (self.num_classes,):
            raise ValueError(f"a label prior needs {self.num_classes} shares, one per class; got {tuple(prior.shape)}")
        self.register_buffer("label_prior", (prior / prior.sum()).to(self.device), persistent=False)

    @torch.no_grad()
    def sample(self, n: int, *, labels: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """n samples (images in [-1, 1]) drawn in eval mode; labels default to uniform ones for a conditional
        generator and are ignored by an unconditional one."""
        was_training = self.training
        self.eval()
        try:
            z = self.sample_latent(n, generator=generator)
            if labels is None:
                labels = self.sample_labels(n, generator=generator)
            return self.generate(z, labels)
        finally:
            self.train(was_training)

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Samples from given codes z (B, latent_dim) [and labels (B,)], as :meth:`sample` computes them: what an
        exported graph computes (a family whose samples are more than ``forward`` overrides this)."""
        return self(z, labels if self.num_classes else None)

    def graph(self, options: dict, *, generator: torch.Generator | None = None, name: str = "generator") -> Graph:
        """The exported form of :meth:`generate` (in eval mode): inputs ``z`` [and ``label``], output ``images``
        (``samples`` for vectors); a plain generator takes no options (``name``: the model's, for the message)."""
        take_options(options, {}, name)
        inputs = {"z": self.sample_latent(EXAMPLE_BATCH, generator=generator)}
        docs = {"z": shape_doc((self.latent_dim,), "float32", "codes drawn from N(0, I)")}
        if self.num_classes:
            inputs["label"] = self.sample_labels(EXAMPLE_BATCH, generator=generator)
            docs["label"] = f"(B,) int64, class labels in 0..{self.num_classes - 1}"
        output, described = _output_doc(self, inputs)
        return Graph(Call(self.eval(), "generate"), inputs, output, {**docs, **described})


def give_label_prior(modules: dict[str, nn.Module], prior: torch.Tensor | list[float] | None) -> None:
    """Set the data's label prior (see :meth:`Generator.set_label_prior`) on the generators among ``modules``;
    nothing when there is none."""
    if prior is None:
        return
    for module in modules.values():
        if isinstance(module, Generator) and module.num_classes:
            module.set_label_prior(prior)


def _output_doc(G: nn.Module, inputs: dict[str, torch.Tensor]) -> tuple[str, dict[str, str]]:
    """The output's name and description, from the shape of G's samples: images (B, C, H, W) or vectors."""
    with torch.no_grad():
        shape = tuple(G.generate(*inputs.values()).shape[1:])
    if len(shape) == 3:
        return "images", {"images": shape_doc(shape, "float32", "images in [-1, 1]")}
    return "samples", {"samples": shape_doc(shape, "float32", "samples in the data's units")}
