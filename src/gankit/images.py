"""Writing sample grids and 2-D scatter plots with numpy and Pillow (no torchvision, no matplotlib)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images (N, C, H, W) in [-1, 1] -> uint8 array (N, H, W, C), the layout evaluation suites read."""
    assert images.dim() == 4, f"expected (N, C, H, W), got {tuple(images.shape)}"
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()  # (N, H, W, C)


def to_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Grey images (N, 1, H, W) repeated to ``channels`` channels, so that grey and colour images share one grid;
    others unchanged."""
    return x.expand(-1, channels, -1, -1) if x.shape[1] == 1 and channels > 1 else x


def make_grid(images: np.ndarray, nrow: int, pad: int = 2) -> np.ndarray:
    """Tile uint8 images (N, H, W, C) into one (rows*(H+pad)+pad, nrow*(W+pad)+pad, C) array."""
    n, h, w, c = images.shape
    rows = math.ceil(n / nrow)
    grid = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), 255, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[top:top + h, left:left + w] = images[i]
    return grid


def grid_image(images: torch.Tensor, nrow: int | None = None, min_cell: int = 56) -> Image.Image:
    """Images (N, C, H, W) in [-1, 1] tiled into one Pillow image; small images are enlarged (nearest) to
    ``min_cell`` px."""
    arr = to_uint8(images)  # (N, H, W, C)
    nrow = nrow or math.ceil(math.sqrt(len(arr)))
    scale = max(1, math.ceil(min_cell / max(arr.shape[1:3])))
    if scale > 1:
        arr = arr.repeat(scale, axis=1).repeat(scale, axis=2)
    grid = make_grid(arr, nrow)
    return Image.fromarray(grid[..., 0] if grid.shape[2] == 1 else grid)


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None, min_cell: int = 56) -> Path:
    """Save images (N, C, H, W) in [-1, 1] as a PNG grid; small images are enlarged (nearest) to ``min_cell`` px."""
    image = grid_image(images, nrow, min_cell)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def scatter_image(real: torch.Tensor | None, fake: torch.Tensor, size: int = 512,
                  limit: float | None = None) -> Image.Image:
    """2-D points as a Pillow image: real (optional) in grey, generated in red, on a canvas spanning
    [-limit, limit]^2."""
    fake = fake.detach().float().cpu()
    real = fake[:0] if real is None else real.detach().float().cpu()
    if limit is None:
        limit = 1.2 * float(torch.cat([real, fake]).abs().max().clamp_min(1e-6))
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    mid = size // 2
    draw.line([(0, mid), (size, mid)], fill=(225, 225, 225))
    draw.line([(mid, 0), (mid, size)], fill=(225, 225, 225))
    for points, colour in ((real, (150, 150, 150)), (fake, (215, 40, 40))):
        pix = ((points.clamp(-limit, limit) / limit + 1) * 0.5 * (size - 1)).round().to(torch.int64)
        for x, y in pix.tolist():
            draw.ellipse([x - 1, size - 1 - y - 1, x + 1, size - 1 - y + 1], fill=colour)
    return img


def save_scatter(real: torch.Tensor | None, fake: torch.Tensor, path: str | Path, size: int = 512,
                 limit: float | None = None) -> Path:
    """Scatter 2-D points: real (optional) in grey, generated in red, on a canvas spanning [-limit, limit]^2."""
    img = scatter_image(real, fake, size, limit)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path
