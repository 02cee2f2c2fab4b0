"""`bgforge variants`: the ImageNet-9 background-challenge variants of any labelled dataset with masks or boxes."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .cli_stages import INPUT, MANIFEST, OUT, OVERWRITE, QUIET, SHARD, WORKERS, _s, run_stage

VARIANTS_HELP = ("Comma-separated subset of original, only_bg_b, only_bg_t, no_fg, only_fg, mixed_same, mixed_rand, "
                 "mixed_next; or all.")


def register(app: typer.Typer) -> None:
    @app.command("variants")
    def variants_cmd(
        input: Path = INPUT, manifest: Optional[Path] = MANIFEST, out: Path = OUT,
        variants: str = typer.Option("all", "--variants", help=VARIANTS_HELP),
        seed: int = typer.Option(0, "--seed", help="Seed of the mixed variants' background picks."),
        image_format: str = typer.Option("png", "--format", help="png (lossless, default) or jpg."),
        workers: int = WORKERS, shard_size: int = SHARD, overwrite: bool = OVERWRITE, quiet: bool = QUIET,
    ):
        """Write the ImageNet-9 background variants (Xiao et al.) of every image: one split per variant.

        Each image needs a label and a foreground mask or boxes (a manifest's mask/boxes, or an earlier
        `bgforge segment` run). Mixed variants paste the foreground on the tiled background (only_bg_t)
        of an image of the same class, a random class, or the next class.

        Example: bgforge variants --input photos/ --manifest labels.jsonl --out in9/ --variants only_fg,mixed_rand
        """
        params = {"input": _s(input), "manifest": _s(manifest), "variants": variants, "seed": seed,
                  "image_format": image_format}
        run_stage("variants", params, out, workers=workers, devices="cpu", batch_size=8, shard_size=shard_size,
                  overwrite=overwrite, quiet=quiet, uses_torch=False)
