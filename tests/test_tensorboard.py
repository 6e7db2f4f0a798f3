"""TensorBoard logging (#21): a run's event files, read back with TensorBoard's own reader, hold every number of
``metrics.jsonl`` at its step, each preview grid and the health warnings and events; after a SIGKILL and --resume,
or a NaN rollback, no step is read twice or backwards; with train.tensorboard=false, without the package, or on a
rank other than 0 nothing is written; --overwrite deletes the event files (and only those)."""

from __future__ import annotations

import errno
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.config import load_config
from gankit.train import Trainer
from gankit.train.board import EVENT_FILE, Board
from gankit.train.log import MetricsLog

COORDINATES = ("step", "time")


@pytest.fixture
def read_events():
    """A function from a run directory to TensorBoard's EventAccumulator over RUN/tensorboard, loaded whole."""
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

    def read(run_dir: Path):
        everything = {kind: 0 for kind in accumulator.DEFAULT_SIZE_GUIDANCE}  # 0: keep every event, sample none
        return accumulator.EventAccumulator(str(run_dir / "tensorboard"), size_guidance=everything).Reload()
    return read


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def logged_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every number of metrics.jsonl (rows of events and warnings aside), as (step, value) per key."""
    found: dict[str, list[tuple[int, float]]] = {}
    for row in rows(run_dir):
        if "event" in row or "warning" in row:
            continue
        for key, value in row.items():
            if key not in COORDINATES and isinstance(value, (int, float)) and not isinstance(value, bool):
                found.setdefault(key, []).append((row["step"], value))
    return found


def assert_scalars_match_the_log(acc, run_dir: Path) -> None:
    """The event files' scalars are metrics.jsonl's: the same tags, steps (each once, increasing) and values
    (rounded to float32, as TensorBoard stores them)."""
    expected = logged_scalars(run_dir)
    assert sorted(acc.Tags()["scalars"]) == sorted(expected)
    for tag, logged in expected.items():
        events = acc.Scalars(tag)
        steps = [e.step for e in events]
        assert steps == sorted(set(steps)), f"{tag}: steps twice or backwards: {steps}"
        assert steps == [step for step, _ in logged], tag
        assert [np.float32(e.value) for e in events] == [np.float32(v) for _, v in logged], tag


def texts(acc, tag: str = "health/text_summary") -> list[tuple[int, str]]:
    from tensorboard.util.tensor_util import make_ndarray

    return [(e.step, make_ndarray(e.tensor_proto).item().decode()) for e in acc.Tensors(tag)]


def previews(run_dir: Path) -> list[int]:
    return sorted(int(p.stem.removeprefix("step_")) for p in (run_dir / "samples").glob("step_*.png"))


def tiny(tiny_overrides: list[str], **train) -> list[str]:
    return [*tiny_overrides, *(f"train.{key}={value}" for key, value in train.items())]


def test_every_scalar_grid_and_warning_of_a_run_is_in_its_event_files(tmp_path, tiny_overrides, read_events):
    overrides = tiny(tiny_overrides, steps=20, log_every=2, sample_every=5, checkpoint_every=10, eval_every=20,
                     eval_samples=300)
    # armed from the start and easy to trip: a warning from a log row (D's accuracy) and one from a grid (diversity)
    overrides += ["health.warmup_steps=0", "health.d_acc_threshold=1e-6", "health.d_acc_patience=1",
                  "health.diversity_ratio=0.99"]
    run_dir = gankit.train(None, overrides=overrides, out=tmp_path / "run")
    acc = read_events(run_dir)
    assert_scalars_match_the_log(acc, run_dir)
    assert {"d_loss", "g_loss", "d_real", "d_fake", "d_acc", "steps_per_s", "eval/fid"} <= set(acc.Tags()["scalars"])
    assert [e.step for e in acc.Scalars("eval/fid")] == [20]
    images = acc.Images("samples")
    assert [e.step for e in images] == previews(run_dir) == [5, 10, 15, 20]
    with Image.open(io.BytesIO(images[-1].encoded_image_string)) as shown, \
            Image.open(run_dir / "samples" / "step_0000020.png") as grid:
        assert np.array_equal(np.asarray(shown), np.asarray(grid.convert("RGB")))  # the grid itself, pixel for pixel
    warnings = [(row["step"], row["warning"]) for row in rows(run_dir) if "warning" in row]
    assert len(warnings) == 2 and texts(acc) == warnings


def _killer(run_dir: Path, kill_at: int, overrides: list[str]) -> list[str]:
    """A training process that flushes its events after the log row of ``kill_at`` and then SIGKILLs itself."""
    script = f"""
import os, signal
import gankit
from gankit.train.log import MetricsLog

write = MetricsLog.write

def write_then_die(self, row):
    write(self, row)
    if row["step"] == {kill_at} and "d_loss" in row:
        self.flush()  # the events past the checkpoint reach the disk, as a timed flush would put them there
        os.kill(os.getpid(), signal.SIGKILL)

