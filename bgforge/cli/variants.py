"""`bgforge variants`: the ImageNet-9 background-challenge variants of any labelled dataset with masks or boxes."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import options as opt
from .common import absolute, build_and_report, command, stage_recipe
from .groups import group

# the layouts a variants output can have (folder/both need reference paths; hsi is another recipe's)
VariantsLayout = Enum("VariantsLayout", {name: name for name in ("shards", "imagefolder", "in9")}, type=str)

VARIANTS_HELP = ("Comma-separated subset of original, only_bg_b, only_bg_t, no_fg, only_fg, mixed_same, mixed_rand, "
                 "mixed_next; or all.")


def register(app: typer.Typer) -> None:
    app.command("variants")(variants_cmd)


@command
def variants_cmd(
    out: opt.Out,
    inputs: opt.InputOptions = group(),
    variants: Annotated[str, typer.Option("--variants", help=VARIANTS_HELP)] = "all",
    seed: opt.Seed = 0,
    construction: Annotated[opt.VariantConstruction, typer.Option(
        "--construction", help="reference (the backgrounds challenge's main.py: one box per image, its filters, "
                               "GrabCut foregrounds, tiling from the origin, 256 x 256 mixed images, JPEG q75) or "
                               "bgforge (masks or boxes as given, docs/variants.md).")] = opt.VariantConstruction.reference,
    image_format: Annotated[Optional[opt.ImageFormat], typer.Option(
        "--format", help="jpg or png (default: jpg for --construction reference, as the reference saves; else "
                         "png).")] = None,
    jpeg_quality: opt.JpegQuality = None,
    class_order: Annotated[Optional[Path], typer.Option(
        "--class-order", help="File with one label per line in class index order (mixed_next pairs class y with "
                              "y + 1). Default: integer labels, else ImageNet-9's order, else sorted.")] = None,
    layout: Annotated[VariantsLayout, typer.Option(
        "--layout", help="shards (WebDataset tars, one split per variant), imagefolder (OUT/{variant}/{label}/), "
                         "or in9 (OUT/{variant}/val/{NN}_{label}/ as backgrounds_challenge's in9_eval.py reads: "
                         "--data-path OUT --eval-dataset mixed_rand).")] = VariantsLayout.shards,
    run: opt.RunOptions = group(omit=("devices", "batch_size", "io_threads")),  # pasting is CPU work
    output: opt.OutputOptions = group(),
) -> None:
    """Write the ImageNet-9 background variants (Xiao et al.) of every image: one split per variant.

    Each image needs a label and boxes (or, with --construction bgforge, a mask or boxes: a manifest's,
    or an earlier `bgforge segment` run). By default the images are built as the backgrounds challenge's
    main.py builds them: one box per image and its filters, GrabCut foregrounds, 256 x 256 mixed images.
    Mixed variants paste the foreground on the tiled background (only_bg_t) of an image of the same
    class, a random class, or the next class.

    Example: bgforge variants --input photos/ --manifest labels.jsonl --out in9/ --variants only_fg,mixed_rand
    """
    params = {**inputs.params(), "variants": variants, "seed": seed, "construction": construction.value,
              "image_format": image_format.value if image_format else ("jpg" if construction.value == "reference" else "png"),
              "jpeg_quality": jpeg_quality, "class_order": absolute(class_order)}
    build_and_report(stage_recipe("variants", params), out, run, output=output, layout=layout.value)
