"""Output paths and flags that a user gets wrong: each is one line naming the flag or the path and what it takes,
exit code 2, no traceback, and nothing written (#24 items 12 and 13)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from gankit.cli import main

from cli_helpers import one_line_error


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    args = ["train", "--out", str(out)]
    for item in ["model.g_hidden=[16]", "model.d_hidden=[16]", "model.latent_dim=4", "train.steps=4",
                 "train.batch_size=8", "train.progress=false", "train.eval_every=0", "train.checkpoint_every=2"]:
        args += ["--set", item]
    assert main(args) == 0
    return out


def test_sample_output_paths(run, tmp_path, capsys):
    (tmp_path / "adir.png").mkdir()
    (tmp_path / "afile").write_text("mine")
    one_line_error(capsys, ["sample", str(run), "-n", "4", "-o", str(tmp_path / "adir.png")], "adir.png", "folder")
    one_line_error(capsys, ["sample", str(run), "-n", "4", "-o", str(tmp_path / "afile" / "x.png")], "afile", "is a file")
    assert (tmp_path / "afile").read_text() == "mine"
    assert main(["sample", str(run), "-n", "4", "-o", str(tmp_path / "new" / "sub" / "x.png")]) == 0  # made


def test_translate_output_paths_are_checked_before_any_work(tmp_path, capsys, run):
    one_line_error(capsys, ["translate", str(run), str(tmp_path / "nothing.png"), "-o", str(tmp_path / "t.xyz")],
             "t.xyz")


@pytest.mark.parametrize("argv, words", [
    (["sample", "RUN", "-n", "4", "--seed", "1180591620717411303424", "-o", "OUT/x.png"], ["--seed", "0"]),
    (["sample", "RUN", "-n", "0", "-o", "OUT/x.png"], ["-n"]),
    (["sample", "RUN", "-n", "4", "--truncation", "nan", "-o", "OUT/x.png"], ["truncation"]),
    (["eval", "RUN", "--kid-subset-size", "-3"], ["kid"]),
    (["eval", "RUN", "--device", "meta"], ["--device", "cpu"]),
    (["sample", "RUN", "-n", "4", "--device", "foo", "-o", "OUT/x.png"], ["--device", "cpu"]),
    (["latent", "interpolate", "RUN", "--rows", "0", "-o", "OUT/x.png"], ["--rows"]),
    (["latent", "interpolate", "RUN", "--steps", "-1", "-o", "OUT/x.png"], ["--steps"]),
    (["latent", "traverse", "RUN", "--radius", "nan", "-o", "OUT/x.png"], ["--radius"]),
    (["latent", "arithmetic", "RUN", "0 - 1", "-n", "0", "-o", "OUT/x.png"], ["-n"]),
])
def test_bad_flags_are_one_line(run, tmp_path, capsys, argv, words):
    argv = [str(run) if a == "RUN" else a.replace("OUT", str(tmp_path)) for a in argv]
    one_line_error(capsys, argv, *words)
    assert not list(tmp_path.rglob("*.png"))


def test_evaluator_output_that_is_a_folder_and_a_zero_width(tmp_path, capsys):
    (tmp_path / "folder.safetensors").mkdir()
    one_line_error(capsys, ["evaluator", "train", "--data", "digits", "-o", str(tmp_path / "folder.safetensors")],
             "folder")
    one_line_error(capsys, ["evaluator", "train", "--data", "digits", "--width", "0", "-o", str(tmp_path / "e.safetensors")],
             "--width")
    assert not (tmp_path / "e.safetensors").exists()


def test_translate_of_an_empty_npz_is_one_line(tmp_path, capsys):
    out = tmp_path / "pix2pix"
    args = ["train", "--out", str(out)]
    for item in ["model.name=pix2pix", "data.name=test_mirrored_pairs", "model.width=4", "model.d_width=4",
                 "model.d_layers=1", "train.steps=2", "train.batch_size=4", "train.progress=false",
                 "train.eval_every=0"]:
        args += ["--set", item]
    assert main(args) == 0
    capsys.readouterr()
    np.savez(tmp_path / "empty.npz")
    one_line_error(capsys, ["translate", str(out), str(tmp_path / "empty.npz"), "-o", str(tmp_path / "t.npz")],
             "empty.npz", "arr_0")
    np.savez(tmp_path / "none.npz", arr_0=np.zeros((0, 8, 8, 1), np.uint8))
    one_line_error(capsys, ["translate", str(out), str(tmp_path / "none.npz"), "-o", str(tmp_path / "t.npz")],
             "none.npz", "holds no samples")
    assert not (tmp_path / "t.npz").exists()


def test_a_metrics_row_that_is_not_an_object_does_not_break_resume(run, capsys):
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write("[1, 2]\n")
    assert main(["train", "--out", str(run), "--resume", "--set", "train.steps=6"]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(isinstance(r, dict) for r in rows) and max(r["step"] for r in rows) == 6


def test_eval_of_a_read_only_run_prints_the_scores_and_says_the_file_was_not_written(run, capsys):
    if os.geteuid() == 0:  # root writes through permission bits: a read-only bind is not available here
        target = run / "eval"
        target.mkdir(exist_ok=True)
        step = json.loads((run / "checkpoints" / "latest.json").read_text())["step"]
        blocker = target / f"step_{step:07d}-n300.json"
        blocker.mkdir()  # a folder where the file must go: the write fails as on a read-only disk
    else:
        os.chmod(run, 0o555)
    try:
        assert main(["eval", str(run), "-n", "300", "--force", "--json"]) == 0
    finally:
        os.chmod(run, 0o755)
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["fid"] > 0 and any("was not written" in w for w in result["warnings"])
    assert "could not write" in captured.err and "Traceback" not in captured.err


def test_nan_pixels_in_a_float_tiff_are_refused_by_name(tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(8):
        values = np.full((16, 16), 100.0 + i, np.float32)
        if i == 3:
            values[2, 2] = np.nan
        Image.fromarray(values, mode="F").save(folder / f"{i}.tif")
    one_line_error(capsys, ["train", "--out", str(tmp_path / "r"), "--set", "data.name=folder", "--set",
                      f"data.root={folder}", "--set", "train.steps=2", "--set", "train.batch_size=4"],
             "3.tif", "NaN")
    assert not (tmp_path / "r").exists()
