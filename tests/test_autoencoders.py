"""Autoencoders and VAEs: the terms against closed forms, the bound ordering on a model whose likelihood is known,
the family contracts, the recipe and the trainer's handling of them."""

from __future__ import annotations

import json
import math

import pytest
import torch

import gankit
from gankit.config import DataConfig
from gankit.data import load_dataset
from gankit.errors import ConfigError, GankitError
from gankit.losses.reconstruction import (bernoulli_log_likelihood, gaussian_kl, gaussian_log_likelihood,
                                          reparameterize)
from gankit.metrics.autoencoding import binarize_fixed, reconstruction_scores, vae_scores
from gankit.metrics.likelihood import estimate_nll
from gankit.models import build_models
from gankit.models.vae import VAE, VAEConfig
from gankit.recipes.autoencoding import binarize, corrupt
from gankit.train import checkpoint as ckpt
from gankit.train import latest_checkpoint

AE_TINY = ["train.batch_size=32", "train.progress=false", "train.eval_every=0", "optim.lr_g=1e-3",
           "optim.beta1=0.9"]


# -- the VAE's terms --------------------------------------------------------------------------------------------

def test_gaussian_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(4), torch.ones(4))
    expected = torch.distributions.kl_divergence(q, p).sum(1)
    assert torch.allclose(gaussian_kl(mu, logvar), expected, atol=1e-5, rtol=1e-5)
    assert gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)).abs().max() < 1e-7  # q = p


def test_reparameterisation_gradients_are_the_closed_form():
    mu = torch.tensor([[0.3, -1.0]], requires_grad=True)
    logvar = torch.tensor([[0.2, -0.6]], requires_grad=True)
    g = torch.Generator().manual_seed(1)
    z = reparameterize(mu, logvar, g)
    eps = torch.randn(1, 2, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(z, mu + torch.exp(0.5 * logvar) * eps)
    z.sum().backward()
    assert torch.allclose(mu.grad, torch.ones(1, 2))  # dz/dmu = 1
    assert torch.allclose(logvar.grad, 0.5 * torch.exp(0.5 * logvar.detach()) * eps, atol=1e-6)


def test_likelihood_terms_against_torch_distributions():
    g = torch.Generator().manual_seed(2)
    logits, target = torch.randn(3, 1, 2, 2, generator=g), (torch.rand(3, 1, 2, 2, generator=g) > 0.5).float()
    expected = torch.distributions.Bernoulli(logits=logits).log_prob(target).flatten(1).sum(1)
    assert torch.allclose(bernoulli_log_likelihood(logits, target), expected, atol=1e-5)
    mean, x, log_sigma = torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g), torch.tensor(-0.3)
    expected = torch.distributions.Normal(mean, log_sigma.exp()).log_prob(x).sum(1)
    assert torch.allclose(gaussian_log_likelihood(mean, x, log_sigma), expected, atol=1e-5)


def _linear_gaussian_vae(exact_posterior: bool) -> tuple[VAE, torch.distributions.MultivariateNormal]:
    """x = W z + b + sigma * noise with orthogonal columns of W: p(x) is N(b, W W^T + sigma^2 I) and the exact
    posterior is Gaussian with a diagonal covariance, so a linear encoder can represent it exactly."""
    d, D, sigma = 2, 4, 0.5
    W = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 0.0], [0.0, 1.0]])  # orthogonal columns
    b = torch.tensor([0.1, -0.2, 0.3, 0.0])
    vae = VAE(VAEConfig(hidden=[], latent_dim=d, likelihood="gaussian"), (D,))
    enc, dec = vae.encoder[-1], vae.decoder[0]
    with torch.no_grad():
        dec.weight.copy_(W)
        dec.bias.copy_(b)
        vae.log_sigma.fill_(math.log(sigma))
        precision = torch.eye(d) + W.T @ W / sigma ** 2  # diagonal
        cov = torch.linalg.inv(precision)
        A = cov @ W.T / sigma ** 2  # posterior mean = A (x - b)
        if not exact_posterior:
            A, cov = 0.7 * A, 2.0 * cov
        enc.weight.zero_()
        enc.weight[:d] = A
        enc.bias[:d] = -A @ b
        enc.bias[d:] = torch.log(torch.diagonal(cov))
    marginal = torch.distributions.MultivariateNormal(b, W @ W.T + sigma ** 2 * torch.eye(D))
    return vae, marginal


def _draw(marginal, n: int, seed: int) -> torch.Tensor:
    """n points from the marginal, from a seeded generator."""
    eps = torch.randn(n, marginal.loc.shape[0], generator=torch.Generator().manual_seed(seed))
    return marginal.loc + eps @ marginal.scale_tril.T


