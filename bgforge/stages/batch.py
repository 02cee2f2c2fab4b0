"""A batch of decoded samples on its way through a model stage (segment, inpaint, edit share it).

Decoding happens here, once per sample; a sample that cannot be read becomes a Failure and the
rest of its batch goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ..backends.base import SegmentRequest
from ..io.images import sample_image, sample_mask
from ..records import Failure, Output, Sample
from .common import Step, attempt


class Loaded(NamedTuple):
    """A decoded sample: its pixels, the bytes they came from, and its segmentation prompt."""

    sample: Sample
    image: np.ndarray
    raw: bytes
    ext: str
    request: SegmentRequest


def request_for(sample: Sample, image: np.ndarray, params: dict) -> SegmentRequest:
    mask = sample_mask(sample.inputs, image.shape)
    boxes = sample.meta.get("boxes")
    text = sample.meta.get("text") or params.get("prompt")
    if text is None and params.get("prompt_from_label") and sample.meta.get("label") is not None:
        text = str(sample.meta["label"])
    return SegmentRequest(boxes=None if boxes is None else np.asarray(boxes, np.float32), text=text,
                          mask=None if mask is None else mask.astype(np.uint8) * 255)


def load_batch(samples: list[Sample], params: dict, stage: str = "read_image") -> tuple[list[Loaded], list[Failure]]:
    """Decode a batch; a sample that cannot be read becomes a Failure, the rest go on."""
    progress = Step(stage)

    def load(s: Sample) -> Loaded:
        image, raw, ext = sample_image(s.inputs, stage)
        return Loaded(s, image, raw, ext, request_for(s, image, params))

    results = [attempt(s.key, progress, lambda s=s: load(s)) for s in samples]
    return ([r for r in results if not isinstance(r, Failure)], [r for r in results if isinstance(r, Failure)])


@dataclass
class Batch:
    """One batch on its way through a model stage: its samples, those decoded, those that could
    not be, and (once computed) the model's result or Failure per decoded sample."""

    samples: list[Sample]
    ok: list[Loaded]
    failed: list[Failure]
    results: list = field(default_factory=list)

    @classmethod
    def load(cls, samples: list[Sample], params: dict) -> Batch:
        return cls(samples, *load_batch(samples, params))

    def outputs(self, done: dict) -> list[Output | Failure]:
        """Per sample, in order: its Failure, or its entry in `done` (key -> Output or Failure)."""
        by_key = {**{f.key: f for f in self.failed}, **done}
        return [by_key[s.key] for s in self.samples]
