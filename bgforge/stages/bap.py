"""BAP anchor / alignment composites (BAP, "Birds of a Feather Flock Together").

Two steps, one per build phase:
  extract_foreground   the source image and its mask (CUB's soft segmentation, or a COCO
                       polygon/RLE) cropped tight to the bounding box of mask > threshold;
                       stored once per foreground in OUT/foregrounds (png + mask.png)
  render_composite     that crop scaled so its longer side is the planned length (Lanczos, image
                       and mask alike), the mask hardened (> threshold -> 255, else 0) and blurred
                       with PIL's GaussianBlur(radius), pasted centred on a 224 x 224 background
                       (the background is centre-cropped to a square, then Lanczos-resized)

The hardened mask is padded with BLUR_PAD zero pixels before blurring (and the object with its
edge pixels), so the blur falls off outside the object on every side instead of being cut by
the tight crop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageFilter

from ..errors import SampleError
from ..io.encoding import Encoding
from ..io.images import decode, encode, open_image, open_mask
from ..recipe_params import BapParams
from ..records import Failure, Output, Sample
from .blend import fit_background
from .common import Rendered, Step, render_sample
from .paste import paste, paste_origin

if TYPE_CHECKING:
    from ..sources.key_index import IndexedStore

CANVAS = 224
BLUR_PAD = 4   # > the reach of GaussianBlur(1) (three box passes of radius <= 1)


def tight_crop(image: np.ndarray, mask: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(image crop, mask crop, [x0, y0, x1, y1]) around the pixels where mask > threshold."""
    ys, xs = np.nonzero(mask > threshold)
    if not len(xs):
        raise SampleError("crop", f"the mask has no pixel above {threshold}: nothing to paste")
    x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    return image[y0:y1, x0:x1], mask[y0:y1, x0:x1], [x0, y0, x1, y1]


def scaled_size(width: int, height: int, longer: int) -> tuple[int, int]:
    """Aspect-preserving size whose longer side is exactly `longer`."""
    if width >= height:
        return longer, max(1, int(round(height * longer / width)))
    return max(1, int(round(width * longer / height))), longer


def target_longer_side(width: int, height: int, params: BapParams, fraction: float | None) -> int:
    """The pasted object's longer side: a planned fraction of the canvas (BAP-Waterbirds), or
    the object's own size capped at max_side (COCO variant; `upscale` grows smaller objects)."""
    canvas = int(params.canvas)
    if params.scale_range:
        return max(1, int(round(float(fraction) * canvas)))
    cap = int(params.max_side)
    native = max(width, height)
    return cap if params.upscale or native > cap else native


def harden_and_blur(mask: Image.Image, threshold: int = 100, radius: float = 1, pad: int = BLUR_PAD) -> Image.Image:
    """mask > threshold -> 255 else 0, padded by `pad` zeros, then GaussianBlur(radius)."""
    hard = np.where(np.asarray(mask) > threshold, 255, 0).astype(np.uint8)
    out = Image.fromarray(np.pad(hard, pad))
    return out.filter(ImageFilter.GaussianBlur(radius)) if radius else out


def bap_composite(fg: np.ndarray, mask: np.ndarray, background: Image.Image, longer: int, canvas: int = CANVAS,
                  threshold: int = 100, blur_radius: float = 1) -> tuple[np.ndarray, list[int]]:
    """Paste a tight foreground crop centred on `background`; returns (canvas x canvas RGB, paste box)."""
    height, width = mask.shape[:2]
    size = scaled_size(width, height, longer)
    fg_small = np.asarray(Image.fromarray(fg).resize(size, Image.LANCZOS))
    alpha = harden_and_blur(Image.fromarray(mask).resize(size, Image.LANCZOS), threshold, blur_radius)
    fg_padded = Image.fromarray(np.pad(fg_small, ((BLUR_PAD, BLUR_PAD), (BLUR_PAD, BLUR_PAD), (0, 0)), mode="edge"))
    x, y = paste_origin(size[0], size[1], "center", canvas=canvas)
    bg = np.asarray(fit_background(background, canvas, canvas))
    out, _ = paste(bg, fg_padded, fg_padded.size, (x - BLUR_PAD, y - BLUR_PAD), alpha)
    return out, [x, y, x + size[0], y + size[1]]


def _source_mask(sample, image: np.ndarray) -> np.ndarray:
    if "mask" in sample.inputs:       # CUB: a soft greyscale PNG (per channel max if saved as RGB)
        mask = open_mask(sample.inputs["mask"])
        mask = mask if mask.ndim == 2 else mask.max(axis=2)
    else:                             # COCO: polygons or RLE from the instances file
        from ..sources.coco import annotation_mask

        mask = annotation_mask(sample.inputs["segmentation"], image.shape[0], image.shape[1])
    if mask.shape[:2] != image.shape[:2]:
        raise SampleError("read_mask", f"mask is {mask.shape[1]}x{mask.shape[0]} but its image "
                                       f"{sample.inputs['image']} is {image.shape[1]}x{image.shape[0]}")
    return mask


FOREGROUND = Encoding("png")  # phase 1 crops are lossless, whatever the composites are written as


def extract_foreground(sample: Sample, params: dict) -> Output | Failure:
    """Phase 1: the tight crop of one foreground (png) and its mask (mask.png, values kept)."""
    return render_sample(sample, FOREGROUND, lambda progress: _foreground(sample, params, progress))


def _foreground(sample: Sample, params: dict, progress: Step) -> Rendered:
    image = np.asarray(open_image(sample.inputs["image"], progress.stage))
    progress.stage = "read_mask"
    mask = _source_mask(sample, image)
    progress.stage = "crop"
    crop, mask_crop, box = tight_crop(image, mask, int(BapParams.from_plan(params).mask_threshold))
    return Rendered(crop, {**sample.meta, "crop_box": box}, label=sample.meta["label"],
                    files={"mask.png": encode(mask_crop, "png")})


def render_composite(sample: Sample, store: IndexedStore, params: dict, encoding: Encoding) -> Output | Failure:
    """Phase 2: one anchor or alignment composite from a stored foreground and a background file."""
    return render_sample(sample, encoding, lambda progress: _composite(sample, store, params, progress),
                         first_stage="read_foreground")


def _composite(sample: Sample, store: IndexedStore, params: dict, progress: Step) -> Rendered:
    m = sample.meta
    fg = store.image(m["fg_key"], progress.stage)
    mask = decode(store.read(m["fg_key"], "mask.png", progress.stage), "L")
    progress.stage = "read_background"
    bg = open_image(sample.inputs["background"], progress.stage)
    progress.stage = "composite"
    p = BapParams.from_plan(params)
    longer = target_longer_side(mask.shape[1], mask.shape[0], p, m.get("scale"))
    canvas = int(p.canvas)
    out, box = bap_composite(fg, mask, bg, longer, canvas, int(p.mask_threshold), float(p.blur_radius))
    return Rendered(out, {**m, "paste_box": box, "longer_side": longer}, label=m["label"])
