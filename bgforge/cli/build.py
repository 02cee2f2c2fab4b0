"""`bgforge recipes`, `build`, `finalize` and `status`: datasets from recipes."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from . import options as opt
from .common import build_and_report, command, echo, fail, format_groups, run_config, say
from .groups import group

Json = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of text (for scripts).")]


def register(app: typer.Typer) -> None:
    app.command("recipes")(recipes_cmd)
    app.command("build")(build_cmd)
    app.command("finalize")(finalize_cmd)
    app.command("status")(status_cmd)


def first_sentence(text: str) -> str:
    """A description's first sentence, whole: it ends at a '.' followed by a capital letter or the end,
    outside parentheses ('et al. 2020' and '(e.g. Places365)' do not end it)."""
    flat = " ".join(text.split())
    depth = 0
    for i, c in enumerate(flat):
        depth += (c == "(") - (c == ")")
        if c == "." and depth == 0 and (i + 1 == len(flat) or re.match(r"\s+[A-Z]", flat[i + 1:])):
            return flat[: i + 1]
    return flat


def demo_command(name: str, planner_cls) -> str:
    """The demo command `bgforge recipes` prints, runnable as printed."""
    return planner_cls.DEMO_HINT or f"bgforge build {name} --demo --out out/{name}-demo"


@command
def recipes_cmd(
    name: Annotated[Optional[str], typer.Argument(
        help="A recipe: print its description, demo command and every parameter with its default and comment.",
        autocompletion=lambda incomplete: complete_recipe(incomplete))] = None,
    as_json: Json = False,
) -> None:
    """List the recipes that `bgforge build` knows (the first sentence of each, and a demo command
    that runs as printed), or describe one: `bgforge recipes waterbirds-95`."""
    from .. import planners
    from .. import recipe as recipemod

    found = recipemod.available()
    if not found:
        fail(f"no recipes found in {recipemod.recipes_dir()} (set BGFORGE_RECIPES_DIR)")
    if name is not None:
        from ..recipe_help import parameter_rows, render_recipe

        recipe = recipemod.load(name)
        demo = demo_command(recipe.name, planners.get(recipe.planner))
        if as_json:
            typer.echo(json.dumps({"name": recipe.name, "planner": recipe.planner, "sources": recipe.sources,
                                   "description": recipe.description, "demo": demo,
                                   "parameters": parameter_rows(recipe)}, indent=2, default=str))
        else:
            typer.echo(render_recipe(recipe, demo))
        return
    recipes = {n: recipemod.load(n) for n in found}
    summaries = {n: first_sentence(r.description or "") for n, r in recipes.items()}
    demos = {n: demo_command(n, planners.get(r.planner)) for n, r in recipes.items()}
    if as_json:
        typer.echo(json.dumps({n: {"description": summaries[n], "demo": demos[n]} for n in found}, indent=2))
        return
    for n, summary in summaries.items():
        typer.echo(f"{n:28s} {summary}\n{'':28s} demo: {demos[n]}")


def complete_recipe(incomplete: str) -> list[str]:
    """Shell completion of recipe names: the shipped recipe files, no recipe parsed (fast)."""
    from ..recipe import recipes_dir

    folder = recipes_dir()
    names = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
    return [n for n in names if n.startswith(incomplete)]


def _slice(slice_index: Optional[int], slice_count: Optional[int],
           shard_index: Optional[int] = None, num_shards: Optional[int] = None) -> tuple[int, int]:
    """--slice-index/--slice-count (or their old hidden names --shard-index/--num-shards), else SLURM's
    array variables, else the one slice (0 of 1)."""
    for new, old, given, alias in (("--slice-index", "--shard-index", slice_index, shard_index),
                                   ("--slice-count", "--num-shards", slice_count, num_shards)):
        if given is not None and alias is not None:
            fail(f"{new} and {old} (its old name) both given; pass {new} only")
    slice_index = shard_index if slice_index is None else slice_index
    slice_count = num_shards if slice_count is None else slice_count
    if slice_index is None and os.environ.get("SLURM_ARRAY_TASK_ID"):
        from ..params import env_int

        slice_index = env_int("SLURM_ARRAY_TASK_ID", os.environ["SLURM_ARRAY_TASK_ID"])
        slice_count = slice_count if slice_count is not None else env_int(
            "SLURM_ARRAY_TASK_COUNT", os.environ.get("SLURM_ARRAY_TASK_COUNT", "1"))
    return slice_index or 0, 1 if slice_count is None else slice_count


def render_dry_run(d: dict) -> str:
    """The text of `build --dry-run`: phases with sizes and estimates, totals, then the group table."""

    def seconds(value: Optional[float]) -> str:
        return "unknown" if value is None else f"~{value:.0f} s" if value < 120 else f"~{value / 60:.0f} min"

    lines = [f"dry run: {d['recipe']} -> {d['out']} (seed {d['seed']}, layout {d['layout']}; nothing written)"]
    for p in d["phases"]:
        cal = p["calibration"]
        timed = (f" from {cal['samples']} samples in {cal['seconds']:.2f} s after a {cal['warm_up_seconds']:.2f} s "
                 "warm-up" if cal else "")
        lines.append(f"  phase {p['phase']:12s} {p['samples']:8d} samples {p['shards']:5d} shards  "
                     f"{seconds(p['estimate_seconds'])} with {d['workers']} worker(s){timed}")
    lines.append(f"  total: {d['samples']} samples in {d['shards']} shards, {seconds(d['estimate_seconds'])}; "
                 f"this slice ({d['slice']['index']} of {d['slice']['count']}): {d['slice']['shards']} shards; "
                 f"planning took {d['planning_seconds']:.1f} s")
    lines += [f"  note: {n}" for n in d["notes"]]
    if d["skipped"]:
        lines.append(f"  {d['skipped']} inputs skipped while planning (listed in errors.jsonl by a build)")
    lines.append("groups (as groups.json will hold them):")
    lines.append(format_groups(d["groups"]))
    return "\n".join(lines)


@command
def build_cmd(
    name: Annotated[str, typer.Argument(help="Recipe name (see `bgforge recipes`) or path to a recipe .yaml.",
                                        autocompletion=lambda incomplete: complete_recipe(incomplete))],
    out: opt.Out,
    demo: Annotated[bool, typer.Option(
        "--demo", help="Use the embedded synthetic CUB/Places365/ImageNet trees (generated once, cached).")] = False,
    cub_root: opt.CubRoot = None,
    places_root: opt.PlacesRoot = None,
    coco_root: opt.CocoRoot = None,
    textures_root: opt.TexturesRoot = None,
    cars_root: opt.CarsRoot = None,
    lvis_root: opt.LvisRoot = None,
    imagenet_root: opt.ImagenetRoot = None,
    seed: opt.Seed = None,
    set_: Annotated[Optional[List[str]], typer.Option(
        "--set", help="Override a recipe parameter, e.g. --set train_strength=0.9 (repeatable).")] = None,
    layout: Annotated[opt.Layout, typer.Option(
        "--layout", help="shards (WebDataset tars), folder (images at the reference paths beside metadata.csv, as "
                         "group_DRO/WILDS read; no tars), imagefolder (OUT/{split}/{label}/{key}.jpg for torchvision "
                         "ImageFolder), both (shards + folder), hsi (hard-spurious-imagenet only: "
                         "OUT/{split}/{size}/Group_{g}/{wnid}/ as Corner Cases' timm scripts read), or whac-a-mole "
                         "(urbancars only: OUT/urbancars/... with the mask files, as Whac-A-Mole's loaders read)."
                         )] = opt.Layout.shards,
    slice_index: Annotated[Optional[int], typer.Option(
        "--slice-index", help="Run only slice i of --slice-count: every slice-count-th shard of the plan, from i "
                              "(array jobs). Env: SLURM_ARRAY_TASK_ID.")] = None,
    slice_count: Annotated[Optional[int], typer.Option(
        "--slice-count", help="Number of slices the run is split into. Env: SLURM_ARRAY_TASK_COUNT.")] = None,
    shard_index: Annotated[Optional[int], typer.Option("--shard-index", hidden=True,
                                                       help="Old name of --slice-index.")] = None,
    num_shards: Annotated[Optional[int], typer.Option("--num-shards", hidden=True,
                                                      help="Old name of --slice-count.")] = None,
    executor: Annotated[opt.Executor, typer.Option(
        "--executor", help="local (process pools on this machine) or ray (one task per shard on a Ray cluster; "
                           "pip install 'bgforge[ray]').")] = opt.Executor.local,
    ray_address: opt.text_option(
        "--ray-address", help="Ray cluster address (default: RAY_ADDRESS, else a local Ray instance).") = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Plan only: print the group table, sample and shard totals, the phases and an estimated "
                          "time per phase (from a few samples built in a temporary folder); write nothing.")] = False,
    as_json: Json = False,
    compile_models: opt.Compile = False,
    run: opt.RunOptions = group(),
    output: opt.OutputOptions = group(),
) -> None:
    """Build a dataset from a recipe and write shards, metadata.csv, groups.json, a manifest and previews.

    Examples:

      bgforge build waterbirds-100 --demo --out out/wb100-demo

      bgforge build waterbirds-95 --cub-root /data/CUB_200_2011 --places-root /data/places365 --out /data/wb95 --workers 8
    """
    from .. import recipe as recipemod
    from ..api import load_recipe
    from ..building import check_recipe
    from ..execution.devices import needs_gpu

    recipe = recipemod.load(name)
    if compile_models and "backend_options" not in recipe.params:
        fail(f"--compile: recipe {recipe.name} runs no model")
    # --compile is the override that hands the model backends compile=true; --demo adds the demo parameters
    recipe = load_recipe(recipe, [*(set_ or []), *(["backend_options.compile=true"] if compile_models else [])],
                         demo=demo)
    slice_index, slice_count = _slice(slice_index, slice_count, shard_index, num_shards)
    roots = {"cub": cub_root, "places": places_root, "imagenet": imagenet_root, "coco": coco_root,
             "textures": textures_root, "cars": cars_root, "lvis": lvis_root}
    run_options = dict(executor=executor.value, ray_address=ray_address, slice_index=slice_index,
                       slice_count=slice_count)
    if dry_run or as_json:
        if not dry_run:
            fail("--json needs --dry-run (a build reports on stdout in text; `bgforge status --json` after it)")
        from ..dry_run import dry_run as plan_only
        from ..planners import BuildContext

        check_recipe(recipe, seed)  # before --devices is resolved: finding GPUs imports torch (seconds)
        report = plan_only(recipe, BuildContext(roots=roots, demo=demo), out,
                           run_config(run, needs_gpu(recipe), **run_options), seed=seed, layout=layout.value,
                           shard_size=output.shard_size, min_shards=output.min_shards, limit=output.limit)
        typer.echo(json.dumps(report, indent=2) if as_json else render_dry_run(report))
        return
    title = f"built {recipe.name}" if slice_count == 1 else f"{recipe.name} slice {slice_index} of {slice_count}"
    build_and_report(recipe, out, run, output=output, layout=layout.value, seed=seed, roots=roots, demo=demo,
                     title=title, table_title=f"groups ({out}/groups.json):\n", needs_gpu=needs_gpu(recipe),
                     run_options=run_options)


@command
def finalize_cmd(out: Annotated[Path, typer.Argument(help="Output folder of a build whose slices all finished.")]) -> None:
    """Write metadata.csv, groups.json, errors.jsonl, manifest.json and previews once every shard is committed."""
    from ..finalize import finalize_locked

    groups = finalize_locked(out)  # the build's lock: never beside a running build
    say(format_groups(groups))
    echo(f"bgforge: finalized {out}: {sum(g['total'] for g in groups.values())} samples")


@command
def status_cmd(out: Annotated[Path, typer.Argument(help="Output folder of a build.")], as_json: Json = False,
               verify: Annotated[bool, typer.Option(
                   "--verify", help="Also check each committed shard against its recorded sha256 (reads every "
                                    "tar; damaged shards count as pending and a re-run rebuilds them) and "
                                    "groups.json, metadata.csv, manifest.json against the hashes finalize "
                                    "recorded: exit 1 naming each changed file.")] = False) -> None:
    """Committed and pending shards, samples, errors and rate of a build; whether it is running (a live process
    holds its lock) or stopped."""
    from ..report.status import output_status, render_status
    from .common import EXIT_RUN_FAILED

    status = output_status(out, verify)
    typer.echo(json.dumps(status, indent=2) if as_json else render_status(status))
    if status.get("changed_files"):
        raise typer.Exit(EXIT_RUN_FAILED)
