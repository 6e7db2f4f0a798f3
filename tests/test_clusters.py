"""data.clusters: k-means labels from the data alone (the self-conditioned GAN), the label prior a generator
draws from, and a run that keeps it."""

from __future__ import annotations

import pytest
import torch

import gankit
from gankit.config import DataConfig
from gankit.data import ArrayData, load_dataset
from gankit.data.clusters import check_clusterable, fit_clusters, pooling
from gankit.errors import ConfigError
from gankit.models import build_models
from gankit.train import checkpoint as ckpt
from gankit.train import latest_checkpoint

from test_gan_tools import CGAN
from test_models_recipe import tiny_model_cfg


def blobs(sizes, dim=20, spread=0.05, seed=0):
    """Points around len(sizes) far-apart centres, shuffled; returns (x, true blob of each point)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(len(sizes), dim, generator=g) * 3
    truth = torch.cat([torch.full((n,), i) for i, n in enumerate(sizes)])
    order = torch.randperm(len(truth), generator=g)
    truth = truth[order]
    return centres[truth] + spread * torch.randn(len(truth), dim, generator=g), truth


def same_partition(a, b):
    """True when labellings a and b split the items alike (up to renaming)."""
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("shape", [(20,), (1, 8, 8), (3, 40, 40)])
def test_kmeans_finds_separate_blobs_and_their_sizes(shape):
    sizes = [300, 100, 50, 550]
    x, truth = blobs(sizes, dim=int(torch.tensor(shape).prod()))
    x = x.reshape(-1, *shape)
    fit = fit_clusters(x, 4)
    labels = fit.assign(x)
    assert same_partition(labels, truth)
    # the prior is each cluster's share of the items, whichever name the cluster got
    found = sorted(torch.bincount(labels, minlength=4).tolist())
    assert found == sorted(sizes)
    assert torch.allclose(fit.prior, torch.bincount(labels, minlength=4) / len(x))
    assert fit_clusters(x, 4).centres.equal(fit.centres)  # a fixed seed: the same data, the same clusters


def test_pooling_keeps_small_images_and_shrinks_large_ones_under_the_limit():
    assert pooling((1, 28, 28)) == 1 and pooling((1, 32, 32)) == 1 and pooling((7,)) == 1
    assert pooling((3, 64, 64)) == 4  # 3 x 16 x 16 = 768 values; a factor of 3 leaves 3 x 22 x 22 = 1,452


def test_clusters_replace_the_labels_of_both_splits_with_the_training_splits_centres():
    cfg = DataConfig(name="digits", clusters=6)
    train, test = load_dataset(cfg, "train"), load_dataset(cfg, "test")
    plain = load_dataset(DataConfig(name="digits"), "train")
    assert train.num_classes == test.num_classes == 6 and train.classes[0] == "cluster 0"
    assert torch.equal(train.x, plain.x) and not torch.equal(train.y, plain.y)
    assert torch.allclose(train.label_prior, torch.bincount(train.y, minlength=6).float() / len(train))
    assert torch.equal(test.label_prior, train.label_prior)
    # a test item's cluster is its nearest training centre (the test split is assigned, never refitted)
    fit = fit_clusters(plain.x, 6)
    assert torch.equal(test.y, fit.assign(test.x))
    # the clusters follow the digits more than chance would: the largest digit of a cluster holds most of it
    purity = sum(torch.bincount(plain.y[train.y == k]).max().item() for k in range(6)) / len(plain)
    assert 0.3 < purity <= 1.0


def test_generator_draws_labels_by_its_prior():
    G = build_models(tiny_model_cfg("dcgan", conditioning="projection"), (1, 8, 8), 4, seed=0)["generator"]
    uniform = G.sample_labels(4000, generator=torch.Generator().manual_seed(0))
    assert (torch.bincount(uniform, minlength=4) / 4000 - 0.25).abs().max() < 0.03
    prior = torch.tensor([0.5, 0.0, 0.2, 0.3])
    G.set_label_prior(prior)
    drawn = G.sample_labels(20000, generator=torch.Generator().manual_seed(0))
    shares = torch.bincount(drawn, minlength=4) / 20000
    assert shares[1] == 0 and (shares - prior).abs().max() < 0.015
    assert "label_prior" not in G.state_dict()  # no weight: a checkpoint keeps it with the data's description
    with pytest.raises(ValueError, match="4 shares"):
        G.set_label_prior([0.5, 0.5])
    G.set_label_prior(None)
    assert (torch.bincount(G.sample_labels(4000, generator=torch.Generator().manual_seed(1)), minlength=4) / 4000
            - 0.25).abs().max() < 0.03


def test_a_clustered_run_keeps_its_prior_and_resumes_exactly(tmp_path):
    over = CGAN + ["data.clusters=5", "train.steps=10"]
    straight = gankit.train(None, overrides=over, out=tmp_path / "a")
    split = gankit.train(None, overrides=over[:-1] + ["train.steps=5", "train.checkpoint_every=5"], out=tmp_path / "b")
    gankit.train(None, overrides=["train.steps=10"], out=split, resume=True)
    ta = ckpt.load_checkpoint(latest_checkpoint(straight))[0]
    tb = ckpt.load_checkpoint(latest_checkpoint(split))[0]
    assert [k for k in ta if not torch.equal(ta[k], tb[k])] == []
    data = load_dataset(DataConfig(name="digits", clusters=5))
    run = gankit.load(straight)
    assert run.generator.num_classes == 5
    assert torch.allclose(run.generator.label_prior, data.label_prior)
    meta = ckpt.load_checkpoint(latest_checkpoint(straight))[1]
    assert meta["data"]["label_prior"] == pytest.approx(data.label_prior.tolist())
    assert run.config.data.clusters == 5


def test_bad_cluster_settings_are_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"data.clusters=1 is out of range: expected an integer >= 2"):
        DataConfig(name="digits", clusters=1)
    x, _ = blobs([3, 3])
    with pytest.raises(ConfigError, match="holds only 6 items; expected at most 6 clusters"):
        fit_clusters(x, 7)
    pairs = ArrayData(torch.zeros(4, 2, 8, 8), channels_a=1, name="pairs")
    with pytest.raises(ConfigError, match="image pairs for translation"):
        check_clusterable(pairs, 3)
    table = ArrayData(torch.zeros(4, 3), torch.zeros(4, 1), name="table")
    with pytest.raises(ConfigError, match="regression targets"):
        check_clusterable(table, 3)


@pytest.mark.parametrize("overrides, says", [
    (CGAN + ["model.conditioning=none"], "model 'dcgan' reads no labels \\(model.conditioning=none\\), so the "
     "clusters would change nothing; set model.conditioning to one of concat, projection, acgan"),
    (["model.name=vae", "model.hidden=[16]", "model.latent_dim=4", "recipe.name=autoencoding", "train.batch_size=16",
      "train.progress=false", "train.eval_every=0"],
     "model 'vae' reads no labels, so the clusters would change nothing; use a model that reads labels"),
])
def test_clusters_for_a_model_that_reads_no_labels_are_refused_before_training(tmp_path, overrides, says):
    with pytest.raises(ConfigError, match=says):
        gankit.train(None, overrides=overrides + ["data.clusters=5", "train.steps=2"], out=tmp_path / "run")
    assert not list(tmp_path.glob("run/checkpoints/*"))
