"""Checkpoints under faults and hostile files (#24 items 6, 7, 8 and 14), met through the command line.

A real full disk (a small tmpfs in a private mount namespace, else a file size limit), a failed ``latest.json`` /
``best.json`` / evaluation write (through a link to ``/dev/full``, which answers every write with ENOSPC), altered
bytes and metadata, claims a file cannot hold, links that leave the run, and a model that no longer fits its
checkpoint: each ends in one line and exit code 2 with nothing lost, or, for ``--resume``, in a warning and a fall
back to the checkpoint before."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import save as serialize

from gankit.cli import main
from gankit.train import checkpoint as ckpt
from cli_helpers import one_line_error

SMALL = {"model": {"latent_dim": 8, "g_hidden": [32], "d_hidden": [32]},
         "train": {"steps": 10, "checkpoint_every": 5, "eval_every": 0, "progress": False, "batch_size": 16,
                   "sample_every": 1000, "log_every": 5}}


def small_config(folder: Path, **train) -> Path:
    path = folder / "small.yaml"
    path.write_text(yaml.safe_dump({"model": SMALL["model"], "train": {**SMALL["train"], **train}}))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One small run trained to step 10 (checkpoints at 0, 5 and 10); tests take a copy."""
    folder = tmp_path_factory.mktemp("trained")
    assert main(["train", str(small_config(folder)), "--out", str(folder / "run")]) == 0
    return folder / "run"


@pytest.fixture
def run(trained, tmp_path) -> Path:
    shutil.copytree(trained, tmp_path / "run", symlinks=True)
    return tmp_path / "run"


