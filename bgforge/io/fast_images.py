"""JPEG decoding through OpenCV's libjpeg-turbo, straight into a numpy array.

Pillow and OpenCV bundle the same libjpeg-turbo and both decode with its defaults (accurate
integer IDCT, fancy upsampling), so for a YCbCr or greyscale JPEG OpenCV hands back Pillow's
pixels exactly (tests/test_fast_images.py pins it), ~0.2 ms sooner and without the PIL -> numpy
copy. `read_rgb(exact=True)` (and io.images.rgb_pixels, for bytes) takes that path and leaves every other file (CMYK JPEGs, whose
colour conversion differs; PNG; other formats) to Pillow. The `fast` paths may also ask for a
DCT-reduced image (`cover`), PIL's draft mode without PIL, which is not pixel-exact.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import SampleError
from .images import LIBJPEG_MODES, check_pixels, cv2_rgb, jpeg_header, open_image, pil_open, read_raw

_REDUCED = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2))


def _reduction(size: tuple[int, int], cover: tuple[int, int] | None) -> int:
    """The largest DCT reduction (1, 2, 4 or 8) whose image still covers `cover` (w, h)."""
    if cover is not None:
        w, h = size
        for factor, flag in _REDUCED:
            if -(-w // factor) >= cover[0] and -(-h // factor) >= cover[1]:
                return flag
    return cv2.IMREAD_COLOR


def read_rgb(path: str | Path, stage: str = "read", cover: tuple[int, int] | None = None,
             exact: bool = False) -> np.ndarray:
    """An RGB uint8 array; SampleError if unreadable.

    exact: pixel for pixel what io.images.open_image decodes (OpenCV for YCbCr/greyscale JPEGs,
    Pillow otherwise). Else `cover=(w, h)` may DCT-reduce a JPEG, never below w x h.
    """
    path = Path(path)
    try:
        raw = read_raw(path)
        header = jpeg_header(raw)
        if header is not None:
            fmt, (mode, size) = "JPEG", header
        else:
            with pil_open(raw, path) as im:  # the header only: format, mode and size
                fmt, mode, size = im.format, im.mode, im.size
        check_pixels(size, path)
    except FileNotFoundError:
        raise SampleError(stage, f"file not found: {path}") from None
    except Exception as exc:  # PIL raises many types for a corrupt header
        raise SampleError(stage, f"cannot decode {path}: {exc}") from None
    if fmt != "JPEG" or (exact and mode not in LIBJPEG_MODES):
        if exact:
            return np.asarray(open_image(path, stage=stage))
        flag = cv2.IMREAD_COLOR
    else:
        flag = cv2.IMREAD_COLOR if exact else _reduction(size, cover)
    arr = cv2_rgb(np.frombuffer(raw, np.uint8), flag)
    if arr is None:
        raise SampleError(stage, f"cannot decode {path}: not an image OpenCV can read")
    return arr
