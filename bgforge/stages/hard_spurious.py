"""One Hard-Spurious-ImageNet composite: crop the largest box, resize, paste on a stored background."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..errors import SampleError
from ..io.images import decode, encode, sample_image
from ..records import Failure, Output
from ..sources.imagenet import clip_box
from .paste import crop_box, fg_size, paste, paste_origin


def render(sample, store, params):
    """Also the chain of `bgforge composite`: inputs hold the image (path or shard member), box and bg_key."""
    stage = "read_image"
    try:
        arr, _, _ = sample_image(sample.inputs, stage)
        image = Image.fromarray(arr)
        box = sample.inputs.get("box") or [0, 0, image.width, image.height]
        # Boxes from LOC CSV files were never checked against the image size: do it here.
        box, problem = clip_box(box, image.width, image.height)
        if box is None:
            raise SampleError("read_image", problem)
        stage = "read_background"
        bg = store.image(sample.inputs["bg_key"])
        canvas = int(params.get("canvas", 224))
        if bg.shape[:2] != (canvas, canvas):
            bg = np.asarray(Image.fromarray(bg).resize((canvas, canvas), Image.LANCZOS))
        stage = "composite"
        m = sample.meta
        fg = crop_box(image, box)
        alpha = None
        if params.get("fg_mode", "box") == "mask":
            obj = Image.fromarray(decode(store.read(m["fg_key"], "object.png"), "L"))
            alpha = crop_box(obj, box)
        w, h = fg_size(box[2] - box[0], box[3] - box[1], m["size"], bool(params.get("ar_preserve")), bg.shape[1])
        origin = paste_origin(w, h, m["position"], m.get("corner", "top-right"), bg.shape[1])
        out, paste_box = paste(bg, fg, (w, h), origin, alpha)
        stage = "encode"
        fmt = params.get("image_format", "jpg")
        data = encode(out, fmt, quality=params.get("jpeg_quality", 95))
    except Exception as exc:  # one bad sample is logged, never stops the run
        return Failure.of(sample.key, exc, stage)
    meta = {**sample.meta, "paste_box": paste_box, "fg_box": [round(float(v), 2) for v in box],
            "fg_mode": params.get("fg_mode", "box"), "ar_preserve": bool(params.get("ar_preserve"))}
    return Output(key=sample.key, files={fmt: data, "cls": str(meta["label"]).encode()}, meta=meta)
