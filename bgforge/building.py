"""Build a dataset: recipe -> planner -> plan -> executor -> shards -> finalize.

The build of one resolved recipe, behind the public `bgforge.build` (api.py: the recipe by name, path or
object, its overrides, roots and options), which `bgforge build` and every stage command call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from . import planners
from .errors import BgforgeError
from .execution import commit as commitmod
from .execution import executors, guard, interrupts, retry
from .execution import overwrite as overwrite_tx
from .execution import plan as planmod
from .execution.context import DEFAULT_RUN, RunConfig
from .execution.executors import execute
from .finalize import finalize
from .io import readback
from .io.layout import OutputLayout, check_layout
from .params import check_params
from .planners import BuildContext, Phase, Planned
from .planners.limit import apply_limit, check_limit
from .progress import ProgressBar, announce_run, notice
from .recipe import Recipe
from .recipe_params import seed_of


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
    resumed_shards: int = 0     # shards of the whole plan already committed when this run started
    finalized: bool = False
    summary: dict = field(default_factory=dict)   # groups.json content once finalized
    notes: list = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Samples per second while executing shards in this run."""
        return self.ran_samples / self.exec_seconds if self.exec_seconds > 0 else 0.0


@guard.releases_locks
def build(recipe: Recipe, ctx: BuildContext, out, run: RunConfig = DEFAULT_RUN, *, seed=None, shard_size=1000,
          layout="shards", overwrite=False, planned: Planned | None = None,
          min_shards: int = planmod.MIN_SHARDS, limit: int | None = None) -> BuildResult:
    """Plan (unless `planned` is given), build every earlier phase, execute this slice's pending shards
    and finalize once every shard is committed. `run` says how (workers, devices, batch, executor, slice).

    `planned` is consumed: its samples, source files and phases are emptied once plan.json holds them.
    `limit`: --limit, a partial trial build of a seeded subset (planners/limit.py), recorded in plan.json.
    Ctrl-C or SIGTERM raises interrupts.Interrupted, whose line says how many shards are committed.
    """
    with interrupts.handled():
        try:
            return _build(recipe, ctx, out, run, seed=seed, shard_size=shard_size, layout=layout,
                          overwrite=overwrite, planned=planned, min_shards=min_shards, limit=limit)
        except KeyboardInterrupt as exc:
            if isinstance(exc, interrupts.Interrupted) and exc.line:  # a phase's build already counted
                raise
            raise interrupts.Interrupted(interrupts.signum_of(exc), _committed_line(Path(out))) from None


def _committed_line(out: Path) -> str:
    """`interrupted: N/M shards committed; ...` for the plan in `out` (0/0 before it was written)."""
    try:
        plan = planmod.load_plan(out)
    except (BgforgeError, OSError):
        return interrupts.summary_line(0, 0)
    return interrupts.summary_line(sum(commitmod.is_committed(out, s.name, plan.layout) for s in plan.shards),
                                   len(plan.shards))


def _build(recipe: Recipe, ctx: BuildContext, out, run: RunConfig, *, seed, shard_size, layout, overwrite,
           planned: Planned | None, min_shards: int, limit: int | None = None) -> BuildResult:
    t0 = time.monotonic()
    out = Path(out)
    planner = prepare(recipe, out, run, seed=seed, layout=layout, shard_size=shard_size, overwrite=overwrite)
    if planned is None:
        planned = planner.plan(recipe, ctx)
    planned = _limited(planned, limit, seed_of(recipe.params))
    guard.start(out, planned, sliced=run.sliced)  # checks --out, then locks
    # This phase's plan first: once plan.json holds its samples (1.24 M HSI composites) they are
    # dropped, not kept while the earlier phases run; the executor reads them back a shard at a time.
    plan = planmod.make_plan(recipe, planned, seed_of(recipe.params), shard_size, layout, min_shards)
    plan.skipped, notes, inputs, phases = planned.skipped, planned.notes, planned.inputs, planned.prerequisites
    plan.limit = limit
    planned.samples, planned.source_files, planned.prerequisites = [], [], []  # consumed (see the docstring)
    del planned
    if run.retry_errors and not overwrite:  # a fixed input file: same names, new stamps (execution/retry.py)
        retry.accept_fixed_inputs(out, plan)
    # the new plan is recorded before --overwrite removes anything; an interrupted overwrite is completed
    overwrite_tx.record_plan(out, plan, overwrite, [phase.folder for phase in phases])
    for entry in plan.shards:
        entry.samples = []
    for phase in phases:
        res = _build_phase(recipe, phase, ctx, out, inputs, run, shard_size=shard_size, min_shards=min_shards)
        if not res.finalized:  # another slice still works on this phase; re-run to continue
            return BuildResult(out=out, total_samples=plan.num_samples, ran_shards=res.ran_shards,
                               ran_samples=res.ran_samples, errors=res.errors, seconds=time.monotonic() - t0,
                               pending_shards=res.pending_shards, notes=[f"waiting for phase {phase.folder}"])

    mine = planmod.select_slice(plan, run.slice_index, run.slice_count)
    mine_names = {s.name for s in mine}
    # This slice's committed tars are hashed against their markers (a flipped byte of the same size
    # is rebuilt, not kept: one read of each tar); other slices' shards are theirs to check.
    committed = {s.name for s in plan.shards
                 if commitmod.is_committed(out, s.name, layout, verify=s.name in mine_names)}
    if run.retry_errors:  # committed shards that recorded failed samples are rebuilt whole
        failed = retry.failed_shards(out, [s.name for s in mine if s.name in committed], layout)
        committed -= set(failed)
        notice(retry.retry_line(out, len(failed), sum(s.size for s in mine if s.name in failed),
                                sum(failed.values()), len(plan.skipped)))
        if not failed and all(s.name in committed for s in plan.shards) and (out / "groups.json").exists():
            return BuildResult(out=out, total_samples=plan.num_samples, seconds=time.monotonic() - t0, notes=notes,
                               resumed_shards=len(committed), finalized=True,
                               summary=readback.groups(out))
    pending = [s for s in mine if s.name not in committed]
    announce_run(out, plan, mine, pending, len(committed), run.slice_index, run.slice_count)
    commitmod.clean_partial(out, {s.name for s in pending})
    if run.devices and not planner.loads_models(recipe.params):
        run = run.on_cpu()  # a phase that runs no model (HSI composites, pasting) gains nothing from a GPU
    written = OutputLayout(layout, planner.label_name)  # what the committer writes besides the tars
    bar = ProgressBar(sum(s.size for s in pending), f"build {recipe.name}", enabled=run.progress)
    t_exec = time.monotonic()
    try:
        # the row of run.executor (execution/executors.py EXECUTORS), its module imported now
        stats = execute(out, pending, planner.make_chain, recipe.params, run, layout=written, progress=bar)
    finally:
        bar.close()
    result = BuildResult(out=out, total_samples=plan.num_samples, ran_shards=stats.shards, ran_samples=stats.samples,
                         errors=stats.errors, seconds=time.monotonic() - t0, notes=notes,
                         exec_seconds=time.monotonic() - t_exec)
    result.pending_shards = sum(not commitmod.is_committed(out, s.name, layout) for s in plan.shards)
    result.resumed_shards = len(committed)
    if result.pending_shards == 0:
        result.summary = finalize(out, wall_seconds=result.seconds, plan=plan)
        result.finalized = True
    return result


