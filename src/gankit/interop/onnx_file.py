"""ONNX files of a family's verb (:class:`gankit.nn.graph.Graph`), written with PyTorch's exporter.

The graph is traced by ``torch.export`` (``torch.onnx.export(..., dynamo=True)``, which needs onnxscript) at opset
:data:`OPSET`, with a dynamic batch axis on every input that has one; inputs and the output keep the names the family
gave them, and the file's metadata records what each holds, the options, the opset and where the model came from
(``gankit.*`` keys). The file is then run with onnxruntime on the example inputs, where it is installed, and
refused when it differs from PyTorch by more than :data:`TOLERANCE`.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
import warnings
from pathlib import Path

import torch

from ..errors import GankitError
from ..nn.graph import Graph

OPSET = 18  # ONNX opset 18 (2022): onnxruntime >= 1.14 and most other runtimes read it
TOLERANCE = 1e-4  # largest absolute difference allowed between onnxruntime and PyTorch on the example inputs


def write_onnx(graph: Graph, path: Path, meta: dict[str, str]) -> float | None:
    """Export ``graph`` to ``path`` (through a temporary file and a rename) with ``meta`` in the file's metadata;
    returns the largest difference onnxruntime showed against PyTorch on the example inputs (None: onnxruntime is
    not installed, so the file was not run)."""
    program = _trace(graph)
    model = program.model
    model.producer_name = "gankit"
    model.graph.doc_string = "; ".join(f"{k}: {v}" for k, v in graph.docs.items())
    for value in [*model.graph.inputs, *model.graph.outputs]:
        value.doc_string = graph.docs.get(value.name, "")
    props = {**meta, "gankit.opset": str(OPSET), "gankit.inputs": json.dumps({k: graph.docs[k] for k in graph.inputs}),
             "gankit.output": json.dumps({graph.output: graph.docs[graph.output]}),
             "gankit.options": json.dumps(graph.options)}
    model.metadata_props.update(props)
    tmp = path.with_name(path.name + ".tmp")
    try:
        program.save(tmp, external_data=False)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise GankitError(f"cannot write {path}: {exc.strerror or exc}") from None
    return check_file(path, graph)


def _trace(graph: Graph):
    """torch.onnx's program for ``graph``, its chatter (progress lines, warnings about absent torchvision ops)
    kept off the terminal unless the export fails."""
    try:
        import onnxscript  # noqa: F401  (torch.onnx's exporter is built on it)
    except ImportError:
        raise GankitError("ONNX export needs onnx and onnxscript: pip install 'gankit[export]'") from None
    batch = torch.export.Dim("batch")
    shapes = tuple(None if name in graph.fixed else {0: batch} for name in graph.inputs)
    chatter = io.StringIO()
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "torch.__trace",
                                              "onnxscript")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(chatter), torch.no_grad():
            warnings.simplefilter("ignore")
            return torch.onnx.export(graph.module, tuple(graph.inputs.values()), None, dynamo=True, verbose=False,
                                     input_names=list(graph.inputs), output_names=[graph.output],
                                     opset_version=OPSET, dynamic_shapes=(shapes,), optimize=True)
    except Exception:
        print(chatter.getvalue(), end="", file=sys.stderr)
        raise
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def check_file(path: Path, graph: Graph) -> float | None:
    """Run the file with onnxruntime on the graph's example inputs and compare with PyTorch: the largest absolute
    difference, or None without onnxruntime; a file that differs by more than :data:`TOLERANCE` is refused (and
    removed)."""
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {name: t.detach().cpu().numpy() for name, t in graph.inputs.items()}
    got = torch.from_numpy(session.run([graph.output], feeds)[0])
    with torch.no_grad():
        want = graph.module(*graph.inputs.values()).detach().cpu()
    diff = float((got - want).abs().max()) if got.shape == want.shape else float("inf")
    if not diff <= TOLERANCE:
        path.unlink(missing_ok=True)
        raise GankitError(f"the exported graph differs from PyTorch by {diff:.3g} on its example inputs (more than "
                          f"{TOLERANCE:g}); nothing was written. Please report this with the run's config")
    return diff
