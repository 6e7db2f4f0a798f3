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
  ``w_plus`` optimises one w per layer (W+), which fits more closely but leaves the generator's distribution;
  ``starts`` > 1 also starts from mapped random codes and keeps, per image, the start that ends with the lower loss
  (a digit far from the mean image, such as a thin 1, can settle in a poor minimum from the mean w alone).
* ``mixing_classes``: whether the style groups mean something, as a number: over pairs of codes whose images a
  classifier labels differently, how often A with B's coarse styles takes B's class, and how often A with B's fine
  styles keeps A's.
* ``path_length``: perceptual path length in W (Karras et al. 2019, sec. 4.1), with a classifier's features in
  place of the paper's VGG/LPIPS distance.

Renders use the fixed noise maps (``noise_mode=const``), so a grid's changes come from the styles alone. For a
class-conditional StyleGAN every random code comes with a uniform label drawn after it from the same generator (as
``sample`` draws them), so W means the same here as in training: the styles of all classes.
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
def _styles(G: nn.Module, z: torch.Tensor, psi: float | None = None, labels: torch.Tensor | None = None
            ) -> torch.Tensor:
    if getattr(G, "num_classes", 0) and labels is None:
        raise GankitError("a class-conditional StyleGAN maps a code with its label: give the labels")
    return G.styles(z, psi, labels=labels)


@torch.no_grad()
def _random_styles(G: nn.Module, n: int, generator: torch.Generator | None, psi: float | None = None
                   ) -> torch.Tensor:
    """Styles (n, num_ws, w_dim) of n codes drawn from the prior (with uniform labels, drawn after them, for a
    conditional generator)."""
    z = G.sample_latent(n, generator=generator)
    return G.styles(z, psi, labels=G.sample_labels(n, generator=generator))


@torch.no_grad()
def _random_w(G: nn.Module, n: int, generator: torch.Generator | None) -> torch.Tensor:
    """w (n, w_dim) of n codes drawn as :func:`_random_styles` draws them, untruncated."""
    return _random_styles(G, n, generator)[:, 0]


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
    labels = G.sample_labels(n, generator=generator)
    w = torch.cat([G.mapping(z[i:i + 2000], None if labels is None else labels[i:i + 2000])
                   for i in range(0, n, 2000)])
    mean = w.mean(dim=0)
    return mean, float((w - mean).square().sum(dim=1).mean().sqrt())


def mixing_grid(G: nn.Module, cols: int = 6, *, generator: torch.Generator | None = None,
                psi: float | None = None) -> tuple[torch.Tensor, list[str]]:
    """(images (rows * cols, C, H, W), row names): rows A, B, then A with B's styles at each non-empty group."""
    require_stylegan(G)
    z_a = G.sample_latent(cols, generator=generator)
    labels_a = G.sample_labels(cols, generator=generator)
    z_b = G.sample_latent(cols, generator=generator)
    return mix_pair(G, z_a, z_b, psi, labels=(labels_a, G.sample_labels(cols, generator=generator)))


def mix_pair(G: nn.Module, z_a: torch.Tensor, z_b: torch.Tensor, psi: float | None = None,
             labels: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None)) -> tuple[torch.Tensor, list[str]]:
    """(images, row names) for codes ``z_a`` and ``z_b`` (n, D) each (and their ``labels`` (n,) each, which a
    conditional generator needs): rows A, B, then A with B's styles at each non-empty group."""
    require_stylegan(G)
    ws_a, ws_b = _styles(G, z_a, psi, labels[0]), _styles(G, z_b, psi, labels[1])
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
    ws = _random_styles(G, cols, generator)
    return _render(G, torch.cat([G.truncate(ws, psi) for psi in psis]))


