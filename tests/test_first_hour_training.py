"""Issue #25, items 3-6: what a new user met when training and evaluating their own data. An evaluator trained on
a small folder is sized in steps and refused near chance; `gankit eval` on a folder without test/ uses the same
hold-out and reports what needs no FID when FID is impossible; collapse warnings wait for a warm-up; training says
what it trains, where it resumed and what it evaluates, and long verbs draw a progress bar on a terminal only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import gankit
from gankit.cli import main
from gankit.config import DataConfig, HealthConfig, load_config
from gankit.metrics.train_evaluator import HOLDOUT_SEED, holdout, near_chance, training_steps
from gankit.train.health import CollapseMonitor, warmup_steps

from cli_helpers import TINY, one_line_error, train_args

CLASSES = 10


def _folder(root: Path, per_class: int, separable: bool, size: int = 8, seed: int = 0) -> Path:
    """``CLASSES`` class folders of ``per_class`` grey images: class k a flat grey level 25k plus a little noise
    (told apart at a glance), or, not ``separable``, pure noise whose label says nothing."""
    rng = np.random.default_rng(seed)
    for k in range(CLASSES):
        folder = root / f"c{k}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            if separable:
                img = np.clip(25 * k + rng.normal(0, 4, (size, size)), 0, 255)
            else:
                img = rng.integers(0, 256, (size, size))
            Image.fromarray(img.astype(np.uint8)).save(folder / f"{i}.png")
    return root


def _evaluator_argv(root: Path, out: Path, *extra: str) -> list[str]:
    return ["evaluator", "train", "--data", "folder", "--set", f"data.root={root}", "-o", str(out),
            "--device", "cpu", *extra]


# ---------------------------------------------------------------------------------------------------------------
# Item 3: `gankit evaluator train` on a small folder


def test_training_is_sized_in_steps_with_a_floor():
    assert training_steps(180, epochs=4, batch_size=128) == 200  # 4 steps of epochs alone
    assert training_steps(60_000, epochs=4, batch_size=128) == 4 * 468  # MNIST: the epochs, as before


def test_near_chance_is_two_standard_errors_of_a_guesser():
    assert near_chance(0.05, 10, 20) == (True, 0.1)
    assert near_chance(0.2, 10, 20)[0] and not near_chance(0.5, 10, 20)[0]
    assert not near_chance(0.2, 10, 10_000)[0]  # 10 points above chance on many images is real
    assert near_chance(0.52, 2, 10_000)[0]  # never less than 5 points above chance


def test_a_small_separable_folder_trains_well_above_chance_with_the_defaults(tmp_path, capsys):
    root = _folder(tmp_path / "grey", per_class=20, separable=True)  # 200 images: 180 to train, 20 held out
    out = tmp_path / "grey.safetensors"
    assert main(_evaluator_argv(root, out)) == 0
    assert "test accuracy" in capsys.readouterr().out
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["steps"] == 200 and card["epochs"] == 4 and card["chance"] == 0.1 and card["test_size"] == 20
    assert card["test_accuracy"] >= 0.8 and "near_chance" not in card


def test_an_evaluator_near_chance_is_refused_and_nothing_is_written(tmp_path, capsys):
    root = _folder(tmp_path / "noise", per_class=20, separable=False)
    out = tmp_path / "noise.safetensors"
    one_line_error(capsys, _evaluator_argv(root, out), "near chance", "10.0% for 10 classes", "--force")
    assert not out.exists() and not out.with_suffix(".json").exists()
    assert main(_evaluator_argv(root, out, "--force")) == 0  # kept on purpose: the file says so
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["near_chance"] is True and out.is_file()


# ---------------------------------------------------------------------------------------------------------------
# Item 4: `gankit eval RUN --evaluator FILE` on a folder without test/


@pytest.fixture(scope="module")
def own_folder_run(tmp_path_factory):
    """A tiny GAN trained on a 200-image folder without test/, and the evaluator trained on that folder."""
    base = tmp_path_factory.mktemp("own")
    root = _folder(base / "grey", per_class=20, separable=True)
    evaluator = base / "grey.safetensors"
    assert main(_evaluator_argv(root, evaluator)) == 0
    run = base / "run"
    assert main(train_args(run, "data.name=folder", f"data.root={root}", "train.device=cpu")) == 0
    return run, root, evaluator


def _eval_json(capsys, run: Path, evaluator: Path, *extra: str) -> dict:
    assert main(["eval", str(run), "--evaluator", str(evaluator), "-n", "100", "--kid-subsets", "5", "--json",
                 "--device", "cpu", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_eval_uses_the_evaluators_hold_out_and_reports_what_needs_no_fid(own_folder_run, capsys):
    run, root, evaluator = own_folder_run
    result = _eval_json(capsys, run, evaluator)
    assert "fid" not in result  # 20 held-out images cannot fit a 128-d covariance
    assert {"kid", "precision", "recall", "density", "coverage", "classifier_score", "modes"} <= set(result)
    assert any(w.startswith("FID not computed: FID needs at least 256 samples") for w in result["warnings"])
    assert any("has no test/ folder" in w and "10%" in w for w in result["warnings"])
    prov = result["provenance"]
    assert prov["not_computed"] == ["fid"] and prov["forced"] is False
    assert prov["reference"]["size"] == 20 and prov["reference"]["split"].startswith("holdout")


def test_the_eval_hold_out_is_the_one_evaluator_train_scored(own_folder_run):
    from gankit.data import load_dataset
    from gankit.metrics.evaluate import reference_split
    from gankit.metrics.train_evaluator import load_splits

    _, root, _ = own_folder_run
    cfg = DataConfig(name="folder", root=str(root))
    held, split, notes = reference_split(cfg)
    _, test, how = load_splits(cfg)
    assert torch.equal(held.x, test.x) and split == f"holdout ({how})" and len(notes) == 1
    assert torch.equal(held.x, holdout(load_dataset(cfg, "train"))[1].x) and HOLDOUT_SEED == 12_345


def test_eval_force_still_computes_fid_and_flags_it(own_folder_run, capsys):
    run, _, evaluator = own_folder_run
    result = _eval_json(capsys, run, evaluator, "--force")
    assert "fid" in result and result["provenance"]["forced"] is True and "not_computed" not in result["provenance"]


def test_eval_still_refuses_when_nothing_can_be_computed(own_folder_run, capsys):
    run, _, evaluator = own_folder_run
    one_line_error(capsys, ["eval", str(run), "--evaluator", str(evaluator), "-n", "100", "--k", "25", "--device",
                            "cpu"], "nearest-neighbour metrics need more than k=25", "--force")


def test_an_evaluator_trained_on_other_data_is_flagged_and_the_folders_own_is_not(own_folder_run, capsys):
    run, _, evaluator = own_folder_run
    foreign = _eval_json(capsys, run, "digits")  # scikit-learn's digits scoring grey squares
    flagged = [w for w in foreign["warnings"] if "was trained on digits" in w]
    assert len(flagged) == 1 and "these images are folder (10 classes: c0, c1" in flagged[0], foreign["warnings"]
    own = _eval_json(capsys, run, evaluator)
    assert not any("was trained on" in w for w in own["warnings"])


def test_training_time_evaluation_on_a_small_folder_leaves_fid_out_and_keeps_the_best_by_kid(own_folder_run,
                                                                                               tmp_path, capsys):
    _, root, evaluator = own_folder_run
    run = tmp_path / "run"
    argv = train_args(run, "data.name=folder", f"data.root={root}", "train.device=cpu", "train.steps=4",
                      "train.eval_every=2", "train.eval_samples=300", f"train.evaluator={evaluator}")
    assert main([*argv, "--dry-run"]) == 0  # the dry run sets the evaluation up too, and says the same
    err = capsys.readouterr().err
    assert "leaves FID out: the reference, holdout" in err and "holds only 20 items" in err
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "leaves FID out" in err and "picked by KID" in err and "raise train.eval_samples" not in err
    assert "evaluating 300 samples at step 2 (KID, precision/recall, modes)" in out  # not "FID" after all
    assert "has no test/ folder" in err  # the hold-out is said at training time too
    scores = [json.loads(p.read_text()) for p in sorted((run / "eval").glob("*.json"))]
    assert len(scores) == 2 and all("fid" not in r and r["kid"] == r["kid"] for r in scores)
    best = json.loads((run / "checkpoints" / "best.json").read_text())
    assert best["kid"] == min(r["kid"] for r in scores) and best["step"] in (2, 4)


def test_training_time_evaluation_refuses_with_advice_that_fits(own_folder_run, tmp_path, capsys):
    _, root, evaluator = own_folder_run
    argv = train_args(tmp_path / "r", "data.name=folder", f"data.root={root}", "train.device=cpu",
                      "train.eval_every=2", "train.eval_samples=2", f"train.evaluator={evaluator}")
    one_line_error(capsys, [*argv, "--dry-run"], "nearest-neighbour metrics", "raise train.eval_samples")


# ---------------------------------------------------------------------------------------------------------------
# Item 5: collapse warnings wait for a warm-up


def test_the_warm_up_is_health_warmup_steps_or_a_tenth_of_the_run_but_never_a_handful_of_steps():
    assert HealthConfig().warmup_steps == 250
    assert warmup_steps(HealthConfig(), 3000) == 250 and warmup_steps(HealthConfig(), 2000) == 200
    assert warmup_steps(HealthConfig(), 500) == 100 and warmup_steps(HealthConfig(), 1) == 100  # a dry run: never
    assert warmup_steps(HealthConfig(warmup_steps=0), 3000) == 0
    assert warmup_steps(HealthConfig(warmup_steps=20), 10) == 20  # a warm-up asked for is kept


def test_an_untrained_generator_at_step_13_is_no_collapse():
    monitor = CollapseMonitor(HealthConfig(d_acc_patience=1), real_diversity=1.0, total_steps=3000)
    same = torch.zeros(16, 1, 8, 8)  # every sample alike, as an untrained generator's are
    assert monitor.observe_samples(same, step=13) == [] and monitor.observe_row({"step": 13, "d_acc": 1.0}) == []
    assert "may have collapsed" in monitor.observe_samples(same, step=250)[0]
    assert "accuracy" in monitor.observe_row({"step": 250, "d_acc": 1.0})[0]


def test_a_run_warns_of_collapse_only_after_its_warm_up(tmp_path):
    from gankit.train import Trainer

    cfg = load_config(None, [*TINY, "train.steps=300", "train.sample_every=10", "health.warmup_steps=25",
                             "optim.lr_g=1e-12", "train.device=cpu"])
    trainer = Trainer(cfg, tmp_path / "r")
    with torch.no_grad():
        last = [m for m in trainer.modules["generator"].modules() if isinstance(m, torch.nn.Linear)][-1]
        last.weight.zero_()  # every z gives the same image
    trainer.fit()
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    warnings = [r for r in rows if "warning" in r]
    assert len(warnings) == 1 and "diversity" in warnings[0]["warning"] and warnings[0]["step"] == 30  # not 10 or 20


# ---------------------------------------------------------------------------------------------------------------
# Item 6: what training and the long verbs say


def test_training_prints_a_header_on_stdout_and_resume_says_where_it_resumed(tmp_path, capsys):
    from gankit.train.checkpoint import step_file

    run = tmp_path / "run"
    gankit.train(None, overrides=[*TINY, "train.device=cpu"], out=run)
    out = capsys.readouterr().out  # stdout: stderr keeps the bar and the warnings
    for line in ("model: mlp_gan, trained by the adversarial recipe; latent size 4", "parameters: generator ",
                 ", discriminator ", "data: digits, 1,438 samples of shape (1, 8, 8)",
                 "device: cpu, precision fp32, batch size 4, 2 steps", f"run directory: {run}"):
        assert line in out, out
    assert out.index("model: ") < out.index("run directory: ")
    gankit.train(None, overrides=[*TINY, "train.device=cpu", "train.steps=4"], out=run, resume=True)
    assert f"resumed from step 2 (checkpoint {run / 'checkpoints' / step_file(2)})" in capsys.readouterr().out


def test_evaluation_during_training_says_what_it_is_doing_first(tmp_path, capsys):
    gankit.train(None, overrides=[*TINY, "train.device=cpu", "train.eval_every=2", "train.eval_samples=300"],
                 out=tmp_path / "run")
    out, err = capsys.readouterr()
    assert "evaluation: 300 samples every 2 steps, against 359 test items" in out
    # announced on stdout with the header (stderr carries the bar, the warnings and the result line)
    assert "evaluating 300 samples at step 2 (FID, KID, precision/recall, modes)..." in out
    assert "eval at step 2:" in err


def test_the_trainer_stays_short_and_names_no_family():
    source = (Path(gankit.__file__).parent / "train" / "trainer.py").read_text()
    assert len(source.splitlines()) < 300
    assert not any(word in source.lower() for word in ("discriminator", "mlp_gan", "dcgan", "vae"))
    assert '"generator"' not in source and ".generator" not in source  # "generator" there is torch's RNG


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ae") / "run"
    tiny = [item for item in TINY if not item.startswith("model.")]
    gankit.train(None, overrides=["model.name=mlp_ae", "model.hidden=[8]", "model.bottleneck=2", *tiny,
                                  "train.device=cpu"], out=out)
    return gankit.load(out, device="cpu")


def test_long_verbs_draw_a_bar_on_stderr_when_asked_and_none_off_a_terminal(ae_run, capsys):
    from gankit.metrics.evaluate import EvalSettings, Evaluation

    x = torch.zeros(1200, 1, 8, 8)
    ae_run.encode(x, progress=True)
    assert "encode" in capsys.readouterr().err
    ae_run.encode(x)  # progress None: a terminal only, and pytest's stderr is none
    ae_run.encode(x, progress=False)
    ae_run.decode(torch.zeros(1200, 2), batch_size=100)
    assert capsys.readouterr().err == ""
    Evaluation(DataConfig(name="digits"), EvalSettings(progress=True, batch_size=100, cache=False)).featurize(x)
    assert "features" in capsys.readouterr().err
    ae_run.encode(x[:10], progress=True)  # one batch: nothing worth a bar
    assert capsys.readouterr().err == ""


def test_sampling_many_images_draws_a_bar_when_asked(own_folder_run, capsys):
    run = gankit.load(own_folder_run[0], device="cpu")
    assert run.sample(2500, seed=0, progress=True).shape[0] == 2500
    assert "sample" in capsys.readouterr().err
    a, b = run.sample(2500, seed=0), run.sample(2500, seed=0, progress=False)
    assert torch.equal(a, b) and capsys.readouterr().err == ""


def test_iwae_draws_a_bar_over_its_batches_when_asked(capsys):
    from gankit.metrics.likelihood import estimate_nll

    class Flat:
        def log_weights(self, x, k, *, generator=None):
            return torch.zeros(k, len(x))  # (k, B)

    quiet = estimate_nll(Flat(), torch.zeros(250, 3), k=4)
    assert capsys.readouterr().err == ""
    assert estimate_nll(Flat(), torch.zeros(250, 3), k=4, progress=True) == quiet
    assert "likelihood (k=4)" in capsys.readouterr().err


def test_projection_draws_a_bar_over_its_steps_when_asked(capsys):
    from gankit.latent import style
    from gankit.models.stylegan import StyleGANConfig, StyleGANGenerator

    torch.manual_seed(0)
    G = StyleGANGenerator(StyleGANConfig(latent_dim=8, w_dim=8, mapping_layers=1, width=8, min_width=8),
                          (1, 8, 8)).eval()
    target = torch.zeros(2, 1, 8, 8)
    quiet = style.project(G, target, steps=3, generator=torch.Generator().manual_seed(0))
    assert capsys.readouterr().err == ""
    shown = style.project(G, target, steps=3, generator=torch.Generator().manual_seed(0), progress=True)
    assert "project" in capsys.readouterr().err and torch.equal(quiet.ws, shown.ws)


def test_a_run_keeps_absolute_paths_so_it_works_from_any_folder(own_folder_run, tmp_path, monkeypatch, capsys):
    _, root, evaluator = own_folder_run
    monkeypatch.chdir(root.parent)  # train with paths relative to here
    run = tmp_path / "run"
    assert main(train_args(run, "data.name=folder", f"data.root={root.name}", "train.device=cpu",
                           f"train.evaluator={evaluator.name}")) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["data"]["root"] == str(root.resolve()) and saved["train"]["evaluator"] == str(evaluator.resolve())
    monkeypatch.chdir(tmp_path)  # elsewhere: the run still finds its data and evaluator
    capsys.readouterr()
    assert main(["eval", str(run), "-n", "100", "--kid-subsets", "5", "--json", "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)  # the run's own evaluator and folder, found from elsewhere
    assert result["provenance"]["reference"]["size"] == 20 and "kid" in result
    assert result["provenance"]["evaluator"]["sha256"] == json.loads(evaluator.with_suffix(".json").read_text())[
        "sha256"]
