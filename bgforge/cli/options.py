"""Every option that more than one bgforge command takes, declared once.

A command annotates a parameter with one of these aliases and gives only its default
(`seed: Seed = 0`), so a flag has one spelling, one meaning and one help text wherever it
appears. Options that only one command has are declared next to that command.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .. import choices
from ..backends import registry
from ..chain import BATCH_SIZE
from ..execution.plan import MIN_SHARDS
from ..io.encoding import JPEG_QUALITY


# ---------------------------------------------------------------- choices
# Built from bgforge/choices.py, the one declaration the library checks against too.
def _choices(name: str, *values: str) -> type[Enum]:
    """A str Enum Typer shows as a choice; member names are the values with '-' as '_'."""
    return Enum(name, {v.replace("-", "_"): v for v in values}, type=str)  # type: ignore[return-value]


ImageFormat = _choices("ImageFormat", *choices.IMAGE_FORMATS)
Layout = _choices("Layout", *choices.LAYOUTS)
Executor = _choices("Executor", *choices.EXECUTORS)
Position = _choices("Position", *choices.POSITIONS)
Precision = _choices("Precision", *choices.PRECISIONS)
SamSize = _choices("SamSize", *choices.SAM_MODELS)
EditGrounding = _choices("EditGrounding", *choices.EDIT_GROUNDINGS)
PhraseCollapse = _choices("PhraseCollapse", *choices.PHRASE_COLLAPSES)
DilationShape = _choices("DilationShape", *choices.DILATION_SHAPES)
ClassifierPreset = _choices("ClassifierPreset", *choices.CLASSIFIER_PRESETS)
TopKRank = _choices("TopKRank", *choices.TOP_K_RANKS)
BgMode = _choices("BgMode", *choices.BG_MODES)
FgMode = _choices("FgMode", *choices.FG_MODES)
VariantConstruction = _choices("VariantConstruction", *choices.VARIANT_CONSTRUCTIONS)
StatsSplit = _choices("StatsSplit", *choices.STATS_SPLITS)


def absolute(path: Optional[Path]) -> Optional[str]:
    """A user-given path as the absolute string recipes store (workers may run elsewhere)."""
    return None if path is None else str(Path(path).expanduser().resolve())


def path_option(*flags: str, help: str) -> Any:
    """An optional path flag (roots, manifests, checkpoints): None when not given."""
    return Annotated[Optional[Path], typer.Option(*flags, help=help)]


SEGMENTER_HELP, INPAINTER_HELP = registry.SEGMENTER_HELP, registry.INPAINTER_HELP  # one help line per backend row

# ---------------------------------------------------------------- where data comes from and goes
Input = Annotated[Path, typer.Option(
    "--input", "-i", help="A folder of images, or the output folder of an earlier bgforge stage (its shards).")]
Manifest = path_option(
    "--manifest", "-m", help="JSONL or CSV with key, path, label, boxes, text, mask, split per image.")
Out = Annotated[Path, typer.Option(
    "--out", "-o", help="Output folder, created if missing (shards/, metadata.csv, manifest.json, README.md). "
                        "Re-running the same command resumes it.")]


def text_option(*flags: str, help: str) -> Any:
    """An optional text flag (a name, a prompt, a list in one string): None when not given."""
    return Annotated[Optional[str], typer.Option(*flags, help=help)]


def root_option(source: str, what: str) -> Any:
    """--<source>-root, also read from BGFORGE_<SOURCE>_ROOT (sources.resolve_root)."""
    return path_option(f"--{source}-root", help=f"{what} Env: BGFORGE_{source.upper()}_ROOT.")


CubRoot = root_option("cub", "CUB_200_2011 folder (holds images.txt, images/, segmentations/).")
PlacesRoot = root_option("places", "Places365 folder (data_large/, data_256/, places365_standard/ or train/).")
CocoRoot = root_option("coco", "COCO 2017 folder (annotations/instances_*.json, train2017/).")
CarsRoot = root_option("cars", "Stanford Cars (devkit layout: cars_train/, devkit/*.mat; or the CSV mirror).")
LvisRoot = root_option("lvis", "LVIS v1 annotations folder (lvis_v1_train.json, lvis_v1_val.json).")
TexturesRoot = root_option("textures", "Texture images folder (e.g. dtd/images) for bap-coco-vehicles.")
ImagenetRoot = root_option("imagenet", "ILSVRC-2012 folder (train/, val/, Annotation/ or LOC_*_solution.csv; or "
                                       "the Kaggle ILSVRC/ layout).")

# ---------------------------------------------------------------- how a run executes
Seed = Annotated[Optional[int], typer.Option(
    "--seed", help="Seed of every random draw (backgrounds, positions, swaps, training order): the same inputs and "
                   "seed give the same bytes. `build` without it uses the recipe's seed.")]
Workers = Annotated[int, typer.Option(
    "--workers", "-w", min=1, help="Worker processes on the CPU. With GPUs, the model phases run one per "
                                   "--devices entry and the phases that only paste run this many (at least as many "
                                   "as the GPU workers). Output bytes do not depend on it.")]
Devices = Annotated[Optional[str], typer.Option(
    "--devices", help="GPUs for the model stages, one worker per entry: '0,1' or 'cuda:0,cuda:1' ('0,0,1,1': two each). Default: "
                      "every visible GPU with two workers each (one decodes while the other infers); "
                      "'cpu' forces CPU workers.")]
BatchSize = Annotated[int, typer.Option(
    "--batch-size", min=1, help="Images per model call and per worker task (`patchnet train`: per training step).")]
IoThreads = Annotated[Optional[int], typer.Option(
    "--io-threads", min=0, max=64,
    help="CPU threads per model worker that decode the next batch and encode the last one while the model runs. "
         "Default: 2 on a GPU, 0 (inline) on CPU workers, which are one process per core already.")]
ShardSize = Annotated[int, typer.Option("--shard-size", min=1, help="Most samples per output shard.")]
MinShards = Annotated[int, typer.Option(
    "--min-shards", min=1, help="Fewest shards per split (fewer only for a split with fewer samples), so a "
                                "DataLoader with that many workers gets a shard each.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Delete an earlier run in --out and start fresh.")]
Limit = Annotated[Optional[int], typer.Option(
    "--limit", min=1, help="A trial build on real data: N samples per split, a seeded subset spread over "
                           "the groups (at least one each where N allows), earlier phases cut to what it needs. "
                           "Marked partial in the card and manifest; a full build needs another --out or --overwrite.")]
RetryErrors = Annotated[bool, typer.Option(
    "--retry-errors", help="Rebuild the shards whose samples failed (listed in errors.jsonl) once the cause is fixed "
                           "(a file, the disk, a model): only those shards, each replaced when its new tar commits. "
                           "Inputs skipped while planning are not retried (--overwrite re-plans).")]
FailFast = Annotated[bool, typer.Option(
    "--fail-fast", help="Stop at the first failed sample and print its traceback (exit 1): its shard is not "
                        "committed, the committed ones stay, the failure is added to errors.jsonl. Re-run "
                        "without it to resume, recording failed samples and going on.")]
JpegQuality = Annotated[Optional[int], typer.Option(
    "--jpeg-quality", min=1, max=100,
    help=f"JPEG quality of the written images (default {JPEG_QUALITY}; the Waterbirds and UrbanCars recipes use 75, "
         "their references' PIL default). Ignored with --format png.")]
Format = Annotated[ImageFormat, typer.Option(
    "--format", help="Encoding of the written images: jpg, or png (lossless). Classifiers and later stages see "
                     "the stored pixels.")]

# ---------------------------------------------------------------- models
ModelPrecision = Annotated[Precision, typer.Option(
    "--precision", help="Model arithmetic: auto (bf16 autocast on a GPU that has it, fp32 on CPU), fp32, or "
                        "bf16/fp16 autocast (LaMa always stays fp32).")]
SamModel = Annotated[SamSize, typer.Option("--sam-model", help="SAM size: vit_h, vit_l or vit_b.")]


def checkpoint_option(model: str, what: str) -> Any:
    """--<model>-checkpoint, also read from BGFORGE_<MODEL>_CHECKPOINT (backends.weights)."""
    return path_option(f"--{model}-checkpoint",
                       help=f"{what} Env: BGFORGE_{model.upper()}_CHECKPOINT. See `bgforge models`.")


SamCheckpoint = checkpoint_option("sam", "SAM weights (.pth).")
GdinoConfig = path_option(
    "--gdino-config", help="GroundingDINO config .py (default: the SwinT config shipped with groundingdino-py).")
GdinoCheckpoint = checkpoint_option("gdino", "GroundingDINO weights.")
LamaCheckpoint = checkpoint_option("lama", "big-lama.pt (TorchScript).")
PatchnetModel = path_option(
    "--patchnet-model", help="Patch detector checkpoint (M.pt from `bgforge patchnet train`), needed by the "
                             "patchnet segmenter.")
Compile = Annotated[bool, typer.Option(
    "--compile", help="torch.compile SAM's image encoder: minutes of warm-up on the first batch, then faster "
                      "batches; worth it on long GPU runs only.")]
GdinoMaxBoxes = Annotated[Optional[int], typer.Option(
    "--gdino-max-boxes", min=1, help="grounded-sam: keep at most this many boxes per image, best scores first "
                                     "(default: every box over --box-threshold).")]
BoxThreshold = Annotated[float, typer.Option("--box-threshold", help="GroundingDINO box score threshold.")]
TextThreshold = Annotated[float, typer.Option("--text-threshold", help="GroundingDINO token threshold.")]
Multimask = Annotated[bool, typer.Option(
    "--multimask/--single-mask", help="SAM: predict 3 masks per box and keep the best-scoring one.")]
Prompt = Annotated[Optional[str], typer.Option(
    "--prompt", help="Text prompt for the grounded-sam segmenter, e.g. 'bird . dog'. A manifest's text wins.")]
def complete_names(*names: str):
    """Shell completion over a closed list of values (backend names: the registry's rows)."""
    return lambda incomplete: [n for n in names if n.startswith(incomplete)]


COMPLETE_SEGMENTERS = complete_names(*registry.SEGMENTERS, "auto", "none")
COMPLETE_INPAINTERS = complete_names(*registry.INPAINTERS, "auto")

Segmenter = Annotated[str, typer.Option(
    "--segmenter", autocompletion=COMPLETE_SEGMENTERS,
    help=f"Finds each object's mask: {SEGMENTER_HELP}. `inpaint` also takes none (masks required); "
         "`edit` takes auto (sam on a GPU or with grounded-sam grounding, else grabcut).")]
Inpainter = Annotated[str, typer.Option(
    "--inpainter", autocompletion=COMPLETE_INPAINTERS,
    help=f"Fills the removed object: {INPAINTER_HELP}; auto = lama on a GPU, else telea.")]
Dilation = Annotated[int, typer.Option(
    "--dilation", help="Grow each object mask by a k x k kernel (0 = not at all): inpainting fills the grown hole, "
                       "Corner Cases uses 15; `segment` stores the grown mask as dilated.png.")]


# ---------------------------------------------------------------- option groups (see groups.py)
@dataclass
class InputOptions:
    """The images a stage command reads, and the manifest that describes them."""

    input: Input
    manifest: Manifest = None

    def params(self) -> dict:
        """As a stage recipe records them: absolute paths."""
        return {"input": absolute(self.input), "manifest": absolute(self.manifest)}

@dataclass
class RunOptions:
    """How a run executes; none of it changes the output bytes, so a build resumes with other values
    (the library's RunConfig, and bgforge.build's `overwrite`)."""

    workers: Workers = 1
    devices: Devices = None
    batch_size: BatchSize = BATCH_SIZE
    io_threads: IoThreads = None
    overwrite: Overwrite = False
    retry_errors: RetryErrors = False
    fail_fast: FailFast = False


@dataclass
class OutputOptions:
    """What is written: each changes the output bytes (recorded in plan.json; a resume with another value is
    refused). With a command's --layout, the library's bgforge.OutputOptions."""

    shard_size: ShardSize = 1000
    min_shards: MinShards = MIN_SHARDS
    limit: Limit = None

    def options(self, layout: Any = "shards") -> Any:
        """bgforge.OutputOptions of these values and `layout` (a Layout member or its value)."""
        from ..api import OutputOptions as Output

        return Output(shard_size=self.shard_size, min_shards=self.min_shards, layout=layout, limit=self.limit)


@dataclass
class ModelOptions:
    """Where the model backends find their weights, and the arithmetic they run in."""

    sam_model: SamModel = SamSize.vit_h
    sam_checkpoint: SamCheckpoint = None
    gdino_config: GdinoConfig = None
    gdino_checkpoint: GdinoCheckpoint = None
    lama_checkpoint: LamaCheckpoint = None
    precision: ModelPrecision = Precision.auto
    patchnet_model: PatchnetModel = None
    compile: Compile = False
    gdino_max_boxes: GdinoMaxBoxes = None
