"""Synthetic "textured blob" images with exact masks and patch labels.

Each image is a background texture (smooth blotches) with one foreground blob of a different
texture (fine oriented stripes). Colours are drawn from overlapping ranges, so telling
foreground from background takes texture, not a colour threshold: a patch detector that
segments these images has learnt something. The folder layout is the one
`sources/folder.py` reads (images/, masks/, manifest.jsonl) plus `patch_labels.json` in the
format `bgforge patchnet train --labels` reads (docs/autobackswap.md).

Everything is drawn from rng_for(seed, ...), so a tree is identical wherever it is generated.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..backends.patchnet import patch_grid
from ..rng import rng_for


def blob_mask(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """(H, W) bool: a star-shaped blob, radius r(t) = r0 (1 + sum_k a_k cos(k t + phi_k)), k = 2..4."""
    cx, cy = width * rng.uniform(0.35, 0.65), height * rng.uniform(0.35, 0.65)
    r0 = min(height, width) * rng.uniform(0.2, 0.3)
    amps, phases = rng.uniform(0.0, 0.12, 3), rng.uniform(0, 2 * np.pi, 3)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    dx, dy = xx - cx, yy - cy
    theta = np.arctan2(dy, dx)
    radius = r0 * (1 + sum(a * np.cos(k * theta + p) for k, a, p in zip((2, 3, 4), amps, phases)))
    return np.hypot(dx, dy) <= radius


def _colour(rng) -> np.ndarray:
    return rng.uniform(40, 215, 3).astype(np.float32)


def stripes(rng: np.random.Generator, height: int, width: int, colour: np.ndarray) -> np.ndarray:
    """Fine stripes (period 4-7 px) at a random angle around a colour."""
    angle, period = rng.uniform(0, np.pi), rng.uniform(4, 7)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    wave = np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period)
    return colour[None, None] + 45 * wave[..., None]


def blotches(rng: np.random.Generator, height: int, width: int, colour: np.ndarray) -> np.ndarray:
    """Smooth, low-frequency colour blotches around a colour."""
    small = rng.random((max(2, height // 16), max(2, width // 16), 3)).astype(np.float32)
    noise = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC).reshape(height, width, 3)
    return colour[None, None] + 70 * (noise - 0.5)


def blob_image(rng: np.random.Generator, height: int, width: int,
               fg_colour: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 image and its exact (H, W) bool foreground mask."""
    mask = blob_mask(rng, height, width)
    bg = blotches(rng, height, width, _colour(rng))
    fg = stripes(rng, height, width, _colour(rng) if fg_colour is None else np.float32(fg_colour))
    img = np.where(mask[..., None], fg, bg)
    return np.clip(img, 0, 255).astype(np.uint8), mask


# Per-class stripe colours keep classes visually distinct in previews (the texture is what matters).
CLASS_COLOURS = ((200, 60, 60), (60, 170, 60), (60, 90, 200), (200, 180, 50), (170, 60, 190), (50, 180, 190))


def make_blob_folder(root: str | Path, n: int = 24, size: tuple[int, int] = (128, 128), grid: int | None = 4,
                     seed: int = 0, classes: Sequence[str] = ("a", "b", "c"), split: str | None = None) -> Path:
    """Write images/, masks/ (0/255 PNG), manifest.jsonl (path, label, boxes, mask[, split]) and
    patch_labels.json (image path relative to images/ -> rows x cols grid of 0/1; `grid` cells
    per side, or mask paths when grid is None). Image j has class classes[j % len(classes)].
    Returns the root; images are PNG so that pixels are exact."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    width, height = size
    manifest, labels = [], {}
    for j in range(n):
        label = classes[j % len(classes)] if classes else None
        colour = CLASS_COLOURS[j % len(classes) % len(CLASS_COLOURS)] if classes else None
        img, mask = blob_image(rng_for(seed, "blob", j), height, width, colour)
        name = f"blob_{j:04d}.png"
        Image.fromarray(img).save(root / "images" / name)
        Image.fromarray(mask.astype(np.uint8) * 255).save(root / "masks" / name)
        ys, xs = np.nonzero(mask)
        row = {"path": f"images/{name}", "mask": f"masks/{name}",
               "boxes": [[int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]]}
        if label is not None:
            row["label"] = label
        if split:
            row["split"] = split
        manifest.append(row)
        labels[name] = patch_grid(mask, grid, grid) if grid else f"masks/{name}"
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in manifest))
    (root / "patch_labels.json").write_text(json.dumps(labels, indent=0, sort_keys=True) + "\n")
    return root
