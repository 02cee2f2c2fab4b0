"""`bgforge segment` and `bgforge inpaint`: the model stages on any input."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..execution.devices import TORCH_SEGMENTERS
from . import options as opt
from .common import command, model_options, run_stage
from .groups import group


def register(app: typer.Typer) -> None:
    app.command("segment")(segment_cmd)
    app.command("inpaint")(inpaint_cmd)


@command
def segment_cmd(
    out: opt.Out,
    inputs: opt.InputOptions = group(),
    backend: Annotated[str, typer.Option("--backend", "-b", help=f"The segmenter: {opt.SEGMENTER_HELP}.")] = "sam",
    prompt: opt.Prompt = None,
    prompt_from_label: Annotated[bool, typer.Option(
        "--prompt-from-label", help="Use each image's label as its text prompt.")] = False,
    box_threshold: opt.BoxThreshold = 0.3,  # ASPIRE's, as `bgforge edit`
    text_threshold: opt.TextThreshold = 0.25,
    multimask: opt.Multimask = True,
    dilation: opt.Dilation = 0,
    models: opt.ModelOptions = group(omit=("lama_checkpoint",)),
    run: opt.RunOptions = group(),
) -> None:
    """Cut objects out: write one mask per image (mask.png, the union of its objects) with boxes, scores and area.

    Example: bgforge segment --input photos/ --manifest boxes.jsonl --backend sam --out masks/
    """
    params = {**inputs.params(), "segmenter": backend, "prompt": prompt,
              "prompt_from_label": prompt_from_label, "dilation": dilation,
              "backend_options": model_options(models, box_threshold=box_threshold, text_threshold=text_threshold,
                                               multimask=multimask)}
    run_stage("segment", params, out, run, needs_gpu=backend in TORCH_SEGMENTERS, extra_summary=_empty_masks)


@command
def inpaint_cmd(
    out: opt.Out,
    inputs: opt.InputOptions = group(),
    backend: Annotated[str, typer.Option("--backend", "-b", help=f"The inpainter: {opt.INPAINTER_HELP}.")] = "lama",
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
    models: opt.ModelOptions = group(),
    run: opt.RunOptions = group(),
) -> None:
    """Remove the foreground and fill the hole: write clean backgrounds (and the dilated mask used).

    Masks come from the input (an earlier `bgforge segment` run, or the manifest's mask files); images
    without one are segmented with --segmenter (from their boxes or text prompt).

    Example: bgforge inpaint --input masks/ --backend lama --out backgrounds/
    """
    seg = None if segmenter == "none" else segmenter
    params = {**inputs.params(), "inpainter": backend, "segmenter": seg,
              "prompt": prompt, "dilation": dilation, "one_by_one": one_by_one, "resize": resize,
              "image_format": image_format.value, "backend_options": model_options(models),
              **({"object_mask": True} if object_mask else {})}  # absent when off: older plans still resume
    run_stage("inpaint", params, out, run, needs_gpu=backend == "lama" or seg in TORCH_SEGMENTERS)


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
        typer.echo(f"bgforge: warning: every one of the {len(areas)} masks is empty; check the backend, its model "
                   "and thresholds (for patchnet: `patchnet train` reports its patch IoU)", err=True)
    return []
