"""Mask operations every model stage shares: the dilation margin an inpainter needs (square, or the
row-only dilation ASPIRE's reference performs) and removing every object of an image with an
inpainter (one call for a batch's unions, or one object at a time as in Corner Cases).
"""

from __future__ import annotations

import numpy as np

from bgforge.errors import BgforgeError, SampleError

from .base import Inpainter

OPENCV_MAX_CHANNELS = 512   # CV_CN_MAX of the OpenCV 4 the reference ran (OpenCV 5 allows 128)
TOO_WIDE_FOR_REFERENCE = "the reference's dilation cannot run"   # in the Failure's message (the edit summary counts it)


def _rows_dilation(m: np.ndarray, kernel: int) -> np.ndarray:
    """OpenCV 4's dilation of a 1 x H image of W channels by a kernel x kernel square, computed
    without OpenCV (whose channel limit differs by version): along the rows only, anchor kernel//2,
    so dst[y] = max(src[y - kernel//2 .. y - kernel//2 + kernel - 1])."""
    out = np.zeros_like(m)
    h = m.shape[0]
    for i in range(kernel):
        shift = i - kernel // 2     # dst[y] takes src[y + shift]
        lo, hi = max(0, -shift), min(h, h - shift)
        if lo < hi:
            out[lo:hi] |= m[lo + shift:hi + shift]
    return out


def dilate(mask: np.ndarray, kernel: int = 15, shape: str = "square") -> np.ndarray:
    """Grow a bool mask by a kernel x kernel square (k//2 pixels each side).

    Inpainting needs a margin: segmentation edges are soft and the object's halo/shadow
    would otherwise be copied into the fill.

    shape "vertical": what ASPIRE's `dilate_mask` does to the (1, H, W) mask it is handed
    (Inpaint-Anything `utils/utils.py`, called from `spurious_objects_detection.py`): OpenCV
    reads a 1 x H image of W channels, so the dilation runs along the image's rows only, and an
    image wider than OpenCV's 512 channels raises (the reference then skipped the phrase;
    here it is that sample's logged failure).
    """
    import cv2

    m = np.asarray(mask).astype(bool)
    if kernel is None or int(kernel) <= 1:
        return m.copy()
    k = np.ones((int(kernel), int(kernel)), dtype=np.uint8)
    if shape == "vertical":
        if m.shape[1] > OPENCV_MAX_CHANNELS:
            raise SampleError("inpaint", f"{TOO_WIDE_FOR_REFERENCE} on an image {m.shape[1]} px wide (OpenCV "
                                         f"reads its width as channels, at most {OPENCV_MAX_CHANNELS}); the reference "
                                         "skipped such phrases; pass --dilation-shape square to dilate it")
        return _rows_dilation(m, int(kernel))
    return cv2.dilate(m.astype(np.uint8), k, iterations=1).astype(bool)


def _object_stack(image: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(N,H,W) bool object masks of `image` from (N,H,W) or (H,W) masks (or a one-line error)."""
    m = np.asarray(masks).astype(bool)
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3 or m.shape[1:] != image.shape[:2]:
        raise BgforgeError(
            f"masks of shape {m.shape} do not match image {image.shape[:2]}; expected (N,H,W)"
        )
    return m


def remove_objects_batch(inpainter: Inpainter, images: list[np.ndarray], masks: list[np.ndarray], kernel: int = 15,
                         one_by_one: bool = False, shape: str = "square") -> list[tuple[np.ndarray, np.ndarray]]:
    """Remove every object of each image; per image: (the filled image, the dilated hole).

    Default: one inpaint of each image's dilated union, one inpainter call for the batch.
    one_by_one=True inpaints each dilated mask in turn, feeding the result on (as in "Corner
    Cases"), which lets a large inpainter fill each hole with context that no longer contains
    the other objects' borders. An image without objects comes back as a copy.
    """
    stacks = [_object_stack(img, m) for img, m in zip(images, masks)]
    holes = [dilate(m.any(axis=0), kernel, shape) for m in stacks]
    out = [img if hole.any() else img.copy() for img, hole in zip(images, holes)]
    todo = [i for i, hole in enumerate(holes) if hole.any()]
    if one_by_one:
        for i in todo:
            for single in stacks[i]:
                if single.any():
                    out[i] = inpainter.inpaint([out[i]], [dilate(single, kernel, shape)])[0]
    elif todo:
        for i, filled in zip(todo, inpainter.inpaint([images[i] for i in todo], [holes[i] for i in todo])):
            out[i] = filled
    return list(zip(out, holes))


def remove_objects(inpainter: Inpainter, image: np.ndarray, masks: np.ndarray, kernel: int = 15,
                   one_by_one: bool = False) -> np.ndarray:
    """`image` without the objects in `masks` ((N,H,W) or (H,W) bool): see remove_objects_batch."""
    return remove_objects_batch(inpainter, [image], [masks], kernel, one_by_one)[0][0]
