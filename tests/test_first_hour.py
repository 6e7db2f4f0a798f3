"""A new user's first hour (#25 items 1, 2, 7 and 8), through the CLI: devices checked in one place with `auto` the
default, `-n` on the grids, shipped configs by name with --print-config and --dry-run, and help texts that say
what they mean."""

from __future__ import annotations

import json
import os
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
    argv = train_args(tmp_path / "r", "train.steps=1000", "train.sample_every=1", "health.diversity_ratio=0.99")
    assert main([*argv, "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert re.search(r"parameters: generator [\d,]+, discriminator [\d,]+\n", out), out
    assert out.count("parameters") == 1 and ", 1 step\n" in out  # once, in the header; and no "1 steps"
    assert "run directory: none (a dry run writes nothing)" in out and "gankit-dry-run" not in out
    assert "dry run passed" in out and "nothing written" in out
    assert "collapse" not in err  # an untrained generator (far below a ratio of 0.99) is no collapse
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


# ---------------------------------------------------------------------------------------------------------------
# The first hour redone (#25, second pass): what a fresh-clone walkthrough still met


def test_train_takes_device_as_a_shortcut_for_train_device(tmp_path, capsys):
    assert main([*train_args(tmp_path / "r"), "--device", "cpu"]) == 0
    assert yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["train"]["device"] == "cpu"
    capsys.readouterr()
    one_line_error(capsys, [*train_args(tmp_path / "s"), "--device", "gpu"], "train.device='gpu'", "auto, cpu")


def test_an_unknown_option_shows_the_verbs_own_usage(capsys):
    for argv, usage in ((["train", "--bogus"], "usage: gankit train "),
                        (["latent", "interpolate", "RUN", "-o", "x.png", "--bogus"],
                         "usage: gankit latent interpolate "),
                        (["sample", "RUN", "-o", "x.png", "--bogus"], "usage: gankit sample ")):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        err = capsys.readouterr().err
        assert stop.value.code == 2 and err.startswith(usage) and "unrecognized arguments: --bogus" in err, err


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_every_verb_takes_threads(verb):
    parser = build_parser()
    assert parser.parse_args(VERBS[verb]).threads is None
    assert parser.parse_args([*VERBS[verb], "--threads", "1"]).threads == 1


def test_threads_sets_torchs_thread_count_and_refuses_zero(gan_run, tmp_path, capsys):
    before = torch.get_num_threads()
    try:
        assert main(["sample", str(gan_run), "-n", "4", "-o", str(tmp_path / "a.png"), "--device", "cpu",
                     "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(SystemExit):
        main(["sample", str(gan_run), "-o", str(tmp_path / "b.png"), "--threads", "0"])
    assert "expected a whole number >= 1, got '0'" in capsys.readouterr().err


def test_a_busy_cpu_note_names_the_load_and_the_fix():
    from gankit.train.device import busy_cpu_note
    note = busy_cpu_note(busy=1.8, cores=2, threads=2)
    assert "other programs keep 1.8 of its 2 cores busy" in note and "--threads 1" in note
    assert "OMP_NUM_THREADS=1" in note
    assert busy_cpu_note(busy=0.2, cores=2, threads=2) is None  # not busy
    assert busy_cpu_note(busy=2.0, cores=2, threads=1) is None  # one thread already


def test_a_verb_on_a_busy_terminal_says_so(gan_run, tmp_path, capsys, monkeypatch):
    import sys

    device = sys.modules["gankit.train.device"]
    monkeypatch.setattr(device, "others_busy_cores", lambda: 64.0)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert main(["sample", str(gan_run), "-n", "4", "-o", str(tmp_path / "a.png"), "--device", "cpu"]) == 0
    finally:
        torch.set_num_threads(before)
    assert "note: the CPU is busy (other programs keep 64.0 of its" in capsys.readouterr().err


def test_messages_for_files_that_are_not_what_a_verb_expects(gan_run, tmp_path, capsys):
    one_line_error(capsys, ["sample", str(gan_run / "config.yaml"), "-o", str(tmp_path / "x.png")],
                   "is a text file, not a trained model: expected a run directory or a .safetensors checkpoint",
                   f"(its run directory: {gan_run})")
    one_line_error(capsys, ["eval", str(gan_run), "--evaluator", str(tmp_path / "nonexist.safetensors")],
                   f"evaluator file not found: {tmp_path / 'nonexist.safetensors'}")
    one_line_error(capsys, ["eval", str(gan_run), "--evaluator", "mnsit"], "no evaluator 'mnsit'", "built-in ones")
    one_line_error(capsys, ["sample", str(gan_run), "-o", str(tmp_path / "x.png"), "--device", "gpu"],
                   "--device='gpu' is not a device gankit knows")


@pytest.fixture(scope="module")
def regressor_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("reg") / "run"
    argv = ["train", "--out", str(run)]
    for item in ("model.name=mlp_regressor", "data.name=diabetes", "train.steps=2", "train.batch_size=8",
                 "train.progress=false", "train.eval_every=0"):
        argv += ["--set", item]
    assert main(argv) == 0
    return run


def test_predict_names_a_missing_table_plainly(regressor_run, tmp_path, capsys):
    run = regressor_run
    err = one_line_error(capsys, ["predict", str(run), str(tmp_path / "nope.csv"), "-o", str(tmp_path / "p.csv")],
                         f"features file not found: {tmp_path / 'nope.csv'}")
    assert "header" not in err and ".;" not in err
    (tmp_path / "head.csv").write_text("age,bmi\n1,2\n")
    err = one_line_error(capsys, ["predict", str(run), str(tmp_path / "head.csv"), "-o", str(tmp_path / "p.csv")],
                         "cannot read features from", "no header row")
    assert ".;" not in err


def test_an_output_folder_that_does_not_exist_is_created_and_said(gan_run, tmp_path, capsys):
    out = tmp_path / "new" / "deeper" / "x.png"
    assert main(["sample", str(gan_run), "-n", "4", "-o", str(out), "--device", "cpu"]) == 0
    assert out.is_file()
    err = capsys.readouterr().err
    assert f"note: created the folder {tmp_path / 'new'} (and {out.parent} inside it) for x.png" in err
    assert main(["sample", str(gan_run), "-n", "4", "-o", str(out), "--device", "cpu"]) == 0
    assert "created" not in capsys.readouterr().err  # it exists now: nothing to say


def test_the_help_says_what_every_option_means(capsys):
    import argparse

    def leaves(parser, path=()):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            yield path, parser
        for sub in subs:
            for name, child in sub.choices.items():
                yield from leaves(child, (*path, name))

    bare = []
    for path, parser in leaves(build_parser()):
        if not parser.description:
            bare.append(" ".join(path) + ": no description")
        bare += [f"{' '.join(path)} {action.option_strings or action.dest}" for action in parser._actions
                 if not action.help and not isinstance(action, argparse._HelpAction)]
    assert bare == [], bare
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    shown = capsys.readouterr().out
    assert "-n N " in shown and "--n N" not in shown  # -n only


def test_a_vae_evaluation_says_what_its_bounds_cover_and_stays_aligned(vae_run, capsys):
    assert main(["eval", str(vae_run), "-n", "400", "--kid-subsets", "2", "--iwae-k", "3", "--iwae-n", "10",
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "likelihood: on the first 10 test images, in nats per image: nll is minus the IWAE bound with k=3 " \
           "samples per image" in out, out
    rows = [line for line in out.splitlines() if line.startswith("  ")]
    assert any(r.split()[0] == "recon_psnr_per_image" for r in rows)
    columns = {len(r) - len(r[2:].split(" ", 1)[1].lstrip()) for r in rows}  # where each value starts
    assert len(columns) == 1, rows


def test_a_vae_header_names_its_one_module_for_what_it_holds(tmp_path, capsys):
    argv = ["train", "--out", str(tmp_path / "v")]
    for item in ("model.name=vae", "model.hidden=[8]", "model.latent_dim=2", "train.steps=1", "train.batch_size=4",
                 "train.progress=false", "train.eval_every=0"):
        argv += ["--set", item]
    assert main([*argv, "--dry-run"]) == 0
    assert re.search(r"parameters: autoencoder \(encoder \+ decoder\) [\d,]+\n", capsys.readouterr().out)


def test_a_regressor_evaluation_says_how_it_was_computed(regressor_run, capsys):
    assert main(["eval", str(regressor_run), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "computed: rmse and mae pooled over rows and targets" in out and "features:" not in out


def test_arithmetic_with_too_few_members_gives_advice_that_fits():
    from gankit.errors import GankitError
    from gankit.latent.tools import _group_mean
    z, ink = torch.zeros(5000, 4), torch.zeros(5000)
    with pytest.raises(GankitError, match=r"only 0 of 5,000 samples look like a 7 to the evaluator: the generator "
                                          r"may not draw it yet \(train longer\)"):
        _group_mean(z, torch.zeros(5000, dtype=torch.long), ink, 7, None)
    few = torch.zeros(100, dtype=torch.long)
    few[:2] = 7
    with pytest.raises(GankitError, match=r"only 2 of 100 samples .*draw more \(-n\)"):
        _group_mean(z[:100], few, ink[:100], 7, None)


def test_on_a_terminal_the_auto_device_is_said_before_the_work(gan_run, tmp_path, capsys, monkeypatch):
    import sys

    import gankit.api
    order = []
    real = gankit.api.sample_to_file
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(gankit.api, "sample_to_file", lambda *a, **k: (order.append("work"), real(*a, **k))[1])
    device = sys.modules["gankit.train.device"]  # (gankit.train is also the function of that name)
    monkeypatch.setattr(device, "auto_note", lambda: order.append("note") or "device: cpu (auto: test)")
    assert main(["sample", str(gan_run), "-n", "4", "-o", str(tmp_path / "a.png")]) == 0
    assert order == ["note", "work"]


def test_gankit_alone_prints_the_help(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    assert out.startswith("usage: gankit") and "examples" in out and "train" in out


def test_a_run_directory_given_as_a_config_says_how_to_resume(gan_run, capsys):
    one_line_error(capsys, ["train", str(gan_run)], f"{gan_run} is a run directory, not a config",
                   f"gankit train --out {gan_run} --resume", str(gan_run / "config.yaml"))


def test_a_text_file_given_as_an_evaluator_is_named_plainly(gan_run, capsys):
    one_line_error(capsys, ["eval", str(gan_run), "--evaluator", str(gan_run / "config.yaml")],
                   "cannot read evaluator", "it is a text file", "gankit evaluator train")


def test_the_slowdown_watch_speaks_once_after_settling_and_only_on_a_multithreaded_cpu(monkeypatch):
    from gankit.train.device import SlowdownWatch
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)

    def taken() -> float:  # another program keeps one of the two cores busy
        return 1.0

    watch = SlowdownWatch(torch.device("cpu"), busy=taken)
    said = [watch.observe(rate) for rate in (100, 110, 105, 40, 30, 20, 10)]
    assert said[:4] == [None] * 4 and said[4] is not None and said[5:] == [None, None]  # 30 < 110 / 3, once
    assert "from 110.0 to 30.0 steps/s with 2 threads" in said[4] and "--threads 1" in said[4]
    unmeasured = SlowdownWatch(torch.device("cpu"), busy=lambda: None)  # no /proc: a fall is reported
    assert [unmeasured.observe(r) for r in (100, 100, 100, 100, 20)][-1] is not None
    early = SlowdownWatch(torch.device("cpu"), busy=taken)
    assert [early.observe(r) for r in (100, 10, 10)] == [None] * 3  # not before it has settled
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert SlowdownWatch(torch.device("cpu")).active is False  # one thread: the advice is moot
    assert SlowdownWatch(torch.device("meta")).active is False


def test_a_slowdown_on_free_cores_is_the_step_growing_and_becomes_the_rate_watched(monkeypatch):
    from gankit.train.device import SlowdownWatch
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    others = [0.1]
    watch = SlowdownWatch(torch.device("cpu"), busy=lambda: others[0])
    # a grown StyleGAN: 21 steps/s at 8 px, 6.5 at 32 px, the cores free: no note
    assert [watch.observe(r) for r in (21, 21, 21, 21, 6.5, 6.4)] == [None] * 6
    assert watch.best == 6.5
    others[0] = 1.5  # then another program takes the cores: measured against the new rate
    note = watch.observe(2.0)
    assert note is not None and "from 6.5 to 2.0 steps/s" in note


def test_the_busy_note_counts_free_cores_against_threads():
    from gankit.train.device import busy_cpu_note
    assert busy_cpu_note(busy=0.9, cores=2, threads=2) is not None  # one core taken: two threads contend
    assert busy_cpu_note(busy=0.3, cores=2, threads=2) is None
    assert busy_cpu_note(busy=1.2, cores=8, threads=4) is None


def test_busy_cores_are_measured_from_the_system_less_this_process():
    from gankit.train.device import others_busy_cores
    busy = others_busy_cores(0.2)
    assert busy is None or 0.0 <= busy <= (os.cpu_count() or 1) + 0.5


def test_training_says_the_cpu_is_busy_with_its_header_even_into_a_log(tmp_path, capsys, monkeypatch):
    import sys

    device = sys.modules["gankit.train.device"]
    monkeypatch.setattr(device, "others_busy_cores", lambda: 64.0)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert main(train_args(tmp_path / "r")) == 0  # stdout and stderr are captured: no terminal
        out = capsys.readouterr().out
        assert out.startswith("note: the CPU is busy") and "--threads 1" in out
        assert main(["eval", str(tmp_path / "r"), "-n", "50", "--kid-subsets", "2", "--force", "--json",
                     "--device", "cpu"]) == 0
        json.loads(capsys.readouterr().out)  # a verb's result stays clean off a terminal
        assert main(["train", "--print-config"]) == 0
        yaml.safe_load(capsys.readouterr().out)
    finally:
        torch.set_num_threads(before)
