"""Checkpoints as tensors plus JSON: one safetensors file per checkpoint, nothing pickled.

Every tensor (model weights and buffers, optimizer moments, RNG and sampler states) is stored under a dotted key;
everything else (the resolved config, the step, optimizer hyper-parameters, the data shape) is one JSON document in
the file's metadata. Loading never runs code from the file. A file is written to a temporary name, flushed,
fsynced and renamed, so a crash leaves either the old checkpoint or the new one, never half of one; ``latest.json``
is written after it, and a step whose ``latest.json`` could not be written is removed again (a full disk).

Nothing in a file is trusted for what it claims. Its header's sizes are checked against the file's own size and
against the memory limit of :mod:`gankit.data.limits` before a tensor is read; each tensor's SHA-256 (over its name,
dtype, shape and bytes) and the metadata's are recorded when it is written and checked when it is read; the step,
the sample shape and the class count are checked before anything is built from them. A file that fails is refused
with one line (:class:`CorruptCheckpoint`), and ``--resume`` falls back to the checkpoint before it. Files written
before checksums existed load without that check. A checkpoint must lie inside its run directory: a link that
leaves it is neither loaded nor pruned.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as serialize
from torch import nn

from ..data.limits import check_claim, foreign_kind, open_regular
from ..errors import GankitError
from .log import RESUME_ADVICE, replace_text, say, write_failed

FORMAT = "gankit-checkpoint/1"
TMP_SUFFIX = ".tmp"
# the files gankit writes in RUN/checkpoints/, and nothing else: pruning and cleaning never touch a user's file
STEP_FILE = re.compile(r"step_(\d{7,})\.safetensors")
# temporaries a killed writer leaves: gankit's own (NAME.tmp), and the hidden .tmpXXXXXX of safetensors' save_file,
# through which earlier versions of gankit wrote
STALE_FILE = re.compile(r"(?:(?:step_\d{7,}|best)\.safetensors|(?:latest|best)\.json)\.tmp|\.tmp[A-Za-z0-9]{6}")
MAX_HEADER = 100 << 20  # bytes of a safetensors header (safetensors' own limit)
MAX_SAMPLE_VALUES = 1 << 26  # values in one sample (a 4096 x 4096 image with 4 channels): models are built from it
MAX_SAMPLE_DIMS = 4
MAX_CLASSES = 100_000  # classes of a conditional model (ImageNet-21k has 21,841): embeddings are built from it


class CorruptCheckpoint(GankitError):
    """A checkpoint whose bytes or metadata fail a check: truncated, altered, or claiming what it cannot hold."""


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
    """The step checkpoints in ``folder`` (a run's ``checkpoints/``) as (step, path), oldest first, ordered by the
    step in the name (not as text: step 10,000,000 comes after 9,999,999). A link that leaves the run directory
    (``folder``'s parent) is not one of them."""
    folder = Path(folder)
    found = [(step, p) for p in folder.glob("step_*.safetensors") if (step := step_of(p.name)) is not None]
    return sorted((step, p) for step, p in found if inside_run(p, folder.parent))


def inside_run(path: Path, run_dir: Path) -> bool:
    """True when ``path``, all links followed, is a file inside ``run_dir``."""
    try:
        return path.is_file() and path.resolve().is_relative_to(Path(run_dir).resolve())
    except (OSError, RuntimeError):  # a loop of links
        return False


def links_out_of_run(folder: Path) -> list[Path]:
    """The checkpoint names in ``folder`` that are links leaving the run directory (refused, for messages)."""
    return sorted(p for p in folder.glob("step_*.safetensors")
                  if step_of(p.name) is not None and p.is_symlink() and not inside_run(p, folder.parent))


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Atomically write ``tensors`` and the JSON-able ``meta`` to ``path``, with the checksums that
    :func:`load_checkpoint` verifies. A failed write (a full disk, say) removes its temporary file and leaves every
    earlier checkpoint as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    text = json.dumps(meta)
    sums = {"gankit": _text_sha256(text), "tensors": {k: tensor_sha256(k, v) for k, v in cpu.items()}}
    try:
        # serialised in memory and written through a temporary that gankit names: safetensors' save_file writes
        # through a hidden temporary of its own, which a kill leaves behind and cleaning could not recognise
        _write_new(tmp, serialize(cpu, metadata={"format": FORMAT, "gankit": text, "sha256": json.dumps(sums)}))
        _fsync_and_rename(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_failed(path, exc, f"the earlier checkpoints in {path.parent} are intact: {RESUME_ADVICE}") from None
    return path


def tensor_sha256(key: str, tensor: torch.Tensor) -> str:
    """SHA-256 of a tensor's name, dtype, shape and bytes (so a renamed, retyped or reshaped tensor fails too)."""
    t = tensor.detach().cpu().contiguous()
    digest = hashlib.sha256(f"|{key}|{t.dtype}|{tuple(t.shape)}|".encode())
    digest.update(t.reshape(-1).view(torch.uint8).numpy())  # the bytes in place: no copy
    return digest.hexdigest()


def _text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


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


def checkpoints_newest_first(run_dir: str | Path, warn: Callable[[str], None] | None = None) -> list[Path]:
    """The run's step checkpoints, the one ``latest.json`` names first, then by descending step; ``warn`` is told
    of links that leave the run directory (never loaded)."""
    folder = Path(run_dir) / "checkpoints"
    files = [p for _, p in reversed(step_checkpoints(folder))]
    if warn is not None:
        for link in links_out_of_run(folder):
            warn(f"warning: ignoring {link}: a link to {os.path.realpath(link)}, outside the run directory")
    pointer = folder / "latest.json"
    if pointer.is_file():
        try:
            name = json.loads(pointer.read_text()).get("file", "")
        except (ValueError, AttributeError, OSError):
            name = ""
        # only a plain checkpoint name inside the folder counts: latest.json cannot point elsewhere
        if step_of(str(name)) is not None and (folder / name) in files:
            files = [folder / name] + [p for p in files if p.name != name]
    return files


def latest_checkpoint(run_dir: str | Path, warn: Callable[[str], None] | None = say) -> Path:
    """The newest checkpoint of a run: the one ``latest.json`` names, else the highest step on disk."""
    files = checkpoints_newest_first(run_dir, warn)
    if not files:
        folder = Path(run_dir) / "checkpoints"
        links = links_out_of_run(folder)
        shown = f" (ignored {', '.join(p.name for p in links)}: a link outside the run directory)" if links else ""
        raise GankitError(f"no checkpoint in {folder}{shown}: train the run first (gankit train ... --out {run_dir})")
    return files[0]


def read_newest(run_dir: str | Path, warn) -> tuple[dict[str, torch.Tensor], dict]:
    """The newest readable checkpoint of a run, on the CPU: an unreadable newer one is skipped, and ``warn`` told."""
    for path in checkpoints_newest_first(run_dir, warn):
        try:
            return load_checkpoint(path, "cpu")
        except GankitError as exc:
            warn(f"warning: skipping an unreadable checkpoint: {exc}")
    raise GankitError(f"no readable checkpoint in {Path(run_dir) / 'checkpoints'}")


def write_step(folder: Path, step: int, tensors: dict[str, torch.Tensor], meta: dict, keep: int) -> Path:
    """The checkpoint of ``step``, then ``latest.json`` pointing at it, then pruning to the ``keep`` newest. When
    ``latest.json`` cannot be written the new checkpoint is removed again: ``latest.json`` keeps naming the newest
    checkpoint there is."""
    path = save_checkpoint(folder / step_file(step), tensors, meta)
    try:
        write_json(folder / "latest.json", {"step": step, "file": path.name})
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise write_failed(folder / "latest.json", exc, f"the new checkpoint of step {step} was removed again and "
                           f"the earlier ones in {folder} are intact: {RESUME_ADVICE}") from None
    prune(folder, keep)
    return path


def write_best(folder: Path, tensors: dict[str, torch.Tensor], meta: dict, best: dict) -> Path:
    """``best.safetensors`` and ``best.json`` describing it (its step and score). When ``best.json`` cannot be
    written it is removed, rather than left describing the checkpoint before (whose metadata names its step)."""
    path = save_checkpoint(folder / "best.safetensors", tensors, meta)
    try:
        write_json(folder / "best.json", {**best, "file": path.name})
    except OSError as exc:
        (folder / "best.json").unlink(missing_ok=True)
        raise write_failed(folder / "best.json", exc, f"{path.name} holds the best weights so far (its metadata names "
                           f"their step), and the step checkpoints in {folder} are intact: {RESUME_ADVICE}") from None
    return path


def write_json(path: Path, obj: dict) -> None:
    """Write ``obj`` as JSON through a temporary file and a rename: a reader sees the old file or the new one; a
    failed write raises ``OSError`` and leaves no temporary."""
    replace_text(path, json.dumps(obj))


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
        state = meta.get("optim", {}).get(name)
        if not isinstance(state, dict):
            raise GankitError(f"the checkpoint holds no state of the {name} optimizer: it cannot be resumed")
        load_optimizer_state(opt, unpack(f"optim.{name}", tensors), state)
    recipe.load_state_dict(meta.get("recipe", {}))
    recipe.load_tensor_state(unpack("recipe", tensors), device)
    sampler.load_state_dict(unpack("sampler", tensors))
    set_rng_states(noise, tensors, device)


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """Read a checkpoint written by :func:`save_checkpoint`: (tensors, meta). The header's sizes are checked before
    any tensor is read, the checksums (when the file has them) and the metadata after; a file that fails any check
    is refused with one line."""
    path = Path(path)
    header = _checked_header(path)
    tensors = _read_tensors(path, "checkpoint")
    _verify(path, header, tensors)
    meta = _checked_meta(path, header["gankit"])
    if torch.device(device).type != "cpu":
        tensors = {k: v.to(device) for k, v in tensors.items()}
    return tensors, meta


def load_weights(path: str | Path, what: str = "weights file") -> dict[str, torch.Tensor]:
    """Read a safetensors file of weights alone (a model folder's ``model.safetensors``: tensors, and their
    checksums in its metadata where they were recorded) through the same checks as a checkpoint: the header's sizes
    against the file and the memory limit before any tensor is read, then the checksums. ``what`` names the file
    in messages."""
    path = Path(path)
    meta = _read_header(path, what).get("__metadata__")
    tensors = _read_tensors(path, what)
    _verify(path, meta if isinstance(meta, dict) else {}, tensors, what)
    return tensors


def _read_tensors(path: Path, what: str) -> dict[str, torch.Tensor]:
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:  # copies: the file may change once read
            return {k: fh.get_tensor(k).clone() for k in fh.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CorruptCheckpoint(f"cannot read {what} {path}: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _corrupt(path: Path, why: str, what: str = "checkpoint") -> CorruptCheckpoint:
    tail = " (an earlier checkpoint of its run may be intact)" if what == "checkpoint" else ""
    return CorruptCheckpoint(f"cannot read {what} {path}: {why}; the file is damaged or altered{tail}")


def _checked_header(path: Path) -> dict[str, str]:
    """The gankit metadata of the safetensors header at ``path``, once the sizes the header declares have been
    checked against the file's size and the memory limit (nothing is allocated for a tensor before)."""
    meta = _read_header(path, "checkpoint").get("__metadata__")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        shown = meta.get("format") if isinstance(meta, dict) else None
        raise GankitError(f"{path} is not a gankit checkpoint (format {_shown(shown)})")
    if not isinstance(meta.get("gankit"), str):
        raise _corrupt(path, "its header holds no gankit metadata (config, step, data)")
    return meta


def _read_header(path: Path, what: str) -> dict:
    """The safetensors header at ``path``, once the sizes it declares have been checked against the file's size
    and the memory limit."""
    try:
        with open_regular(path) as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(8)
            claimed = int.from_bytes(head, "little") if len(head) == 8 else -1
            if not 0 < claimed <= min(size - 8, MAX_HEADER):
                _refuse_pickles(path, head)
                raise _corrupt(path, f"it is {size:,} bytes long and its first 8 bytes give a header of "
                               f"{max(claimed, 0):,} bytes (truncated, or not a safetensors file)", what)
            text = fh.read(claimed)
    except FileNotFoundError:
        raise GankitError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise GankitError(f"cannot read {what} {path}: {exc.strerror or _one_line(exc)}") from None
    try:
        header = json.loads(text)
    except (ValueError, RecursionError) as exc:
        _refuse_pickles(path, head)
        raise _corrupt(path, f"its header is not valid JSON ({_one_line(exc)})", what) from None
    if not isinstance(header, dict):
        raise _corrupt(path, "its header is not a JSON object", what)
    _check_sizes(path, header, size - 8 - claimed, what)
    return header


def _check_sizes(path: Path, header: dict, data_bytes: int, what: str) -> None:
    """Every tensor's declared place within the ``data_bytes`` that follow the header, and their sum within the
    memory limit (a sparse file can be as large as it claims and still hold nothing)."""
    total = end = 0
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(n) is int for n in offsets)
                and 0 <= offsets[0] <= offsets[1]):
            raise _corrupt(path, f"its header gives tensor {_shown(key)} no valid place in the file", what)
        total, end = total + offsets[1] - offsets[0], max(end, offsets[1])
    if end > data_bytes:
        raise _corrupt(path, f"its header places tensors up to byte {end:,} of the {data_bytes:,} bytes that follow "
                       "it (truncated, or a claim the file cannot hold)", what)
    check_claim(path, total, "its header")


def _verify(path: Path, header: dict[str, str], tensors: dict[str, torch.Tensor], what: str = "checkpoint") -> None:
    """Check the checksums :func:`save_checkpoint` recorded (a file written before checksums existed has none; a
    weights file has no gankit metadata to check)."""
    if "sha256" not in header:
        return
    try:
        sums = json.loads(header["sha256"])
        meta_sum, tensor_sums = sums.get("gankit"), dict(sums["tensors"])
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        raise _corrupt(path, "its checksums are unreadable", what) from None
    if "gankit" in header and meta_sum != _text_sha256(header["gankit"]):
        raise _corrupt(path, "its metadata (config, step, data) fails its SHA-256 checksum", what)
    if set(tensor_sums) != set(tensors):
        odd = sorted(set(tensor_sums) ^ set(tensors))
        raise _corrupt(path, f"its tensors and their checksums differ ({', '.join(odd[:3])}"
                       + (", ..." if len(odd) > 3 else "") + ")", what)
    for key in sorted(tensors):
        if tensor_sums[key] != tensor_sha256(key, tensors[key]):
            raise _corrupt(path, f"tensor {key} fails its SHA-256 checksum", what)


def _checked_meta(path: Path, text: str) -> dict:
    """The metadata JSON, its step, config and data description checked before anything is built from them."""
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _corrupt(path, f"its metadata is not valid JSON ({_one_line(exc)})") from None
    return check_meta(path, meta)


def check_meta(path: Path, meta: Any, what: str = "checkpoint") -> dict:
    """A checkpoint's metadata (or a model folder's config.json, ``what`` naming it): its step, config and data
    description checked before anything is built from them."""
    if not isinstance(meta, dict):
        raise _corrupt(path, "its metadata is not a JSON object", what)
    step = meta.get("step")
    if type(step) is not int or step < 0:
        raise _corrupt(path, f"its step {_shown(step)} is not a number of steps (an integer >= 0)", what)
    for key, kinds in (("config", dict), ("data", dict), ("optim", dict), ("recipe", dict), ("health", dict),
                       ("best", (dict, type(None)))):
        if key in ("config", "data") and key not in meta:
            raise _corrupt(path, f"its metadata has no {key!r}", what)
        if key in meta and not isinstance(meta[key], kinds):
            raise _corrupt(path, f"its {key!r} is {type(meta[key]).__name__}, not a mapping", what)
    _check_data(path, meta["data"], what)
    return meta


def _check_data(path: Path, data: dict, what: str) -> None:
    """The sample shape and class count that models are built from, within sizes a model can have."""
    shape = data.get("sample_shape")
    if not (isinstance(shape, list) and 1 <= len(shape) <= MAX_SAMPLE_DIMS
            and all(type(n) is int and n >= 1 for n in shape)):
        raise _corrupt(path, f"its sample shape {_shown(shape)} is not a list of 1 to {MAX_SAMPLE_DIMS} positive "
                       "integers", what)
    if math.prod(shape) > MAX_SAMPLE_VALUES:
        raise _corrupt(path, f"its sample shape {shape} holds {math.prod(shape):,} values, more than any model "
                       f"gankit builds ({MAX_SAMPLE_VALUES:,})", what)
    classes = data.get("num_classes", 0)
    if classes is not None and not (type(classes) is int and 0 <= classes <= MAX_CLASSES):
        raise _corrupt(path, f"its class count {_shown(classes)} is not an integer in 0..{MAX_CLASSES:,}", what)
    prior = data.get("label_prior")
    if prior is not None and not (isinstance(prior, list) and classes and len(prior) == classes
                                  and all(isinstance(p, (int, float)) and not isinstance(p, bool) and 0 <= p <= 1
                                          for p in prior) and abs(sum(prior) - 1) < 1e-3):
        raise _corrupt(path, f"its label prior {_shown(prior)} does not hold {classes or 0} shares in [0, 1] that "
                       "sum to 1 (one per class)", what)


def _shown(value: Any, width: int = 60) -> str:
    """``repr(value)`` cut to ``width`` characters: a message stays one short line whatever a file holds."""
    text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def _refuse_pickles(path: Path, head: bytes) -> None:
    """Explain a file whose first bytes (``head``) are no safetensors header but look like a pickle
    (``torch.save``'s zip archive or a raw pickle stream; nothing in it is ever unpickled) or like text (a run's
    config.yaml or metrics.jsonl given where a checkpoint belongs)."""
    kind = foreign_kind(head)
    if kind == "pickle":
        raise GankitError(f"{path} is a pickle (as torch.save writes), not a gankit checkpoint; gankit never "
                          "unpickles, since loading a pickle can run any code. Load it in a trusted session and "
                          "save its tensors with safetensors instead")
    if kind == "text":
        run = f" (its run directory: {path.parent})" if (path.parent / "checkpoints").is_dir() else ""
        raise GankitError(f"{path} is a text file, not a trained model: expected a run directory or a .safetensors "
                          f"checkpoint{run}")


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
    """Load a module's weights strictly; a mismatch is one line naming the first tensor whose shape differs (with
    both shapes) and the missing and unexpected keys, checked before anything is copied: no partial load."""
    mismatch = state_mismatch(module.state_dict(), tensors)
    if mismatch:
        raise GankitError(f"the checkpoint's {what} does not match the model built from the config: {mismatch}")
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise GankitError(f"the checkpoint's {what} does not match the model built from the config: "
                          f"{_one_line(exc)}") from None


def state_mismatch(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> str:
    """How ``found`` (a checkpoint's tensors) differs from ``expected`` (a model's state), in words; "" if not."""
    shapes = [f"{k} is {list(found[k].shape)} in the checkpoint but {list(v.shape)} in the model"
              for k, v in expected.items() if k in found and found[k].shape != v.shape]
    more = len(shapes) - 1
    parts = [shapes[0] + (f" (and {more} more {'tensor differs' if more == 1 else 'tensors differ'} in shape)"
                          if more else "")] if shapes else []
    for label, keys in (("missing from the checkpoint", [k for k in expected if k not in found]),
                        ("in the checkpoint but not in the model", [k for k in found if k not in expected])):
        if keys:
            parts.append(f"{label}: {', '.join(keys[:3])}" + (f" and {len(keys) - 3} more" if len(keys) > 3 else ""))
    return "; ".join(parts)
