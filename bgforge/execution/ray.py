"""Ray executor: one Ray task per shard, for runs that outgrow one machine.

Each worker process builds the stage chain once (kept for its later tasks) and runs
`local.run_shard` on each task's plan entry, so it
follows the same commit protocol as the local executor (tar renamed into place, stats JSON
last) and writes the same bytes. Tasks write straight into OUT: the output folder, the dataset
roots and the model checkpoints must be on a filesystem that every Ray node mounts at the same
path (docs/scaling.md). Ray is an optional dependency, imported only when asked for.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

from ..errors import BgforgeError
from ..io.shards import json_bytes
from . import plan as planmod
from .context import ChainFactory, WorkerContext
from .local import CHUNK, RunStats, run_shard

MAX_RETRIES = 2  # re-runs of a shard whose task raised or whose worker or node died


def _import_ray():
    try:
        import ray
    except ImportError:
        raise BgforgeError("--executor ray needs Ray: pip install 'bgforge[ray]'") from None
    return ray


def _connect(ray, address):
    """Reuse an initialised Ray; else connect to `address` (or RAY_ADDRESS / the latest local cluster), or start one."""
    if ray.is_initialized():
        return
    try:
        ray.init(address=address or None, log_to_driver=False, include_dashboard=False,
                 logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError) as exc:  # no cluster there, a token missing, a Ray version mismatch
        where = address or os.environ.get("RAY_ADDRESS") or "the last one started on this machine"
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise BgforgeError(f"cannot use the Ray cluster at {where} ({reason}); start one with `ray start --head`, "
                           "check its auth token (docs/scaling.md), or pass --ray-address local") from None


# Ray reuses a worker process for the next task of the same function: the chain (models
# included) is built once per worker process and GPU, not once per shard task.
_CHAINS: dict = {}


def _cached_chain(chain_factory: ChainFactory, params: dict, ctx: WorkerContext):
    name = f"{getattr(chain_factory, '__module__', '')}.{getattr(chain_factory, '__qualname__', repr(chain_factory))}"
    key = (name, json_bytes(params), str(ctx.out),
           ctx.device, os.environ.get("CUDA_VISIBLE_DEVICES"))
    if key not in _CHAINS:
        _CHAINS.clear()  # one build's chain at a time: a worker never holds two sets of models
        _CHAINS[key] = chain_factory(params, ctx)
    return _CHAINS[key]


def _shard_task(out, name, chain_factory: ChainFactory, params: dict, layout, chunk, use_gpu):
    """Body of one Ray task: build the chain, read its plan entry from plan.json, execute and commit it.

    Returns the shard's stats without its rows (they stay in the stats file; the driver only
    needs the counts), or {"task_error": ...} for a BgforgeError, which no retry would fix.
    """
    try:
        if not planmod.plan_path(out).exists():
            # A plain exception: retried, as a shared filesystem may show a new file late.
            raise FileNotFoundError(f"{planmod.plan_path(out)} is not visible on node {socket.gethostname()}: "
                                    "--out must be on a filesystem every Ray node mounts at the same path")
        # With a GPU, Ray pinned CUDA_VISIBLE_DEVICES to this task's GPU, as the local GPU pool does.
        ctx = WorkerContext(Path(out), "cuda" if use_gpu else None)
        entry = next(planmod.iter_entries(out, {name}))  # samples travel through the shared filesystem
        stats = run_shard(out, entry, _cached_chain(chain_factory, params, ctx), layout, chunk)
    except BgforgeError as exc:
        return {"task_error": str(exc)}
    return {k: v for k, v in stats.items() if k not in ("rows", "error_records")}


def _describe(exc) -> str:
    """One line for a task that failed: the exception raised inside it, or why its worker died."""
    cause = getattr(exc, "cause", None) or exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else ''}"[:300]


def execute(out, shards, chain_factory: ChainFactory, params: dict, layout: str = "shards", progress=None,
            address=None, gpus_per_task: int = 0, chunk: int = CHUNK, max_retries: int = MAX_RETRIES) -> RunStats:
    """Run the given (pending) shard entries as Ray tasks and commit each one; returns their RunStats.

    chain_factory(params, WorkerContext) must pickle by reference (a module-level function or a
    planner's method: every node needs bgforge installed) and the entries be plain data. A shard
    whose task still fails after `max_retries` re-runs is reported, after all the others finished,
    as one BgforgeError; its partial files are removed, so re-running the same command redoes
    just that shard.
    """
    ray = _import_ray()
    stats = RunStats()
    if not shards:
        return stats
    _connect(ray, address)
    if gpus_per_task and ray.cluster_resources().get("GPU", 0) < gpus_per_task:
        # Ray would keep such tasks pending forever.
        raise BgforgeError("the Ray cluster has no GPU for the model stages; add GPU nodes or pass --devices cpu")
    # Tasks may run in another working directory (other nodes): hand them absolute paths.
    out = Path(out).absolute()
    task = ray.remote(_shard_task).options(num_cpus=1, num_gpus=gpus_per_task, max_retries=max_retries,
                                            retry_exceptions=True, name="bgforge-shard")
    params_ref = ray.put(params)  # shared by every task instead of copied into each
    running = {task.remote(str(out), entry.name, chain_factory, params_ref, layout, chunk, gpus_per_task > 0): entry
               for entry in shards}
    failed = []
    try:
        while running:
            # Whatever finished within the timeout: one wait per shard would cost O(shards^2) on big runs.
            done, _ = ray.wait(list(running), num_returns=len(running), timeout=0.5)
            for ref in done:
                entry = running.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - the task's error, after Ray's retries
                    result = {"task_error": _describe(exc)}
                if progress is not None:
                    progress.update(entry.size)
                if "task_error" in result:
                    failed.append(f"{entry.name}: {result['task_error']}")
                else:
                    stats.add(result)
    finally:
        if running:  # interrupted (Ctrl-C): do not leave the cluster working for nobody
            for ref in running:
                ray.cancel(ref, force=True)
        planmod.clean_partial(out, {e.name for e in shards})  # debris of killed attempts (other pids)
    if failed:
        raise BgforgeError(f"{len(failed)} of {len(shards)} shard(s) failed on Ray, each tried up to {max_retries + 1} times "
                           f"(first: {failed[0]}); committed shards are kept: re-run the same command to redo the rest")
    return stats
