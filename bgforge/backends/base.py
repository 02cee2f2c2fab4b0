"""Backend interfaces: segmenters (image + prompt -> object masks) and inpainters.

All arrays at this boundary are numpy so the pipeline never needs to know whether a
backend is classical (OpenCV) or neural (torch).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from bgforge.errors import BgforgeError, SampleError


@dataclass
class SegmentRequest:
    """The prompt for one image."""

    boxes: np.ndarray | None = None  # (N,4) float xyxy, pixel coords; may be empty
    text: str | None = None  # text prompt for grounded-sam, e.g. "bird . dog"
    mask: np.ndarray | None = None  # (H,W) uint8 0..255 for `provided`


@dataclass
class SegmentResult:
    masks: np.ndarray  # (N,H,W) bool, one per object
    boxes: np.ndarray  # (N,4) float32 xyxy at image scale
    scores: np.ndarray  # (N,) float32; 1.0 for classical backends
    backend: str
    phrases: list[str] = field(default_factory=list)  # grounded-sam only: matched words

    def union(self) -> np.ndarray:
        """(H,W) bool: pixels covered by any object."""
        if self.masks.shape[0] == 0:
            return np.zeros(self.masks.shape[1:], dtype=bool)
        return self.masks.any(axis=0)

    @staticmethod
    def empty(height: int, width: int, backend: str) -> "SegmentResult":
        return SegmentResult(
            masks=np.zeros((0, height, width), dtype=bool),
            boxes=np.zeros((0, 4), dtype=np.float32),
            scores=np.zeros((0,), dtype=np.float32),
            backend=backend,
        )


class Segmenter(ABC):
    name: str = "segmenter"

    @abstractmethod
    def segment(
        self, images: list[np.ndarray], requests: list[SegmentRequest]
    ) -> list[SegmentResult]:
        """images: HxWx3 uint8 RGB; one request per image; returns one result per image."""


class Detection(NamedTuple):
    """What a text-prompted detector found in one image."""

    boxes: np.ndarray  # (N,4) float32 xyxy at image scale
    scores: np.ndarray  # (N,) float32 detector confidence
    phrases: list[str]  # the caption words each box matched


class GroundedSegmenter(Segmenter):
    """A text-prompted segmenter made of two separable parts: a detector (caption -> boxes) and a
    box-prompted segmenter. Callers may run them apart, e.g. to ground each phrase of an image on
    its own and then segment all of that image's boxes in one request (one image encoding)."""

    @abstractmethod
    def detect(self, images: list[np.ndarray], captions: list[str]) -> list[Detection]:
        """One caption per image; returns one Detection per image."""

    @abstractmethod
    def segment_boxes(self, images: list[np.ndarray], boxes: list[np.ndarray]) -> list[SegmentResult]:
        """(N,4) xyxy boxes per image -> one mask per box."""


class Inpainter(ABC):
    name: str = "inpainter"

    @abstractmethod
    def inpaint(self, images: list[np.ndarray], masks: list[np.ndarray]) -> list[np.ndarray]:
        """masks: HxW bool, already dilated; returns HxWx3 uint8 of the input size."""


# ---------------------------------------------------------------- input checks
def check_batch(images: list[np.ndarray], others: list, what: str) -> None:
    """Fail early with a clear message instead of deep inside a model."""
    if len(images) != len(others):
        raise BgforgeError(
            f"got {len(images)} images but {len(others)} {what}; pass exactly one per image"
        )
    for i, img in enumerate(images):
        if not (isinstance(img, np.ndarray) and img.ndim == 3 and img.shape[2] == 3
                and img.dtype == np.uint8):
            shape = getattr(img, "shape", None)
            dtype = getattr(img, "dtype", type(img).__name__)
            raise BgforgeError(
                f"image {i} must be an HxWx3 uint8 RGB array, got shape {shape} dtype {dtype}"
            )


def check_masks(images: list[np.ndarray], masks: list) -> list[np.ndarray]:
    """Inpainting masks as HxW bool, one per image and of its size (or a one-line error)."""
    check_batch(images, masks, "masks")
    out = []
    for i, (img, m) in enumerate(zip(images, masks)):
        m = np.asarray(m).astype(bool)
        if m.shape != img.shape[:2]:
            raise BgforgeError(f"mask {i} is {m.shape} but its image is {img.shape[:2]}; sizes must match")
        out.append(m)
    return out


def as_boxes(boxes: ArrayLike | None) -> np.ndarray:
    """(N,4) float32 view of a request's boxes (None -> empty)."""
    if boxes is None:
        return np.zeros((0, 4), dtype=np.float32)
    b = np.asarray(boxes, dtype=np.float32)
    if b.size == 0:
        return np.zeros((0, 4), dtype=np.float32)
    if b.ndim == 1 and b.shape[0] == 4:
        b = b[None]
    if b.ndim != 2 or b.shape[1] != 4:
        raise BgforgeError(f"boxes must have shape (N,4) xyxy, got {b.shape}")
    return b


def clip_boxes_int(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Integer pixel rectangles [x0,y0,x1,y1) clipped to the image.

    Box coords are continuous xyxy, so pixel i is inside when x0 <= i < x1; floor/ceil
    keeps any partially covered pixel (better to remove a sliver too much than leave one).
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x0 = np.clip(np.floor(b[:, 0]), 0, width).astype(int)
    y0 = np.clip(np.floor(b[:, 1]), 0, height).astype(int)
    x1 = np.clip(np.ceil(b[:, 2]), 0, width).astype(int)
    y1 = np.clip(np.ceil(b[:, 3]), 0, height).astype(int)
    return np.stack([x0, y0, x1, y1], axis=1)


def mask_bbox(mask: np.ndarray) -> np.ndarray:
    """float32 xyxy of a bool mask's bounding box (pixel-edge convention); zeros if empty."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return np.zeros(4, dtype=np.float32)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float32)


# ---------------------------------------------------------------- mask helpers
DILATION_SHAPES = ("square", "vertical")
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
