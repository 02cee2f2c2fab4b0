"""The ImageNet-9 background-challenge variants (Xiao et al.) of one image.

Two regions of an image are used: the *foreground* (its mask; the union of its boxes when it has
no mask) and the *box* (the union of its boxes; the bounding rectangle of the mask when it has
no boxes).

  original     the image
  only_bg_b    the box blacked out
  only_bg_t    the box filled by tiling a background strip of the same image (`tile_fill`)
  no_fg        the foreground blacked out
  only_fg      the foreground on black
  mixed_*      the foreground on the only_bg_t image of another image (picked by the planner),
               cover-cropped and resized to this image's size (Waterbirds' fit_background)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from PIL import Image

from ..backends.base import clip_boxes_int, mask_bbox
from ..errors import SampleError
from ..io.encoding import Encoding
from ..io.images import sample_image, sample_mask
from ..records import Failure, Output, Sample
from .blend import fit_background, soft_composite
from .common import Rendered, Step, render_sample

MIXED = ("mixed_same", "mixed_rand", "mixed_next")


def box_mask(boxes: ArrayLike, height: int, width: int) -> np.ndarray:
    """(H, W) bool: the union of the boxes' pixels (a pixel is in when the box covers any of it)."""
    out = np.zeros((height, width), bool)
    for x0, y0, x1, y1 in clip_boxes_int(np.asarray(boxes, np.float64).reshape(-1, 4), height, width):
        out[y0:y1, x0:x1] = True
    return out


def regions(image: np.ndarray, inputs: dict, boxes: ArrayLike | None, stage: str = "read_mask") -> tuple[np.ndarray, np.ndarray]:
    """(foreground, box) bool masks of an image from its mask and/or boxes."""
    h, w = image.shape[:2]
    mask = sample_mask(inputs, image.shape, stage)
    has_boxes = boxes is not None and len(boxes) > 0
    if mask is None and not has_boxes:
        raise SampleError(stage, "no mask and no boxes: the variants need a foreground mask or a bounding box")
    box = box_mask(boxes, h, w) if has_boxes else box_mask(mask_bbox(mask), h, w)
    fg = mask if mask is not None else box
    if not fg.any() or not box.any():
        raise SampleError(stage, "the foreground mask (or box) is empty")
    return fg, box


def tile_strip(box: np.ndarray) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) of the background strip that only_bg_t tiles, or None if there is none.

    With R = the bounding rectangle of the box pixels, the candidates are the four strips that
    contain no box pixel: above R (all columns), below R (all columns), left of R (all rows) and
    right of R (all rows). The largest by area wins; ties go in that order. For a single box,
    this is the largest background rectangle outside the box.
    """
    h, w = box.shape
    bx0, by0, bx1, by1 = (int(v) for v in mask_bbox(box))
    candidates = [(0, by0, 0, w), (by1, h, 0, w), (0, h, 0, bx0), (0, h, bx1, w)]
    best = max(candidates, key=lambda c: (c[1] - c[0]) * (c[3] - c[2]))  # max keeps the first of equals
    return best if (best[1] - best[0]) * (best[3] - best[2]) > 0 else None


def tile_fill(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """only_bg_t: every box pixel (y, x) becomes strip[(y - by0) mod th, (x - bx0) mod tw].

    `strip` is `tile_strip`'s rectangle (th x tw) and (bx0, by0) the top-left corner of the box's
    bounding rectangle: copies of the strip are laid edge to edge starting at that corner.
    """
    strip = tile_strip(box)
    if strip is None:
        raise SampleError("tile", "the box covers the whole image: no background is left to tile")
    y0, y1, x0, x1 = strip
    tile = image[y0:y1, x0:x1]
    bx0, by0 = (int(v) for v in mask_bbox(box)[:2])
    ys, xs = np.nonzero(box)
    out = image.copy()
    out[ys, xs] = tile[(ys - by0) % tile.shape[0], (xs - bx0) % tile.shape[1]]
    return out


def blacken(image: np.ndarray, region: np.ndarray) -> np.ndarray:
    return np.where(region[..., None], np.uint8(0), image)


def on_background(image: np.ndarray, fg: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The foreground pixels of `image` over `background` (the shared soft compositing, hard mask)."""
    return soft_composite(image, fg.astype(np.uint8) * 255, background)


def variant_image(variant: str, image: np.ndarray, fg: np.ndarray, box: np.ndarray,
                  background: np.ndarray | None = None) -> np.ndarray:
    """One variant's pixels; `background` is the other image's only_bg_t for the mixed variants."""
    if variant == "original":
        return image
    if variant == "only_bg_b":
        return blacken(image, box)
    if variant == "only_bg_t":
        return tile_fill(image, box)
    if variant == "no_fg":
        return blacken(image, fg)
    if variant == "only_fg":
        return on_background(image, fg, np.zeros_like(image))
    if variant in MIXED:
        h, w = image.shape[:2]
        fitted = np.asarray(fit_background(Image.fromarray(background), w, h))
        return on_background(image, fg, fitted)
    raise ValueError(f"unknown variant {variant!r}")


def render(sample: Sample, encoding: Encoding) -> Output | Failure:
    return render_sample(sample, encoding, lambda progress: _variant(sample, progress))


def _variant(sample: Sample, progress: Step) -> Rendered:
    m = sample.meta
    image, _, _ = sample_image(sample.inputs, progress.stage)
    if m.get("construction") == "reference":
        return _reference(sample, image, progress)
    progress.stage = "read_mask"
    fg, box = regions(image, sample.inputs, m.get("boxes"))
    background = None
    if m["variant"] in MIXED:
        progress.stage = "read_background"
        bg_image, _, _ = sample_image(sample.inputs["bg"], progress.stage)
        _, bg_box = regions(bg_image, sample.inputs["bg"], sample.inputs.get("bg_boxes"), progress.stage)
        background = tile_fill(bg_image, bg_box)
    progress.stage = m["variant"]
    out = variant_image(m["variant"], image, fg, box, background)
    meta = {**m, "width": int(image.shape[1]), "height": int(image.shape[0]),
            "fg_frac": round(float(fg.mean()), 6), "box_frac": round(float(box.mean()), 6)}
    return Rendered(out, meta, label=m["class_index"])


def _reference(sample: Sample, image: np.ndarray, progress: Step) -> Rendered:
    """`construction: reference`: main.py's filters, tiling, GrabCut and 256 x 256 mixed images
    (stages/variants_reference.py)."""
    from . import variants_reference as ref

    m = sample.meta
    progress.stage = "filter"
    problem = ref.filter_problem(image.shape[1], image.shape[0], m.get("boxes"))
    if problem:
        raise SampleError("filter", problem)
    background = None
    if m["variant"] in MIXED:
        progress.stage = "read_background"
        bg_image, _, _ = sample_image(sample.inputs["bg"], progress.stage)
        background = (bg_image, sample.inputs.get("bg_boxes"))
    progress.stage = m["variant"]
    out = ref.reference_variant(m["variant"], image, m.get("boxes"), int(m.get("seed", 0)), m["source_key"], background)
    meta = {**m, "width": int(out.shape[1]), "height": int(out.shape[0])}
    return Rendered(out, meta, label=m["class_index"])
