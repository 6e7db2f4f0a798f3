"""Checkpoints as tensors plus JSON: one safetensors file per checkpoint, nothing pickled.

Every tensor (model weights and buffers, optimizer moments, RNG and sampler states) is stored under a dotted key;
everything else (the resolved config, the step, optimizer hyper-parameters, the data shape) is one JSON document in
the file's metadata. Loading never runs code from the file. A file is written to a temporary name, flushed,
fsynced and renamed, so a crash leaves either the old checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as serialize
from torch import nn

from ..errors import GankitError

FORMAT = "gankit-checkpoint/1"
TMP_SUFFIX = ".tmp"
# the files gankit writes in RUN/checkpoints/, and nothing else: pruning and cleaning never touch a user's file
STEP_FILE = re.compile(r"step_(\d{7,})\.safetensors")
# temporaries a killed writer leaves: gankit's own (NAME.tmp), and the hidden .tmpXXXXXX of safetensors' save_file,
# through which earlier versions of gankit wrote
STALE_FILE = re.compile(r"(?:(?:step_\d{7,}|best)\.safetensors|(?:latest|best)\.json)\.tmp|\.tmp[A-Za-z0-9]{6}")


def step_of(name: str) -> int | None:
    """The step of a checkpoint file name gankit writes (``step_0001000.safetensors`` -> 1000), else None: a name
    gankit would not write (``step_10.safetensors``, ``step_0000010_keep-me.safetensors``) is not a checkpoint."""
    match = STEP_FILE.fullmatch(name)
    if match is None or name != step_file(int(match.group(1))):
        return None
    return int(match.group(1))


def step_file(step: int) -> str:
    """The file name of the checkpoint of ``step`` (seven digits or more)."""
    return f"step_{step:07d}.safetensors"


def step_checkpoints(folder: str | Path) -> list[tuple[int, Path]]:
    """The step checkpoints in ``folder`` as (step, path), oldest first, ordered by the step in the name (not as
    text: step 10,000,000 comes after 9,999,999)."""
    found = [(step, p) for p in Path(folder).glob("step_*.safetensors") if (step := step_of(p.name)) is not None]
    return sorted(found)


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Atomically write ``tensors`` and the JSON-able ``meta`` to ``path``. A failed write (a full disk, say)
    removes its temporary file and leaves every earlier checkpoint as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    try:
        # serialised in memory and written through a temporary that gankit names: safetensors' save_file writes
        # through a hidden temporary of its own, which a kill leaves behind and cleaning could not recognise
        _write_new(tmp, serialize(cpu, metadata={"format": FORMAT, "gankit": json.dumps(meta)}))
        _fsync_and_rename(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        why = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        raise GankitError(f"could not write checkpoint {path}: {why}; the earlier checkpoints in {path.parent} are "
                          "intact. Free space (or fix the folder) and continue with --resume") from None
    return path


def _write_new(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (replacing a stale temporary of the same name)."""
    with open(path, "wb") as fh:
        fh.write(data)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporaries a killed writer left behind (only names gankit or safetensors write); returns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = sorted(p for p in folder.iterdir() if STALE_FILE.fullmatch(p.name) and p.is_file() and not p.is_symlink())
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def _fsync_and_rename(tmp: Path, path: Path) -> None:
    with open(tmp, "rb+") as fh:
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def checkpoints_newest_first(run_dir: str | Path) -> list[Path]:
    """The run's step checkpoints, the one ``latest.json`` names first, then by descending step."""
    folder = Path(run_dir) / "checkpoints"
    files = [p for _, p in reversed(step_checkpoints(folder))]
    pointer = folder / "latest.json"
    if pointer.is_file():
        try:
            name = json.loads(pointer.read_text()).get("file", "")
        except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
            name = ""
        # only a plain checkpoint name inside the folder counts: latest.json cannot point elsewhere
        if step_of(str(name)) is not None and (folder / name).is_file():
            files = [folder / name] + [p for p in files if p.name != name]
    return files


def latest_checkpoint(run_dir: str | Path) -> Path:
    """The newest checkpoint of a run: the one ``latest.json`` names, else the highest step on disk."""
    files = checkpoints_newest_first(run_dir)
    if not files:
        folder = Path(run_dir) / "checkpoints"
        raise GankitError(f"no checkpoint in {folder}: train the run first (gankit train ... --out {run_dir})")
    return files[0]


def read_newest(run_dir: str | Path, warn) -> tuple[dict[str, torch.Tensor], dict]:
    """The newest readable checkpoint of a run, on the CPU: an unreadable newer one is skipped, and ``warn`` told."""
    for path in checkpoints_newest_first(run_dir):
        try:
            return load_checkpoint(path, "cpu")
        except GankitError as exc:
            warn(f"warning: skipping an unreadable checkpoint: {exc}")
    raise GankitError(f"no readable checkpoint in {Path(run_dir) / 'checkpoints'}")


def write_step(folder: Path, step: int, tensors: dict[str, torch.Tensor], meta: dict, keep: int) -> Path:
    """The checkpoint of ``step``, then ``latest.json`` pointing at it, then pruning to the ``keep`` newest."""
    path = save_checkpoint(folder / step_file(step), tensors, meta)
    write_json(folder / "latest.json", {"step": step, "file": path.name})
    prune(folder, keep)
    return path