def test_elbo_below_iwae_below_exact_log_likelihood():
    vae, marginal = _linear_gaussian_vae(exact_posterior=False)
    x = _draw(marginal, 64, seed=10)
    log_px = float(marginal.log_prob(x).mean())
    g = torch.Generator().manual_seed(3)
    one = estimate_nll(vae, x, k=1000, chunk=250, generator=g)
    five = estimate_nll(vae, x, k=5, generator=g)
    elbo, iwae5, iwae1000 = -one["elbo_nll"], -five["nll"], -one["nll"]
    assert elbo < iwae5 < iwae1000 <= log_px + 0.01
    assert log_px - iwae1000 < 0.05  # L_k tends to log p(x)
    assert log_px - elbo > 0.1  # a poor posterior leaves a real gap


def test_exact_posterior_makes_every_bound_exact():
    vae, marginal = _linear_gaussian_vae(exact_posterior=True)
    x = _draw(marginal, 32, seed=11)
    lw = vae.log_weights(x, 7, generator=torch.Generator().manual_seed(4))  # (7, 32)
    assert lw.shape == (7, 32)
    assert torch.allclose(lw, marginal.log_prob(x).expand(7, -1), atol=1e-4)  # every weight is p(x)


# -- family contracts ------------------------------------------------------------------------------------------

FAMILIES = [("mlp_ae", {"hidden": [16], "bottleneck": 3}), ("conv_ae", {"width": 4, "bottleneck": 3}),
            ("vae", {"hidden": [16], "latent_dim": 3}), ("vae", {"arch": "conv", "width": 4, "latent_dim": 3}),
            ("vae", {"hidden": [16], "latent_dim": 3, "likelihood": "gaussian"})]


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("name,extra", FAMILIES)
def test_family_shapes_and_ranges(name, extra, shape):
    cfg = gankit.load_config(None, overrides=[f"model.name={name}"] + [f"model.{k}={v}" for k, v in extra.items()])
    model = build_models(cfg.model, shape, 0, seed=0)["generator"]
    x = torch.rand(5, *shape) * 2 - 1
    z = model.encode(x)
    assert z.shape == (5, 3)
    out = model.reconstruct(x)
    assert out.shape == (5, *shape) and out.min() >= -1 and out.max() <= 1
    assert model(torch.randn(5, 3)).shape == (5, *shape)
    if model.has_prior:
        assert model.sample(4, generator=torch.Generator().manual_seed(0)).shape == (4, *shape)
    else:
        with pytest.raises(GankitError, match="no prior"):
            model.sample(4)


def test_mlp_autoencoder_on_vectors_is_linear_out():
    cfg = gankit.load_config(None, overrides=["model.name=mlp_ae", "model.hidden=[8]", "model.bottleneck=1"])
    model = build_models(cfg.model, (2,), 0, seed=0)["generator"]
    assert not model.squash  # points are not squashed into [-1, 1]
    assert model.reconstruct(torch.randn(3, 2)).shape == (3, 2)


def test_conv_needs_halvable_square_images():
    with pytest.raises(ConfigError, match="data.size"):
        cfg = gankit.load_config(None, overrides=["model.name=conv_ae"])
        build_models(cfg.model, (1, 7, 7), 0, seed=0)
    with pytest.raises(ConfigError, match="mlp_ae"):
        build_models(cfg.model, (2,), 0, seed=0)


# -- recipe ----------------------------------------------------------------------------------------------------

def test_corruption_statistics():
    g = torch.Generator().manual_seed(5)
    x = torch.zeros(200, 1, 28, 28)
    masked = corrupt(x, 0.0, 0.3, g)
    assert abs(float((masked == -1).float().mean()) - 0.3) < 0.01
    noisy = corrupt(x, 0.2, 0.0, g)
    assert abs(float(noisy.std()) - 0.2) < 0.005 and noisy.abs().max() <= 1
    assert torch.equal(corrupt(x, 0.0, 0.0, g), x)


def test_binarisation_keeps_the_mean_intensity():
    x = torch.full((100, 1, 28, 28), 0.4)  # intensity (0.4 + 1) / 2 = 0.7
    b = binarize(x, torch.Generator().manual_seed(6))
    assert set(b.unique().tolist()) == {-1.0, 1.0}
    assert abs(float((b == 1).float().mean()) - 0.7) < 0.01
    assert torch.equal(binarize_fixed(x), binarize_fixed(x))  # the fixed test binarisation never moves


def test_model_name_alone_picks_the_autoencoding_recipe_and_mismatches_are_clear():
    assert gankit.load_config(None, overrides=["model.name=vae"]).recipe.name == "autoencoding"
    assert gankit.load_config(None).recipe.name == "adversarial"
    with pytest.raises(ConfigError, match="discriminator"):
        gankit.train(None, overrides=["model.name=vae", "recipe.name=adversarial", *AE_TINY], out="/nonexistent/x")
    with pytest.raises(ConfigError, match="autoencoder model"):
        gankit.train(None, overrides=["recipe.name=autoencoding", *AE_TINY], out="/nonexistent/y")
    with pytest.raises(ConfigError, match="recipe.mask"):
        gankit.load_config(None, overrides=["model.name=mlp_ae", "recipe.mask=1.5"])


