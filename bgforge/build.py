"""Build a dataset: recipe -> planner -> plan -> executor -> shards -> finalize.

This is the library entry point behind `bgforge build`; the CLI only resolves options.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__, planners
from .errors import BgforgeError
from .execution import plan as planmod
from .execution.local import execute
from .io import metadata
from .io.preview import write_previews
from .io.shards import atomic_file
from .planners import BuildContext, Planned
from .progress import Progress
from .recipe import Recipe

log = logging.getLogger(__name__)

LAYOUTS = ("shards", "folder", "both")
EXECUTORS = ("local", "ray")


@dataclass
class BuildResult:
    out: Path
    total_samples: int
    ran_shards: int = 0
    ran_samples: int = 0
    errors: int = 0
    seconds: float = 0.0
    exec_seconds: float = 0.0   # executing shards only (no planning, demo generation or finalize)
    pending_shards: int = 0
    finalized: bool = False
    summary: dict = field(default_factory=dict)   # groups.json content once finalized
    notes: list = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Samples per second while executing shards in this run."""
        return self.ran_samples / self.exec_seconds if self.exec_seconds > 0 else 0.0


def build(recipe: Recipe, ctx: BuildContext, out, *, seed=None, workers=1, shard_size=1000, layout="shards",
          overwrite=False, shard_index=0, num_shards=1, progress=True, devices=None, batch_size=8,
          planned: Planned | None = None, executor="local", ray_address=None) -> BuildResult:
    t0 = time.monotonic()
    out = Path(out)
    _check_options(out, layout, shard_size, executor)  # before any planning or phase runs
    planner = planners.get(recipe.planner)
    if seed is not None:
        recipe.params["seed"] = int(seed)
    planner.validate(recipe.params)
    if overwrite:
        _clear(out)
    if planned is None:
        planned = planner.plan(recipe, ctx)
    exec_kw = dict(workers=workers, shard_size=shard_size, layout="shards", shard_index=shard_index,
                   num_shards=num_shards, progress=progress, devices=devices, batch_size=batch_size,
                   executor=executor, ray_address=ray_address)
    for phase in planned.prerequisites:
        sub = Recipe(name=f"{recipe.name}/{phase.folder}", planner=phase.planner, params=phase.params)
        log.info("phase %s: %d samples -> %s", phase.folder, len(phase.samples), out / phase.folder)
        res = build(sub, ctx, out / phase.folder, planned=Planned(samples=phase.samples, inputs=planned.inputs,
                                                                  source_files=[s.key for s in phase.samples]),
                    **exec_kw)
        if not res.finalized:  # another slice still works on this phase; re-run to continue
            return BuildResult(out=out, total_samples=len(planned.samples), ran_shards=res.ran_shards,
                               ran_samples=res.ran_samples, errors=res.errors, seconds=time.monotonic() - t0,
                               pending_shards=res.pending_shards, notes=[f"waiting for phase {phase.folder}"])
    plan = planmod.make_plan(recipe, planned, int(recipe.params.get("seed", 0)), shard_size, layout)
    plan.skipped, notes = planned.skipped, planned.notes
    del planned  # the plan entries hold the samples now; nothing else should keep them alive
    out.mkdir(parents=True, exist_ok=True)
    planmod.save_or_check_plan(out, plan, overwrite)

    mine = planmod.select_slice(plan, shard_index, num_shards)
    pending = [s for s in mine if not planmod.is_committed(out, s.name)]
    planmod.clean_partial(out, {s.name for s in pending})
    total_samples = plan.num_samples
    for entry in plan.shards:  # plan.json holds the samples; the executor reads them one shard at a time
        entry.samples = []
    bar = Progress(sum(s.size for s in pending), f"build {recipe.name}", enabled=progress)
    t_exec = time.monotonic()
    try:
        if executor == "ray":
            from .execution.ray import execute as ray_execute

            stats = ray_execute(out, pending, planner.make_chain, recipe.params, layout=layout, progress=bar,
                                address=ray_address, gpus_per_task=1 if devices else 0, chunk=batch_size)
        else:
            stats = execute(out, pending, planner.make_chain, recipe.params, workers=workers, layout=layout,
                            progress=bar, devices=devices, chunk=batch_size)
    finally:
        bar.close()
    result = BuildResult(out=out, total_samples=total_samples, ran_shards=stats.shards, ran_samples=stats.samples,
                         errors=stats.errors, seconds=time.monotonic() - t0, notes=notes,
                         exec_seconds=time.monotonic() - t_exec)
    result.pending_shards = sum(not planmod.is_committed(out, s.name) for s in plan.shards)
    if result.pending_shards == 0:
        result.summary = finalize(out, wall_seconds=result.seconds, plan=plan)
        result.finalized = True
    return result


