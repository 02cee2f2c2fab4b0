"""The `bgforge` Typer app: global options, and every command family registered on it.

Exit codes: 0 done; 2 bad input or usage (one-line error); 3 done but some samples failed
(see OUT/errors.jsonl); 1 a stopped run (a lost worker, 1,000 failures in a row, `--fail-fast`: re-run to
resume) or an unexpected error (a bug: please report it with the traceback); 130 / 143 Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import difflib
import logging
import re
import sys

import typer
from typer.core import TyperGroup

from .. import __version__
from ..errors import BgforgeError
from ..progress import set_notices
from . import build, edit, inspection, models, patchnet, scoring, stages, variants
from .common import EXIT_OK, EXIT_USAGE, GLOBAL, error_line

GLOBAL_FLAGS = ("-v", "--verbose", "-q", "--quiet")


class GlobalFlagsGroup(TyperGroup):
    """Accepts the global flags anywhere on the line (`bgforge build ... -q`), not only before the
    subcommand: click would otherwise read them as unknown options of the subcommand."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        end = args.index("--") if "--" in args else len(args)
        flags = [a for a in args[:end] if a in GLOBAL_FLAGS]
        rest = [a for a in args[:end] if a not in GLOBAL_FLAGS]
        return super().parse_args(ctx, flags + rest + args[end:])

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except typer.BadParameter as exc:
            exc.message = with_suggestion(exc.message)
            raise


def with_suggestion(message: str) -> str:
    """A refused choice ("'tars' is not one of 'shards', 'folder', ...") with the nearest value named."""
    m = re.search(r"'([^']*)' is not one of (.+?)\.?$", message)
    if not m:
        return message
    near = difflib.get_close_matches(m[1], re.findall(r"'([^']*)'", m[2]), n=1, cutoff=0.5)
    return f"{message} Did you mean '{near[0]}'?" if near else message


app = typer.Typer(
    name="bgforge", cls=GlobalFlagsGroup, no_args_is_help=True, add_completion=True, rich_markup_mode=None,
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
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug details. Works anywhere on the line."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the final summary line, warnings and errors: no "
                               "progress bars, group tables or per-class lines. Works anywhere on the line."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    GLOBAL.verbose, GLOBAL.quiet = verbose, quiet and not verbose
    set_notices(not GLOBAL.quiet)
    # by default: bgforge's notices, warnings and the summary; INFO log lines only with -v
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%Y-%m-%dT%H:%M:%S%z")
    logging.getLogger().setLevel(level)  # basicConfig configures only once per process (tests invoke many times)
    # -v is bgforge's own debug detail; other libraries stay at INFO (Pillow logs every PNG chunk it reads)
    logging.getLogger("bgforge").setLevel(logging.DEBUG if verbose else logging.NOTSET)


# The order here is the order of `bgforge --help`.
for _family in (build, stages, models, inspection, variants, patchnet, edit, scoring):
    _family.register(app)


def run() -> None:
    """Console-script entry: user errors are one line, never a traceback."""
    try:
        app()
    except BgforgeError as exc:  # raised outside a command (e.g. while Typer parses), so not yet reported
        error_line(str(exc))
        sys.exit(EXIT_USAGE)
