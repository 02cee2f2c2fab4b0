"""`bgforge variants`: the ImageNet-9 background-challenge variants of any labelled dataset with masks or boxes."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import absolute, reports_user_errors, run_stage
from .options import Format, ImageFormat, Input, Manifest, Out, Overwrite, Quiet, Seed, ShardSize, Workers

VARIANTS_HELP = ("Comma-separated subset of original, only_bg_b, only_bg_t, no_fg, only_fg, mixed_same, mixed_rand, "
                 "mixed_next; or all.")


def register(app: typer.Typer) -> None:
    app.command("variants")(variants_cmd)


@reports_user_errors
def variants_cmd(
    input: Input,
    out: Out,
    manifest: Manifest = None,
    variants: Annotated[str, typer.Option("--variants", help=VARIANTS_HELP)] = "all",
    seed: Seed = 0,
    image_format: Format = ImageFormat.png,
    workers: Workers = 1, shard_size: ShardSize = 1000, overwrite: Overwrite = False, quiet: Quiet = False,
) -> None:
    """Write the ImageNet-9 background variants (Xiao et al.) of every image: one split per variant.

    Each image needs a label and a foreground mask or boxes (a manifest's mask/boxes, or an earlier
    `bgforge segment` run). Mixed variants paste the foreground on the tiled background (only_bg_t)
    of an image of the same class, a random class, or the next class.

    Example: bgforge variants --input photos/ --manifest labels.jsonl --out in9/ --variants only_fg,mixed_rand
    """
    params = {"input": absolute(input), "manifest": absolute(manifest), "variants": variants, "seed": seed,
              "image_format": image_format.value}
    run_stage("variants", params, out, quiet=quiet, workers=workers, shard_size=shard_size, overwrite=overwrite,
              devices=None, batch_size=8)  # pasting is CPU work
