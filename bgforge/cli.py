"""The `bgforge` command line: thin commands that resolve options and call the library.

Exit codes: 0 done; 2 bad input or usage (one-line error); 3 done but some samples failed
(see OUT/errors.jsonl); 1 an unexpected error (a bug: please report it with the traceback).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import List, Optional

import typer

from . import __version__
from .errors import BgforgeError

app = typer.Typer(
    name="bgforge", no_args_is_help=True, add_completion=False, rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="Build spurious-background datasets: segment objects, rebuild backgrounds, composite them at "
         "chosen sizes and positions, and label every image with its group. Run `bgforge recipes` to see "
         "the published benchmarks it can rebuild, and `bgforge build NAME --demo --out DIR` to try one.")

EXIT_SAMPLE_ERRORS = 3


def _fail(message: str, code: int = 2):
    typer.echo(f"bgforge: error: {message}", err=True)
    raise typer.Exit(code)


def _version(value: bool):
    if value:
        typer.echo(f"bgforge {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug details."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
):
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


@app.command("recipes")
def recipes_cmd():
    """List the recipes that `bgforge build` knows, with a line on each."""
    from . import recipe as recipemod

    found = recipemod.available()
    if not found:
        _fail(f"no recipes found in {recipemod.recipes_dir()} (set BGFORGE_RECIPES_DIR)")
    for name in found:
        r = recipemod.load(name)
        first = r.description.splitlines()[0] if r.description else ""
        typer.echo(f"{name:28s} {first}")


def format_groups(summary: dict) -> str:
    lines = []
    for split in sorted(summary, key=lambda s: {"train": 0, "val": 1, "test": 2}.get(s, 9)):
        entry = summary[split]
        corr = entry.get("correlation") or {}
        extra = f"  I(label;attr)={corr['mutual_information_bits']:.3f} bits" if "mutual_information_bits" in corr else ""
        if corr.get("aligned_fraction") is not None:
            extra += f"  aligned={corr['aligned_fraction']:.3f}"
        lines.append(f"  {split:6s} {entry['total']:7d}{extra}")
        for group, n in entry["groups"].items():
            lines.append(f"      {group:24s} {n:7d}")
    return "\n".join(lines)


@app.command("build")
def build_cmd(
    name: str = typer.Argument(..., help="Recipe name (see `bgforge recipes`) or path to a recipe .yaml."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder. Re-running the same command resumes it."),
    demo: bool = typer.Option(False, "--demo", help="Use the embedded synthetic CUB/Places365 trees (generated once, cached)."),
    cub_root: Optional[Path] = typer.Option(None, "--cub-root", help="CUB_200_2011 folder (holds images.txt, images/, segmentations/). Env: BGFORGE_CUB_ROOT."),
    places_root: Optional[Path] = typer.Option(None, "--places-root", help="Places365 folder (data_large/, data_256/, places365_standard/ or train/). Env: BGFORGE_PLACES_ROOT."),
    coco_root: Optional[Path] = typer.Option(None, "--coco-root", help="COCO 2017 folder (annotations/instances_*.json, train2017/). Env: BGFORGE_COCO_ROOT."),
    textures_root: Optional[Path] = typer.Option(None, "--textures-root", help="Texture images folder (e.g. dtd/images) for bap-coco-vehicles. Env: BGFORGE_TEXTURES_ROOT."),
    imagenet_root: Optional[Path] = typer.Option(None, "--imagenet-root", help="ILSVRC-2012 folder (train/, val/, Annotation/ or LOC_*_solution.csv; or the Kaggle ILSVRC/ layout). Env: BGFORGE_IMAGENET_ROOT."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Override the recipe's seed."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Worker processes. Output bytes do not depend on it."),
    set_: List[str] = typer.Option([], "--set", help="Override a recipe parameter, e.g. --set train_strength=0.9 (repeatable)."),
    layout: str = typer.Option("shards", "--layout", help="shards (WebDataset tars), folder (images beside metadata.csv, as group_DRO/WILDS read), or both."),
    shard_size: int = typer.Option(1000, "--shard-size", min=1, help="Samples per shard."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Delete an earlier run in --out and start fresh."),
    shard_index: int = typer.Option(None, "--shard-index", help="Run only slice i of --num-shards (array jobs). Env: SLURM_ARRAY_TASK_ID."),
    num_shards: int = typer.Option(None, "--num-shards", help="Number of slices the run is split into. Env: SLURM_ARRAY_TASK_COUNT."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output; only the final summary line."),
    devices: Optional[str] = typer.Option(None, "--devices", help="GPUs for model phases (e.g. HSI backgrounds), one worker per entry: '0,1' ('0,0,1,1': two each). Default: every visible GPU, two workers each; 'cpu' forces CPU workers."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Samples per worker task / model batch."),
    executor: str = typer.Option("local", "--executor", help="local (process pools on this machine) or ray (one task per shard on a Ray cluster; pip install 'bgforge[ray]')."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Ray cluster address (default: RAY_ADDRESS, else a local Ray instance)."),
):
    """Build a dataset from a recipe and write shards, metadata.csv, groups.json, a manifest and previews.

    Examples:

      bgforge build waterbirds-100 --demo --out out/wb100-demo

      bgforge build waterbirds-95 --cub-root /data/CUB_200_2011 --places-root /data/places365 --out /data/wb95 --workers 8
    """
    import os

    from . import recipe as recipemod
    from .build import build
    from .cli_stages import needs_gpu, parse_devices
    from .planners import BuildContext

    if quiet:
        logging.getLogger().setLevel(logging.WARNING)
    try:
        recipe = recipemod.apply_overrides(recipemod.load(name), set_)
        if shard_index is None and os.environ.get("SLURM_ARRAY_TASK_ID"):
            shard_index = int(os.environ["SLURM_ARRAY_TASK_ID"])
            num_shards = num_shards or int(os.environ.get("SLURM_ARRAY_TASK_COUNT", "1"))
        ctx = BuildContext(roots={"cub": cub_root, "places": places_root, "imagenet": imagenet_root, "coco": coco_root,
                                  "textures": textures_root},
                           demo=demo)
        result = build(recipe, ctx, out, seed=seed, workers=workers, shard_size=shard_size, layout=layout,
                       overwrite=overwrite, shard_index=shard_index or 0, num_shards=num_shards or 1, progress=not quiet,
                       devices=parse_devices(devices, needs_gpu(recipe)), batch_size=batch_size,
                       executor=executor, ray_address=ray_address)
    except BgforgeError as exc:
        _fail(str(exc))
    rate = result.rate
    if result.finalized:
        if not quiet:
            typer.echo(f"groups ({out}/groups.json):\n{format_groups(result.summary)}")
        counts = " / ".join(f"{s} {g['total']}" for s, g in result.summary.items())
        typer.echo(f"bgforge: built {recipe.name}: {sum(g['total'] for g in result.summary.values())} samples ({counts}), "
                   f"{_errors_total(out)} errors, {result.seconds:.1f} s ({rate:.1f} img/s while executing) -> {out}")
    else:
        typer.echo(f"bgforge: slice done: {result.ran_samples} samples in {result.ran_shards} shards, {result.errors} errors, "
                   f"{result.seconds:.1f} s; {result.pending_shards} shards still pending (finalised when the last one commits)")
    if result.errors or (result.finalized and _errors_total(out)):
        raise typer.Exit(EXIT_SAMPLE_ERRORS)


def _errors_total(out: Path) -> int:
    path = Path(out) / "manifest.json"
    return json.loads(path.read_text())["errors"] if path.exists() else 0


@app.command("finalize")
def finalize_cmd(out: Path = typer.Argument(..., help="Output folder of a build whose slices all finished.")):
    """Write metadata.csv, groups.json, errors.jsonl, manifest.json and previews once every shard is committed."""
    from .build import finalize

    try:
        summary = finalize(out)
    except BgforgeError as exc:
        _fail(str(exc))
    typer.echo(format_groups(summary))


@app.command("status")
def status_cmd(out: Path = typer.Argument(..., help="Output folder of a build.")):
    """Committed and pending shards, samples, errors and rate of a (possibly running) build."""
    from .execution import plan as planmod

    try:
        plan = planmod.load_plan(out)
    except BgforgeError as exc:
        _fail(str(exc))
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


# Each command family lives in its own module and registers itself on the app.
from . import cli_data, cli_edit, cli_patchnet, cli_stages, cli_variants  # noqa: E402

for _family in (cli_stages, cli_data, cli_variants, cli_patchnet, cli_edit):
    _family.register(app)


def run():
    """Console-script entry: user errors are one line, never a traceback."""
    try:
        app()
    except BgforgeError as exc:
        typer.echo(f"bgforge: error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    run()
