"""Taking a model out of gankit (#22): ONNX files checked with onnxruntime against gankit's own verbs for every
registered family, and model folders in the Hugging Face Hub's layout that load back bit for bit, through every
verb, from a folder or from the Hub's offline cache, read only through the checked readers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from cli_helpers import one_line_error
from gankit.cli import main
from gankit.errors import GankitError
from gankit.registry import MODELS
from gankit.tasks import Task

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install -e '.[export]')")
pytest.importorskip("onnxscript", reason="onnxscript is not installed (pip install -e '.[export]')")
pytest.importorskip("huggingface_hub", reason="huggingface_hub is not installed (pip install -e '.[export]')")

ROOT = Path(__file__).resolve().parent.parent
QUIET = ["train.progress=false", "train.eval_every=0", "train.steps=2", "train.batch_size=8"]
GAN = ["model.g_hidden=[16]", "model.d_hidden=[16]", "model.latent_dim=4"]
STYLE = ["model.name=stylegan", "recipe.name=stylegan", "data.size=16", "model.latent_dim=16", "model.w_dim=16",
         "model.mapping_layers=2", "model.width=16", "model.min_width=8", "recipe.start_size=8",
         "recipe.phase_steps=2", "model.conv=modulated", "train.ema=0.9"]
PIX = ["data.name=test_mirrored_pairs", "model.name=pix2pix", "model.width=8", "model.d_width=8", "model.d_layers=1",
       "data.size=16"]
CYCLE = ["data.name=test_mirrored_unpaired", "model.name=cyclegan", "model.width=4", "model.d_width=8",
         "model.d_layers=1", "model.res_blocks=1", "data.size=16", "recipe.pool_size=4"]
# each run: its overrides (tiny widths, two steps; one run may serve several export cases)
RUNS = {
    "mlp_gan": [*GAN, "model.conditioning=concat", "train.ema=0.9"],  # a label input, EMA weights
    "mlp_toy": [*GAN, "model.name=mlp_toy", "data.name=toy2d"],  # 2-D points
    "dcgan": ["model.name=dcgan", "model.g_width=8", "model.d_width=8", "model.latent_dim=4"],  # batch norm
    "r3gan": ["model.name=r3gan", "model.widths=[8,8]", "model.blocks=[1,1]", "model.cardinality=2",
              "model.expansion=2", "model.embed_dim=4", "model.latent_dim=4", "model.conditioning=projection"],
    "stylegan": STYLE,
    "stylegan_cond": [*STYLE, "model.conditioning=projection"],  # a label input before psi and the noise maps
    "mlp_ae": ["model.name=mlp_ae", "model.hidden=[16]", "model.bottleneck=3"],
    "conv_ae": ["model.name=conv_ae", "model.width=4", "model.bottleneck=3", "data.size=16"],
    "vae": ["model.name=vae", "model.arch=conv", "model.width=4", "model.latent_dim=3", "data.size=16"],
    "pix2pix": PIX,  # dropout in the decoder: exported as gankit translate runs it (off)
    "pix2pix_vector": [*PIX, "model.noise=vector", "model.noise_dim=3"],
    "cyclegan": CYCLE,
    "mlp_regressor": ["model.name=mlp_regressor", "data.name=diabetes", "model.hidden=[8]", "model.dropout=0.5"],
}
# (case, run, export options): every registered family at least once (checked below)
CASES = [("mlp_gan", "mlp_gan", {}), ("mlp_toy", "mlp_toy", {}), ("dcgan", "dcgan", {}), ("r3gan", "r3gan", {}),
         ("stylegan", "stylegan", {}), ("stylegan-psi", "stylegan", {"psi": 0.7}),
         ("stylegan-const", "stylegan", {"noise": "const"}), ("stylegan-cond", "stylegan_cond", {}),
         ("mlp_ae-decoder", "mlp_ae", {}),
         ("conv_ae-encoder", "conv_ae", {"part": "encoder"}), ("vae-decoder", "vae", {}),
         ("vae-encoder", "vae", {"part": "encoder"}), ("pix2pix-dropout", "pix2pix", {}),
         ("pix2pix-vector", "pix2pix_vector", {}), ("cyclegan-AB", "cyclegan", {}),
         ("cyclegan-BA", "cyclegan", {"direction": "BA"}), ("mlp_regressor", "mlp_regressor", {})]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Each run of RUNS trained once, when a test first asks for it."""
    folder, done = tmp_path_factory.mktemp("export-runs"), {}

    def get(name: str) -> Path:
        if name not in done:
            done[name] = gankit.train(None, overrides=[*QUIET, *RUNS[name]], out=folder / name)
        return done[name]
    return get


