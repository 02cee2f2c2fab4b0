"""One AutoBackSwap sample (AutoBackSwap): an original, or a foreground swapped onto another image's background.

Phase 1 (the `inpaint` stage) stored, per image, its inpainted background and its undilated
object mask (object.png). A swap pastes an image's object, by that mask, over the inpainted
background of an image from another class, fitted to the foreground image's size (Waterbirds'
cover-crop-resize), with the shared soft compositing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np
from PIL import Image

from ..errors import SampleError
from ..io.encoding import Encoding
from ..io.images import decode, sample_image
from ..recipe_params import AutoBackSwapParams
from ..records import Failure, Output, Sample
from .blend import fit_background, soft_composite
from .common import Rendered, Step, render_sample, stored_image

if TYPE_CHECKING:
    from ..sources.key_index import IndexedStore


def render(sample: Sample, store: IndexedStore | None, params: dict, encoding: Encoding) -> Output | Failure:
    """An original (its bytes, unchanged) or a swap: foreground over another image's inpainted background."""
    return render_sample(sample, encoding, lambda progress: _swap(sample, store, params, progress, encoding))


def _swap(sample: Sample, store: IndexedStore | None, params: dict, progress: Step,
          encoding: Encoding) -> Rendered | Output:
    m = sample.meta
    image, raw, ext = sample_image(sample.inputs, progress.stage)
    if m["kind"] == "original":  # its bytes, unless they are in another format than the swaps
        ext, raw = stored_image(image, raw, ext, encoding.image_format, encoding)
        return Output(key=sample.key, files={ext: raw, "cls": str(m["class_index"]).encode()}, meta=dict(m))
    progress.stage = "read_mask"
    fg_key = sample.inputs["fg_key"]
    if not _has_object(store, fg_key):
        raise SampleError("segment", f"no foreground was found in {fg_key} (or it failed in phase 1; see "
                                     "backgrounds/errors.jsonl)")
    mask = decode(store.read(fg_key, "object.png", progress.stage), "L")
    if mask.shape != image.shape[:2]:
        raise SampleError(progress.stage, f"object mask of {fg_key} is {mask.shape[::-1]} "
                                          f"but the image is {image.shape[1::-1]}")
    progress.stage = "read_background"
    bg = store.image(sample.inputs["bg_key"], progress.stage)
    progress.stage = "composite"
    h, w = image.shape[:2]
    fitted = np.asarray(fit_background(Image.fromarray(bg), w, h))
    sigma = float(AutoBackSwapParams.from_plan(params).feather or 0)
    if sigma > 0:  # soften the cut-out's edge; the hard mask is what the segmenter found
        mask = cv2.GaussianBlur(mask, (0, 0), sigma)
    out = soft_composite(image, mask, fitted)
    meta = {**m, "fg_frac": round(float((mask > 127).mean()), 6), "feather": sigma}
    return Rendered(out, meta, label=m["class_index"])


def _has_object(store: IndexedStore | None, key: str) -> bool:
    """Whether phase 1 stored an object mask for `key` (it does not when it found no foreground)."""
    return store is not None and store.has_member(key, "object.png")
