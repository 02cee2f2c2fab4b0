"""`bgforge models` and `bgforge models fetch`: the weights each model backend needs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import command, echo


def register(app: typer.Typer) -> None:
    models = typer.Typer(help="Model weights: what each backend needs, where it looks, and how to fetch it.",
                         no_args_is_help=False, invoke_without_command=True)
    models.callback()(models_list)
    models.command("fetch")(models_fetch)
    app.add_typer(models, name="models")


def models_list(ctx: typer.Context) -> None:
    """List each model with its file name, size, sha256, download URL and whether it was found."""
    if ctx.invoked_subcommand:
        return
    from ..backends.weights import model_status

    for m in model_status():
        size = f"{m['size'] / 1e6:.0f} MB" if m.get("size") else "?"
        state = "found" if m["found"] else "missing"
        typer.echo(f"{m['name']:20s} {state:8s} {size:>8s}  {m['path']}")
        typer.echo(f"{'':20s} sha256 {m.get('sha256') or 'unknown'}  {m.get('url') or ''}")


@command
def models_fetch(
    name: Annotated[str, typer.Argument(help="Model name from `bgforge models`, e.g. sam_vit_h, lama.")],
    dest: Annotated[Optional[Path], typer.Option(
        "--dest", help="Folder (default: the model dir, $BGFORGE_MODEL_DIR).")] = None,
) -> None:
    """Download a model with a progress bar and verify its size and checksum."""
    from ..backends.weights import fetch

    echo(f"bgforge: {name} -> {fetch(name, dest)}")
