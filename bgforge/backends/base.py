"""Backend interfaces: segmenters (image + prompt -> object masks) and inpainters.

All arrays at this boundary are numpy so the pipeline never needs to know whether a
backend is classical (OpenCV) or neural (torch).

The contract a backend implements (its registry row is described in registry.py):

  Segmenter          `segment(images, requests) -> results`: one SegmentRequest (boxes, text or
                     a provided mask) and one SegmentResult ((N,H,W) bool masks, xyxy boxes,
                     scores) per HxWx3 uint8 RGB image; a whole chunk per call, so a model batches it.
  GroundedSegmenter  a text-prompted Segmenter in two parts callers may run apart: `detect(images,
                     captions) -> Detection`s and `segment_boxes(images, boxes) -> SegmentResult`s.
  Inpainter          `inpaint(images, masks) -> images`: HxW bool holes (already dilated) filled,
                     each output the size of its input.
  construction       `Backend(model, **settings)` takes the built model (None for a classical
                     backend); `Backend.from_options(**options)` loads it from the row's options
                     (checkpoint, device, ...) and is what the registry calls, once per worker.
                     Results depend on the image and its prompt only, never on which other images
                     share the call (deterministic, so bytes do not depend on chunking).
  errors             a bad setting or file is a BgforgeError (one line, how to fix it); a bad image
                     raises anything, and the stage turns it into that sample's Failure.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from bgforge.errors import BgforgeError


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


class _FromOptions:
    @classmethod
    def from_options(cls, *args, **options):
        """The backend built from its registry row's options; a model backend loads its model here and
        hands it to its constructor. A backend without a model takes its options as they are."""
        return cls(*args, **options)


class Segmenter(_FromOptions, ABC):
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


class Inpainter(_FromOptions, ABC):
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
