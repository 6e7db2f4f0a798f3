"""The command line: train and sample end to end, and user mistakes as one-line errors with a non-zero exit."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from gankit.cli import main


@pytest.fixture
def trained(tmp_path, tiny_overrides):
    out = tmp_path / "run"
    args = ["train", "--out", str(out), "--set", "train.steps=6"]
    for item in tiny_overrides:
        args += ["--set", item]
    assert main(args) == 0
    return out


def test_train_prints_the_run_directory(trained, capsys):
    assert (trained / "checkpoints" / "latest.json").is_file()


def test_sample_writes_npz_in_the_evaluation_layout(trained, tmp_path, capsys):
    out = tmp_path / "s.npz"
    assert main(["sample", str(trained), "-n", "30", "--seed", "1", "-o", str(out)]) == 0
    arr = np.load(out)["arr_0"]
    assert arr.shape == (30, 8, 8, 1) and arr.dtype == np.uint8
    assert "wrote 30 samples" in capsys.readouterr().out
    again = tmp_path / "t.npz"
    main(["sample", str(trained), "-n", "30", "--seed", "1", "-o", str(again)])
    assert np.array_equal(np.load(again)["arr_0"], arr)


def test_sample_writes_a_png_grid(trained, tmp_path):
    out = tmp_path / "grid.png"
    assert main(["sample", str(trained), "-n", "16", "-o", str(out)]) == 0
    img = Image.open(out)
    assert img.mode == "L" and img.size[0] == img.size[1] > 4 * 8


@pytest.mark.parametrize("argv, words", [
    (["train", "--set", "train.stepz=3"], ["train.stepz", "valid keys"]),
    (["train", "missing.yaml"], ["config file not found", "missing.yaml"]),
    (["sample", "no/such/run", "-o", "x.png"], ["no run or checkpoint", "no/such/run"]),
    (["train", "--resume"], ["--out"]),
])
def test_user_mistakes_are_one_line_errors(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gankit: error:")
    for word in words:
        assert word in err


def test_bad_output_suffix(trained, tmp_path, capsys):
    assert main(["sample", str(trained), "-n", "4", "-o", str(tmp_path / "x.jpg")]) == 2
    assert ".png" in capsys.readouterr().err


def test_entry_point_exits_nonzero_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "gankit", "train", "--set", "optim.lr_g=-1"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "optim.lr_g" in proc.stderr


def test_help_lists_the_subcommands():
    proc = subprocess.run([sys.executable, "-m", "gankit", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert "train" in proc.stdout and "sample" in proc.stdout and "examples" in proc.stdout
