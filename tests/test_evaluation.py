"""Evaluators (trained here, hash-pinned) and the evaluation wrapper: what gets measured, guards, cache, CLI, and
evaluation during training with the best checkpoint kept."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import gankit
from gankit.cli import main
from gankit.config import DataConfig
from gankit.data import load_dataset
from gankit.data.toy2d import mixture_means
from gankit.errors import GankitError
from gankit.metrics import evaluator as ev
from gankit.metrics.evaluate import EvalSettings, Evaluation
from gankit.metrics.train_evaluator import accuracy, train_evaluator

EVAL_KEYS = {"fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "classifier_score", "modes",
             "mode_kl", "provenance", "warnings"}


@pytest.fixture(scope="module")
def digits_eval() -> Evaluation:
    return Evaluation(DataConfig(name="digits"))


@pytest.fixture(scope="module")
def digits_train():
    return load_dataset(DataConfig(name="digits"), "train")


# ---------------------------------------------------------------------------------------------------------------
# Evaluators


@pytest.mark.parametrize("name, minimum", [("mnist", 0.99), ("digits", 0.97)])
def test_builtin_evaluators_are_pinned_and_accurate(name, minimum):
    assert len(ev.BUILTIN[name]) == 64
    card = json.loads((ev.WEIGHTS_DIR / f"{name}.json").read_text())
    assert card["sha256"] == ev.BUILTIN[name]
    assert minimum <= card["test_accuracy"] <= 1.0
    loaded = ev.load_evaluator(name)
    assert loaded.sha256 == ev.BUILTIN[name] and loaded.spec.num_classes == 10


def test_digits_evaluator_accuracy_matches_its_card():
    loaded = ev.load_evaluator("digits")
    measured = accuracy(loaded.net, load_dataset(DataConfig(name="digits"), "test"))
    assert abs(measured - loaded.spec.record["test_accuracy"]) < 1e-5  # the card rounds to 5 decimals


def test_a_corrupted_evaluator_is_refused(tmp_path, monkeypatch):
    bad = tmp_path / "bad.safetensors"
    raw = bytearray((ev.WEIGHTS_DIR / "digits.safetensors").read_bytes())
    raw[-5] ^= 0xFF  # a weight byte near the end of the tensor data
    bad.write_bytes(bytes(raw))
    with pytest.raises(GankitError, match="do not match"):
        ev.load_evaluator(str(bad))
    monkeypatch.setitem(ev.BUILTIN, "digits", "0" * 64)
    with pytest.raises(GankitError, match="SHA-256"):
        ev.load_evaluator("digits")


def test_unknown_evaluator_names_the_builtin_ones():
    with pytest.raises(GankitError, match="digits, mnist"):
        ev.load_evaluator("inception")


def test_features_and_probabilities_have_the_documented_shapes(digits_train):
    loaded = ev.load_evaluator("digits")
    feats, probs = loaded(digits_train.x[:50])
    assert feats.shape == (50, 128) and probs.shape == (50, 10)
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5) and (feats >= 0).all()
    feats32, _ = loaded(torch.nn.functional.interpolate(digits_train.x[:50], size=32))  # resized back to 8x8
    assert feats32.shape == (50, 128)
    with pytest.raises(GankitError, match="takes"):
        loaded(torch.zeros(2, 3, 8, 8))


def _bars_folder(root, n=40, size=12):
    """Two classes a CNN separates easily: horizontal and vertical bars at random positions."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", n), ("test", n // 2)):
        for cls in ("horizontal", "vertical"):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(count):
                img = np.zeros((size, size), np.uint8)
                pos = rng.integers(2, size - 2)
                if cls == "horizontal":
                    img[pos - 1:pos + 1] = 255
                else:
                    img[:, pos - 1:pos + 1] = 255
                Image.fromarray(img).save(folder / f"{i}.png")
    return root


def test_gankit_evaluator_train_on_a_users_folder(tmp_path, capsys):
    root = _bars_folder(tmp_path / "bars")
    out = tmp_path / "bars.safetensors"
    code = main(["evaluator", "train", "--data", "folder", "--set", f"data.root={root}", "-o", str(out),
                 "--epochs", "15", "--width", "8"])
    assert code == 0
    assert "test accuracy" in capsys.readouterr().out
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["classes"] == ["horizontal", "vertical"] and card["test_size"] == 40
    assert 0.9 <= card["test_accuracy"] <= 1.0
    loaded = ev.load_evaluator(str(out))
    assert loaded.sha256 == card["sha256"] and loaded.spec.size == 12


def test_evaluator_training_needs_labels(tmp_path):
    from PIL import Image

    (tmp_path / "flat").mkdir()
    for i in range(4):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "flat" / f"{i}.png")
    with pytest.raises(GankitError, match="no labels"):
        train_evaluator(DataConfig(name="folder", root=str(tmp_path / "flat")), tmp_path / "x.safetensors")


