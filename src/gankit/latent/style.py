"""Tools for a StyleGAN generator's W space (see :mod:`gankit.models.stylegan`).

* ``style_groups``: the style layers split into coarse, middle and fine (the paper's 4-8 px, 16-32 px and 64+ px
  at 1024 px; here the resolutions split into thirds: at 32 px, 4-8 / 16 / 32).
* ``mixing_grid``: a row of codes A, a row of codes B, then rows where A takes B's coarse, middle or fine styles
  (Karras et al. 2019, fig. 3).
* ``truncation_grid``: the same codes at several psi (sec. 2.3's truncation trick in W, fig. 8).
* ``w_interpolation_grid``: straight lines between mapped codes in W, where the paper measures interpolations to be
  smoother than in Z (perceptual path length, sec. 4.1).
* ``project``: find styles that reproduce a given image by optimisation (StyleGAN2's projector, sec. 5, in
  outline): start from the mean w, Adam on w with a learning rate that ramps up then down (cosine), Gaussian noise on
  w that decays to 0 over the first ``noise_ramp`` of the steps, and a loss of pixel MSE plus, with an evaluator, the
  squared distance of its features relative to the target's. The noise maps are held at their fixed values.
  ``w_plus`` optimises one w per layer (W+), which fits more closely but leaves the generator's distribution.

Renders use the fixed noise maps (``noise_mode=const``), so a grid's changes come from the styles alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import GankitError
from ..nn.modes import eval_mode, frozen
from ..progress import progress as progress_bar
from ..recipes.base import update
from ..recipes.stylegan import mix_styles

GROUPS = ("coarse", "middle", "fine")


def require_stylegan(G: nn.Module) -> None:
    """Refuse a generator without a W space (anything but StyleGAN)."""
    if not hasattr(G, "synthesis") or not hasattr(G, "w_avg"):
        raise GankitError("this needs a StyleGAN generator (model.name=stylegan): its styles live in W, which "
                          f"a {type(G).__name__} does not have")


@torch.no_grad()
def _render(G: nn.Module, ws: torch.Tensor, batch: int = 500) -> torch.Tensor:
    was_training = G.training
    G.eval()
    try:
        return torch.cat([G.synthesis(ws[i:i + batch], noise_mode="const").clamp(-1, 1).cpu()
                          for i in range(0, len(ws), batch)])
    finally:
        G.train(was_training)


@torch.no_grad()
def _styles(G: nn.Module, z: torch.Tensor, psi: float | None = None) -> torch.Tensor:
    return G.styles(z, psi)


def style_groups(G: nn.Module) -> dict[str, range]:
    """Style-layer indices of the coarse, middle and fine resolutions (two layers per resolution)."""
    require_stylegan(G)
    n = G.levels
    b1, b2 = math.ceil(n / 3), math.ceil(2 * n / 3)
    return {"coarse": range(0, 2 * b1), "middle": range(2 * b1, 2 * b2), "fine": range(2 * b2, 2 * n)}


def take_styles(ws_a: torch.Tensor, ws_b: torch.Tensor, layers: range | list[int]) -> torch.Tensor:
    """ws_a with the styles of ``layers`` taken from ws_b; both (B, L, D)."""
    out = ws_a.clone()
    out[:, list(layers)] = ws_b[:, list(layers)]
    return out


@torch.no_grad()
def mean_w(G: nn.Module, n: int = 10_000, *, generator: torch.Generator | None = None
           ) -> tuple[torch.Tensor, float]:
    """(mean of w over n codes (w_dim,), root mean squared distance of w from it) -- the projector's start and
    noise scale, measured afresh (a generator's running w_avg is only as good as its training was long)."""
    require_stylegan(G)
    z = G.sample_latent(n, generator=generator)
    w = torch.cat([G.mapping(z[i:i + 2000]) for i in range(0, n, 2000)])
    mean = w.mean(dim=0)
    return mean, float((w - mean).square().sum(dim=1).mean().sqrt())


def mixing_grid(G: nn.Module, cols: int = 6, *, generator: torch.Generator | None = None,
                psi: float | None = None) -> tuple[torch.Tensor, list[str]]:
    """(images (rows * cols, C, H, W), row names): rows A, B, then A with B's styles at each non-empty group."""
    require_stylegan(G)
    z_a = G.sample_latent(cols, generator=generator)
    return mix_pair(G, z_a, G.sample_latent(cols, generator=generator), psi)


def mix_pair(G: nn.Module, z_a: torch.Tensor, z_b: torch.Tensor, psi: float | None = None
             ) -> tuple[torch.Tensor, list[str]]:
    """(images, row names) for codes ``z_a`` and ``z_b`` (n, D) each: rows A, B, then A with B's styles at each
    non-empty group."""
    require_stylegan(G)
    ws_a, ws_b = _styles(G, z_a, psi), _styles(G, z_b, psi)
    rows, names = [ws_a, ws_b], ["A", "B"]
    for name, layers in style_groups(G).items():
        if len(layers):
            rows.append(take_styles(ws_a, ws_b, layers))
            names.append(f"A with B's {name} styles (layers {layers.start}-{layers.stop - 1})")
    return _render(G, torch.cat(rows)), names


def truncation_grid(G: nn.Module, psis: list[float], cols: int = 8, *,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """(len(psis) * cols, C, H, W): row i shows the same ``cols`` codes truncated with psis[i] (psi 0: w_avg)."""
    require_stylegan(G)
    ws = _styles(G, G.sample_latent(cols, generator=generator))
    return _render(G, torch.cat([G.truncate(ws, psi) for psi in psis]))


def w_interpolation_grid(G: nn.Module, rows: int = 8, steps: int = 10, *,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """(rows * steps, C, H, W): each row walks a straight line in W between two mapped codes."""
    require_stylegan(G)
    ends = _styles(G, G.sample_latent(2 * rows, generator=generator))[:, 0]  # (2 rows, w_dim)
    t = torch.linspace(0, 1, steps, device=ends.device)[:, None]
    w = torch.cat([torch.lerp(ends[2 * i], ends[2 * i + 1], t) for i in range(rows)])  # (rows * steps, w_dim)
    return _render(G, w[:, None, :].expand(-1, G.num_ws, -1))


@dataclass
class Projection:
    """What :func:`project` found: per-layer styles, their images, and the pixel MSE to each target."""

    ws: torch.Tensor  # (N, num_ws, w_dim), on the CPU
    images: torch.Tensor  # (N, C, H, W) in [-1, 1], on the CPU
    mse: torch.Tensor  # (N,) mean squared pixel error, on the [-1, 1] scale
    losses: list[float]  # the optimised loss (mean over the images) at every step


def project(G: nn.Module, targets: torch.Tensor, *, steps: int = 300, lr: float = 0.1, evaluator=None,
            feature_weight: float = 1.0, w_plus: bool = False, initial_noise: float = 0.05,
            noise_ramp: float = 0.75, crop: int = 0, generator: torch.Generator | None = None,
            progress: bool | None = None) -> Projection:
    """Styles whose images reproduce ``targets`` (N, C, H, W) in [-1, 1] (the generator's own shape). ``crop``: a
    border (the run's ``data.pad``) the evaluator's features leave out, as evaluation does. ``progress``: a bar
    over the steps on stderr (None: on a terminal only)."""
    require_stylegan(G)
    if targets.dim() != 4 or tuple(targets.shape[1:]) != tuple(G.shape):
        raise GankitError(f"images to project must have shape (N, {', '.join(map(str, G.shape))}), got "
                          f"{tuple(targets.shape)}")
    if steps < 1:
        raise GankitError(f"projection needs at least one step, got {steps}")
    device = G.const.device
    targets = targets.to(device, torch.float32)
    w_mean, w_std = mean_w(G, generator=generator)
    w = w_mean.repeat(len(targets), G.num_ws if w_plus else 1, 1).clone().requires_grad_(True)  # (N, layers, w_dim)
    opt = torch.optim.Adam([w], lr=lr, betas=(0.9, 0.999))
    use_features = evaluator is not None and feature_weight > 0
    frozen_nets = (G, evaluator.net.to(device)) if use_features else (G,)
    losses: list[float] = []
    with eval_mode(G), frozen(*frozen_nets):  # gradients flow through the networks to w, never into them
        feature_loss = _feature_loss(evaluator, targets, crop) if use_features else None
        for t in progress_bar(range(steps), desc="project", unit="step", enabled=progress):
            frac = t / steps
            for group in opt.param_groups:
                group["lr"] = lr * _ramp(frac, (t + 1) / steps)
            scale = w_std * initial_noise * max(0.0, 1 - frac / noise_ramp) ** 2
            noise = torch.randn(w.shape, generator=generator, device=device) if scale > 0 else 0.0
            images = G.synthesis(_all_layers(w + scale * noise, G, w_plus), noise_mode="const")
            loss = (images - targets).square().mean(dim=(1, 2, 3))
            if feature_loss is not None:
                loss = loss + feature_weight * feature_loss(images)
            update(opt, loss.sum())
            losses.append(float(loss.detach().mean()))
    ws = _all_layers(w.detach(), G, w_plus)
    images = _render(G, ws)
    mse = (images - targets.cpu()).square().mean(dim=(1, 2, 3))
    return Projection(ws.cpu().contiguous(), images, mse, losses)


def _all_layers(w: torch.Tensor, G: nn.Module, w_plus: bool) -> torch.Tensor:
    """(N, 1, w_dim) -> (N, num_ws, w_dim); W+ codes are one per layer already."""
    return w if w_plus else w.expand(-1, G.num_ws, -1)


def _feature_loss(evaluator, targets: torch.Tensor, crop: int):
    """The evaluator's feature distance to ``targets``, per image and normalised by the targets' feature energy:
    a function of generated images. ``crop`` leaves out the border evaluation leaves out."""
    def features(x: torch.Tensor) -> torch.Tensor:
        if crop:
            x = x[..., crop:x.shape[-2] - crop, crop:x.shape[-1] - crop]
        return evaluator.net.features(evaluator.prepare(x))

    with torch.no_grad():
        target_feats = features(targets)
        target_norm = target_feats.square().mean(dim=1).clamp_min(1e-8)
    return lambda images: (features(images) - target_feats).square().mean(dim=1) / target_norm


def _ramp(frac: float, done: float, rampdown: float = 0.25, rampup: float = 0.05) -> float:
    """StyleGAN2 projector's learning-rate shape at ``frac`` of the steps (``done``: counting this one): linear
    warm-up over the first ``rampup``, cosine fall over the last ``rampdown``."""
    down = min(1.0, (1.0 - frac) / rampdown)
    return (0.5 - 0.5 * math.cos(down * math.pi)) * min(1.0, done / rampup)


def parse_groups(text: str) -> list[str]:
    """'coarse,middle' -> ['coarse', 'middle']; anything else than the three group names is refused."""
    names = [k.strip() for k in text.split(",") if k.strip()]
    if not names or any(k not in GROUPS for k in names):
        raise GankitError(f"--keep {text!r}: expected one or more of {', '.join(GROUPS)}, comma-separated")
    return names


def edit_grid(G: nn.Module, projection: Projection, edits: int = 6, keep: str = "coarse", *,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Per projected image: ``edits`` variants that keep its styles in the ``keep`` group(s) (comma-separated
    names) and take the others from random codes. Returns (N * edits, C, H, W)."""
    groups = style_groups(G)
    kept = sorted({i for k in parse_groups(keep) for i in groups[k]})
    swapped = [i for i in range(G.num_ws) if i not in kept]
    device = G.const.device
    out = []
    for ws in projection.ws.to(device):
        others = _styles(G, G.sample_latent(edits, generator=generator))
        out.append(take_styles(ws[None].expand(edits, -1, -1), others, swapped))
    return _render(G, torch.cat(out))


__all__ = ["GROUPS", "Projection", "edit_grid", "mean_w", "mix_pair", "mix_styles", "mixing_grid", "parse_groups",
           "project", "require_stylegan", "style_groups", "take_styles", "truncation_grid", "w_interpolation_grid"]
