"""`bgforge build --dry-run`: what a build would do, without writing anything under --out.

It plans exactly as `build` does (same checks, same seed), counts samples per split and group in the
shape of groups.json, counts shards per phase, and times a few samples of every phase in a temporary
folder to estimate each phase's duration.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from .build import build, prepare
from .execution import plan as planmod
from .execution.context import DEFAULT_RUN, RunConfig
from .io.metadata import MetadataWriter
from .planners import BuildContext, Phase, Planned, Planner
from .progress import NOTICES, set_notices
from .recipe import Recipe
from .report.status import MAIN, output_status


def group_summary(planner: Planner, samples: list) -> dict:
    """groups.json's content as the planned samples predict it (their meta holds the group fields)."""
    rows = [{"split": s.split, **s.meta} for s in samples]
    fields = (planner.LABEL_FIELD, planner.ATTR_FIELD)
    # label/attribute known only after execution (e.g. edit flips): no correlation, as groups.json would lack it
    known = all(f and f in r for r in rows for f in fields) if rows else False
    writer = MetadataWriter(io.StringIO(), planner.METADATA_COLUMNS, *(fields if known else (None, None)))
    writer.add(rows)
    return writer.summary()


def _needed_by(samples: list, phase_samples: list, count: int) -> list:
    """The earlier phase's samples that `samples` read (their keys appear among the samples' inputs)."""
    wanted = {v for s in samples for v in (*s.inputs.values(), *s.meta.values()) if isinstance(v, str)}
    picked = [s for s in phase_samples if s.key in wanted]
    return picked or phase_samples[:count]


@contextlib.contextmanager
def _only_warnings() -> Iterator[None]:
    """The mini builds' notices (phases, shards in a temp folder) would only confuse a dry run's reader."""
    logger = logging.getLogger("bgforge")
    level, shown = logger.level, NOTICES["show"]
    logger.setLevel(max(logging.getLogger().getEffectiveLevel(), logging.WARNING))
    set_notices(False)
    try:
        yield
    finally:
        logger.setLevel(level)
        set_notices(shown)


def _calibrate(recipe: Recipe, ctx: BuildContext, planned: Planned, count: int, run: RunConfig) -> dict[str, tuple]:
    """Per phase: (samples timed, seconds their shards took, failed) from a build of a few samples, with
    the earlier phases' samples they read, in a temporary folder."""
    multiple = max(1, int(planned.shard_multiple))
    main = planned.samples[:max(multiple, count // multiple * multiple)]
    phases = [Phase(p.folder, p.planner, p.params, _needed_by(main, p.samples, count)) for p in planned.prerequisites]
    with tempfile.TemporaryDirectory(prefix="bgforge-dry-run-") as tmp, _only_warnings():
        mini = Recipe(name=recipe.name, planner=recipe.planner, params=dict(recipe.params))
        build(mini, ctx, Path(tmp) / "calibration", run, shard_size=max(len(main), 1), min_shards=1,
              planned=Planned(samples=main, inputs=planned.inputs, shard_multiple=multiple, prerequisites=phases))
        status = output_status(Path(tmp) / "calibration")
    return {p["phase"]: (p["samples_written"], p["shard_seconds"], p["errors"]) for p in status["phases"]}


def _phase_entry(name: str, planner_name: str, plan: planmod.Plan, timing: tuple | None, parallel: int) -> dict:
    entry = {"phase": name, "planner": planner_name, "samples": plan.num_samples, "shards": len(plan.shards),
             "estimate_seconds": None, "calibration": None}
    if timing:
        timed, seconds, failed = timing
        entry["calibration"] = {"samples": timed, "seconds": round(seconds, 3), "failed": failed}
        if timed and failed < timed:
            entry["estimate_seconds"] = round(seconds / timed * plan.num_samples / parallel, 1)
    return entry


def dry_run(recipe: Recipe, ctx: BuildContext, out, run: RunConfig = DEFAULT_RUN, *, seed=None,
            shard_size: int = 1000, layout: str = "shards", min_shards: int = planmod.MIN_SHARDS,
            calibrate: int = 4) -> dict:
    """The plan of `build(recipe, ctx, out, run, ...)` as a dict: phases with samples, shards and estimated
    seconds, groups (the shape of groups.json), and this slice's share. Nothing is written under `out`."""
    t0 = time.monotonic()
    planner = prepare(recipe, Path(out), run, seed=seed, layout=layout, shard_size=shard_size)
    planned = planner.plan(recipe, ctx)
    plan_seconds = time.monotonic() - t0
    # timed in this process (one worker, the run's devices and batch), then scaled by the run's workers
    one = replace(run, workers=1, devices=run.devices[:1], progress=False, executor="local", slice_index=0, slice_count=1)
    timings = _calibrate(recipe, ctx, planned, calibrate, one) if calibrate > 0 else {}
    parallel = run.parallel
    seed_value = int(recipe.params.get("seed", 0))
    phases = []
    for phase in planned.prerequisites:
        plan = planmod.make_plan(Recipe(name=phase.folder, planner=phase.planner, params=phase.params),
                                 Planned(samples=phase.samples, inputs=planned.inputs), seed_value, shard_size, "shards",
                                 min_shards)
        phases.append(_phase_entry(phase.folder, phase.planner, plan, timings.get(phase.folder), parallel))
    plan = planmod.make_plan(recipe, planned, seed_value, shard_size, layout, min_shards)
    phases.append(_phase_entry(MAIN, recipe.planner, plan, timings.get(MAIN), parallel))
    estimates = [p["estimate_seconds"] for p in phases]
    return {"recipe": recipe.name, "out": str(out), "seed": seed_value, "layout": layout,
            "samples": plan.num_samples, "shards": len(plan.shards),
            "slice": {"index": run.slice_index, "count": run.slice_count,
                      "shards": len(planmod.select_slice(plan, run.slice_index, run.slice_count))},
            "workers": parallel, "phases": phases,
            "estimate_seconds": None if None in estimates else round(sum(estimates), 1),
            "planning_seconds": round(plan_seconds, 2), "skipped": len(planned.skipped), "notes": list(planned.notes),
            "groups": group_summary(planner, planned.samples)}
