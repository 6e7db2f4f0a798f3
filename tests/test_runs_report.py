"""Looking at runs: session records, `gankit runs` (status of finished, stopped, crashed and running runs),
`gankit plot` and the report's HTML (the page in a real browser: tests/test_report_browser.py)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

import gankit
from gankit.cli import main
from gankit.runs.html import render
from gankit.runs.listing import number
from gankit.runs.plot import standard_panels
from gankit.runs.run import read_run
from gankit.train import rundir

from cli_helpers import one_line_error


@pytest.fixture
def runs(looked_at_runs):
    return looked_at_runs


def _sessions(run):
    return [json.loads(line) for line in (run / "sessions.jsonl").read_text().splitlines()]


def test_each_session_records_its_start_and_its_outcome(runs):
    finished = _sessions(runs["finished"])
    assert [r["event"] for r in finished] == ["start", "end"]
    assert finished[0]["step"] == 0 and finished[0]["planned"] == 120 and finished[0]["config"] == "default"
    assert finished[1]["outcome"] == "finished" and finished[1]["step"] == 120
    assert finished[0]["time"] <= finished[1]["time"]
    stopped = _sessions(runs["stopped"])[-1]
    assert stopped["outcome"] == "stopped" and "max_minutes" in stopped["reason"] and 0 < stopped["step"] < 100000
    crashed = _sessions(runs["crashed"])
    assert [r["event"] for r in crashed] == ["start"]  # SIGKILL: no end record


def test_a_resumed_run_adds_a_session_and_an_error_is_recorded_as_a_crash(tmp_path, tiny_overrides):
    run = gankit.train(None, overrides=[*tiny_overrides, "train.steps=4"], out=tmp_path / "r")
    gankit.train(None, overrides=["train.steps=8"], out=run, resume=True)
    records = _sessions(run)
    assert [(r["event"], r["step"]) for r in records] == [("start", 0), ("end", 4), ("start", 4), ("end", 8)]
    assert records[2].get("config") is None and read_run(run).config_name == "default"  # the first session's
    assert read_run(run).status() == ("finished", "")

    class Boom(RuntimeError):
        pass

    def explode(*args, **kwargs):
        raise Boom("the disk caught fire")

    from gankit.train.trainer import Trainer
    original = Trainer.fit
    Trainer.fit = explode
    try:
        with pytest.raises(Boom):
            gankit.train(None, overrides=["train.steps=12"], out=run, resume=True)
    finally:
        Trainer.fit = original
    last = _sessions(run)[-1]
    assert last["outcome"] == "crashed" and last["reason"] == "Boom: the disk caught fire"
    assert read_run(run).status() == ("crashed", "Boom: the disk caught fire")


def test_runs_lists_every_run_with_its_status_steps_best_and_time(runs, capsys):
    assert main(["runs", str(runs["finished"].parent), "--json"]) == 0
    rows = {r["run"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"finished", "stopped", "crashed", "translation"}
    assert {k: rows[k]["status"] for k in rows} == {"finished": "finished", "stopped": "stopped",
                                                    "crashed": "crashed", "translation": "finished"}
    fin = rows["finished"]
    best = json.loads((runs["finished"] / "checkpoints" / "best.json").read_text())
    assert (fin["steps_done"], fin["steps_planned"], fin["best_metric"]) == (120, 120, "fid")
    assert fin["best_value"] == best["fid"] and fin["best_step"] == best["step"]
    evals = [json.loads(p.read_text()) for p in sorted((runs["finished"] / "eval").glob("step_*.json"))]
    assert best["fid"] == min(e["fid"] for e in evals) and len(evals) == 3
    sessions = _sessions(runs["finished"])
    assert fin["wall_seconds"] == pytest.approx(sessions[1]["time"] - sessions[0]["time"], abs=0.06)
    assert fin["last_checkpoint"].endswith("step_0000120.safetensors")
    crashed = rows["crashed"]
    assert crashed["steps_done"] == 0 and crashed["steps_logged"] >= 40 and "no end record" in crashed["why"]
    assert rows["translation"]["best_metric"] is None and rows["translation"]["steps_done"] == 8

    assert main(["runs", str(runs["finished"].parent), "--sort", "best"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["run", "config", "family", "steps"] and len(table) == 5
    names = [line.split()[0] for line in table[1:]]
    with_fid = [n for n in names if n in ("finished", "crashed", "stopped") and rows[n]["best_value"] is not None]
    assert [rows[n]["best_value"] for n in with_fid] == sorted(rows[n]["best_value"] for n in with_fid)
    assert names[-1] == "translation"  # no evaluation: last
    assert f"fid {number(best['fid'])}" in "\n".join(table) and "(killed?)" not in table[0]


def test_a_run_training_now_is_listed_as_running(runs, capsys):
    with rundir.lock(runs["crashed"]):  # what a training process holds (a second one, or a resumed one)
        listed = gankit.list_runs(runs["crashed"].parent, sort="status")
        assert [r["status"] for r in listed] == ["finished", "finished", "running", "stopped"]
        assert listed[2]["run"] == "crashed"
    assert {r["status"] for r in gankit.list_runs(runs["crashed"].parent)} == {"finished", "stopped", "crashed"}


def test_runs_and_plot_and_report_refuse_bad_input_in_one_line(runs, tmp_path, capsys):
    one_line_error(capsys, ["runs", str(tmp_path / "nowhere")], "is not a folder")
    one_line_error(capsys, ["plot", str(tmp_path), "-o", str(tmp_path / "c.png")], "not a gankit run directory")
    one_line_error(capsys, ["report", str(runs["finished"] / "config.yaml")], "is a file, not a run directory")
    fresh = tmp_path / "fresh"
    rundir.claim(fresh).release()  # a run claimed, nothing logged yet
    one_line_error(capsys, ["plot", str(fresh), "-o", str(tmp_path / "c.png")], "has no metrics yet")
    one_line_error(capsys, ["report", str(fresh), "-o", str(tmp_path / "r.html")], "has no metrics yet")
    one_line_error(capsys, ["plot", str(runs["finished"]), "--metric", "nope", "-o", str(tmp_path / "c.png")],
                   "no run logged it", "eval/fid", "d_loss")
    one_line_error(capsys, ["plot", str(runs["finished"]), "-o", str(tmp_path / "c.txt")], ".png, .svg or .pdf")
    one_line_error(capsys, ["plot", str(runs["finished"]), "--smooth", "1", "-o", str(tmp_path / "c.png")], "[0, 1)")
    assert main(["runs", str(tmp_path / "fresh")]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[3:5] == ["0/?", "empty"]


def test_plot_draws_the_standard_panels_of_each_family(runs, tmp_path, capsys):
    gan = read_run(runs["finished"])
    titles = [p.title for p in standard_panels([gan])]
    assert titles[0] == "losses" and titles[1].startswith("discriminator")
    assert "fid over steps" in titles and "fid over training minutes" in titles and "recall over steps" in titles
    pix = read_run(runs["translation"])
    pix_keys = [k for p in standard_panels([pix]) for k in p.keys]
    assert "d_loss" in pix_keys and not any(k.startswith("eval/") for k in pix_keys)
    out = tmp_path / "curves.png"
    assert main(["plot", str(runs["finished"]), str(runs["crashed"]), str(runs["stopped"]), "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    image = np.asarray(Image.open(out).convert("L"), dtype=np.float32)
    assert image.shape[0] > 300 and image.shape[1] > 900 and 5 < image.std() < 120  # drawn, not blank
    assert main(["plot", str(runs["finished"]), "--metric", "eval/*", "--metric", "steps_per_s", "--time",
                 "--smooth", "0.6", "-o", str(tmp_path / "evals.svg")]) == 0
    assert (tmp_path / "evals.svg").read_text().count("<svg") == 1


def test_minutes_skip_the_time_between_a_crash_and_its_resume():
    from gankit.runs.run import Run
    run = Run(path=None, sessions=[{"event": "start", "time": 100.0}, {"event": "start", "time": 1000.0},
                                   {"event": "end", "time": 1060.0}],
              rows=[{"step": 1, "time": 130.0}, {"step": 2, "time": 1030.0}])
    assert run.wall_seconds() == pytest.approx(30 + 60)  # the crashed session ends at its last row
    assert run.minutes_at(130.0) == pytest.approx(0.5) and run.minutes_at(1030.0) == pytest.approx(1.0)


def test_the_report_holds_the_run_files_numbers_and_every_grid(runs):
    page = render([read_run(runs["finished"]), read_run(runs["crashed"]), read_run(runs["translation"])])
    assert "http://" not in page and "https://" not in page  # self-contained: nothing fetched
    cells = re.findall(r'data-run="([^"]+)" data-step="([^"]+)" data-key="([^"]+)" data-value="([^"]+)">([^<]+)<',
                       page)
    evals = {int(p.stem[5:]): json.loads(p.read_text()) for p in (runs["finished"] / "eval").glob("step_*.json")}
    checked = 0
    for run, step, key, value, text in cells:
        if run == "finished" and not key.startswith("best/"):
            assert json.loads(value) == evals[int(step)][key] and text == number(evals[int(step)][key])
            checked += 1
    assert checked >= 3 * 10
    frames = re.findall(r'<img class="frame" data-step="(\d+)"', page)
    assert frames.count("120") == 1 and len(frames) >= 6 + 4  # finished: steps 20..120; the others theirs
    assert "no training-time evaluation" in page and "crashed" in page and "Comparison" in page


def _stderr_on_a_terminal(args: list[str]) -> str:
    """What ``gankit ARGS`` writes to stderr when stderr is a terminal (a pseudo-terminal here)."""
    import os
    import subprocess
    import sys
    import threading
    from pathlib import Path

    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a new pty is 0 columns wide
    chunks: list[bytes] = []

    def drain():
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # the terminal closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    env = {**os.environ, "PYTHONPATH": str(Path(gankit.__file__).parents[1]), "COLUMNS": "120"}
    try:
        done = subprocess.run([sys.executable, "-m", "gankit", *args], stdout=subprocess.PIPE, stderr=slave,
                              env=env, timeout=300)
    finally:
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
    assert done.returncode == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


def test_long_verbs_show_a_bar_on_a_terminal_and_none_with_quiet(runs, tmp_path):
    pix = runs["translation"]
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, arr_0=np.zeros((600, 16, 16, 1), np.uint8))
    shown = _stderr_on_a_terminal(["translate", str(pix), str(inputs), "-o", str(tmp_path / "out.npz"),
                                   "--threads", "1"])
    assert re.search(r"translate:\s+\d+%\|.*\| \d/3 ", shown), shown  # 600 images in batches of 256
    quiet = _stderr_on_a_terminal(["translate", str(pix), str(inputs), "-o", str(tmp_path / "out2.npz"),
                                   "--threads", "1", "--quiet"])
    assert "translate" not in quiet and "%|" not in quiet
    assert _stderr_on_a_terminal(["sample", str(runs["finished"]), "-n", "3000", "-o", str(tmp_path / "s.npz"),
                                  "--threads", "1"]).count("sample:") >= 1


def test_rollbacks_are_health_events_not_curves(tmp_path):
    from gankit.runs.html import _health
    from gankit.runs.run import Run
    rows = [{"step": 10, "d_loss": 0.7, "g_loss": 1.2, "steps_per_s": 50.0, "time": 1.0},
            {"step": 12, "event": "rollback", "reason": "non-finite d_loss in the losses", "failed_step": 12,
             "retry": 1, "time": 2.0},
            {"step": 20, "warning": "D(G(z)) near 0 for 100 steps", "time": 3.0}]
    run = Run(path=tmp_path, rows=rows)
    keys = [k for panel in standard_panels([run]) for k in panel.keys]
    assert keys == ["d_loss", "g_loss"]  # no curve of failed_step or retry
    shown = _health(run)
    assert "step 12: rollback: non-finite d_loss in the losses (failed_step 12, retry 1)" in shown
    assert "step 20: D(G(z)) near 0 for 100 steps" in shown


def test_an_unwritable_output_is_one_line(runs, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    one_line_error(capsys, ["plot", str(runs["finished"]), "-o", str(blocker / "curves.png")], "could not write")
    one_line_error(capsys, ["report", str(runs["finished"]), "-o", str(blocker / "r.html")], "could not write")
