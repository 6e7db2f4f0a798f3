"""A new user's first hour (#25 items 1, 2, 7 and 8), through the CLI: devices checked in one place with `auto` the
default, `-n` on the grids, shipped configs by name with --print-config and --dry-run, and help texts that say
what they mean."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from cli_helpers import one_line_error, train_args
from gankit.cli import build_parser, main
from gankit.config import Config
from gankit.errors import Interrupted

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for a machine without CUDA")

# every verb that computes, with the arguments it needs to parse
VERBS = {
    "sample": ["sample", "RUN", "-o", "x.png"],
    "eval": ["eval", "RUN"],
    "translate": ["translate", "RUN", "in.png", "-o", "out.png"],
    "project": ["project", "RUN", "in.png", "-o", "out.png"],
    "latent": ["latent", "interpolate", "RUN", "-o", "out.png"],
    "encode": ["encode", "RUN", "-o", "codes.npz"],
    "decode": ["decode", "RUN", "codes.npz", "-o", "out.png"],
    "predict": ["predict", "RUN", "x.csv", "-o", "p.csv"],
    "evaluator train": ["evaluator", "train", "--data", "digits", "-o", "e.safetensors"],
}


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gan") / "run"
    assert main(train_args(out)) == 0
    return out


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("vae") / "run"
    argv = ["train", "--out", str(out)]
    for item in ("model.name=vae", "model.hidden=[8]", "model.latent_dim=2", "train.steps=2", "train.batch_size=4",
                 "train.progress=false", "train.eval_every=0"):
        argv += ["--set", item]
    assert main(argv) == 0
    return out


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_every_verb_takes_device_auto_and_defaults_to_it(verb):
    parser = build_parser()
    assert parser.parse_args(VERBS[verb]).device == "auto"
    assert parser.parse_args([*VERBS[verb], "--device", "auto"]).device == "auto"


def test_train_device_defaults_to_auto_and_a_wrong_one_is_one_line(tmp_path, capsys):
    assert Config().train.device == "auto"
    one_line_error(capsys, train_args(tmp_path / "r", "train.device=gpu"), "train.device='gpu'", "auto, cpu")
    assert not (tmp_path / "r").exists()


def test_auto_keeps_the_result_line_and_says_on_stderr_what_it_picked(gan_run, tmp_path, capsys):
    assert main(["sample", str(gan_run), "-n", "4", "-o", str(tmp_path / "a.png")]) == 0
    out, err = capsys.readouterr()
    assert out == f"wrote 4 samples to {tmp_path / 'a.png'}\n"
    assert re.fullmatch(r"device: (cpu|cuda) \(auto: [^\n]+\)\n", err), err
    assert main(["sample", str(gan_run), "-n", "4", "-o", str(tmp_path / "b.png"), "--device", "cpu"]) == 0
    assert capsys.readouterr().err == ""  # named: nothing to say
    assert main(["eval", str(gan_run), "-n", "50", "--kid-subsets", "2", "--force", "--device", "auto"]) == 0
    assert capsys.readouterr().err.splitlines()[-1].startswith("device: ")


@NO_CUDA
@pytest.mark.parametrize("verb", ["sample", "eval"])
def test_device_cuda_without_cuda_is_one_line(gan_run, tmp_path, capsys, verb):
    argv = VERBS[verb][:] + ["--device", "cuda"]
    argv[argv.index("RUN")] = str(gan_run)
    if "-o" in argv:
        argv[argv.index("-o") + 1] = str(tmp_path / "x.png")
    one_line_error(capsys, argv, "--device='cuda'", "CUDA is not available")
    assert not (tmp_path / "x.png").exists()
    assert main([*argv[:-1], "auto", *(["-n", "50", "--kid-subsets", "2", "--force"] if verb == "eval" else [])]) == 0
    assert "device: cpu (auto: " in capsys.readouterr().err


def test_decode_takes_n_with_64_for_a_grid_and_all_for_an_npz(vae_run, tmp_path, capsys):
    codes = tmp_path / "codes.npz"
    assert main(["encode", str(vae_run), "-o", str(codes)]) == 0
    total = len(np.load(codes)["codes"])
    assert total > 64
    capsys.readouterr()
    assert main(["decode", str(vae_run), str(codes), "-o", str(tmp_path / "d.png")]) == 0
    out, err = capsys.readouterr()
    assert "wrote 64 decoded samples" in out and f"first 64 of {total} codes" in err
    side = Image.open(tmp_path / "d.png").size
    assert main(["decode", str(vae_run), str(codes), "-n", "256", "-o", str(tmp_path / "big.png")]) == 0
    assert Image.open(tmp_path / "big.png").size[0] > side[0] == side[1]  # 16 x 16 against 8 x 8
    assert main(["decode", str(vae_run), str(codes), "-n", "10", "-o", str(tmp_path / "ten.npz")]) == 0
    assert len(np.load(tmp_path / "ten.npz")["arr_0"]) == 10
    assert main(["decode", str(vae_run), str(codes), "-o", str(tmp_path / "all.npz")]) == 0
    assert len(np.load(tmp_path / "all.npz")["arr_0"]) == total
    capsys.readouterr()
    one_line_error(capsys, ["decode", str(vae_run), str(codes), "-n", "0", "-o", str(tmp_path / "z.png")], "-n")


def test_a_shipped_config_by_name_prints_without_writing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the source checkout's configs/ is found from anywhere
    assert main(["train", "seed_gan_mnist", "--print-config", "--set", "train.steps=7"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["data"]["name"] == "mnist" and printed["train"]["steps"] == 7
    assert printed["train"]["device"] == "auto"
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_config_name_lists_the_shipped_ones(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    err = one_line_error(capsys, ["train", "seed_gan"], "'seed_gan'", "seed_gan_mnist", "dcgan_mnist")
    assert "vae_mnist" in err
    one_line_error(capsys, ["train", "missing.yaml"], "config file not found")  # a path stays a path


def test_dry_run_trains_one_step_prints_parameters_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = train_args(tmp_path / "r", "train.steps=1000")
    assert main([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"generator [\d,]+ parameters, discriminator [\d,]+ parameters", out), out
    assert list(tmp_path.iterdir()) == []
    one_line_error(capsys, [*train_args(tmp_path / "r", "model.latent_dim=-1"), "--dry-run"], "model.latent_dim")


def test_help_texts_say_what_they_mean(capsys):
    for argv in (["evaluator", "train"], ["latent", "interpolate"], ["latent", "traverse"], ["latent", "mix"],
                 ["latent", "truncation"], ["latent", "manifold"], ["decode"], ["train"]):
        with pytest.raises(SystemExit):
            main([*argv, "--help"])
        text = capsys.readouterr().out
        assert "%%" not in text, argv
        if argv[0] == "latent":  # every option has help; the counts show their defaults
            for flag in ("--rows", "--steps", "--cols", "--seed", "--radius"):
                assert flag not in text or re.search(rf"{flag} \w+\s+\S[^\n]*(\n {{20,}}[^\n]*)*\(default", text), \
                    (argv, flag, text)
    for verb in ("interpolate", "traverse"):
        with pytest.raises(SystemExit):
            main(["latent", verb, "--help"])
        usage, rest = capsys.readouterr().out.split("\n\n", 1)
        assert not rest.startswith("positional arguments"), verb  # a description comes first


def test_a_clean_stop_is_a_stop_message_not_an_error(monkeypatch, capsys):
    import gankit.api

    def stopped(*args, **kwargs):
        raise Interrupted("SIGTERM received: stopped at step 12, checkpoint saved", exit_code=143)

    monkeypatch.setattr(gankit.api, "train", stopped)
    assert main(["train"]) == 143
    err = capsys.readouterr().err
    assert err == "gankit: SIGTERM received: stopped at step 12, checkpoint saved\n"
