"""Walking the latent space of a trained generator.

* ``lerp`` / ``slerp``: straight and spherical interpolation between codes. Under a Gaussian prior a straight line
  passes through codes of atypically small norm; slerp (Shoemake 1985, used for GANs by White 2016) keeps the norm.
* ``traversal_grid``: one row per latent dimension, that dimension swept over [-r, r] with the others fixed, to look
  for dimensions that control one visual factor.
* ``arithmetic``: Radford et al. 2016 (sec. 6.3, fig. 7): average the codes of samples that share an attribute, then
  add and subtract the averages. Attributes here are what the evaluator and the pixels can tell without labels: the
  evaluator's class (``7``) and the stroke weight (``thick`` / ``thin``: the top and bottom third of mean ink among
  the samples of that group). ``"7 thick - 7 thin + 3 thin"`` should draw a thick 3.
* ``manifold_grid``: the learned manifold of Kingma & Welling (2014, fig. 4): two latent dimensions set to the
  Gaussian quantiles of an evenly spaced grid in (0, 1), the others at the prior's mean, decoded; for a model with a
  2-D latent space it shows the whole of it.
* ``truncated_normal``: the truncation trick (Brock et al. 2019, sec. 3.1): codes drawn from N(0, I) with every
  coordinate above ``threshold`` in magnitude redrawn; lower thresholds trade variety for fidelity. Small thresholds
  (below 0.1) are drawn directly by the inverse CDF, since redrawing would almost never land inside them.
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn

from ..errors import GankitError

REJECTION_MIN = 0.1  # truncated_normal redraws from this threshold up (>= 8% of draws kept); below, inverse CDF
MAX_REDRAWS = 1000  # rounds of redrawing before the few coordinates left are drawn by the inverse CDF


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(1 - t) a + t b for codes (D,) and weights (T,) -> (T, D)."""
    return (1 - t)[:, None] * a[None] + t[:, None] * b[None]


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation along the great circle from a to b (lerp when they are parallel)."""
    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if omega.abs() < 1e-6:
        return lerp(a, b, t)
    sin = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / sin)[:, None] * a[None] + (torch.sin(t * omega) / sin)[:, None] * b[None]


def truncated_normal(n: int, dim: int, threshold: float, *, generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu") -> torch.Tensor:
    """(n, dim) N(0, I) codes with every coordinate in [-threshold, threshold].

    From ``REJECTION_MIN`` up, coordinates beyond the threshold are redrawn (the classic trick, whose draws earlier
    versions made too), for at most ``MAX_REDRAWS`` rounds; below it, or for what is left after those rounds, the
    truncated normal is drawn directly by its inverse CDF, so a tiny threshold (1e-30) costs one draw, not forever.
    """
    if not (math.isfinite(threshold) and threshold > 0):
        raise GankitError(f"truncation threshold must be a positive, finite number, got {threshold}")
    if threshold < REJECTION_MIN:
        return _inverse_cdf_normal((n, dim), threshold, generator, device)
    z = torch.randn(n, dim, generator=generator, device=device)
    for _ in range(MAX_REDRAWS):
        bad = z.abs() > threshold
        if not bad.any():
            return z
        z[bad] = torch.randn(int(bad.sum()), generator=generator, device=device)
    bad = z.abs() > threshold
    z[bad] = _inverse_cdf_normal((int(bad.sum()),), threshold, generator, device).to(z.dtype)
    return z


def _inverse_cdf_normal(shape: tuple[int, ...], threshold: float, generator: torch.Generator | None,
                        device: torch.device | str) -> torch.Tensor:
    """N(0, 1) truncated to [-threshold, threshold]: Phi^-1 of a uniform on [Phi(-t), Phi(t)], in float64, clamped
    (rounding can land a hair outside) and returned as float32."""
    lo = torch.special.ndtr(torch.tensor(-threshold, dtype=torch.float64))
    u = torch.rand(shape, generator=generator, device=device, dtype=torch.float64)  # (*shape,) in [0, 1)
    z = torch.special.ndtri(lo + u * (1 - 2 * lo))  # Phi(t) - Phi(-t) = 1 - 2 Phi(-t)
    return z.clamp(-threshold, threshold).float()


@torch.no_grad()
def _render(G: nn.Module, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    was_training = G.training
    G.eval()
    try:
        return G(z, labels).cpu()
    finally:
        G.train(was_training)


def _labels_for(G: nn.Module, n: int, label: int | None, device) -> torch.Tensor | None:
    k = getattr(G, "num_classes", 0)
    if not k:
        return None
    if label is not None and not 0 <= label < k:
        raise GankitError(f"--label {label} is not a class of this model: expected 0..{k - 1}")
    return torch.full((n,), 0 if label is None else label, dtype=torch.long, device=device)


def interpolation_grid(G: nn.Module, rows: int = 8, steps: int = 10, spherical: bool = True, *,
                       generator: torch.Generator | None = None, label: int | None = None) -> torch.Tensor:
    """(rows * steps, ...) samples: each row walks from one random code to another."""
    device = next(G.parameters()).device
    ends = G.sample_latent(2 * rows, generator=generator)
    t = torch.linspace(0, 1, steps, device=device)
    walk = slerp if spherical else lerp
    z = torch.cat([walk(ends[2 * i], ends[2 * i + 1], t) for i in range(rows)])  # (rows * steps, D)
    return _render(G, z, _labels_for(G, len(z), label, device))


def walk_between(G: nn.Module, z_a: torch.Tensor, z_b: torch.Tensor, steps: int = 8, spherical: bool = True, *,
                 label: int | None = None) -> torch.Tensor:
    """(steps, ...) samples walking from the code ``z_a`` (D,) to ``z_b`` (D,), both ends included."""
    device = next(G.parameters()).device
    t = torch.linspace(0, 1, steps, device=device)
    z = (slerp if spherical else lerp)(z_a.to(device), z_b.to(device), t)
    return _render(G, z, _labels_for(G, steps, label, device))


def traversal_grid(G: nn.Module, dims: list[int] | None = None, steps: int = 9, radius: float = 3.0, *,
                   generator: torch.Generator | None = None, label: int | None = None) -> torch.Tensor:
    """(len(dims) * steps, ...) samples: row i sweeps latent dimension dims[i] over [-radius, radius]."""
    device = next(G.parameters()).device
    base = G.sample_latent(1, generator=generator)[0]
    dims = list(range(min(G.latent_dim, 10))) if dims is None else dims
    bad = [d for d in dims if not 0 <= d < G.latent_dim]
    if bad:
        raise GankitError(f"latent dimension {bad[0]} does not exist: this generator has 0..{G.latent_dim - 1}")
    values = torch.linspace(-radius, radius, steps, device=device)
    z = base.repeat(len(dims) * steps, 1)
    for row, d in enumerate(dims):
        z[row * steps:(row + 1) * steps, d] = values
    return _render(G, z, _labels_for(G, len(z), label, device))


def manifold_grid(G: nn.Module, steps: int = 20, dims: tuple[int, int] = (0, 1), *,
                  label: int | None = None) -> torch.Tensor:
    """(steps * steps, ...) samples: z[dims] = the N(0, 1) quantiles of a steps x steps grid in (0, 1), other
    coordinates 0; rows follow the first dimension, columns the second."""
    device = next(G.parameters()).device
    if len(dims) != 2 or len(set(dims)) != 2 or not all(0 <= d < G.latent_dim for d in dims):
        raise GankitError(f"need two different latent dimensions in 0..{G.latent_dim - 1}, got {tuple(dims)}")
    if steps < 1:
        raise GankitError(f"steps={steps}: need at least 1 step per side")
    quantiles = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.5 / steps, 1 - 0.5 / steps, steps))
    z = torch.zeros(steps * steps, G.latent_dim, device=device)
    z[:, dims[0]] = quantiles.repeat_interleave(steps).to(device)
    z[:, dims[1]] = quantiles.repeat(steps).to(device)
    return _render(G, z, _labels_for(G, len(z), label, device))


TERM = re.compile(r"\s*([+-]?)\s*(\d+)(?:\s+(thick|thin))?\s*")


def parse_expression(expr: str) -> list[tuple[int, int, str | None]]:
    """'7 thick - 7 thin + 3 thin' -> [(+1, 7, 'thick'), (-1, 7, 'thin'), (+1, 3, 'thin')]."""
    terms, pos = [], 0
    while pos < len(expr):
        m = TERM.match(expr, pos)
        if not m or m.end() == pos:
            raise GankitError(f"cannot read the arithmetic {expr!r} at {expr[pos:]!r}: write terms like "
                              "'7 thick - 7 thin + 3 thin' (a class, optionally thick or thin, joined by + and -)")
        terms.append((-1 if m.group(1) == "-" else 1, int(m.group(2)), m.group(3)))
        pos = m.end()
    if not terms:
        raise GankitError("the arithmetic expression is empty")
    return terms


@torch.no_grad()
def attribute_codes(G: nn.Module, evaluator, n: int = 4000, *, generator: torch.Generator | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw n codes; return (codes, the evaluator's class of each sample, each sample's mean ink)."""
    z = G.sample_latent(n, generator=generator)
    labels = _labels_for(G, n, None, z.device)
    images = torch.cat([_render(G, z[i:i + 500], None if labels is None else labels[i:i + 500])
                        for i in range(0, n, 500)])
    _, probs = evaluator(images)
    ink = (images.flatten(1) + 1).mean(dim=1) / 2  # mean brightness in [0, 1]
    return z, torch.from_numpy(probs.argmax(1)), ink