def write_best(folder: Path, tensors: dict[str, torch.Tensor], meta: dict, best: dict) -> Path:
    """``best.safetensors`` and ``best.json`` describing it (its step and score)."""
    path = save_checkpoint(folder / "best.safetensors", tensors, meta)
    write_json(folder / "best.json", {**best, "file": path.name})
    return path


def write_json(path: Path, obj: dict) -> None:
    """Write ``obj`` as JSON through a temporary file and a rename: a reader sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


def prune(folder: str | Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest step checkpoints (by step, exact names only); returns the deleted."""
    old = [p for _, p in step_checkpoints(folder)][:-keep] if keep > 0 else []
    for path in old:
        path.unlink(missing_ok=True)
    return old


def rng_states(noise: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
    """The trainer's noise generator and torch's global generators (CPU; every CUDA device for a CUDA run)."""
    states = {"rng.noise": noise.get_state(), "rng.torch": torch.get_rng_state()}
    if device.type == "cuda":
        states.update({f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    return states


def set_rng_states(noise: torch.Generator, tensors: dict[str, torch.Tensor], device: torch.device) -> None:
    """Restore what :func:`rng_states` saved."""
    noise.set_state(tensors["rng.noise"].cpu())
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors["rng.torch"].cpu())
    cuda = [tensors[k].cpu() for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda and device.type == "cuda" and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def capture(modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer], recipe, sampler,
            noise: torch.Generator, device: torch.device) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors of a training state (weights, optimizer moments, the recipe's tensors, the sampler's position,
    every RNG) and the JSON the optimizers and the recipe add: (tensors, {"optim": ..., "recipe": ...})."""
    tensors, optim_meta = {}, {}
    for name, module in modules.items():
        tensors.update(pack(f"model.{name}", module.state_dict()))
    for name, opt in optimizers.items():
        t, optim_meta[name] = optimizer_state(opt)
        tensors.update(pack(f"optim.{name}", t))
    tensors.update(pack("sampler", sampler.state_dict()))
    tensors.update(pack("recipe", recipe.tensor_state()))
    tensors.update(rng_states(noise, device))
    return tensors, {"optim": optim_meta, "recipe": recipe.state_dict()}


def restore(tensors: dict[str, torch.Tensor], meta: dict, modules: dict[str, nn.Module],
            optimizers: dict[str, torch.optim.Optimizer], recipe, sampler, noise: torch.Generator,
            device: torch.device) -> None:
    """Put back what :func:`capture` took (tensors on the CPU: ``load_state_dict`` moves them where they belong)."""
    for name, module in modules.items():
        load_module_state(module, unpack(f"model.{name}", tensors), f"{name} weights")
    for name, opt in optimizers.items():
        load_optimizer_state(opt, unpack(f"optim.{name}", tensors), meta["optim"][name])
    recipe.load_state_dict(meta.get("recipe", {}))
    recipe.load_tensor_state(unpack("recipe", tensors), device)
    sampler.load_state_dict(unpack("sampler", tensors))
    set_rng_states(noise, tensors, device)


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """Read a checkpoint written by :func:`save_checkpoint`: (tensors, meta)."""
    path = Path(path)
    if not path.is_file():
        raise GankitError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as fh:
            header = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        _refuse_pickles(path)
        raise GankitError(f"cannot read checkpoint {path}: {exc}") from None
    if header.get("format") != FORMAT:
        raise GankitError(f"{path} is not a gankit checkpoint (format {header.get('format')!r})")
    return tensors, json.loads(header["gankit"])


def _refuse_pickles(path: Path) -> None:
    """Explain a file that safetensors could not read and that looks like a pickle (``torch.save``'s zip archive
    or a raw pickle stream); nothing in it is ever unpickled."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        raise GankitError(f"{path} is a pickle (as torch.save writes), not a gankit checkpoint; gankit never "
                          "unpickles, since loading a pickle can run any code. Load it in a trusted session and "
                          "save its tensors with safetensors instead")


# ----------------------------------------------------------------------------------------------------------------
# Flattening module and optimizer states to dotted tensor keys + JSON


def pack(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Prefix every key: {'w': t} -> {'prefix.w': t}."""
    return {f"{prefix}.{k}": v for k, v in tensors.items()}


def unpack(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`pack` for one prefix."""
    start = prefix + "."
    return {k[len(start):]: v for k, v in tensors.items() if k.startswith(start)}


def optimizer_state(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer's state as (tensors keyed 'param_index.name', JSON for hyper-parameters and non-tensors)."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for name, value in state.items():
            if torch.is_tensor(value):
                tensors[f"{idx}.{name}"] = value
            else:
                scalars[f"{idx}.{name}"] = value
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def load_optimizer_state(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Restore what :func:`optimizer_state` produced."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in list(tensors.items()) + list(meta["scalars"].items()):
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in meta["param_groups"]]
    opt.load_state_dict({"state": state, "param_groups": groups})


def load_module_state(module: nn.Module, tensors: dict[str, torch.Tensor], what: str) -> None:
    """Load a module's weights strictly; a mismatch is a clear error rather than a silent partial load."""
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise GankitError(f"the checkpoint's {what} does not match the model built from its config: {first}") from None
