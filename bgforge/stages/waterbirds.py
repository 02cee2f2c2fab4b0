"""The Waterbirds stage chain for one sample: decode, composite (Waterbirds (Sagawa et al. 2020)), encode."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..errors import SampleError
from ..io.encoding import Encoding
from ..io.images import open_mask, read_rgb
from ..recipe_params import WaterbirdsParams
from ..records import Failure, Output, Sample
from .blend import fit_background, soft_composite
from .common import Rendered, render_sample


def composite_sample(sample: Sample, resampling: str = "lanczos") -> np.ndarray:
    exact = resampling != "fast"
    # OpenCV decodes JPEGs straight to numpy; on the exact path only where its pixels are Pillow's
    bird = read_rgb(sample.inputs["image"], "read_image", exact=exact)
    mask = open_mask(sample.inputs["mask"], stage="read_mask")
    if mask.shape[:2] != bird.shape[:2]:
        raise SampleError("read_mask", f"mask {sample.inputs['mask']} is {mask.shape[1]}x{mask.shape[0]} "
                                       f"but its image is {bird.shape[1]}x{bird.shape[0]}")
    height, width = bird.shape[:2]
    # fast: DCT-reduced to what still covers the bird; exact: full size, Lanczos-fitted by Pillow
    bg = read_rgb(sample.inputs["background"], "read_background", cover=(width, height), exact=exact)
    fitted = fit_background(Image.fromarray(bg) if exact else bg, width, height, resampling)
    return soft_composite(bird, mask, np.asarray(fitted))


def render(sample: Sample, params: dict, encoding: Encoding) -> Output | Failure:
    return render_sample(sample, encoding, lambda progress: _waterbird(sample, params), first_stage="composite")


def _waterbird(sample: Sample, params: dict) -> Rendered:
    p = WaterbirdsParams.from_plan(params)   # also spurious_ood's: the keys they share
    out = composite_sample(sample, p.resampling)
    size = p.output_size
    if size != "original":
        out = np.asarray(Image.fromarray(out).resize((int(size), int(size)), Image.LANCZOS))
    meta = dict(sample.meta)
    meta["height"], meta["width"] = out.shape[:2]
    return Rendered(out, meta, label=meta["y"], folder_path=meta["img_filename"])
