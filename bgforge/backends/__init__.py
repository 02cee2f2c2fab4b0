"""Segmentation and inpainting backends (classical, SAM, GroundingDINO+SAM, LaMa)."""

from .base import (
    Inpainter,
    Segmenter,
    SegmentRequest,
    SegmentResult,
    dilate,
    remove_objects,
)
from .registry import INPAINTERS, SEGMENTERS, get_inpainter, get_segmenter

__all__ = [
    "INPAINTERS", "SEGMENTERS", "Inpainter", "SegmentRequest", "SegmentResult", "Segmenter",
    "dilate", "get_inpainter", "get_segmenter", "remove_objects",
]
