"""Data safety: nothing a user owns is deleted, one writer per run directory, exact checkpoint names.

Each test goes through the command line as a user would meet the fault, and each failed on the code before the run
marker, the lock and the exact-name pruning existed (2d1122e)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from gankit.cli import main
from gankit.train import checkpoint as ckpt
from gankit.train import rundir
from cli_helpers import one_line_error

SMALL = {"model": {"latent_dim": 8, "g_hidden": [32], "d_hidden": [32]},
         "train": {"steps": 20, "checkpoint_every": 5, "eval_every": 0, "progress": False, "batch_size": 16,
                   "sample_every": 10, "log_every": 5}}


def small_config(tmp_path: Path, **train) -> Path:
    cfg = {"model": SMALL["model"], "train": {**SMALL["train"], **train}}
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "gankit", *args]


# ---------------------------------------------------------------------------------------------------------------
# 1. --overwrite replaces only what gankit wrote


def test_overwrite_refuses_a_folder_that_is_not_a_run_and_deletes_nothing(tmp_path, capsys):
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "thesis.txt").write_text("thesis")
    (victim / "sub" / "data.csv").write_text("1,2")
    before = tree(victim)
    err = one_line_error(capsys, ["train", str(small_config(tmp_path)), "--out", str(victim), "--overwrite"])
    assert "not a gankit run" in err and "thesis.txt" in err
    assert tree(victim) == before and (victim / "sub").is_dir()


def test_overwrite_of_the_current_source_folder_is_refused(tmp_path, capsys, monkeypatch):
    source = tmp_path / "project"
    source.mkdir()
    (source / "main.py").write_text("print('hello')\n")
    config = small_config(tmp_path)
    monkeypatch.chdir(source)
    err = one_line_error(capsys, ["train", str(config), "--out", ".", "--overwrite"])
    assert "not a gankit run" in err and "main.py" in err
    assert (source / "main.py").read_text() == "print('hello')\n" and sorted(os.listdir(source)) == ["main.py"]


def test_overwrite_replaces_a_run_but_keeps_the_users_own_files(tmp_path, capsys):
    config = small_config(tmp_path)
    run = tmp_path / "run"
    assert main(["train", str(config), "--out", str(run)]) == 0
    assert (run / rundir.MARKER).is_file()
    (run / "notes.txt").write_text("lr 2e-4 looked best")
    (run / "samples" / "favourite.png").write_bytes(b"mine")
    (run / "checkpoints" / "step_0000010_keep-me.safetensors").write_bytes(b"mine too")
    (run / "eval" / "mine.json").parent.mkdir(exist_ok=True)
    (run / "eval" / "mine.json").write_text("{}")
    gankit_eval = ["step_0000020-n300.json", "step_0000020-ntest.json", "step_0000020-n300-psi0.7.json",
                   "step_0000020-n300-raw.json", "step_0000020-n300-psi1e-05-raw.json"]  # what gankit eval writes
    for name in gankit_eval:
        (run / "eval" / name).write_text('{"fid": 1.0}')
    old = (run / "checkpoints" / "step_0000020.safetensors").read_bytes()
    capsys.readouterr()
    assert main(["train", str(config), "--out", str(run), "--overwrite", "--set", "train.seed=7",
                 "--set", "train.steps=10"]) == 0
    assert "kept what gankit did not write" in capsys.readouterr().err
    assert (run / "notes.txt").read_text() == "lr 2e-4 looked best"
    assert (run / "samples" / "favourite.png").read_bytes() == b"mine"
    assert (run / "checkpoints" / "step_0000010_keep-me.safetensors").read_bytes() == b"mine too"
    assert not (run / "checkpoints" / "step_0000020.safetensors").exists()  # the old run's, replaced
    assert not any((run / "eval" / name).exists() for name in gankit_eval)  # scores of the old run's weights
    assert (run / "eval" / "mine.json").read_text() == "{}"
    assert (run / "checkpoints" / "step_0000010.safetensors").read_bytes() != old
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["seed"] == 7
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [5, 10]  # the old run's rows went with it


def test_overwrite_accepts_a_run_written_before_markers_existed(tmp_path):
    config = small_config(tmp_path)
    run = tmp_path / "run"
    assert main(["train", str(config), "--out", str(run)]) == 0
    (run / rundir.MARKER).unlink()
    (run / rundir.LOCK).unlink()
    assert main(["train", str(config), "--out", str(run), "--overwrite", "--set", "train.steps=5"]) == 0
    assert json.loads((run / "checkpoints" / "latest.json").read_text())["step"] == 5


@pytest.mark.parametrize("where", ["file", "under_a_file"])
def test_out_naming_a_file_is_one_line_and_touches_nothing(tmp_path, capsys, where):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    out = afile if where == "file" else afile / "run"
    err = one_line_error(capsys, ["train", str(small_config(tmp_path)), "--out", str(out), "--overwrite"])
    assert "is a file" in err and afile.read_text() == "mine"


# ---------------------------------------------------------------------------------------------------------------
# 2. One writer per run directory


def _wait_for_checkpoint(run: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not (run / "checkpoints" / "latest.json").is_file():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else proc.returncode
        assert time.monotonic() < deadline, "the first writer never checkpointed"
        time.sleep(0.05)


def test_a_second_writer_is_refused_and_a_killed_writer_never_blocks_resume(tmp_path, capsys):
    config = small_config(tmp_path, steps=10 ** 6, checkpoint_every=50)
    run = tmp_path / "run"
    first = subprocess.Popen(cli("train", str(config), "--out", str(run)), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_checkpoint(run, first)
        for argv in (["train", str(config), "--out", str(run), "--overwrite"],
                     ["train", "--out", str(run), "--resume"]):
            err = one_line_error(capsys, argv)
            assert "in use by another gankit process" in err and f"pid {first.pid}" in err
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL  # it was still training: the refusals did not stop it
    step = json.loads((run / "checkpoints" / "latest.json").read_text())["step"]
    assert main(["train", "--out", str(run), "--resume", "--set", f"train.steps={step + 5}"]) == 0
    assert json.loads((run / "checkpoints" / "latest.json").read_text())["step"] == step + 5


def test_two_writers_started_together_one_wins_and_the_rows_are_not_doubled(tmp_path):
    config = small_config(tmp_path, steps=40)
    run = tmp_path / "run"
    procs = [subprocess.Popen(cli("train", str(config), "--out", str(run), "--set", f"train.seed={seed}"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert sorted(code for code, _ in results) == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert loser.count("\n") == 1 and ("in use by another gankit process" in loser or "already exists" in loser)
    winner_seed = 1 if results[0][0] == 0 else 2
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["seed"] == winner_seed
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [5, 10, 15, 20, 25, 30, 35, 40]


# ---------------------------------------------------------------------------------------------------------------
# 3-4. Pruning by the step in the name, exact names only


def _checkpoint_at(run: Path, step: int) -> None:
    """Make the run's latest checkpoint claim ``step`` (as if it had trained that long)."""
    folder = run / "checkpoints"
    tensors, meta = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))
    for path in folder.glob("step_*.safetensors"):
        path.unlink()
    ckpt.save_checkpoint(folder / ckpt.step_file(step), tensors, {**meta, "step": step})
    (folder / "latest.json").write_text(json.dumps({"step": step, "file": ckpt.step_file(step)}))