def _check_options(out: Path, layout: str, shard_size: int, executor: str) -> None:
    if out.exists() and not out.is_dir():
        raise BgforgeError(f"--out {out} is a file; pass a folder (it is created if missing)")
    if layout not in LAYOUTS:
        raise BgforgeError(f"--layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if shard_size < 1:
        raise BgforgeError(f"--shard-size must be >= 1, got {shard_size}")
    if executor not in EXECUTORS:
        raise BgforgeError(f"--executor must be local or ray, got {executor!r}")


def _clear(out: Path) -> None:
    if not out.exists():
        return
    if any(out.iterdir()) and not planmod.plan_path(out).exists():
        raise BgforgeError(f"--overwrite refuses to delete {out}: it is not a bgforge output (no plan.json)")
    shutil.rmtree(out)


def finalize(out, wall_seconds: float | None = None, plan=None) -> dict:
    """Write metadata.csv, groups.json, errors.jsonl, manifest.json and previews from the committed shards.

    Streams one shard's stats at a time: memory does not grow with the number of samples.
    """
    out = Path(out)
    plan = plan or planmod.load_plan(out)
    missing = [s.name for s in plan.shards if not planmod.is_committed(out, s.name)]
    if missing:
        raise BgforgeError(f"{len(missing)} shard(s) of {out} are not committed yet (e.g. {missing[0]}); "
                           "run the remaining slices first")
    planner = planners.get(plan.recipe["planner"])
    n_errors, shard_seconds, shards_by_split = 0, 0.0, {}
    with atomic_file(out / "metadata.csv", "w") as table_fh, atomic_file(out / "errors.jsonl", "w") as errors:
        table = metadata.MetadataWriter(table_fh, planner.METADATA_COLUMNS, planner.LABEL_FIELD, planner.ATTR_FIELD)

        def log_errors(records):
            for e in records:
                errors.write(json.dumps(e, sort_keys=True) + "\n")
            return len(records)

        n_errors += log_errors(plan.skipped)
        for entry in plan.shards:
            st = json.loads(planmod.shard_stats(out, entry.name).read_text())
            table.add(st["rows"])
            n_errors += log_errors(st["error_records"])
            shard_seconds += st["seconds"]
            shards_by_split.setdefault(entry.split, []).append(planmod.shard_tar(out, entry.name))
    groups = table.summary()
    metadata.write_json(out / "groups.json", groups)
    if plan.layout in ("folder", "both"):
        # WILDS treats <root>/waterbirds_v1.0 as present only when this file exists.
        (out / "RELEASE_v1.0.txt").write_text(f"built by bgforge {__version__} from recipe {plan.recipe['name']}\n")
    previews = write_previews(out, shards_by_split)
    planner.on_finalize(out, plan.recipe["params"])  # recipe-specific reports (e.g. edit flips per class)
    metadata.write_json(out / "manifest.json", {
        "bgforge_version": __version__, "recipe": plan.recipe, "recipe_sha": plan.recipe_sha, "seed": plan.seed,
        "inputs": plan.inputs, "layout": plan.layout,
        "counts": {split: g["total"] for split, g in groups.items()}, "samples": table.rows, "errors": n_errors,
        "shards": [f"shards/{s.name}.tar" for s in plan.shards],
        "previews": [str(p.relative_to(out)) for p in previews],
        "timings": {"shard_seconds": round(shard_seconds, 3),
                    "last_run_wall_seconds": None if wall_seconds is None else round(wall_seconds, 3)}})
    return groups
