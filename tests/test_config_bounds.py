"""Every number in a config is finite and bounded, YAML is read as YAML 1.2, and a bad value ends, through the command
line, in one line that names the key and what it may be: exit code 2, no traceback, no run directory left behind
(issue #24, item 11)."""

from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit import components  # noqa: F401  (fills the registries)
from gankit.cli import main
from gankit.config import (MAX_SIDE, Config, DataConfig, HealthConfig, OptimConfig, TrainConfig, check_range,
                           from_dict, load_config, read_yaml, save_config)
from gankit.errors import ConfigError
from gankit.registry import MODELS, RECIPES
from gankit.train.device import resolve_device

TINY = ["train.steps=2", "train.batch_size=4", "train.progress=false", "train.eval_every=0"]
TINY_MLP = ["model.g_hidden=[16]", "model.d_hidden=[16]", "model.latent_dim=4"]  # unless another model is named


def train_args(out: Path, *overrides: str, config: Path | None = None) -> list[str]:
    args = ["train", *([str(config)] if config else []), "--out", str(out)]
    other_model = any(item.startswith("model.name=") for item in overrides)
    for item in [*TINY, *([] if other_model else TINY_MLP), *overrides]:
        args += ["--set", item]
    return args


def refused(capsys, tmp_path: Path, *overrides: str, config: Path | None = None) -> str:
    """Train with ``overrides``: exit code 2, one line on stderr, and no run directory; returns the line."""
    out = tmp_path / "run"
    assert main(train_args(out, *overrides, config=config)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gankit: error:"), err
    assert "Traceback" not in err
    assert not out.exists()  # refused before anything was written
    return err


# -- each case: the overrides and the words the one line must hold ----------------------------------------------

CASES = {
    "image side": (["data.size=100000"], ["data.size=100000", "<= 4,096"]),
    "border": (["data.pad=100000"], ["data.pad=100000", "<= 2,046"]),
    "grid": (["train.grid_rows=100000"], ["train.grid_rows=100000", "<= 32"]),
    "latent size": (["model.latent_dim=1000000000"], ["model.latent_dim", "<= 4,096"]),
    "latent as 1e9": (["model.latent_dim=1e9"], ["model.latent_dim", "expected int", "1e6"]),
    "toy points": (["data.name=toy2d", "model.name=mlp_toy", "data.num_samples=1000000000000"],
                   ["data.num_samples", "<= 10,000,000"]),
    "dcgan width": (["model.name=dcgan", "model.max_width=1000000"], ["model.max_width", "<= 2,048"]),
    "bn eps zero": (["model.bn_eps=0"], ["model.bn_eps", "positive", "<= 1"]),
    "bn eps negative": (["model.bn_eps=-1"], ["model.bn_eps", "positive"]),
    "adam eps inf": (["optim.eps=.inf"], ["optim.eps=inf", "positive number <= 1"]),
    "lr inf": (["optim.lr_g=.inf"], ["optim.lr_g=inf", "positive number <= 1"]),
    "penalty inf": (["recipe.penalty_weight=.inf"], ["recipe.penalty_weight=inf", ">= 0 and <= 10000"]),
    "slope nan": (["model.slope=.nan"], ["model.slope=nan", ">= 0 and <= 1"]),
    "seed": (["train.seed=-1"], ["train.seed=-1", ">= 0"]),
    "sexagesimal": (["train.steps=1:00"], ["train.steps='1:00'", "base-60"]),
    "duplicate in a value": (["model.g_hidden={a: 1, a: 2}"], ["model.g_hidden", "'a' is given twice"]),
    "deep value": (["model.g_hidden=" + "[" * 50_000 + "]" * 50_000], ["model.g_hidden", "nested more than"]),
    "device foo": (["train.device=foo"], ["train.device='foo'", "auto, cpu, cuda, cuda:N"]),
    "device meta": (["train.device=meta"], ["train.device='meta'", "auto, cpu, cuda, cuda:N"]),
    "no such user": (["data.name=folder", "data.root=~nosuchuser_gankit/x"], ["data.root", "~nosuchuser_gankit",
                                                                               "in full"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_value_out_of_range_is_one_line_naming_the_key_and_range(capsys, tmp_path, case):
    overrides, words = CASES[case]
    err = refused(capsys, tmp_path, *overrides)
    for word in words:
        assert word in err, (word, err)


def test_mps_where_there_is_none(capsys, tmp_path):
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    err = refused(capsys, tmp_path, "train.device=mps")
    assert "train.device='mps'" in err and "not available" in err


def test_cuda_where_there_is_none_or_not_that_many(capsys, tmp_path):
    index = torch.cuda.device_count() if torch.cuda.is_available() else 0
    err = refused(capsys, tmp_path, f"train.device=cuda:{index}")
    assert f"train.device='cuda:{index}'" in err


def test_a_huge_label_is_refused_before_a_one_hot_layer_of_that_size(capsys, tmp_path):
    y = np.zeros(16, np.int64)
    y[3] = 10**9
    np.savez(tmp_path / "x.npz", x=np.zeros((16, 8, 8), np.uint8), y=y)
    err = refused(capsys, tmp_path, "data.name=arrays", f"data.root={tmp_path / 'x.npz'}", "model.conditioning=concat")
    assert "x.npz" in err and "<= 9,999" in err and "1000000000" in err


def _paired(root: Path, side: int = 32) -> Path:
    for domain in ("A", "B"):
        (root / domain).mkdir(parents=True)
        for i in range(4):
            pixels = np.full((side, side), 40 * i + (domain == "B") * 9, np.uint8)
            Image.fromarray(pixels).save(root / domain / f"{i}.png")
    return root


PIX2PIX = ["model.name=pix2pix", "model.width=4", "model.d_width=4"]


@pytest.mark.parametrize("override, words", [
    ("model.depth=50", ["model.depth=50", "<= 12"]),
    ("model.d_layers=20", ["model.d_layers=20", "<= 12"]),
    ("model.depth=6", ["model.depth=6", "32 pixels", "<= 5"]),  # 32 -> 1 takes five halvings
    ("model.d_layers=4", ["model.d_layers=4", "32 pixels", "<= 3"]),  # a 32 / 16 - 2 = 0-wide logit map
])
def test_pix2pix_depth_and_patchgan_layers_must_fit_the_images(capsys, tmp_path, override, words):
    root = _paired(tmp_path / "pairs")
    err = refused(capsys, tmp_path, "data.name=paired", f"data.root={root}", *PIX2PIX, override)
    for word in words:
        assert word in err, (word, err)


def test_the_deepest_allowed_pix2pix_trains(tmp_path):
    root = _paired(tmp_path / "pairs")
    assert main(train_args(tmp_path / "run", "data.name=paired", f"data.root={root}", *PIX2PIX, "model.depth=5",
                           "model.d_layers=3")) == 0


def test_a_dataset_larger_than_the_memory_limit_is_refused_by_the_setting_that_makes_it(capsys, tmp_path,
                                                                                         monkeypatch):
    monkeypatch.setenv("GANKIT_MAX_BYTES", "1M")
    err = refused(capsys, tmp_path, "data.name=toy2d", "model.name=mlp_toy", "data.num_samples=1000000")
    assert "data.num_samples=1000000" in err and "GANKIT_MAX_BYTES" in err
    err = refused(capsys, tmp_path, "data.size=256")  # 1,438 digits of 256 x 256
    assert "data.size=256" in err and "GANKIT_MAX_BYTES" in err
    err = refused(capsys, tmp_path, "data.pad=100")
    assert "data.pad=100" in err and "GANKIT_MAX_BYTES" in err


def test_a_border_past_the_largest_side_names_the_largest_border_for_the_images(capsys, tmp_path):
    for i in range(2):
        Image.new("L", (8, 8)).save(tmp_path / f"{i}.png")
    err = refused(capsys, tmp_path, "data.name=folder", f"data.root={tmp_path}", "data.size=4000", "data.pad=100",
                  "train.batch_size=1")
    assert "data.pad=100" in err and f"{MAX_SIDE}" in err and "<= 48" in err


def test_patches_larger_than_the_photographs_allow(capsys, tmp_path):
    err = refused(capsys, tmp_path, "data.name=patches", "model.name=mlp_ae", "data.size=200", "data.num_samples=10")
    assert "data.size=200" in err and "<= 160" in err


# -- YAML files ------------------------------------------------------------------------------------------------


def _config(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "c.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@pytest.mark.parametrize("text, words", [
    ("train:\n  seed: 1:00\n", ["train.seed='1:00'", "base-60"]),  # YAML 1.1 reads 60
    ("train:\n  steps: 3\n  batch_size: 4\n  steps: 5\n", ["'steps' is given twice", "lines 2 and 4"]),
    ("train:\n  steps: 3\ntrain:\n  seed: 1\n", ["'train' is given twice", "lines 1 and 3"]),
    (b"train:\n  device: \xff\xfe\n", ["c.yaml", "line 2", "0xff", "UTF-8"]),
    ("train: " + "[" * 50_000 + "]" * 50_000 + "\n", ["c.yaml", "nested more than"]),
    ("a: &a [1, 1, 1, 1]\nb: &b [*a, *a, *a, *a]\n", ["c.yaml", "line 2", "*a", "list or mapping"]),
    ("train:\n  device: !!python/object/apply:os.system [echo hi]\n", ["c.yaml", "line 2", "!!python"]),
    ("train:\n  channels_last: yes\n", ["train.channels_last='yes'", "bool"]),  # YAML 1.1 reads true
    ("train:\n  device: \"a\\0b\"\n", ["train.device"]),
    ("optim:\n  lr_g: .nan\n", ["optim.lr_g=nan", "positive"]),
])
def test_a_bad_yaml_file_is_one_line(capsys, tmp_path, text, words):
    err = refused(capsys, tmp_path, config=_config(tmp_path, text))
    for word in words:
        assert word in err, (word, err)


def test_yaml_is_read_as_yaml_1_2(tmp_path):
    cfg = load_config(_config(tmp_path, "train:\n  steps: 010\n  batch_size: 0x10\noptim:\n  lr_g: 1e-4\n"
                                        "data:\n  root: 1e9\n"))
    assert cfg.train.steps == 10 and cfg.train.batch_size == 16  # 1.1 reads 010 as 8
    assert cfg.optim.lr_g == 1e-4  # 1.1 reads 1e-4 as a string
    assert cfg.data.root == "1e9"  # a folder's name, as written
    assert load_config(None, ["data.root=0o17"]).data.root == "0o17"
    assert read_yaml(_config(tmp_path, "a: 2024-01-02\nb: off\nc: 1_000\n")) == {"a": "2024-01-02", "b": "off",
                                                                               "c": "1_000"}


@pytest.mark.parametrize("root", ["1e9", "0o17", "yes", "1:00", "2024-01-02", "null", "010", ".inf"])
def test_a_saved_config_reads_back_as_it_was(tmp_path, root):
    cfg = Config()
    cfg.data.root = root
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg


# -- the bounds themselves, over every registered config ------------------------------------------------------


def _sections() -> list[tuple[str, type, dict]]:
    """(section, config class, the fixed keys that select it) for every section and registered component."""
    out = [("data", DataConfig, {}), ("optim", OptimConfig, {}), ("train", TrainConfig, {}),
           ("health", HealthConfig, {})]
    out += [("model", MODELS.meta(n)["config"], {"name": n}) for n in MODELS.names()]
    out += [("recipe", RECIPES.meta(n)["config"], {"name": n}) for n in RECIPES.names()]
    return out


def _numeric_fields(cls: type) -> list[tuple[str, type]]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        options = set(typing.get_args(hints[f.name])) - {type(None)} or {hints[f.name]}
        if options <= {int, float}:
            out.append((f.name, float if float in options else int))
    return out


FIELDS = [(section, cls, fixed, name, kind) for section, cls, fixed in _sections()
          for name, kind in _numeric_fields(cls)]


@pytest.mark.parametrize("section, cls, fixed, name, kind", FIELDS,
                         ids=[f"{s}.{fixed.get('name', '')}.{n}".replace("..", ".") for s, _, fixed, n, _ in FIELDS])
def test_every_number_has_both_bounds_and_must_be_finite(section, cls, fixed, name, kind):
    defaults = from_dict({section: dict(fixed)})
    assert isinstance(defaults, Config)  # the defaults themselves are in range
    bad = [10**30, -10**30] + ([math.inf, -math.inf, math.nan] if kind is float else [])
    for value in bad:
        with pytest.raises(ConfigError, match=rf"{section}\.{name}=") as info:
            from_dict({section: {**fixed, name: value}})
        assert "\n" not in str(info.value)


def test_check_range_refuses_what_is_not_a_finite_number_in_range():
    for ok in (0, 5, 10, 0.5):
        check_range("k", ok, 0, 10)
    check_range("k", None, 0, 10, none_ok=True)
    for bad in (None, True, "5", -1, 11, 10**5000, math.nan, math.inf, [5]):
        with pytest.raises(ConfigError, match="k="):
            check_range("k", bad, 0, 10)
    with pytest.raises(ConfigError, match=r"a positive number < 1 \(why\)"):
        check_range("k", 0.0, 0.0, 1.0, open_lo=True, open_hi=True, note="why")
    with pytest.raises(ConfigError, match="an integer of about 5,00. digits"):  # Python gives it no repr
        check_range("k", 10**5000, 0, 10)


@pytest.mark.parametrize("widths", [[10**30], [0], [16] * 33, []])
def test_layer_widths_are_bounded_in_size_and_number(widths):
    with pytest.raises(ConfigError, match="model.g_hidden=.*1 to 32 widths, each an integer >= 1 and <= 8,192"):
        from_dict({"model": {"g_hidden": widths}})
    for wrong in ("16", [16.0], [True], [[16]]):
        with pytest.raises(ConfigError, match=r"model.g_hidden.*wrong type"):
            from_dict({"model": {"g_hidden": wrong}})


def test_devices_are_checked_in_one_place():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    for bad in ("foo", "CPU", "cuda:-1", "cuda:x", "meta", " cpu", "cpu:0"):
        with pytest.raises(ConfigError, match="valid choices: auto, cpu, cuda, cuda:N"):
            resolve_device(bad)
    with pytest.raises(ConfigError, match="--device='meta'"):
        resolve_device("meta", key="--device")
