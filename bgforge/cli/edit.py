"""`bgforge edit`: ASPIRE-style edits with a classifier in the loop, and the spurious-feature report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Iterator, List, Optional

import typer

from ..backends.registry import uses_torch
from ..errors import BgforgeError
from ..execution.devices import gpu_available
from . import options as opt
from .common import absolute, build_and_report, command, model_options, stage_recipe
from .groups import group


def register(app: typer.Typer) -> None:
    app.command("edit")(edit_cmd)


def too_wide_skips(out: Path) -> int:
    """Edits in OUT/errors.jsonl that the reference's vertical dilation could not run on (too wide)."""
    from ..backends.masks import TOO_WIDE_FOR_REFERENCE

    path = out / "errors.jsonl"
    if not path.is_file():
        return 0
    with open(path) as fh:
        return sum(TOO_WIDE_FOR_REFERENCE in line for line in fh)


def _floats(text: Optional[str], flag: str) -> Optional[List[float]]:
    if text is None:
        return None
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise BgforgeError(f"{flag} expects 3 comma-separated numbers like 0.485,0.456,0.406, got {text!r}") from None


@command
def edit_cmd(
    out: opt.Out,
    phrases: Annotated[Path, typer.Option(
        "--phrases", "-p", help='JSONL, one line per image: {"key", "foreground": [...], "background", '
                                '"alternate_background", "boxes": {phrase: [[x0,y0,x1,y1]]}}.')],
    inputs: opt.InputOptions = group(),
    edits: Annotated[str, typer.Option(
        "--edits", help="Comma-separated: remove (each foreground phrase, one at a time), background (swap it; "
                        "needs a pool).")] = "remove",
    grounding: Annotated[opt.EditGrounding, typer.Option(
        "--grounding", help="provided (boxes from the phrases file), grounded-sam (GroundingDINO boxes for each "
                            "phrase), or auto (provided when every phrase has boxes).")] = opt.EditGrounding.auto,
    segmenter: opt.Segmenter = "auto",
    inpainter: opt.Inpainter = "auto",
    box_threshold: opt.BoxThreshold = 0.3,  # ASPIRE's
    text_threshold: opt.TextThreshold = 0.25,
    multimask: opt.Multimask = False,  # ASPIRE's reference: multimask_output=False
    dilation: opt.Dilation = 10,  # ASPIRE's README runs the removal with kernel 10
    classify_stored: Annotated[bool, typer.Option(
        "--classify-stored", help="Classify each edit after its JPEG round trip (the stored pixels) instead of the "
                                  "in-memory pixels the reference classifies.")] = False,
    phrase_collapse: Annotated[opt.PhraseCollapse, typer.Option(
        "--phrase-collapse", help="reference (default; ASPIRE's parse_top_k_classes.py: Porter stems, CountVectorizer "
                                  "cosine >= 0.7, clusters ranked by the sum of flips / occurrences) or bgforge "
                                  "(articles, numbers and plurals dropped, difflib ratio >= 0.85).")] \
        = opt.PhraseCollapse.reference,
    dilation_shape: Annotated[opt.DilationShape, typer.Option(
        "--dilation-shape", help="vertical (default, the reference: its dilate_mask gets a (1, H, W) array, which "
                                 "OpenCV dilates along rows only; on images wider than 512 px it cannot run and the "
                                 "phrase is skipped, counted in the summary) or square.")] = opt.DilationShape.vertical,
    object_phrase: opt.text_option(
        "--object-phrase", help="What to keep in a background swap (default: the image's class name).") = None,
    backgrounds: opt.path_option(
        "--backgrounds", help="Background pool: any image folder (or a bgforge output, e.g. inpainted "
                              "backgrounds).") = None,
    places_root: opt.PlacesRoot = None,
    background_map: opt.path_option(
        "--background-map", help="JSON {phrase: '/b/beach'} or CSV phrase,category, consulted before matching "
                                 "category names.") = None,
    classifier: opt.text_option(
        "--classifier", help="TorchScript file, or a torchvision architecture name (resnet50, ...) with "
                             "--classifier-weights.") = None,
    classifier_weights: opt.path_option(
        "--classifier-weights", help="Local state dict for an architecture name (nothing is downloaded).") = None,
    class_index: opt.path_option(
        "--class-index", help="JSON or TXT: class index -> label name (labels may then be names).") = None,
    preprocess: Annotated[opt.ClassifierPreset, typer.Option(
        "--preprocess", help="Classifier input preset: reference (ASPIRE's: the image squashed to 224 x 224, PIL "
                             "bilinear, mean and std 0.5) or imagenet (shorter side 256, centre crop 224, ImageNet "
                             "mean/std). --resize, --crop, --mean, --std override it.")] = opt.ClassifierPreset.reference,
    resize: Annotated[Optional[int], typer.Option(
        "--resize", help="Classifier input: resized to N (shorter side; reference preset: N x N) (0 = keep).")] = None,
    crop: Annotated[Optional[int], typer.Option(
        "--crop", help="Classifier input: centre crop N x N (0 = none).")] = None,
    mean: opt.text_option(
        "--mean", help="Normalisation mean R,G,B (default: the --preprocess preset's).") = None,
    std: opt.text_option(
        "--std", help="Normalisation std R,G,B (default: the --preprocess preset's).") = None,
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="Phrases per class in the report.")] = 3,
    top_k_rank: Annotated[opt.TopKRank, typer.Option(
        "--top-k-rank", help="reference (ASPIRE's code; with --phrase-collapse reference its score: sum of flips / "
                             "occurrences, ties by flips; with bgforge: flips / edits, ties by flips) | frequency "
                             "(most flips first, the paper's wording).")] = opt.TopKRank.reference,
    image_format: opt.Format = opt.ImageFormat.jpg,
    jpeg_quality: opt.JpegQuality = None,
    seed: opt.Seed = 0,
    models: opt.ModelOptions = group(omit=("patchnet_model",)),
    run: opt.RunOptions = group(),
    output: opt.OutputOptions = group(),
) -> None:
    """Edit images one named object at a time (or swap their background), flag the edits that flip a
    classifier, and rank the flipping phrases per class (OUT/spurious.json, spurious.md, .bgforge/preview/flips.png).

    Backgrounds for swaps come from --backgrounds, or from --places-root by each image's
    alternate_background phrase.

    Example: bgforge edit --input photos/ --manifest labels.jsonl --phrases phrases.jsonl --classifier model.pt
    --class-index classes.txt --out edits/
    """
    from ..planners.edit import resolve_auto

    params = {**inputs.params(), "phrases": absolute(phrases),
              "edits": [e.strip() for e in edits.split(",") if e.strip()], "grounding": grounding.value,
              "segmenter": segmenter, "inpainter": inpainter, "dilation": dilation,
              "dilation_shape": dilation_shape.value, "phrase_collapse": phrase_collapse.value,
              **({"classify_stored": True} if classify_stored else {}),
              "object_phrase": object_phrase, "backgrounds": absolute(backgrounds),
              "places_root": absolute(places_root), "background_map": absolute(background_map),
              "classifier": absolute(classifier) if classifier and Path(classifier).expanduser().exists() else classifier,
              "classifier_weights": absolute(classifier_weights), "class_index": absolute(class_index),
              "classifier_preprocess": preprocess.value, "classifier_resize": resize, "classifier_crop": crop,
              "classifier_mean": _floats(mean, "--mean"),
              "classifier_std": _floats(std, "--std"), "classifier_precision": models.precision.value,
              "image_format": image_format.value, "jpeg_quality": jpeg_quality, "seed": seed, "top_k": top_k,
              "top_k_rank": top_k_rank.value,
              "backend_options": model_options(models, box_threshold=box_threshold, text_threshold=text_threshold,
                                               multimask=multimask)}
    params = resolve_auto(params, run.devices != "cpu" and gpu_available())
    torch_models = bool(classifier) or uses_torch(params["segmenter"], params["inpainter"])

    def flip_report(result) -> Iterator[str]:  # hidden by -q, as every line but the summary
        for note in result.notes:
            yield f"  note: {note}"
        if result.finalized:
            report = json.loads((Path(out) / "spurious.json").read_text())
            for name, c in report["classes"].items():
                top = ", ".join(f"{e['phrase']} ({e['flips']}/{e['edits']})" for e in c["top"]) or "no flips"
                yield f"  {name}: {top}"

    def report_path(result) -> str:
        from ..backends.masks import OPENCV_MAX_CHANNELS  # numpy: not at import time (--help, completion)

        wide = too_wide_skips(Path(out)) if result.finalized else 0
        skipped = (f"; {wide} phrase(s) skipped: image wider than {OPENCV_MAX_CHANNELS} px, where the reference's "
                   "vertical dilation cannot run (--dilation-shape square dilates them)") if wide else ""
        return skipped + (f"; report {Path(out) / 'spurious.md'}" if result.finalized else "")

    build_and_report(stage_recipe("edit", params), out, run, output=output, extra_summary=flip_report,
                     summary_extra=report_path,
                     title=f"edit ({params['grounding']} grounding, {params['segmenter']} + {params['inpainter']})",
                     needs_gpu=torch_models)
