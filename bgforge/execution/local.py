"""Local executor: a process pool over chunks of samples, committing shards in plan order.

Workers build their stage chain once (models load once per worker) and turn chunks of
samples into outputs; the parent writes each shard's tar in sample order and commits it.
Work is cut finer than shards so that 2 workers stay busy even when a run has few shards,
and the output bytes do not depend on the worker count.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..io.shards import ShardWriter, write_atomic
from ..records import Failure
from . import plan as planmod

CHUNK = 8  # samples per task: small enough to balance, large enough to amortise IPC

_CHAIN = None
_INIT_ERROR = None


def _init_worker(chain_factory, params, devices=None, forked=False):
    """Build the stage chain once per worker (models load here, never per sample).

    With `devices`, each worker takes one device from the queue and pins itself to it with
    CUDA_VISIBLE_DEVICES before anything touches CUDA. An error is kept and raised on the first
    task: a Pool whose initializer raises would respawn workers forever.
    """
    global _CHAIN, _INIT_ERROR
    try:
        if forked and "torch" in sys.modules:
            # libgomp deadlocks when a forked child touches the OpenMP pool its parent started;
            # one torch thread per CPU worker is also the fair share of the cores.
            import torch

            torch.set_num_threads(1)
        if devices is not None:
            device = devices.get(timeout=60)
            if device.startswith("cuda"):
                os.environ["CUDA_VISIBLE_DEVICES"] = device.split(":", 1)[1] if ":" in device else "0"
                device = "cuda"
            params = {**params, "device": device}
        _CHAIN = chain_factory(params)
    except BaseException as exc:  # noqa: BLE001 - reported by _run_chunk
        _INIT_ERROR = exc


def _run_chunk(task):
    if _INIT_ERROR is not None:
        raise _INIT_ERROR
    shard_index, samples = task
    t0 = time.perf_counter()
    results = _CHAIN(samples)
    return shard_index, results, time.perf_counter() - t0


@dataclass
class RunStats:
    shards: int = 0
    samples: int = 0
    errors: int = 0
    seconds: float = 0.0
    errors_by_stage: dict = field(default_factory=dict)

    def add(self, shard_stats: dict) -> None:
        self.shards += 1
        self.samples += shard_stats["samples"]
        self.errors += shard_stats["errors"]
        self.seconds += shard_stats["seconds"]
        for stage, types in shard_stats["errors_by_stage"].items():
            for t, n in types.items():
                key = f"{stage}/{t}"
                self.errors_by_stage[key] = self.errors_by_stage.get(key, 0) + n


def execute(out, shards, chain_factory, params, workers: int = 1, layout: str = "shards", progress=None,
            devices=None, chunk: int = CHUNK) -> RunStats:
    """Run the given (pending) shard entries and commit each one.

    devices: e.g. ["cuda:0", "cuda:1"]: one worker process per device (spawned, so CUDA starts
    clean in each); otherwise `workers` forked CPU processes (1 = in this process).
    """
    out = Path(out)
    stats = RunStats()
    if not shards:
        return stats
    tasks = [(i, entry.samples[j:j + chunk]) for i, entry in enumerate(shards) for j in range(0, len(entry.samples), chunk)]
    remaining = [-(-len(e.samples) // chunk) for e in shards]  # chunks left per shard
    open_shards = {}
    pool = None
    if devices:
        ctx = mp.get_context("spawn")
        queue = ctx.Manager().Queue()
        for d in devices:
            queue.put(d)
        pool = ctx.Pool(len(devices), initializer=_init_worker, initargs=(chain_factory, params, queue))
    elif workers > 1:
        # Objects alive now (the plan) move to a permanent generation, so the garbage collector
        # in forked workers does not touch, and copy, their pages.
        gc.freeze()
        pool = mp.get_context("fork").Pool(workers, initializer=_init_worker,
                                           initargs=(chain_factory, params, None, True))
        gc.unfreeze()
    if pool is None:
        _init_worker(chain_factory, params)
        results = map(_run_chunk, tasks)
    else:
        # imap keeps results in task order, so bytes do not depend on which worker ran what.
        results = pool.imap(_run_chunk, tasks, chunksize=1)
    try:
        for shard_index, outputs, seconds in results:
            entry = shards[shard_index]
            committer = open_shards.get(shard_index)
            if committer is None:
                committer = open_shards[shard_index] = ShardCommitter(out, entry, layout)
            committer.add(outputs, seconds)
            if progress is not None:
                progress.update(len(outputs))
            remaining[shard_index] -= 1
            if remaining[shard_index] == 0:
                stats.add(open_shards.pop(shard_index).commit())
    finally:
        for committer in open_shards.values():
            committer.abort()
        if pool is not None:
            pool.terminate()
            pool.join()
    return stats


class ShardCommitter:
    """Collects one shard's outputs in plan order and commits it (tar rename, then stats marker)."""

    def __init__(self, out, entry, layout: str = "shards"):
        self.out, self.entry, self.layout = Path(out), entry, layout
        self.writer = ShardWriter(planmod.shard_tar(out, entry.name))
        self.rows, self.errors, self.seconds = [], [], 0.0

    def add(self, outputs, seconds: float = 0.0) -> None:
        self.seconds += seconds
        for o in outputs:
            if isinstance(o, Failure):
                self.errors.append(o.to_dict())
                continue
            self.writer.write(o.key, {**o.files, "json": o.meta})
            self.rows.append({**o.meta, "key": o.key, "shard": f"shards/{self.entry.name}.tar"})
            if self.layout in ("folder", "both") and o.folder_path:
                write_atomic(self.out / o.folder_path, next(iter(o.files.values())))

    def commit(self) -> dict:
        self.writer.commit()
        by_stage = {}
        for e in self.errors:
            by_stage.setdefault(e["stage"], {}).setdefault(e["error_type"], 0)
            by_stage[e["stage"]][e["error_type"]] += 1
        stats = {"shard": self.entry.name, "split": self.entry.split, "samples": len(self.rows),
                 "errors": len(self.errors), "errors_by_stage": by_stage, "seconds": round(self.seconds, 3),
                 "rows": self.rows, "error_records": self.errors}
        planmod.commit(self.out, self.entry.name, stats)
        return stats

    def abort(self) -> None:
        self.writer.abort()


def run_shard(out, entry, chain, layout: str = "shards", chunk: int = CHUNK) -> dict:
    """Execute and commit one plan entry in this process (the unit a Ray task runs)."""
    committer = ShardCommitter(out, entry, layout)
    try:
        for j in range(0, len(entry.samples), chunk):
            t0 = time.perf_counter()
            outputs = chain(entry.samples[j:j + chunk])
            committer.add(outputs, time.perf_counter() - t0)
        return committer.commit()
    except BaseException:
        committer.abort()
        raise
