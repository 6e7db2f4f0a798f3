"""Evaluators: small CNN classifiers trained by this project, whose features and class probabilities feed the
metrics in place of the Inception network (Szegedy et al. 2016) that FID, KID and the Inception Score were defined
with. An Inception network needs a download, sees 299x299 natural images and is the wrong feature space for 28x28
digits; a domain classifier trained here runs offline and is pinned by its hash.

The network (``EvaluatorNet``): five 3x3 convolutions with batch norm and ReLU (widths w, w, 2w, 2w, 4w, two 2x2
max-pools), global average pooling, a fully connected layer of ``feature_dim`` units with ReLU whose output is the
*feature vector*, and a linear classifier whose softmax gives the *class probabilities*. Global pooling makes it
work at any input size (8x8 digits, 28x28 MNIST, 32x32 and up for folders).

File format: one safetensors file; the metadata holds the spec (architecture, class names, training record) and
``sha256``, the evaluator's *content hash*: SHA-256 over the spec's canonical JSON and every tensor's name, dtype,
shape and bytes. It is recomputed on every load, so a corrupt file is refused, and the built-in evaluators are pinned
to theirs in ``BUILTIN``, so a replaced file is refused too. (A hash of the whole file would not do: safetensors
writes its metadata in no fixed order, so the same weights give different bytes from run to run.)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from ..data.limits import foreign_kind
from ..errors import GankitError

FORMAT = "gankit-evaluator/1"
WEIGHTS_DIR = Path(__file__).parent / "evaluators"
# content hashes of the committed evaluators, as printed by scripts/train_evaluators.sh
BUILTIN: dict[str, str] = {
    "mnist": "833c86524b2ea2af579521c2bbdbb6d2c964e6c8bce95887e7ea0fb9e93e46fb",
    "digits": "ee45545ed5d0a96934b93637e37dea5f668945ff6c700eeb68eaaada8bc9a80f",
    "mnist_colour": "fe96f1395103f52496f1bf4b254b3294098d901bce18e8f8616137a086c36f3e",  # B domain of mnist_colour
}


@dataclass
class EvaluatorSpec:
    """What is needed to rebuild an evaluator: its input, width and classes."""

    in_channels: int
    size: int  # the side length it was trained at; other sizes are resized to it before feature extraction
    classes: list[str]
    width: int = 32
    feature_dim: int = 128
    dataset: str = ""  # the data source it was trained on
    record: dict = field(default_factory=dict)  # how it was trained and how well it does (test accuracy)

    @property
    def num_classes(self) -> int:
        """Number of classes the classifier head predicts."""
        return len(self.classes)


def _conv(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class EvaluatorNet(nn.Module):
    """The CNN classifier; ``features`` is its penultimate layer, ``forward`` its logits."""

    def __init__(self, spec: EvaluatorSpec) -> None:
        super().__init__()
        w = spec.width
        self.body = nn.Sequential(
            *_conv(spec.in_channels, w), *_conv(w, w), nn.MaxPool2d(2),
            *_conv(w, 2 * w), *_conv(2 * w, 2 * w), nn.MaxPool2d(2),
            *_conv(2 * w, 4 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(4 * w, spec.feature_dim), nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(spec.feature_dim, spec.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) in [-1, 1] -> (B, feature_dim)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) in [-1, 1] -> (B, num_classes) logits."""
        return self.head(self.body(x))


class Evaluator:
    """A loaded, verified evaluator: batched features and class probabilities for images in [-1, 1]."""

    def __init__(self, net: EvaluatorNet, spec: EvaluatorSpec, name: str, sha256: str) -> None:
        self.net = net.eval()
        self.spec = spec
        self.name = name
        self.sha256 = sha256

    @property
    def device(self) -> torch.device:
        """Where the network's weights live."""
        return next(self.net.parameters()).device

    def to(self, device: torch.device | str) -> "Evaluator":
        """Move the network to ``device`` (in place); returns self."""
        self.net.to(device)
        return self

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Check channels and resize (antialiased bilinear) to the evaluator's own size."""
        if images.dim() != 4 or images.shape[1] != self.spec.in_channels:
            raise GankitError(f"evaluator {self.name!r} takes (N, {self.spec.in_channels}, H, W) images, got "
                              f"{tuple(images.shape)}")
        if images.shape[-1] != self.spec.size or images.shape[-2] != self.spec.size:
            images = F.interpolate(images, size=(self.spec.size, self.spec.size), mode="bilinear",
                                   antialias=True, align_corners=False)
        return images

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
        """Features (N, feature_dim) and class probabilities (N, K) as float32 numpy arrays."""
        feats, probs = [], []
        for start in range(0, len(images), batch_size):
            x = self.prepare(images[start:start + batch_size].to(self.device, torch.float32))
            f = self.net.features(x)
            feats.append(f.cpu())
            probs.append(torch.softmax(self.net.head(f), dim=1).cpu())
        return torch.cat(feats).numpy(), torch.cat(probs).numpy()

    def describe(self) -> dict:
        """Provenance: name, hash, input size and recorded accuracy."""
        return {"name": self.name, "sha256": self.sha256, "size": self.spec.size, "feature_dim":
                self.spec.feature_dim, "dataset": self.spec.dataset,
                "test_accuracy": self.spec.record.get("test_accuracy")}