def _group_mean(z, classes, ink, cls: int, weight: str | None) -> torch.Tensor:
    members = (classes == cls).nonzero().flatten()
    if len(members) < 3:
        share = len(members) / max(len(classes), 1)
        advice = ("the generator may not draw it yet (train longer) or pick another class" if share < 1e-3 else
                  "draw more (-n) or pick another class")  # below 1 in 1,000: more draws hardly help
        raise GankitError(f"only {len(members)} of {len(classes):,} samples look like a {cls} to the evaluator: "
                          f"{advice}")
    if weight is not None:
        order = members[ink[members].argsort()]
        third = max(1, len(order) // 3)
        members = order[-third:] if weight == "thick" else order[:third]
    return z[members.to(z.device)].mean(dim=0)


def arithmetic(G: nn.Module, evaluator, expr: str, *, n: int = 4000, samples: int = 8,
               generator: torch.Generator | None = None, noise: float = 0.25) -> torch.Tensor:
    """A grid: one row per term (samples near that group's mean code), then a row for the result of the
    expression, each with ``samples`` columns of small perturbations (std ``noise``) of the mean code."""
    if getattr(G, "num_classes", 0):
        raise GankitError("latent arithmetic on classes needs an unconditional generator: a conditional one takes "
                          "its class from the label, not the code")
    terms = parse_expression(expr)
    z, classes, ink = attribute_codes(G, evaluator, n, generator=generator)
    means = [_group_mean(z, classes, ink, cls, weight) for _, cls, weight in terms]
    result = sum(sign * m for (sign, _, _), m in zip(terms, means))
    jitter = noise * torch.randn(samples, z.shape[1], generator=generator, device=z.device)
    rows = [m[None] + jitter for m in means + [result]]
    codes = torch.cat(rows)
    return _render(G, codes, _labels_for(G, len(codes), None, codes.device))
