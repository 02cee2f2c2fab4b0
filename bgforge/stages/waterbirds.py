"""The Waterbirds stage chain for one sample: decode, composite (PAPERS §1), encode."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..errors import SampleError
from ..io.fast_images import read_rgb
from ..io.images import open_image, open_mask
from ..records import Failure, Output, Sample
from .common import Rendered, render_sample
from .composite import fit_background, soft_composite


def composite_sample(sample: Sample, resampling: str = "lanczos") -> np.ndarray:
    bird = (read_rgb(sample.inputs["image"], "read_image") if resampling == "fast"
            else np.asarray(open_image(sample.inputs["image"], stage="read_image")))
    mask = open_mask(sample.inputs["mask"], stage="read_mask")
    if mask.shape[:2] != bird.shape[:2]:
        raise SampleError("read_mask", f"mask {sample.inputs['mask']} is {mask.shape[1]}x{mask.shape[0]} "
                                       f"but its image is {bird.shape[1]}x{bird.shape[0]}")
    height, width = bird.shape[:2]
    if resampling == "fast":  # OpenCV decode, DCT-reduced to what still covers the bird
        bg = read_rgb(sample.inputs["background"], "read_background", cover=(width, height))
    else:
        bg = open_image(sample.inputs["background"], stage="read_background")
    bg = np.asarray(fit_background(bg, width, height, resampling))
    return soft_composite(bird, mask, bg)


def render(sample: Sample, params: dict) -> Output | Failure:
    return render_sample(sample, params, lambda progress: _waterbird(sample, params), first_stage="composite")


def _waterbird(sample: Sample, params: dict) -> Rendered:
    out = composite_sample(sample, params.get("resampling", "lanczos"))
    size = params.get("output_size", "original")
    if size != "original":
        out = np.asarray(Image.fromarray(out).resize((int(size), int(size)), Image.LANCZOS))
    meta = dict(sample.meta)
    meta["height"], meta["width"] = out.shape[:2]
    return Rendered(out, meta, label=meta["y"], folder_path=meta["img_filename"])
