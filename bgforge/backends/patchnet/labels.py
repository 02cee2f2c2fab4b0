"""Patch labels (L.json) and the training set they describe.

A label is a 0/1 grid per image, or a mask file that is reduced to the grid by majority vote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bgforge.errors import BgforgeError
from bgforge.io.images import open_image, open_mask

from .model import check_stride

DEFAULT_INPUT = 224


def patch_grid(mask: np.ndarray, rows: int, cols: int) -> list[list[int]]:
    """Majority vote per cell: 1 when at least half of the cell's pixels are foreground.

    Cell (i, j) covers pixel rows i*H//rows .. (i+1)*H//rows (and likewise columns): the part of
    the image that output patch (i, j) sees once the image is resized to the network input.
    """
    m = np.asarray(mask).astype(bool)
    h, w = m.shape
    ys = [i * h // rows for i in range(rows + 1)]
    xs = [j * w // cols for j in range(cols + 1)]
    return [[int(m[ys[i]:ys[i + 1], xs[j]:xs[j + 1]].mean() >= 0.5) for j in range(cols)] for i in range(rows)]


@dataclass
class LabelledImage:
    rel: str                   # the key in L.json: the image path relative to --images
    image: Path
    grid: np.ndarray | None    # (g, g) uint8 0/1, when labelled per patch
    mask: Path | None          # when labelled by a mask file (reduced to the grid later)


def read_labels(images_dir: str | Path, labels_path: str | Path) -> list[LabelledImage]:
    """Parse L.json: {"<image path relative to --images>": [[0, 1, ...], ...] | "<mask path>"}.

    Mask paths are relative to the folder that holds L.json (or absolute). Entries are sorted by
    image path so that the training order does not depend on how the file was written.
    """
    images_dir, labels_path = Path(images_dir), Path(labels_path)
    if not images_dir.is_dir():
        raise BgforgeError(f"--images {images_dir} is not a folder; pass the folder the label file's paths are "
                           "relative to")
    try:
        data = json.loads(labels_path.read_text())
    except FileNotFoundError:
        raise BgforgeError(f"--labels {labels_path} not found; pass a JSON file mapping image paths to patch grids "
                           "or masks") from None
    except json.JSONDecodeError as exc:
        raise BgforgeError(f"--labels {labels_path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or not data:
        raise BgforgeError(f"--labels {labels_path} must be a non-empty JSON object "
                           '{"<image path>": [[0,1,...], ...] or "<mask path>"}')
    out = []
    for rel in sorted(data):
        value = data[rel]
        image = images_dir / rel
        if not image.is_file():
            raise BgforgeError(f"{labels_path}: image {rel!r} not found under --images {images_dir}")
        if isinstance(value, str):
            mask = Path(value) if Path(value).is_absolute() else labels_path.parent / value
            if not mask.is_file():
                raise BgforgeError(f"{labels_path}: mask {value!r} of {rel!r} not found (mask paths are relative to "
                                   f"{labels_path.parent})")
            out.append(LabelledImage(rel, image, None, mask))
        else:
            out.append(LabelledImage(rel, image, _grid(value, rel, labels_path), None))
    return out


def _grid(value, rel: str, labels_path: Path) -> np.ndarray:
    try:
        g = np.asarray(value, dtype=np.int64)
    except (TypeError, ValueError):
        g = None
    if g is None or g.ndim != 2 or g.size == 0 or not np.isin(g, (0, 1)).all():
        raise BgforgeError(f"{labels_path}: the label of {rel!r} must be a grid of 0/1 rows ([[0,1,...], ...]) "
                           "or a mask path")
    if g.shape[0] != g.shape[1]:
        raise BgforgeError(f"{labels_path}: the grid of {rel!r} is {g.shape[0]}x{g.shape[1]}; the network input is "
                           "square, so label grids must be square (g x g)")
    return g.astype(np.uint8)


def resolve_input_size(items: list[LabelledImage], input_size: int | None, stride: int) -> int:
    """The network input side: given, or grid side x stride from the patch grids, or 224."""
    check_stride(stride)
    sides = sorted({it.grid.shape[0] for it in items if it.grid is not None})
    if len(sides) > 1:
        raise BgforgeError(f"the label grids have different sizes ({', '.join(f'{s}x{s}' for s in sides)}); "
                           "label every image on the same grid, or give masks")
    if input_size is None:
        input_size = sides[0] * stride if sides else DEFAULT_INPUT
    if input_size % stride or input_size < stride:
        raise BgforgeError(f"--input-size must be a positive multiple of the stride {stride}, got {input_size}")
    if sides and sides[0] != input_size // stride:
        raise BgforgeError(f"the labels are {sides[0]}x{sides[0]} patch grids but --input-size {input_size} with "
                           f"stride {stride} gives {input_size // stride}x{input_size // stride}; pass --input-size "
                           f"{sides[0] * stride} (or label with masks)")
    return input_size


def resize_input(image: np.ndarray | Image.Image, size: int) -> np.ndarray:
    """The network's view of an image: size x size RGB uint8 (PIL bilinear, antialiased)."""
    im = image if isinstance(image, Image.Image) else Image.fromarray(image)
    return np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR))


def load_training_set(items: list[LabelledImage], input_size: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, S, S, 3) uint8 resized images and (N, g, g) uint8 patch labels."""
    g = input_size // stride
    images, grids = [], []
    for it in items:
        try:
            im = open_image(it.image)
            grid = it.grid
            if grid is None:
                m = open_mask(it.mask)
                m = (m if m.ndim == 2 else m.max(axis=2)) > 127
                if m.shape != (im.height, im.width):
                    raise BgforgeError(f"mask {it.mask} is {m.shape[1]}x{m.shape[0]} but image {it.rel} is "
                                       f"{im.width}x{im.height}; a mask must match its image")
                grid = np.asarray(patch_grid(m, g, g), np.uint8)
        except BgforgeError:
            raise
        except Exception as exc:  # SampleError from a corrupt file: training cannot skip labelled data silently
            raise BgforgeError(f"cannot read training image {it.rel}: {exc}") from None
        images.append(resize_input(im, input_size))
        grids.append(grid)
    return np.stack(images), np.stack(grids)
