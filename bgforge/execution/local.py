"""Local executor: a process pool over chunks of samples, committing shards in plan order.

Workers build their stage chain once (models load once per worker) and turn chunks of
samples into outputs; the parent writes each shard's tar in sample order and commits it.
Work is cut finer than shards so that 2 workers stay busy even when a run has few shards,
and the output bytes do not depend on the worker count.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..io.shards import ShardWriter, write_atomic
from ..records import Failure
from . import plan as planmod

CHUNK = 8  # samples per task: small enough to balance, large enough to amortise IPC

_CHAIN = None
_INIT_ERROR = None


def _init_worker(chain_factory, params, devices=None):
    """Build the stage chain once per worker (models load here, never per sample).

    With `devices`, each worker takes one device from the queue and pins itself to it with
    CUDA_VISIBLE_DEVICES before anything touches CUDA. An error is kept and raised on the first
    task: a Pool whose initializer raises would respawn workers forever.
    """
    global _CHAIN, _INIT_ERROR
    try:
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
    state = {}
    pool = None
    if devices:
        ctx = mp.get_context("spawn")
        queue = ctx.Manager().Queue()
        for d in devices:
            queue.put(d)
        pool = ctx.Pool(len(devices), initializer=_init_worker, initargs=(chain_factory, params, queue))
    elif workers > 1:
        pool = mp.get_context("fork").Pool(workers, initializer=_init_worker, initargs=(chain_factory, params))
    if pool is None:
        _init_worker(chain_factory, params)
        results = map(_run_chunk, tasks)
    else:
        # imap keeps results in task order, so bytes do not depend on which worker ran what.
        results = pool.imap(_run_chunk, tasks, chunksize=1)
    try:
        for shard_index, outputs, seconds in results:
            entry = shards[shard_index]
            st = state.get(shard_index)
            if st is None:
                st = state[shard_index] = {"writer": ShardWriter(planmod.shard_tar(out, entry.name)), "rows": [],
                                           "errors": [], "seconds": 0.0}
            st["seconds"] += seconds
            for o in outputs:
                if isinstance(o, Failure):
                    st["errors"].append(o.to_dict())
                    continue
                st["writer"].write(o.key, {**o.files, "json": o.meta})
                st["rows"].append({**o.meta, "key": o.key, "shard": f"shards/{entry.name}.tar"})
                if layout in ("folder", "both") and o.folder_path:
                    write_atomic(out / o.folder_path, next(iter(o.files.values())))
            if progress is not None:
                progress.update(len(outputs))
            remaining[shard_index] -= 1
            if remaining[shard_index] == 0:
                _commit(out, entry, state.pop(shard_index), stats)
    finally:
        for st in state.values():
            st["writer"].abort()
        if pool is not None:
            pool.terminate()
            pool.join()
    return stats


def _commit(out, entry, st, stats: RunStats) -> None:
    st["writer"].commit()
    by_stage = {}
    for e in st["errors"]:
        by_stage.setdefault(e["stage"], {}).setdefault(e["error_type"], 0)
        by_stage[e["stage"]][e["error_type"]] += 1
    planmod.commit(out, entry.name, {
        "shard": entry.name, "split": entry.split, "samples": len(st["rows"]), "errors": len(st["errors"]),
        "errors_by_stage": by_stage, "seconds": round(st["seconds"], 3),
        "rows": st["rows"], "error_records": st["errors"]})
    stats.shards += 1
    stats.samples += len(st["rows"])
    stats.errors += len(st["errors"])
    stats.seconds += st["seconds"]
    for stage, types in by_stage.items():
        for t, n in types.items():
            key = f"{stage}/{t}"
            stats.errors_by_stage[key] = stats.errors_by_stage.get(key, 0) + n
