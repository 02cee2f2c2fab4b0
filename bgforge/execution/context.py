"""How a build runs (RunConfig), what a worker is handed besides the recipe's parameters
(WorkerContext), and the shape of a stage chain.

`RunConfig` is the one run configuration from the CLI to the workers: `bgforge build`, `dry_run`,
both executors and the worker context read it, and each of its defaults is declared here once.
The executor makes the worker context (it alone knows the output folder as the workers see it,
and which device a worker was pinned to); the planner's `make_chain(params, ctx)` reads it.
Nothing of either is recorded in plan.json: the same plan runs anywhere, and changing them
never refuses a resume.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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


BATCH_SIZE = 8   # samples per model call: the one default of --batch-size


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
class RunConfig:
    """How a build executes; none of it changes the output bytes.

    slice_index / slice_count: this run's share of an array job (`--shard-index` / `--num-shards`
    on the command line): every slice_count-th shard of the plan, starting at slice_index.
    """

    workers: int = 1                    # CPU worker processes (1: in this process)
    devices: tuple[str, ...] = ()       # one worker process per entry, e.g. ("cuda:0", "cuda:0")
    batch_size: int = BATCH_SIZE
    io_threads: int | None = None       # None: resolve_io_threads' default for the device
    executor: str = "local"             # one of choices.EXECUTORS
    ray_address: str | None = None
    slice_index: int = 0
    slice_count: int = 1
    progress: bool = True               # a bar on a terminal, periodic log lines otherwise

    def __post_init__(self):
        object.__setattr__(self, "devices", tuple(self.devices or ()))

    @property
    def sliced(self) -> bool:
        return self.slice_count > 1

    @property
    def parallel(self) -> int:
        """Workers that run at once: one per device entry, else `workers`."""
        return len(self.devices) if self.devices else self.workers

    def on_cpu(self) -> RunConfig:
        """For a phase that runs no model (HSI composites, pasting): forked CPU workers, `workers` of
        them and at least as many as there were GPU workers."""
        return replace(self, devices=(), workers=max(self.workers, len(self.devices)))

    def task_size(self) -> int:
        return task_size(self.batch_size, self.io_threads, self.devices[0] if self.devices else None)

    def worker_context(self, out: Path, device: str | None = None) -> WorkerContext:
        return WorkerContext(Path(out), device, self.batch_size, self.io_threads)


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


DEFAULT_RUN = RunConfig()  # one worker in this process, batch BATCH_SIZE, the local executor
