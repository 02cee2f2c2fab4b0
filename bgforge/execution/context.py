"""What a worker is handed besides the recipe's parameters, and the shape of a stage chain.

The executor makes the context (it alone knows the output folder as the workers see it, and
which device a worker was pinned to); the planner's `make_chain(params, ctx)` reads it. Nothing
of it is recorded in plan.json: the same plan runs anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..records import Failure, Output, Sample

Chain = Callable[[list[Sample]], list[Output | Failure]]

# A GPU worker's CPU threads that decode the next batch and encode the last one while the model
# runs (stages/pipeline.py). CPU workers need none: they are one process per core already.
GPU_IO_THREADS = 2
# Model batches per task when a worker pipelines: the first batch of a task is the only one whose
# decoding the model waits for.
PIPELINE_DEPTH = 4


def resolve_io_threads(io_threads: int | None, device: str | None) -> int:
    """--io-threads when given, else GPU_IO_THREADS on a GPU and 0 (decode and encode inline) elsewhere."""
    if io_threads is not None:
        return max(0, int(io_threads))
    return GPU_IO_THREADS if (device or "").startswith("cuda") else 0


def task_size(batch_size: int, io_threads: int | None, device: str | None) -> int:
    """Samples per executor task: one model batch, or PIPELINE_DEPTH of them when workers pipeline.

    Tasks start at multiples of the batch within each shard either way, so every model call sees
    the same samples and the output bytes do not depend on it.
    """
    return batch_size * (PIPELINE_DEPTH if resolve_io_threads(io_threads, device) > 0 else 1)


@dataclass(frozen=True)
class WorkerContext:
    out: Path                   # this build's output folder; earlier phases are folders inside it
    device: str | None = None   # "cuda" once the executor pinned a GPU (CUDA_VISIBLE_DEVICES); None: backend default
    batch_size: int = 8         # samples per model call (--batch-size)
    io_threads: int | None = None   # --io-threads; None: resolve_io_threads' default for the device

    def feeder_threads(self) -> int:
        """CPU threads that decode and encode around this worker's model calls."""
        return resolve_io_threads(self.io_threads, self.device)

    def phase_dir(self, folder: str) -> Path:
        """Where an earlier phase (e.g. `backgrounds`) of this build wrote its shards."""
        return self.out / folder


ChainFactory = Callable[[dict, WorkerContext], Chain]
