"""`bgforge recipes`, `build`, `finalize` and `status`: datasets from recipes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from .common import build_and_report, fail, format_groups, reports_user_errors
from .options import (
    BatchSize,
    CocoRoot,
    CubRoot,
    Devices,
    Executor,
    ImagenetRoot,
    Layout,
    Out,
    Overwrite,
    PlacesRoot,
    Quiet,
    Seed,
    ShardSize,
    TexturesRoot,
    Workers,
)


def register(app: typer.Typer) -> None:
    app.command("recipes")(recipes_cmd)
    app.command("build")(build_cmd)
    app.command("finalize")(finalize_cmd)
    app.command("status")(status_cmd)


@reports_user_errors
def recipes_cmd() -> None:
    """List the recipes that `bgforge build` knows, with a line on each."""
    from .. import recipe as recipemod

    found = recipemod.available()
    if not found:
        fail(f"no recipes found in {recipemod.recipes_dir()} (set BGFORGE_RECIPES_DIR)")
    for name in found:
        r = recipemod.load(name)
        first = r.description.splitlines()[0] if r.description else ""
        typer.echo(f"{name:28s} {first}")


@reports_user_errors
def build_cmd(
    name: Annotated[str, typer.Argument(help="Recipe name (see `bgforge recipes`) or path to a recipe .yaml.")],
    out: Out,
    demo: Annotated[bool, typer.Option(
        "--demo", help="Use the embedded synthetic CUB/Places365 trees (generated once, cached).")] = False,
    cub_root: CubRoot = None,
    places_root: PlacesRoot = None,
    coco_root: CocoRoot = None,
    textures_root: TexturesRoot = None,
    imagenet_root: ImagenetRoot = None,
    seed: Seed = None,
    workers: Workers = 1,
    set_: Annotated[Optional[List[str]], typer.Option(
        "--set", help="Override a recipe parameter, e.g. --set train_strength=0.9 (repeatable).")] = None,
    layout: Annotated[Layout, typer.Option(
        "--layout", help="shards (WebDataset tars), folder (images beside metadata.csv, as group_DRO/WILDS read), "
                         "or both.")] = Layout.shards,
    shard_size: ShardSize = 1000,
    overwrite: Overwrite = False,
    shard_index: Annotated[Optional[int], typer.Option(
        "--shard-index", help="Run only slice i of --num-shards (array jobs). Env: SLURM_ARRAY_TASK_ID.")] = None,
    num_shards: Annotated[Optional[int], typer.Option(
        "--num-shards", help="Number of slices the run is split into. Env: SLURM_ARRAY_TASK_COUNT.")] = None,
    quiet: Quiet = False,
    devices: Devices = None,
    batch_size: BatchSize = 8,
    executor: Annotated[Executor, typer.Option(
        "--executor", help="local (process pools on this machine) or ray (one task per shard on a Ray cluster; "
                           "pip install 'bgforge[ray]').")] = Executor.local,
    ray_address: Annotated[Optional[str], typer.Option(
        "--ray-address", help="Ray cluster address (default: RAY_ADDRESS, else a local Ray instance).")] = None,
) -> None:
    """Build a dataset from a recipe and write shards, metadata.csv, groups.json, a manifest and previews.

    Examples:

      bgforge build waterbirds-100 --demo --out out/wb100-demo

      bgforge build waterbirds-95 --cub-root /data/CUB_200_2011 --places-root /data/places365 --out /data/wb95 --workers 8
    """
    from .. import recipe as recipemod
    from ..execution.devices import needs_gpu, parse_devices
    from ..planners import BuildContext

    recipe = recipemod.apply_overrides(recipemod.load(name), set_ or [])
    if shard_index is None and os.environ.get("SLURM_ARRAY_TASK_ID"):
        shard_index = int(os.environ["SLURM_ARRAY_TASK_ID"])
        num_shards = num_shards or int(os.environ.get("SLURM_ARRAY_TASK_COUNT", "1"))
    ctx = BuildContext(roots={"cub": cub_root, "places": places_root, "imagenet": imagenet_root, "coco": coco_root,
                              "textures": textures_root},
                       demo=demo)

    def summary_line(result, errors: int) -> str:
        if not result.finalized:
            return (f"bgforge: slice done: {result.ran_samples} samples in {result.ran_shards} shards, {errors} errors, "
                    f"{result.seconds:.1f} s; {result.pending_shards} shards still pending (finalised when the last "
                    "one commits)")
        counts = " / ".join(f"{s} {g['total']}" for s, g in result.summary.items())
        return (f"bgforge: built {recipe.name}: {sum(g['total'] for g in result.summary.values())} samples ({counts}), "
                f"{errors} errors, {result.seconds:.1f} s ({result.rate:.1f} img/s while executing) -> {out}")

    build_and_report(recipe, out, quiet=quiet, summary_line=summary_line, table_title=f"groups ({out}/groups.json):\n",
                     ctx=ctx, seed=seed, workers=workers, shard_size=shard_size, layout=layout.value,
                     overwrite=overwrite, shard_index=shard_index or 0, num_shards=num_shards or 1,
                     devices=parse_devices(devices, needs_gpu(recipe)), batch_size=batch_size,
                     executor=executor.value, ray_address=ray_address)


@reports_user_errors
def finalize_cmd(out: Annotated[Path, typer.Argument(help="Output folder of a build whose slices all finished.")]) -> None:
    """Write metadata.csv, groups.json, errors.jsonl, manifest.json and previews once every shard is committed."""
    from ..build import finalize

    typer.echo(format_groups(finalize(out)))


@reports_user_errors
def status_cmd(out: Annotated[Path, typer.Argument(help="Output folder of a build.")]) -> None:
    """Committed and pending shards, samples, errors and rate of a (possibly running) build."""
    from ..execution import plan as planmod

    plan = planmod.load_plan(out)
    done = samples = errors = 0
    seconds = 0.0
    for s in plan.shards:
        if planmod.is_committed(out, s.name):
            st = json.loads(planmod.shard_stats(out, s.name).read_text())
            done += 1
            samples += st["samples"]
            errors += st["errors"]
            seconds += st["seconds"]
    rate = f", {samples / seconds:.1f} img/s per worker" if seconds else ""
    typer.echo(f"{out}: recipe {plan.recipe['name']} seed {plan.seed}: {done}/{len(plan.shards)} shards committed, "
               f"{len(plan.shards) - done} pending; {samples}/{plan.num_samples} samples written, {errors} errors{rate}")
