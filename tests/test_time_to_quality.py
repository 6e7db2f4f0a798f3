"""benchmarks/time_to_quality.py end to end on the embedded digits: an override written ``probe:KEY=VALUE`` reaches
the step-rate probe and not the timed run, and ``--from`` draws the curves of earlier reports into one plot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gankit.config import load_config

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "time_to_quality.py"


def _bench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A short run of the default model on the 8x8 digits, probed at another batch size; and a second report, as
    another invocation on another machine would write it (its curve the first one's, ten times higher)."""
    tmp = tmp_path_factory.mktemp("ttq")
    (tmp / "digits.yaml").write_text("data:\n  name: digits\n")  # the rest is the embedded default's
    first = _bench("--minutes", "0.12", "--eval-minutes", "0.05", "--eval-samples", "300", "--samples", "300",
                   "--probe", "2", "--out", "runs", "--json", "first.json",
                   "--run", "probed", "digits.yaml", "train.batch_size=16", "probe:train.batch_size=8", cwd=tmp)
    assert first.returncode == 0, first.stderr[-2000:]
    second = json.loads((tmp / "first.json").read_text())
    second["machine"]["cpu"], second["seed"] = "another CPU", 1
    (run,) = second["runs"]
    run["label"], run["curve"] = "plain", [{**p, "fid": 10 * p["fid"]} for p in run["curve"]]
    (tmp / "second.json").write_text(json.dumps(second))
    return tmp


def test_a_probe_override_reaches_the_probe_and_not_the_timed_run(report):
    result = json.loads((report / "first.json").read_text())
    (run,) = result["runs"]
    assert run["overrides"] == ["train.batch_size=16"] and run["probe_overrides"] == ["train.batch_size=8"]
    assert load_config(report / "runs" / "probed_probe" / "config.yaml").train.batch_size == 8
    assert load_config(report / "runs" / "probed" / "config.yaml").train.batch_size == 16
    assert run["batch_size"] == 16 and run["steps"] > 0 and run["curve"]
    assert all(p["fid"] > 0 for p in run["curve"]) and 0 <= run["last"]["recall"] <= 1


def test_from_draws_the_runs_of_several_reports_into_one_plot_without_training(report):
    before = sorted(p.name for p in (report / "runs").iterdir())
    done = _bench("--from", "first.json", "second.json", "--plot", "both.png", cwd=report)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in (report / "runs").iterdir()) == before  # nothing trained
    image = np.asarray(Image.open(report / "both.png").convert("RGB")).astype(int)
    assert image.shape[0] > 300 and image.shape[1] > 500
    # two curves in matplotlib's first two colours (C0 blue, C1 orange), each a visible run of pixels
    for rgb in ((31, 119, 180), (255, 127, 14)):
        assert (np.abs(image - rgb).sum(axis=-1) < 30).sum() > 20


@pytest.mark.parametrize("args, message", [(["--from", "a.json"], "give --plot"),
                                           (["--plot", "x.png"], "at least one --run")])
def test_from_needs_a_plot_and_a_run_is_needed_otherwise(tmp_path, args, message):
    done = _bench(*args, cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr


def test_a_failed_run_is_reported_and_fails_the_command(tmp_path):
    done = _bench("--minutes", "0.1", "--run", "missing", "no_such_config.yaml", cwd=tmp_path)
    assert done.returncode == 1 and "1 of 1 runs failed: missing" in done.stderr
    (run,) = json.loads(done.stdout)["runs"]
    assert run["label"] == "missing" and "no_such_config.yaml" in run["error"]