def w_interpolation_grid(G: nn.Module, rows: int = 8, steps: int = 10, *,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """(rows * steps, C, H, W): each row walks a straight line in W between two mapped codes."""
    require_stylegan(G)
    ends = _random_w(G, 2 * rows, generator)  # (2 rows, w_dim)
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
            noise_ramp: float = 0.75, crop: int = 0, starts: int = 1, generator: torch.Generator | None = None,
            progress: bool | None = None) -> Projection:
    """Styles whose images reproduce ``targets`` (N, C, H, W) in [-1, 1] (the generator's own shape). ``crop``: a
    border (the run's ``data.pad``) the evaluator's features leave out, as evaluation does. ``starts``: how many
    starting points per image (the mean w, then mapped random codes), optimised side by side, the one with the lowest
    final loss kept; ``losses`` then follows the kept starts. ``progress``: a bar over the steps on stderr (None: on a
    terminal only)."""
    require_stylegan(G)
    if targets.dim() != 4 or tuple(targets.shape[1:]) != tuple(G.shape):
        raise GankitError(f"images to project must have shape (N, {', '.join(map(str, G.shape))}), got "
                          f"{tuple(targets.shape)}")
    if steps < 1:
        raise GankitError(f"projection needs at least one step, got {steps}")
    if starts < 1:
        raise GankitError(f"projection needs at least one start per image, got {starts}")
    device = G.const.device
    n = len(targets)
    targets = targets.to(device, torch.float32).repeat(starts, 1, 1, 1)  # start k of image i at row k * n + i
    w_mean, w_std = mean_w(G, generator=generator)
    w0 = w_mean.expand(n, -1)
    if starts > 1:
        with torch.no_grad():
            w0 = torch.cat([w0, _random_w(G, n * (starts - 1), generator)])
    w = w0[:, None].repeat(1, G.num_ws if w_plus else 1, 1).clone().requires_grad_(True)  # (N * starts, layers, w_dim)
    opt = torch.optim.Adam([w], lr=lr, betas=(0.9, 0.999))
    use_features = evaluator is not None and feature_weight > 0
    frozen_nets = (G, evaluator.net.to(device)) if use_features else (G,)
    history: list[torch.Tensor] = []  # the loss of every row (image and start) at every step
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
            history.append(loss.detach())
        ws = _all_layers(w.detach(), G, w_plus)
        keep = torch.arange(n, device=device)
        if starts > 1:  # per image, the start whose final loss (without the optimiser's noise) is the lowest
            with torch.no_grad():
                images = G.synthesis(ws, noise_mode="const")
                final = (images - targets).square().mean(dim=(1, 2, 3))
                if feature_loss is not None:
                    final = final + feature_weight * feature_loss(images)
            keep = keep + n * final.view(starts, n).argmin(dim=0)
    ws = ws[keep]
    images = _render(G, ws)
    mse = (images - targets[keep].cpu()).square().mean(dim=(1, 2, 3))
    losses = [float(h[keep].mean()) for h in history]
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
        others = _random_styles(G, edits, generator)
        out.append(take_styles(ws[None].expand(edits, -1, -1), others, swapped))
    return _render(G, torch.cat(out))


