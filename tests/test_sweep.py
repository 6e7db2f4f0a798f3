"""``gankit sweep`` on Optuna: the space file's checks, a sweep whose trials are ordinary runs, pruning, a killed
sweep recovered by running it again, two processes sharing one SQLite study, and ``--show``.

Every trial trains the embedded default (an MLP GAN on digits) for tens of steps with one to three evaluations (FID
needs at least 256 samples on digits: 300 are drawn), one CPU thread per run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gankit
from gankit.cli import main
from gankit.config import load_config
from gankit.sweeps.runner import Evaluations, ObjectiveMissing
from gankit.sweeps.space import override_text, read_space
from gankit.sweeps.study import HOST, _agree, _Sweep, open_study, plan_sweep

from cli_helpers import one_line_error

optuna = pytest.importorskip("optuna", reason="Optuna comes with the sweep extra (pip install -e '.[sweep]')")
# what Optuna says of its heartbeat used with ask/tell, as the sweep uses it (gankit.sweeps.study.quiet_optuna)
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning",
                                        "ignore:Heartbeat of storage is supposed to be used")

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["model.g_hidden=[32, 32]", "model.d_hidden=[32]", "model.latent_dim=8", "train.batch_size=16",
         "train.progress=false", "train.eval_samples=300", "train.sample_every=1000"]
LR_SPACE = "optim.lr_g: {low: 1.0e-4, high: 1.0e-2, log: true}\n"


def sweep_args(folder: Path, space: Path, steps: int, every: int, *more: str) -> list[str]:
    """``gankit sweep`` of the default config made small: ``steps`` steps, an evaluation every ``every``."""
    sets = [*SMALL, f"train.steps={steps}", f"train.eval_every={every}", f"train.log_every={min(every, 50)}",
            f"train.checkpoint_every={min(every, 50)}"]
    return ["sweep", "--space", str(space), "--out", str(folder), "--threads", "1",
            *[arg for item in sets for arg in ("--set", item)], *more]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def study_of(folder: Path):
    """The sweep's study, read back through Optuna itself."""
    return optuna.load_study(study_name=folder.name, storage=f"sqlite:///{folder / 'study.db'}")