# ---------------------------------------------------------------------------------------------------------------
# What the evaluation measures


def test_real_images_beat_half_the_classes_beat_noise(digits_eval, digits_train):
    real = digits_eval.score(digits_train.x)
    half = digits_eval.score(digits_train.x[digits_train.y < 5])
    g = torch.Generator().manual_seed(0)
    noise = digits_eval.score(torch.rand(1000, 1, 8, 8, generator=g) * 2 - 1)
    assert EVAL_KEYS <= set(real)
    assert real["fid"] < half["fid"] < noise["fid"]
    assert real["modes"] == 10 and half["modes"] == 5
    assert real["mode_kl"] < 0.05 and abs(half["mode_kl"] - np.log(2)) < 0.1
    assert real["recall"] > half["recall"] and real["coverage"] > half["coverage"] > noise["coverage"]
    assert 0.8 < real["precision"] <= 1.0 and 0.8 < real["coverage"] <= 1.0
    assert 8.0 < real["classifier_score"] <= 10.0 and 4.0 < half["classifier_score"] <= 5.0
    assert abs(real["kid"]) < 5 * real["kid_std"] + 1e-3 and half["kid"] > 0


def test_scores_are_the_registered_metrics(digits_eval, digits_train, monkeypatch):
    """Evaluation computes what the METRICS registry holds: a metric registered there appears in every score, and
    its features are those the others saw."""
    from gankit.registry import METRICS

    seen = []

    def spread(evaluation, fake):
        seen.append(fake.features.shape)
        return {"feature_spread": float(fake.features.std())}

    monkeypatch.setitem(METRICS._items, "feature_spread", spread)
    result = digits_eval.score(digits_train.x[:600])
    assert seen == [(600, 128)] and 0 < result["feature_spread"] < 1e3
    assert {"fid", "kid", "precision", "classifier_score", "modes"} <= set(result)
    assert "feature_spread" in METRICS.names(ordered=True)


def test_provenance_says_how_it_was_computed(digits_eval, digits_train):
    result = digits_eval.score(digits_train.x[:600], source="unit test")
    prov = result["provenance"]
    assert prov["num_samples"] == 600 and prov["samples"] == "unit test"
    assert prov["evaluator"]["sha256"] == ev.BUILTIN["digits"]
    assert prov["reference"]["dataset"] == "digits" and prov["reference"]["size"] == 359
    assert len(prov["reference"]["sha256"]) == 64
    assert prov["kid"]["subset_size"] == 359 and prov["k"] == 3 and prov["forced"] is False
    assert {"gankit", "torch", "numpy", "scipy"} <= set(prov["versions"])
    json.dumps(result)  # everything is JSON-serialisable


