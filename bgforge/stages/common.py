"""The shape every stage shares: decode -> transform -> encode, where a sample that fails
becomes a `Failure` record (one line of errors.jsonl) and never stops the rest of its batch.

`attempt` is the one place where an exception turns into a Failure. On top of it:
  render_sample   one sample at a time: the stage supplies only its transformation, which
                  names the step it is in (`Progress.stage`) so a failure is charged to it
  run_batched     a model call over a batch, retried one by one when it fails so that only
                  the bad sample is lost
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, TypeVar

import numpy as np

from ..io.encoding import Encoding
from ..records import Failure, Output, Sample

T = TypeVar("T")


class Progress:
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


def attempt(key: str, progress: Progress, fn: Callable[[], T]) -> T | Failure:
    """fn(), or the Failure of sample `key` at the step `progress` had reached."""
    try:
        return fn()
    except Exception as exc:  # one bad sample is logged, never stops the run
        return Failure.of(key, exc, progress.stage)


def render_sample(sample: Sample, encoding: Encoding, transform: Callable[[Progress], Rendered | Output],
                  first_stage: str = "read_image") -> Output | Failure:
    """decode -> transform -> encode for one sample.

    `transform(progress)` decodes and computes, moving `progress.stage` along as it goes; it
    returns the pixels to encode (as the chain's `encoding`, read once from its recipe) or, when
    there is nothing to encode, the finished Output.
    """
    progress = Progress(first_stage)

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
        progress = Progress(stage)
        return [attempt(item[0].key, progress, lambda item=item: fn([item])[0]) for item in items]
