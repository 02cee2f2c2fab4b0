"""`bgforge segment` and `bgforge inpaint`: the model stages on any input."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..execution.devices import TORCH_SEGMENTERS, parse_devices
from .common import absolute, model_options, reports_user_errors, run_stage
from .options import (
    INPAINTER_HELP,
    SEGMENTER_HELP,
    BatchSize,
    BoxThreshold,
    Devices,
    Dilation,
    Format,
    GdinoCheckpoint,
    GdinoConfig,
    ImageFormat,
    Input,
    LamaCheckpoint,
    Manifest,
    ModelPrecision,
    Multimask,
    Out,
    Overwrite,
    PatchnetModel,
    Precision,
    Prompt,
    Quiet,
    SamCheckpoint,
    SamModel,
    Segmenter,
    ShardSize,
    TextThreshold,
    Workers,
)


def register(app: typer.Typer) -> None:
    app.command("segment")(segment_cmd)
    app.command("inpaint")(inpaint_cmd)


@reports_user_errors
def segment_cmd(
    input: Input,
    out: Out,
    manifest: Manifest = None,
    backend: Annotated[str, typer.Option("--backend", "-b", help=f"The segmenter: {SEGMENTER_HELP}.")] = "sam",
    prompt: Prompt = None,
    prompt_from_label: Annotated[bool, typer.Option(
        "--prompt-from-label", help="Use each image's label as its text prompt.")] = False,
    box_threshold: BoxThreshold = 0.35,
    text_threshold: TextThreshold = 0.25,
    multimask: Multimask = True,
    dilation: Dilation = 0,
    sam_model: SamModel = "vit_h", sam_checkpoint: SamCheckpoint = None, gdino_config: GdinoConfig = None,
    gdino_checkpoint: GdinoCheckpoint = None, precision: ModelPrecision = Precision.fp32,
    patchnet_model: PatchnetModel = None,
    workers: Workers = 1, devices: Devices = None, batch_size: BatchSize = 8, shard_size: ShardSize = 1000,
    overwrite: Overwrite = False, quiet: Quiet = False,
) -> None:
    """Cut objects out: write one mask per image (mask.png, the union of its objects) with boxes, scores and area.

    Example: bgforge segment --input photos/ --manifest boxes.jsonl --backend sam --out masks/
    """
    params = {"input": absolute(input), "manifest": absolute(manifest), "segmenter": backend, "prompt": prompt,
              "prompt_from_label": prompt_from_label, "dilation": dilation,
              "backend_options": model_options(sam_model, sam_checkpoint, gdino_config, gdino_checkpoint, None,
                                               precision.value, box_threshold, text_threshold, multimask,
                                               patchnet_model)}
    run_stage("segment", params, out, quiet=quiet, workers=workers, shard_size=shard_size, overwrite=overwrite,
              devices=parse_devices(devices, backend in TORCH_SEGMENTERS), batch_size=batch_size)


@reports_user_errors
def inpaint_cmd(
    input: Input,
    out: Out,
    manifest: Manifest = None,
    backend: Annotated[str, typer.Option("--backend", "-b", help=f"The inpainter: {INPAINTER_HELP}.")] = "lama",
    segmenter: Segmenter = "box",
    prompt: Prompt = None,
    dilation: Dilation = 15,
    one_by_one: Annotated[bool, typer.Option(
        "--one-by-one", help="Remove objects one at a time, feeding each result on.")] = False,
    resize: Annotated[Optional[int], typer.Option(
        "--resize", help="Resize the background to N x N (224 for Hard-Spurious-ImageNet).")] = None,
    image_format: Format = ImageFormat.jpg,
    sam_model: SamModel = "vit_h", sam_checkpoint: SamCheckpoint = None, gdino_config: GdinoConfig = None,
    gdino_checkpoint: GdinoCheckpoint = None, lama_checkpoint: LamaCheckpoint = None,
    precision: ModelPrecision = Precision.fp32, patchnet_model: PatchnetModel = None,
    workers: Workers = 1, devices: Devices = None, batch_size: BatchSize = 8, shard_size: ShardSize = 1000,
    overwrite: Overwrite = False, quiet: Quiet = False,
) -> None:
    """Remove the foreground and fill the hole: write clean backgrounds (and the dilated mask used).

    Masks come from the input (an earlier `bgforge segment` run, or the manifest's mask files); images
    without one are segmented with --segmenter (from their boxes or text prompt).

    Example: bgforge inpaint --input masks/ --backend lama --out backgrounds/
    """
    seg = None if segmenter == "none" else segmenter
    params = {"input": absolute(input), "manifest": absolute(manifest), "inpainter": backend, "segmenter": seg,
              "prompt": prompt, "dilation": dilation, "one_by_one": one_by_one, "resize": resize,
              "image_format": image_format.value,
              "backend_options": model_options(sam_model, sam_checkpoint, gdino_config, gdino_checkpoint,
                                               lama_checkpoint, precision.value, patchnet_model=patchnet_model)}
    run_stage("inpaint", params, out, quiet=quiet, workers=workers, shard_size=shard_size, overwrite=overwrite,
              devices=parse_devices(devices, backend == "lama" or seg in TORCH_SEGMENTERS), batch_size=batch_size)
