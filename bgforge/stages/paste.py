"""Pasting a foreground onto a background at an exact size and position (Corner Cases (Fatima et al.)).

Geometry on a 224 x 224 canvas:
  center        top-left at (x, y) = (112 - w // 2, 112 - h // 2)
  corner        top-right: x = 224 - w, y = 0
  corner-random one of the four corners, drawn per sample by the planner
The foreground is the rectangular crop of a ground-truth box resized to s x s (the
reference), or, with `ar_preserve`, its shorter side resized to s keeping the aspect ratio
(then scaled down so the longer side is at most 224).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

CANVAS = 224
# Hard-Spurious-ImageNet's reference resizes with PIL's default filter (bicubic); Lanczos is the option.
RESAMPLING = {"bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS}


def object_index(boxes: Sequence[Sequence[float]], rule: str = "last") -> int:
    """The index of the box [x0, y0, x1, y1] that rule `OBJECT_BOX` picks."""
    if rule == "largest":
        areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]
        return areas.index(max(areas))
    return len(boxes) - 1




def fg_size(box_w: float, box_h: float, s: int, ar_preserve: bool, canvas: int = CANVAS,
            rounding: str = "round") -> tuple[int, int]:
    """The pasted size: s x s, or with `ar_preserve` the shorter side s and the longer side capped at
    the canvas. `truncate`: `create_dataset_preserve_AR.py`'s resize_short_side_safe_pil, `int()`
    after the scale and `int()` again after the cap (short sides 55, 71, 83, ... give s - 1)."""
    if not ar_preserve:
        return s, s
    scale = s / min(box_w, box_h)
    w, h = box_w * scale, box_h * scale
    if rounding == "truncate":
        w, h = int(w), int(h)
        if max(w, h) > canvas:
            shrink = canvas / max(w, h)
            w, h = int(w * shrink), int(h * shrink)
        return max(1, w), max(1, h)
    if max(w, h) > canvas:
        shrink = canvas / max(w, h)
        w, h = w * shrink, h * shrink
    return max(1, int(round(w))), max(1, int(round(h)))


def paste_origin(w: int, h: int, position: str, corner: str = "top-right", canvas: int = CANVAS) -> tuple[int, int]:
    """Top-left (x, y) of a w x h foreground."""
    half = canvas // 2
    if position == "center":
        return half - w // 2, half - h // 2
    if position in ("corner", "corner-random"):
        x = canvas - w if corner in ("top-right", "bottom-right") else 0
        y = 0 if corner in ("top-right", "top-left") else canvas - h
        return x, y
    raise ValueError(f"position must be center, corner or corner-random, got {position!r}")


def crop_box(image: Image.Image, box: Sequence[float], rounding: str = "round") -> Image.Image:
    """The box's rectangle. `truncate`: the reference's `int()` of its box, normalised to [0, 1] in
    float32 and multiplied back by the image size (create_dataset.py crops `img[int(y0):int(y1), ...]`)."""
    if rounding == "truncate":
        dims = (image.width, image.height) * 2
        x0, y0, x1, y1 = (int(np.float32(np.float32(v / d) * np.float32(d))) for v, d in zip(box, dims))
    else:
        x0, y0, x1, y1 = (int(round(v)) for v in box)
    return image.crop((x0, y0, x1, y1))


def paste(bg: np.ndarray, fg: Image.Image, size: tuple[int, int], origin: tuple[int, int],
          alpha: Image.Image | None = None, resample: int = Image.LANCZOS) -> tuple[np.ndarray, list]:
    """Resize fg (and its alpha) to size with `resample` and paste at origin; returns (image, paste box)."""
    w, h = size
    x, y = origin
    out = Image.fromarray(bg)
    fg = fg.resize((w, h), resample)
    if alpha is None:
        out.paste(fg, (x, y))
    else:
        out.paste(fg, (x, y), alpha.resize((w, h), resample))
    return np.asarray(out), [x, y, x + w, y + h]
