"""How a build runs (RunConfig) and the worker context it hands out (bgforge/chain.py declares
WorkerContext and the shape of a stage chain, below the stages, planners and executors).

`RunConfig` is the one run configuration from the CLI to the workers: `bgforge build`, `dry_run`,
both executors and the worker context read it, and each of its defaults is declared here once.
Nothing of it is recorded in plan.json: the same plan runs anywhere, and changing it never
refuses a resume.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..chain import BATCH_SIZE, WorkerContext, resolve_io_threads

# Model batches per task when a worker pipelines: the first batch of a task is the only one whose
# decoding the model waits for.
PIPELINE_DEPTH = 4


def task_size(batch_size: int, io_threads: int | None, device: str | None) -> int:
    """Samples per executor task: one model batch, or PIPELINE_DEPTH of them when workers pipeline.

    Tasks start at multiples of the batch within each shard either way, so every model call sees
    the same samples and the output bytes do not depend on it.
    """
    return batch_size * (PIPELINE_DEPTH if resolve_io_threads(io_threads, device) > 0 else 1)


@dataclass(frozen=True)
class RunConfig:
    """How a build executes; none of it changes the output bytes.

    slice_index / slice_count: this run's share of an array job (`--slice-index` / `--slice-count`
    on the command line): every slice_count-th shard of the plan, starting at slice_index.
    """

    workers: int = 1                    # CPU worker processes (1: in this process)
    devices: tuple[str, ...] = ()       # one worker process per entry, e.g. ("cuda:0", "cuda:0")
    batch_size: int = BATCH_SIZE
    io_threads: int | None = None       # None: resolve_io_threads' default for the device
    executor: str = "local"             # a row of execution/executors.py EXECUTORS
    # the executor's own options, as (name, value) pairs (a dict is accepted): only those its row declares,
    # e.g. (("ray_address", "10.0.0.1:6379"),) for ray; executors.check refuses the others
    executor_options: tuple[tuple[str, object], ...] = ()
    slice_index: int = 0
    slice_count: int = 1
    progress: bool = True               # a bar on a terminal, periodic log lines otherwise
    retry_errors: bool = False          # rebuild committed shards that recorded failed samples (retry.py)
    fail_fast: bool = False             # stop at the first failed sample, printing its traceback (failfast.py)

    def __post_init__(self):
        object.__setattr__(self, "devices", tuple(self.devices or ()))
        options = self.executor_options
        pairs = options.items() if isinstance(options, dict) else (options or ())
        object.__setattr__(self, "executor_options", tuple(sorted((str(k), v) for k, v in pairs)))

    def option(self, name: str, default=None):
        """The executor option `name` (executor_options), or `default` when it was not given."""
        return dict(self.executor_options).get(name, default)

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


DEFAULT_RUN = RunConfig()  # one worker in this process, batch BATCH_SIZE, the local executor
