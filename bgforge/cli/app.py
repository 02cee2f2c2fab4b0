"""The `bgforge` Typer app: global options, and every command family registered on it.

Exit codes: 0 done; 2 bad input or usage (one-line error); 3 done but some samples failed
(see OUT/errors.jsonl); 1 an unexpected error (a bug: please report it with the traceback).
"""

from __future__ import annotations

import logging
import sys

import typer

from .. import __version__
from ..errors import BgforgeError
from . import build, data, edit, models, patchnet, stages, variants
from .common import EXIT_OK, EXIT_USAGE, error_line

app = typer.Typer(
    name="bgforge", no_args_is_help=True, add_completion=False, rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="Build spurious-background datasets: segment objects, rebuild backgrounds, composite them at "
         "chosen sizes and positions, and label every image with its group. Run `bgforge recipes` to see "
         "the published benchmarks it can rebuild, and `bgforge build NAME --demo --out DIR` to try one.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bgforge {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug details."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


# The order here is the order of `bgforge --help`.
for _family in (build, stages, models, data, variants, patchnet, edit):
    _family.register(app)


def run() -> None:
    """Console-script entry: user errors are one line, never a traceback."""
    try:
        app()
    except BgforgeError as exc:  # raised outside a command (e.g. while Typer parses), so not yet reported
        error_line(str(exc))
        sys.exit(EXIT_USAGE)
