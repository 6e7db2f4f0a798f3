"""A model folder in the Hugging Face Hub's layout: what ``gankit export --format hub`` writes and
:func:`gankit.load` reads back.

* ``config.json``: the resolved gankit config, the data's record (shape, classes, source), the training step, the
  modules kept and the gankit version (``"format": "gankit-model/1"``): a run is rebuilt from it alone.
* ``model.safetensors``: the weights a loaded run uses (the EMA copy where the run kept one, under its module's
  name), keyed ``MODULE.PARAM``, with each tensor's SHA-256 in the file's metadata.
* ``README.md``: the model card (:mod:`gankit.interop.card`); ``samples.png``: the grid it shows.

Reading goes through the checkpoint's readers: ``config.json`` is read only from a regular file within a byte
limit and checked as a checkpoint's metadata is, ``model.safetensors`` has its header's sizes checked against the
file and gankit's memory limit before any tensor is read, then its checksums; nothing is unpickled, and no code in
the folder runs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save as serialize

from ..data.limits import check_claim, open_regular
from ..errors import GankitError
from ..files import save_samples
from ..train.checkpoint import check_meta, load_weights, tensor_sha256
from ..version import __version__

FORMAT = "gankit-model/1"
CONFIG, WEIGHTS, CARD, GRID = "config.json", "model.safetensors", "README.md", "samples.png"
FILES = (CONFIG, WEIGHTS, CARD, GRID)
MAX_CONFIG_BYTES = 16 << 20  # a config.json holds a few kilobytes; anything near this is not one


@dataclass
class ModelFiles:
    """What a model folder holds, ready to write: the weights (``MODULE.PARAM`` -> tensor), config.json's
    content, the model card's text, and the samples the card shows (images to draw, a grid file to copy, or
    None)."""

    tensors: dict[str, torch.Tensor]
    config: dict
    card: str
    grid: torch.Tensor | Path | None = None


def is_model_folder(path: Path) -> bool:
    """True when ``path`` is a folder holding a config.json beside a model.safetensors (a run directory never
    does)."""
    return path.is_dir() and (path / CONFIG).is_file() and (path / WEIGHTS).is_file()


def model_files(modules: dict[str, torch.nn.Module], config: dict, data: dict, step: int, source: dict,
                card: str, grid: torch.Tensor | Path | None) -> ModelFiles:
    """The folder's content for ``modules`` (already the ones a loaded run uses, on any device) of a run at
    ``step``; ``source`` says where they came from (the run's name, the checkpoint's file, whether EMA weights)."""
    tensors = {f"{name}.{k}": v.detach().cpu().contiguous() for name, module in modules.items()
               for k, v in module.state_dict().items()}
    doc = {"format": FORMAT, "library_name": "gankit", "gankit_version": __version__, "step": step,
           "modules": sorted(modules), "config": config, "data": data, "source": source}
    return ModelFiles(tensors, doc, card, grid)


def weights_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    """model.safetensors' bytes: the tensors, ``format: pt`` (as PyTorch weights on the Hub are marked) and the
    checksums that :func:`read_model_folder` verifies."""
    sums = {"tensors": {k: tensor_sha256(k, v) for k, v in tensors.items()}}
    return serialize(tensors, metadata={"format": "pt", "sha256": json.dumps(sums)})


def check_target(folder: Path) -> Path:
    """``folder`` checked before anything is computed: a new or empty folder, or an earlier model folder (whose
    files are replaced); a file, or a folder holding anything else, is refused in one line."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise GankitError(f"-o {folder} is a file: a model folder is written to a new or empty folder")
    for parent in folder.parents:
        if parent.exists() and not parent.is_dir():
            raise GankitError(f"-o {folder}: {parent} is a file, not a folder")
    if folder.is_dir() and not is_model_folder(folder):
        other = sorted(p.name for p in folder.iterdir())
        if other:
            shown = ", ".join(other[:3]) + (", ..." if len(other) > 3 else "")
            raise GankitError(f"-o {folder} holds other files ({shown}): name a new or empty folder (an earlier model "
                              "folder is replaced)")
    return folder


def read_config(folder: Path) -> dict:
    """config.json of a model folder, read within :data:`MAX_CONFIG_BYTES` and checked as a checkpoint's
    metadata is (its step, config, data record and modules)."""
    path = folder / CONFIG
    try:
        with open_regular(path) as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > MAX_CONFIG_BYTES:
                raise GankitError(f"cannot read {path}: {size:,} bytes, more than a model folder's config.json "
                                  f"holds ({MAX_CONFIG_BYTES:,} at most)")
            check_claim(path, size, "its size")
            text = fh.read()
    except OSError as exc:
        raise GankitError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise GankitError(f"cannot read {path}: not valid JSON ({' '.join(str(exc).split())})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        shown = doc.get("format") if isinstance(doc, dict) else None
        raise GankitError(f"{folder} is not a gankit model folder: its {CONFIG} has format {shown!r}, not "
                          f"{FORMAT!r} (gankit reads the folders `gankit export --format hub` writes)")
    check_meta(path, doc, "model folder file")
    modules = doc.get("modules")
    if not (isinstance(modules, list) and modules and all(isinstance(m, str) and m.isidentifier() for m in modules)):
        raise GankitError(f"cannot read {path}: its 'modules' is not a list of module names")
    return doc


def read_model_folder(folder: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors keyed ``model.MODULE.PARAM`` as a checkpoint's, metadata with ``config``, ``data``, ``step`` and
    ``modules``) of a model folder, every byte read through the checks above."""
    doc = read_config(folder)
    tensors = load_weights(folder / WEIGHTS, "model weights")
    stray = sorted(k for k in tensors if k.split(".", 1)[0] not in doc["modules"])
    if stray:
        raise GankitError(f"cannot read {folder / WEIGHTS}: tensor {stray[0]} belongs to none of the modules its "
                          f"{CONFIG} names ({', '.join(doc['modules'])})")
    return {f"model.{k}": v for k, v in tensors.items()}, doc


def write_files(files: ModelFiles, folder: Path) -> list[Path]:
    """Write the folder's four files (each through a temporary and a rename: a reader sees the old file or the
    new one), replacing an earlier export's; the samples grid is drawn or copied. Returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = [_replace(folder / CONFIG, (json.dumps(files.config, indent=2) + "\n").encode()),
               _replace(folder / WEIGHTS, weights_bytes(files.tensors)),
               _replace(folder / CARD, files.card.encode())]
    grid = folder / GRID
    grid.unlink(missing_ok=True)
    if isinstance(files.grid, Path):
        written.append(_replace(grid, files.grid.read_bytes()))
    elif files.grid is not None:
        written.append(save_samples(files.grid, grid, nrow=8))
    return written


def _replace(path: Path, data: bytes) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise GankitError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
