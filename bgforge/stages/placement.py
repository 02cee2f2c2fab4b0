"""Placing a foreground with an alpha channel on a background: the arithmetic of a grid of placements
(size as a fraction of the background's area, centre position, rotation) and the alpha paste.

The rules are SI-Score's (google-research/si-score `dataset_generator.py`), written so that any recipe
can use them; planners compute every size and position up front (pure arithmetic, no pixels), and
the stage repeats the same operations on the pixels with PIL.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Sequence

import numpy as np
from PIL import Image


def grid_values(values: Sequence[float], arange: Sequence[float]) -> list[float]:
    """`np.arange(*arange)` when given (its floats, exactly as the reference computes them), else `values`."""
    if arange:
        if len(arange) != 3:
            raise ValueError(f"a range is [start, stop, step], got {list(arange)}")
        return [float(v) for v in np.arange(*arange)]
    return [float(v) for v in values]


def placement_grid(coords: Sequence[tuple[float, float]], areas: Sequence[float],
                   rotations: Sequence[float]) -> list[tuple[tuple[float, float], float, float]]:
    """Every (coord, area, rotation), in the reference's product order (coord slowest)."""
    return list(itertools.product([tuple(c) for c in coords], areas, rotations))


def area_size(fg_w: int, fg_h: int, bg_w: int, bg_h: int, area: float) -> tuple[int, int]:
    """The foreground resized so that its bounding rectangle covers `area` of the background:
    factor sqrt(area / (fg_w fg_h / (bg_w bg_h))), each side truncated (dataset_generator.py:106-117)."""
    factor = np.sqrt(area / ((fg_w * fg_h) / (bg_w * bg_h)))
    return int(fg_w * factor), int(fg_h * factor)


@functools.lru_cache(maxsize=65536)
def rotated_size(w: int, h: int, angle: float) -> tuple[int, int]:
    """The size of `Image.rotate(angle, expand=True)` of a w x h image (Pillow's own arithmetic:
    the 15-digit rounded matrix, ceil of the largest corner minus floor of the smallest)."""
    angle = angle % 360.0
    if angle in (0, 180):
        return w, h
    if angle in (90, 270):
        return h, w
    rad = -math.radians(angle)
    a, b = round(math.cos(rad), 15), round(math.sin(rad), 15)
    d, e = round(-math.sin(rad), 15), round(math.cos(rad), 15)
    cx, cy = w / 2, h / 2
    c = a * -cx + b * -cy + cx
    f = d * -cx + e * -cy + cy
    xs = [a * x + b * y + c for x, y in ((0, 0), (w, 0), (w, h), (0, h))]
    ys = [d * x + e * y + f for x, y in ((0, 0), (w, 0), (w, h), (0, h))]
    return math.ceil(max(xs)) - math.floor(min(xs)), math.ceil(max(ys)) - math.floor(min(ys))


def top_left(fg_w: int, fg_h: int, bg_w: int, bg_h: int, x: float, y: float) -> tuple[int, int]:
    """Top-left corner of a fg_w x fg_h foreground centred at (x, y) in [0, 1] of the background:
    int(int(x bg_w) - fg_w / 2) (dataset_generator.py:162-182)."""
    return int(int(x * bg_w) - fg_w * 0.5), int(int(y * bg_h) - fg_h * 0.5)


def pct_inside(fg_w: int, fg_h: int, bg_w: int, bg_h: int, x0: int, y0: int) -> float:
    """Share of the foreground's bounding rectangle inside the background (dataset_generator.py:185-212)."""
    inside = (min(x0 + fg_w, bg_w) - max(x0, 0)) * (min(y0 + fg_h, bg_h) - max(y0, 0))
    return inside / (fg_w * fg_h)


def square_background(bg: Image.Image, width: int, height: int) -> Image.Image:
    """The largest square from the top-left corner, resized to width x height (bilinear) unless it
    already has that size (dataset_generator.py:147-159, 343-348)."""
    side = min(bg.width, bg.height)
    bg = bg.crop((0, 0, side, side))
    if bg.size != (width, height):
        bg = bg.resize((width, height), Image.BILINEAR)
    return bg


def alpha_paste(bg: Image.Image, fg: Image.Image, size: tuple[int, int], angle: float,
                origin: tuple[int, int]) -> Image.Image:
    """fg (RGBA) resized to `size` (bilinear), rotated counter-clockwise by `angle` (bicubic, expanded)
    and pasted at `origin` through its own alpha (dataset_generator.py:106-139, 226-229, 477-486)."""
    fg = fg.resize(size, Image.BILINEAR).rotate(angle, resample=Image.BICUBIC, expand=True)
    out = bg.copy()
    out.paste(fg, box=origin, mask=fg)
    return out