def test_size_guards_refuse_and_force_flags(digits_train):
    with pytest.raises(GankitError, match=r"FID needs at least 256 samples and reference items \(twice the "):
        Evaluation(DataConfig(name="digits")).score(digits_train.x[:100])
    forced = Evaluation(DataConfig(name="digits"), EvalSettings(force=True)).score(digits_train.x[:100])
    assert forced["provenance"]["forced"] is True and forced["warnings"]
    with pytest.raises(GankitError, match="KID subsets of 5000"):
        Evaluation(DataConfig(name="digits"), EvalSettings(kid_subset_size=5000)).score(digits_train.x)


def test_reference_features_are_cached(tmp_path, monkeypatch, digits_train):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))
    first = Evaluation(DataConfig(name="digits"))
    files = list((tmp_path / "reference").glob("digits-test-*.safetensors"))
    assert len(files) == 1
    second = Evaluation(DataConfig(name="digits"))
    assert np.array_equal(first.reference.features, second.reference.features)
    assert first.score(digits_train.x)["fid"] == second.score(digits_train.x)["fid"]


def test_toy2d_mixture_protocol():
    evaluation = Evaluation(DataConfig(name="toy2d", mixture="ring", num_samples=5000))
    true = load_dataset(DataConfig(name="toy2d", mixture="ring", num_samples=2500), "train", seed=7)
    full = evaluation.score(true.x)
    assert full["modes"] == 8 and full["hq_fraction"] > 0.97 and full["mode_kl"] < 0.02
    assert full["fid"] < 0.01 and full["provenance"]["evaluator"]["name"].startswith("identity")
    assert "vendi" not in full and full["provenance"]["vendi"] is None  # images only (a cosine of coordinates: no)
    means, _ = mixture_means("ring")
    half = evaluation.score(true.x[true.y < 4])
    assert half["modes"] == 4 and abs(half["mode_kl"] - np.log(2)) < 0.02
    assert half["fid"] > full["fid"] and half["coverage"] < full["coverage"]
    assert evaluation.default_n() == 2500  # the protocol's sample count, drawn from a run unless -n says otherwise


