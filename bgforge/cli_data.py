"""`bgforge composite`, `bgforge stats` and `bgforge inspect`: composing and looking at datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .errors import BgforgeError


def register(app: typer.Typer) -> None:
    from .cli_stages import BATCH, OVERWRITE, QUIET, SHARD, WORKERS, _s, run_stage

    @app.command("composite")
    def composite_cmd(
        fg: Path = typer.Option(..., "--fg", help="Foregrounds: an image folder (with --fg-manifest giving boxes/labels) or a bgforge stage output."),
        fg_manifest: Optional[Path] = typer.Option(None, "--fg-manifest", help="JSONL/CSV for --fg: path, label, boxes (the largest box is pasted)."),
        bg: Path = typer.Option(..., "--bg", help="Backgrounds: a `bgforge inpaint` output (keys match the foregrounds) or an image folder."),
        bg_manifest: Optional[Path] = typer.Option(None, "--bg-manifest", help="JSONL/CSV for --bg: path, label (needed by --bg-mode random)."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
        size: int = typer.Option(112, "--size", min=1, help="Foreground size s: resized to s x s (56/84/112 in Hard-Spurious-ImageNet)."),
        pos: str = typer.Option("center", "--pos", help="center | corner (top-right) | corner-random (one of four, per sample)."),
        bg_mode: str = typer.Option("original", "--bg-mode", help="original (the image's own background: same key) | random (another class's)."),
        ar_preserve: bool = typer.Option(False, "--ar-preserve", help="Resize the shorter side to s keeping the aspect ratio (longer side <= canvas)."),
        fg_mode: str = typer.Option("box", "--fg-mode", help="box (rectangular crop of the box) | mask (paste only the object: needs object.png/mask.png in --bg)."),
        canvas: int = typer.Option(224, "--canvas", help="Output size (backgrounds are resized to it)."),
        image_format: str = typer.Option("jpg", "--format", help="jpg or png."),
        seed: int = typer.Option(0, "--seed", help="Seed for random backgrounds and corners."),
        workers: int = WORKERS, batch_size: int = BATCH, shard_size: int = SHARD, overwrite: bool = OVERWRITE,
        quiet: bool = QUIET,
    ):
        """Paste foregrounds onto backgrounds at one size and position: one Hard-Spurious-ImageNet group.

        Example: bgforge composite --fg images/ --fg-manifest boxes.jsonl --bg backgrounds/ --size 56 --pos corner --bg-mode random --out CoR-56/
        """
        params = {"fg": _s(fg), "fg_manifest": _s(fg_manifest), "bg": _s(bg), "bg_manifest": _s(bg_manifest),
                  "size": size, "position": pos, "bg_mode": bg_mode, "ar_preserve": ar_preserve, "fg_mode": fg_mode,
                  "canvas": canvas, "image_format": image_format, "seed": seed, "jpeg_quality": 95}
        run_stage("composite", params, out, workers=workers, devices="cpu", batch_size=batch_size,
                  shard_size=shard_size, overwrite=overwrite, quiet=quiet, uses_torch=False)

    stats = typer.Typer(help="Statistics of raw datasets.", no_args_is_help=True)

    @stats.command("imagenet")
    def stats_imagenet(
        imagenet_root: Optional[Path] = typer.Option(None, "--imagenet-root", help="ILSVRC-2012 folder. Env: BGFORGE_IMAGENET_ROOT."),
        out: Path = typer.Option(Path("imagenet-stats"), "--out", "-o", help="Folder for class_stats.csv and histograms.png."),
        split: str = typer.Option("train", "--split", help="train or val."),
        classes: Optional[str] = typer.Option(None, "--classes", help="Comma-separated wnids or names (default: all)."),
    ):
        """Per-class centeredness and size of the ground-truth boxes (Corner Cases' class statistics) to CSV + histogram PNG.

        Centeredness C = mean over images and objects of 1 - ||image centre - object centre||_inf (coordinates in [0,1]);
        size S = mean box area / image area.
        """
        from .cli import _fail
        from .sources import resolve_root
        from .sources.imagenet import ImageNetSource
        from .stats import class_stats, histogram_png, write_stats_csv

        try:
            src = ImageNetSource(resolve_root(imagenet_root, "BGFORGE_IMAGENET_ROOT", "--imagenet-root", "ImageNet"))
            rows = class_stats(src, split=split, wnids=classes.split(",") if classes else None)
        except BgforgeError as exc:
            _fail(str(exc))
        out.mkdir(parents=True, exist_ok=True)
        write_stats_csv(rows, out / "class_stats.csv")
        histogram_png(rows, out / "histograms.png")
        typer.echo(f"bgforge: stats for {len(rows)} classes ({sum(r['images'] for r in rows)} images, "
                   f"{len(src.problems)} box problems) -> {out}/class_stats.csv, {out}/histograms.png")

    app.add_typer(stats, name="stats")

    @app.command("inspect")
    def inspect_cmd(
        out: Path = typer.Argument(..., help="A bgforge output folder."),
        html: bool = typer.Option(False, "--html", help="Also write OUT/report.html, one self-contained page."),
        label: Optional[str] = typer.Option(None, "--label", help="Label field (default: the recipe's, e.g. y)."),
        attribute: Optional[str] = typer.Option(None, "--attribute", help="Background attribute field (default: the recipe's, e.g. place)."),
    ):
        """Does the dataset break the correlation it was built to break? Group matrix, achieved correlation and
        mutual information between label and background attribute per split, mask-area and paste-size statistics."""
        from .cli import _fail
        from .report.inspect import inspect_output, render_html, render_text

        try:
            report = inspect_output(out, label, attribute)
        except BgforgeError as exc:
            _fail(str(exc))
        typer.echo(render_text(report))
        if html:
            path = Path(out) / "report.html"
            path.write_text(render_html(report, out))
            typer.echo(f"bgforge: report -> {path}")
