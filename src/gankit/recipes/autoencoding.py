"""The autoencoding recipe: one gradient step on a reconstruction objective, for autoencoders and VAEs.

* A plain autoencoder (``mlp_ae``, ``conv_ae``) minimises ``loss`` (mse, l1 or bce) between decode(encode(x~)) and x,
  where x~ is x itself or, for a denoising autoencoder (Vincent et al. 2008), x with Gaussian noise of std ``noise``
  and/or a share ``mask`` of its values set to black (masking noise), clipped to [-1, 1].
* A VAE (``vae``) minimises the negative ELBO per image, -log p(x|z) + beta_t KL(q(z|x) || p(z)) with one
  reparameterised z per image (Kingma & Welling 2014, eq. 10); beta_t = ``beta`` (Higgins et al. 2017) times a KL
  warm-up that rises linearly from 0 over ``kl_warmup`` steps (Sonderby et al. 2016). ``binarize`` draws a fresh
  binary image x_i ~ Bernoulli((x_i + 1) / 2) at every step (dynamic binarisation, as in the IWAE paper).

Logs (tensors, no host sync): ``loss``; for a VAE also ``recon`` (-log p(x|z)), ``kl`` and ``elbo`` (with beta = 1),
per image in nats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ..config import MAX_STEPS, MAX_WEIGHT, OptimConfig, check_range
from ..errors import ConfigError
from ..losses.reconstruction import gaussian_kl, reconstruction_loss, reparameterize, to_unit
from ..registry import RECIPES
from ..shard import sharded
from .base import Recipe, update
from .optim import adam


@dataclass
class AutoencodingConfig:
    """What the reconstruction objective is."""

    name: str = "autoencoding"
    loss: Literal["mse", "l1", "bce"] = "mse"  # plain autoencoders; a VAE uses its decoder's likelihood
    noise: float = 0.0  # denoising: std of Gaussian noise added to the input (images in [-1, 1])
    mask: float = 0.0  # denoising: share of input values set to -1 (black)
    beta: float = 1.0  # VAE: weight of the KL term (beta-VAE when > 1)
    kl_warmup: int = 0  # VAE: steps over which the KL weight rises linearly from 0 to beta
    binarize: bool = False  # VAE: dynamic binarisation of the inputs (Bernoulli decoders)

    def __post_init__(self) -> None:
        # noise is a standard deviation added to images in [-1, 1]: at 10 nothing of the image is left
        check_range("recipe.noise", self.noise, 0.0, 10.0)
        check_range("recipe.mask", self.mask, 0.0, 1.0, open_hi=True)
        check_range("recipe.beta", self.beta, 0.0, MAX_WEIGHT)
        check_range("recipe.kl_warmup", self.kl_warmup, 0, MAX_STEPS)


class AutoencodingRecipe(Recipe):
    """One optimizer (``optim.lr_g``, betas and eps of the optim section) over the autoencoder's parameters."""

    lr_keys = {"generator": "lr_g"}

    def __init__(self, cfg: AutoencodingConfig, modules: dict[str, torch.nn.Module], optim: OptimConfig) -> None:
        self.cfg = cfg
        self.model = modules.get("generator")
        if self.model is None or not hasattr(self.model, "encode"):
            raise ConfigError("recipe.name=autoencoding needs an autoencoder model (mlp_ae, conv_ae or vae)")
        self.is_vae = bool(getattr(self.model, "has_prior", False))
        self.updates = 0
        self.optimizers = {"generator": adam(self.model.parameters(), optim.lr_g, optim)}

    def validate(self, data, batch_size: int) -> None:
        """Refuse settings that do not fit the data or the model, before training starts."""
        cfg = self.cfg
        if self.is_vae and (cfg.noise or cfg.mask):
            raise ConfigError("recipe.noise and recipe.mask (denoising) are for plain autoencoders, not a VAE")
        if cfg.binarize and getattr(self.model, "likelihood", "") != "bernoulli":
            raise ConfigError("recipe.binarize=true needs a VAE with model.likelihood=bernoulli")
        if (cfg.binarize or cfg.loss == "bce" or getattr(self.model, "likelihood", "") == "bernoulli") \
                and not data.is_image:
            raise ConfigError(f"data {data.name!r} holds vectors, not images in [-1, 1]: use recipe.loss=mse (or "
                              "model.likelihood=gaussian for a VAE)")

    def state_dict(self) -> dict:
        """The update count that times the KL warm-up."""
        return {"updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""
        self.updates = int(state.get("updates", 0))

    def kl_weight(self) -> float:
        """beta times the warm-up factor at the current update."""
        if not self.cfg.kl_warmup:
            return self.cfg.beta
        return self.cfg.beta * min(1.0, self.updates / self.cfg.kl_warmup)

    def step(self, batches, noise: torch.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        """One update on a batch; returns detached scalar tensors."""
        x, _ = batches.next(batch_size)
        logs = self._vae_loss(x, noise) if self.is_vae else self._ae_loss(x, noise)
        update(self.optimizers["generator"], logs["loss"])
        self.updates += 1
        return {k: v.detach() for k, v in logs.items()}

    def _ae_loss(self, x: torch.Tensor, noise: torch.Generator) -> dict[str, torch.Tensor]:
        out = self.model.reconstruct(corrupt(x, self.cfg.noise, self.cfg.mask, noise)).float()  # fp32 loss
        return {"loss": reconstruction_loss(self.cfg.loss, out, x).mean()}

    def _vae_loss(self, x: torch.Tensor, noise: torch.Generator) -> dict[str, torch.Tensor]:
        if self.cfg.binarize:
            x = binarize(x, noise)
        mu, logvar = (t.float() for t in self.model.posterior(x))  # fp32 losses under train.precision=bf16
        z = reparameterize(mu, logvar, noise)
        recon = -self.model.log_likelihood(self.model.decoder_output(z).float(), x)  # (B,)
        kl = gaussian_kl(mu, logvar)  # (B,)
        loss = (recon + self.kl_weight() * kl).mean()
        return {"loss": loss, "recon": recon.mean(), "kl": kl.mean(), "elbo": -(recon + kl).mean()}


def corrupt(x: torch.Tensor, std: float, mask: float, noise: torch.Generator) -> torch.Tensor:
    """x with Gaussian noise of ``std`` and a share ``mask`` of values set to -1, clipped to [-1, 1]."""
    if std:
        x = (x + std * sharded(torch.randn, size=tuple(x.shape), generator=noise, device=x.device)).clamp(-1, 1)
    if mask:
        keep = sharded(torch.rand, size=tuple(x.shape), generator=noise, device=x.device) >= mask
        x = torch.where(keep, x, torch.full_like(x, -1.0))
    return x


def binarize(x: torch.Tensor, noise: torch.Generator) -> torch.Tensor:
    """Images in [-1, 1] -> binary images in {-1, 1}, pixel i white with probability (x_i + 1) / 2."""
    u = sharded(torch.rand, size=tuple(x.shape), generator=noise, device=x.device)
    return torch.where(u < to_unit(x), 1.0, -1.0).to(x.dtype)


RECIPES.register("autoencoding", config=AutoencodingConfig)(AutoencodingRecipe)
