"""The shape every stage shares: decode -> transform -> encode, where a sample that fails
becomes a `Failure` record (one line of errors.jsonl) and never stops the rest of its batch.

`attempt` is the one place where an exception turns into a Failure. On top of it:
  render_sample   one sample at a time: the stage supplies only its transformation, which
                  names the step it is in (`Step.stage`) so a failure is charged to it
  run_batched     a model call over a batch, retried one by one when it fails so that only
                  the bad sample is lost
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np

from ..io.encoding import Encoding
from ..records import IMAGE_EXTS, Failure, Output, Sample

T = TypeVar("T")
log = logging.getLogger(__name__)
_TRACED: set = set()   # (step, error type) whose traceback this process has logged (-v)


class Step:
    """The step of a stage now running: a failure is charged to it (a SampleError names its own)."""

    __slots__ = ("stage",)

    def __init__(self, stage: str) -> None:
        self.stage = stage




@dataclass
class Rendered:
    """What a stage's transformation hands back: the pixels to encode and the sample's record."""

    image: np.ndarray
    meta: dict
    label: object                                # written as the `cls` member
    files: dict = field(default_factory=dict)    # further members, already encoded
    folder_path: str | None = None               # the sample's path under --layout folder


def attempt(key: str, progress: Step, fn: Callable[[], T]) -> T | Failure:
    """fn(), or the Failure of sample `key` at the step `progress` had reached."""
    try:
        return fn()
    except Exception as exc:  # one bad sample is logged, never stops the run
        failure = Failure.of(key, exc, progress.stage)
        cause = (failure.stage, failure.error_type)
        if cause not in _TRACED and log.isEnabledFor(logging.DEBUG):  # -v: the first traceback of each cause
            _TRACED.add(cause)
            log.debug("first %s in %s (sample %s); later ones are only counted:", failure.error_type,
                      failure.stage, key, exc_info=exc)
        return failure


def render_sample(sample: Sample, encoding: Encoding, transform: Callable[[Step], Rendered | Output],
                  first_stage: str = "read_image") -> Output | Failure:
    """decode -> transform -> encode for one sample.

    `transform(progress)` decodes and computes, moving `progress.stage` along as it goes; it
    returns the pixels to encode (as the chain's `encoding`, read once from its recipe) or, when
    there is nothing to encode, the finished Output.
    """
    progress = Step(first_stage)

    def run() -> Output:
        done = transform(progress)
        if isinstance(done, Output):
            return done
        progress.stage = "encode"
        data = encoding.encode(done.image)
        return Output(key=sample.key, files={encoding.image_format: data, **done.files, "cls": str(done.label).encode()},
                      meta=done.meta, folder_path=done.folder_path)

    return attempt(sample.key, progress, run)


def run_batched(fn: Callable[[list], list], items: list, stage: str) -> list:
    """fn(items) for the whole batch; if it fails, fn([item]) one by one so only the bad sample is lost.

    Each item is a tuple whose first element is its Sample (the one a failure is charged to).
    An empty batch never reaches the model.
    """
    if not items:
        return []
    try:
        return fn(items)
    except Exception:
        progress = Step(stage)
        return [attempt(item[0].key, progress, lambda item=item: fn([item])[0]) for item in items]


# One image extension per output: Hugging Face's webdataset loader takes the members' names from the
# first samples, so an output whose samples mix .jpg and .png does not load. Stages that pass a
# source image through unchanged (segment, edit's and autobackswap's originals) keep its bytes only
# when they are already in the output's format, and re-encode them otherwise.
STORE_AS = "store_as"   # a sample input: the format segment stores a source of another format in


def source_format(inputs: dict) -> str:
    """The format io.images.sample_image hands back for a sample's image: jpg, or png for the rest."""
    if "image" in inputs:
        ext = Path(str(inputs["image"])).suffix.lower().lstrip(".")
    else:
        ext = next((e for e in IMAGE_EXTS if e in inputs.get("members", {})), "png")
    return "jpg" if ext in ("jpg", "jpeg") else "png"


def one_image_format(samples: list[Sample]) -> None:
    """Where a stage's inputs mix formats, mark the samples that are not PNG to be stored as PNG (lossless
    from their decoded pixels); inputs of one format keep their bytes (and their plan.json as before)."""
    formats = {source_format(s.inputs) for s in samples}
    if len(formats) > 1:
        for s in samples:
            if source_format(s.inputs) != "png":
                s.inputs[STORE_AS] = "png"


def stored_image(image: np.ndarray, raw: bytes, ext: str, image_format: str | None,
                 encoding: Encoding | None = None) -> tuple[str, bytes]:
    """(extension, bytes) of a source image as the output stores it: its own bytes when already in
    `image_format` (None: keep the source's), else re-encoded (`encoding`'s quality; PNG is lossless)."""
    if image_format is None or image_format == ext:
        return ext, raw
    return image_format, (encoding or Encoding()).as_format(image_format).encode(image)
