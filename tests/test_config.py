"""Config contract: defaults, YAML diffs, --set overrides, and errors that name the key and the valid choices."""

from __future__ import annotations

from pathlib import Path

import pytest

from gankit.config import Config, from_dict, load_config, save_config, to_dict
from gankit.errors import ConfigError

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_defaults_are_the_digits_mlp_gan():
    cfg = Config()
    assert cfg.data.name == "digits"
    assert cfg.model.name == "mlp_gan" and cfg.model.g_hidden == [256, 512, 1024]
    assert cfg.recipe.name == "adversarial" and cfg.recipe.d_steps == 1


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_shipped_config_loads_and_round_trips(path):
    cfg = load_config(path)
    assert from_dict(to_dict(cfg)) == cfg


def test_yaml_diff_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  steps: 10\n  batch_size: 8\nrecipe:\n  d_steps: 2\n")
    cfg = load_config(path, ["train.steps=20", "optim.lr_d=1e-3", "data.size=16", "model.g_hidden=[4, 5]"])
    assert cfg.train.steps == 20 and cfg.train.batch_size == 8 and cfg.recipe.d_steps == 2
    assert cfg.optim.lr_d == pytest.approx(1e-3) and isinstance(cfg.optim.lr_d, float)
    assert cfg.data.size == 16 and cfg.model.g_hidden == [4, 5]


def test_saved_config_rebuilds_the_run(tmp_path):
    cfg = load_config(None, ["train.steps=7", "recipe.loss=minimax", "model.name=mlp_toy", "data.name=toy2d"])
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg
    assert cfg.model.latent_dim == 2  # the mlp_toy defaults, not mlp_gan's


@pytest.mark.parametrize("override, words", [
    ("train.stepz=3", ["train.stepz", "steps", "batch_size"]),
    ("trian.steps=3", ["trian", "data", "train"]),
    ("model.widht=3", ["model.widht", "g_hidden"]),
    ("train.steps=abc", ["train.steps", "int"]),
    ("train.steps=1.5", ["train.steps", "int"]),
    ("train.progress=3", ["train.progress", "bool"]),
    ("recipe.d_steps=0", ["recipe.d_steps", ">= 1"]),
    ("optim.lr_g=-1e-4", ["optim.lr_g", "positive"]),
    ("recipe.loss=hinge2", ["hinge2", "minimax", "non_saturating"]),
    ("model.name=nope", ["nope", "mlp_gan", "mlp_toy"]),
    ("recipe.schedule=weird", ["weird", "full", "keras"]),
    ("data.channels=2", ["data.channels", "1, 3"]),
    ("steps=3", ["section.key=value"]),
])
def test_bad_values_name_the_key_and_the_choices(override, words):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, (word, message)


def test_yaml_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="cannot parse"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(listy)


def test_renamed_keys_of_older_configs_still_load():
    from gankit.config import from_dict

    cfg = from_dict({"data": {"name": "toy2d", "toy_samples": 123}})
    assert cfg.data.num_samples == 123
