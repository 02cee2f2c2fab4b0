"""`bgforge edit`: ASPIRE-style edits with a classifier in the loop, and the spurious-feature report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Iterator, List, Optional

import typer

from ..errors import BgforgeError
from ..execution.devices import gpu_available, parse_devices
from .common import absolute, build_and_report, model_options, reports_user_errors, stage_recipe
from .options import (
    BatchSize,
    BoxThreshold,
    Devices,
    Dilation,
    Format,
    GdinoCheckpoint,
    GdinoConfig,
    ImageFormat,
    Inpainter,
    Input,
    LamaCheckpoint,
    Manifest,
    ModelPrecision,
    Multimask,
    Out,
    Overwrite,
    PlacesRoot,
    Precision,
    Quiet,
    SamCheckpoint,
    SamModel,
    Seed,
    Segmenter,
    ShardSize,
    TextThreshold,
    Workers,
)


def register(app: typer.Typer) -> None:
    app.command("edit")(edit_cmd)


def _floats(text: Optional[str], flag: str) -> Optional[List[float]]:
    if text is None:
        return None
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise BgforgeError(f"{flag} expects 3 comma-separated numbers like 0.485,0.456,0.406, got {text!r}") from None


@reports_user_errors
def edit_cmd(
    input: Input,
    out: Out,
    phrases: Annotated[Path, typer.Option(
        "--phrases", "-p", help='JSONL, one line per image: {"key", "foreground": [...], "background", '
                                '"alternate_background", "boxes": {phrase: [[x0,y0,x1,y1]]}}.')],
    manifest: Manifest = None,
    edits: Annotated[str, typer.Option(
        "--edits", help="Comma-separated: remove (each foreground phrase, one at a time), background (swap it; "
                        "needs a pool).")] = "remove",
    grounding: Annotated[str, typer.Option(
        "--grounding", help="provided (boxes from the phrases file), grounded-sam (GroundingDINO boxes for each "
                            "phrase), or auto (provided when every phrase has boxes).")] = "auto",
    segmenter: Segmenter = "auto",
    inpainter: Inpainter = "auto",
    box_threshold: BoxThreshold = 0.3,  # ASPIRE's
    text_threshold: TextThreshold = 0.25,
    multimask: Multimask = True,
    dilation: Dilation = 15,
    object_phrase: Annotated[Optional[str], typer.Option(
        "--object-phrase", help="What to keep in a background swap (default: the image's class name).")] = None,
    backgrounds: Annotated[Optional[Path], typer.Option(
        "--backgrounds", help="Background pool: any image folder (or a bgforge output, e.g. inpainted "
                              "backgrounds).")] = None,
    places_root: PlacesRoot = None,
    background_map: Annotated[Optional[Path], typer.Option(
        "--background-map", help="JSON {phrase: '/b/beach'} or CSV phrase,category, consulted before matching "
                                 "category names.")] = None,
    classifier: Annotated[Optional[str], typer.Option(
        "--classifier", help="TorchScript file, or a torchvision architecture name (resnet50, ...) with "
                             "--classifier-weights.")] = None,
    classifier_weights: Annotated[Optional[Path], typer.Option(
        "--classifier-weights", help="Local state dict for an architecture name (nothing is downloaded).")] = None,
    class_index: Annotated[Optional[Path], typer.Option(
        "--class-index", help="JSON or TXT: class index -> label name (labels may then be names).")] = None,
    resize: Annotated[int, typer.Option(
        "--resize", help="Classifier input: shorter side resized to N (0 = keep).")] = 256,
    crop: Annotated[int, typer.Option("--crop", help="Classifier input: centre crop N x N (0 = none).")] = 224,
    mean: Annotated[Optional[str], typer.Option(
        "--mean", help="Normalisation mean R,G,B (default ImageNet 0.485,0.456,0.406).")] = None,
    std: Annotated[Optional[str], typer.Option(
        "--std", help="Normalisation std R,G,B (default ImageNet 0.229,0.224,0.225).")] = None,
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="Phrases per class in the report.")] = 3,
    image_format: Format = ImageFormat.jpg,
    seed: Seed = 0,
    sam_model: SamModel = "vit_h", sam_checkpoint: SamCheckpoint = None, gdino_config: GdinoConfig = None,
    gdino_checkpoint: GdinoCheckpoint = None, lama_checkpoint: LamaCheckpoint = None,
    precision: ModelPrecision = Precision.fp32,
    workers: Workers = 1, devices: Devices = None, batch_size: BatchSize = 8, shard_size: ShardSize = 1000,
    overwrite: Overwrite = False, quiet: Quiet = False,
) -> None:
    """Edit images one named object at a time (or swap their background), flag the edits that flip a
    classifier, and rank the flipping phrases per class (OUT/spurious.json, spurious.md, preview/flips.png).

    Backgrounds for swaps come from --backgrounds, or from --places-root by each image's
    alternate_background phrase.

    Example: bgforge edit --input photos/ --manifest labels.jsonl --phrases phrases.jsonl --classifier model.pt
    --class-index classes.txt --out edits/
    """
    from ..planners.edit import resolve_auto

    params = {"input": absolute(input), "manifest": absolute(manifest), "phrases": absolute(phrases),
              "edits": [e.strip() for e in edits.split(",") if e.strip()], "grounding": grounding,
              "segmenter": segmenter, "inpainter": inpainter, "dilation": dilation,
              "object_phrase": object_phrase, "backgrounds": absolute(backgrounds),
              "places_root": absolute(places_root), "background_map": absolute(background_map),
              "classifier": absolute(classifier) if classifier and Path(classifier).expanduser().exists() else classifier,
              "classifier_weights": absolute(classifier_weights), "class_index": absolute(class_index),
              "classifier_resize": resize, "classifier_crop": crop, "classifier_mean": _floats(mean, "--mean"),
              "classifier_std": _floats(std, "--std"), "classifier_precision": precision.value,
              "image_format": image_format.value, "jpeg_quality": 95, "seed": seed, "top_k": top_k,
              "backend_options": model_options(sam_model, sam_checkpoint, gdino_config, gdino_checkpoint,
                                               lama_checkpoint, precision.value, box_threshold, text_threshold,
                                               multimask)}
    params = resolve_auto(params, devices != "cpu" and gpu_available())
    uses_torch = bool(classifier) or params["segmenter"] == "sam" or params["inpainter"] == "lama"

    def flip_report(result) -> Iterator[str]:
        if not quiet:
            for note in result.notes:
                yield f"  note: {note}"
        if result.finalized:
            report = json.loads((Path(out) / "spurious.json").read_text())
            for name, c in report["classes"].items():
                top = ", ".join(f"{e['phrase']} ({e['flips']}/{e['edits']})" for e in c["top"]) or "no flips"
                yield f"  {name}: {top}"

    def summary_line(result, errors: int) -> str:
        return (f"bgforge: edit: {result.total_samples} samples ({params['grounding']} grounding, "
                f"{params['segmenter']} + {params['inpainter']}), {errors} errors, {result.seconds:.1f} s "
                f"({result.rate:.1f} img/s) -> {out}"
                + (f"; report {Path(out) / 'spurious.md'}" if result.finalized else ""))

    build_and_report(stage_recipe("edit", params), out, quiet=quiet, summary_line=summary_line,
                     extra_summary=flip_report, workers=workers, shard_size=shard_size, overwrite=overwrite,
                     devices=parse_devices(devices, uses_torch), batch_size=batch_size)
