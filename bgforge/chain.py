"""The shape of a stage chain and what a worker hands it: the vocabulary shared by the stages, the
planners (`make_chain(params, ctx)`) and the executors, declared below all three.

The executor makes the WorkerContext (it alone knows the output folder as the workers see it, and
which device a worker was pinned to); the planner's `make_chain(params, ctx)` reads it. Nothing of
it is recorded in plan.json: the same plan runs anywhere, and changing it never refuses a resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .records import Failure, Output, Sample

Chain = Callable[[list[Sample]], list[Output | Failure]]

# A GPU worker's CPU threads that decode the next batch and encode the last one while the model
# runs (stages/pipeline.py). CPU workers need none: they are one process per core already.
GPU_IO_THREADS = 2

BATCH_SIZE = 8   # samples per model call: the one default of --batch-size


def resolve_io_threads(io_threads: int | None, device: str | None) -> int:
    """--io-threads when given, else GPU_IO_THREADS on a GPU and 0 (decode and encode inline) elsewhere."""
    if io_threads is not None:
        return max(0, int(io_threads))
    return GPU_IO_THREADS if (device or "").startswith("cuda") else 0


@dataclass(frozen=True)
class WorkerContext:
    out: Path                   # this build's output folder; earlier phases are folders inside it
    device: str | None = None   # "cuda" once the executor pinned a GPU (CUDA_VISIBLE_DEVICES); None: backend default
    batch_size: int = BATCH_SIZE  # samples per model call (--batch-size)
    io_threads: int | None = None   # --io-threads; None: resolve_io_threads' default for the device

    def feeder_threads(self) -> int:
        """CPU threads that decode and encode around this worker's model calls."""
        return resolve_io_threads(self.io_threads, self.device)

    def phase_dir(self, folder: str) -> Path:
        """Where an earlier phase (e.g. `backgrounds`) of this build wrote its shards."""
        return self.out / folder


ChainFactory = Callable[[dict, WorkerContext], Chain]
