"""`bgforge demo-inputs`, `bgforge stats` and `bgforge inspect`: data to try commands on, and looking at data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from . import options as opt
from .build import Json
from .common import command, echo


def register(app: typer.Typer) -> None:
    stats = typer.Typer(help="Statistics of raw datasets.", no_args_is_help=True)
    stats.command("imagenet")(stats_imagenet)
    app.add_typer(stats, name="stats")
    app.command("inspect")(inspect_cmd)
    app.command("demo-inputs")(demo_inputs_cmd)


@command
def demo_inputs_cmd(folder: Annotated[Path, typer.Argument(help="Where to write the demo inputs (created).")],
                    images: Annotated[int, typer.Option("--images", min=2, help="How many photos.")] = 24) -> None:
    """Write a small photos folder for the stage commands, variants, edit and autobackswap to run on:
    FOLDER/photos/ (images/, manifest.jsonl with path, label, boxes, text, mask and split), FOLDER/photo_masks/
    (outside photos/, so a scan of the folder finds only photos) and FOLDER/phrases.jsonl (the phrases
    `bgforge edit` removes).

    Example:

      bgforge demo-inputs demo/ && bgforge segment -i demo/photos -m demo/photos/manifest.jsonl --backend box --out demo/masks
    """
    from ..sources.demo import write_demo_inputs

    photos, phrases = write_demo_inputs(Path(folder), images)
    rows = (photos / "manifest.jsonl").read_text().splitlines()
    echo(f"bgforge: wrote {len(rows)} photos with a manifest to {photos} and {phrases}")


@command
def stats_imagenet(
    imagenet_root: opt.ImagenetRoot = None,
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Folder for class_stats.csv and histograms.png.")] = Path("imagenet-stats"),
    split: Annotated[opt.StatsSplit, typer.Option("--split", help="train or val.")] = opt.StatsSplit.train,
    classes: opt.text_option(
        "--classes", help="Comma-separated wnids or names (default: all).") = None,
) -> None:
    """Per-class centeredness and size of the ground-truth boxes (Corner Cases' class statistics) to CSV + histogram PNG.

    Centeredness C = mean over images and objects of 1 - ||image centre - object centre||_inf (coordinates in [0,1]);
    size S = mean box area / image area.
    """
    from ..report.stats import class_stats, histogram_png, write_stats_csv
    from ..sources import source_root
    from ..sources.imagenet import ImageNetSource

    src = ImageNetSource(source_root("imagenet", imagenet_root))
    rows = class_stats(src, split=split.value, wnids=classes.split(",") if classes else None)
    write_stats_csv(rows, out / "class_stats.csv")
    histogram_png(rows, out / "histograms.png")
    echo(f"bgforge: stats for {len(rows)} classes ({sum(r['images'] for r in rows)} images, "
               f"{len(src.problems)} box problems) -> {out}/class_stats.csv, {out}/histograms.png")


@command
def inspect_cmd(
    out: Annotated[Path, typer.Argument(help="A bgforge output folder.")],
    html: Annotated[bool, typer.Option("--html", help="Also write OUT/report.html, one self-contained page.")] = False,
    label: opt.text_option(
        "--label", help="Label field (default: the recipe's, e.g. y).") = None,
    attribute: opt.text_option(
        "--attribute", help="Background attribute field (default: the recipe's, e.g. place; HSI has none, "
                            "its bg_class names the label by construction).") = None,
    as_json: Json = False,
) -> None:
    """What a dataset holds and whether it breaks the correlation it was built to break, per split: the groups
    (in the recipe's order), the label x attribute matrix with its achieved correlation and mutual information
    (recipes with a spurious attribute: Waterbirds' place, UrbanCars' background), the recipe's own tables
    (Hard-Spurious-ImageNet: groups per class, O / R, difficulty, size, position and the R pairing by class
    name) and mask-area statistics. --json carries the same tables; --html writes them as one page."""
    from ..io.layout import REPORT_HTML
    from ..report.inspect import inspect_output, render_html, render_text

    report = inspect_output(out, label, attribute)
    if html:
        from ..io.atomic import write_text_atomic

        path = Path(out) / REPORT_HTML
        write_text_atomic(path, render_html(report, out), root=out)  # never through a link planted at it
        report["html"] = str(path)
    shown = {k: v for k, v in report.items() if not k.startswith("_")}   # `_`: the page's working data
    typer.echo(json.dumps(shown, indent=2) if as_json else render_text(shown))
    if html and not as_json:
        echo(f"bgforge: report -> {report['html']}")
    from ..io.terminal import printable

    for note in report.get("skipped_previews", []):  # a link, FIFO or oversized file where a preview should be
        echo(f"bgforge: note: preview skipped: {printable(note)}", err=True)
