"""`bgforge edit`: ASPIRE-style edits with a classifier in the loop, and the spurious-feature report."""

from __future__ import annotations

import json

from pathlib import Path
from typing import Optional

import typer

from .cli_stages import (BATCH, DEVICES, GDINO_CFG, GDINO_CKPT, INPUT, LAMA_CKPT, MANIFEST, OUT, OVERWRITE,
                         PRECISION, QUIET, SAM_CKPT, SAM_MODEL, SHARD, WORKERS, _s, model_options, parse_devices)
from .errors import BgforgeError

O = typer.Option


def _floats(text: Optional[str], flag: str):
    if text is None:
        return None
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise BgforgeError(f"{flag} expects 3 comma-separated numbers like 0.485,0.456,0.406, got {text!r}") from None


def register(app: typer.Typer) -> None:
    @app.command("edit")
    def edit_cmd(
        input: Path = INPUT, manifest: Optional[Path] = MANIFEST, out: Path = OUT,
        phrases: Path = O(..., "--phrases", "-p", help='JSONL, one line per image: {"key", "foreground": [...], "background", "alternate_background", "boxes": {phrase: [[x0,y0,x1,y1]]}}.'),
        edits: str = O("remove", "--edits", help="Comma-separated: remove (each foreground phrase, one at a time), background (swap it; needs a pool)."),
        grounding: str = O("auto", "--grounding", help="provided (boxes from the phrases file), grounded-sam (GroundingDINO boxes for each phrase), or auto (provided when every phrase has boxes)."),
        segmenter: str = O("auto", "--segmenter", help="Boxes -> masks: sam, box, grabcut; auto = sam on a GPU or with grounded-sam, else grabcut."),
        inpainter: str = O("auto", "--inpainter", help="lama, telea or ns; auto = lama on a GPU, else telea."),
        box_threshold: float = O(0.3, "--box-threshold", help="GroundingDINO box score threshold (ASPIRE: 0.3)."),
        text_threshold: float = O(0.25, "--text-threshold", help="GroundingDINO token threshold (ASPIRE: 0.25)."),
        multimask: bool = O(True, "--multimask/--single-mask", help="SAM: predict 3 masks per box and keep the best-scoring one."),
        dilation: int = O(15, "--dilation", help="Grow each removal mask by a k x k kernel before inpainting."),
        object_phrase: Optional[str] = O(None, "--object-phrase", help="What to keep in a background swap (default: the image's class name)."),
        backgrounds: Optional[Path] = O(None, "--backgrounds", help="Background pool: any image folder (or a bgforge output, e.g. inpainted backgrounds)."),
        places_root: Optional[Path] = O(None, "--places-root", help="Background pool: Places365; the category comes from each image's alternate_background phrase. Env: BGFORGE_PLACES_ROOT."),
        background_map: Optional[Path] = O(None, "--background-map", help="JSON {phrase: '/b/beach'} or CSV phrase,category, consulted before matching category names."),
        classifier: Optional[str] = O(None, "--classifier", help="TorchScript file, or a torchvision architecture name (resnet50, ...) with --classifier-weights."),
        classifier_weights: Optional[Path] = O(None, "--classifier-weights", help="Local state dict for an architecture name (nothing is downloaded)."),
        class_index: Optional[Path] = O(None, "--class-index", help="JSON or TXT: class index -> label name (labels may then be names)."),
        resize: int = O(256, "--resize", help="Classifier input: shorter side resized to N (0 = keep)."),
        crop: int = O(224, "--crop", help="Classifier input: centre crop N x N (0 = none)."),
        mean: Optional[str] = O(None, "--mean", help="Normalisation mean R,G,B (default ImageNet 0.485,0.456,0.406)."),
        std: Optional[str] = O(None, "--std", help="Normalisation std R,G,B (default ImageNet 0.229,0.224,0.225)."),
        top_k: int = O(3, "--top-k", min=1, help="Phrases per class in the report."),
        image_format: str = O("jpg", "--format", help="jpg or png (the classifier sees the stored pixels)."),
        seed: int = O(0, "--seed", help="Seed for the background draws."),
        sam_model: str = SAM_MODEL, sam_checkpoint: Optional[Path] = SAM_CKPT, gdino_config: Optional[Path] = GDINO_CFG,
        gdino_checkpoint: Optional[Path] = GDINO_CKPT, lama_checkpoint: Optional[Path] = LAMA_CKPT, precision: str = PRECISION,
        workers: int = WORKERS, devices: Optional[str] = DEVICES, batch_size: int = BATCH, shard_size: int = SHARD,
        overwrite: bool = OVERWRITE, quiet: bool = QUIET,
    ):
        """Edit images one named object at a time (or swap their background), flag the edits that flip a
        classifier, and rank the flipping phrases per class (OUT/spurious.json, spurious.md, preview/flips.png).

        Example: bgforge edit --input photos/ --manifest labels.jsonl --phrases phrases.jsonl --classifier model.pt --class-index classes.txt --out edits/
        """
        from .build import build
        from .cli import _errors_total, _fail, format_groups
        from .planners import BuildContext
        from .planners.edit import resolve_auto
        from .recipe import Recipe

        try:
            if image_format not in ("jpg", "png"):
                raise BgforgeError(f"--format must be jpg or png, got {image_format!r}")
            params = {"input": _s(input), "manifest": _s(manifest), "phrases": _s(phrases),
                      "edits": [e.strip() for e in edits.split(",") if e.strip()], "grounding": grounding,
                      "segmenter": segmenter, "inpainter": inpainter, "dilation": dilation,
                      "object_phrase": object_phrase, "backgrounds": _s(backgrounds), "places_root": _s(places_root),
                      "background_map": _s(background_map),
                      "classifier": _s(classifier) if classifier and Path(classifier).expanduser().exists() else classifier,
                      "classifier_weights": _s(classifier_weights), "class_index": _s(class_index),
                      "classifier_resize": resize, "classifier_crop": crop, "classifier_mean": _floats(mean, "--mean"),
                      "classifier_std": _floats(std, "--std"), "classifier_precision": precision,
                      "image_format": image_format, "jpeg_quality": 95, "seed": seed, "top_k": top_k,
                      "backend_options": model_options(sam_model, sam_checkpoint, gdino_config, gdino_checkpoint,
                                                       lama_checkpoint, precision, box_threshold, text_threshold, multimask)}
            gpu = devices != "cpu" and _cuda_available()
            params = resolve_auto(params, gpu)
            uses_torch = bool(classifier) or params["segmenter"] == "sam" or params["inpainter"] == "lama"
            recipe = Recipe(name="edit", planner="edit", params=params, description="bgforge edit")
            result = build(recipe, BuildContext(), out, workers=workers, shard_size=shard_size, overwrite=overwrite,
                           progress=not quiet, devices=parse_devices(devices, uses_torch), batch_size=batch_size)
            report = json.loads((Path(out) / "spurious.json").read_text()) if result.finalized else None
        except BgforgeError as exc:
            _fail(str(exc))
        if not quiet:
            typer.echo(format_groups(result.summary))
            for note in result.notes:
                typer.echo(f"  note: {note}")
        if report is not None:
            for name, c in report["classes"].items():
                top = ", ".join(f"{e['phrase']} ({e['flips']}/{e['edits']})" for e in c["top"]) or "no flips"
                typer.echo(f"  {name}: {top}")
        errors = _errors_total(out) if result.finalized else result.errors
        rate = result.rate
        typer.echo(f"bgforge: edit: {result.total_samples} samples ({params['grounding']} grounding, {params['segmenter']} + "
                   f"{params['inpainter']}), {errors} errors, {result.seconds:.1f} s ({rate:.1f} img/s) -> {out}"
                   + (f"; report {Path(out) / 'spurious.md'}" if report is not None else ""))
        if errors:
            raise typer.Exit(3)


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()
