"""Scores of an autoencoder on held-out data: reconstruction error, and for a VAE the test loss and the
importance-weighted log-likelihood bound (Burda et al. 2016) with k samples.

* ``recon_mse`` and ``recon_psnr`` (dB, of the pooled MSE; ``recon_psnr_per_image`` averaged over images) compare
  decode(encode(x)) with x, in the [-1, 1] scale of the data;
* ``test_loss``: the negative ELBO per image with one z per image, the number the PyTorch VAE example prints
  (a Bernoulli decoder on grey images makes it a cross-entropy, not a likelihood);
* ``nll``: -L_k in nats per image, with k = ``k`` (5,000 in the published protocol) on binary images: the test split
  is binarised once with a fixed seed (x_i white with probability (x_i + 1) / 2), as for dynamically binarised MNIST.
"""

from __future__ import annotations

import torch

from .likelihood import estimate_nll
from .reconstruction import mse, psnr, psnr_per_image

BINARIZE_SEED = 20_240_603


@torch.no_grad()
def reconstruct_all(model, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """decode(encode(x)) of every sample, in eval mode, batch by batch, on the CPU."""
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        return torch.cat([model.reconstruct(x[i:i + batch_size].to(device)).cpu()
                          for i in range(0, len(x), batch_size)])
    finally:
        model.train(was_training)


def reconstruction_scores(model, x: torch.Tensor) -> dict:
    """MSE and PSNR of the model's reconstructions of ``x``."""
    recon = reconstruct_all(model, x)
    per_image = psnr_per_image(recon, x)
    return {"recon_mse": mse(recon, x), "recon_psnr": psnr(recon, x),
            "recon_psnr_per_image": float(per_image[per_image.isfinite()].mean())}


def binarize_fixed(x: torch.Tensor, seed: int = BINARIZE_SEED) -> torch.Tensor:
    """Images in [-1, 1] -> {-1, 1}, drawn once from a fixed seed (the same test set for every model)."""
    u = torch.rand(x.shape, generator=torch.Generator().manual_seed(seed))
    return torch.where(u < (x + 1) / 2, 1.0, -1.0)


def vae_scores(model, x: torch.Tensor, *, k: int = 1, binarize: bool = False, seed: int = 0,
               progress: bool | None = None) -> dict:
    """The test loss (k = 1) and, when k > 1, the IWAE bound's NLL, both in nats per image (``progress``: a bar
    over the IWAE bound's batches, the long part; None: on a terminal)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    x = binarize_fixed(x) if binarize else x
    g = torch.Generator(device).manual_seed(seed)
    try:
        single = estimate_nll(_OnDevice(model, device), x, k=1, generator=g)
        out = {"test_loss": single["elbo_nll"], "binarized": binarize, "n": len(x)}
        if k > 1:
            bound = estimate_nll(_OnDevice(model, device), x, k=k, batch_size=100, chunk=max(1, 50_000 // 100),
                                 generator=g, progress=progress)
            out.update({"nll": bound["nll"], "elbo_nll": bound["elbo_nll"], "k": k})
        return out
    finally:
        model.train(was_training)


class _OnDevice:
    """Moves each batch to the model's device before asking for log weights."""

    def __init__(self, model, device: torch.device) -> None:
        self.model, self.device = model, device

    def log_weights(self, x: torch.Tensor, k: int, *, generator=None) -> torch.Tensor:
        return self.model.log_weights(x.to(self.device), k, generator=generator)