def test_stacked_mnist_counts_digit_triplets(mnist_root):
    cfg = DataConfig(name="stacked_mnist", root=str(mnist_root), num_samples=1000)
    real = load_dataset(cfg, "train", seed=3)
    evaluation = Evaluation(cfg, EvalSettings(kid_subsets=10))
    scored = evaluation.score(real.x)
    # 1,000 uniform draws over 1,000 modes cover 1000 (1 - e^-1) = 632 of them on average (sd about 10)
    assert scored["num_modes"] == 1000 and 580 <= scored["modes"] <= 690
    assert scored["provenance"]["feature_dim"] == 3 * 128
    one = real.x[real.y == real.y[0]]
    collapsed = evaluation.score(one.repeat(800 // len(one) + 1, 1, 1, 1)[:800])
    assert collapsed["modes"] <= 3 and collapsed["mode_kl"] > 5.0 and collapsed["fid"] > scored["fid"]
    # a run is scored on the published 26,000 unless told (10,000 would put even real triplets at KL 0.05)
    assert evaluation.default_n() == 26_000
    assert Evaluation(cfg, EvalSettings(n=500, kid_subsets=10)).default_n() == 500


@pytest.fixture(scope="module")
def lean_eval() -> Evaluation:
    """Digits, guards forced, two KID subsets: for tests about the other metrics (KID is the costly one)."""
    return Evaluation(DataConfig(name="digits"), EvalSettings(force=True, kid_subsets=2))


def test_vendi_on_the_evaluator_features(lean_eval, digits_train):
    """Real digits are more diverse than one class of them, which is more diverse than one image repeated."""
    x, y = digits_train.x, digits_train.y
    full = lean_eval.score(x)
    ones = lean_eval.score(x[y == 1].repeat(4, 1, 1, 1)[:600])["vendi"]
    copies = lean_eval.score(x[:1].repeat(600, 1, 1, 1))["vendi"]
    assert lean_eval.default_n() == 10_000  # images without a protocol of their own
    assert abs(copies - 1.0) < 1e-6 and 1.0 < ones < full["vendi"] <= 128
    assert full["provenance"]["vendi"].startswith("cosine")


def test_intra_fid_needs_labels_and_swapped_labels_raise_it(lean_eval, digits_train):
    """Intra-class FID comes with labels only; relabelling two classes' samples leaves the pooled FID as it was and
    raises it. Digits has about 36 test images per class, under the 256 the guard asks for: refused, dropped with
    ``partial``, computed and flagged with ``force``."""
    x, y = digits_train.x, digits_train.y
    assert "intra_fid" not in lean_eval.score(x)
    with pytest.raises(GankitError, match="intra-class FID needs at least 256"):
        Evaluation(DataConfig(name="digits")).score(x, labels=y)
    partial = Evaluation(DataConfig(name="digits"), EvalSettings(partial=True, kid_subsets=2)).score(x, labels=y)
    assert "intra_fid" not in partial and "fid" in partial and partial["provenance"]["not_computed"] == ["intra_fid"]
    assert any(w.startswith("intra-class FID not computed") for w in partial["warnings"])
    right = lean_eval.score(x, labels=y)
    swapped = lean_eval.score(x, labels=torch.where(y == 3, 8, torch.where(y == 8, 3, y)))
    assert right["provenance"]["forced"] is True and len(right["intra_fid_per_class"]) == 10
    assert abs(right["fid"] - swapped["fid"]) < 1e-9 and swapped["intra_fid"] > right["intra_fid"] + 1.0
    assert right["provenance"]["intra_fid"] == {"classes": 10, "smallest_class": int(torch.bincount(y).min())}
    with pytest.raises(GankitError, match="integer classes"):
        lean_eval.score(x, labels=y[:-1])


def test_cached_reference_keeps_its_labels(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))
    first = Evaluation(DataConfig(name="digits"))
    second = Evaluation(DataConfig(name="digits"))  # read from the cache
    test_y = load_dataset(DataConfig(name="digits"), "test").y.numpy()
    assert np.array_equal(first.reference.labels, test_y) and np.array_equal(second.reference.labels, test_y)
    path = first._cache_path(test_y)
    monkeypatch.setattr("gankit.metrics.evaluate.CACHE_LAYOUT", 1)  # a cache written before labels were kept
    assert Evaluation(DataConfig(name="digits"))._cache_path(test_y) != path
    assert len(list((tmp_path / "reference").glob("digits-test-*.safetensors"))) == 2


# ---------------------------------------------------------------------------------------------------------------
# The command line and the API


def test_gankit_eval_of_an_npz(tmp_path, capsys, digits_train):
    path = tmp_path / "samples.npz"
    gankit.save_samples(digits_train.x, path)
    assert main(["eval", str(path), "--data", "digits", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert EVAL_KEYS <= set(result) and result["provenance"]["samples"] == str(path)
    assert result["modes"] == 10
    assert main(["eval", str(path), "--data", "digits"]) == 0
    text = capsys.readouterr().out
    assert "fid" in text and "features: digits" in text
    assert main(["eval", str(path)]) == 2
    assert "--data" in capsys.readouterr().err


def test_gankit_eval_reports_vendi_and_a_conditional_run_intra_fid(tmp_path, capsys):
    """End to end on digits: a class-conditional run has ``intra_fid`` (forced: digits has too few test images per
    class for the guard) and ``vendi``; an unconditional one has ``vendi`` and no ``intra_fid``."""
    from cli_helpers import train_args

    assert main(train_args(tmp_path / "c", "model.conditioning=concat")) == 0
    assert main(train_args(tmp_path / "u")) == 0
    capsys.readouterr()
    fast = ["-n", "1000", "--kid-subsets", "2"]
    assert main(["eval", str(tmp_path / "c"), *fast, "--force", "--json"]) == 0
    cond = json.loads(capsys.readouterr().out)
    assert 0 < cond["intra_fid"] < 1e6 and len(cond["intra_fid_per_class"]) == 10
    assert abs(cond["intra_fid"] - np.mean(cond["intra_fid_per_class"])) < 1e-9 * cond["intra_fid"]
    assert 1.0 <= cond["vendi"] <= 128 and cond["provenance"]["intra_fid"]["classes"] == 10
    assert main(["eval", str(tmp_path / "c"), *fast]) == 0  # the guard drops intra-class FID, says why
    text = capsys.readouterr().out
    assert "vendi" in text and "intra_fid" not in text and "intra-class FID not computed" in text
    assert main(["eval", str(tmp_path / "u"), *fast, "--json"]) == 0
    uncond = json.loads(capsys.readouterr().out)
    assert 1.0 <= uncond["vendi"] <= 128 and "intra_fid" not in uncond and uncond["provenance"]["intra_fid"] is None


def test_format_result_prints_vendi_and_intra_fid_but_not_the_per_class_list(lean_eval, digits_train):
    from gankit.metrics.evaluate import format_result

    text = format_result(lean_eval.score(digits_train.x[:600], labels=digits_train.y[:600]))
    assert "  vendi " in text and "  intra_fid " in text and "intra_fid_per_class" not in text


def test_training_evaluates_and_keeps_the_best_checkpoint(tmp_path, tiny_overrides, capsys):
    overrides = [o for o in tiny_overrides if not o.startswith("train.eval_every")]
    overrides += ["train.eval_every=10", "train.eval_samples=400", "train.checkpoint_every=10", "train.steps=20"]
    run_dir = gankit.train(None, overrides=overrides, out=tmp_path / "r")
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "eval/fid" in r]
    assert [r["step"] for r in evals] == [10, 20]
    assert {"eval/kid", "eval/precision", "eval/recall", "eval/modes"} <= set(evals[0])
    best = json.loads((run_dir / "checkpoints" / "best.json").read_text())
    assert best["fid"] == min(r["eval/fid"] for r in evals)
    assert (run_dir / "checkpoints" / "best.safetensors").is_file()
    assert sorted(p.name for p in (run_dir / "eval").glob("*.json")) == ["step_0000010.json", "step_0000020.json"]
    assert "eval at step 20" in capsys.readouterr().err
    # gankit eval on the run writes its own result beside the training-time ones
    assert main(["eval", str(run_dir), "-n", "500", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["step"] == 20 and result["provenance"]["num_samples"] == 500
    assert json.loads((run_dir / "eval" / "step_0000020-n500.json").read_text())["provenance"]["num_samples"] == 500
    assert json.loads((run_dir / "eval" / "step_0000020.json").read_text())["provenance"]["num_samples"] == 400
    # the best checkpoint survives a resume: its record travels in every step checkpoint
    gankit.train(None, overrides=["train.steps=30"], out=run_dir, resume=True)
    best_after = json.loads((run_dir / "checkpoints" / "best.json").read_text())
    assert best_after["fid"] <= best["fid"]


def test_eval_samples_too_few_for_fid_is_a_config_error(tmp_path, tiny_overrides):
    overrides = [o for o in tiny_overrides if not o.startswith("train.eval_every")]
    with pytest.raises(GankitError, match="train.eval_samples=100"):
        gankit.train(None, overrides=overrides + ["train.eval_samples=100"], out=tmp_path / "r")


def test_unknown_dataset_without_evaluator_is_explained(tmp_path):
    arr = tmp_path / "x.npz"
    np.savez(arr, arr_0=np.zeros((300, 8, 8, 1), np.uint8))
    with pytest.raises(GankitError, match="gankit evaluator train"):
        gankit.evaluate(arr, data="arrays", overrides=[f"data.root={arr}"])