# ----------------------------------------------------------------------------------------------------------------
# Saving and loading


def content_sha256(tensors: dict[str, torch.Tensor], spec_json: str) -> str:
    """SHA-256 over the spec's JSON and every tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256(spec_json.encode())
    for key in sorted(tensors):
        t = tensors[key].detach().cpu().contiguous()
        h.update(f"|{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_evaluator(net: EvaluatorNet, spec: EvaluatorSpec, path: str | Path) -> str:
    """Write the evaluator to ``path`` (safetensors); returns its content hash."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    spec_json = json.dumps(asdict(spec), sort_keys=True)
    digest = content_sha256(tensors, spec_json)
    save_file(tensors, str(path), metadata={"format": FORMAT, "spec": spec_json, "sha256": digest})
    return digest


def resolve_evaluator_path(name_or_path: str) -> tuple[Path, str, str | None]:
    """(file, display name, pinned SHA-256 or None) for a built-in name or a file path."""
    if name_or_path in BUILTIN:
        return WEIGHTS_DIR / f"{name_or_path}.safetensors", name_or_path, BUILTIN[name_or_path] or None
    path = Path(name_or_path).expanduser()
    if not path.is_file() and (path.suffix.lower() == ".safetensors" or len(path.parts) > 1):
        raise GankitError(f"evaluator file not found: {path}" + (" (a folder)" if path.is_dir() else ""))
    if not path.is_file():
        raise GankitError(f"no evaluator {name_or_path!r}: built-in ones are {', '.join(sorted(BUILTIN))}; "
                          "otherwise give a .safetensors file made by `gankit evaluator train`")
    return path, path.stem, None


def _why_unreadable(path: Path, exc: BaseException) -> str:
    """Why safetensors could not read ``path``, in a user's words where the first bytes tell (text, a pickle)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        head = b""
    kind = foreign_kind(head)
    if kind == "text":
        return "it is a text file"
    if kind == "pickle":
        return "it is a pickle (as torch.save writes), which gankit never loads"
    return f"not a safetensors file ({' '.join(str(exc).split())})"


def load_evaluator(name_or_path: str, device: torch.device | str = "cpu") -> Evaluator:
    """Load a built-in evaluator by name or one trained by ``gankit evaluator train`` from its file; verifies
    the hashes and refuses a file that does not match."""
    path, name, pinned = resolve_evaluator_path(name_or_path)
    if not path.is_file():
        raise GankitError(f"the built-in evaluator file {path} is missing from this installation")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise GankitError(f"cannot read evaluator {path}: {_why_unreadable(path, exc)}; an evaluator is a "
                          ".safetensors file written by `gankit evaluator train`") from None
    if meta.get("format") != FORMAT:
        raise GankitError(f"{path} is not a gankit evaluator (format {meta.get('format')!r})")
    digest = content_sha256(tensors, meta["spec"])
    if digest != meta.get("sha256"):
        raise GankitError(f"evaluator {path}: its weights do not match the hash recorded in the file (corrupt)")
    if pinned is not None and digest != pinned:
        raise GankitError(f"evaluator {path} has SHA-256 {digest}, expected {pinned}: the file was replaced or "
                          "retrained; reinstall gankit")
    spec = EvaluatorSpec(**json.loads(meta["spec"]))
    net = EvaluatorNet(spec)
    net.load_state_dict(tensors)
    return Evaluator(net, spec, name, digest).to(device)


def default_evaluator(dataset: str, domain: str = "") -> str | None:
    """The built-in evaluator for a data source (one domain of a translation task), or None when there is none
    (user folders, arrays, mnist_edges' outlines, mnist_colourize's grey images). ``mnist_colourize``'s colour
    digits are ``mnist_colour``'s B images made from other MNIST images: the colour evaluator reads them."""
    key = f"{dataset}:{domain}" if domain else dataset
    return {"mnist": "mnist", "stacked_mnist": "mnist", "digits": "digits", "mnist_edges:B": "mnist",
            "mnist_colour:A": "mnist", "mnist_colour:B": "mnist_colour", "mnist_colourize:B": "mnist_colour"}.get(key)