MetricsLog.write = write_then_die
gankit.train(None, overrides={overrides!r}, out={str(run_dir)!r})
"""
    return [sys.executable, "-c", script]


def test_a_run_killed_after_a_checkpoint_then_resumed_reads_back_each_step_once(tmp_path, tiny_overrides,
                                                                                  read_events):
    overrides = tiny(tiny_overrides, steps=30, log_every=2, sample_every=5, checkpoint_every=10)
    run_dir = tmp_path / "run"
    killed = subprocess.run(_killer(run_dir, 16, overrides), capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr[-2000:]
    before = read_events(run_dir)
    assert [e.step for e in before.Scalars("d_loss")][-1] == 16  # events past the checkpoint at step 10 on disk
    assert [e.step for e in before.Images("samples")] == [5, 10, 15]
    stale = {e.step: e.value for e in before.Scalars("steps_per_s")}

    gankit.train(None, out=run_dir, resume=True)
    assert len(list((run_dir / "tensorboard").iterdir())) == 2  # the killed process's file and the resumed one's
    acc = read_events(run_dir)
    assert_scalars_match_the_log(acc, run_dir)
    assert [e.step for e in acc.Scalars("d_loss")] == list(range(2, 31, 2))
    # steps/s is a host clock, so it tells the processes apart: the killed one's rows up to the checkpoint stay,
    # its rows 12..16 are replaced by the resumed run's
    resumed = {e.step: e.value for e in acc.Scalars("steps_per_s")}
    assert [resumed[s] for s in range(2, 11, 2)] == [stale[s] for s in range(2, 11, 2)]
    assert all(resumed[s] != stale[s] for s in range(12, 17, 2))
    assert [e.step for e in acc.Images("samples")] == previews(run_dir) == [5, 10, 15, 20, 25, 30]


def test_a_nan_rollback_marks_its_steps_stale_in_the_same_file(tmp_path, tiny_overrides, read_events):
    cfg = load_config(None, tiny(tiny_overrides, steps=30, log_every=1, sample_every=1000, checkpoint_every=10))
    trainer = Trainer(cfg, tmp_path / "run")
    step, fired = trainer.recipe.step, []

    def poisoned(*args, **kwargs):  # the generator's weights turn to NaN after step 13, once
        logs = step(*args, **kwargs)
        if trainer.step + 1 == 13 and not fired:
            fired.append(True)
            with torch.no_grad():
                next(trainer.modules["generator"].parameters()).fill_(float("nan"))
        return logs

    trainer.recipe.step = poisoned
    run_dir = trainer.fit()
    trainer.log.close()
    acc = read_events(run_dir)
    assert len(list((run_dir / "tensorboard").iterdir())) == 1
    assert_scalars_match_the_log(acc, run_dir)  # rows 11..13 of the failed attempt are gone, as from metrics.jsonl
    assert [e.step for e in acc.Scalars("g_loss")] == list(range(1, 31))
    [(at, text)] = texts(acc)
    assert at == 10 and text.startswith("event: rollback") and "failed_step: 14" in text


@pytest.mark.parametrize("how", ["train.tensorboard=false", "no package"])
def test_no_event_files_when_off_or_without_the_package(tmp_path, tiny_overrides, monkeypatch, how):
    overrides = tiny(tiny_overrides, steps=4, log_every=2, sample_every=2)
    if how == "no package":
        monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard raises ImportError
        monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    else:
        overrides.append(how)
    run_dir = gankit.train(None, overrides=overrides, out=tmp_path / "run")
    assert not (run_dir / "tensorboard").exists()
    assert [row["step"] for row in rows(run_dir)] == [2, 4] and previews(run_dir) == [2, 4]


def test_a_rank_other_than_0_writes_no_events(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl", enabled=False)
    log.write({"step": 1, "d_loss": 0.5})
    log.warn(1, ["a warning"])
    log.truncate_after(0)
    log.flush()
    assert list(tmp_path.iterdir()) == []


def test_closing_on_a_full_disk_hides_nothing(tmp_path, capsys):
    closed = []

    class FullDisk:  # a writer whose last flush fails, as the run ends (perhaps for that very reason)
        def close(self):
            closed.append(True)
            raise OSError(errno.ENOSPC, "No space left on device")

    log = MetricsLog(tmp_path / "metrics.jsonl")
    log.board.writer = FullDisk()
    log.close()
    log.close()  # closed once: the second does nothing
    assert closed == [True] and capsys.readouterr().err == ""


def test_a_file_opened_within_the_second_of_the_last_sorts_after_it(tmp_path, read_events):
    board = Board(tmp_path / "tensorboard")
    for step in (1, 2):  # two writers at once: TensorBoard reads the files in the order of their names
        board.scalars({"step": step, "x": float(step)})
        board.close()
    names = sorted(p.name for p in (tmp_path / "tensorboard").iterdir())
    assert len(names) == 2 and len({EVENT_FILE.fullmatch(name).group(1) for name in names}) == 2
    assert [(e.step, e.value) for e in read_events(tmp_path).Scalars("x")] == [(1, 1.0), (2, 2.0)]


def test_overwrite_deletes_the_event_files_and_keeps_the_users(tmp_path, tiny_overrides):
    pytest.importorskip("tensorboard")
    overrides = tiny(tiny_overrides, steps=2, log_every=1, sample_every=2)
    run_dir = gankit.train(None, overrides=overrides, out=tmp_path / "run")
    board = run_dir / "tensorboard"
    [events] = [p.name for p in board.iterdir()]
    assert events.startswith("events.out.tfevents.")
    (board / "notes.txt").write_text("mine")
    gankit.train(None, overrides=[*overrides, "train.tensorboard=false"], out=run_dir, overwrite=True)
    assert [p.name for p in board.iterdir()] == ["notes.txt"]
