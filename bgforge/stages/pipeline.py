"""Keep a model fed: the next batch decodes and the last one encodes on CPU threads while the
model runs the current one.

A model stage is three steps over a batch of samples:
  load     decode the inputs (CPU; Pillow and OpenCV release the GIL while they decode)
  compute  the model calls (on the worker's own thread, where its CUDA context lives)
  finish   post-process and encode (CPU)
`feed` runs a task's batches through them with `threads` CPU threads: loading runs up to
LOAD_AHEAD batches ahead of the model and finishing runs behind it. Outputs come back in sample
order and each batch is computed exactly as it would be inline, so the bytes do not depend on
the thread count. threads = 0 runs each batch load -> compute -> finish on the calling thread.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from ..chain import Chain, WorkerContext
from ..records import Failure, Output, Sample

LOAD_AHEAD = 2  # decoded batches waiting for the model: one ready, one on its way


@dataclass(frozen=True)
class ModelStage:
    load: Callable[[list[Sample]], Any]
    compute: Callable[[Any], Any]
    finish: Callable[[Any], list[Output | Failure]]

    def __call__(self, samples: list[Sample]) -> list[Output | Failure]:
        """One batch, inline."""
        return self.finish(self.compute(self.load(samples)))


def feed(stage: ModelStage, samples: list[Sample], batch_size: int, threads: int) -> list[Output | Failure]:
    """The stage over `samples` in batches of `batch_size`, loading and finishing on `threads` threads."""
    batches = [samples[i:i + batch_size] for i in range(0, len(samples), max(1, batch_size))]
    if threads <= 0 or len(batches) < 2:
        return [out for b in batches for out in stage(b)]
    # A pool per task, not per worker: no thread outlives the call, so a later fork (the next
    # phase's CPU pool) never copies a process with threads in it.
    with ThreadPoolExecutor(threads, thread_name_prefix="bgforge-io") as pool:
        loading = deque(pool.submit(stage.load, b) for b in batches[:LOAD_AHEAD])
        waiting = batches[LOAD_AHEAD:]
        finishing = []
        while loading:
            loaded = loading.popleft().result()
            if waiting:
                loading.append(pool.submit(stage.load, waiting.pop(0)))
            finishing.append(pool.submit(stage.finish, stage.compute(loaded)))
        return [out for f in finishing for out in f.result()]


def pipelined(stage: ModelStage, ctx: WorkerContext) -> Chain:
    """The worker's chain: each task fed through `stage` in --batch-size batches."""
    threads = ctx.feeder_threads()
    return lambda samples: feed(stage, samples, ctx.batch_size, threads)