def in_subprocess(args: list[str]) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return subprocess.Popen([sys.executable, "-m", "gankit", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


# ----------------------------------------------------------------------------------------------------------------
# The space file: every mistake one line, before anything trains


@pytest.mark.parametrize("space, words", [
    ("optim.lr_q: {low: 1.0e-4, high: 1.0e-2}", ["optim.lr_q: unknown config key", "optim.lr_g", "optim.lr_d"]),
    ("optim: {lr_q: {low: 1.0e-4, high: 1.0e-2}}", ["unknown config key", "optim.lr_g"]),
    ("optim.lr_g: {low: 1.0e-2, high: 1.0e-4}", ["optim.lr_g: low=0.01 must be below high=0.0001"]),
    ("optim.lr_g: {low: 0, high: 1.0e-2, log: true}", ["a log scale needs low > 0"]),
    ("model.latent_dim: {choices: []}", ["choices must be a non-empty list"]),
    ("optim.lr_g: {low: 1.0e-4, high: 2.0}", ["the config refuses 2.0", "optim.lr_g=2.0 is out of range"]),
    ("recipe.loss: {choices: [hinge, hinje]}", ["the config refuses 'hinje'"]),
    ("train.batch_size: {low: 16, high: 64, step: 10}", ["not a multiple of step=10"]),
    ("optim.lr_g: {low: 1.0e-4, hihg: 1.0e-2}", ["unknown field 'hihg'"]),
    ("train.seed: {choices: [0, 1]}", ["set by the sweep itself", "--seeds"]),
])
def test_space_file_mistakes_are_one_line(tmp_path, capsys, space, words):
    args = sweep_args(tmp_path / "sweep", write(tmp_path / "space.yaml", space + "\n"), 20, 10, "--trials", "1")
    one_line_error(capsys, args, *words)
    assert not (tmp_path / "sweep").exists()  # refused before the sweep made anything


def test_sweep_arguments_are_checked_too(tmp_path, capsys):
    space = write(tmp_path / "space.yaml", LR_SPACE)
    one_line_error(capsys, ["sweep", "--space", str(space), "--out", str(tmp_path / "s")], "--trials N")
    one_line_error(capsys, ["sweep", "--trials", "2"], "--space SPACE.yaml")
    one_line_error(capsys, ["sweep", "--space", str(space), "--trials", "1", "--set", "train.eval_every=0"],
                   "train.eval_every is 0")
    one_line_error(capsys, ["sweep", "--show", str(tmp_path)], "no study in")


def test_a_good_space_becomes_typed_parameters(tmp_path):
    space = write(tmp_path / "space.yaml", LR_SPACE + "model.g_hidden: [[16], [32, 32]]\n"
                  "train:\n  batch_size: {low: 16, high: 64, step: 16}\n  ema: {low: 0, high: 0.5}\n")
    params = read_space(space, None, [], load_config())
    assert list(params) == ["optim.lr_g", "model.g_hidden", "train.batch_size", "train.ema"]
    assert params["optim.lr_g"].log and not params["optim.lr_g"].integer
    assert params["train.batch_size"].integer and params["train.batch_size"].step == 16
    assert not params["train.ema"].integer  # a float setting stays a float with integer ends
    assert params["model.g_hidden"].encoded == ["[16]", "[32, 32]"]  # lists reach Optuna as their YAML text
    assert [override_text(v) for v in (1e-4, True, None, "hinge", [32, 32])] == \
        ["0.0001", "true", "null", "hinge", "[32, 32]"]


def test_evaluations_are_read_as_the_run_writes_them(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    evals = Evaluations(metrics, "fid")
    evals.poll()  # no file yet: nothing
    rows = [{"step": 10, "d_loss": 1.0}, {"step": 10, "eval/fid": 30.0}, {"step": 20, "eval/fid": 20.0},
            {"step": 30, "eval/fid": 25.0}]
    metrics.write_text("".join(json.dumps(r) + "\n" for r in rows[:2]) + '{"step": 20, "eval/f')  # half a line
    evals.poll()
    assert evals.values == {10: 30.0}
    with metrics.open("a") as fh:
        fh.write('id": 20.0}\n' + json.dumps(rows[3]) + "\n")
    evals.poll()
    assert evals.values == {10: 30.0, 20: 20.0, 30: 25.0}
    assert evals.pick("best", False) == 20.0 and evals.pick("last", False) == 25.0 and evals.pick("best", True) == 30
    metrics.write_text(json.dumps(rows[1]) + "\n")  # a resumed run rewrote the file: read again from the start
    evals.poll()
    assert evals.values == {10: 30.0}
    with pytest.raises(ObjectiveMissing, match="no 'recall'.*fid"):
        Evaluations(metrics, "recall").poll()


def small_plan(tmp_path: Path, trials: int, **options):
    """A checked plan over the learning rate, and its study opened as a sweep opens it."""
    tmp_path.mkdir(exist_ok=True)
    space = write(tmp_path / "space.yaml", LR_SPACE)
    plan = plan_sweep(None, space, trials=trials, out=tmp_path / "sweep", overrides=["train.eval_every=10"],
                      **options)
    plan.folder.mkdir()
    return plan, *open_study(optuna, plan.storage, plan.study, create=plan)


def test_a_trial_asked_for_past_the_study_size_goes_back_to_the_queue(tmp_path):
    plan, study, storage = small_plan(tmp_path, 2)
    sweep = _Sweep(plan, optuna, study, storage)
    study.tell(study.ask(), 1.0)
    elsewhere, here = study.ask(), study.ask()  # two processes asked for the last place at once
    assert not sweep.surplus(elsewhere.number) and sweep.surplus(here.number)
    sweep.hand_back(here.number)
    assert [t.state.name for t in study.get_trials()] == ["COMPLETE", "RUNNING", "WAITING"]
    assert sweep.tally() == (1, 1)


def test_a_trial_of_a_dead_process_on_this_machine_is_failed_and_queued_again(tmp_path):
    plan, study, storage = small_plan(tmp_path, 2)
    sweep = _Sweep(plan, optuna, study, storage)
    orphan = study.ask()
    orphan.suggest_float("optim.lr_g", 1e-4, 1e-2, log=True)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan.set_user_attr("worker", f"{HOST}:{int(gone.stdout)}:0")  # a process that has ended
    alive = study.ask()
    alive.set_user_attr("worker", f"{HOST}:{os.getppid()}:0")
    sweep.recover()
    died, running, retry = study.get_trials()
    assert (died.state.name, running.state.name, retry.state.name) == ("FAIL", "RUNNING", "WAITING")
    assert retry.params == died.params and retry.system_attrs["failed_trial"] == died.number


def test_the_pruners(tmp_path):
    for name, kind in (("median", optuna.pruners.MedianPruner), ("hyperband", optuna.pruners.HyperbandPruner),
                       ("none", optuna.pruners.NopPruner)):
        plan, study, _ = small_plan(tmp_path / name, 4, pruner=name)
        assert isinstance(study.pruner, kind)


# ----------------------------------------------------------------------------------------------------------------
# Sweeps that train


@pytest.fixture(scope="module")
def three_trials(tmp_path_factory) -> Path:
    """A 3-trial sweep with a pool of 2 workers over the learning rate and the generator's width."""
    tmp = tmp_path_factory.mktemp("three-trials")
    space = write(tmp / "space.yaml", LR_SPACE + "model.g_hidden: {choices: [[16], [32, 32]]}\n")
    folder = tmp / "sweep"
    assert main(sweep_args(folder, space, 10, 10, "--trials", "3", "--workers", "2", "--trial-minutes", "5")) == 0
    return folder


def test_a_sweep_with_two_workers_makes_ordinary_runs(three_trials):
    trials = study_of(three_trials).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    runs = {Path(r["run"]).name: r for r in gankit.list_runs(three_trials)}  # `gankit runs` lists them
    for t in trials:
        (run_dir,) = t.user_attrs["runs"]
        row = runs[Path(run_dir).name]
        assert row["status"] == "finished" and row["steps_done"] == 10 and row["best_metric"] == "fid"
        assert abs(row["best_value"] - t.value) < 1e-9  # the objective is the run's best FID
        config = load_config(Path(run_dir) / "config.yaml")  # the trial's setting is in the run's own config
        assert abs(config.optim.lr_g - t.params["optim.lr_g"]) < 1e-12
        assert override_text(config.model.g_hidden) == t.params["model.g_hidden"]
        assert config.train.max_minutes == 5  # --trial-minutes: the run stops itself
        assert list(t.intermediate_values) == [10]  # the evaluation was reported as it came


def test_show_prints_the_trials_and_writes_best_yaml_and_plots(three_trials, capsys):
    assert main(["sweep", "--show", str(three_trials)]) == 0
    out = capsys.readouterr().out
    best = study_of(three_trials).best_trial
    assert f"best: trial {best.number}, fid " in out
    table = out[out.index("\ntrial "):].strip().splitlines()
    assert table[0].split()[:3] == ["trial", "state", "fid"] and len(table) == 4
    assert all(line.split()[1] == "complete" and "trial_0000" in line for line in table[1:])
    cfg = gankit.load_config(three_trials / "best.yaml")  # ready for `gankit train DIR/best.yaml`
    assert abs(cfg.optim.lr_g - best.params["optim.lr_g"]) < 1e-12 and cfg.train.steps == 10
    assert override_text(cfg.model.g_hidden) == best.params["model.g_hidden"]
    for name in ("history.png", "importance.png"):
        pixels = np.asarray(Image.open(three_trials / name).convert("L"))
        assert pixels.shape[0] > 100 and pixels.std() > 10, name  # drawn, not blank


def test_a_hopeless_trial_is_pruned_and_its_run_stops_with_a_checkpoint(tmp_path):
    space = write(tmp_path / "space.yaml", "optim.lr_g: {low: 1.0e-8, high: 1.0e-2, log: true}\n"
                                           "optim.lr_d: {low: 1.0e-8, high: 1.0e-2, log: true}\n")
    folder = tmp_path / "sweep"
    folder.mkdir()
    queued = optuna.create_study(storage=f"sqlite:///{folder / 'study.db'}", study_name=folder.name)
    queued.enqueue_trial({"optim.lr_g": 5e-3, "optim.lr_d": 5e-3})  # learns: FID falls from ~295
    queued.enqueue_trial({"optim.lr_g": 1e-7, "optim.lr_d": 1e-7})  # cannot: FID stays at its start
    # 200 steps: the pruned run, told to stop after its evaluation at step 20, has no time to finish on a busy CPU
    args = sweep_args(folder, space, 200, 20, "--trials", "2", "--startup-trials", "1")
    assert main(args) == 0
    good, bad = study_of(folder).get_trials()
    assert (good.state.name, bad.state.name) == ("COMPLETE", "PRUNED")
    (run_dir,) = bad.user_attrs["runs"]
    (row,) = gankit.list_runs(run_dir)
    assert row["status"] == "stopped" and row["steps_done"] < 200  # stopped early ...
    assert row["last_checkpoint"] is not None and Path(row["last_checkpoint"]).is_file()  # ... with a checkpoint


def test_a_killed_sweep_is_recovered_by_running_it_again(tmp_path, capsys):
    space = write(tmp_path / "space.yaml", LR_SPACE)
    folder = tmp_path / "sweep"
    args = sweep_args(folder, space, 200, 200, "--trials", "1", "--seeds", "2")
    sweep = in_subprocess(args)
    metrics = [folder / f"trial_00000_seed{seed}" / "metrics.jsonl" for seed in (0, 1)]
    deadline = time.monotonic() + 240
    while not all(m.is_file() and '"step": 50,' in m.read_text() for m in metrics):  # both seeds mid-trial
        assert sweep.poll() is None and time.monotonic() < deadline, sweep.communicate()[0]
        time.sleep(0.1)
    sweep.send_signal(signal.SIGKILL)
    sweep.wait()  # (reaped: a dead process, not a zombie, as after a shell)
    again = in_subprocess(args)
    out = again.communicate(timeout=300)[0]
    assert again.returncode == 0, out
    assert "its sweep process is gone; queued again" in out and "resuming trial_00000_seed0" in out
    died, retry = study_of(folder).get_trials()
    assert (died.state.name, retry.state.name) == ("FAIL", "COMPLETE")
    assert retry.system_attrs["failed_trial"] == 0 and retry.params == died.params
    assert len(retry.user_attrs["seed_values"]) == 2 and retry.user_attrs["std"] >= 0
    assert main(["sweep", "--show", str(folder)]) == 0
    shown = capsys.readouterr().out
    assert "retried as trial 1" in shown and "retry of trial 0" in shown
    for seed in (0, 1):  # each seed's run went on from the checkpoint its SIGTERM left
        sessions = [json.loads(line) for line in (folder / f"trial_00000_seed{seed}" / "sessions.jsonl").open()]
        starts = [s for s in sessions if s["event"] == "start"]
        assert len(starts) == 2 and starts[1]["step"] > 0, sessions
        assert sessions[-1]["outcome"] == "finished" and sessions[-1]["step"] == 200


def test_two_processes_share_one_sqlite_study_without_losing_a_trial(tmp_path):
    space = write(tmp_path / "space.yaml", LR_SPACE)
    folder = tmp_path / "sweep"
    args = sweep_args(folder, space, 10, 10, "--trials", "3")
    first, second = in_subprocess(args), in_subprocess(args)
    outs = [p.communicate(timeout=300)[0] for p in (first, second)]
    assert (first.returncode, second.returncode) == (0, 0), outs
    trials = study_of(folder).get_trials()
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == 3 and len({t.number for t in complete}) == 3
    assert {t.state.name for t in trials} <= {"COMPLETE", "WAITING"}  # a surplus trial is queued, never lost
    for t in complete:
        (run_dir,) = t.user_attrs["runs"]
        assert gankit.list_runs(run_dir)[0]["status"] == "finished"
    assert all(f"trial {t.number}: fid" in "".join(outs) for t in complete)


def test_an_objective_the_evaluations_lack_ends_the_sweep_in_one_line(tmp_path, capsys):
    space = write(tmp_path / "space.yaml", LR_SPACE)
    args = sweep_args(tmp_path / "sweep", space, 10, 10, "--trials", "2", "--objective", "fdi")
    one_line_error(capsys, args, "the runs' evaluations have no 'fdi'", "fid", "recall")
    # the typo fixed, the same folder takes the new objective: nothing finished under the old one
    plan = plan_sweep(None, space, trials=2, out=tmp_path / "sweep", overrides=["train.eval_every=10"])
    study, storage = open_study(optuna, plan.storage, plan.study, create=plan)
    _agree(optuna, study, storage, plan)
    assert study_of(tmp_path / "sweep").user_attrs["gankit"]["objective"] == "fid"
    assert _Sweep(plan, optuna, study, storage).tally() == (0, 0)  # the failed trial does not count


def test_a_study_with_results_keeps_its_objective(three_trials):
    plan = plan_sweep(None, three_trials.parent / "space.yaml", trials=3, out=three_trials, objective="kid",
                      overrides=["train.eval_every=10"])
    study, storage = open_study(optuna, plan.storage, plan.study, create=plan)
    with pytest.raises(gankit.GankitError, match="started with another objective"):
        _agree(optuna, study, storage, plan)
