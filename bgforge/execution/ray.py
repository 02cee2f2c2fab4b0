"""Ray executor: one actor per GPU (or per CPU), shards as tasks sent to the actors.

Each actor builds the stage chain, models included, once and keeps it for every shard it is
sent; a shard task runs `commit.run_shard` on its plan entry, so it follows the same commit
protocol as the local executor (tar renamed into place, the commit marker
`.bgforge/shards/<name>.stats.json` last) and writes the same bytes. Tasks write straight into
OUT: the output folder, the dataset roots and the model checkpoints must be on a filesystem that
every Ray node mounts at the same path (docs/scaling.md). Ray is an optional dependency, imported only when asked for.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from ..chain import ChainFactory, WorkerContext
from ..errors import BgforgeError, WorkerDied
from . import commit as commitmod
from . import failfast
from . import plan as planmod
from .commit import run_shard
from .context import DEFAULT_RUN, RunConfig
from .stats import RunStats

MAX_RETRIES = 2  # re-runs of a shard whose task raised or whose actor or node died
QUEUED_PER_ACTOR = 2  # one running, one waiting: an actor never idles between shards
ACTOR_RESTARTS = 4  # an actor whose process or node died is restarted (elsewhere) this often, then reported
# No shard finishing for this long ends the run (exit 1): an actor waiting for a node that never comes
# back (its restart pending on resources) would otherwise be waited on forever.
STALL_ENV, STALL_SECONDS = "BGFORGE_RAY_STALL_SECONDS", 1800.0


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
    except Exception as exc:  # noqa: BLE001 - no cluster, a token missing, a version mismatch, a start that timed out
        if isinstance(exc, KeyboardInterrupt):
            raise
        where = address or os.environ.get("RAY_ADDRESS") or "the last one started on this machine"
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise BgforgeError(f"cannot use the Ray cluster at {where} ({reason}); start one with `ray start --head`, "
                           "check its auth token (docs/scaling.md), or pass --ray-address local") from None


class ChainHolder:
    """Body of one Ray actor: holds one build's stage chain and runs the shards sent to it.

    The chain is built on the first shard, not in __init__: a configuration error (a missing
    checkpoint) is then that shard's BgforgeError, reported like any other, and a restarted
    actor (its process or node died) builds it again.
    """

    def __init__(self, out: str, chain_factory: ChainFactory, params: dict, layout, run: RunConfig):
        # With a GPU, Ray pinned CUDA_VISIBLE_DEVICES to this actor's GPU, as the local GPU pool does.
        self.out, self.layout = Path(out), layout
        self.chain_factory, self.params = chain_factory, params
        self.ctx: WorkerContext = run.worker_context(self.out, "cuda" if run.devices else "cpu")  # CPU actors stay on it
        self.chunk = run.task_size()
        self.chain = None
        self.fail_fast = run.fail_fast

    def run(self, name: str) -> dict:
        """Read the entry `name` from plan.json, execute and commit it.

        Returns the shard's stats without its rows (they stay in the stats file; the driver only
        needs the counts), {"task_error": ...} for a BgforgeError, which no retry would fix, or
        failfast.as_result for a --fail-fast stop (the shard aborted, not committed).
        """
        try:
            if not planmod.plan_path(self.out).exists():
                # A plain exception: retried, as a shared filesystem may show a new file late.
                raise FileNotFoundError(f"{planmod.plan_path(self.out)} is not visible on node "
                                        f"{socket.gethostname()}: --out must be on a filesystem every Ray node "
                                        "mounts at the same path")
            if self.chain is None:
                self.chain = self.chain_factory(self.params, self.ctx)  # models load once per actor
            entry = next(planmod.iter_entries(self.out, {name}))  # samples travel through the shared filesystem
            chain = failfast.stopping(self.chain, name) if self.fail_fast else self.chain
            stats = run_shard(self.out, entry, chain, self.layout, self.chunk)
        except failfast.FailedFast as stop:
            return failfast.as_result(stop)
        except BgforgeError as exc:
            return {"task_error": str(exc)}
        return {k: v for k, v in stats.items() if k not in ("rows", "error_records")}


def _describe(exc) -> str:
    """One line for a task that failed: the exception raised inside it, or why its actor died."""
    cause = getattr(exc, "cause", None) or exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else ''}"[:300]


def _actor_count(ray, gpus_per_task: int, shards: int) -> int:
    """One actor per GPU of the cluster (per CPU without GPUs), never more than there are shards."""
    resources = ray.cluster_resources()
    slots = int(resources.get("GPU", 0) // gpus_per_task) if gpus_per_task else int(resources.get("CPU", 1))
    return max(1, min(slots, shards))


def _run_on_actors(ray, actors: list, shards, stats: RunStats, progress) -> list[str]:
    """Send the shards to the actors in plan order, a few queued per actor, the next one to whichever
    actor finished; add each result to `stats`. Returns a Failed record for each shard that failed."""
    waiting = list(reversed(shards))  # popped from the end: plan order
    running: dict = {}  # task ref -> (entry, actor)

    def send(actor) -> None:
        entry = waiting.pop()
        ref = actor.run.options(retry_exceptions=True, name="bgforge-shard").remote(entry.name)
        running[ref] = (entry, actor)

    for actor in actors * QUEUED_PER_ACTOR:
        if waiting:
            send(actor)
    failed = []
    stall = float(os.environ.get(STALL_ENV) or STALL_SECONDS)
    last_done = time.monotonic()
    while running:
        # Whatever finished within the timeout: one wait per shard would cost O(shards^2) on big runs.
        done, _ = ray.wait(list(running), num_returns=len(running), timeout=0.5)
        if done:
            last_done = time.monotonic()
        elif time.monotonic() - last_done > stall:
            names = ", ".join(sorted(e.name for e, _ in running.values())[:5])
            raise WorkerDied(f"no shard finished on Ray for {stall:.0f} s (shards {names} waiting; an actor's node "
                             f"may be gone with nowhere to restart); committed shards are kept: re-run to resume "
                             f"({STALL_ENV} sets the limit)")
        for ref in done:
            entry, actor = running.pop(ref)
            result = _result_of(ray, ref)
            if progress is not None:
                progress.update(entry.size)
            if "task_error" in result:
                failed.append(Failed(f"{entry.name}: {result['task_error']}", result.get("lost", False)))
            else:
                stats.add(result)
                stats.streak.see_shard(result)
            if waiting:
                send(actor)
    return failed


def _result_of(ray, ref) -> dict:
    """A shard task's result: its stats, or {"task_error", "lost"} for a task that raised after Ray's
    retries. A --fail-fast stop is raised here (execute's `finally` stops the actors)."""
    try:
        result = ray.get(ref)
    except Exception as exc:  # noqa: BLE001 - the task's error, after Ray's retries
        return {"task_error": _describe(exc), "lost": _lost_worker(ray, exc)}
    stop = failfast.from_result(result)
    if stop is not None:
        raise stop
    return result


def execute(out, shards, chain_factory: ChainFactory, params: dict, run: RunConfig = DEFAULT_RUN,
            layout: str = "shards", progress=None, max_retries: int = MAX_RETRIES) -> RunStats:
    """Run the given (pending) shard entries on Ray actors (one GPU each when `run.devices` is set,
    at the executor option `ray_address`) and commit each one; returns their RunStats.

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
    _connect(ray, run.option("ray_address"))
    gpus_per_task = 1 if run.devices else 0
    if gpus_per_task and ray.cluster_resources().get("GPU", 0) < gpus_per_task:
        # Ray would keep such actors pending forever.
        raise BgforgeError("the Ray cluster has no GPU for the model stages; add GPU nodes or pass --devices cpu")
    # Actors may run in another working directory (other nodes): hand them absolute paths.
    out = Path(out).absolute()
    # A dead actor (its process or node lost) restarts and its queued shards are re-sent to it.
    holder = ray.remote(ChainHolder).options(num_cpus=1, num_gpus=gpus_per_task, max_restarts=ACTOR_RESTARTS,
                                             max_task_retries=max_retries)
    actors = [holder.remote(str(out), chain_factory, params, layout, run)
              for _ in range(_actor_count(ray, gpus_per_task, len(shards)))]
    try:
        failed = _run_on_actors(ray, actors, shards, stats, progress)
    finally:
        for actor in actors:  # also on Ctrl-C: do not leave the cluster working (or holding GPUs) for nobody
            ray.kill(actor)
        commitmod.clean_partial(out, {e.name for e in shards})  # debris of killed attempts (other pids)
    if failed:
        # a lost actor or node is a failed run (exit 1, as a killed local worker), however Ray reports it;
        # an error raised by the task itself is the input's or the recipe's (exit 2)
        error = WorkerDied if any(f.lost for f in failed) else BgforgeError
        raise error(f"{len(failed)} of {len(shards)} shard(s) failed on Ray, each tried up to {max_retries + 1} times "
                    f"(first: {failed[0].text}); committed shards are kept: re-run the same command to redo the rest")
    return stats


@dataclass(frozen=True)
class Failed:
    text: str
    lost: bool   # the actor, its worker process or its node was lost (not an error of the task's own)


def _lost_worker(ray, exc: Exception) -> bool:
    lost = (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
            ray.exceptions.ObjectLostError)
    return isinstance(exc, lost)