def _limited(planned: Planned, limit: int | None, seed: int) -> Planned:
    """--limit: the seeded subset of planners/limit.py (the earlier phases cut to what it reads), told at once."""
    if limit is None:
        return planned
    told = len(planned.notes)
    planned = apply_limit(planned, check_limit(limit), seed)
    for line in planned.notes[told:]:
        notice(line)
    return planned


def _build_phase(parent: Recipe, phase: Phase, ctx: BuildContext, out: Path, inputs: dict, run: RunConfig,
                 **options) -> BuildResult:
    """Build an earlier phase (e.g. Hard-Spurious-ImageNet's backgrounds) into OUT/<phase folder>."""
    sub = Recipe(name=f"{parent.name}/{phase.folder}", planner=phase.planner, params=phase.params)
    notice(f"phase {phase.folder}: {len(phase.samples)} samples -> {out / phase.folder}")
    planned = Planned(samples=phase.samples, inputs=inputs, source_files=[s.key for s in phase.samples])
    phase.samples = []  # only `planned` holds them now: the phase's build drops them once its plan.json is written
    return build(sub, ctx, out / phase.folder, run, planned=planned, **options)


def prepare(recipe: Recipe, out: Path, run: RunConfig = DEFAULT_RUN, *, seed=None, layout="shards", shard_size=1000,
            overwrite=False) -> planners.Planner:
    """Everything a build checks before it plans or writes: options, the slice and the recipe's parameters.

    Shared by `build` and `bgforge build --dry-run`, so a dry run refuses exactly what a build refuses.
    """
    _check_options(out, shard_size, run)  # before any planning or phase runs
    planmod.check_slice(run.slice_index, run.slice_count)
    if overwrite and run.sliced:
        raise BgforgeError("--overwrite with --slice-count > 1 would let the slices delete each other's shards; "
                           f"clear {out} once first (remove it, or run one build with --overwrite and no --slice-count), "
                           "then start the slices without --overwrite")
    planner = check_recipe(recipe, seed)
    check_layout(layout, recipe.name, planner.REFERENCE_PATHS, recipe.planner)
    return planner


def check_recipe(recipe: Recipe, seed=None) -> planners.Planner:
    """The recipe's parameters and its planner's own checks (inputs, weights): files only, no model and
    no torch, so the CLI calls it before it looks for GPUs and a bad input is refused in well under a second."""
    planner = planners.get(recipe.planner)
    if seed is not None:
        recipe.params["seed"] = int(seed)
    check_params(recipe.params)  # types and ranges first: a planner's own checks may assume them
    planner.validate(recipe.params)
    return planner


def _check_options(out: Path, shard_size: int, run: RunConfig) -> None:
    if out.exists() and not out.is_dir():
        raise BgforgeError(f"--out {out} is a file; pass a folder (it is created if missing)")
    if shard_size < 1:
        raise BgforgeError(f"--shard-size must be >= 1, got {shard_size}")
    executors.check(run)  # a known executor, given only the options its row declares