def steps_logged(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def latest_named(run: Path) -> str:
    return json.loads((run / "checkpoints" / "latest.json").read_text())["file"]


def temporaries(run: Path) -> list[str]:
    return sorted(str(p.relative_to(run)) for p in run.rglob("*.tmp"))


# ---------------------------------------------------------------------------------------------------------------
# 6. A full disk: one line, the previous checkpoint intact, no temporary, and --resume goes on once space is freed

_FULL_DISK_DRIVER = textwrap.dedent('''
    """Runs inside a private mount namespace with a small tmpfs mounted at argv[1]; prints what the test checks."""
    import contextlib, io, json, os, sys
    from pathlib import Path
    from gankit.cli import main
    from gankit.train import checkpoint as ckpt

    disk, config = Path(sys.argv[1]), sys.argv[2]
    run, filler = disk / "run", disk / "filler"  # the filler stands for a user's files on the same disk

    def cli(*argv):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main([str(a) for a in argv])
        return code, err.getvalue()

    def leave_free(free):
        filler.unlink(missing_ok=True)
        st = os.statvfs(disk)
        filler.write_bytes(b"\\0" * max(st.f_bavail * st.f_frsize - free, 0))

    def state():
        folder = run / "checkpoints"
        latest = json.loads((folder / "latest.json").read_text())
        return {"files": sorted(p.name for p in folder.iterdir()), "latest": latest,
                "readable": ckpt.load_checkpoint(folder / latest["file"])[1]["step"]}

    out = {}
    leave_free(250_000)  # the issue's 250 KB disk: some write of the run fails, whichever it is
    out["a"] = [cli("train", config, "--out", run), state()]
    filler.unlink()  # space freed
    out["a"] += [cli("train", "--out", run, "--resume"), state()]
    before = (run / "checkpoints" / "step_0000020.safetensors").read_bytes()
    leave_free(40_000)  # less than one checkpoint
    out["b"] = [cli("train", "--out", run, "--resume", "--set", "train.steps=30"), state()]
    out["b_intact"] = (run / "checkpoints" / "step_0000020.safetensors").read_bytes() == before
    filler.unlink()
    out["b"] += [cli("train", "--out", run, "--resume", "--set", "train.steps=30"), state()]
    pages = -(-(run / "checkpoints" / "step_0000030.safetensors").stat().st_size // 4096)
    leave_free(pages * 4096)  # room for the next checkpoint, and not a page more for latest.json
    # (nor for a new TensorBoard event file, which would take that page first: phases a and b have theirs)
    out["c"] = [cli("train", "--out", run, "--resume", "--set", "train.steps=35", "--set", "train.tensorboard=false"),
                state()]
    filler.unlink()
    out["c"] += [cli("train", "--out", run, "--resume", "--set", "train.steps=35"), state()]
    print(json.dumps(out))
''')


def _can_mount_tmpfs(where: Path) -> str | None:
    """None when a tmpfs can be mounted in a private mount namespace here, else why not."""
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    where.mkdir()
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {where}"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot mount a tmpfs in a private mount namespace (needs root): {probe.stderr.strip()}"
    return None


def test_a_real_full_disk_ends_in_one_line_and_resume_goes_on_once_space_is_freed(tmp_path):
    disk = tmp_path / "disk"
    why_not = _can_mount_tmpfs(disk)
    if why_not:
        pytest.skip(why_not + "; test_a_file_size_limit_... covers a failed write without a mount")
    (tmp_path / "driver.py").write_text(_FULL_DISK_DRIVER)
    config = small_config(tmp_path, steps=20)
    script = f"mount -t tmpfs -o size=1m tmpfs {disk} && exec {sys.executable} {tmp_path / 'driver.py'} {disk} {config}"
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr  # a traceback in the driver: some write was not handled
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for phase, steps in (("a", 20), ("b", 30), ("c", 35)):
        (code, err), full, (resumed, resume_err), final = out[phase]
        assert code == 2 and err.count("\n") == 1 and err.startswith("gankit: error:"), err
        assert "the disk is full" in err and "--resume" in err
        assert not [name for name in full["files"] if "tmp" in name]
        assert full["latest"]["step"] == full["readable"] > 0  # latest.json names a readable checkpoint
        assert resumed == 0, resume_err
        assert final["latest"] == {"step": steps, "file": ckpt.step_file(steps)} and final["readable"] == steps
    assert "step_0000025.safetensors" in out["b"][0][1] and out["b"][1]["latest"]["step"] == 20 and out["b_intact"]
    (code, err), full, (resumed, resume_err), final = out["c"]  # latest.json is the write that fails
    assert code == 2 and err.count("\n") == 1 and "latest.json: the disk is full" in err and "removed again" in err
    assert full["latest"]["step"] == full["readable"] == 30 and "step_0000035.safetensors" not in full["files"]
    assert not [name for name in full["files"] if "tmp" in name]
    assert resumed == 0 and final["latest"] == {"step": 35, "file": "step_0000035.safetensors"}, resume_err


def _limit_file_size(limit: int):
    def apply() -> None:  # in the child: every file it writes stays under ``limit`` bytes (EFBIG past it)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_file_size_limit_ends_in_one_line_and_keeps_the_previous_checkpoint(tmp_path):
    config, run = small_config(tmp_path), tmp_path / "run"
    # the step-0 checkpoint (no optimizer moments yet) fits under 64 KB, the step-5 one (88 KB) does not
    done = subprocess.run([sys.executable, "-m", "gankit", "train", str(config), "--out", str(run)],
                          capture_output=True, text=True, preexec_fn=_limit_file_size(64_000), timeout=600)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("gankit: error: could not write") and "step_0000005.safetensors" in done.stderr
    assert "ulimit -f" in done.stderr and "Traceback" not in done.stderr
    assert latest_named(run) == "step_0000000.safetensors" and temporaries(run) == []
    assert ckpt.load_checkpoint(run / "checkpoints" / "step_0000000.safetensors")[1]["step"] == 0
    assert main(["train", "--out", str(run), "--resume"]) == 0  # without the limit it goes on
    assert latest_named(run) == "step_0000010.safetensors" and steps_logged(run) == [5, 10]


def test_a_failed_latest_json_write_removes_the_new_step_and_leaves_no_temporary(run, capsys):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    (run / "checkpoints" / "latest.json.tmp").symlink_to("/dev/full")  # every write there fails with ENOSPC
    err = one_line_error(capsys, ["train", "--out", str(run), "--resume", "--set", "train.steps=15"])
    assert "latest.json: the disk is full" in err and "--resume" in err
    assert temporaries(run) == [] and latest_named(run) == "step_0000010.safetensors"
    assert not (run / "checkpoints" / "step_0000015.safetensors").exists()  # latest.json names the newest there is
    assert main(["train", "--out", str(run), "--resume", "--set", "train.steps=15"]) == 0
    assert latest_named(run) == "step_0000015.safetensors" and steps_logged(run) == [5, 10, 15]


@pytest.mark.parametrize("blocked", ["checkpoints/best.json.tmp", "eval/step_0000015.json.tmp"])
def test_a_failed_best_json_or_evaluation_write_is_one_line_and_leaves_no_temporary(run, capsys, blocked):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    (run / blocked).parent.mkdir(exist_ok=True)
    (run / blocked).symlink_to("/dev/full")
    err = one_line_error(capsys, ["train", "--out", str(run), "--resume", "--set", "train.steps=15",
                                  "--set", "train.eval_every=5", "--set", "train.eval_samples=600"])
    assert f"{Path(blocked).with_suffix('').name}: the disk is full" in err
    assert temporaries(run) == [] and not (run / blocked).is_symlink()
    if "best" in blocked:  # best.json never describes a checkpoint other than best.safetensors
        assert not (run / "checkpoints" / "best.json").exists()


def test_a_sample_grid_on_a_full_disk_is_one_line(run, capsys):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    (run / "samples" / "step_0000015.png").symlink_to("/dev/full")
    err = one_line_error(capsys, ["train", "--out", str(run), "--resume", "--set", "train.steps=15"])
    assert f"could not write a file in {run}: the disk is full" in err and "--resume" in err
    assert latest_named(run) == "step_0000015.safetensors" and temporaries(run) == []


def test_lines_of_metrics_jsonl_that_are_not_rows_do_not_stop_a_resume(run):
    with open(run / "metrics.jsonl", "ab") as fh:  # #24 item 13: a JSON list, a step that is text, bytes not UTF-8
        fh.write(b'[1, 2]\n{"step": "7"}\n\xff\xfe{"step": 3}\n')
    assert main(["train", "--out", str(run), "--resume", "--set", "train.steps=15"]) == 0
    assert steps_logged(run) == [5, 10, 15]


# ---------------------------------------------------------------------------------------------------------------
# 7. Integrity: checksums of every tensor and of the metadata, claims checked before anything is allocated


def _header(data: bytes) -> tuple[int, dict]:
    n = struct.unpack("<Q", data[:8])[0]
    return n, json.loads(data[8:8 + n])


def flip_step_key(path: Path) -> None:
    data = path.read_bytes()
    at = data.index(b'\\"step\\"')  # the metadata JSON sits, escaped, inside the header's JSON
    path.write_bytes(data[:at] + b'\\"stXp\\"' + data[at + 8:])


def overwrite_half_a_weight(path: Path, key: str = "model.generator.net.0.weight") -> None:
    data = path.read_bytes()
    n, header = _header(data)
    start, end = (8 + n + o for o in header[key]["data_offsets"])
    half = (end - start) // 2
    path.write_bytes(data[:start] + b"\x41" * half + data[start + half:])


def test_a_flipped_metadata_byte_makes_resume_fall_back_to_the_checkpoint_before(run, capsys):
    flip_step_key(run / "checkpoints" / "step_0000010.safetensors")
    assert main(["train", "--out", str(run), "--resume", "--set", "train.steps=15"]) == 0
    err = capsys.readouterr().err
    assert "skipping an unreadable checkpoint" in err and "metadata (config, step, data) fails its SHA-256" in err
    assert steps_logged(run) == [5, 10, 15]  # step 10 redone from step 5
    assert latest_named(run) == "step_0000015.safetensors"


def test_half_a_weight_overwritten_is_refused_by_sample_and_skipped_by_resume(run, capsys, tmp_path):
    newest = run / "checkpoints" / "step_0000010.safetensors"
    overwrite_half_a_weight(newest)
    err = one_line_error(capsys, ["sample", str(newest), "-n", "4", "-o", str(tmp_path / "x.png")])
    assert "model.generator.net.0.weight fails its SHA-256 checksum" in err
    assert not (tmp_path / "x.png").exists()
    assert main(["train", "--out", str(run), "--resume", "--set", "train.steps=15"]) == 0
    assert "skipping an unreadable checkpoint" in capsys.readouterr().err
    assert steps_logged(run) == [5, 10, 15]


def _rewrite(path: Path, meta_text: str | None = None, checksums: bool = True, **changes) -> None:
    """Write ``path`` again with its metadata changed: valid checksums (as gankit would write such a file) or none
    (as before checksums existed); ``meta_text`` replaces the metadata JSON whole."""
    tensors, meta = ckpt.load_checkpoint(path)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        target = meta
        for key in parents:
            target = target[key]
        if value is _DROP:
            del target[last]
        else:
            target[last] = value
    if checksums and meta_text is None:
        ckpt.save_checkpoint(path, tensors, meta)
        return
    text = meta_text if meta_text is not None else json.dumps(meta)
    path.write_bytes(serialize(tensors, metadata={"format": ckpt.FORMAT, "gankit": text}))


_DROP = object()
CLAIMS = {  # name: (changes to the newest checkpoint, words the refusal holds)
    "negative step": ({"step": -5}, "step -5 is not a number of steps"),
    "sample shape of [1, 1e5, 1e5]": ({"data__sample_shape": [1, 100_000, 100_000]}, "10,000,000,000 values"),
    "float sample shape": ({"data__sample_shape": [1, 8.0, 8]}, "not a list of 1 to 4 positive integers"),
    "huge num_classes": ({"data__num_classes": 10**12}, "class count 1000000000000"),
    "label prior of two classes": ({"data__label_prior": [0.5, 0.7]}, "label prior [0.5, 0.7] does not hold 10"),
    "config not a mapping": ({"config": [1, 2]}, "'config' is list, not a mapping"),
    "missing config (no checksums)": ({"config": _DROP, "checksums": False}, "has no 'config'"),
    "cut JSON (no checksums)": ({"meta_text": '{"step": 10, "config": {"mod', "checksums": False},
                                "metadata is not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(CLAIMS))
def test_a_checkpoint_claiming_what_it_cannot_be_is_refused_in_one_line(run, capsys, tmp_path, case):
    changes, words = CLAIMS[case]
    newest = run / "checkpoints" / "step_0000010.safetensors"
    _rewrite(newest, **changes)
    err = one_line_error(capsys, ["sample", str(newest), "-n", "4", "-o", str(tmp_path / "x.png")])
    assert "damaged or altered" in err and words in err
    assert main(["train", "--out", str(run), "--resume", "--set", "train.steps=15"]) == 0  # falls back to step 5
    assert steps_logged(run) == [5, 10, 15]


def _tensor_file(path: Path, declared: int, size: int) -> Path:
    """A checkpoint whose one tensor declares ``declared`` bytes, in a (sparse) file of ``size`` bytes."""
    header = {"__metadata__": {"format": ckpt.FORMAT, "gankit": "{}"},
              "model.generator.w": {"dtype": "U8", "shape": [declared], "data_offsets": [0, declared]}}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(text)) + text)
        fh.truncate(size)  # the rest is a hole: no disk space, and zeros when read
    return path


def test_a_sparse_six_gigabyte_tensor_is_refused_before_it_is_read(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GANKIT_MAX_BYTES", "1G")
    sparse = _tensor_file(tmp_path / "sparse.safetensors", 6 << 30, 6 << 30 | 4096)
    if sparse.stat().st_blocks * 512 > 1 << 20:
        sparse.unlink()
        pytest.skip(f"the file system of {tmp_path} stores no sparse files")
    err = one_line_error(capsys, ["sample", str(sparse), "-n", "4", "-o", str(tmp_path / "x.png")])
    assert "claims 6,442,450,944 bytes" in err and "GANKIT_MAX_BYTES" in err
    small = _tensor_file(tmp_path / "small.safetensors", 6 << 30, 4096)  # 4 KB that claim 6 GB
    err = one_line_error(capsys, ["sample", str(small), "-n", "4", "-o", str(tmp_path / "x.png")])
    assert "places tensors up to byte 6,442,450,944" in err


def test_checkpoints_written_before_checksums_load_without_them(run):
    path = run / "checkpoints" / "step_0000010.safetensors"
    tensors, meta = ckpt.load_checkpoint(path)
    _rewrite(path, checksums=False)  # the same tensors and metadata, no checksums
    old_tensors, old_meta = ckpt.load_checkpoint(path)
    assert old_meta == meta and all(torch.equal(old_tensors[k], tensors[k]) for k in tensors)
    overwrite_half_a_weight(path)  # without checksums an altered tensor cannot be told apart
    ckpt.load_checkpoint(path)


# ---------------------------------------------------------------------------------------------------------------
# 8. Links that leave the run directory are not checkpoints of it


def test_a_checkpoint_link_leaving_the_run_is_neither_sampled_nor_resumed(run, capsys, tmp_path):
    elsewhere = tmp_path / "elsewhere.safetensors"  # a valid checkpoint of another run, claiming step 9,000,000
    tensors, meta = ckpt.load_checkpoint(run / "checkpoints" / "step_0000005.safetensors")
    ckpt.save_checkpoint(elsewhere, tensors, {**meta, "step": 9_000_000})
    (run / "checkpoints" / "step_9000000.safetensors").symlink_to(elsewhere)
    before = elsewhere.read_bytes()
    assert main(["sample", str(run), "-n", "4", "--seed", "0", "-o", str(tmp_path / "a.npz")]) == 0
    assert "outside the run directory" in capsys.readouterr().err
    own = run / "checkpoints" / "step_0000010.safetensors"
    assert main(["sample", str(own), "-n", "4", "--seed", "0", "-o", str(tmp_path / "b.npz")]) == 0
    assert np.array_equal(np.load(tmp_path / "a.npz")["arr_0"], np.load(tmp_path / "b.npz")["arr_0"])
    assert main(["train", "--out", str(run), "--resume", "--set", "train.steps=15"]) == 0
    assert steps_logged(run) == [5, 10, 15] and latest_named(run) == "step_0000015.safetensors"
    assert elsewhere.read_bytes() == before and (run / "checkpoints" / "step_9000000.safetensors").is_symlink()


def test_a_link_inside_the_run_stays_a_checkpoint(run):
    kept = run / "kept.safetensors"
    shutil.copy(run / "checkpoints" / "step_0000010.safetensors", kept)
    (run / "checkpoints" / "latest.json").unlink()
    (run / "checkpoints" / "step_0000011.safetensors").symlink_to(kept)
    assert ckpt.latest_checkpoint(run).name == "step_0000011.safetensors"


# ---------------------------------------------------------------------------------------------------------------
# 14. A resume refused because the model changed names the tensor and both shapes


def test_a_resume_refused_for_a_changed_model_names_the_tensor_and_both_shapes(run, capsys):
    err = one_line_error(capsys, ["train", "--out", str(run), "--resume", "--set", "train.steps=15",
                                  "--set", "model.g_hidden=[64]"])
    assert "generator weights does not match the model" in err
    assert "net.0.weight is [32, 8] in the checkpoint but [64, 8] in the model" in err
    assert re.search(r"\(and [2-9] more tensors differ in shape\)\n$", err)
    err = one_line_error(capsys, ["train", "--out", str(run), "--resume", "--set", "train.steps=15",
                                  "--set", "model.g_hidden=[32, 32]"])
    assert "net.3.weight is [64, 32] in the checkpoint but [32, 32] in the model" in err
    assert "missing from the checkpoint: net.5.weight, net.5.bias, net.5.running_mean and 4 more" in err
    assert steps_logged(run) == [5, 10] and latest_named(run) == "step_0000010.safetensors"
