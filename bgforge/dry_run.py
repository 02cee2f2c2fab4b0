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

from .building import build, prepare
from .execution import plan as planmod
from .execution.context import DEFAULT_RUN, RunConfig
from .io.metadata import MetadataWriter
from .planners import BuildContext, Phase, Planned, Planner
from .planners.limit import apply_limit, check_limit
from .progress import NOTICES, set_notices
from .recipe import Recipe
from .recipe_params import seed_of
from .report.status import MAIN, shard_timings


def group_summary(planner: Planner, samples: list) -> dict:
    """groups.json's content as the planned samples predict it (their meta holds the group fields)."""
    rows = [{"split": s.split, **s.meta} for s in samples]
    fields = (planner.LABEL_FIELD, *planner.ATTR_FIELDS)
    # label/attribute known only after execution (e.g. edit flips): no correlation, as groups.json would lack it
    known = bool(planner.ATTR_FIELDS) and all(f and f in r for r in rows for f in fields) if rows else False
    writer = MetadataWriter(io.StringIO(), planner.METADATA_COLUMNS,
                            *((planner.LABEL_FIELD, planner.ATTR_FIELDS) if known else (None, ())))
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


def _calibrate(recipe: Recipe, ctx: BuildContext, planned: Planned, count: int,
               run: RunConfig) -> tuple[dict[str, dict], float]:
    """Per phase, the timing of a build of 2 x `count` samples (with the earlier phases' samples they
    read) in a temporary folder, in shards of `count`: the first shard of a phase pays the warm-up
    (first calls, caches, allocator growth) that a real build pays once per worker, so the rate
    comes from the shards after it and the warm-up is counted once. Also the build's time outside
    its shards (phase set-up, finalising: metadata, previews, the card), which a build pays once."""
    multiple = max(1, int(planned.shard_multiple))
    n = max(multiple, count // multiple * multiple)
    main = planned.samples[:2 * n]
    phases = [Phase(p.folder, p.planner, p.params, _needed_by(main, p.samples, 2 * n)) for p in planned.prerequisites]
    with tempfile.TemporaryDirectory(prefix="bgforge-dry-run-") as tmp, _only_warnings():
        folder = Path(tmp) / "calibration"
        mini = Recipe(name=recipe.name, planner=recipe.planner, params=dict(recipe.params))
        t0 = time.monotonic()
        build(mini, ctx, folder, run, shard_size=n, min_shards=1,
              planned=Planned(samples=main, inputs=planned.inputs, shard_multiple=multiple, prerequisites=phases))
        wall = time.monotonic() - t0
        shards = {p.folder: shard_timings(folder / p.folder) for p in planned.prerequisites}
        shards[MAIN] = shard_timings(folder)
    outside = wall - sum(s[1] for timed in shards.values() for s in timed)
    return {phase: _rate(timed) for phase, timed in shards.items() if timed}, max(0.0, outside)


def _rate(shards: list[tuple[int, float, int]]) -> dict:
    """Seconds per sample from the shards after the first (all of them when there is one), and the
    first shard's excess over that rate: the warm-up."""
    timed = shards[1:] or shards
    samples, seconds, failed = (sum(s[i] for s in timed) for i in range(3))
    per_sample = seconds / samples if samples and failed < samples else None
    first_samples, first_seconds, _ = shards[0]
    warm_up = max(0.0, first_seconds - first_samples * per_sample) if per_sample is not None and len(shards) > 1 else 0.0
    return {"samples": samples, "seconds": round(seconds, 3), "failed": failed, "warm_up_seconds": round(warm_up, 3),
            "per_sample": per_sample}


def _phase_entry(name: str, planner_name: str, plan: planmod.Plan, timing: dict | None, parallel: int) -> dict:
    entry = {"phase": name, "planner": planner_name, "samples": plan.num_samples, "shards": len(plan.shards),
             "estimate_seconds": None, "calibration": None}
    if timing:
        per_sample = timing.pop("per_sample")
        entry["calibration"] = timing
        if per_sample is not None:
            # the workers share the samples; each pays the warm-up once, at the same time
            entry["estimate_seconds"] = round(timing["warm_up_seconds"] + per_sample * plan.num_samples / parallel, 1)
    return entry


def dry_run(recipe: Recipe, ctx: BuildContext, out, run: RunConfig = DEFAULT_RUN, *, seed=None,
            shard_size: int = 1000, layout: str = "shards", min_shards: int = planmod.MIN_SHARDS,
            calibrate: int = 8, limit: int | None = None) -> dict:
    """The plan of `build(recipe, ctx, out, run, ...)` as a dict: phases with samples, shards and estimated
    seconds, groups (the shape of groups.json), and this slice's share. Nothing is written under `out`."""
    t0 = time.monotonic()
    planner = prepare(recipe, Path(out), run, seed=seed, layout=layout, shard_size=shard_size)
    planned = planner.plan(recipe, ctx)
    if limit is not None:  # --limit: the seeded subset a build would make, its notes printed below
        planned = apply_limit(planned, check_limit(limit), seed_of(recipe.params))
    plan_seconds = time.monotonic() - t0
    # timed in this process (one worker, the run's devices and batch), then scaled by the run's workers
    one = replace(run, workers=1, devices=run.devices[:1], progress=False, executor="local", executor_options=(),
                  slice_index=0, slice_count=1, fail_fast=False)
    timings, outside = _calibrate(recipe, ctx, planned, calibrate, one) if calibrate > 0 else ({}, 0.0)
    parallel = run.parallel
    seed_value = seed_of(recipe.params)
    phases = []
    for phase in planned.prerequisites:
        plan = planmod.make_plan(Recipe(name=phase.folder, planner=phase.planner, params=phase.params),
                                 Planned(samples=phase.samples, inputs=planned.inputs), seed_value, shard_size, "shards",
                                 min_shards)
        phases.append(_phase_entry(phase.folder, phase.planner, plan, timings.get(phase.folder), parallel))
    plan = planmod.make_plan(recipe, planned, seed_value, shard_size, layout, min_shards)
    phases.append(_phase_entry(MAIN, recipe.planner, plan, timings.get(MAIN), parallel))
    estimates = [p["estimate_seconds"] for p in phases]
    if None not in estimates:  # the real build plans again, and sets up and finalises once
        estimates += [plan_seconds, outside]
    return {"recipe": recipe.name, "out": str(out), "seed": seed_value, "layout": layout, "limit": limit,
            "samples": plan.num_samples, "shards": len(plan.shards),
            "slice": {"index": run.slice_index, "count": run.slice_count,
                      "shards": len(planmod.select_slice(plan, run.slice_index, run.slice_count))},
            "workers": parallel, "phases": phases,
            "estimate_seconds": None if None in estimates else round(sum(estimates), 1),
            "planning_seconds": round(plan_seconds, 2), "skipped": len(planned.skipped), "notes": list(planned.notes),
            "groups": group_summary(planner, planned.samples)}
