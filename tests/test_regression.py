"""Regression networks: the diabetes and float-target array sources, the regressor's standardisation, the recipe,
training through the trainer and the API (against least squares and the mean), and the errors for bad inputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import gankit
from gankit.api import LoadedRun
from gankit.cli import main as cli_main
from gankit.config import DataConfig, OptimConfig, from_dict, load_config
from gankit.data import load_dataset
from gankit.data.arrays import load_arrays
from gankit.data.base import ArrayData
from gankit.data.sampler import BatchSampler
from gankit.errors import ConfigError, DataError, GankitError
from gankit.models import build_models
from gankit.recipes.regression import RegressionConfig, RegressionRecipe
from gankit.train import checkpoint as ckpt
from gankit.train import latest_checkpoint

CONFIG = "configs/regression_diabetes.yaml"
QUIET = ["train.progress=false"]


def regressor(hidden: list[int], shape: tuple[int, ...] = (3,), targets: int = 1, seed: int = 0):
    cfg = from_dict({"model": {"name": "mlp_regressor", "hidden": hidden, "targets": targets}}).model
    return build_models(cfg, shape, 0, seed=seed)["regressor"]


def rmse(pred: np.ndarray, y: np.ndarray) -> float:
    assert pred.shape == y.shape
    return float(np.sqrt(np.mean((pred - y) ** 2)))


@pytest.fixture(scope="module")
def diabetes_run(tmp_path_factory):
    """The shipped config trained once (about 2-3 s on 2 cores)."""
    return gankit.train(CONFIG, overrides=QUIET, out=tmp_path_factory.mktemp("diabetes") / "run")


# -- data ---------------------------------------------------------------------------------------------------------

def test_diabetes_source_shapes_and_a_split_that_ignores_the_run_seed():
    train, test = (load_dataset(DataConfig(name="diabetes"), split) for split in ("train", "test"))
    assert train.x.shape == (354, 10) and test.x.shape == (88, 10)
    assert train.y.shape == (354, 1) and train.y.dtype == torch.float32 and train.x.dtype == torch.float32
    assert train.is_regression and not train.is_image and train.num_classes == 0
    other = load_dataset(DataConfig(name="diabetes"), "test", seed=7)
    assert torch.equal(other.x, test.x) and torch.equal(other.y, test.y)
    rows = {tuple(r) for r in torch.cat([train.x, test.x]).tolist()}
    assert len(rows) == 442  # disjoint splits covering the table
    assert 25 <= float(train.y.min()) and float(train.y.max()) <= 346  # raw units, not rescaled
    with pytest.raises(DataError, match="diabetes holds feature vectors, not images: unset data.size"):
        load_dataset(DataConfig(name="diabetes", size=8))


def test_array_data_takes_labels_or_float_targets_and_nothing_else():
    x = torch.zeros(4, 3)
    assert ArrayData(x, torch.zeros(4, 2)).is_regression
    assert not ArrayData(x, torch.zeros(4, dtype=torch.int64), 1).is_regression
    for bad in (torch.zeros(4), torch.zeros(4, 1, dtype=torch.int64), torch.zeros(3, 1), torch.zeros(4, 1).double()):
        with pytest.raises(ValueError, match="y must be int64 labels of shape \\(4,\\) or float32 regression"):
            ArrayData(x, bad)


def test_arrays_source_reads_float_targets(tmp_path):
    x = np.arange(12, dtype=np.float64).reshape(4, 3) * 100  # raw units: not images, not rescaled
    path = tmp_path / "reg.npz"
    np.savez(path, x=x, y=np.array([1.5, -2.0, 3.0, 4.0]), x_test=x[:2], y_test=np.ones((2, 2)))
    train = load_arrays(DataConfig(name="arrays", root=str(path)))
    assert train.is_regression and train.y.shape == (4, 1) and train.y.dtype == torch.float32
    assert torch.equal(train.x, torch.from_numpy(x).float()) and train.y[:, 0].tolist() == [1.5, -2.0, 3.0, 4.0]
    test = load_arrays(DataConfig(name="arrays", root=str(path)), "test")
    assert test.y.shape == (2, 2) and test.num_classes == 0


def test_arrays_regression_errors_name_the_file(tmp_path):
    def load(name, **arrays):
        np.savez(tmp_path / name, **arrays)
        return load_arrays(DataConfig(name="arrays", root=str(tmp_path / name)))

    x = np.zeros((3, 2), np.float32)
    with pytest.raises(DataError, match=r"nan.npz: 1 values are NaN or Inf"):
        load("nan.npz", x=x, y=np.array([0.0, np.nan, 1.0]))
    with pytest.raises(DataError, match=r"len.npz: regression targets y must have shape \(3,\) or \(3, T\)"):
        load("len.npz", x=x, y=np.zeros(2))
    with pytest.raises(DataError, match=r"img.npz: labels must be a 1-D integer array, got float64.*float \(N, D\)"):
        load("img.npz", x=np.zeros((3, 4, 4), np.uint8), y=np.zeros(3))


# -- the model's standardisation ------------------------------------------------------------------------------------

def test_predict_inverts_the_standardisation_exactly():
    """With the network set to the identity map, predict is x -> (x - x_mean) / x_std * y_std + y_mean."""
    model = regressor([], shape=(2,), targets=2)
    with torch.no_grad():
        model.net[0].weight.copy_(torch.eye(2))
        model.net[0].bias.zero_()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 2, generator=g) * torch.tensor([3.0, 0.5]) + torch.tensor([10.0, -4.0])
    y = torch.randn(50, 2, generator=g) * torch.tensor([200.0, 0.01]) + torch.tensor([150.0, 7.0])
    model.fit_standardisation(x, y)
    x_mean, x_std = x.double().mean(0), x.double().std(0, correction=0)
    y_mean, y_std = y.double().mean(0), y.double().std(0, correction=0)
    assert torch.allclose(model.x_std.double(), x_std, rtol=1e-6) and torch.allclose(model.y_mean.double(), y_mean)
    expected = ((x.double() - x_mean) / x_std * y_std + y_mean).float()
    assert (model.predict(x) - expected).abs().max() < 1e-3  # targets up to ~800: float32 rounding
    standardised = model.standardise_targets(y)
    # float32 targets near 7 with a spread of 0.01 carry ~5e-5 of rounding in standardised units
    assert standardised.mean(0).abs().max() < 2e-4 and (standardised.std(0, correction=0) - 1).abs().max() < 2e-4
    assert (model(x) - model.forward_standardised(x) * model.y_std - model.y_mean).abs().max() < 1e-4


def test_a_constant_column_gets_unit_scale_and_predict_restores_train_mode():
    model = regressor([4], shape=(2,))
    x = torch.tensor([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])
    model.fit_standardisation(x, torch.full((3, 1), 2.0))
    assert model.x_std.tolist()[1] == 1.0 and model.y_std.tolist() == [1.0] and model.y_mean.tolist() == [2.0]
    model.train()
    assert torch.isfinite(model.predict(x)).all() and model.training


# -- the recipe -----------------------------------------------------------------------------------------------------

def test_a_step_changes_every_weight_but_not_the_standardisation():
    model = regressor([8])
    recipe = RegressionRecipe(RegressionConfig(), {"regressor": model}, OptimConfig(lr_g=1e-2))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 3, generator=g) * 10 + 3
    data = ArrayData(x, (x[:, :1] * 40 + 100).contiguous(), name="synthetic")
    recipe.validate(data, 16)
    recipe.prepare(data)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    logs = recipe.step(BatchSampler(data, seed=0), torch.Generator(), 16)
    changed = {k for k, v in model.state_dict().items() if not torch.equal(before[k], v)}
    assert changed == {k for k, _ in model.named_parameters()}  # buffers (the standardisation) untouched
    assert set(logs) == {"loss", "rmse"} and all(v.dim() == 0 and not v.requires_grad for v in logs.values())
    # mse in standardised units and rmse in the targets' units differ by the targets' scale only
    assert abs(float(logs["rmse"]) - float(logs["loss"]) ** 0.5 * float(model.y_std)) < 1e-3 * float(logs["rmse"])


@pytest.mark.parametrize("loss", ["l1", "huber"])
def test_the_other_losses_train(loss):
    model = regressor([8])
    recipe = RegressionRecipe(RegressionConfig(loss=loss), {"regressor": model}, OptimConfig(lr_g=1e-2))
    x = torch.randn(32, 3, generator=torch.Generator().manual_seed(2))
    data = ArrayData(x, x[:, :1].contiguous())
    recipe.prepare(data)
    logs = [recipe.step(BatchSampler(data, seed=0), torch.Generator(), 32) for _ in range(30)]
    assert float(logs[-1]["loss"]) < 0.5 * float(logs[0]["loss"])


def test_bad_combinations_are_clear_config_errors(tmp_path):
    out = tmp_path / "r"
    with pytest.raises(ConfigError, match="recipe.name=regression needs regression targets, but data 'digits' has "
                                          "class labels: use data.name=diabetes"):
        gankit.train(CONFIG, overrides=["data.name=digits", *QUIET], out=out)
    with pytest.raises(ConfigError, match="recipe.name=adversarial needs a model with a discriminator"):
        gankit.train(None, overrides=["data.name=diabetes", "model.name=mlp_regressor", "recipe.name=adversarial",
                                      *QUIET], out=out)
    with pytest.raises(ConfigError, match="recipe.name=regression needs a regressor model"):
        gankit.train(None, overrides=["data.name=diabetes", "recipe.name=regression", *QUIET], out=out)
    with pytest.raises(ConfigError, match="model.targets=2 but data 'diabetes' has 1 target column\\(s\\): set "
                                          "model.targets=1"):
        gankit.train(CONFIG, overrides=["model.targets=2", *QUIET], out=out)
    with pytest.raises(ConfigError, match="recipe.loss='l3' is not valid; valid choices: mse, l1, huber"):
        load_config(CONFIG, ["recipe.loss=l3"])
    with pytest.raises(ConfigError, match="train.ema=0.999: model 'mlp_regressor' has no generator"):
        gankit.train(CONFIG, overrides=["train.ema=0.999", *QUIET], out=out)
    assert not out.exists()  # refused before anything was written


def test_a_gan_refuses_regression_data(tmp_path):
    with pytest.raises(ConfigError, match="regression targets"):
        gankit.train(None, overrides=["data.name=diabetes", "train.steps=2", "train.eval_every=0",
                                      "model.g_hidden=[8]", "model.d_hidden=[8]", *QUIET], out=tmp_path / "r")


def test_the_regressor_names_its_own_recipe():
    assert load_config(None, ["model.name=mlp_regressor"]).recipe.name == "regression"


# -- training through the trainer and the API ---------------------------------------------------------------------

def test_diabetes_run_beats_the_mean_and_matches_least_squares(diabetes_run):
    from sklearn.linear_model import LinearRegression

    train, test = (load_dataset(DataConfig(name="diabetes"), split) for split in ("train", "test"))
    x_test, y_test = test.x.numpy(), test.y.numpy()
    mlp = rmse(gankit.load(diabetes_run).predict(x_test), y_test)
    linear = rmse(LinearRegression().fit(train.x.numpy(), train.y.numpy()).predict(x_test), y_test)
    mean = rmse(np.full_like(y_test, train.y.mean().item()), y_test)
    assert abs(linear - 60.11) < 0.05 and abs(mean - 80.32) < 0.05  # the fixed split has not moved
    # measured over seeds 0-4: mlp / linear 0.95-0.99, mlp / mean 0.71-0.74 (benchmarks/regression.py)
    assert 0.85 < mlp / linear < 1.10
    assert mlp < 0.85 * mean
    rows = [json.loads(line) for line in (diabetes_run / "metrics.jsonl").read_text().splitlines()]
    train_rows = [row for row in rows if "loss" in row]
    assert train_rows[-1]["step"] == 1000 and "rmse" in train_rows[-1] and not (diabetes_run / "samples").exists()


def test_training_time_evaluation_scores_the_test_split_and_keeps_the_best_rmse(diabetes_run):
    test = load_dataset(DataConfig(name="diabetes"), "test")
    evals = sorted((diabetes_run / "eval").glob("step_*.json"))
    assert [p.name for p in evals] == ["step_0001000.json"]  # eval_every 1000 = steps
    result = json.loads(evals[0].read_text())
    final = gankit.load(diabetes_run).predict(test.x)
    assert abs(result["rmse"] - rmse(final, test.y.numpy())) < 1e-3
    assert 0.3 < result["r2"] < 0.6 and 0 < result["mae"] < result["rmse"]
    assert result["provenance"] == {"split": "test", "dataset": "diabetes", "n": 88}
    best = json.loads((diabetes_run / "checkpoints" / "best.json").read_text())
    assert best["step"] == 1000 and best["std_rmse"] == result["std_rmse"]
    y_std = float(load_dataset(DataConfig(name="diabetes")).y.std(correction=0))
    assert result["std_rmse"] == pytest.approx(result["rmse"] / y_std, rel=1e-6)  # one target: rmse / its train std
    rows = [json.loads(line) for line in (diabetes_run / "metrics.jsonl").read_text().splitlines()]
    assert any(row.get("eval/rmse") == result["rmse"] for row in rows)


def test_the_best_checkpoint_is_the_lowest_standardised_test_rmse_across_a_resume(tmp_path):
    run = tmp_path / "r"
    short = QUIET + ["train.eval_every=10", "train.checkpoint_every=10", "optim.lr_g=3e-3", "model.hidden=[64]"]
    gankit.train(CONFIG, overrides=[*short, "train.steps=40"], out=run)
    gankit.train(None, overrides=["train.steps=80"], out=run, resume=True)
    scores = {json.loads(p.read_text())["step"]: json.loads(p.read_text())["std_rmse"]
              for p in (run / "eval").glob("step_*.json")}
    assert sorted(scores) == list(range(10, 90, 10)) and len(set(scores.values())) == 8
    best = json.loads((run / "checkpoints" / "best.json").read_text())
    assert best["std_rmse"] == min(scores.values()) and scores[best["step"]] == best["std_rmse"]
    result = gankit.evaluate(run / "checkpoints" / "best.safetensors", write=False)
    assert result["step"] == best["step"] and result["std_rmse"] == pytest.approx(best["std_rmse"], rel=1e-9)
    assert "selected on the test split" in result["warnings"][0]
    assert gankit.evaluate(run, write=False)["warnings"] == []


def test_a_table_without_a_test_split_trains_with_a_note_and_a_mismatched_one_is_refused(tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(64, 3))
    np.savez(tmp_path / "train_only.npz", x=x, y=x.sum(1))
    overrides = ["data.name=arrays", "model.name=mlp_regressor", "model.hidden=[4]", "train.steps=10",
                 "train.eval_every=5", *QUIET]
    run = gankit.train(None, overrides=[*overrides, f"data.root={tmp_path / 'train_only.npz'}"], out=tmp_path / "a")
    assert "no evaluation during training" in capsys.readouterr().err and not (run / "eval").exists()
    np.savez(tmp_path / "two.npz", x=x, y=x.sum(1), x_test=x[:8], y_test=x[:8, :2])
    with pytest.raises(DataError, match=r"two.npz\): the test split has 2 target column\(s\), the train split 1"):
        gankit.train(None, overrides=[*overrides, f"data.root={tmp_path / 'two.npz'}"], out=tmp_path / "b")
    np.savez(tmp_path / "nan.npz", x=x, y=x.sum(1), x_test=x[:8], y_test=np.full(8, np.nan))
    with pytest.raises(DataError, match="nan.npz: 8 values are NaN or Inf"):  # corrupt is an error, not a note
        gankit.train(None, overrides=[*overrides, f"data.root={tmp_path / 'nan.npz'}"], out=tmp_path / "c")
    with pytest.raises(GankitError, match=r"two.npz\): the test split has 2 target column\(s\), the regressor "
                                          r"predicts 1"):
        gankit.evaluate(run, overrides=[f"data.root={tmp_path / 'two.npz'}"], write=False)


def test_tiny_units_keep_their_scale_and_constant_columns_get_one():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=g) * 1e-9
    x[:, 2] = 5.0  # constant
    model = regressor([], shape=(3,))
    model.fit_standardisation(x, x[:, :1] * 1e-3)
    assert torch.allclose(model.x_std[:2].double(), x[:, :2].double().std(0, correction=0), rtol=1e-5)
    assert model.x_std[2] == 1 and float(model.y_std[0]) == pytest.approx(float(model.x_std[0]) * 1e-3, rel=1e-5)


def test_an_autoencoder_on_a_table_trains_without_grids(tmp_path, capsys):
    run = gankit.train(None, overrides=["data.name=diabetes", "model.name=mlp_ae", "model.hidden=[8]",
                                        "model.bottleneck=2", "train.steps=20", "train.sample_every=10",
                                        "recipe.loss=mse", *QUIET], out=tmp_path / "ae")
    assert "no sample grids: data 'diabetes' holds 10-d vectors" in capsys.readouterr().err
    assert not (run / "samples").exists() and gankit.load(run).encode(torch.zeros(3, 10)).shape == (3, 2)


def test_regression_scores_against_scikit_learn():
    from sklearn.metrics import mean_absolute_error, r2_score

    from gankit.metrics.regression import regression_scores

    g = np.random.default_rng(3)
    y = g.normal(size=(50, 2)) * [1.0, 10.0]
    pred = y + g.normal(size=(50, 2))
    got = regression_scores(torch.from_numpy(pred), torch.from_numpy(y))
    assert got["rmse"] == pytest.approx(np.sqrt(np.mean((pred - y) ** 2)), rel=1e-12)
    assert got["mae"] == pytest.approx(mean_absolute_error(y, pred), rel=1e-12)
    assert got["r2"] == pytest.approx(r2_score(y, pred), rel=1e-12)  # both average R^2 over the target columns
    assert regression_scores(torch.from_numpy(y), torch.from_numpy(y))["r2"] == 1.0
    constant = torch.ones(5, 1)
    assert regression_scores(constant, constant)["r2"] == r2_score(constant, constant) == 1.0
    assert regression_scores(constant + 1, constant)["r2"] == r2_score(constant, constant + 1) == 0.0
    scaled = regression_scores(torch.from_numpy(pred), torch.from_numpy(y), torch.tensor([1.0, 10.0]))
    assert scaled["std_rmse"] == pytest.approx(np.sqrt(np.mean(((pred - y) / [1.0, 10.0]) ** 2)), rel=1e-12)


def test_cli_eval_scores_a_regressor_and_sample_refuses_it(diabetes_run, capsys, tmp_path):
    assert cli_main(["eval", str(diabetes_run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    trained = json.loads((diabetes_run / "eval" / "step_0001000.json").read_text())
    assert result["rmse"] == pytest.approx(trained["rmse"], rel=1e-9) and result["step"] == 1000
    assert result["provenance"]["reference"] == {"dataset": "diabetes", "split": "test", "size": 88, "targets": 1}
    assert (diabetes_run / "eval" / "step_0001000-ntest.json").is_file()
    assert cli_main(["eval", str(diabetes_run)]) == 0
    assert "  rmse " in capsys.readouterr().out
    assert cli_main(["sample", str(diabetes_run), "-o", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gankit: error: this run's model (mlp_regressor)") and "\n" not in err


def test_cli_predict_reads_csv_or_npz_and_names_a_bad_file(diabetes_run, capsys, tmp_path):
    x = load_dataset(DataConfig(name="diabetes"), "test").x.numpy()
    expected = gankit.load(diabetes_run).predict(x)
    np.savetxt(tmp_path / "x.csv", x, delimiter=",")
    np.savez(tmp_path / "x.npz", x=x)
    assert cli_main(["predict", str(diabetes_run), str(tmp_path / "x.csv"), "-o", str(tmp_path / "p.csv")]) == 0
    assert "wrote 88 predictions of 1 target(s)" in capsys.readouterr().out
    assert np.allclose(np.loadtxt(tmp_path / "p.csv", delimiter=",", ndmin=2), expected, rtol=1e-6)
    assert cli_main(["predict", str(diabetes_run), str(tmp_path / "x.npz"), "-o", str(tmp_path / "p.npz")]) == 0
    with np.load(tmp_path / "p.npz") as npz:
        assert np.array_equal(npz["pred"], expected)
    assert cli_main(["predict", str(diabetes_run), str(tmp_path / "x.csv"), "-o", str(tmp_path / "new" / "P.CSV")]) == 0
    assert (tmp_path / "new" / "P.CSV").is_file()
    capsys.readouterr()
    (tmp_path / "bad.csv").write_text("1,2,3\n4,oops,6\n")
    np.savez(tmp_path / "nox.npz", features=x)
    for name, message in (("bad.csv", "cannot read features from .*bad.csv.*no header row"),
                          ("nox.npz", "nox.npz has no 'x' array"),
                          ("x.csv", None)):
        out = "p.txt" if message is None else "p.csv"
        assert cli_main(["predict", str(diabetes_run), str(tmp_path / name), "-o", str(tmp_path / out)]) == 2
        err = capsys.readouterr().err
        assert re.search(message or "predictions are written to a .csv or an .npz", err), err


def test_loaded_run_predict_checks_its_input_and_its_model(diabetes_run):
    run = gankit.load(diabetes_run)
    x = load_dataset(DataConfig(name="diabetes"), "test").x
    assert np.array_equal(run.predict(x), run.predict(x.numpy().astype(np.float64)))
    assert run.predict(x[:3].tolist()).shape == (3, 1)
    with pytest.raises(GankitError, match=r"inputs must have shape \(N, 10\), got \(3, 9\)"):
        run.predict(x[:3, :9])
    with pytest.raises(GankitError, match="has no generator.*predict"):
        run.sample(4)
    gan = LoadedRun(load_config(), build_models(load_config().model, (2,), 0, seed=0), 0, {"sample_shape": [2]})
    with pytest.raises(GankitError, match=r"model \(mlp_gan\) is not a regressor"):
        gan.predict(np.zeros((1, 2)))


def test_resume_is_bit_for_bit_and_takes_a_new_learning_rate(tmp_path):
    short = QUIET + ["train.steps=40", "train.checkpoint_every=20", "model.dropout=0.1"]
    straight = gankit.train(CONFIG, overrides=short, out=tmp_path / "straight")
    split = gankit.train(CONFIG, overrides=[*short, "train.steps=20"], out=tmp_path / "split")
    gankit.train(None, overrides=["train.steps=40"], out=split, resume=True)
    a, b = (ckpt.load_checkpoint(latest_checkpoint(run))[0] for run in (straight, split))
    assert set(a) == set(b) and [k for k in a if not torch.equal(a[k], b[k])] == []
    assert "model.regressor.y_std" in a
    gankit.train(None, overrides=["train.steps=50", "optim.lr_g=1e-5"], out=split, resume=True)
    meta = ckpt.load_checkpoint(latest_checkpoint(split))[1]
    assert meta["optim"]["regressor"]["param_groups"][0]["lr"] == 1e-5


def test_fit_regressor_recovers_a_linear_map(tmp_path):
    g = np.random.default_rng(0)
    x = g.normal(size=(600, 3)) * [1.0, 2.0, 1.0] + [0.0, 1.0, -3.0]  # the third feature is a distractor
    y = 3 * x[:, 0] - 2 * x[:, 1] + 5 + 0.05 * g.normal(size=600)
    run = gankit.fit_regressor(x[:500], y[:500], steps=800, out=tmp_path / "fit")  # hidden (64, 64), lr 1e-3
    err = rmse(run.predict(x[500:])[:, 0], y[500:])
    assert 0.025 < err < 0.05 * y.std()  # measured 0.093 against a std of 4.8 (and noise of 0.05)
    assert (tmp_path / "fit" / "data.npz").is_file() and run.config.data.name == "arrays"
    assert run.config.model.targets == 1 and run.step == 800


def test_fit_regressor_in_a_temporary_directory_and_its_errors(tmp_path):
    x, y = np.random.default_rng(1).normal(size=(40, 2)), np.zeros((40, 2))
    run = gankit.fit_regressor(x, y, hidden=[4], steps=5, batch_size=8)
    assert run.predict(x).shape == (40, 2) and run.config.model.targets == 2
    assert not Path(run.config.data.root).parent.exists()  # the temporary run directory is gone
    with pytest.raises(GankitError, match=r"x of shape \(N, D\) and y of shape \(N,\) or \(N, T\)"):
        gankit.fit_regressor(x[:, 0], y)
    with pytest.raises(GankitError, match="batch_size=64 is larger than the 40 samples"):
        gankit.fit_regressor(x, y)
    with pytest.raises(GankitError, match="must be finite"):
        gankit.fit_regressor(x, np.full(40, np.inf), batch_size=8)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "f").write_text("")
    with pytest.raises(GankitError, match="already exists"):
        gankit.fit_regressor(x, y, batch_size=8, out=tmp_path / "taken")
