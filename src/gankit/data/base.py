"""The in-memory dataset every source returns, and the cheap batch sampler the trainer draws from."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ArrayData:
    """A dataset held as one tensor: batches are index draws, with no per-item Python on the hot path."""

    x: torch.Tensor  # (N, C, H, W) float32 in [-1, 1] for images; (N, D) float32 for points (toy2d)
    y: torch.Tensor | None = None  # (N,) int64 class labels, (N, T) float32 regression targets, or None
    num_classes: int = 0  # number of classes when labelled, else 0 (always 0 for regression targets)
    name: str = ""  # the registered source that made it
    classes: tuple[str, ...] = ()  # class names, label i -> classes[i]; empty when the source has none
    # image-to-image translation: x stacks an A image (its first ``channels_a`` channels) and a B image (the rest)
    # on the channel axis; 0 for every other dataset. Paired sources stack each A with its own B; unpaired ones
    # with a B drawn by a fixed random permutation (the losses never compare the two, so the pairing carries no
    # information) and keep B's labels in ``y_b`` (``y`` holds A's)
    channels_a: int = 0
    y_b: torch.Tensor | None = None
    paired: bool = False  # translation: each row's A and B belong together (False: unpaired domains)
    # (num_classes,) float32 shares of the labels a generator should draw (data.clusters: the clusters' sizes);
    # None: uniform labels
    label_prior: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.x.dtype != torch.float32:
            raise TypeError(f"ArrayData.x must be float32, got {self.x.dtype}")
        if self.y is not None and not (self._is_labels() or self._is_targets()):
            raise ValueError(f"y must be int64 labels of shape ({self.x.shape[0]},) or float32 regression targets "
                             f"of shape ({self.x.shape[0]}, T), got {self.y.dtype} {tuple(self.y.shape)}")

    def _is_labels(self) -> bool:
        return self.y.shape == (self.x.shape[0],) and self.y.dtype == torch.int64

    def _is_targets(self) -> bool:
        return (self.y.dim() == 2 and self.y.shape[0] == self.x.shape[0] and self.y.dtype == torch.float32
                and self.num_classes == 0)

    @property
    def is_translation(self) -> bool:
        """True when x stacks A and B images (see ``channels_a``)."""
        return self.channels_a > 0

    @property
    def a(self) -> torch.Tensor:
        """The A images of a translation dataset."""
        return self.x[:, :self.channels_a]

    @property
    def b(self) -> torch.Tensor:
        """The B images of a translation dataset."""
        return self.x[:, self.channels_a:]

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample: (C, H, W) for images, (D,) for points."""
        return tuple(self.x.shape[1:])

    @property
    def is_image(self) -> bool:
        """True for (N, C, H, W) image data."""
        return self.x.dim() == 4

    @property
    def is_regression(self) -> bool:
        """True when ``y`` holds float (N, T) regression targets rather than class labels."""
        return self.y is not None and self.y.is_floating_point()

    def to(self, device: torch.device | str) -> "ArrayData":
        """A copy on ``device`` (labels or targets too)."""
        y = None if self.y is None else self.y.to(device)
        y_b = None if self.y_b is None else self.y_b.to(device)
        return ArrayData(self.x.to(device), y, self.num_classes, self.name, self.classes, self.channels_a, y_b,
                         self.paired, self.label_prior)

    def class_names(self) -> list[str]:
        """The class names, or "0".."K-1" when the source gives none."""
        return list(self.classes) if self.classes else [str(i) for i in range(self.num_classes)]
