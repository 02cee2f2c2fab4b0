"""The executors, one row each, and the contract every one of them keeps.

`EXECUTORS` maps `--executor NAME` to an `ExecutorSpec` row: where its `execute` function lives
(`module:function`, imported only when a build uses it: Ray is imported by `--executor ray` alone),
the executor options it accepts (`RunConfig.executor_options`, each with its help) and one line of
help. The build calls `execute(...)` below, which looks the row up, checks the options against it,
runs it and records a --fail-fast stop in errors.jsonl.

Adding an executor (Dask, a SLURM submitter) is one module with an `execute` function that keeps
the `Executor` contract, and one row here (its name also goes in `choices.EXECUTORS`, which the
CLI's `--executor` choices are built from; a test checks that the two agree). Its options reach it
as `run.option(name)`; a CLI flag for one is a line beside `--ray-address` in cli/build.py.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .. import choices
from ..errors import BgforgeError
from . import failfast

if TYPE_CHECKING:
    from ..chain import ChainFactory
    from ..io.layout import OutputLayout
    from .context import RunConfig
    from .plan import ShardEntry
    from .stats import RunStats


class Executor(Protocol):
    def __call__(self, out: Path, pending: list[ShardEntry], chain_factory: ChainFactory, params: dict,
                 run: RunConfig, *, layout: OutputLayout, progress) -> RunStats:
        """Execute and commit the `pending` shards of the plan in `out`; return the RunStats of those committed.

        What an executor receives:
          out            the output folder; OUT/plan.json is written and holds every entry's samples.
          pending        this run's uncommitted plan entries (`plan.ShardEntry`: name, split, size), in plan
                         order, their `samples` emptied: the executor reads them back from plan.json
                         (`plan.iter_entries(out, names)`) one shard at a time, never all at once.
          chain_factory  `planner.make_chain`: pickles by reference (a module-level planner's method).
          params         the recipe's parameters (plain data), handed to chain_factory.
          run            the RunConfig: workers, devices, batch size, I/O threads, `executor_options` (the ones
                         its row declares, checked before it is called), fail_fast; never recorded anywhere.
          layout         the OutputLayout every ShardCommitter writes with.
          progress       a ProgressBar (`update(samples)`) or None.

        What it must guarantee (local.py and ray.py do each of these):
          1. Models load once per worker: each worker calls `chain_factory(params, run.worker_context(out,
             device))` once and keeps the chain for every sample it is sent; `run.devices` means one worker
             per entry, pinned to it (`devices.pin_worker`), else `run.workers` CPU workers.
          2. Same bytes whatever the worker count, slicing or executor: each shard's outputs go to one
             `commit.ShardCommitter` in plan order, and the chain is called on runs of `run.task_size()`
             consecutive samples starting at multiples of it within the shard, so every model call sees
             the same batch. `commit.run_shard(out, entry, chain, layout, run.task_size())` does both for
             a worker that writes its own shard. Shards may commit in any order (each is its own tar).
          3. A shard is committed only by `ShardCommitter.commit` (its tar renamed into place, the marker
             last). Whatever ends the run early, no shard is left half-written: the committers in flight are
             aborted and `commit.clean_partial(out, pending names)` removes their temporaries; committed
             shards stay, so a re-run resumes.
          4. A failed sample is a `records.Failure` the chain returned: added to its shard's committer
             (the marker's error records, then errors.jsonl), never dropped and never raised. Results also go
             to `RunStats.streak` (`see(outputs)` per chain call in plan order, or `see_shard(stats)` per
             committed shard), whose TooManyFailures (a WorkerDied) ends a run in which every sample fails.
          5. `run.fail_fast`: at the first Failure the shard holding it is not committed and
             `failfast.FailedFast` is raised (`failfast.check(outputs, shard)` where results are collected,
             or the chain wrapped in `failfast.stopping` under `run_shard`), carrying the Failure's
             traceback text, formatted in the worker; `execute` below records it in errors.jsonl.
          6. Ctrl-C and SIGTERM reach the parent as KeyboardInterrupt (`interrupts.Interrupted` under
             SIGTERM): abort the open shards, stop every worker at once (none left running or holding a
             GPU) and let it propagate; the build turns it into Interrupted with the committed count
             (exit 130 / 143).
          7. A worker that is lost (a killed process, a lost actor or node) or a run in which nothing
             finishes for too long raises `errors.WorkerDied`, one line naming the shard(s) (exit 1); the
             parent never waits forever on a result that cannot come.
          8. A configuration error no retry fixes (a checkpoint missing when the chain is built) is a
             BgforgeError (exit 2), raised after the other shards are stopped or finished.
          9. Returns RunStats (execution/stats.py) with `add(marker stats)` for each shard it committed.
        """


@dataclass(frozen=True)
class ExecutorSpec:
    """One executor: its `--executor` name, where its `execute` lives, the options it takes, one line of help."""

    name: str
    target: str                               # "module:function", imported on first use
    help: str
    options: tuple[tuple[str, str], ...] = ()  # (RunConfig.executor_options name, help)

    def load(self) -> Executor:
        module, _, function = self.target.partition(":")
        return getattr(importlib.import_module(module), function)

    def check(self, options) -> None:
        """Refuse an executor option (name, value) this row does not declare, in one line."""
        own = {name for name, _ in self.options}
        for name, _ in options:
            if name in own:
                continue
            owners = [row.name for row in EXECUTORS.values() if name in {n for n, _ in row.options}]
            flag = "--" + name.replace("_", "-")
            if owners:
                raise BgforgeError(f"{flag} is an option of --executor {' / '.join(owners)}, and this run uses "
                                   f"--executor {self.name}: drop {flag} or pass --executor {owners[0]}")
            raise BgforgeError(f"--executor {self.name} has no option {name!r} "
                               f"(it takes: {', '.join(sorted(own)) or 'none'})")

    def execute(self, out, pending, chain_factory: ChainFactory, params: dict, run: RunConfig, *,
                layout: OutputLayout, progress=None) -> RunStats:
        """Run this executor (see `Executor`); a --fail-fast stop is added to OUT/errors.jsonl before it propagates."""
        self.check(run.executor_options)
        try:
            return self.load()(out, pending, chain_factory, params, run, layout=layout, progress=progress)
        except failfast.FailedFast as stop:
            failfast.record(out, stop)
            raise


EXECUTORS: dict[str, ExecutorSpec] = {row.name: row for row in (
    ExecutorSpec("local", "bgforge.execution.local:execute",
                 "process pools on this machine: forked CPU workers, or one spawned worker per --devices entry"),
    ExecutorSpec("ray", "bgforge.execution.ray:execute",
                 "one actor per GPU (or CPU) of a Ray cluster, a shard per task; pip install 'bgforge[ray]'",
                 options=(("ray_address", "Ray cluster address (default: RAY_ADDRESS, else a local Ray instance)."),)),
)}
if tuple(EXECUTORS) != choices.EXECUTORS:  # the CLI's --executor choices come from choices.py
    raise AssertionError(f"choices.EXECUTORS {choices.EXECUTORS} must name the rows of EXECUTORS {tuple(EXECUTORS)}")


def get(name: str) -> ExecutorSpec:
    """The row of `--executor name`; a one-line BgforgeError naming the known executors otherwise."""
    try:
        return EXECUTORS[name]
    except (KeyError, TypeError):
        raise BgforgeError(f"--executor must be one of {', '.join(EXECUTORS)}, got {name!r}") from None


def check(run: RunConfig) -> None:
    """The run's executor exists and takes every executor option the run gives it."""
    get(run.executor).check(run.executor_options)


def execute(out, pending, chain_factory: ChainFactory, params: dict, run: RunConfig, *,
            layout: OutputLayout, progress=None) -> RunStats:
    """Run `pending` on the executor `run.executor` names (its row's `execute`)."""
    return get(run.executor).execute(out, pending, chain_factory, params, run, layout=layout, progress=progress)


def option_names() -> tuple[str, ...]:
    """Every executor option some row declares (the CLI hands these to RunConfig.executor_options)."""
    return tuple(dict.fromkeys(name for row in EXECUTORS.values() for name, _ in row.options))
