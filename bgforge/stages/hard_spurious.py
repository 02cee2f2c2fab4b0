"""One Hard-Spurious-ImageNet composite: crop the planned box, resize, paste on a stored background."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..errors import SampleError
from ..io.encoding import Encoding
from ..io.images import decode, sample_image
from ..recipe_params import HsiParams
from ..records import Failure, Output, Sample
from ..sources.imagenet import clip_box
from .common import Rendered, Step, render_sample
from .paste import RESAMPLING, crop_box, fg_size, paste, paste_origin

if TYPE_CHECKING:
    # HSI reads its backgrounds phase through the stored key index; `bgforge composite` any --bg
    from ..sources.store import Store as Backgrounds


def render(sample: Sample, store: Backgrounds, params: dict, encoding: Encoding) -> Output | Failure:
    """Also the chain of `bgforge composite`: inputs hold the image (path or shard member), box and bg_key."""
    return render_sample(sample, encoding, lambda progress: _composite(sample, store, params, progress))


def _composite(sample: Sample, store: Backgrounds, params: dict, progress: Step) -> Rendered:
    p = HsiParams.from_plan(params)   # a plan from before `resampling` / `rounding`: recipe_params.LEGACY
    arr, _, _ = sample_image(sample.inputs, progress.stage)
    image = Image.fromarray(arr)
    box = sample.inputs.get("box") or [0, 0, image.width, image.height]
    # Boxes from LOC CSV files were never checked against the image size: do it here.
    box, problem = clip_box(box, image.width, image.height)
    if box is None:
        raise SampleError("read_image", problem)
    progress.stage = "read_background"
    bg = store.image(sample.inputs["bg_key"])
    canvas = int(p.canvas)
    resample = RESAMPLING[p.resampling]
    if bg.shape[:2] != (canvas, canvas):
        bg = np.asarray(Image.fromarray(bg).resize((canvas, canvas), resample))
    progress.stage = "composite"
    m = sample.meta
    rounding = p.rounding
    fg = crop_box(image, box, rounding)
    alpha = None
    if p.fg_mode == "mask":
        obj = Image.fromarray(decode(store.read(m["fg_key"], "object.png"), "L"))
        alpha = crop_box(obj, box, rounding)
    w, h = fg_size(fg.width, fg.height, m["size"], bool(p.ar_preserve), bg.shape[1], rounding) \
        if rounding == "truncate" else \
        fg_size(box[2] - box[0], box[3] - box[1], m["size"], bool(p.ar_preserve), bg.shape[1])
    origin = paste_origin(w, h, m["position"], m.get("corner", "top-right"), bg.shape[1])
    out, paste_box = paste(bg, fg, (w, h), origin, alpha, resample)
    meta = {**m, "paste_box": paste_box, "fg_box": [round(float(v), 2) for v in box],
            "fg_mode": p.fg_mode, "ar_preserve": bool(p.ar_preserve)}
    return Rendered(out, meta, label=m["label"])