def test_pruning_past_step_ten_million_keeps_the_newest_checkpoints(tmp_path):
    config = small_config(tmp_path, steps=5, keep_checkpoints=3)
    run = tmp_path / "run"
    assert main(["train", str(config), "--out", str(run)]) == 0
    _checkpoint_at(run, 9_999_998)
    assert main(["train", "--out", str(run), "--resume", "--set", "train.steps=10000004",
                 "--set", "train.checkpoint_every=1", "--set", "train.log_every=1"]) == 0
    names = sorted(p.name for p in (run / "checkpoints").glob("step_*.safetensors"))
    assert names == ["step_10000002.safetensors", "step_10000003.safetensors", "step_10000004.safetensors"]
    latest = json.loads((run / "checkpoints" / "latest.json").read_text())
    assert latest == {"step": 10_000_004, "file": "step_10000004.safetensors"}
    assert ckpt.latest_checkpoint(run).name == "step_10000004.safetensors"


def test_checkpoints_are_ordered_by_step_not_as_text(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for step in (9_999_999, 10_000_000, 999_999, 12):
        (folder / ckpt.step_file(step)).write_bytes(b"x")
    for name in ("step_10.safetensors", "step_0000012_old.safetensors", "step_0000013.safetensors.bak"):
        (folder / name).write_bytes(b"user")
    assert [s for s, _ in ckpt.step_checkpoints(folder)] == [12, 999_999, 9_999_999, 10_000_000]
    assert ckpt.latest_checkpoint(tmp_path).name == "step_10000000.safetensors"
    assert [p.name for p in ckpt.prune(folder, 2)] == ["step_0000012.safetensors", "step_0999999.safetensors"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "step_0000012_old.safetensors", "step_0000013.safetensors.bak", "step_10.safetensors",
        "step_10000000.safetensors", "step_9999999.safetensors"]


# ---------------------------------------------------------------------------------------------------------------
# 5. Temporaries: gankit names every one it writes, and cleans only those


def test_leaked_temporaries_are_cleaned_on_resume_and_the_users_files_stay(tmp_path):
    config = small_config(tmp_path, steps=10)
    run = tmp_path / "run"
    assert main(["train", str(config), "--out", str(run)]) == 0
    folder = run / "checkpoints"
    (folder / ".tmpAb3xYz").write_bytes(b"\0" * 4096)  # safetensors' own temporary, left by a kill mid-write
    (folder / "step_0000015.safetensors.tmp").write_bytes(b"half")
    (folder / "latest.json.tmp").write_text("{")
    (folder / "notes.tmp").write_text("mine")
    assert main(["train", "--out", str(run), "--resume", "--set", "train.steps=15"]) == 0
    assert sorted(p.name for p in folder.iterdir() if "tmp" in p.name) == ["notes.tmp"]


def test_a_checkpoint_write_makes_no_temporary_but_its_own(tmp_path, monkeypatch):
    seen: list[list[str]] = []
    write = ckpt._write_new

    def watch(path, data):
        write(path, data)
        seen.append(sorted(os.listdir(path.parent)))

    monkeypatch.setattr(ckpt, "_write_new", watch)
    assert main(["train", str(small_config(tmp_path, steps=5)), "--out", str(tmp_path / "run")]) == 0
    assert len(seen) == 2  # the checkpoints of steps 0 and 5
    assert all(not [n for n in names if n.startswith(".tmp")] for names in seen)
    assert "step_0000005.safetensors.tmp" in seen[-1]