@torch.no_grad()
def mixing_classes(G: nn.Module, classify, pairs: int = 2000, *, psi: float | None = None, batch: int = 500,
                   max_draws: int | None = None, generator: torch.Generator | None = None) -> dict:
    """Do the style groups mean something? Pairs of codes (A, B) are drawn until ``pairs`` of them have images that
    ``classify`` (images (N, C, H, W) in [-1, 1] -> labels (N,)) labels differently; for each group, A is drawn with
    B's styles in that group, and the result gives the share of those images labelled B's class (``{group}_takes_b``)
    and A's class (``{group}_keeps_a``). Where coarse styles carry the digit and fine ones the strokes, coarse_takes_b
    and fine_keeps_a are both near 1. Also: ``pairs``, ``drawn`` (codes drawn: pairs with equal labels are skipped;
    at most ``max_draws``, 20 x ``pairs`` by default) and ``differ`` (the share of drawn pairs whose labels differ).
    Renders use the fixed noise maps, as the grids do."""
    require_stylegan(G)
    if pairs < 1:
        raise GankitError(f"mixing_classes needs at least one pair, got {pairs}")
    limit = max_draws or 20 * pairs
    groups = {name: layers for name, layers in style_groups(G).items() if len(layers)}
    hits = {f"{name}_{what}": 0 for name in groups for what in ("takes_b", "keeps_a")}
    found = drawn = unlike = 0
    while found < pairs and drawn < limit:
        k = min(batch, limit - drawn)
        ws_a = _random_styles(G, k, generator, psi)
        ws_b = _random_styles(G, k, generator, psi)
        drawn += k
        label_a, label_b = _labels(classify, _render(G, ws_a)), _labels(classify, _render(G, ws_b))
        differ = (label_a != label_b).nonzero().flatten()
        unlike += len(differ)
        differ = differ[:pairs - found]
        if not len(differ):
            continue
        found += len(differ)
        rows = differ.to(ws_a.device)
        ws_a, ws_b, label_a, label_b = ws_a[rows], ws_b[rows], label_a[differ], label_b[differ]
        for name, layers in groups.items():
            mixed = _labels(classify, _render(G, take_styles(ws_a, ws_b, layers)))
            hits[f"{name}_takes_b"] += int((mixed == label_b).sum())
            hits[f"{name}_keeps_a"] += int((mixed == label_a).sum())
    if not found:
        raise GankitError(f"no two of {drawn} drawn images were labelled differently: the generator draws one class")
    return {"pairs": found, "drawn": drawn, "differ": round(unlike / drawn, 4),
            **{key: round(value / found, 4) for key, value in hits.items()}}


def _labels(classify, images: torch.Tensor) -> torch.Tensor:
    labels = torch.as_tensor(classify(images))
    return labels.cpu().long().flatten()


@torch.no_grad()
def path_length(G: nn.Module, features, n: int = 2000, *, eps: float = 1e-4, batch: int = 250,
                generator: torch.Generator | None = None) -> dict:
    """Perceptual path length in W over full paths (Karras et al. 2019, sec. 4.1): for codes z1, z2 and t ~ U(0, 1),
    the distance between the images at lerp(w1, w2, t) and lerp(w1, w2, t + eps), divided by eps^2, with the fixed
    noise maps. The distance here is the squared Euclidean one between unit-normalised ``features`` (images (N, C, H,
    W) in [-1, 1] -> (N, F)), a classifier's, where the paper uses LPIPS on VGG features (not available offline).
    Returns the mean over the samples between their 1st and 99th percentiles (StyleGAN2's filter of outliers:
    ``ppl``), the plain mean, and the median. Lower: images change evenly along lines in W."""
    require_stylegan(G)
    if n < 1:
        raise GankitError(f"path_length needs at least one sample, got {n}")
    values = []
    for start in range(0, n, batch):
        k = min(batch, n - start)
        w1, w2 = _random_w(G, k, generator), _random_w(G, k, generator)
        t = torch.rand(k, 1, generator=generator, device=w1.device)
        ends = torch.cat([torch.lerp(w1, w2, t), torch.lerp(w1, w2, t + eps)])  # (2k, w_dim)
        images = _render(G, ends[:, None, :].expand(-1, G.num_ws, -1))
        f = torch.as_tensor(features(images)).double()
        f = f / f.norm(dim=1, keepdim=True).clamp_min(1e-12)
        values.append((f[:k] - f[k:]).square().sum(dim=1) / eps ** 2)
    d = torch.cat(values)
    lo, hi = torch.quantile(d, 0.01), torch.quantile(d, 0.99)
    kept = d[(d >= lo) & (d <= hi)]
    return {"ppl": round(float(kept.mean()), 4), "mean": round(float(d.mean()), 4),
            "median": round(float(d.median()), 4), "samples": len(d), "eps": eps}


__all__ = ["GROUPS", "Projection", "edit_grid", "mean_w", "mix_pair", "mix_styles", "mixing_classes",
           "mixing_grid", "parse_groups", "path_length", "project", "require_stylegan", "style_groups", "take_styles",
           "truncation_grid", "w_interpolation_grid"]