def test_every_registered_family_has_an_export_case():
    families = {gankit.load_config(None, RUNS[run]).model.name for _, run, _ in CASES}
    assert families == set(MODELS.names())


# ---------------------------------------------------------------------------------------------------------------
# ONNX: the file computes what gankit computes


def _feeds_and_expected(run: gankit.LoadedRun, case: str, n: int) -> tuple[dict[str, np.ndarray], torch.Tensor]:
    """Inputs for the exported graph of ``case`` with batch ``n``, and what gankit's own verb gives for them."""
    g = torch.Generator().manual_seed(n)
    if case.startswith(("mlp_gan", "mlp_toy", "dcgan", "r3gan", "stylegan", "vae-decoder")):
        G, rng = run.generator, run.rng(n)  # draw as sample() draws: z, then labels (or StyleGAN's noise maps)
        z = G.sample_latent(n, generator=rng)
        feeds = {"z": z}
        if G.num_classes:
            feeds["label"] = G.sample_labels(n, generator=rng)
        if case == "stylegan-const":  # the fixed noise maps: what `gankit latent` grids render
            return {**feeds, "psi": torch.full((1,), 0.6)}, G.generate(z, psi=0.6)
        if case.startswith("stylegan"):  # the noise maps sample() draws after z; psi an input, or fixed at 0.7
            feeds.update({f"noise{i}": torch.randn((n, *s), generator=rng) for i, s in enumerate(G.noise_shapes())})
            if case in ("stylegan", "stylegan-cond"):
                feeds["psi"] = torch.full((1,), 0.5)
            return feeds, run.sample(n, seed=n, psi=0.7 if case == "stylegan-psi" else 0.5)
        return feeds, run.sample(n, seed=n)
    if case == "mlp_ae-decoder":
        z = torch.randn(n, run.generator.latent_dim, generator=g)
        return {"z": z}, run.decode(z)
    if case.endswith("encoder"):
        x = torch.rand((n, *run.data_info["sample_shape"]), generator=g) * 2 - 1
        return {"images": x}, run.encode(x)
    if case.startswith(("pix2pix", "cyclegan")):
        direction = "BA" if case.endswith("BA") else "AB"
        c_in, _ = run.domain_channels(direction)
        x = torch.rand((n, c_in, 16, 16), generator=g) * 2 - 1
        feeds = {"images": x}
        G = run.translator(direction)
        if G.noise_dim:
            feeds["z"] = G.sample_noise(n, generator=run.rng(0))  # the codes translate() draws with its seed 0
        return feeds, run.translate(x, direction=direction)
    x = torch.randn((n, *run.data_info["sample_shape"]), generator=g)
    return {"features": x}, torch.from_numpy(run.predict(x))


