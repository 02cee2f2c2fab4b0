"""`bgforge patchnet train` (AutoBackSwap's learned foreground detector) and `bgforge autobackswap`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..backends.registry import uses_torch
from . import options as opt
from .common import EXIT_SAMPLE_ERRORS, absolute, command, echo, quiet, run_stage
from .groups import group

USELESS_IOU = 0.1  # on its own training set: below this every segment mask would be (nearly) empty


def register(app: typer.Typer) -> None:
    patchnet = typer.Typer(help="AutoBackSwap's learned foreground detector (EfficientNet-B0, one foreground "
                                "probability per patch). Segment with `bgforge segment --backend patchnet "
                                "--patchnet-model M.pt`.", no_args_is_help=True)
    patchnet.command("train")(train_cmd)
    app.add_typer(patchnet, name="patchnet")
    app.command("autobackswap")(autobackswap_cmd)


@command
def train_cmd(
    images: Annotated[Path, typer.Option("--images", help="Folder the label file's image paths are relative to.")],
    labels: Annotated[Path, typer.Option(
        "--labels", help='L.json: {"<image path>": [[0,1,...], ...] (patch grid rows) or "<mask path>"}. '
                         'See docs/autobackswap.md.')],
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Checkpoint to write (M.pt): weights, input size, patch grid, bgforge version.")],
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Passes over the labelled images.")] = 30,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (AdamW, one-cycle schedule).")] = 3e-3,
    input_size: Annotated[Optional[int], typer.Option(
        "--input-size", help="Network input side (images are resized to it). Default: grid side x stride for grid "
                             "labels, else 224.")] = None,
    stride: Annotated[int, typer.Option(
        "--stride", help="Patch size in input pixels: 32 = the whole EfficientNet-B0 (paper, 7x7 patches at 224); "
                         "16 or 8 cut the backbone for finer masks.")] = 32,
    batch_size: opt.BatchSize = 16,
    seed: opt.Seed = 0,
    device: opt.text_option(
        "--device", help="cpu, cuda, cuda:N (default: cuda when available).") = None,
    init: opt.path_option(
        "--init", help="Start from a local checkpoint: a torchvision EfficientNet-B0 state dict or a "
                       "patchnet M.pt.") = None,
) -> None:
    """Train the patch detector with binary cross-entropy on a few hundred patch-labelled images.

    Example: bgforge patchnet train --images photos/ --labels patch_labels.json --out patchnet.pt --epochs 30
    """
    import time

    from ..backends.patchnet import train_patchnet
    from ..backends.patchnet.training import resume_path
    from ..progress import ProgressBar, format_duration, notice

    # a terminal shows a bar with the loss; a log gets one line per epoch (on_epoch), not the bar's lines
    bar = ProgressBar(epochs, "patchnet train", unit="epoch", interval=0, enabled=not quiet())
    bar.enabled = bar.bar is not None
    if resume_path(out).is_file():
        notice(f"resuming the interrupted training in {resume_path(out)}")
    started = time.monotonic()
    timing = {"last": started, "done": 0}

    def on_epoch(epoch: int, total: int, loss: float) -> None:
        now = time.monotonic()
        took, timing["last"] = now - timing["last"], now
        timing["done"] += 1
        left = (now - started) / timing["done"] * (total - epoch)
        if bar.bar is not None:
            bar.bar.set_postfix(loss=f"{loss:.4f}", s_per_epoch=f"{took:.1f}")
            bar.update(1)
        elif not quiet():
            notice(f"patchnet epoch {epoch}/{total}: loss {loss:.4f}, {took:.1f} s"
                   + (f", ~{format_duration(left)} left" if epoch < total else ""))
        if timing["done"] == 1 and left > 120 and not quiet():
            notice(f"~{format_duration(left)} to go at this pace; a stopped run resumes from its last epoch "
                   "(same command); for a trial, fewer --epochs or a smaller --input-size")

    try:
        res = train_patchnet(images, labels, out, epochs=epochs, lr=lr, seed=seed, device=device,
                             input_size=input_size, stride=stride, batch_size=batch_size, init=init,
                             on_epoch=on_epoch)
    finally:
        bar.close()
    echo(f"bgforge: patchnet: {res.images} images, {res.epochs} epochs, input {res.input_size}, "
               f"{res.grid}x{res.grid} patches: train loss {res.loss:.4f}, train patch IoU {res.iou:.3f}, "
               f"{res.seconds:.1f} s -> {out}")
    if res.iou < USELESS_IOU:
        echo(f"bgforge: warning: the detector finds almost none of its own training patches (patch IoU "
                   f"{res.iou:.3f} < {USELESS_IOU}); train longer (--epochs), label more images, or start from "
                   "--init; its masks would be empty", err=True)
        raise typer.Exit(EXIT_SAMPLE_ERRORS)


@command
def autobackswap_cmd(
    out: opt.Out,
    inputs: opt.InputOptions = group(),
    segmenter: opt.Segmenter = "patchnet",
    threshold: Annotated[float, typer.Option(
        "--patchnet-threshold", help="Foreground where the upsampled patch probability is >= this.")] = 0.5,
    inpainter: opt.Inpainter = "auto",
    ratio: Annotated[float, typer.Option(
        "--ratio", help="Swaps per image; fractional values give round(frac x n) images of a split one more "
                        "(e.g. 0.5: half the images).")] = 1.0,
    originals: Annotated[bool, typer.Option(
        "--originals/--no-originals", help="Also write the original images (group <label>_on_<label>).")] = True,
    dilation: opt.Dilation = 15,
    feather: Annotated[float, typer.Option(
        "--feather", help="Gaussian sigma (px) softening the pasted mask's edge; 0 = hard cut-out.")] = 0.0,
    image_format: opt.Format = opt.ImageFormat.jpg,
    jpeg_quality: opt.JpegQuality = None,
    seed: opt.Seed = 0,
    models: opt.ModelOptions = group(omit=("gdino_config", "gdino_checkpoint", "precision", "gdino_max_boxes")),
    run: opt.RunOptions = group(),
    output: opt.OutputOptions = group(),
) -> None:
    """Paste every image's foreground onto inpainted backgrounds of images from other classes.

    Phase 1 segments and inpaints each needed image once (OUT/backgrounds); phase 2 writes originals and
    swaps as shards, each json with label, bg_label, source and background keys, group <label>_on_<bg_label>.

    Example: bgforge autobackswap --input photos/ --manifest labels.jsonl --patchnet-model patchnet.pt --ratio 0.5 --out abs/
    """
    from .. import recipe as recipemod

    params = recipemod.load("autobackswap").params
    options = {"sam_model": models.sam_model.value, "sam_checkpoint": absolute(models.sam_checkpoint),
               "lama_checkpoint": absolute(models.lama_checkpoint), "compile": models.compile or None}
    params.update(**inputs.params(), patchnet_model=absolute(models.patchnet_model),
                  segmenter=segmenter, patchnet_threshold=threshold, inpainter=inpainter, ratio=ratio,
                  include_originals=originals, dilation=dilation, feather=feather, image_format=image_format.value,
                  jpeg_quality=jpeg_quality,
                  seed=seed, backend_options={k: v for k, v in options.items() if v is not None})
    run_stage("autobackswap", params, out, run, output, needs_gpu=uses_torch(segmenter, inpainter))
