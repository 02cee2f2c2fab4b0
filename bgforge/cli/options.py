"""Every option that more than one bgforge command takes, declared once.

A command annotates a parameter with one of these aliases and gives only its default
(`seed: Seed = 0`), so a flag has one spelling, one meaning and one help text wherever it
appears. Options that only one command has are declared next to that command.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer


# ---------------------------------------------------------------- choices
# Values mirror the library's own lists (build.LAYOUTS, build.EXECUTORS, backends.device.PRECISIONS,
# the composite planner's positions); tests/test_cli.py keeps them in step.
class ImageFormat(str, Enum):
    jpg = "jpg"
    png = "png"


class Layout(str, Enum):
    shards = "shards"
    folder = "folder"
    both = "both"


class Executor(str, Enum):
    local = "local"
    ray = "ray"


class Position(str, Enum):
    center = "center"
    corner = "corner"
    corner_random = "corner-random"


class Precision(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


SEGMENTER_HELP = ("provided (mask files), box (box rectangles), grabcut (CPU, from boxes), sam (box prompts), "
                  "grounded-sam (text prompts), patchnet (a detector trained with `bgforge patchnet train`)")
INPAINTER_HELP = "lama (LaMa, GPU or CPU), telea or ns (OpenCV, CPU)"

# ---------------------------------------------------------------- where data comes from and goes
Input = Annotated[Path, typer.Option(
    "--input", "-i", help="A folder of images, or the output folder of an earlier bgforge stage (its shards).")]
Manifest = Annotated[Optional[Path], typer.Option(
    "--manifest", "-m", help="JSONL or CSV with key, path, label, boxes, text, mask, split per image.")]
Out = Annotated[Path, typer.Option(
    "--out", "-o", help="Output folder, created if missing (shards/, metadata.csv, manifest.json, preview/). "
                        "Re-running the same command resumes it.")]
CubRoot = Annotated[Optional[Path], typer.Option(
    "--cub-root", help="CUB_200_2011 folder (holds images.txt, images/, segmentations/). Env: BGFORGE_CUB_ROOT.")]
PlacesRoot = Annotated[Optional[Path], typer.Option(
    "--places-root", help="Places365 folder (data_large/, data_256/, places365_standard/ or train/). "
                          "Env: BGFORGE_PLACES_ROOT.")]
CocoRoot = Annotated[Optional[Path], typer.Option(
    "--coco-root", help="COCO 2017 folder (annotations/instances_*.json, train2017/). Env: BGFORGE_COCO_ROOT.")]
TexturesRoot = Annotated[Optional[Path], typer.Option(
    "--textures-root", help="Texture images folder (e.g. dtd/images) for bap-coco-vehicles. Env: BGFORGE_TEXTURES_ROOT.")]
ImagenetRoot = Annotated[Optional[Path], typer.Option(
    "--imagenet-root", help="ILSVRC-2012 folder (train/, val/, Annotation/ or LOC_*_solution.csv; or the Kaggle "
                            "ILSVRC/ layout). Env: BGFORGE_IMAGENET_ROOT.")]

# ---------------------------------------------------------------- how a run executes
Seed = Annotated[Optional[int], typer.Option(
    "--seed", help="Seed of every random draw (backgrounds, positions, swaps, training order): the same inputs and "
                   "seed give the same bytes. `build` without it uses the recipe's seed.")]
Workers = Annotated[int, typer.Option(
    "--workers", "-w", min=1, help="Worker processes on the CPU (on GPUs: one per --devices entry). "
                                   "Output bytes do not depend on it.")]
Devices = Annotated[Optional[str], typer.Option(
    "--devices", help="GPUs for the model stages, one worker per entry: '0,1' ('0,0,1,1': two each). Default: "
                      "every visible GPU with two workers each (one decodes while the other infers); "
                      "'cpu' forces CPU workers.")]
BatchSize = Annotated[int, typer.Option(
    "--batch-size", min=1, help="Images per model call and per worker task (`patchnet train`: per training step).")]
ShardSize = Annotated[int, typer.Option("--shard-size", min=1, help="Samples per output shard.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Delete an earlier run in --out and start fresh.")]
Quiet = Annotated[bool, typer.Option(
    "--quiet", "-q", help="No progress bars, group table or info logs: only warnings and the final summary line.")]
Format = Annotated[ImageFormat, typer.Option(
    "--format", help="Encoding of the written images: jpg, or png (lossless). Classifiers and later stages see "
                     "the stored pixels.")]

# ---------------------------------------------------------------- models
ModelPrecision = Annotated[Precision, typer.Option(
    "--precision", help="Model arithmetic: fp32, or bf16/fp16 autocast on GPU (LaMa's FFTs always stay fp32).")]
SamModel = Annotated[str, typer.Option("--sam-model", help="SAM size: vit_h, vit_l or vit_b.")]
SamCheckpoint = Annotated[Optional[Path], typer.Option(
    "--sam-checkpoint", help="SAM weights (.pth). Env: BGFORGE_SAM_CHECKPOINT. See `bgforge models`.")]
GdinoConfig = Annotated[Optional[Path], typer.Option(
    "--gdino-config", help="GroundingDINO config .py (default: the SwinT config shipped with groundingdino-py).")]
GdinoCheckpoint = Annotated[Optional[Path], typer.Option(
    "--gdino-checkpoint", help="GroundingDINO weights. Env: BGFORGE_GDINO_CHECKPOINT.")]
LamaCheckpoint = Annotated[Optional[Path], typer.Option(
    "--lama-checkpoint", help="big-lama.pt (TorchScript). Env: BGFORGE_LAMA_CHECKPOINT.")]
PatchnetModel = Annotated[Optional[Path], typer.Option(
    "--patchnet-model", help="Patch detector checkpoint (M.pt from `bgforge patchnet train`), needed by the "
                             "patchnet segmenter.")]
BoxThreshold = Annotated[float, typer.Option("--box-threshold", help="GroundingDINO box score threshold.")]
TextThreshold = Annotated[float, typer.Option("--text-threshold", help="GroundingDINO token threshold.")]
Multimask = Annotated[bool, typer.Option(
    "--multimask/--single-mask", help="SAM: predict 3 masks per box and keep the best-scoring one.")]
Prompt = Annotated[Optional[str], typer.Option(
    "--prompt", help="Text prompt for the grounded-sam segmenter, e.g. 'bird . dog'. A manifest's text wins.")]
Segmenter = Annotated[str, typer.Option(
    "--segmenter", help=f"Finds each object's mask: {SEGMENTER_HELP}. `inpaint` also takes none (masks required); "
                        "`edit` takes auto (sam on a GPU or with grounded-sam grounding, else grabcut).")]
Inpainter = Annotated[str, typer.Option(
    "--inpainter", help=f"Fills the removed object: {INPAINTER_HELP}; auto = lama on a GPU, else telea.")]
Dilation = Annotated[int, typer.Option(
    "--dilation", help="Grow each object mask by a k x k kernel (0 = not at all): inpainting fills the grown hole, "
                       "Corner Cases uses 15; `segment` stores the grown mask as dilated.png.")]