def test_kl_warmup_and_beta():
    from gankit.recipes.autoencoding import AutoencodingConfig, AutoencodingRecipe

    cfg = gankit.load_config(None, overrides=["model.name=vae", "model.hidden=[8]", "model.latent_dim=2"])
    modules = build_models(cfg.model, (1, 8, 8), 0, seed=0)
    recipe = AutoencodingRecipe(AutoencodingConfig(beta=4.0, kl_warmup=10), modules, cfg.optim)
    weights = []
    for updates in (0, 5, 10, 20):
        recipe.updates = updates
        weights.append(recipe.kl_weight())
    assert weights == [0.0, 2.0, 4.0, 4.0]


# -- training through the trainer ------------------------------------------------------------------------------

def test_autoencoder_learns_and_writes_reconstruction_grids(tmp_path):
    run = gankit.train(None, overrides=["model.name=mlp_ae", "model.hidden=[64]", "model.bottleneck=16",
                                        "train.steps=400", "train.sample_every=200", *AE_TINY], out=tmp_path / "ae")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if "loss" in line]
    assert rows[-1]["loss"] < 0.5 * rows[0]["loss"]
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == ["step_0000200.png", "step_0000400.png"]
    test = load_dataset(DataConfig(name="digits"), "test").x
    scores = reconstruction_scores(gankit.load(run).generator, test)
    assert 0.0 < scores["recon_mse"] < 0.2 and 10 < scores["recon_psnr"] < 40


def test_vae_trains_writes_both_grids_and_resumes_exactly(tmp_path):
    base = ["model.name=vae", "model.hidden=[32]", "model.latent_dim=4", "recipe.kl_warmup=30",
            "recipe.binarize=true", "train.sample_every=20", "train.checkpoint_every=20", "train.log_every=10",
            *AE_TINY]
    straight = gankit.train(None, overrides=base + ["train.steps=40"], out=tmp_path / "a")
    split = gankit.train(None, overrides=base + ["train.steps=20"], out=tmp_path / "b")
    gankit.train(None, overrides=["train.steps=40"], out=split, resume=True)
    a, _ = ckpt.load_checkpoint(latest_checkpoint(straight))
    b, meta = ckpt.load_checkpoint(latest_checkpoint(split))
    assert meta["recipe"] == {"updates": 40}
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    names = sorted(p.name for p in (straight / "samples").glob("*.png"))
    assert names == ["recon_step_0000020.png", "recon_step_0000040.png", "step_0000020.png", "step_0000040.png"]
    row = json.loads((straight / "metrics.jsonl").read_text().splitlines()[-1])
    assert abs(row["elbo"] + row["recon"] + row["kl"]) < 1e-3 * abs(row["elbo"])


def test_vae_scores_report_test_loss_and_a_tighter_bound(tmp_path):
    run = gankit.train(None, overrides=["model.name=vae", "model.hidden=[64]", "model.latent_dim=8",
                                        "train.steps=300", *AE_TINY], out=tmp_path / "v")
    model = gankit.load(run).generator
    x = load_dataset(DataConfig(name="digits"), "test").x[:100]
    scores = vae_scores(model, x, k=50, binarize=True)
    assert scores["k"] == 50 and scores["n"] == 100
    # -L_50 <= -L_1 (in expectation; with 100 images the gap is far above the noise) and both are sane sizes
    assert 0 < scores["nll"] < scores["elbo_nll"] < 64 * math.log(2) * 1.5


def test_patches_source():
    train = load_dataset(DataConfig(name="patches", num_samples=500), "train")
    test = load_dataset(DataConfig(name="patches", num_samples=200, size=6, channels=3), "test")
    assert train.x.shape == (500, 1, 8, 8) and test.x.shape == (200, 3, 6, 6)
    assert -1 <= float(train.x.min()) and float(train.x.max()) <= 1 and float(train.x.std()) > 0.1
    again = load_dataset(DataConfig(name="patches", num_samples=500), "train", seed=7)
    assert torch.equal(train.x, again.x)  # positions never depend on the run seed


def test_manifold_grid_walks_the_prior_quantiles():
    from gankit.latent import manifold_grid

    class Probe(torch.nn.Module):  # returns its codes, so the grid's layout can be read back
        latent_dim = 3

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, z, labels=None):
            return z

    z = manifold_grid(Probe(), steps=4, dims=(2, 0))
    assert z.shape == (16, 3) and torch.equal(z[:, 1], torch.zeros(16))
    q = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor([0.125, 0.375, 0.625, 0.875]))
    assert torch.allclose(z[:4, 2], q[0].expand(4)) and torch.allclose(z[:4, 0], q)  # row 0: dim 2 fixed, dim 0 walks
    with pytest.raises(GankitError, match="two different"):
        manifold_grid(Probe(), dims=(1, 1))