@pytest.mark.parametrize("case, name, options", CASES, ids=[c for c, _, _ in CASES])
def test_onnx_export_matches_gankit_at_two_batch_sizes(runs, tmp_path, case, name, options):
    run = gankit.load(runs(name), device="cpu")
    if case == "pix2pix-dropout":  # noise at test time that the export must not carry: dropout, off as in translate
        assert any(isinstance(m, torch.nn.Dropout) for m in run.generator.modules())
    done = gankit.export(run, tmp_path / "model.onnx", **options)
    assert done.max_diff is not None and done.max_diff <= 1e-4  # the export's own check, on its example inputs
    session = ort.InferenceSession(str(done.path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    for n in (2, 5):  # neither is the example batch: the batch axis is dynamic
        with torch.no_grad():
            feeds, expected = _feeds_and_expected(run, case, n)
        assert sorted(names) == sorted(feeds)
        got = session.run(None, {k: v.numpy() for k, v in feeds.items()})[0]
        assert got.shape == tuple(expected.shape)
        assert np.abs(got - expected.numpy()).max() <= 1e-4


def test_the_file_names_and_describes_its_inputs_and_output(runs, tmp_path):
    import onnx

    gankit.export(runs("mlp_gan"), tmp_path / "g.onnx")
    model = onnx.load(str(tmp_path / "g.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    assert [i.name for i in model.graph.input] == ["z", "label"] and [o.name for o in model.graph.output] == ["images"]
    assert meta["gankit.opset"] == "18" and any(o.domain == "" and o.version == 18 for o in model.opset_import)
    assert json.loads(meta["gankit.inputs"]) == {"z": "(B, 4) float32, codes drawn from N(0, I)",
                                                 "label": "(B,) int64, class labels in 0..9"}
    assert meta["gankit.model"] == "mlp_gan" and meta["gankit.step"] == "2"
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # a named (dynamic) batch axis


def test_the_cli_writes_one_line_and_refuses_bad_input_in_one_line(runs, tmp_path, capsys):
    run, vae = str(runs("dcgan")), str(runs("vae"))
    capsys.readouterr()  # the training's header
    assert main(["export", run, "-o", str(tmp_path / "g.onnx"), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"wrote {tmp_path / 'g.onnx'}: z (B, 4) -> images (B, 1, 8, 8); opset 18") and \
        "onnxruntime matches PyTorch" in out and out.count("\n") == 1
    (tmp_path / "notes.txt").write_text("a note, not a model\n")
    (tmp_path / "folder.onnx").mkdir()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("keep me\n")
    bad = [([str(tmp_path / "nowhere"), "-o", str(tmp_path / "x.onnx")], "no run or checkpoint"),
           ([str(tmp_path), "-o", str(tmp_path / "x.onnx")], "no checkpoint"),
           ([str(tmp_path / "notes.txt"), "-o", str(tmp_path / "x.onnx")], "text file"),
           ([run, "-o", str(tmp_path / "x.onnx"), "--format", "tflite"], "unknown export format 'tflite'"),
           ([run, "-o", str(tmp_path / "x.png")], "an .onnx file"),
           ([run, "-o", str(tmp_path / "folder.onnx")], "is a folder"),
           ([run, "-o", str(tmp_path / "notes.txt" / "x.onnx")], "is a file, not a folder"),
           ([run, "-o", str(tmp_path / "busy"), "--format", "hub"], "holds other files"),
           ([run, "-o", str(tmp_path / "notes.txt"), "--format", "hub"], "is a file"),
           ([run, "-o", str(tmp_path / "x.onnx"), "--direction", "BA"], "--direction does not apply", "dcgan"),
           ([run, "-o", str(tmp_path / "x.onnx"), "--push", "me/gan"], "--format hub"),
           ([run, "-o", str(tmp_path / "d"), "--format", "hub", "--psi", "0.5"], "--psi shapes an ONNX graph"),
           ([run, "-o", str(tmp_path / "d"), "--format", "hub", "--push", "not an id"], "USER/NAME"),
           ([vae, "-o", str(tmp_path / "x.onnx"), "--part", "middle"], "decoder or encoder")]
    for argv, *words in bad:
        one_line_error(capsys, ["export", *argv, "--device", "cpu"], *words)
    assert (tmp_path / "busy" / "mine.txt").read_text() == "keep me\n" and not (tmp_path / "d").exists()


def test_a_family_without_a_graph_says_so_in_one_line():
    # every registered family exports; the contract's default is what a new family gets until it says more
    task = Task(gankit.load_config(None, []), torch.device("cpu"))
    with pytest.raises(GankitError, match="has no graph to export"):
        task.export_graph(None, {})


# ---------------------------------------------------------------------------------------------------------------
# Model folders


@pytest.fixture(scope="module")
def folders(runs, tmp_path_factory):
    """Each run's model folder, written once."""
    out, done = tmp_path_factory.mktemp("folders"), {}

    def get(name: str) -> Path:
        if name not in done:
            done[name] = gankit.export(runs(name), out / name, format="hub", device="cpu").path
        return done[name]
    return get


def test_a_model_folder_holds_the_hub_layout_and_a_card_with_the_run(runs, folders):
    folder = folders("mlp_gan")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors",
                                                        "samples.png"]
    config = json.loads((folder / "config.json").read_text())
    assert config["format"] == "gankit-model/1" and config["step"] == 2 and config["modules"] == ["generator"]
    assert config["config"]["model"]["name"] == "mlp_gan" and config["data"]["sample_shape"] == [1, 8, 8]
    assert config["source"] == {"run": "mlp_gan", "file": "step_0000002.safetensors", "ema": True}
    card = (folder / "README.md").read_text()
    front = card.split("---\n")[1]
    assert "library_name: gankit" in front and "license: cc-by-4.0" in front and "- mlp_gan" in front
    assert "![64 samples from these weights, seed 0](samples.png)" in card
    assert "exponential moving average" in card and "model.conditioning" not in card  # the config is YAML
    assert "conditioning: concat" in card
    from huggingface_hub import ModelCard
    assert ModelCard.load(folder / "README.md").data.library_name == "gankit"
    assert Image.open(folder / "samples.png").size[0] > 8 * 8


def test_the_card_shows_the_evaluation_of_its_step_with_its_provenance(runs, tmp_path):
    run = runs("mlp_regressor")
    result = gankit.evaluate(run)  # written to RUN/eval/step_0000002-ntest.json
    done = gankit.export(run, tmp_path / "folder", format="hub")
    card = (done.path / "README.md").read_text()
    assert "## Evaluation" in card and "### Step 2, by gankit eval (eval/step_0000002-ntest.json)" in card
    assert f"| rmse | {result['rmse']:.4g} |" in card and '"split": "test"' in card  # provenance, as JSON
    assert "gankit predict" in card and "samples.png" not in card  # a regressor draws no grid
    assert "license" not in card.split("---\n")[1]  # the diabetes table's licence is not recorded


@pytest.mark.parametrize("name", ["mlp_gan", "stylegan", "pix2pix_vector", "cyclegan", "vae", "mlp_regressor"])
def test_a_model_folder_round_trips_bit_for_bit(runs, folders, name):
    original, loaded = gankit.load(runs(name), device="cpu"), gankit.load(folders(name), device="cpu")
    assert set(loaded.modules) == set(original.task.used_modules()) and loaded.step == original.step
    if "regressor" in original.modules:
        x = torch.randn(7, *original.data_info["sample_shape"])
        assert np.array_equal(loaded.predict(x), original.predict(x))
    elif "generator_ba" in original.modules or original.config.model.name == "pix2pix":
        x = torch.rand(5, 1, 16, 16) * 2 - 1
        for d in (["AB", "BA"] if "generator_ba" in original.modules else ["AB"]):
            assert torch.equal(loaded.translate(x, direction=d, seed=3), original.translate(x, direction=d, seed=3))
    else:
        assert torch.equal(loaded.sample(9, seed=5), original.sample(9, seed=5))
        if original.generator.num_classes:
            labels = torch.arange(9) % original.generator.num_classes
            assert torch.equal(loaded.sample(9, seed=5, labels=labels), original.sample(9, seed=5, labels=labels))


def test_every_verb_that_takes_a_run_takes_a_model_folder(runs, folders, tmp_path, capsys):
    gan, style, pix, vae, reg = (str(folders(n)) for n in ("mlp_gan", "stylegan", "pix2pix", "vae",
                                                           "mlp_regressor"))
    Image.fromarray(np.full((16, 16), 200, np.uint8)).save(tmp_path / "a.png")
    np.savetxt(tmp_path / "x.csv", np.random.default_rng(0).normal(size=(3, 10)), delimiter=",")
    np.savez(tmp_path / "faces.npz", arr_0=np.full((1, 16, 16, 1), 128, np.uint8))
    calls = [["sample", gan, "-n", "4", "--seed", "1", "-o", str(tmp_path / "s.npz")],
             ["latent", "interpolate", gan, "--rows", "2", "--steps", "3", "-o", str(tmp_path / "w.png")],
             ["translate", pix, str(tmp_path / "a.png"), "-o", str(tmp_path / "t.png")],
             ["project", style, str(tmp_path / "faces.npz"), "-o", str(tmp_path / "p.png"), "--steps", "2",
              "--edits", "1", "--feature-weight", "0"],
             ["encode", vae, "-o", str(tmp_path / "codes.npz")],
             ["decode", vae, str(tmp_path / "codes.npz"), "-o", str(tmp_path / "d.png"), "-n", "4"],
             ["predict", reg, str(tmp_path / "x.csv"), "-o", str(tmp_path / "p.csv")],
             ["eval", reg, "--json"]]
    for argv in calls:
        assert main([*argv, "--device", "cpu"]) == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["provenance"]["reference"]["split"] == "test"
    assert not (Path(reg) / "eval").exists()  # a model folder is read, not written to
    drawn = np.load(tmp_path / "s.npz")["arr_0"]
    again = gankit.load(runs("mlp_gan"), device="cpu").sample(4, seed=1)
    assert np.array_equal(drawn, gankit.api.to_uint8(again))


def _break(folder: Path, tmp_path: Path, name: str) -> Path:
    """A copy of ``folder`` to damage."""
    copy = tmp_path / name
    copy.mkdir()
    for p in folder.iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    return copy


def test_a_damaged_or_hostile_model_folder_is_refused_in_one_line(folders, tmp_path, capsys, monkeypatch):
    folder = folders("dcgan")
    flipped = _break(folder, tmp_path, "flipped")
    data = bytearray((flipped / "model.safetensors").read_bytes())
    data[-3] ^= 0xFF  # one byte of the last tensor
    (flipped / "model.safetensors").write_bytes(bytes(data))
    pickled = _break(folder, tmp_path, "pickled")
    torch.save({"generator.x": torch.zeros(1)}, pickled / "model.safetensors")
    foreign = _break(folder, tmp_path, "foreign")
    (foreign / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    odd = _break(folder, tmp_path, "odd")
    config = json.loads((odd / "config.json").read_text())
    (odd / "config.json").write_text(json.dumps({**config, "modules": ["generator", "generator_ba"]}))
    huge = _break(folder, tmp_path, "huge")
    cases = [(flipped, "fails its SHA-256 checksum"), (pickled, "is a pickle"),
             (foreign, "not a gankit model folder"), (odd, "'generator_ba'")]
    for path, words in cases:
        one_line_error(capsys, ["sample", str(path), "-o", str(tmp_path / "s.png"), "--device", "cpu"], words)
    monkeypatch.setenv("GANKIT_MAX_BYTES", "2K")  # below the weights' size: refused before a tensor is read
    one_line_error(capsys, ["sample", str(huge), "-o", str(tmp_path / "s.png"), "--device", "cpu"],
                   "GANKIT_MAX_BYTES")


def test_an_earlier_model_folder_is_replaced(runs, tmp_path):
    first = gankit.export(runs("dcgan"), tmp_path / "m", format="hub").path
    second = gankit.export(runs("mlp_regressor"), first, format="hub").path
    assert json.loads((second / "config.json").read_text())["modules"] == ["regressor"]
    assert not (second / "samples.png").exists()  # the earlier export's grid went with it


def test_a_hub_id_loads_from_the_offline_cache_and_push_fails_in_one_line_offline(runs, folders, tmp_path):
    # the Hub's cache as huggingface_hub lays it out: refs/main names a snapshot holding the folder's files
    repo = tmp_path / "home" / "hub" / "models--someone--tiny-gan"
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    for p in folders("mlp_gan").iterdir():
        (snapshot / p.name).write_bytes(p.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    env = {**os.environ, "HF_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1", "HF_TOKEN": "hf_not_a_token",
           "PYTHONPATH": str(ROOT / "src")}
    cli = [sys.executable, "-m", "gankit.cli"]
    ok = subprocess.run([*cli, "sample", "hf://someone/tiny-gan", "-n", "6", "--seed", "2", "-o",
                         str(tmp_path / "hub.npz"), "--device", "cpu"], env=env, capture_output=True, text=True,
                        timeout=120)
    assert ok.returncode == 0, ok.stderr
    expected = gankit.load(runs("mlp_gan"), device="cpu").sample(6, seed=2)
    assert np.array_equal(np.load(tmp_path / "hub.npz")["arr_0"], gankit.api.to_uint8(expected))
    for argv, words in [(["sample", "hf://someone/missing", "-o", str(tmp_path / "x.png")], "cannot fetch"),
                        (["export", str(runs("mlp_gan")), "--format", "hub", "-o", str(tmp_path / "up"), "--push",
                          "someone/tiny-gan"], "the upload failed")]:
        bad = subprocess.run([*cli, *argv, "--device", "cpu"], env=env, capture_output=True, text=True, timeout=120)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and bad.stderr.startswith("gankit: error:")
        assert words in bad.stderr and "Traceback" not in bad.stderr
    assert (tmp_path / "up" / "model.safetensors").is_file()  # written before the upload was tried
