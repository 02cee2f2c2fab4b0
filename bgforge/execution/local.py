"""Local executor: a process pool over chunks of samples, committing shards in plan order.

Workers build their stage chain once (models load once per worker) and turn chunks of
samples into outputs; the parent writes each shard's tar in sample order and commits it.
Work is cut finer than shards so that 2 workers stay busy even when a run has few shards,
and the output bytes do not depend on the worker count.
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import multiprocessing as mp
import multiprocessing.pool
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import replace
from pathlib import Path

from ..chain import ChainFactory, WorkerContext
from ..errors import WorkerDied
from ..io.layout import OutputLayout
from . import failfast, interrupts
from . import plan as planmod
from .commit import ShardCommitter, clean_partial
from .context import DEFAULT_RUN, RunConfig
from .devices import pin_worker
from .stats import RunStats

_CHAIN = None
_INIT_ERROR = None
# glibc mallopt parameters: serve buffers below 32 MB from the heap and keep up to 128 MB of it free
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def _reuse_freed_memory() -> None:
    """Keep freed image buffers in this process for the next sample.

    By default glibc hands each multi-megabyte decode/resize buffer back to the kernel when it is
    freed and page-faults it in again, zeroed, for the next image: ~1,200 faults an image on
    Waterbirds, ~1.3 ms of system time, as much as encoding it. A no-op off glibc.
    """
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 128 << 20)
    except (OSError, AttributeError):
        pass


def _init_worker(chain_factory: ChainFactory, params: dict, ctx: WorkerContext, devices=None, forked=False):
    """Build the stage chain once per worker (models load here, never per sample).

    With `devices`, each worker takes one device from the queue and pins itself to it with
    CUDA_VISIBLE_DEVICES before anything touches CUDA; its context names the device. An error is
    kept and raised on the first task: a Pool whose initializer raises would respawn workers forever.
    """
    global _CHAIN, _INIT_ERROR
    if mp.parent_process() is not None:  # a pool worker (not the in-process chain of --workers 1)
        interrupts.quiet_worker()  # first: Ctrl-C is the parent's to handle (no worker traceback)
    _reuse_freed_memory()
    try:
        if forked and "torch" in sys.modules:
            # libgomp deadlocks when a forked child touches the OpenMP pool its parent started;
            # one torch thread per CPU worker is also the fair share of the cores.
            import torch

            torch.set_num_threads(1)
        # a GPU worker pins itself to its GPU's physical id; CPU workers (forked or not) stay on the CPU
        ctx = replace(ctx, device=pin_worker(devices.get(timeout=60) if devices is not None else None))
        _CHAIN = chain_factory(params, ctx)
    except BaseException as exc:  # noqa: BLE001 - reported by _run_chunk
        _INIT_ERROR = exc


def _run_chunk(samples):
    if _INIT_ERROR is not None:
        raise _INIT_ERROR
    t0 = time.perf_counter()
    results = _CHAIN(samples)
    return results, time.perf_counter() - t0


def execute(out, shards, chain_factory: ChainFactory, params: dict, run: RunConfig = DEFAULT_RUN,
            layout: str | OutputLayout = "shards", progress=None) -> RunStats:
    """Run the given (pending) shard entries and commit each one.

    Each worker builds its chain as `chain_factory(params, run.worker_context(out, device))`.

    `shards`: the pending entries; their samples are read back from OUT/plan.json one shard at a
    time (as Ray tasks do), so the parent never holds more than the shards in flight. At most a few chunks per
    worker are queued (a bounded queue): memory does not grow with the dataset.
    run.devices: e.g. ("cuda:0", "cuda:1"): one worker process per entry (spawned, so CUDA starts
    clean in each); otherwise `run.workers` forked CPU processes (1 = in this process).
    A task is one model batch (`run.batch_size`), or several when workers pipeline decoding and
    encoding around the model (context.task_size). `run.fail_fast`: the parent stops at the first
    Failure it collects (in plan order), before adding it to its shard. The contract: executors.Executor.
    """
    out = Path(out)
    stats = RunStats()
    if not shards:
        return stats
    ctx = run.worker_context(out)
    per_task = run.task_size()
    devices, workers = run.devices, run.workers
    pool = None
    in_flight = deque()  # (committer, last chunk of its shard?, result), consumed in submission order
    try:
        pool = _make_pool(devices, workers, chain_factory, params, ctx)
        watch = _Watch() if pool is not None else None
        # A bounded queue: two chunks per worker plus two keep everyone busy without reading ahead.
        limit = 2 * (len(devices) if devices else workers) + 2 if pool is not None else 1
        for entry in planmod.iter_entries(out, {e.name for e in shards}):
            committer = ShardCommitter(out, entry, layout)
            starts = range(0, len(entry.samples), per_task)
            for j in starts:
                task = entry.samples[j:j + per_task]
                result = pool.apply_async(_run_chunk, (task,)) if pool is not None else _Done(_run_chunk(task))
                in_flight.append((committer, j == starts[-1], result))
                while len(in_flight) >= limit:
                    _collect(in_flight.popleft(), stats, progress, watch, in_flight, run.fail_fast)
        while in_flight:
            _collect(in_flight.popleft(), stats, progress, watch, in_flight, run.fail_fast)
    except BaseException:  # Ctrl-C, SIGTERM, a dead worker, an error: nothing may wait on a worker now
        with interrupts.ignored():  # a second Ctrl-C cannot cut the cleanup short
            for c in {id(c): c for c, _, _ in in_flight}.values():
                c.abort()
            if pool is not None or _WORKERS:
                _stop_now(pool)
            # a shard opened between two statements (its temporary created, not yet in flight) too:
            # these shards are this run's alone (the lock), so every temporary of theirs is ours
            clean_partial(out, {e.name for e in shards})
        raise
    if pool is not None:
        _shutdown(pool)
    return stats


def _make_pool(devices, workers: int, chain_factory: ChainFactory, params: dict, ctx: WorkerContext):
    """One spawned worker per device, `workers` forked CPU workers, or None (the chain built in this process)."""
    if devices:
        spawn = mp.get_context("spawn")
        queue = spawn.Manager().Queue()
        for d in devices:
            queue.put(d)
        return _start_pool(spawn, len(devices), _init_worker, (chain_factory, params, ctx, queue))
    if workers > 1:
        # Objects alive now move to a permanent generation, so the garbage collector in forked
        # workers does not touch, and copy, their pages.
        gc.freeze()
        try:
            return _start_pool(mp.get_context("fork"), workers, _init_worker, (chain_factory, params, ctx, None, True))
        finally:
            gc.unfreeze()
    _init_worker(chain_factory, params, ctx)
    return None


def _shutdown(pool) -> None:
    """Stop the pool. When a worker died, it may have died holding the task queue's lock, and
    Pool.terminate() then waits for that lock forever: the live workers are killed first and
    terminate() gets a few seconds on a daemon thread (it unregisters itself at once, so the
    interpreter's exit does not wait on it either)."""
    if not any(p.exitcode not in (None, 0) for p in _WORKERS):
        pool.terminate()
        pool.join()
        return
    for proc in _WORKERS:
        if proc.exitcode is None:
            proc.kill()
    stopper = threading.Thread(target=pool.terminate, daemon=True, name="bgforge-pool-stop")
    stopper.start()
    stopper.join(timeout=5)


_WORKERS: list = []  # every process the current pool started, replacements included (_WatchedPool)


class _WatchedPool(multiprocessing.pool.Pool):
    """A Pool that remembers each worker process it starts. Pool replaces a worker that the OOM killer
    (or any signal) ended, but the task that worker was running is lost and its AsyncResult never
    completes: the parent would wait forever. Knowing every worker, the parent sees the dead one."""

    @staticmethod
    def Process(ctx, *args, **kwds):  # noqa: N802 - Pool's own hook name
        proc = ctx.Process(*args, **kwds)
        _WORKERS.append(proc)
        return proc


def _start_pool(ctx, processes: int, initializer, initargs) -> _WatchedPool:
    """The pool, its workers started with SIGINT and SIGTERM blocked (interrupts.blocked): each sets
    its handlers before it accepts them, so none is interrupted half way into its start."""
    _WORKERS.clear()
    with interrupts.blocked():
        return _WatchedPool(processes, initializer=initializer, initargs=initargs, context=ctx)


def _stop_now(pool) -> None:
    """End every worker at once (a run that is interrupted or failed). Pool.terminate() waits for the
    task queue's lock, which a killed worker (or an idle one, blocked reading the queue) may hold:
    it only runs on a daemon thread, given a second, after it has stopped the pool replacing workers,
    and each worker is killed and reaped here (the pool remembers them all, replacements included)."""
    stopper = None
    if pool is not None:
        stopper = threading.Thread(target=pool.terminate, daemon=True, name="bgforge-pool-stop")
        stopper.start()
        stopper.join(timeout=0.2)  # terminate() first marks the pool so that no replacement starts
    deadline = time.monotonic() + 5
    while True:
        alive = [p for p in list(_WORKERS) if p.exitcode is None]
        for proc in alive:
            try:
                proc.kill()
            except (OSError, ValueError):
                pass
        for proc in alive:
            proc.join(timeout=max(0.0, deadline - time.monotonic()))
        if not any(p.exitcode is None for p in list(_WORKERS)) or time.monotonic() > deadline:
            break
    if stopper is not None:
        stopper.join(timeout=1)


class _Watch:
    """Waits for a result while checking, every POLL seconds, that no worker of the pool died."""

    POLL = 0.5

    def get(self, result, in_flight):
        while True:
            try:
                return result.get(timeout=self.POLL)
            except multiprocessing.TimeoutError:
                dead = next((p for p in _WORKERS if p.exitcode not in (None, 0)), None)
                if dead is not None:
                    raise WorkerDied(_death_line(dead, in_flight)) from None


def _death_line(proc, in_flight) -> str:
    code = proc.exitcode
    how = f"killed by {signal.Signals(-code).name}" if code < 0 and -code in signal.valid_signals() \
        else f"exited with code {code}"
    shards = sorted({c.entry.name for c, _, r in in_flight if not r.ready()})
    oom = " (SIGKILL is often the out-of-memory killer: try fewer --workers or a smaller --batch-size)" \
        if code == -signal.SIGKILL else ""
    return (f"a worker (pid {proc.pid}) was {how} while shard {', '.join(shards) or '?'} was running{oom}; "
            "committed shards are kept: re-run the same command to resume")


class _Done:
    """The in-process stand-in for an AsyncResult."""

    def __init__(self, value):
        self.value = value

    def get(self, timeout=None):
        return self.value

    def ready(self):
        return True


def _collect(item, stats: RunStats, progress, watch: _Watch | None, in_flight, fail_fast: bool = False) -> None:
    committer, last, result = item
    try:
        outputs, seconds = watch.get(result, [item, *in_flight]) if watch is not None else result.get()
        if fail_fast:
            failfast.check(outputs, committer.entry.name)   # the shard is aborted below, never committed
        committer.add(outputs, seconds)
        stats.streak.see(outputs)
        if progress is not None:
            progress.update(len(outputs))
        if last:
            stats.add(committer.commit())
    except BaseException:
        committer.abort()  # no .tar.tmp left behind (a full disk, a dead worker, Ctrl-C)
        raise
