"""`bgforge segment`, `bgforge inpaint` and `bgforge composite`: the stages on any input."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..backends.registry import uses_torch
from . import options as opt
from .common import absolute, command, echo, model_options, run_stage
from .groups import group


def register(app: typer.Typer) -> None:
    app.command("segment")(segment_cmd)
    app.command("inpaint")(inpaint_cmd)
    app.command("composite")(composite_cmd)


@command
def segment_cmd(
    out: opt.Out,
    inputs: opt.InputOptions = group(),
    backend: Annotated[str, typer.Option("--backend", "-b", autocompletion=opt.COMPLETE_SEGMENTERS,
                                                        help=f"The segmenter: {opt.SEGMENTER_HELP}.")] = "sam",
    prompt: opt.Prompt = None,
    prompt_from_label: Annotated[bool, typer.Option(
        "--prompt-from-label", help="Use each image's label as its text prompt.")] = False,
    box_threshold: opt.BoxThreshold = 0.3,  # ASPIRE's, as `bgforge edit`
    text_threshold: opt.TextThreshold = 0.25,
    multimask: opt.Multimask = True,
    dilation: opt.Dilation = 0,
    models: opt.ModelOptions = group(omit=("lama_checkpoint",)),
    run: opt.RunOptions = group(),
    output: opt.OutputOptions = group(),
) -> None:
    """Cut objects out: write one mask per image (mask.png, the union of its objects) with boxes, scores and area.

    Example: bgforge segment --input photos/ --manifest boxes.jsonl --backend sam --out masks/
    """
    params = {**inputs.params(), "segmenter": backend, "prompt": prompt,
              "prompt_from_label": prompt_from_label, "dilation": dilation,
              "backend_options": model_options(models, box_threshold=box_threshold, text_threshold=text_threshold,
                                               multimask=multimask)}
    run_stage("segment", params, out, run, output, needs_gpu=uses_torch(backend), extra_summary=_empty_masks)


@command
def inpaint_cmd(
    out: opt.Out,
    inputs: opt.InputOptions = group(),
    backend: Annotated[str, typer.Option("--backend", "-b", autocompletion=opt.COMPLETE_INPAINTERS,
                                                        help=f"The inpainter: {opt.INPAINTER_HELP}.")] = "lama",
    segmenter: opt.Segmenter = "box",
    prompt: opt.Prompt = None,
    dilation: opt.Dilation = 15,
    one_by_one: Annotated[bool, typer.Option(
        "--one-by-one", help="Remove objects one at a time, feeding each result on.")] = False,
    resize: Annotated[Optional[int], typer.Option(
        "--resize", help="Resize the background to N x N (224 for Hard-Spurious-ImageNet).")] = None,
    object_mask: Annotated[bool, typer.Option(
        "--object-mask", help="Also store each image's object cut-out (object.png) and mask, so `bgforge composite "
                              "--fg-mode mask` can paste the object itself.")] = False,
    image_format: opt.Format = opt.ImageFormat.jpg,
    jpeg_quality: opt.JpegQuality = None,
    models: opt.ModelOptions = group(),
    run: opt.RunOptions = group(),
    output: opt.OutputOptions = group(),
) -> None:
    """Remove the foreground and fill the hole: write clean backgrounds (and the dilated mask used).

    Masks come from the input (an earlier `bgforge segment` run, or the manifest's mask files); images
    without one are segmented with --segmenter (from their boxes or text prompt).

    Example: bgforge inpaint --input masks/ --backend lama --out backgrounds/
    """
    seg = None if segmenter == "none" else segmenter
    params = {**inputs.params(), "inpainter": backend, "segmenter": seg,
              "prompt": prompt, "dilation": dilation, "one_by_one": one_by_one, "resize": resize,
              "image_format": image_format.value, "jpeg_quality": jpeg_quality, "backend_options": model_options(models),
              **({"object_mask": True} if object_mask else {})}  # absent when off: older plans still resume
    run_stage("inpaint", params, out, run, output, needs_gpu=uses_torch(backend, seg))


def _empty_masks(result) -> list[str]:
    """A warning when no written mask covers a single pixel (a detector that finds nothing, a wrong
    threshold): the output is complete but useless, and nothing else would say so."""
    import csv

    table = Path(result.out) / "metadata.csv"
    if not result.finalized or not table.exists():
        return []
    with open(table, newline="") as fh:
        areas = [float(r.get("area_frac") or 0) for r in csv.DictReader(fh)]
    if areas and not any(areas):
        echo(f"bgforge: warning: every one of the {len(areas)} masks is empty; check the backend, its model "
                   "and thresholds (for patchnet: `patchnet train` reports its patch IoU)", err=True)
    return []


@command
def composite_cmd(
    fg: Annotated[Path, typer.Option(
        "--fg", help="Foregrounds: an image folder (with --fg-manifest giving boxes/labels) or a bgforge stage output.")],
    bg: Annotated[Path, typer.Option(
        "--bg", help="Backgrounds: a `bgforge inpaint` output (keys match the foregrounds) or an image folder.")],
    out: opt.Out,
    fg_manifest: Annotated[Optional[Path], typer.Option(
        "--fg-manifest", help="JSONL/CSV for --fg: path, label, boxes (the largest box is pasted).")] = None,
    bg_manifest: Annotated[Optional[Path], typer.Option(
        "--bg-manifest", help="JSONL/CSV for --bg: path, label (needed by --bg-mode random).")] = None,
    size: Annotated[int, typer.Option(
        "--size", min=1, help="Foreground size s: resized to s x s (56/84/112 in Hard-Spurious-ImageNet).")] = 112,
    pos: Annotated[opt.Position, typer.Option(
        "--pos", help="center | corner (top-right) | corner-random (one of four, per sample).")] = opt.Position.center,
    bg_mode: Annotated[opt.BgMode, typer.Option(
        "--bg-mode", help="original (the image's own background: same key) | random (another class's).")] = opt.BgMode.original,
    ar_preserve: Annotated[bool, typer.Option(
        "--ar-preserve", help="Resize the shorter side to s keeping the aspect ratio (longer side <= canvas).")] = False,
    fg_mode: Annotated[opt.FgMode, typer.Option(
        "--fg-mode", help="box (rectangular crop of the box) | mask (paste only the object: needs object.png in "
                          "--bg, written by `bgforge inpaint --object-mask`).")] = opt.FgMode.box,
    canvas: Annotated[int, typer.Option("--canvas", help="Output size (backgrounds are resized to it).")] = 224,
    image_format: opt.Format = opt.ImageFormat.jpg,
    jpeg_quality: opt.JpegQuality = None,
    seed: opt.Seed = 0,
    run: opt.RunOptions = group(omit=("devices", "io_threads")),  # pasting is CPU work
    output: opt.OutputOptions = group(),
) -> None:
    """Paste foregrounds onto backgrounds at one size and position: one Hard-Spurious-ImageNet group.

    Example: bgforge composite --fg images/ --fg-manifest boxes.jsonl --bg backgrounds/ --size 56 --pos corner
    --bg-mode random --out CoR-56/
    """
    params = {"fg": absolute(fg), "fg_manifest": absolute(fg_manifest), "bg": absolute(bg),
              "bg_manifest": absolute(bg_manifest), "size": size, "position": pos.value, "bg_mode": bg_mode.value,
              "ar_preserve": ar_preserve, "fg_mode": fg_mode.value, "canvas": canvas, "image_format": image_format.value,
              "seed": seed, "jpeg_quality": jpeg_quality}
    run_stage("composite", params, out, run, output)
