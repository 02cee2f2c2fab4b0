"""COCO-on-Places' 64 x 64 composite: object, hard mask and place each resized as
`skimage.transform.resize` does by default, blended in floating point.

new = place * (1 - mask) + image * mask with every term in [0, 1] (coco_places.py:305-311); the
reference stores float32 in HDF5, bgforge writes round(255 * new) as an 8-bit image.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..errors import SampleError
from ..io.encoding import Encoding
from ..io.images import read_rgb
from ..records import Failure, Output, Sample
from ..sources.coco import annotation_mask
from .common import Rendered, render_sample


def resize_like_skimage(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """skimage.transform.resize(image, (height, width)) with its defaults (order 1, mode `reflect`,
    anti-aliasing when shrinking, clip) for a uint8 image: float64 in [0, 1]. Re-implemented on
    scipy.ndimage (scikit-image >= 0.19's algorithm): a Gaussian of sigma max(0, (factor - 1) / 2)
    per axis, then a grid-mode linear zoom, both mirroring at the edges, clipped to the input's range."""
    x = image.astype(np.float64) / 255.0
    out_shape = (height, width) + x.shape[2:]
    factors = np.divide(x.shape, out_shape)
    if any(o < i for o, i in zip(out_shape, x.shape)):
        x = ndi.gaussian_filter(x, np.maximum(0, (factors - 1) / 2), cval=0, mode="mirror")
    out = ndi.zoom(x, [1 / f for f in factors], order=1, mode="mirror", cval=0, grid_mode=True)
    return np.clip(out, x.min() if x.size else 0, x.max() if x.size else 1)


def composite(image: np.ndarray, mask: np.ndarray, place: np.ndarray, size: int) -> np.ndarray:
    """The float composite in [0, 1] (size x size x 3) of an RGB image, its 0/255 mask and an RGB place."""
    m = resize_like_skimage(mask, size, size)[..., None]
    return resize_like_skimage(place, size, size) * (1 - m) + resize_like_skimage(image, size, size) * m


def render(sample: Sample, params: dict, encoding: Encoding) -> Output | Failure:
    return render_sample(sample, encoding, lambda progress: _composite(sample, params, progress))


def _composite(sample: Sample, params: dict, progress) -> Rendered:
    image = read_rgb(sample.inputs["image"], "read_image")
    width, height = sample.inputs["image_size"]
    if image.shape[:2] != (height, width):
        raise SampleError("read_image", f"{sample.inputs['image']} is {image.shape[1]}x{image.shape[0]}, "
                                        f"the annotations say {width}x{height}")
    progress.stage = "read_mask"
    mask = annotation_mask(sample.inputs["segmentation"], height, width)
    progress.stage = "read_background"
    place = read_rgb(sample.inputs["background"], "read_background")
    progress.stage = "composite"
    size = int(params["image_size"])
    out = np.round(np.clip(composite(image, mask, place, size), 0, 1) * 255).astype(np.uint8)
    meta = {**sample.meta, "height": size, "width": size}
    return Rendered(out, meta, label=meta["label"])
